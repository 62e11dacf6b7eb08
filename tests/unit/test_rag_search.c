/*
 * test_rag_search - the local embedder, BM25 against hand-computed
 * scores, reciprocal rank fusion, metadata filters, and a collection's
 * put/replace/remove and query paths with provenance.
 */
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "bm25.h"
#include "coll.h"
#include "embed.h"
#include "ingest.h"
#include "omni_alloc.h"
#include "smap.h"
#include "tok.h"
#include "unit.h"

static float cosine(const float *a, const float *b, uint32_t d)
{
    return omni_vec_dot(a, b, d);
}

static void test_embed_properties(void)
{
    struct omni_embedder *e = omni_embed_new(384, NULL);
    float a[384], a2[384], b[384], c[384], z[384];
    const char *ta = "The quick brown fox jumps over the lazy dog";
    omni_embed_one(e, ta, strlen(ta), a);
    omni_embed_one(e, ta, strlen(ta), a2);
    for (int i = 0; i < 384; i++) /* deterministic */
        CU_ASSERT_EQUAL(a[i], a2[i]);
    double norm = 0;
    for (int i = 0; i < 384; i++)
        norm += (double)a[i] * a[i];
    CU_ASSERT_DOUBLE_EQUAL(norm, 1.0, 1e-5); /* unit length */
    const char *tb = "A quick brown fox leaped over a sleepy dog";
    const char *tc = "Stock markets closed higher on strong bank earnings";
    omni_embed_one(e, tb, strlen(tb), b);
    omni_embed_one(e, tc, strlen(tc), c);
    float sim = cosine(a, b, 384), far = cosine(a, c, 384);
    fprintf(stderr, "similar %.3f, unrelated %.3f\n", sim, far);
    CU_ASSERT(sim > 0.4f && sim < 0.99f);
    CU_ASSERT(sim > far + 0.3f);
    omni_embed_one(e, "the of and", 10, z); /* stop words only */
    for (int i = 0; i < 384; i++)
        CU_ASSERT_EQUAL(z[i], 0);
    omni_embed_free(e);
    /* The dimension is a parameter; batches equal single calls. */
    e = omni_embed_new(64, NULL);
    CU_ASSERT_EQUAL(omni_embed_dim(e), 64);
    const char *texts[] = {ta, tb};
    size_t lens[] = {strlen(ta), strlen(tb)};
    float batch[128], one[64];
    omni_embed_batch(e, texts, lens, 2, batch);
    omni_embed_one(e, tb, strlen(tb), one);
    for (int i = 0; i < 64; i++)
        CU_ASSERT_EQUAL(batch[64 + i], one[i]);
    omni_embed_free(e);
}

static float double_weight(const char *w, size_t n, void *arg)
{
    (void)arg;
    return n == 3 && !memcmp(w, "fox", 3) ? 10.0f : 1.0f;
}

static void test_embed_weighted(void)
{
    struct omni_embedder *e = omni_embed_new(384, NULL);
    float q[384], qw[384], fox[384], dog[384];
    omni_embed_one(e, "fox dog", 7, q);
    omni_embed_weighted(e, "fox dog", 7, double_weight, NULL, qw);
    omni_embed_one(e, "fox", 3, fox);
    omni_embed_one(e, "dog", 3, dog);
    /* Weighting "fox" pulls the query towards it. */
    CU_ASSERT(cosine(qw, fox, 384) > cosine(q, fox, 384));
    CU_ASSERT(cosine(qw, dog, 384) < cosine(q, dog, 384));
    omni_embed_free(e);
}

static void collect(const char *w, size_t n, void *arg)
{
    struct omni_buf *b = arg;
    omni_buf_add(b, w, n);
    omni_buf_addch(b, '|');
}

static void test_tokenizer(void)
{
    struct omni_buf b = OMNI_BUF_INIT;
    struct omni_tok *t = omni_tok_new(true, true);
    omni_tok_each(t, "The Running dogs' CAF\xc3\x89 x-ray, 42", 33, collect,
                  &b);
    CU_ASSERT_STRING_EQUAL(b.data, "run|dog|caf\xc3\x89|x|ray|42|");
    omni_tok_free(t);
    omni_buf_reset(&b);
    t = omni_tok_new(false, false);
    omni_tok_each(t, "The Running", 11, collect, &b);
    CU_ASSERT_STRING_EQUAL(b.data, "the|running|");
    omni_tok_free(t);
    omni_buf_release(&b);
}

