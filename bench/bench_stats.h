/*
 * bench_stats - latency samples and percentiles for the bench programs.
 *
 * Samples are kept whole (8 bytes each) and sorted once at the end, so
 * percentiles are exact.  Allocation failure aborts via omni_alloc.
 */
#ifndef OMNI_BENCH_STATS_H
#define OMNI_BENCH_STATS_H

#include <stddef.h>
#include <stdint.h>

struct bench_lat {
    int64_t *v;
    size_t n, cap;
    int sorted;
};

void bench_lat_add(struct bench_lat *l, int64_t us);
/* The p-th percentile (0..100) in µs; 0 when there are no samples. */
int64_t bench_lat_pct(struct bench_lat *l, double p);
void bench_lat_free(struct bench_lat *l);

#endif
