/*
 * vec - distance kernels, the top-k heap and the flat (exact) store.
 *
 * The kernels use GCC vector extensions over 8 lanes and are compiled
 * twice (AVX2+FMA and baseline) with the right one picked at load time,
 * so the binary stays portable.  The flat store keeps vectors packed and
 * removes by moving the last vector into the hole.
 */
#include "vec.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "omni_alloc.h"

typedef float v8f __attribute__((vector_size(32)));

/* Unaligned load of 8 floats (a macro: returning a 32-byte vector from
 * a function would depend on the AVX ABI). */
#define LOAD8(v, p) memcpy(&(v), (p), sizeof(v8f))

/* On x86-64 the loops get an AVX2 clone picked at load time; elsewhere
 * (arm64 in Lambda) the compiler's own vector lowering is used. */
#if defined(__x86_64__)
#define VEC_CLONES __attribute__((target_clones("avx2,default")))
#else
#define VEC_CLONES
#endif

VEC_CLONES float omni_vec_dot(const float *a, const float *b, uint32_t dim)
{
    v8f acc0 = {0}, acc1 = {0};
    uint32_t i = 0;
    v8f x0, y0, x1, y1;
    for (; i + 16 <= dim; i += 16) {
        LOAD8(x0, a + i);
        LOAD8(y0, b + i);
        LOAD8(x1, a + i + 8);
        LOAD8(y1, b + i + 8);
        acc0 += x0 * y0;
        acc1 += x1 * y1;
    }
    for (; i + 8 <= dim; i += 8) {
        LOAD8(x0, a + i);
        LOAD8(y0, b + i);
        acc0 += x0 * y0;
    }
    acc0 += acc1;
    float s = 0;
    for (int k = 0; k < 8; k++)
        s += acc0[k];
    for (; i < dim; i++)
        s += a[i] * b[i];
    return s;
}

VEC_CLONES float omni_vec_l2sq(const float *a, const float *b, uint32_t dim)
{
    v8f acc0 = {0}, acc1 = {0};
    uint32_t i = 0;
    v8f x0, y0, x1, y1;
    for (; i + 16 <= dim; i += 16) {
        LOAD8(x0, a + i);
        LOAD8(y0, b + i);
        LOAD8(x1, a + i + 8);
        LOAD8(y1, b + i + 8);
        x0 -= y0;
        x1 -= y1;
        acc0 += x0 * x0;
        acc1 += x1 * x1;
    }
    for (; i + 8 <= dim; i += 8) {
        LOAD8(x0, a + i);
        LOAD8(y0, b + i);
        x0 -= y0;
        acc0 += x0 * x0;
    }
    acc0 += acc1;
    float s = 0;
    for (int k = 0; k < 8; k++)
        s += acc0[k];
    for (; i < dim; i++)
        s += (a[i] - b[i]) * (a[i] - b[i]);
    return s;
}

float omni_vec_dist(enum omni_metric m, const float *a, const float *b,
                    uint32_t dim)
{
    return m == OMNI_METRIC_IP ? 1.0f - omni_vec_dot(a, b, dim)
                               : omni_vec_l2sq(a, b, dim);
}

void omni_vec_normalize(float *v, uint32_t dim)
{
    double ss = 0;
    for (uint32_t i = 0; i < dim; i++)
        ss += (double)v[i] * v[i];
    if (ss <= 0)
        return;
    float inv = (float)(1.0 / sqrt(ss));
    for (uint32_t i = 0; i < dim; i++)
        v[i] *= inv;
}

float omni_vstore_score(const struct omni_vstore *vs, float dist)
{
    return vs->metric == OMNI_METRIC_IP ? 1.0f - dist : -dist;
}

/* ---- top-k max-heap (worst kept hit at the root) ---- */

static void sift_down(struct omni_hit *h, size_t n, size_t i)
{
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < n && h[l].dist > h[m].dist)
            m = l;
        if (r < n && h[r].dist > h[m].dist)
            m = r;
        if (m == i)
            return;
        struct omni_hit t = h[i];
        h[i] = h[m];
        h[m] = t;
        i = m;
    }
}

