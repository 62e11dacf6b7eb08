/*
 * scale - HNSW at size: N synthetic unit vectors (default 1,000,000 of
 * 384 dimensions, clustered around 1,000 random centres like real
 * embeddings), build time, query latency p50/p99 at the default ef,
 * recall@10 against exact search on a sample, and resident memory.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "omni_alloc.h"
#include "vec.h"

static uint64_t rng = 0x853c49e6748fea9bULL;

static double uniform(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 0x2545f4914f6cdd1dULL) >> 11) / 9007199254740992.0;
}

static float gauss(void)
{
    double u = uniform() + 1e-12, v = uniform();
    return (float)(sqrt(-2 * log(u)) * cos(2 * M_PI * v));
}

static void sample(const float *centres, size_t nc, uint32_t dim, float *out)
{
    const float *c = centres + (size_t)(uniform() * (double)nc) * dim;
    for (uint32_t i = 0; i < dim; i++)
        out[i] = c[i] + 0.1f * gauss();
    omni_vec_normalize(out, dim);
}

struct exact {
    const float *q;
    uint32_t dim;
    struct omni_topk t;
};

static void exact_one(uint32_t label, const float *v, void *arg)
{
    struct exact *e = arg;
    omni_topk_push(&e->t, label, 1.0f - omni_vec_dot(e->q, v, e->dim));
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int bench_scale(int argc, char **argv)
{
    size_t n = 1000000, nq = 1000;
    uint32_t dim = 384, efc = 200;
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--dim"))
            dim = (uint32_t)strtoul(bench_arg(argc, argv, &i), NULL, 10);
        else if (!strcmp(argv[i], "--efc"))
            efc = (uint32_t)strtoul(bench_arg(argc, argv, &i), NULL, 10);
        else if (!strcmp(argv[i], "--queries"))
            nq = strtoul(bench_arg(argc, argv, &i), NULL, 10);
        else
            n = strtoul(argv[i], NULL, 10);
    }
    if (!n || !dim || !nq) {
        fprintf(stderr, "scale: want N > 0, --dim > 0, --queries > 0\n");
        return 2;
    }
    size_t nc = 1000;
    float *centres = omni_malloc(nc * dim * sizeof(float));
    for (size_t i = 0; i < nc * dim; i++)
        centres[i] = gauss() / sqrtf((float)dim) * 4;
    struct omni_hnsw_params p = {16, efc, 64, 0};
    struct omni_vstore *h = omni_vstore_hnsw(dim, OMNI_METRIC_IP, &p);
    float *v = omni_malloc(dim * sizeof(float));
    printf("scale: %zu x %u vectors, HNSW M=16 efC=%u, single thread\n", n, dim,
           efc);
    fflush(stdout);
    double t0 = bench_now(), last = t0;
    for (size_t i = 0; i < n; i++) {
        sample(centres, nc, dim, v);
        h->add(h, (uint32_t)i, v);
        if (bench_now() - last > 30) {
            last = bench_now();
            fprintf(stderr, "  %zu inserted, %.0f s, %.0f/s\n", i + 1,
                    last - t0, (double)(i + 1) / (last - t0));
        }
    }
    double build = bench_now() - t0;
    double rss, peak;
    bench_rss(&rss, &peak);
    printf("build %.1f s (%.0f inserts/s); resident %.0f MiB (peak %.0f "
           "MiB, vectors alone %.0f MiB)\n",
           build, (double)n / build, rss, peak,
           (double)n * dim * 4 / 1048576.0);
    float *qs = omni_malloc(nq * dim * sizeof(float));
    for (size_t i = 0; i < nq; i++)
        sample(centres, nc, dim, qs + i * dim);
    double *lat = omni_malloc(nq * sizeof *lat);
    struct omni_hit hits[10];
    struct omni_vsearch s = {10, 0, NULL, NULL};
    for (size_t i = 0; i < nq; i++) {
        double a = bench_now();
        h->search(h, qs + i * dim, &s, hits);
        lat[i] = (bench_now() - a) * 1000;
    }
    qsort(lat, nq, sizeof *lat, cmp_double);
    printf("query k=10 ef=64: p50 %.3f ms, p99 %.3f ms (%zu queries)\n",
           lat[nq / 2], lat[nq * 99 / 100], nq);
    /* Recall on a sample, against an exact scan of the graph's vectors. */
    size_t ns = nq < 50 ? nq : 50, found = 0;
    struct omni_hit truth[10] = {{0, 0}};
    double e0 = bench_now();
    for (size_t i = 0; i < ns; i++) {
        struct exact c = {qs + i * dim, dim, {truth, 0, 10}};
        size_t got = h->search(h, qs + i * dim, &s, hits);
        h->each(h, exact_one, &c);
        for (size_t a = 0; a < got; a++)
            for (size_t b = 0; b < c.t.n; b++)
                if (hits[a].label == truth[b].label)
                    found++;
    }
    double exact_ms = (bench_now() - e0) * 1000 / (double)ns;
    printf("recall@10 %.4f on %zu queries (exact scan %.1f ms/query)\n",
           (double)found / (double)(ns * 10), ns, exact_ms);
    h->free(h);
    omni_free(centres);
    omni_free(v);
    omni_free(qs);
    omni_free(lat);
    return 0;
}
