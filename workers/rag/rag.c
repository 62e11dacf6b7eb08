/*
 * rag - the RAG worker: request parsing, the ingest pipeline, queries,
 * the context op for the llm worker, and the semantic cache.
 *
 * Ingest: every document is validated, extracted and chunked first (any
 * error fails the whole request, nothing written); unchanged versions
 * (same hash) are skipped; the rest are embedded (locally in slices of
 * EMBED_SLICE chunks per loop turn, or through the llm service's
 * embeddings op in batches of EMBED_BATCH), then written to Redis in
 * one transaction, and only once that succeeded enter the in-memory
 * indexes.  Queries never touch Redis.  A request's state is a struct
 * job; a cancelled job whose Redis write is in flight stays alive until
 * the write answers (the write still lands, and is applied).
 * The semantic cache is a hidden collection per namespace ("~sc.NS"),
 * always embedded locally, with the cached value in the metadata.
 */
#include "rag.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "coll.h"
#include "embed.h"
#include "ingest.h"
#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_worker.h"
#include "store.h"

#define EMBED_SLICE       128
#define EMBED_BATCH       64
#define NAME_MAX_LEN      128
#define TOP_K_MAX         1000
#define SEMCACHE_PREFIX   "~sc."
#define SEMCACHE_TEXT_MAX 262144

struct rag {
    struct omni_worker *w;
    struct event_base *base;
    struct omni_smap colls; /* name -> struct omni_coll */
    struct omni_embedder *local;
    uint32_t local_dim;
    char *embedder; /* "local" or provider/model */
    bool provider;
    struct omni_chunk_opts chunk_def;
    size_t max_bytes;
    struct omni_coll_params cp;
    struct omni_rstore *rs; /* NULL in memory mode, and once drained */
    bool persist;           /* redis_url is set */
    bool loaded;
    bool draining;
    size_t writers; /* jobs waiting on a Redis write */
    size_t semcache_max;
    float w_bm25, w_vec, rrf_k;
};

static struct rag *the_rag;

enum jkind { J_INGEST, J_QUERY, J_CONTEXT, J_SEMGET, J_SEMPUT, J_DELETE };

struct job {
    struct rag *g;
    struct omni_wreq *r; /* NULL once cancelled */
    enum jkind kind;
    json_t *body;
    char *coll;
    bool local; /* embed with the local embedder */
    /* ingest */
    struct omni_prep **preps;
    size_t np;
    json_t *unchanged;
    size_t di, ci; /* embedding cursor: document, chunk */
    struct event *ev;
    uint64_t sub_id;
    bool sub_live;
    size_t batch;
    uint32_t dim;
    bool writing;
    /* query */
    float *qvec;
    /* delete */
    json_t *ids;
};

static void job_free(struct job *j)
{
    if (j->ev)
        event_free(j->ev);
    if (j->sub_live)
        omni_worker_subcancel(j->g->w, j->sub_id);
    for (size_t i = 0; i < j->np; i++)
        omni_prep_free(j->preps[i]);
    omni_free(j->preps);
    json_decref(j->unchanged);
    json_decref(j->body);
    json_decref(j->ids);
    omni_free(j->coll);
    omni_free(j->qvec);
    omni_free(j);
}

/* ---- replies ---- */

static void reply_json(struct job *j, json_t *v)
{
    if (j->r) {
        char *s = json_dumps(v, JSON_COMPACT);
        omni_wreq_final(j->r, s, strlen(s));
        free(s);
        j->r = NULL;
    }
    json_decref(v);
}

static void reply_err(struct job *j, enum omni_err code, const char *msg)
{
    if (j->r) {
        omni_wreq_error(j->r, code, 0, 0, "%s", msg);
        j->r = NULL;
    }
}

/* Answer, then free the job unless a write still needs it. */
static void finish(struct job *j)
{
    if (!j->writing)
        job_free(j);
}

static void fail(struct job *j, enum omni_err code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail(struct job *j, enum omni_err code, const char *fmt, ...)
{
    struct omni_buf msg = OMNI_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(&msg, fmt, ap);
    va_end(ap);
    reply_err(j, code, msg.data);
    omni_buf_release(&msg);
    finish(j);
}

/* ---- collections ---- */

static bool valid_name(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NAME_MAX_LEN)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              (c >= '0' && c <= '9') || c == '_' || c == '-' || c == '.'))
            return false;
    }
    return true;
}

static struct omni_coll *coll_get(struct rag *g, const char *name)
{
    return omni_smap_get(&g->colls, name, strlen(name));
}

static void colls_free(struct omni_smap *m)
{
    size_t pos = 0;
    struct omni_smap_slot *s;
    while ((s = omni_smap_next(m, &pos)))
        omni_coll_free(s->val);
    omni_smap_free(m);
}

/* The embedder name and dimension a job's vectors have. */
static const char *job_embedder(const struct job *j)
{
    return j->local ? "local" : j->g->embedder;
}

/* Refuse a collection made with another embedder or dimension. */
static bool check_dims(struct job *j, const struct omni_coll *c, uint32_t dim)
{
    const char *emb = job_embedder(j);
    if (strcmp(c->embedder, emb) == 0 && (dim == 0 || c->dim == dim))
        return true;
    fail(j, OMNI_E_BAD_REQUEST,
         "dimension mismatch: collection '%.128s' holds %u-dimension vectors "
         "from embedder '%.64s', this worker embeds with '%.64s'%s",
         c->name, c->dim, c->embedder, emb,
         dim ? "" : " (dimension not known yet)");
    return false;
}

