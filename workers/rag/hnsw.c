/*
 * hnsw - Hierarchical Navigable Small World graph (Malkov & Yashunin,
 * arXiv 1603.09320), single-threaded, as a struct omni_vstore.
 *
 * Layer 0 keeps up to 2M links per node, upper layers M; neighbours are
 * chosen with the paper's heuristic (algorithm 4, without extending the
 * candidates or keeping pruned links), like hnswlib.  Deletion marks a
 * tombstone: the node still routes searches but is never returned nor
 * linked to again; once tombstones pass a quarter of the live nodes the
 * graph is rebuilt from the live vectors.  A search with a filter keeps
 * exploring until ef results pass the filter (or the graph runs out).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "omni_alloc.h"
#include "vec.h"

#define NO_NODE   UINT32_MAX
#define MAX_LEVEL 16

struct heap {
    struct omni_hit *h; /* max-heap on dist */
    size_t n, cap;
};

struct hnsw {
    uint32_t dim, m, m0, efc, ef;
    enum omni_metric metric;
    double ml;
    float *vecs;   /* cap x dim */
    uint32_t *l0;  /* cap x (1 + m0): count, links */
    uint32_t **up; /* per node: level x (1 + m), or NULL */
    uint8_t *level;
    uint8_t *dead;
    uint32_t *labels;  /* node -> label */
    uint32_t *node_of; /* label -> node */
    size_t n, cap, nlab, ndead;
    uint32_t entry;
    int maxlevel;
    uint64_t rng;
    uint32_t *visit;
    uint32_t epoch;
    struct heap cand, res;
    struct omni_hit *sel;
    size_t selcap;
};

static void heap_push(struct heap *h, uint32_t id, float d)
{
    if (h->n == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 256;
        h->h = omni_realloc(h->h, h->cap * sizeof *h->h);
    }
    size_t i = h->n++;
    while (i) {
        size_t p = (i - 1) / 2;
        if (h->h[p].dist >= d)
            break;
        h->h[i] = h->h[p];
        i = p;
    }
    h->h[i] = (struct omni_hit){id, d};
}

static struct omni_hit heap_pop(struct heap *h)
{
    struct omni_hit top = h->h[0];
    struct omni_hit last = h->h[--h->n];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = l;
        if (l >= h->n)
            break;
        if (r < h->n && h->h[r].dist > h->h[l].dist)
            m = r;
        if (h->h[m].dist <= last.dist)
            break;
        h->h[i] = h->h[m];
        i = m;
    }
    if (h->n)
        h->h[i] = last;
    return top;
}

static inline float dist(const struct hnsw *g, const float *q, uint32_t node)
{
    return omni_vec_dist(g->metric, q, g->vecs + (size_t)node * g->dim, g->dim);
}

static inline uint32_t *links(const struct hnsw *g, uint32_t node, int lv)
{
    if (lv == 0)
        return g->l0 + (size_t)node * (1 + g->m0);
    return g->up[node] + (size_t)(lv - 1) * (1 + g->m);
}

static void new_epoch(struct hnsw *g)
{
    if (++g->epoch == 0) {
        memset(g->visit, 0, g->cap * sizeof *g->visit);
        g->epoch = 1;
    }
}

static bool allowed(const struct hnsw *g, uint32_t node,
                    const struct omni_vsearch *s)
{
    if (g->dead[node])
        return false;
    return !s || !s->filter || s->filter(g->labels[node], s->arg);
}

/* Best-first search of one layer from ep; g->res gets up to ef nodes
 * that pass the filter (tombstones never pass). */
