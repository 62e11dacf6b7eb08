/*
 * scifact - BEIR SciFact through the worker's ingest and query code:
 * 5,183 abstracts (title + text), the 300 test queries, nDCG@10
 * (binary gains, trec_eval style) and recall@100 per retrieval mode.
 * Chunk hits are folded to documents by first (best) occurrence.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "coll.h"
#include "embed.h"
#include "ingest.h"
#include "omni_alloc.h"
#include "omni_buf.h"
#include "smap.h"

struct query {
    char *id;
    char *text;
    struct omni_smap rel; /* relevant doc ids */
};

struct opts {
    struct omni_chunk_opts chunk;
    struct omni_coll_params cp;
    struct omni_embed_weights ew;
    bool title_heading;
    float wb, wv;
    size_t cand;
    bool idf;
};

static void parse_chunk(const char *s, struct omni_chunk_opts *c)
{
    char mode[16];
    unsigned long size, ov;
    if (sscanf(s, "%15[a-z]:%lu:%lu", mode, &size, &ov) != 3 || ov >= size) {
        fprintf(stderr, "bad --chunk '%s': want chars|tokens:SIZE:OVERLAP\n",
                s);
        exit(2);
    }
    c->mode = strcmp(mode, "tokens") ? OMNI_CHUNK_CHARS : OMNI_CHUNK_TOKENS;
    c->size = size;
    c->overlap = ov;
}

static size_t load_queries(const char *dir, struct query **out)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/qrels/test.tsv", dir);
    char *qrels = bench_slurp(path, NULL);
    snprintf(path, sizeof path, "%s/queries.jsonl", dir);
    char *qj = bench_slurp(path, NULL);
    if (!qrels || !qj) {
        omni_free(qrels);
        omni_free(qj);
        return 0;
    }
    struct omni_smap byid = OMNI_SMAP_INIT;
    struct query *q = NULL;
    size_t n = 0, cap = 0;
    char *save = NULL;
    for (char *line = strtok_r(qrels, "\r\n", &save); line;
         line = strtok_r(NULL, "\r\n", &save)) {
        char qid[64], did[64];
        int score;
        if (sscanf(line, "%63[^\t]\t%63[^\t]\t%d", qid, did, &score) != 3 ||
            !strcmp(qid, "query-id") || score <= 0)
            continue;
        struct query *x = omni_smap_get(&byid, qid, strlen(qid));
        if (!x) {
            if (n == cap) {
                cap = cap ? cap * 2 : 512;
                q = omni_realloc(q, cap * sizeof *q);
                /* Pointers into q move: rebuild the index. */
                omni_smap_free(&byid);
                for (size_t i = 0; i < n; i++)
                    omni_smap_put(&byid, q[i].id, strlen(q[i].id), &q[i]);
            }
            x = &q[n++];
            *x = (struct query){.id = omni_strdup(qid)};
            omni_smap_put(&byid, qid, strlen(qid), x);
        }
        omni_smap_put(&x->rel, did, strlen(did), (void *)1);
    }
    save = NULL;
    for (char *line = strtok_r(qj, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "_id"));
        const char *t = json_string_value(json_object_get(j, "text"));
        struct query *x = id ? omni_smap_get(&byid, id, strlen(id)) : NULL;
        if (x && t)
            x->text = omni_strdup(t);
        json_decref(j);
    }
    omni_smap_free(&byid);
    omni_free(qrels);
    omni_free(qj);
    *out = q;
    return n;
}