static void apply_preps(struct rag *g, const char *name, uint32_t dim,
                        const char *embedder, struct omni_prep **p, size_t n)
{
    struct omni_coll *c = coll_get(g, name);
    if (!c) {
        c = omni_coll_new(name, dim, embedder, &g->cp);
        omni_smap_put(&g->colls, name, strlen(name), c);
    }
    for (size_t i = 0; i < n; i++)
        omni_coll_put(c, p[i]);
}

/* Remove the documents named by a JSON array of ids (c may be NULL). */
static void remove_ids(struct omni_coll *c, const json_t *ids)
{
    for (size_t i = 0; c && i < json_array_size(ids); i++) {
        const json_t *id = json_array_get(ids, i);
        omni_coll_remove(c, json_string_value(id), json_string_length(id));
    }
}

/* ---- store callbacks ---- */

static void on_loaded(struct omni_smap *colls, void *arg)
{
    struct rag *g = arg;
    colls_free(&g->colls);
    g->colls = *colls;
    g->loaded = true;
}

static void on_changed(const char *coll, uint32_t dim, const char *embedder,
                       const char *doc, struct omni_prep *p, void *arg)
{
    struct rag *g = arg;
    struct omni_coll *c = coll_get(g, coll);
    if (!p) {
        if (c)
            omni_coll_remove(c, doc, strlen(doc));
        return;
    }
    if (c && c->dim != dim) {
        omni_warn("rag: change of '%s' in '%s' has %u dimensions, the "
                  "collection %u; ignored",
                  doc, coll, dim, c->dim);
        omni_prep_free(p);
        return;
    }
    struct omni_doc *d = c ? omni_coll_doc(c, doc, strlen(doc)) : NULL;
    if (!d || strcmp(d->hash, p->hash) != 0)
        apply_preps(g, coll, dim, embedder, &p, 1);
    omni_prep_free(p);
}

/* ---- readiness ---- */

/* Reads need the state loaded once; writes need Redis up now. */
static bool ready(struct job *j, bool write)
{
    struct rag *g = j->g;
    if (!g->persist)
        return true;
    if (!g->rs) {
        fail(j, OMNI_E_UNAVAILABLE, "rag worker is shutting down");
        return false;
    }
    if (!g->loaded) {
        fail(j, OMNI_E_UNAVAILABLE,
             "rag index not loaded: redis is %s; retry later",
             omni_rstore_state(g->rs));
        return false;
    }
    if (write && !omni_rstore_up(g->rs)) {
        fail(j, OMNI_E_UNAVAILABLE,
             "redis is unavailable: %s refused, nothing written",
             j->kind == J_DELETE ? "delete" : "ingest");
        return false;
    }
    return true;
}

/* ---- ingest: commit ---- */

static void ingest_reply(struct job *j)
{
    if (j->kind == J_SEMPUT) {
        reply_json(j,
                   json_pack("{s:s, s:b}", "namespace",
                             j->coll + strlen(SEMCACHE_PREFIX), "stored", 1));
        return;
    }
    json_t *ing = json_array();
    size_t chunks = 0;
    for (size_t i = 0; i < j->np; i++) {
        json_array_append_new(ing, json_string(j->preps[i]->id));
        chunks += j->preps[i]->nchunks;
    }
    reply_json(j, json_pack("{s:s, s:o, s:O, s:I}", "collection", j->coll,
                            "ingested", ing, "unchanged", j->unchanged,
                            "chunks", (json_int_t)chunks));
}

static void maybe_free_store(struct rag *g)
{
    if (g->draining && !g->writers && g->rs) {
        struct omni_rstore *rs = g->rs;
        g->rs = NULL;
        omni_rstore_free(rs);
    }
}

static void semcache_evict(struct rag *g, const char *name);

static void on_written(enum omni_err rc, const char *msg, void *arg)
{
    struct job *j = arg;
    struct rag *g = j->g;
    j->writing = false;
    g->writers--;
    if (rc == OMNI_OK) {
        apply_preps(g, j->coll, j->dim, job_embedder(j), j->preps, j->np);
        if (j->kind == J_SEMPUT)
            semcache_evict(g, j->coll);
        ingest_reply(j);
    } else {
        reply_err(j, rc, msg);
    }
    job_free(j);
    maybe_free_store(g);
}

static void ingest_commit(struct job *j)
{
    struct rag *g = j->g;
    struct omni_coll *c = coll_get(g, j->coll);
    if (c && !check_dims(j, c, j->dim))
        return;
    if (!g->persist) {
        apply_preps(g, j->coll, j->dim, job_embedder(j), j->preps, j->np);
        if (j->kind == J_SEMPUT)
            semcache_evict(g, j->coll);
        ingest_reply(j);
        finish(j);
        return;
    }
    if (!ready(j, true))
        return;
    j->writing = true;
    g->writers++;
    omni_rstore_put(g->rs, j->coll, j->dim, job_embedder(j), j->preps, j->np,
                    on_written, j);
}

/* ---- ingest: embedding ---- */

