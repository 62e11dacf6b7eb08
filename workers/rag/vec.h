/*
 * vec - distance kernels and the vector store interface.
 *
 * A vector store maps uint32 labels to float vectors and answers k
 * nearest neighbour queries.  Every store is reached through the
 * function pointers of struct omni_vstore, so collections do not care
 * which one they hold: exact (flat) search, HNSW, or the automatic
 * store that is flat while small and switches to HNSW past a threshold.
 * Distances: OMNI_METRIC_IP is 1 - dot (cosine on unit vectors; the
 * score reported is the dot product), OMNI_METRIC_L2 is the squared
 * Euclidean distance (score = -distance).
 */
#ifndef OMNI_RAG_VEC_H
#define OMNI_RAG_VEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum omni_metric { OMNI_METRIC_IP, OMNI_METRIC_L2 };

float omni_vec_dot(const float *a, const float *b, uint32_t dim);
float omni_vec_l2sq(const float *a, const float *b, uint32_t dim);
float omni_vec_dist(enum omni_metric m, const float *a, const float *b,
                    uint32_t dim);
/* Scale v to unit length (left as is when all zeros). */
void omni_vec_normalize(float *v, uint32_t dim);

struct omni_hit {
    uint32_t label;
    float dist; /* smaller is closer */
};

/* Keep only labels for which fn returns true (NULL: all). */
typedef bool (*omni_vfilter_fn)(uint32_t label, void *arg);

struct omni_vsearch {
    size_t k;
    uint32_t ef; /* HNSW breadth; 0: the store's default */
    omni_vfilter_fn filter;
    void *arg;
};

struct omni_vstore {
    void *impl;
    uint32_t dim;
    enum omni_metric metric;
    const char *kind; /* "flat", "hnsw", "auto" */
    /* Insert or replace label's vector (copied).  Returns 0. */
    int (*add)(struct omni_vstore *vs, uint32_t label, const float *v);
    /* Remove label; -1 if absent. */
    int (*remove)(struct omni_vstore *vs, uint32_t label);
    /* Up to s->k nearest labels into out (closest first); the count. */
    size_t (*search)(struct omni_vstore *vs, const float *q,
                     const struct omni_vsearch *s, struct omni_hit *out);
    /* Live vectors. */
    size_t (*count)(const struct omni_vstore *vs);
    /* Call fn for each live (label, vector). */
    void (*each)(const struct omni_vstore *vs,
                 void (*fn)(uint32_t label, const float *v, void *arg),
                 void *arg);
    void (*free)(struct omni_vstore *vs);
};

struct omni_hnsw_params {
    uint32_t m;               /* links per node (2m on layer 0); 16 */
    uint32_t ef_construction; /* 200 */
    uint32_t ef_search;       /* 64 */
    uint64_t seed;
};

struct omni_vstore *omni_vstore_flat(uint32_t dim, enum omni_metric m);
struct omni_vstore *omni_vstore_hnsw(uint32_t dim, enum omni_metric m,
                                     const struct omni_hnsw_params *p);
/* Flat below threshold vectors, HNSW from there on (and back to flat
 * below threshold / 2). */
struct omni_vstore *omni_vstore_auto(uint32_t dim, enum omni_metric m,
                                     const struct omni_hnsw_params *p,
                                     size_t threshold);
/* Score of a hit for callers: dot product for IP, -distance for L2. */
float omni_vstore_score(const struct omni_vstore *vs, float dist);

/* Introspection for tests, stats and benchmarks: the store an auto
 * store delegates to ("flat" or "hnsw"), and HNSW tombstones. */
const char *omni_vstore_current(const struct omni_vstore *vs);
size_t omni_hnsw_tombstones(const struct omni_vstore *vs);

/* A bounded max-heap of hits, shared by the stores: keeps the k
 * closest seen so far. */
struct omni_topk {
    struct omni_hit *h;
    size_t n, k;
};
void omni_topk_push(struct omni_topk *t, uint32_t label, float dist);
/* Sort the heap's hits closest first (destroys the heap order). */
void omni_topk_sort(struct omni_topk *t);

#endif
