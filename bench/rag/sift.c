/*
 * sift - HNSW on siftsmall (10,000 x 128, squared L2): build time,
 * recall@10 against the shipped ground truth and queries per second at
 * several ef, with exact (flat) search as the baseline.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench.h"
#include "omni_alloc.h"
#include "vec.h"

/* Read a .fvecs/.ivecs file: n records of int32 d then d 4-byte values. */
static void *read_vecs(const char *path, uint32_t *dim, size_t *n)
{
    size_t len;
    char *p = bench_slurp(path, &len);
    if (!p || len < 4) {
        omni_free(p);
        return NULL;
    }
    int32_t d;
    memcpy(&d, p, 4);
    size_t rec = 4 + (size_t)d * 4;
    if (d <= 0 || len % rec) {
        omni_free(p);
        return NULL;
    }
    *n = len / rec;
    *dim = (uint32_t)d;
    char *out = omni_malloc(*n * (size_t)d * 4);
    for (size_t i = 0; i < *n; i++)
        memcpy(out + i * (size_t)d * 4, p + i * rec + 4, (size_t)d * 4);
    omni_free(p);
    return out;
}

static double run(struct omni_vstore *vs, const float *q, size_t nq,
                  uint32_t dim, uint32_t ef, const int32_t *gt, size_t gtk,
                  double *qps)
{
    struct omni_hit hits[10];
    struct omni_vsearch s = {10, ef, NULL, NULL};
    size_t found = 0, runs = 0;
    double t0 = bench_now(), t;
    do {
        for (size_t i = 0; i < nq; i++) {
            size_t n = vs->search(vs, q + i * dim, &s, hits);
            if (runs)
                continue;
            for (size_t a = 0; a < n; a++)
                for (size_t b = 0; b < 10; b++)
                    if ((int32_t)hits[a].label == gt[i * gtk + b])
                        found++;
        }
        runs++;
        t = bench_now() - t0;
    } while (t < 0.5);
    *qps = (double)(runs * nq) / t;
    return (double)found / (double)(nq * 10);
}

int bench_sift(int argc, char **argv)
{
    const char *dir = "../shared/datasets/siftsmall";
    const char *efs = "10,16,32,64,128";
    for (int i = 0; i < argc; i++) {
        if (!strcmp(argv[i], "--ef"))
            efs = bench_arg(argc, argv, &i);
        else
            dir = argv[i];
    }
    char path[4096];
    uint32_t dim, qd, gd;
    size_t n, nq, ng;
    snprintf(path, sizeof path, "%s/siftsmall_base.fvecs", dir);
    float *base = read_vecs(path, &dim, &n);
    snprintf(path, sizeof path, "%s/siftsmall_query.fvecs", dir);
    float *q = read_vecs(path, &qd, &nq);
    snprintf(path, sizeof path, "%s/siftsmall_groundtruth.ivecs", dir);
    int32_t *gt = read_vecs(path, &gd, &ng);
    if (!base || !q || !gt || qd != dim || ng != nq || gd < 10) {
        printf("sift: skipped: no siftsmall data set at '%s'\n", dir);
        omni_free(base);
        omni_free(q);
        omni_free(gt);
        return 0;
    }
    struct omni_hnsw_params p = {16, 200, 64, 0};
    struct omni_vstore *h = omni_vstore_hnsw(dim, OMNI_METRIC_L2, &p);
    double t0 = bench_now();
    for (size_t i = 0; i < n; i++)
        h->add(h, (uint32_t)i, base + i * dim);
    double build = bench_now() - t0;
    printf("sift: %zu x %u base, %zu queries; HNSW M=16 efC=200 build "
           "%.2f s (%.0f inserts/s)\n",
           n, dim, nq, build, (double)n / build);
    printf("%-10s %10s %10s\n", "search", "recall@10", "QPS");
    struct omni_vstore *f = omni_vstore_flat(dim, OMNI_METRIC_L2);
    for (size_t i = 0; i < n; i++)
        f->add(f, (uint32_t)i, base + i * dim);
    double qps;
    double r = run(f, q, nq, dim, 0, gt, gd, &qps);
    printf("%-10s %10.4f %10.0f\n", "exact", r, qps);
    char *list = omni_strdup(efs), *save = NULL;
    for (char *e = strtok_r(list, ",", &save); e;
         e = strtok_r(NULL, ",", &save)) {
        uint32_t ef = (uint32_t)strtoul(e, NULL, 10);
        r = run(h, q, nq, dim, ef, gt, gd, &qps);
        char name[32];
        snprintf(name, sizeof name, "hnsw ef=%u%s", ef, ef == 64 ? "*" : "");
        printf("%-10s %10.4f %10.0f\n", name, r, qps);
    }
    printf("(* the default ef_search)\n");
    omni_free(list);
    h->free(h);
    f->free(f);
    omni_free(base);
    omni_free(q);
    omni_free(gt);
    return 0;
}