static void on_local_slice(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    (void)fd;
    (void)what;
    struct omni_buf t = OMNI_BUF_INIT;
    size_t done = 0;
    uint32_t dim = j->dim;
    while (j->di < j->np && done < EMBED_SLICE) {
        struct omni_prep *p = j->preps[j->di];
        if (!p->vecs)
            p->vecs = omni_malloc((p->nchunks ? p->nchunks : 1) * dim *
                                  sizeof(float));
        if (j->ci >= p->nchunks) {
            j->di++;
            j->ci = 0;
            continue;
        }
        omni_ingest_index_text(&p->chunks[j->ci], &t);
        omni_embed_one(j->g->local, t.data, t.len,
                       p->vecs + (size_t)j->ci * dim);
        j->ci++;
        done++;
    }
    omni_buf_release(&t);
    if (j->di < j->np) {
        struct timeval tv = {0, 0};
        evtimer_add(j->ev, &tv);
        return;
    }
    event_free(j->ev);
    j->ev = NULL;
    ingest_commit(j);
}

static void provider_next(struct job *j);

/* Parse an OpenAI embeddings response into n unit vectors at out (or
 * into the prep chunks at the job's cursor). */
static bool parse_embeddings(struct job *j, const char *body, size_t len,
                             size_t n, float **out, char err[OMNI_ERR_LEN])
{
    json_t *v = json_loadb(body, len, 0, NULL);
    json_t *data = json_object_get(v, "data");
    if (!json_is_array(data) || json_array_size(data) != n) {
        snprintf(err, OMNI_ERR_LEN,
                 "embeddings reply from '%.64s' has no 'data' of %zu items",
                 j->g->embedder, n);
        json_decref(v);
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(data, i);
        json_t *ix = json_object_get(it, "index");
        size_t at = json_is_integer(ix) ? (size_t)json_integer_value(ix) : i;
        json_t *emb = json_object_get(it, "embedding");
        size_t d = json_array_size(emb);
        if (at >= n || !json_is_array(emb) || d == 0 || d > 65536 ||
            (j->dim && d != j->dim)) {
            snprintf(err, OMNI_ERR_LEN,
                     "embeddings reply from '%.64s': item %zu has %zu "
                     "dimensions, want %u",
                     j->g->embedder, i, d, j->dim);
            json_decref(v);
            return false;
        }
        j->dim = (uint32_t)d;
        float *dst = out[at];
        if (!dst && j->kind != J_INGEST) {
            j->qvec = omni_calloc(d, sizeof(float));
            dst = j->qvec;
        } else if (!dst) {
            /* First reply of an ingest: chunk vectors get their size. */
            struct omni_prep *p = j->preps[j->di];
            p->vecs = omni_realloc(p->vecs, (p->nchunks ? p->nchunks : 1) * d *
                                                sizeof(float));
            dst = p->vecs + (j->ci + at) * d;
        }
        for (size_t k = 0; k < d; k++)
            dst[k] = (float)json_number_value(json_array_get(emb, k));
        omni_vec_normalize(dst, (uint32_t)d);
    }
    json_decref(v);
    return true;
}

static void run_query(struct job *j);

static void on_provider(const struct omni_event *ev, void *arg)
{
    struct job *j = arg;
    j->sub_live = false;
    if (ev->type == OMNI_EVENT_ERROR) {
        fail(j, OMNI_E_UPSTREAM, "embedding with '%.64s' failed: %s: %.160s",
             j->g->embedder, ev->code, ev->message);
        return;
    }
    if (ev->type != OMNI_EVENT_FINAL)
        return;
    char err[OMNI_ERR_LEN];
    if (j->kind != J_INGEST) {
        float *out[1] = {NULL};
        j->dim = 0;
        if (!parse_embeddings(j, ev->body, ev->body_len, 1, out, err)) {
            fail(j, OMNI_E_UPSTREAM, "%s", err);
            return;
        }
        run_query(j);
        return;
    }
    struct omni_prep *p = j->preps[j->di];
    uint32_t dim0 = j->dim;
    float **out = omni_calloc(j->batch, sizeof *out);
    for (size_t i = 0; dim0 && p->vecs && i < j->batch; i++)
        out[i] = p->vecs + (j->ci + i) * dim0;
    bool ok = parse_embeddings(j, ev->body, ev->body_len, j->batch, out, err);
    omni_free(out);
    if (!ok) {
        fail(j, OMNI_E_UPSTREAM, "%s", err);
        return;
    }
    j->ci += j->batch;
    provider_next(j);
}

static void provider_send(struct job *j, json_t *input)
{
    json_t *body = json_pack("{s:s, s:o, s:s}", "model", j->g->embedder,
                             "input", input, "encoding_format", "float");
    char *s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    struct omni_request req = {
        .service = "llm", .op = "embeddings", .body = s, .body_len = strlen(s)};
    int rc = omni_worker_subcall(j->g->w, &req, on_provider, j, &j->sub_id);
    free(s);
    if (rc < 0) {
        fail(j, OMNI_E_UNAVAILABLE,
             "cannot reach the broker to embed with '%.64s'", j->g->embedder);
        return;
    }
    j->sub_live = true;
}

/* Next batch of an ingest's chunks through the llm service; batches
 * stay within one document so the reply lands in one vector array. */
static void provider_next(struct job *j)
{
    while (j->di < j->np && j->ci >= j->preps[j->di]->nchunks) {
        j->di++;
        j->ci = 0;
    }
    if (j->di >= j->np) {
        ingest_commit(j);
        return;
    }
    struct omni_prep *p = j->preps[j->di];
    json_t *input = json_array();
    struct omni_buf t = OMNI_BUF_INIT;
    j->batch = 0;
    for (size_t i = j->ci; i < p->nchunks && j->batch < EMBED_BATCH; i++) {
        omni_ingest_index_text(&p->chunks[i], &t);
        json_array_append_new(input, json_stringn(t.data, t.len));
        j->batch++;
    }
    omni_buf_release(&t);
    provider_send(j, input);
}

