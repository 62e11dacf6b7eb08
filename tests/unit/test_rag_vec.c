/*
 * test_rag_vec - the vector stores behind struct omni_vstore (flat,
 * HNSW, auto): the same conformance checks on each, HNSW recall against
 * exact search on random data, tombstones and rebuild, filters.
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "omni_alloc.h"
#include "unit.h"
#include "vec.h"

static uint64_t seed = 42;

static float rnd(void)
{
    seed ^= seed << 13;
    seed ^= seed >> 7;
    seed ^= seed << 17;
    return (float)(seed >> 40) / (float)(1 << 24) * 2 - 1;
}

static float *random_unit(size_t n, uint32_t dim)
{
    float *v = omni_malloc(n * dim * sizeof *v);
    for (size_t i = 0; i < n * dim; i++)
        v[i] = rnd();
    for (size_t i = 0; i < n; i++)
        omni_vec_normalize(v + i * dim, dim);
    return v;
}

static void test_kernels(void)
{
    float a[19], b[19];
    double dot = 0, l2 = 0;
    for (int i = 0; i < 19; i++) {
        a[i] = (float)i * 0.5f;
        b[i] = 3.0f - (float)i;
        dot += (double)a[i] * b[i];
        l2 += ((double)a[i] - b[i]) * ((double)a[i] - b[i]);
    }
    CU_ASSERT_DOUBLE_EQUAL(omni_vec_dot(a, b, 19), dot, 1e-3);
    CU_ASSERT_DOUBLE_EQUAL(omni_vec_l2sq(a, b, 19), l2, 1e-2);
    omni_vec_normalize(a, 19);
    CU_ASSERT_DOUBLE_EQUAL(omni_vec_dot(a, a, 19), 1.0, 1e-5);
    float z[3] = {0, 0, 0};
    omni_vec_normalize(z, 3);
    CU_ASSERT_EQUAL(z[0], 0);
}

typedef struct omni_vstore *(*make_fn)(uint32_t dim);

static struct omni_vstore *mk_flat(uint32_t d)
{
    return omni_vstore_flat(d, OMNI_METRIC_IP);
}

static struct omni_vstore *mk_hnsw(uint32_t d)
{
    struct omni_hnsw_params p = {16, 200, 64, 7};
    return omni_vstore_hnsw(d, OMNI_METRIC_IP, &p);
}

static struct omni_vstore *mk_auto(uint32_t d)
{
    return omni_vstore_auto(d, OMNI_METRIC_IP, NULL, 50);
}

static bool even_only(uint32_t label, void *arg)
{
    (void)arg;
    return label % 2 == 0;
}

static void count_each(uint32_t label, const float *v, void *arg)
{
    size_t *n = arg;
    (void)v;
    (*n)++;
    CU_ASSERT(label < 1000);
}

/* The interface contract, the same for every store. */
static void conformance(make_fn mk, const char *name)
{
    uint32_t dim = 16;
    size_t n = 300;
    float *v = random_unit(n, dim);
    struct omni_vstore *vs = mk(dim);
    CU_ASSERT_EQUAL(vs->dim, dim);
    struct omni_hit hits[5];
    struct omni_vsearch s = {5, 0, NULL, NULL};
    CU_ASSERT_EQUAL(vs->search(vs, v, &s, hits), 0);
    for (size_t i = 0; i < n; i++)
        CU_ASSERT_EQUAL(vs->add(vs, (uint32_t)i, v + i * dim), 0);
    CU_ASSERT_EQUAL(vs->count(vs), n);
    /* Each vector finds itself first, with cosine 1. */
    size_t self = 0;
    for (size_t i = 0; i < n; i++) {
        size_t k = vs->search(vs, v + i * dim, &s, hits);
        CU_ASSERT_EQUAL(k, 5);
        self += hits[0].label == i;
        CU_ASSERT(hits[0].dist <= hits[1].dist);
    }
    if (self != n)
        fprintf(stderr, "%s: %zu of %zu found themselves\n", name, self, n);
    CU_ASSERT_EQUAL(self, n);
    CU_ASSERT_DOUBLE_EQUAL(omni_vstore_score(vs, 0.0f), 1.0, 1e-6);
    /* Replace: label 3 now holds vector 10. */
    vs->add(vs, 3, v + 10 * dim);
    CU_ASSERT_EQUAL(vs->count(vs), n);
    vs->search(vs, v + 10 * dim, &s, hits);
    CU_ASSERT(hits[0].label == 3 || hits[0].label == 10);
    CU_ASSERT(hits[1].label == 3 || hits[1].label == 10);
    /* Remove: gone from results and count; twice is an error. */
    CU_ASSERT_EQUAL(vs->remove(vs, 7), 0);
    CU_ASSERT_EQUAL(vs->remove(vs, 7), -1);
    CU_ASSERT_EQUAL(vs->remove(vs, 5000), -1);
    CU_ASSERT_EQUAL(vs->count(vs), n - 1);
    vs->search(vs, v + 7 * dim, &s, hits);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_NOT_EQUAL(hits[i].label, 7);
    /* Filter: only even labels come back. */
    struct omni_vsearch sf = {5, 0, even_only, NULL};
    CU_ASSERT_EQUAL(vs->search(vs, v + 11 * dim, &sf, hits), 5);
    for (int i = 0; i < 5; i++)
        CU_ASSERT_EQUAL(hits[i].label % 2, 0);
    size_t seen = 0;
    vs->each(vs, count_each, &seen);
    CU_ASSERT_EQUAL(seen, n - 1);
    vs->free(vs);
    omni_free(v);
}