static void search_layer(struct hnsw *g, const float *q, uint32_t ep,
                         uint32_t ef, int lv, const struct omni_vsearch *s)
{
    bool exclusions = g->ndead || (s && s->filter);
    new_epoch(g);
    g->cand.n = g->res.n = 0;
    float d = dist(g, q, ep);
    g->visit[ep] = g->epoch;
    heap_push(&g->cand, ep, -d);
    if (allowed(g, ep, s))
        heap_push(&g->res, ep, d);
    float lower = g->res.n ? g->res.h[0].dist : INFINITY;
    while (g->cand.n) {
        struct omni_hit c = heap_pop(&g->cand);
        if (-c.dist > lower && (g->res.n == ef || !exclusions))
            break;
        uint32_t *lk = links(g, c.label, lv);
        for (uint32_t i = 1; i <= lk[0]; i++) {
            uint32_t e = lk[i];
            if (g->visit[e] == g->epoch)
                continue;
            g->visit[e] = g->epoch;
            float de = dist(g, q, e);
            if (g->res.n < ef || de < lower) {
                heap_push(&g->cand, e, -de);
                if (allowed(g, e, s)) {
                    heap_push(&g->res, e, de);
                    if (g->res.n > ef)
                        heap_pop(&g->res);
                }
                if (g->res.n)
                    lower = g->res.h[0].dist;
            }
        }
    }
}

/* Greedy walk of an upper layer towards q. */
static uint32_t greedy(const struct hnsw *g, const float *q, uint32_t cur,
                       float *curd, int lv)
{
    bool changed = true;
    while (changed) {
        changed = false;
        uint32_t *lk = links(g, cur, lv);
        for (uint32_t i = 1; i <= lk[0]; i++) {
            float d = dist(g, q, lk[i]);
            if (d < *curd) {
                *curd = d;
                cur = lk[i];
                changed = true;
            }
        }
    }
    return cur;
}

static int hit_cmp(const void *a, const void *b)
{
    const struct omni_hit *x = a, *y = b;
    return x->dist < y->dist ? -1 : x->dist > y->dist;
}

/* The paper's heuristic: walk candidates closest first and keep one only
 * if it is closer to the base than to every neighbour kept so far.
 * c[0..n) must be sorted; the kept ones are moved to the front. */
static size_t select_heuristic(const struct hnsw *g, struct omni_hit *c,
                               size_t n, uint32_t max)
{
    size_t kept = 0;
    for (size_t i = 0; i < n && kept < max; i++) {
        bool good = true;
        const float *v = g->vecs + (size_t)c[i].label * g->dim;
        for (size_t j = 0; j < kept; j++) {
            float d = omni_vec_dist(
                g->metric, v, g->vecs + (size_t)c[j].label * g->dim, g->dim);
            if (d < c[i].dist) {
                good = false;
                break;
            }
        }
        if (good)
            c[kept++] = c[i];
    }
    return kept;
}

static struct omni_hit *scratch(struct hnsw *g, size_t n)
{
    if (n > g->selcap) {
        g->selcap = n * 2;
        g->sel = omni_realloc(g->sel, g->selcap * sizeof *g->sel);
    }
    return g->sel;
}

/* Add the link s -> id on layer lv, pruning s's links if full. */
static void connect(struct hnsw *g, uint32_t s, uint32_t id, int lv)
{
    uint32_t max = lv ? g->m : g->m0;
    uint32_t *lk = links(g, s, lv);
    if (lk[0] < max) {
        lk[++lk[0]] = id;
        return;
    }
    struct omni_hit *c = scratch(g, max + 1);
    const float *sv = g->vecs + (size_t)s * g->dim;
    for (uint32_t i = 0; i < lk[0]; i++)
        c[i] = (struct omni_hit){lk[i + 1], dist(g, sv, lk[i + 1])};
    c[max] = (struct omni_hit){id, dist(g, sv, id)};
    qsort(c, max + 1, sizeof *c, hit_cmp);
    size_t k = select_heuristic(g, c, max + 1, max);
    for (size_t i = 0; i < k; i++)
        lk[i + 1] = c[i].label;
    lk[0] = (uint32_t)k;
}

static int random_level(struct hnsw *g)
{
    g->rng ^= g->rng >> 12;
    g->rng ^= g->rng << 25;
    g->rng ^= g->rng >> 27;
    uint64_t r = g->rng * 0x2545f4914f6cdd1dULL;
    double u = ((double)(r >> 11) + 1.0) / 9007199254740993.0;
    int lv = (int)(-log(u) * g->ml);
    return lv > MAX_LEVEL ? MAX_LEVEL : lv;
}