/* Corpus: d0 "a b c" (3 words), d1 "a a d" (3), d2 "b e f g h i" (6);
 * N = 3, avgdl = 4, k1 = 1.2, b = 0.75, Lucene idf.  Hand values:
 *   idf(a) = idf(b) = ln(1 + 1.5/2.5) = 0.4700036
 *   idf(e) = ln(1 + 2.5/1.5) = 0.9808293
 *   "a": d1 = 0.4700036 * 2 * 2.2 / (2 + 0.975) = 0.6951314
 *        d0 = 0.4700036 * 2.2 / 1.975 = 0.5235484
 *   "b e": d2 = (0.4700036 + 0.9808293) * 2.2 / 2.65 = 1.2044651
 *          d0 = 0.5235484 */
static void test_bm25_hand(void)
{
    struct omni_bm25_params p = {1.2f, 0.75f, false, false};
    struct omni_bm25 *b = omni_bm25_new(&p);
    omni_bm25_add(b, 0, "a b c", 5);
    omni_bm25_add(b, 1, "a a d", 5);
    omni_bm25_add(b, 2, "b e f g h i", 11);
    struct omni_hit h[5];
    struct omni_vsearch s = {5, 0, NULL, NULL};
    CU_ASSERT_EQUAL(omni_bm25_search(b, "a", 1, &s, h), 2);
    CU_ASSERT_EQUAL(h[0].label, 1);
    CU_ASSERT_DOUBLE_EQUAL(-h[0].dist, 0.6951314, 1e-5);
    CU_ASSERT_EQUAL(h[1].label, 0);
    CU_ASSERT_DOUBLE_EQUAL(-h[1].dist, 0.5235484, 1e-5);
    CU_ASSERT_EQUAL(omni_bm25_search(b, "B E", 3, &s, h), 2);
    CU_ASSERT_EQUAL(h[0].label, 2);
    CU_ASSERT_DOUBLE_EQUAL(-h[0].dist, 1.2044651, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(-h[1].dist, 0.5235484, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(omni_bm25_idf(b, "e", 1), 0.9808293, 1e-5);
    CU_ASSERT_EQUAL(omni_bm25_search(b, "zzz", 3, &s, h), 0);
    /* Removing d1 changes N, df and avgdl: "a" now only in d0, N = 2,
     * avgdl = 4.5: idf = ln(1 + 1.5/1.5) = 0.6931472, score =
     * 0.6931472 * 2.2 / (1 + 1.2 (0.25 + 0.75 * 3 / 4.5)) = 0.8157969 */
    CU_ASSERT_EQUAL(omni_bm25_remove(b, 1), 0);
    CU_ASSERT_EQUAL(omni_bm25_remove(b, 1), -1);
    CU_ASSERT_EQUAL(omni_bm25_count(b), 2);
    CU_ASSERT_EQUAL(omni_bm25_search(b, "a", 1, &s, h), 1);
    CU_ASSERT_DOUBLE_EQUAL(-h[0].dist, 0.8025915, 1e-5);
    /* Re-adding a label replaces it. */
    omni_bm25_add(b, 0, "z", 1);
    CU_ASSERT_EQUAL(omni_bm25_search(b, "a", 1, &s, h), 0);
    CU_ASSERT_EQUAL(omni_bm25_count(b), 2);
    omni_bm25_free(b);
}

static void test_rrf(void)
{
    struct omni_hit a[] = {{1, 0}, {2, 0}, {3, 0}};
    struct omni_hit b[] = {{3, 0}, {1, 0}, {4, 0}};
    struct omni_hit out[4];
    size_t n = omni_rrf(a, 3, 1, b, 3, 1, 60, out, 4);
    CU_ASSERT_EQUAL(n, 4);
    /* 1: 1/61 + 1/62; 3: 1/63 + 1/61; 2: 1/62; 4: 1/63 */
    CU_ASSERT_EQUAL(out[0].label, 1);
    CU_ASSERT_DOUBLE_EQUAL(-out[0].dist, 1.0 / 61 + 1.0 / 62, 1e-6);
    CU_ASSERT_EQUAL(out[1].label, 3);
    CU_ASSERT_DOUBLE_EQUAL(-out[1].dist, 1.0 / 63 + 1.0 / 61, 1e-6);
    CU_ASSERT_EQUAL(out[2].label, 2);
    CU_ASSERT_EQUAL(out[3].label, 4);
    /* Weights: the second list alone decides when the first weighs 0. */
    n = omni_rrf(a, 3, 0, b, 3, 1, 60, out, 2);
    CU_ASSERT_EQUAL(n, 2);
    CU_ASSERT_EQUAL(out[0].label, 3);
    CU_ASSERT_EQUAL(out[1].label, 1);
}

static void test_filters(void)
{
    json_t *md =
        json_pack("{s:s, s:i, s:b}", "lang", "en", "year", 2020, "draft", 0);
    static const struct {
        const char *filter;
        bool match;
    } cases[] = {
        {"{}", true},
        {"{\"lang\":\"en\"}", true},
        {"{\"lang\":\"de\"}", false},
        {"{\"lang\":\"en\",\"year\":2020}", true},
        {"{\"lang\":\"en\",\"year\":2021}", false},
        {"{\"year\":{\"$in\":[2019,2020]}}", true},
        {"{\"year\":{\"$in\":[2019]}}", false},
        {"{\"year\":{\"$nin\":[2019]}}", true},
        {"{\"lang\":{\"$ne\":\"en\"}}", false},
        {"{\"lang\":{\"$eq\":\"en\"}}", true},
        {"{\"missing\":\"x\"}", false},
        {"{\"missing\":{\"$ne\":\"x\"}}", true},
        {"{\"draft\":false}", true},
    };
    char err[OMNI_ERR_LEN];
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        json_t *f = json_loads(cases[i].filter, 0, NULL);
        CU_ASSERT_EQUAL(omni_filter_check(f, err), OMNI_OK);
        bool got = omni_filter_match(f, md);
        if (got != cases[i].match)
            fprintf(stderr, "filter %s: got %d, want %d\n", cases[i].filter,
                    got, cases[i].match);
        CU_ASSERT_EQUAL(got, cases[i].match);
        json_decref(f);
    }
    static const char *const bad[] = {"[1]", "{\"a\":{\"$gt\":1}}",
                                      "{\"a\":{\"$in\":1}}",
                                      "{\"a\":{\"$in\":[1],\"$eq\":1}}"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        json_t *f = json_loads(bad[i], 0, NULL);
        CU_ASSERT_EQUAL(omni_filter_check(f, err), OMNI_E_BAD_REQUEST);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "filter"));
        json_decref(f);
    }
    json_decref(md);
}