static void ingest_embed(struct job *j)
{
    j->di = j->ci = 0;
    if (j->local) {
        j->dim = j->g->local_dim;
        j->ev = evtimer_new(j->g->base, on_local_slice, j);
        struct timeval tv = {0, 0};
        evtimer_add(j->ev, &tv);
    } else {
        provider_next(j);
    }
}

/* ---- ingest: parsing ---- */

static void start_ingest(struct job *j, const json_t *docs,
                         const struct omni_chunk_opts *co)
{
    struct rag *g = j->g;
    struct omni_coll *c = coll_get(g, j->coll);
    if (c && !check_dims(j, c, j->local ? g->local_dim : 0))
        return;
    size_t n = json_array_size(docs);
    j->preps = omni_calloc(n ? n : 1, sizeof(struct omni_prep *));
    j->unchanged = json_array();
    struct omni_smap seen = OMNI_SMAP_INIT;
    for (size_t i = 0; i < n; i++) {
        struct omni_prep *p;
        char err[OMNI_ERR_LEN];
        enum omni_err rc = omni_ingest_prepare(json_array_get(docs, i), co,
                                               g->max_bytes, &p, err);
        if (rc != OMNI_OK) {
            omni_smap_free(&seen);
            fail(j, rc, "%s", err);
            return;
        }
        if (omni_smap_put(&seen, p->id, strlen(p->id), (void *)1)) {
            omni_smap_free(&seen);
            fail(j, OMNI_E_BAD_REQUEST,
                 "document '%.64s' appears twice in one request", p->id);
            omni_prep_free(p);
            return;
        }
        struct omni_doc *d = c ? omni_coll_doc(c, p->id, strlen(p->id)) : NULL;
        if (d && !strcmp(d->hash, p->hash)) {
            json_array_append_new(j->unchanged, json_string(p->id));
            omni_prep_free(p);
            continue;
        }
        j->preps[j->np++] = p;
    }
    omni_smap_free(&seen);
    if (!j->np) {
        ingest_reply(j);
        finish(j);
        return;
    }
    if (g->persist && !ready(j, true))
        return;
    ingest_embed(j);
}

static bool get_coll_name(struct job *j, const char *field, bool must_exist)
{
    const char *name = json_string_value(json_object_get(j->body, field));
    if (!valid_name(name)) {
        fail(j, OMNI_E_BAD_REQUEST,
             "bad '%s': want 1 to %d letters, digits, '_', '-' or '.'", field,
             NAME_MAX_LEN);
        return false;
    }
    j->coll = omni_strdup(name);
    if (must_exist && !coll_get(j->g, name)) {
        fail(j, OMNI_E_NOT_FOUND, "collection '%s' not found", name);
        return false;
    }
    return true;
}

static void op_ingest(struct job *j)
{
    if (!ready(j, true) || !get_coll_name(j, "collection", false))
        return;
    json_t *docs = json_object_get(j->body, "documents");
    if (!json_is_array(docs) || json_array_size(docs) == 0) {
        fail(j, OMNI_E_BAD_REQUEST,
             "bad 'documents': want a non-empty array of documents");
        return;
    }
    struct omni_chunk_opts co;
    char err[OMNI_ERR_LEN];
    if (omni_ingest_chunking(json_object_get(j->body, "chunking"),
                             &j->g->chunk_def, &co, err) != OMNI_OK) {
        fail(j, OMNI_E_BAD_REQUEST, "%s", err);
        return;
    }
    start_ingest(j, docs, &co);
}

/* ---- queries ---- */

static json_t *hit_json(const struct omni_qhit *h)
{
    const struct omni_cchunk *ch = h->chunk;
    json_t *o = json_pack(
        "{s:s, s:i, s:f, s:s%, s:O, s:{s:i, s:i}, s:{s:f, s:f}}", "document_id",
        ch->doc->id, "chunk_id", (int)ch->idx, "score", (double)h->score,
        "text", ch->text, ch->len, "metadata", ch->doc->metadata, "offsets",
        "start", (int)ch->start, "end", (int)ch->end, "scores", "bm25",
        (double)h->bm25, "vector", (double)h->vector);
    if (ch->heading)
        json_object_set_new(o, "heading", json_string(ch->heading));
    if (ch->page)
        json_object_set_new(o, "page", json_integer(ch->page));
    return o;
}

