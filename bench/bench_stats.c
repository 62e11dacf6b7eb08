/*
 * bench_stats - exact percentiles over all samples (sort once).
 */
#include "bench_stats.h"

#include <stdlib.h>

#include "omni_alloc.h"

void bench_lat_add(struct bench_lat *l, int64_t us)
{
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4096;
        l->v = omni_realloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = us;
    l->sorted = 0;
}

static int cmp(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

int64_t bench_lat_pct(struct bench_lat *l, double p)
{
    if (!l->n)
        return 0;
    if (!l->sorted) {
        qsort(l->v, l->n, sizeof *l->v, cmp);
        l->sorted = 1;
    }
    size_t i = (size_t)(p / 100.0 * (double)(l->n - 1) + 0.5);
    return l->v[i < l->n ? i : l->n - 1];
}

void bench_lat_free(struct bench_lat *l)
{
    omni_free(l->v);
    l->v = NULL;
    l->n = l->cap = 0;
}