static size_t load_corpus(const char *dir, const struct opts *o,
                          struct omni_coll *c, struct omni_embedder *e)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/corpus.jsonl", dir);
    char *cj = bench_slurp(path, NULL);
    if (!cj)
        return 0;
    size_t n = 0;
    char *save = NULL;
    struct omni_buf text = OMNI_BUF_INIT;
    for (char *line = strtok_r(cj, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
        json_t *j = json_loads(line, 0, NULL);
        const char *id = json_string_value(json_object_get(j, "_id"));
        const char *title = json_string_value(json_object_get(j, "title"));
        const char *body = json_string_value(json_object_get(j, "text"));
        omni_buf_reset(&text);
        omni_buf_addf(&text, "%s%s\n\n%s", o->title_heading ? "# " : "",
                      title ? title : "", body ? body : "");
        json_t *doc = json_pack(
            "{s:s, s:s, s:s}", "id", id ? id : "", "text", text.data,
            "content_type", o->title_heading ? "text/markdown" : "text/plain");
        struct omni_prep *p;
        char err[OMNI_ERR_LEN];
        if (omni_ingest_prepare(doc, &o->chunk, 1 << 24, &p, err) == OMNI_OK) {
            omni_ingest_embed_local(e, p);
            omni_coll_put(c, p);
            omni_prep_free(p);
            n++;
        } else {
            fprintf(stderr, "skip %s: %s\n", id ? id : "?", err);
        }
        json_decref(doc);
        json_decref(j);
    }
    omni_buf_release(&text);
    omni_free(cj);
    return n;
}

/* Fold chunk hits to documents; evaluate one query. */
static void evaluate(const struct query *q, const struct omni_qhit *h, size_t n,
                     double *ndcg, double *recall)
{
    struct omni_smap seen = OMNI_SMAP_INIT;
    double dcg = 0;
    size_t rank = 0, found = 0;
    for (size_t i = 0; i < n && rank < 100; i++) {
        const char *id = h[i].chunk->doc->id;
        if (omni_smap_put(&seen, id, strlen(id), (void *)1))
            continue;
        rank++;
        if (omni_smap_get(&q->rel, id, strlen(id))) {
            found++;
            if (rank <= 10)
                dcg += 1.0 / log2((double)rank + 1);
        }
    }
    double idcg = 0;
    for (size_t i = 1; i <= q->rel.len && i <= 10; i++)
        idcg += 1.0 / log2((double)i + 1);
    *ndcg = idcg > 0 ? dcg / idcg : 0;
    *recall = q->rel.len ? (double)found / (double)q->rel.len : 0;
    omni_smap_free(&seen);
}