static void run_query(struct job *j)
{
    struct rag *g = j->g;
    struct omni_coll *c = coll_get(g, j->coll);
    if (!c) {
        if (j->kind == J_SEMGET) {
            reply_json(j, json_pack("{s:b}", "hit", 0));
            finish(j);
            return;
        }
        fail(j, OMNI_E_NOT_FOUND, "collection '%s' not found", j->coll);
        return;
    }
    if (j->qvec && !check_dims(j, c, j->local ? g->local_dim : j->dim))
        return;
    const char *mode = json_string_value(json_object_get(j->body, "mode"));
    const char *text = json_string_value(
        json_object_get(j->body, j->kind == J_SEMGET ? "text" : "query"));
    json_t *tk = json_object_get(j->body, "top_k");
    struct omni_query q = {
        .mode = j->kind == J_SEMGET                ? OMNI_Q_VECTOR
                : !mode || !strcmp(mode, "hybrid") ? OMNI_Q_HYBRID
                : !strcmp(mode, "bm25")            ? OMNI_Q_BM25
                                                   : OMNI_Q_VECTOR,
        .text = text,
        .len = strlen(text),
        .vec = j->qvec,
        .k = j->kind == J_SEMGET ? 1
             : tk                ? (size_t)json_integer_value(tk)
                                 : 5,
        .ef = (uint32_t)json_integer_value(json_object_get(j->body, "ef")),
        .filter = json_object_get(j->body, "filter"),
        .rrf_k = g->rrf_k,
        .w_bm25 = g->w_bm25,
        .w_vec = g->w_vec,
    };
    struct omni_qhit *hits = omni_malloc(q.k * sizeof *hits);
    size_t n = omni_coll_query(c, &q, hits);
    json_t *out;
    if (j->kind == J_SEMGET) {
        double th =
            json_is_number(json_object_get(j->body, "threshold"))
                ? json_number_value(json_object_get(j->body, "threshold"))
                : 0.9;
        bool hit = n && hits[0].score >= th;
        out = json_pack("{s:b}", "hit", hit);
        if (n)
            json_object_set_new(out, "score", json_real(hits[0].score));
        if (hit) {
            json_t *md = hits[0].chunk->doc->metadata;
            json_object_set(out, "value", json_object_get(md, "value"));
            json_object_set(out, "text", json_object_get(md, "text"));
        }
    } else if (j->kind == J_CONTEXT) {
        struct omni_buf ctx = OMNI_BUF_INIT;
        json_t *cites = json_array();
        for (size_t i = 0; i < n; i++) {
            const struct omni_cchunk *ch = hits[i].chunk;
            omni_buf_addf(&ctx, "%s[%zu] ", i ? "\n" : "", i + 1);
            omni_buf_add(&ctx, ch->text, ch->len);
            json_t *cte =
                json_pack("{s:i, s:s, s:i, s:f}", "n", (int)(i + 1),
                          "document_id", ch->doc->id, "chunk_id", (int)ch->idx,
                          "score", (double)hits[i].score);
            if (ch->heading)
                json_object_set_new(cte, "heading", json_string(ch->heading));
            json_array_append_new(cites, cte);
        }
        out = json_pack("{s:s%, s:o}", "context", ctx.data, ctx.len,
                        "citations", cites);
        omni_buf_release(&ctx);
    } else {
        json_t *res = json_array();
        for (size_t i = 0; i < n; i++)
            json_array_append_new(res, hit_json(&hits[i]));
        out = json_pack("{s:s, s:s, s:o, s:i}", "collection", j->coll, "mode",
                        q.mode == OMNI_Q_HYBRID ? "hybrid"
                        : q.mode == OMNI_Q_BM25 ? "bm25"
                                                : "vector",
                        "results", res, "worker", (int)getpid());
    }
    omni_free(hits);
    reply_json(j, out);
    finish(j);
}

/* Validate a query body, then embed (if needed) and run it. */
static void op_query(struct job *j)
{
    struct rag *g = j->g;
    bool sem = j->kind == J_SEMGET;
    if (!ready(j, false))
        return;
    if (sem) {
        const char *ns =
            json_string_value(json_object_get(j->body, "namespace"));
        if (!valid_name(ns)) {
            fail(j, OMNI_E_BAD_REQUEST,
                 "bad 'namespace': want 1 to %d letters, digits, '_', '-' "
                 "or '.'",
                 NAME_MAX_LEN);
            return;
        }
        size_t n = strlen(SEMCACHE_PREFIX) + strlen(ns) + 1;
        j->coll = omni_malloc(n);
        snprintf(j->coll, n, "%s%s", SEMCACHE_PREFIX, ns);
        j->local = true;
    } else if (!get_coll_name(j, "collection", true)) {
        return;
    }
    const char *field = sem ? "text" : "query";
    json_t *text = json_object_get(j->body, field);
    if (!json_is_string(text) || json_string_length(text) == 0) {
        fail(j, OMNI_E_BAD_REQUEST, "bad '%s': want a non-empty string", field);
        return;
    }
    json_t *tk = json_object_get(j->body, "top_k");
    if (tk && (!json_is_integer(tk) || json_integer_value(tk) < 1 ||
               json_integer_value(tk) > TOP_K_MAX)) {
        fail(j, OMNI_E_BAD_REQUEST, "bad 'top_k': want an integer in [1, %d]",
             TOP_K_MAX);
        return;
    }
    json_t *ef = json_object_get(j->body, "ef");
    if (ef && (!json_is_integer(ef) || json_integer_value(ef) < 1 ||
               json_integer_value(ef) > 100000)) {
        fail(j, OMNI_E_BAD_REQUEST, "bad 'ef': want an integer in [1, 100000]");
        return;
    }
    json_t *th = json_object_get(j->body, "threshold");
    if (th && (!json_is_number(th) || json_number_value(th) < -1 ||
               json_number_value(th) > 1)) {
        fail(j, OMNI_E_BAD_REQUEST,
             "bad 'threshold': want a number in "
             "[-1, 1]");
        return;
    }
    const char *mode = json_string_value(json_object_get(j->body, "mode"));
    if (json_object_get(j->body, "mode") &&
        (!mode || (strcmp(mode, "hybrid") && strcmp(mode, "bm25") &&
                   strcmp(mode, "vector")))) {
        fail(j, OMNI_E_BAD_REQUEST,
             "bad 'mode': want \"hybrid\", \"bm25\" or \"vector\"");
        return;
    }
    json_t *filter = json_object_get(j->body, "filter");
    char err[OMNI_ERR_LEN];
    if (filter && !json_is_null(filter) &&
        omni_filter_check(filter, err) != OMNI_OK) {
        fail(j, OMNI_E_BAD_REQUEST, "%s", err);
        return;
    }
    if (filter && json_is_null(filter))
        json_object_del(j->body, "filter");
    struct omni_coll *c = coll_get(g, j->coll);
    if (!c) {
        run_query(j); /* a semantic cache namespace never written */
        return;
    }
    bool bm25 = mode && !strcmp(mode, "bm25");
    if (bm25) {
        run_query(j);
        return;
    }
    if (strcmp(c->embedder, "local") == 0)
        j->local = true;
    if (!check_dims(j, c, j->local ? g->local_dim : 0))
        return;
    if (j->local) {
        j->qvec = omni_malloc(g->local_dim * sizeof(float));
        omni_coll_embed_query(c, g->local, json_string_value(text),
                              json_string_length(text), j->qvec);
        run_query(j);
        return;
    }
    provider_send(j, json_pack("[O]", text));
}

