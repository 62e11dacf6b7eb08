/*
 * vstore - the automatic vector store: exact search while a collection
 * is small, HNSW once it has threshold vectors.
 *
 * Brute force over a few thousand vectors is both exact and about as
 * fast as a graph walk, and costs no build time; past the threshold the
 * vectors move into an HNSW graph (a one-off build), and back to flat
 * when deletions bring the count under half the threshold.
 */
#include "omni_alloc.h"
#include "vec.h"

struct autostore {
    struct omni_vstore *cur;
    struct omni_hnsw_params p;
    size_t threshold;
};

static void copy_one(uint32_t label, const float *v, void *arg)
{
    struct omni_vstore *to = arg;
    to->add(to, label, v);
}

static void migrate(struct autostore *a, struct omni_vstore *to)
{
    a->cur->each(a->cur, copy_one, to);
    a->cur->free(a->cur);
    a->cur = to;
}

static int a_add(struct omni_vstore *vs, uint32_t label, const float *v)
{
    struct autostore *a = vs->impl;
    int rc = a->cur->add(a->cur, label, v);
    if (a->cur->kind[0] == 'f' && a->cur->count(a->cur) >= a->threshold)
        migrate(a, omni_vstore_hnsw(vs->dim, vs->metric, &a->p));
    return rc;
}

static int a_remove(struct omni_vstore *vs, uint32_t label)
{
    struct autostore *a = vs->impl;
    int rc = a->cur->remove(a->cur, label);
    if (a->cur->kind[0] == 'h' && a->cur->count(a->cur) < a->threshold / 2)
        migrate(a, omni_vstore_flat(vs->dim, vs->metric));
    return rc;
}

static size_t a_search(struct omni_vstore *vs, const float *q,
                       const struct omni_vsearch *s, struct omni_hit *out)
{
    struct autostore *a = vs->impl;
    return a->cur->search(a->cur, q, s, out);
}

static size_t a_count(const struct omni_vstore *vs)
{
    const struct autostore *a = vs->impl;
    return a->cur->count(a->cur);
}

static void a_each(const struct omni_vstore *vs,
                   void (*fn)(uint32_t, const float *, void *), void *arg)
{
    const struct autostore *a = vs->impl;
    a->cur->each(a->cur, fn, arg);
}

static void a_free(struct omni_vstore *vs)
{
    struct autostore *a = vs->impl;
    a->cur->free(a->cur);
    omni_free(a);
    omni_free(vs);
}

struct omni_vstore *omni_vstore_auto(uint32_t dim, enum omni_metric m,
                                     const struct omni_hnsw_params *p,
                                     size_t threshold)
{
    struct omni_vstore *vs = omni_calloc(1, sizeof *vs);
    struct autostore *a = omni_calloc(1, sizeof *a);
    if (p)
        a->p = *p;
    a->threshold = threshold ? threshold : 2000;
    a->cur = omni_vstore_flat(dim, m);
    vs->impl = a;
    vs->dim = dim;
    vs->metric = m;
    vs->kind = "auto";
    vs->add = a_add;
    vs->remove = a_remove;
    vs->search = a_search;
    vs->count = a_count;
    vs->each = a_each;
    vs->free = a_free;
    return vs;
}

/* The store an automatic store currently delegates to ("flat" or
 * "hnsw"); other stores name themselves. */
const char *omni_vstore_current(const struct omni_vstore *vs)
{
    if (vs->kind[0] != 'a')
        return vs->kind;
    return ((const struct autostore *)vs->impl)->cur->kind;
}