int bench_scifact(int argc, char **argv)
{
    const char *dir = "../shared/datasets/beir-scifact";
    struct opts o = {
        .chunk = {OMNI_CHUNK_CHARS, 800, 400, false},
        .cp = {.bm25 = {1.2f, 0.75f, true, true},
               .hnsw = {16, 200, 64, 0},
               .exact_below = 2000},
        .ew = {1.0f, 0.1f, 1.0f},
        .wb = 1,
        .wv = 0.5f,
        .idf = true,
        .title_heading = true,
        .cand = 0,
    };
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--chunk"))
            parse_chunk(bench_arg(argc, argv, &i), &o.chunk);
        else if (!strcmp(a, "--k1"))
            o.cp.bm25.k1 = strtof(bench_arg(argc, argv, &i), NULL);
        else if (!strcmp(a, "--b"))
            o.cp.bm25.b = strtof(bench_arg(argc, argv, &i), NULL);
        else if (!strcmp(a, "--nostem"))
            o.cp.bm25.stem = false;
        else if (!strcmp(a, "--nostop"))
            o.cp.bm25.stop = false;
        else if (!strcmp(a, "--noidf"))
            o.idf = false;
        else if (!strcmp(a, "--plain"))
            o.title_heading = false;
        else if (!strcmp(a, "--w-uni"))
            o.ew.unigram = strtof(bench_arg(argc, argv, &i), NULL);
        else if (!strcmp(a, "--w-bi"))
            o.ew.bigram = strtof(bench_arg(argc, argv, &i), NULL);
        else if (!strcmp(a, "--w-char"))
            o.ew.chargram = strtof(bench_arg(argc, argv, &i), NULL);
        else if (!strcmp(a, "--wb"))
            o.wb = strtof(bench_arg(argc, argv, &i), NULL);
        else if (!strcmp(a, "--wv"))
            o.wv = strtof(bench_arg(argc, argv, &i), NULL);
        else if (!strcmp(a, "--cand"))
            o.cand = strtoul(bench_arg(argc, argv, &i), NULL, 10);
        else if (a[0] != '-')
            dir = a;
        else {
            fprintf(stderr, "unknown option '%s'\n", a);
            return 2;
        }
    }
    struct query *qs;
    size_t nq = load_queries(dir, &qs);
    if (!nq) {
        printf("scifact: skipped: no data set at '%s' (want corpus.jsonl, "
               "queries.jsonl, qrels/test.tsv)\n",
               dir);
        return 0;
    }
    struct omni_embedder *e = omni_embed_new(384, &o.ew);
    struct omni_coll *c = omni_coll_new("scifact", 384, "local", &o.cp);
    double t0 = bench_now();
    size_t nd = load_corpus(dir, &o, c, e);
    double t1 = bench_now();
    printf("scifact: %zu documents, %zu chunks (%s %zu/%zu), ingest %.1f s "
           "(%.0f docs/s), vector store %s\n",
           nd, c->nchunks,
           o.chunk.mode == OMNI_CHUNK_CHARS ? "chars" : "tokens", o.chunk.size,
           o.chunk.overlap, t1 - t0, (double)nd / (t1 - t0),
           omni_vstore_current(c->vs));
    printf("bm25 k1=%.2f b=%.2f stem=%s stop=%s; embedder dim 384 weights "
           "%.2f/%.2f/%.2f, query idf %s; rrf k=60 weights %.2f/%.2f; "
           "title as %s\n",
           o.cp.bm25.k1, o.cp.bm25.b, o.cp.bm25.stem ? "snowball" : "none",
           o.cp.bm25.stop ? "yes" : "no", o.ew.unigram, o.ew.bigram,
           o.ew.chargram, o.idf ? "yes" : "no", o.wb, o.wv,
           o.title_heading ? "heading" : "text");
    static const char *const names[] = {"hybrid", "bm25", "vector"};
    size_t k = 400;
    struct omni_qhit *hits = omni_malloc(k * sizeof *hits);
    float *qv = omni_malloc(384 * sizeof *qv);
    printf("%-8s %8s %8s %10s\n", "mode", "nDCG@10", "R@100", "ms/query");
    for (int m = 1; m <= 3; m++) {
        enum omni_qmode mode = (enum omni_qmode)(m % 3);
        double sn = 0, sr = 0;
        double q0 = bench_now();
        for (size_t i = 0; i < nq; i++) {
            if (!qs[i].text)
                continue;
            if (o.idf)
                omni_coll_embed_query(c, e, qs[i].text, strlen(qs[i].text), qv);
            else
                omni_embed_one(e, qs[i].text, strlen(qs[i].text), qv);
            struct omni_query q = {.mode = mode,
                                   .text = qs[i].text,
                                   .len = strlen(qs[i].text),
                                   .vec = qv,
                                   .k = k,
                                   .candidates = o.cand,
                                   .w_bm25 = o.wb,
                                   .w_vec = o.wv};
            size_t n = omni_coll_query(c, &q, hits);
            double nd10, r100;
            evaluate(&qs[i], hits, n, &nd10, &r100);
            sn += nd10;
            sr += r100;
        }
        double q1 = bench_now();
        printf("%-8s %8.4f %8.4f %10.2f\n", names[mode], sn / (double)nq,
               sr / (double)nq, (q1 - q0) * 1000 / (double)nq);
    }
    omni_free(hits);
    omni_free(qv);
    for (size_t i = 0; i < nq; i++) {
        omni_free(qs[i].id);
        omni_free(qs[i].text);
        omni_smap_free(&qs[i].rel);
    }
    omni_free(qs);
    omni_coll_free(c);
    omni_embed_free(e);
    return 0;
}