static void grow(struct hnsw *g)
{
    size_t cap = g->cap ? g->cap * 2 : 1024;
    g->vecs = omni_realloc(g->vecs, cap * g->dim * sizeof(float));
    g->l0 = omni_realloc(g->l0, cap * (1 + g->m0) * sizeof(uint32_t));
    g->up = omni_realloc(g->up, cap * sizeof *g->up);
    g->level = omni_realloc(g->level, cap);
    g->dead = omni_realloc(g->dead, cap);
    g->labels = omni_realloc(g->labels, cap * sizeof *g->labels);
    g->visit = omni_realloc(g->visit, cap * sizeof *g->visit);
    memset(g->visit + g->cap, 0, (cap - g->cap) * sizeof *g->visit);
    g->cap = cap;
}

static void map_label(struct hnsw *g, uint32_t label, uint32_t node)
{
    if (label >= g->nlab) {
        size_t n = g->nlab ? g->nlab : 1024;
        while (n <= label)
            n *= 2;
        g->node_of = omni_realloc(g->node_of, n * sizeof *g->node_of);
        for (size_t i = g->nlab; i < n; i++)
            g->node_of[i] = NO_NODE;
        g->nlab = n;
    }
    g->node_of[label] = node;
}

static void insert(struct hnsw *g, uint32_t label, const float *v)
{
    if (g->n == g->cap)
        grow(g);
    uint32_t id = (uint32_t)g->n++;
    memcpy(g->vecs + (size_t)id * g->dim, v, g->dim * sizeof(float));
    int lv = random_level(g);
    g->level[id] = (uint8_t)lv;
    g->dead[id] = 0;
    g->labels[id] = label;
    links(g, id, 0)[0] = 0;
    g->up[id] =
        lv ? omni_calloc((size_t)lv * (1 + g->m), sizeof(uint32_t)) : NULL;
    map_label(g, label, id);
    if (g->entry == NO_NODE) {
        g->entry = id;
        g->maxlevel = lv;
        return;
    }
    uint32_t cur = g->entry;
    float curd = dist(g, v, cur);
    for (int l = g->maxlevel; l > lv; l--)
        cur = greedy(g, v, cur, &curd, l);
    for (int l = lv < g->maxlevel ? lv : g->maxlevel; l >= 0; l--) {
        search_layer(g, v, cur, g->efc, l, NULL);
        size_t n = g->res.n;
        struct omni_hit *c = omni_malloc((n ? n : 1) * sizeof *c);
        memcpy(c, g->res.h, n * sizeof *c);
        qsort(c, n, sizeof *c, hit_cmp);
        size_t k = select_heuristic(g, c, n, g->m);
        uint32_t *lk = links(g, id, l);
        lk[0] = (uint32_t)k;
        for (size_t i = 0; i < k; i++)
            lk[i + 1] = c[i].label;
        for (size_t i = 0; i < k; i++)
            connect(g, c[i].label, id, l);
        if (k)
            cur = c[0].label;
        omni_free(c);
    }
    if (lv > g->maxlevel) {
        g->entry = id;
        g->maxlevel = lv;
    }
}

static void clear(struct hnsw *g)
{
    for (size_t i = 0; i < g->n; i++)
        omni_free(g->up[i]);
    g->n = g->ndead = 0;
    g->entry = NO_NODE;
    g->maxlevel = 0;
    for (size_t i = 0; i < g->nlab; i++)
        g->node_of[i] = NO_NODE;
}

/* Rebuild the graph from the live nodes, dropping tombstones. */
static void rebuild(struct hnsw *g)
{
    size_t live = g->n - g->ndead;
    float *v = omni_malloc((live ? live : 1) * g->dim * sizeof(float));
    uint32_t *lab = omni_malloc((live ? live : 1) * sizeof *lab);
    size_t k = 0;
    for (size_t i = 0; i < g->n; i++) {
        if (g->dead[i])
            continue;
        memcpy(v + k * g->dim, g->vecs + i * g->dim, g->dim * sizeof(float));
        lab[k++] = g->labels[i];
    }
    clear(g);
    for (size_t i = 0; i < k; i++)
        insert(g, lab[i], v + i * g->dim);
    omni_free(v);
    omni_free(lab);
}