/* ---- delete and list ---- */

static void on_deleted(enum omni_err rc, const char *msg, void *arg)
{
    struct job *j = arg;
    struct rag *g = j->g;
    j->writing = false;
    g->writers--;
    if (rc == OMNI_OK) {
        remove_ids(coll_get(g, j->coll), j->ids);
        reply_json(j, json_pack("{s:s, s:O}", "collection", j->coll, "deleted",
                                j->ids));
    } else {
        reply_err(j, rc, msg);
    }
    job_free(j);
    maybe_free_store(g);
}

static void op_delete(struct job *j)
{
    struct rag *g = j->g;
    if (!ready(j, true) || !get_coll_name(j, "collection", true))
        return;
    json_t *id = json_object_get(j->body, "id");
    json_t *ids = json_object_get(j->body, "ids");
    if (json_is_string(id) && !ids)
        j->ids = json_pack("[O]", id);
    else if (!id && json_is_array(ids) && json_array_size(ids))
        j->ids = json_incref(ids);
    else {
        fail(j, OMNI_E_BAD_REQUEST,
             "bad 'id': want a document id (or 'ids', an array of them)");
        return;
    }
    struct omni_coll *c = coll_get(g, j->coll);
    size_t n = json_array_size(j->ids);
    const char **v = omni_calloc(n, sizeof *v);
    for (size_t i = 0; i < n; i++) {
        json_t *x = json_array_get(j->ids, i);
        v[i] = json_string_value(x);
        if (!v[i] || !omni_coll_doc(c, v[i], strlen(v[i]))) {
            omni_free(v);
            fail(j, OMNI_E_NOT_FOUND,
                 "document '%.128s' not found in collection '%s'",
                 json_is_string(x) ? json_string_value(x) : "(not a string)",
                 j->coll);
            return;
        }
    }
    if (!g->persist) {
        for (size_t i = 0; i < n; i++)
            omni_coll_remove(c, v[i], strlen(v[i]));
        omni_free(v);
        reply_json(j, json_pack("{s:s, s:O}", "collection", j->coll, "deleted",
                                j->ids));
        finish(j);
        return;
    }
    j->writing = true;
    g->writers++;
    omni_rstore_del(g->rs, j->coll, v, n, on_deleted, j);
    omni_free(v);
}

static int id_cmp(const void *a, const void *b)
{
    const struct omni_doc *const *x = a, *const *y = b;
    return strcmp((*x)->id, (*y)->id);
}

static void op_list(struct job *j)
{
    struct rag *g = j->g;
    if (!ready(j, false))
        return;
    if (!json_object_get(j->body, "collection")) {
        json_t *arr = json_array();
        size_t pos = 0;
        struct omni_smap_slot *s;
        while ((s = omni_smap_next(&g->colls, &pos))) {
            struct omni_coll *c = s->val;
            if (!strncmp(c->name, SEMCACHE_PREFIX, strlen(SEMCACHE_PREFIX)))
                continue;
            json_array_append_new(
                arr, json_pack("{s:s, s:I, s:I, s:i, s:s, s:s}", "name",
                               c->name, "documents", (json_int_t)c->docs.len,
                               "chunks", (json_int_t)c->nchunks, "dim",
                               (int)c->dim, "embedder", c->embedder, "index",
                               omni_vstore_current(c->vs)));
        }
        reply_json(j, json_pack("{s:o}", "collections", arr));
        finish(j);
        return;
    }
    if (!get_coll_name(j, "collection", true))
        return;
    struct omni_coll *c = coll_get(g, j->coll);
    const struct omni_doc **docs =
        omni_malloc((c->docs.len ? c->docs.len : 1) * sizeof(void *));
    size_t n = 0, pos = 0;
    struct omni_smap_slot *s;
    while ((s = omni_smap_next(&c->docs, &pos)))
        docs[n++] = s->val;
    qsort(docs, n, sizeof(void *), id_cmp);
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(
            arr, json_pack("{s:s, s:I, s:s, s:O, s:I, s:s, s:I}", "id",
                           docs[i]->id, "chunks", (json_int_t)docs[i]->nchunks,
                           "hash", docs[i]->hash, "metadata", docs[i]->metadata,
                           "bytes", (json_int_t)docs[i]->bytes, "content_type",
                           docs[i]->content_type, "ingested_ms",
                           (json_int_t)docs[i]->ingested_ms));
    omni_free(docs);
    reply_json(j, json_pack("{s:s, s:i, s:s, s:o, s:i}", "collection", c->name,
                            "dim", (int)c->dim, "embedder", c->embedder,
                            "documents", arr, "worker", (int)getpid()));
    finish(j);
}