static struct omni_prep *make(struct omni_embedder *e, const char *json)
{
    json_t *doc = json_loads(json, 0, NULL);
    struct omni_chunk_opts co = {OMNI_CHUNK_CHARS, 60, 20, false};
    struct omni_prep *p = NULL;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL(omni_ingest_prepare(doc, &co, 1 << 20, &p, err), OMNI_OK);
    json_decref(doc);
    if (p)
        omni_ingest_embed_local(e, p);
    return p;
}

static void put(struct omni_coll *c, struct omni_embedder *e, const char *json)
{
    struct omni_prep *p = make(e, json);
    omni_coll_put(c, p);
    omni_prep_free(p);
}

static size_t query(struct omni_coll *c, struct omni_embedder *e,
                    enum omni_qmode m, const char *text, const char *filter,
                    struct omni_qhit *out, size_t k)
{
    float v[384];
    omni_coll_embed_query(c, e, text, strlen(text), v);
    json_t *f = filter ? json_loads(filter, 0, NULL) : NULL;
    struct omni_query q = {.mode = m,
                           .text = text,
                           .len = strlen(text),
                           .vec = v,
                           .k = k,
                           .filter = f};
    size_t n = omni_coll_query(c, &q, out);
    json_decref(f);
    return n;
}

static void test_collection(void)
{
    struct omni_embedder *e = omni_embed_new(384, NULL);
    struct omni_coll *c = omni_coll_new("t", 384, "local", NULL);
    put(c, e,
        "{\"id\":\"cats\",\"text\":\"Cats purr and sleep in the sun. "
        "Kittens chase string all day long.\",\"metadata\":"
        "{\"kind\":\"pet\"}}");
    put(c, e,
        "{\"id\":\"rockets\",\"text\":\"Rockets burn fuel to reach "
        "orbit.\",\"metadata\":{\"kind\":\"space\"}}");
    put(c, e,
        "{\"id\":\"dogs\",\"text\":\"Dogs bark at the mail carrier.\","
        "\"metadata\":{\"kind\":\"pet\"}}");
    CU_ASSERT_EQUAL(c->docs.len, 3);
    CU_ASSERT_EQUAL(c->nchunks, 4); /* cats has two chunks */
    struct omni_qhit h[10];
    for (int m = 0; m < 3; m++) {
        size_t n =
            query(c, e, (enum omni_qmode)m, "rockets orbit fuel", NULL, h, 3);
        CU_ASSERT(n >= 1);
        CU_ASSERT_STRING_EQUAL(h[0].chunk->doc->id, "rockets");
        CU_ASSERT_EQUAL(h[0].chunk->idx, 0);
        CU_ASSERT_EQUAL(h[0].chunk->start, 0);
        CU_ASSERT_EQUAL(h[0].chunk->end, 33);
    }
    /* Provenance of the second cats chunk. */
    size_t n = query(c, e, OMNI_Q_BM25, "kittens string", NULL, h, 1);
    CU_ASSERT_EQUAL(n, 1);
    CU_ASSERT_STRING_EQUAL(h[0].chunk->doc->id, "cats");
    CU_ASSERT_EQUAL(h[0].chunk->idx, 1);
    CU_ASSERT_STRING_EQUAL(h[0].chunk->text,
                           "Kittens chase string all day long.");
    CU_ASSERT_EQUAL(h[0].chunk->start, 32);
    /* Filters apply in every mode. */
    for (int m = 0; m < 3; m++) {
        n = query(c, e, (enum omni_qmode)m, "rockets orbit fuel",
                  "{\"kind\":\"pet\"}", h, 10);
        for (size_t i = 0; i < n; i++)
            CU_ASSERT_STRING_NOT_EQUAL(h[i].chunk->doc->id, "rockets");
    }
    /* Replace: the new version's words, not the old ones. */
    put(c, e, "{\"id\":\"rockets\",\"text\":\"Sailing boats use the wind.\"}");
    CU_ASSERT_EQUAL(c->docs.len, 3);
    CU_ASSERT_EQUAL(c->nchunks, 4);
    n = query(c, e, OMNI_Q_BM25, "orbit", NULL, h, 5);
    CU_ASSERT_EQUAL(n, 0);
    n = query(c, e, OMNI_Q_BM25, "sailing", NULL, h, 5);
    CU_ASSERT_EQUAL(n, 1);
    /* Remove. */
    CU_ASSERT_EQUAL(omni_coll_remove(c, "dogs", 4), 0);
    CU_ASSERT_EQUAL(omni_coll_remove(c, "dogs", 4), -1);
    CU_ASSERT_EQUAL(c->nchunks, 3);
    n = query(c, e, OMNI_Q_VECTOR, "dogs bark", NULL, h, 10);
    CU_ASSERT_EQUAL(n, 3);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_STRING_NOT_EQUAL(h[i].chunk->doc->id, "dogs");
    omni_coll_free(c);
    omni_embed_free(e);
}