void omni_topk_push(struct omni_topk *t, uint32_t label, float dist)
{
    if (t->k == 0)
        return;
    if (t->n < t->k) {
        size_t i = t->n++;
        t->h[i] = (struct omni_hit){label, dist};
        while (i) {
            size_t p = (i - 1) / 2;
            if (t->h[p].dist >= t->h[i].dist)
                break;
            struct omni_hit x = t->h[p];
            t->h[p] = t->h[i];
            t->h[i] = x;
            i = p;
        }
        return;
    }
    if (dist >= t->h[0].dist)
        return;
    t->h[0] = (struct omni_hit){label, dist};
    sift_down(t->h, t->n, 0);
}

static int hit_cmp(const void *a, const void *b)
{
    const struct omni_hit *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    return x->label < y->label ? -1 : x->label > y->label;
}

void omni_topk_sort(struct omni_topk *t)
{
    qsort(t->h, t->n, sizeof *t->h, hit_cmp);
}

/* ---- flat store ---- */

#define NO_POS UINT32_MAX

struct flat {
    float *vecs;      /* n x dim */
    uint32_t *labels; /* position -> label */
    uint32_t *pos;    /* label -> position, NO_POS when absent */
    size_t n, cap, npos;
};

static int flat_add(struct omni_vstore *vs, uint32_t label, const float *v)
{
    struct flat *f = vs->impl;
    if (label >= f->npos) {
        size_t np = f->npos ? f->npos : 64;
        while (np <= label)
            np *= 2;
        f->pos = omni_realloc(f->pos, np * sizeof *f->pos);
        for (size_t i = f->npos; i < np; i++)
            f->pos[i] = NO_POS;
        f->npos = np;
    }
    uint32_t p = f->pos[label];
    if (p == NO_POS) {
        if (f->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 64;
            f->vecs = omni_realloc(f->vecs, f->cap * vs->dim * sizeof(float));
            f->labels = omni_realloc(f->labels, f->cap * sizeof(uint32_t));
        }
        p = (uint32_t)f->n++;
        f->pos[label] = p;
        f->labels[p] = label;
    }
    memcpy(f->vecs + (size_t)p * vs->dim, v, vs->dim * sizeof(float));
    return 0;
}

static int flat_remove(struct omni_vstore *vs, uint32_t label)
{
    struct flat *f = vs->impl;
    if (label >= f->npos || f->pos[label] == NO_POS)
        return -1;
    uint32_t p = f->pos[label];
    uint32_t last = (uint32_t)--f->n;
    if (p != last) {
        memcpy(f->vecs + (size_t)p * vs->dim, f->vecs + (size_t)last * vs->dim,
               vs->dim * sizeof(float));
        f->labels[p] = f->labels[last];
        f->pos[f->labels[p]] = p;
    }
    f->pos[label] = NO_POS;
    return 0;
}

static size_t flat_search(struct omni_vstore *vs, const float *q,
                          const struct omni_vsearch *s, struct omni_hit *out)
{
    struct flat *f = vs->impl;
    struct omni_topk t = {out, 0, s->k};
    for (size_t i = 0; i < f->n; i++) {
        if (s->filter && !s->filter(f->labels[i], s->arg))
            continue;
        float d = omni_vec_dist(vs->metric, q, f->vecs + i * vs->dim, vs->dim);
        omni_topk_push(&t, f->labels[i], d);
    }
    omni_topk_sort(&t);
    return t.n;
}

static size_t flat_count(const struct omni_vstore *vs)
{
    return ((const struct flat *)vs->impl)->n;
}

static void flat_each(const struct omni_vstore *vs,
                      void (*fn)(uint32_t, const float *, void *), void *arg)
{
    const struct flat *f = vs->impl;
    for (size_t i = 0; i < f->n; i++)
        fn(f->labels[i], f->vecs + i * vs->dim, arg);
}

static void flat_free(struct omni_vstore *vs)
{
    struct flat *f = vs->impl;
    omni_free(f->vecs);
    omni_free(f->labels);
    omni_free(f->pos);
    omni_free(f);
    omni_free(vs);
}

struct omni_vstore *omni_vstore_flat(uint32_t dim, enum omni_metric m)
{
    struct omni_vstore *vs = omni_calloc(1, sizeof *vs);
    vs->impl = omni_calloc(1, sizeof(struct flat));
    vs->dim = dim;
    vs->metric = m;
    vs->kind = "flat";
    vs->add = flat_add;
    vs->remove = flat_remove;
    vs->search = flat_search;
    vs->count = flat_count;
    vs->each = flat_each;
    vs->free = flat_free;
    return vs;
}