/* ---- semantic cache ---- */

static void op_semput(struct job *j)
{
    if (!ready(j, true))
        return;
    const char *ns = json_string_value(json_object_get(j->body, "namespace"));
    json_t *text = json_object_get(j->body, "text");
    json_t *value = json_object_get(j->body, "value");
    if (!valid_name(ns)) {
        fail(j, OMNI_E_BAD_REQUEST,
             "bad 'namespace': want 1 to %d letters, digits, '_', '-' or '.'",
             NAME_MAX_LEN);
        return;
    }
    if (!json_is_string(text) || json_string_length(text) == 0 ||
        json_string_length(text) > SEMCACHE_TEXT_MAX) {
        fail(j, OMNI_E_BAD_REQUEST,
             "bad 'text': want a non-empty string of at most %d bytes",
             SEMCACHE_TEXT_MAX);
        return;
    }
    if (!value) {
        fail(j, OMNI_E_BAD_REQUEST, "missing 'value'");
        return;
    }
    size_t n = strlen(SEMCACHE_PREFIX) + strlen(ns) + 1;
    j->coll = omni_malloc(n);
    snprintf(j->coll, n, "%s%s", SEMCACHE_PREFIX, ns);
    j->local = true;
    /* One chunk per entry, keyed by a hash of the text. */
    char id[17];
    snprintf(id, sizeof id, "%016llx",
             (unsigned long long)omni_hash64(json_string_value(text),
                                             json_string_length(text), 7));
    json_t *docs = json_pack("[{s:s, s:O, s:{s:O, s:O}}]", "id", id, "text",
                             text, "metadata", "value", value, "text", text);
    struct omni_chunk_opts co = {OMNI_CHUNK_CHARS, SEMCACHE_TEXT_MAX * 2, 0,
                                 false};
    start_ingest(j, docs, &co);
    json_decref(docs);
}

static void on_evicted(enum omni_err rc, const char *msg, void *arg)
{
    struct job *j = arg;
    struct rag *g = j->g;
    g->writers--;
    j->writing = false;
    if (rc == OMNI_OK)
        remove_ids(coll_get(g, j->coll), j->ids);
    else
        omni_warn("rag: semantic cache eviction in '%s' failed: %s", j->coll,
                  msg);
    job_free(j);
    maybe_free_store(g);
}

/* Drop the oldest entries of a cache namespace over semcache_max. */
static void semcache_evict(struct rag *g, const char *name)
{
    struct omni_coll *c = coll_get(g, name);
    if (!c || c->docs.len <= g->semcache_max)
        return;
    size_t over = c->docs.len - g->semcache_max;
    const struct omni_doc **docs = omni_malloc(c->docs.len * sizeof(void *));
    size_t n = 0, pos = 0;
    struct omni_smap_slot *s;
    while ((s = omni_smap_next(&c->docs, &pos)))
        docs[n++] = s->val;
    /* Partial selection of the oldest: fine for a small excess. */
    json_t *ids = json_array();
    for (size_t k = 0; k < over; k++) {
        size_t m = k;
        for (size_t i = k + 1; i < n; i++)
            if (docs[i]->ingested_ms < docs[m]->ingested_ms)
                m = i;
        const struct omni_doc *t = docs[k];
        docs[k] = docs[m];
        docs[m] = t;
        json_array_append_new(ids, json_string(docs[k]->id));
    }
    omni_free(docs);
    if (!g->persist) {
        remove_ids(c, ids);
        json_decref(ids);
        return;
    }
    if (!g->rs) {
        json_decref(ids); /* shutting down: the next worker evicts */
        return;
    }
    struct job *j = omni_calloc(1, sizeof *j);
    j->g = g;
    j->kind = J_DELETE;
    j->coll = omni_strdup(name);
    j->ids = ids;
    j->writing = true;
    g->writers++;
    const char **v = omni_calloc(over, sizeof *v);
    for (size_t i = 0; i < over; i++)
        v[i] = json_string_value(json_array_get(ids, i));
    omni_rstore_del(g->rs, name, v, over, on_evicted, j);
    omni_free(v);
}

/* ---- the worker ---- */

static void on_request(struct omni_wreq *r)
{
    struct rag *g = the_rag;
    struct job *j = omni_calloc(1, sizeof *j);
    j->g = g;
    j->r = r;
    j->local = !g->provider;
    omni_wreq_set_data(r, j);
    struct omni_str op = omni_wreq_op(r);
    struct omni_str b = omni_wreq_body(r);
    json_error_t e;
    j->body = json_loadb(b.p, b.n, JSON_ALLOW_NUL, &e);
    if (!json_is_object(j->body)) {
        if (j->body)
            fail(j, OMNI_E_BAD_REQUEST, "body: want a JSON object");
        else
            fail(j, OMNI_E_BAD_REQUEST,
                 "body is not valid JSON: %s (line %d, column %d)", e.text,
                 e.line, e.column);
        return;
    }
    if (omni_str_eq(op, "ingest")) {
        j->kind = J_INGEST;
        op_ingest(j);
    } else if (omni_str_eq(op, "query")) {
        j->kind = J_QUERY;
        op_query(j);
    } else if (omni_str_eq(op, "context")) {
        j->kind = J_CONTEXT;
        op_query(j);
    } else if (omni_str_eq(op, "delete")) {
        j->kind = J_DELETE;
        op_delete(j);
    } else if (omni_str_eq(op, "list")) {
        op_list(j);
    } else if (omni_str_eq(op, "semcache_get")) {
        j->kind = J_SEMGET;
        op_query(j);
    } else if (omni_str_eq(op, "semcache_put")) {
        j->kind = J_SEMPUT;
        op_semput(j);
    } else {
        fail(j, OMNI_E_UNSUPPORTED, "rag has no operation '%.*s'",
             (int)(op.n > 64 ? 64 : op.n), op.p);
    }
}