static int h_remove(struct omni_vstore *vs, uint32_t label)
{
    struct hnsw *g = vs->impl;
    if (label >= g->nlab || g->node_of[label] == NO_NODE)
        return -1;
    g->dead[g->node_of[label]] = 1;
    g->node_of[label] = NO_NODE;
    g->ndead++;
    if (g->ndead >= 64 && g->ndead * 4 > g->n - g->ndead)
        rebuild(g);
    return 0;
}

static int h_add(struct omni_vstore *vs, uint32_t label, const float *v)
{
    struct hnsw *g = vs->impl;
    if (label < g->nlab && g->node_of[label] != NO_NODE)
        h_remove(vs, label);
    insert(g, label, v);
    return 0;
}

static size_t h_search(struct omni_vstore *vs, const float *q,
                       const struct omni_vsearch *s, struct omni_hit *out)
{
    struct hnsw *g = vs->impl;
    if (g->entry == NO_NODE || g->n == g->ndead || !s->k)
        return 0;
    uint32_t ef = s->ef ? s->ef : g->ef;
    if (ef < s->k)
        ef = (uint32_t)s->k;
    uint32_t cur = g->entry;
    float curd = dist(g, q, cur);
    for (int l = g->maxlevel; l > 0; l--)
        cur = greedy(g, q, cur, &curd, l);
    search_layer(g, q, cur, ef, 0, s);
    size_t n = g->res.n;
    qsort(g->res.h, n, sizeof *g->res.h, hit_cmp);
    if (n > s->k)
        n = s->k;
    for (size_t i = 0; i < n; i++)
        out[i] =
            (struct omni_hit){g->labels[g->res.h[i].label], g->res.h[i].dist};
    return n;
}

static size_t h_count(const struct omni_vstore *vs)
{
    const struct hnsw *g = vs->impl;
    return g->n - g->ndead;
}

static void h_each(const struct omni_vstore *vs,
                   void (*fn)(uint32_t, const float *, void *), void *arg)
{
    const struct hnsw *g = vs->impl;
    for (size_t i = 0; i < g->n; i++)
        if (!g->dead[i])
            fn(g->labels[i], g->vecs + i * g->dim, arg);
}

static void h_free(struct omni_vstore *vs)
{
    struct hnsw *g = vs->impl;
    clear(g);
    omni_free(g->vecs);
    omni_free(g->l0);
    omni_free(g->up);
    omni_free(g->level);
    omni_free(g->dead);
    omni_free(g->labels);
    omni_free(g->node_of);
    omni_free(g->visit);
    omni_free(g->cand.h);
    omni_free(g->res.h);
    omni_free(g->sel);
    omni_free(g);
    omni_free(vs);
}

size_t omni_hnsw_tombstones(const struct omni_vstore *vs)
{
    if (strcmp(vs->kind, "hnsw") != 0)
        return 0;
    return ((const struct hnsw *)vs->impl)->ndead;
}

struct omni_vstore *omni_vstore_hnsw(uint32_t dim, enum omni_metric m,
                                     const struct omni_hnsw_params *p)
{
    struct omni_vstore *vs = omni_calloc(1, sizeof *vs);
    struct hnsw *g = omni_calloc(1, sizeof *g);
    g->dim = dim;
    g->metric = m;
    g->m = p && p->m ? p->m : 16;
    g->m0 = 2 * g->m;
    g->efc = p && p->ef_construction ? p->ef_construction : 200;
    g->ef = p && p->ef_search ? p->ef_search : 64;
    g->ml = 1.0 / log((double)g->m);
    g->rng = (p && p->seed ? p->seed : 0x9e3779b97f4a7c15ULL) | 1;
    g->entry = NO_NODE;
    vs->impl = g;
    vs->dim = dim;
    vs->metric = m;
    vs->kind = "hnsw";
    vs->add = h_add;
    vs->remove = h_remove;
    vs->search = h_search;
    vs->count = h_count;
    vs->each = h_each;
    vs->free = h_free;
    return vs;
}