static void test_conformance(void)
{
    conformance(mk_flat, "flat");
    conformance(mk_hnsw, "hnsw");
    conformance(mk_auto, "auto");
}

static void test_auto_switch(void)
{
    uint32_t dim = 8;
    float *v = random_unit(100, dim);
    struct omni_vstore *vs = omni_vstore_auto(dim, OMNI_METRIC_IP, NULL, 40);
    for (uint32_t i = 0; i < 39; i++)
        vs->add(vs, i, v + i * dim);
    CU_ASSERT_STRING_EQUAL(omni_vstore_current(vs), "flat");
    vs->add(vs, 39, v + 39 * dim);
    CU_ASSERT_STRING_EQUAL(omni_vstore_current(vs), "hnsw");
    CU_ASSERT_EQUAL(vs->count(vs), 40);
    for (uint32_t i = 0; i < 21; i++)
        vs->remove(vs, i);
    CU_ASSERT_STRING_EQUAL(omni_vstore_current(vs), "flat");
    CU_ASSERT_EQUAL(vs->count(vs), 19);
    vs->free(vs);
    omni_free(v);
}

static double recall(struct omni_vstore *h, struct omni_vstore *f,
                     const float *q, size_t nq, uint32_t dim, uint32_t ef)
{
    struct omni_hit a[10], b[10];
    struct omni_vsearch s = {10, ef, NULL, NULL};
    size_t found = 0;
    for (size_t i = 0; i < nq; i++) {
        size_t na = h->search(h, q + i * dim, &s, a);
        size_t nb = f->search(f, q + i * dim, &s, b);
        for (size_t x = 0; x < na; x++)
            for (size_t y = 0; y < nb; y++)
                found += a[x].label == b[y].label;
    }
    return (double)found / (double)(nq * 10);
}

static void test_hnsw_recall(void)
{
    uint32_t dim = 24;
    size_t n = 4000, nq = 100;
    float *v = random_unit(n, dim);
    float *q = random_unit(nq, dim);
    struct omni_vstore *h = mk_hnsw(dim);
    struct omni_vstore *f = mk_flat(dim);
    for (size_t i = 0; i < n; i++) {
        h->add(h, (uint32_t)i, v + i * dim);
        f->add(f, (uint32_t)i, v + i * dim);
    }
    double r = recall(h, f, q, nq, dim, 64);
    double r10 = recall(h, f, q, nq, dim, 10);
    fprintf(stderr,
            "hnsw recall@10 on %zu random %u-d: ef=64 %.3f, "
            "ef=10 %.3f\n",
            n, dim, r, r10);
    CU_ASSERT(r >= 0.95);
    CU_ASSERT(r >= r10);
    /* Delete a third: tombstones, then a rebuild; recall holds. */
    for (size_t i = 0; i < n; i += 3) {
        h->remove(h, (uint32_t)i);
        f->remove(f, (uint32_t)i);
    }
    CU_ASSERT_EQUAL(h->count(h), f->count(f));
    CU_ASSERT(omni_hnsw_tombstones(h) < n / 3);
    r = recall(h, f, q, nq, dim, 64);
    fprintf(stderr, "after deleting a third: %.3f\n", r);
    CU_ASSERT(r >= 0.95);
    h->free(h);
    f->free(f);
    omni_free(v);
    omni_free(q);
}

static void test_l2(void)
{
    uint32_t dim = 4;
    float pts[] = {0, 0, 0, 0, 1, 0, 0, 0, 5, 5, 5, 5, 2, 0, 0, 0};
    struct omni_vstore *h = omni_vstore_hnsw(dim, OMNI_METRIC_L2, NULL);
    for (uint32_t i = 0; i < 4; i++)
        h->add(h, i, pts + i * dim);
    float q[] = {1.8f, 0, 0, 0};
    struct omni_hit hits[2];
    struct omni_vsearch s = {2, 0, NULL, NULL};
    CU_ASSERT_EQUAL(h->search(h, q, &s, hits), 2);
    CU_ASSERT_EQUAL(hits[0].label, 3);
    CU_ASSERT_EQUAL(hits[1].label, 1);
    CU_ASSERT_DOUBLE_EQUAL(hits[0].dist, 0.04, 1e-5);
    CU_ASSERT_DOUBLE_EQUAL(omni_vstore_score(h, hits[0].dist), -0.04, 1e-5);
    h->free(h);
}

static void test_topk(void)
{
    struct omni_hit h[3];
    struct omni_topk t = {h, 0, 3};
    float d[] = {5, 1, 4, 2, 3, 0.5f};
    for (uint32_t i = 0; i < 6; i++)
        omni_topk_push(&t, i, d[i]);
    omni_topk_sort(&t);
    CU_ASSERT_EQUAL(t.n, 3);
    CU_ASSERT_EQUAL(h[0].label, 5);
    CU_ASSERT_EQUAL(h[1].label, 1);
    CU_ASSERT_EQUAL(h[2].label, 3);
}

static CU_TestInfo vec_tests[] = {
    {"kernels", test_kernels},
    {"store conformance", test_conformance},
    {"auto switch", test_auto_switch},
    {"hnsw recall vs exact", test_hnsw_recall},
    {"l2 metric", test_l2},
    {"top-k heap", test_topk},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"rag_vec", NULL, NULL, NULL, NULL, vec_tests},
    CU_SUITE_INFO_NULL,
};