static void on_cancel(struct omni_wreq *r)
{
    struct job *j = omni_wreq_data(r);
    if (!j)
        return;
    j->r = NULL;
    if (j->ev) {
        event_free(j->ev);
        j->ev = NULL;
    }
    if (j->sub_live) {
        omni_worker_subcancel(j->g->w, j->sub_id);
        j->sub_live = false;
    }
    if (!j->writing) {
        job_free(j);
        return;
    }
    /* Abandoned at the end of a drain: the loop will not run again, so
     * close Redis now; its pending replies come back as failures and
     * free the waiting jobs. */
    if (j->g->draining && j->g->rs) {
        struct omni_rstore *rs = j->g->rs;
        j->g->rs = NULL;
        omni_rstore_free(rs);
    }
}

static void on_shutdown(struct omni_worker *w)
{
    (void)w;
    the_rag->draining = true;
    maybe_free_store(the_rag);
}

static void on_stats(struct omni_worker *w, struct omni_buf *out)
{
    struct rag *g = the_rag;
    (void)w;
    size_t chunks = 0, pos = 0;
    struct omni_smap_slot *s;
    while ((s = omni_smap_next(&g->colls, &pos)))
        chunks += ((struct omni_coll *)s->val)->nchunks;
    omni_buf_addf(out, ",\"collections\":%zu,\"chunks\":%zu,\"redis\":\"%s\"",
                  g->colls.len, chunks,
                  g->rs        ? omni_rstore_state(g->rs)
                  : g->persist ? "closed"
                               : "none");
}

static int on_init(struct omni_worker *w)
{
    struct rag *g = the_rag;
    g->w = w;
    g->base = omni_worker_base(w);
    g->local_dim = (uint32_t)omni_cfg_int("rag.dim");
    g->local = omni_embed_new(g->local_dim, NULL);
    g->embedder = omni_strdup(omni_cfg_str("rag.embedder"));
    g->provider = strcmp(g->embedder, "local") != 0;
    if (g->provider && !strchr(g->embedder, '/')) {
        omni_error("rag: bad rag.embedder '%s': want local or provider/model",
                   g->embedder);
        return -1;
    }
    g->chunk_def = (struct omni_chunk_opts){
        OMNI_CHUNK_CHARS, (size_t)omni_cfg_int("rag.chunk_size"),
        (size_t)omni_cfg_int("rag.chunk_overlap"), false};
    if (g->chunk_def.overlap >= g->chunk_def.size) {
        omni_error("rag: rag.chunk_overlap (%zu) must be below "
                   "rag.chunk_size (%zu)",
                   g->chunk_def.overlap, g->chunk_def.size);
        return -1;
    }
    g->max_bytes = (size_t)omni_cfg_int("rag.max_doc_bytes");
    g->cp = (struct omni_coll_params){
        .bm25 = {1.2f, 0.75f, omni_cfg_bool("rag.bm25_stem"), true},
        .hnsw = {16, 200, (uint32_t)omni_cfg_int("rag.ef_search"), 0},
        .exact_below = (size_t)omni_cfg_int("rag.exact_below"),
    };
    g->semcache_max = (size_t)omni_cfg_int("rag.semcache_max");
    g->w_bm25 = 1;
    g->w_vec = (float)omni_cfg_int("rag.hybrid_vector_weight") / 100.0f;
    g->rrf_k = (float)omni_cfg_int("rag.rrf_k");
    const char *url = omni_cfg_str("redis_url");
    if (*url) {
        char err[OMNI_ERR_LEN];
        struct omni_rstore_cbs cbs = {on_loaded, on_changed};
        g->persist = true;
        g->rs = omni_rstore_new(g->base, url, &g->cp, &cbs, g, err);
        if (!g->rs) {
            omni_error("rag: %s", err);
            return -1;
        }
    } else {
        g->loaded = true;
        omni_info("rag: no redis_url: collections are kept in memory only");
    }
    omni_info("rag: embedder '%s'%s, chunks %zu/%zu characters", g->embedder,
              g->provider ? "" : " (feature hashing)", g->chunk_def.size,
              g->chunk_def.overlap);
    return 0;
}

int omni_rag_main(int argc, char **argv)
{
    static const struct omni_worker_def def = {
        .service = "rag",
        .init = on_init,
        .request = on_request,
        .cancel = on_cancel,
        .shutdown = on_shutdown,
        .stats = on_stats,
    };
    struct rag g = {0};
    the_rag = &g;
    int rc = omni_worker_main(argc, argv, &def);
    if (g.rs) {
        /* The loop is gone: hiredis cannot be released cleanly. */
        omni_warn("rag: redis connection left open at exit");
    }
    colls_free(&g.colls);
    omni_embed_free(g.local);
    omni_free(g.embedder);
    the_rag = NULL;
    return rc;
}