static void test_smap(void)
{
    struct omni_smap m = OMNI_SMAP_INIT;
    char k[16];
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "key%d", i);
        CU_ASSERT_PTR_NULL(omni_smap_put(&m, k, strlen(k), (void *)k));
    }
    CU_ASSERT_EQUAL(m.len, 1000);
    /* Delete every third key: the rest must stay reachable (the
     * backward shift must not lose entries of a probe run). */
    for (int i = 0; i < 1000; i += 3) {
        snprintf(k, sizeof k, "key%d", i);
        CU_ASSERT_PTR_NOT_NULL(omni_smap_del(&m, k, strlen(k)));
        CU_ASSERT_PTR_NULL(omni_smap_del(&m, k, strlen(k)));
    }
    size_t found = 0;
    for (int i = 0; i < 1000; i++) {
        snprintf(k, sizeof k, "key%d", i);
        bool in = omni_smap_get(&m, k, strlen(k)) != NULL;
        CU_ASSERT_EQUAL(in, i % 3 != 0);
        found += in;
    }
    CU_ASSERT_EQUAL(found, m.len);
    size_t pos = 0, n = 0;
    while (omni_smap_next(&m, &pos))
        n++;
    CU_ASSERT_EQUAL(n, m.len);
    int v = 1;
    CU_ASSERT_PTR_NOT_NULL(omni_smap_put(&m, "key1", 4, &v));
    CU_ASSERT_PTR_EQUAL(omni_smap_get(&m, "key1", 4), &v);
    CU_ASSERT_NOT_EQUAL(omni_hash64("a", 1, 0), omni_hash64("a", 1, 1));
    omni_smap_free(&m);
}

static CU_TestInfo search_tests[] = {
    {"string map", test_smap},
    {"embedder properties", test_embed_properties},
    {"embedder weights", test_embed_weighted},
    {"tokenizer", test_tokenizer},
    {"bm25 hand-computed", test_bm25_hand},
    {"rrf", test_rrf},
    {"filters", test_filters},
    {"collection", test_collection},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"rag_search", NULL, NULL, NULL, NULL, search_tests},
    CU_SUITE_INFO_NULL,
};
