/*
 * coll - a collection's documents, chunk slots and both indexes.
 *
 * What is indexed for a chunk is its heading path and its text (so a
 * section's title helps retrieve all of the section); what is returned
 * is the text alone with its provenance.
 */
#include "coll.h"

#include <math.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_buf.h"

void omni_prep_free(struct omni_prep *p)
{
    if (!p)
        return;
    for (uint32_t i = 0; i < p->nchunks; i++) {
        omni_free(p->chunks[i].text);
        omni_free(p->chunks[i].heading);
    }
    omni_free(p->chunks);
    omni_free(p->vecs);
    omni_free(p->id);
    omni_free(p->content_type);
    if (p->metadata)
        json_decref(p->metadata);
    omni_free(p);
}

struct omni_coll *omni_coll_new(const char *name, uint32_t dim,
                                const char *embedder,
                                const struct omni_coll_params *p)
{
    struct omni_coll *c = omni_calloc(1, sizeof *c);
    c->name = omni_strdup(name);
    c->dim = dim;
    c->embedder = omni_strdup(embedder ? embedder : "");
    c->bm25 = omni_bm25_new(p ? &p->bm25 : NULL);
    c->vs = omni_vstore_auto(dim, OMNI_METRIC_IP, p ? &p->hnsw : NULL,
                             p ? p->exact_below : 0);
    return c;
}

static void doc_free(struct omni_doc *d)
{
    omni_free(d->id);
    omni_free(d->content_type);
    omni_free(d->slots);
    if (d->metadata)
        json_decref(d->metadata);
    omni_free(d);
}

static void chunk_free(struct omni_cchunk *ch)
{
    omni_free(ch->heading);
    omni_free(ch->text);
    omni_free(ch);
}

void omni_coll_free(struct omni_coll *c)
{
    if (!c)
        return;
    size_t pos = 0;
    struct omni_smap_slot *s;
    while ((s = omni_smap_next(&c->docs, &pos)))
        doc_free(s->val);
    omni_smap_free(&c->docs);
    for (size_t i = 0; i < c->nslots; i++)
        if (c->slots[i])
            chunk_free(c->slots[i]);
    omni_free(c->slots);
    omni_free(c->free_slots);
    omni_bm25_free(c->bm25);
    c->vs->free(c->vs);
    omni_free(c->name);
    omni_free(c->embedder);
    omni_free(c);
}

struct omni_doc *omni_coll_doc(const struct omni_coll *c, const char *id,
                               size_t n)
{
    return omni_smap_get(&c->docs, id, n);
}

static uint32_t take_slot(struct omni_coll *c)
{
    if (c->nfree)
        return c->free_slots[--c->nfree];
    if (c->nslots == c->cap) {
        c->cap = c->cap ? c->cap * 2 : 256;
        c->slots = omni_realloc(c->slots, c->cap * sizeof(void *));
    }
    c->slots[c->nslots] = NULL;
    return (uint32_t)c->nslots++;
}

static void give_slot(struct omni_coll *c, uint32_t slot)
{
    c->slots[slot] = NULL;
    if (c->nfree == c->freecap) {
        c->freecap = c->freecap ? c->freecap * 2 : 256;
        c->free_slots =
            omni_realloc(c->free_slots, c->freecap * sizeof *c->free_slots);
    }
    c->free_slots[c->nfree++] = slot;
}

int omni_coll_remove(struct omni_coll *c, const char *id, size_t n)
{
    struct omni_doc *d = omni_smap_del(&c->docs, id, n);
    if (!d)
        return -1;
    for (uint32_t i = 0; i < d->nchunks; i++) {
        uint32_t s = d->slots[i];
        omni_bm25_remove(c->bm25, s);
        c->vs->remove(c->vs, s);
        chunk_free(c->slots[s]);
        give_slot(c, s);
        c->nchunks--;
    }
    doc_free(d);
    return 0;
}

void omni_coll_put(struct omni_coll *c, struct omni_prep *p)
{
    omni_coll_remove(c, p->id, strlen(p->id));
    struct omni_doc *d = omni_calloc(1, sizeof *d);
    d->id = omni_strdup(p->id);
    memcpy(d->hash, p->hash, sizeof d->hash);
    d->metadata = p->metadata ? p->metadata : json_object();
    p->metadata = NULL;
    d->content_type = omni_strdup(p->content_type ? p->content_type : "");
    d->bytes = p->bytes;
    d->ingested_ms = p->ingested_ms;
    d->nchunks = p->nchunks;
    d->slots = omni_malloc((p->nchunks ? p->nchunks : 1) * sizeof *d->slots);
    struct omni_buf idx = OMNI_BUF_INIT;
    for (uint32_t i = 0; i < p->nchunks; i++) {
        struct omni_prep_chunk *pc = &p->chunks[i];
        struct omni_cchunk *ch = omni_calloc(1, sizeof *ch);
        ch->doc = d;
        ch->idx = i;
        ch->start = pc->start;
        ch->end = pc->end;
        ch->page = pc->page;
        ch->heading = pc->heading;
        ch->text = pc->text;
        ch->len = pc->len;
        pc->heading = pc->text = NULL;
        uint32_t s = take_slot(c);
        c->slots[s] = ch;
        d->slots[i] = s;
        omni_buf_reset(&idx);
        if (ch->heading) {
            omni_buf_adds(&idx, ch->heading);
            omni_buf_addch(&idx, '\n');
        }
        omni_buf_add(&idx, ch->text, ch->len);
        omni_bm25_add(c->bm25, s, idx.data, idx.len);
        c->vs->add(c->vs, s, p->vecs + (size_t)i * c->dim);
        c->nchunks++;
    }
    omni_buf_release(&idx);
    omni_smap_put(&c->docs, d->id, strlen(d->id), d);
}

/* ---- filters ---- */

enum omni_err omni_filter_check(const json_t *filter, char err[OMNI_ERR_LEN])
{
    if (!json_is_object(filter)) {
        snprintf(err, OMNI_ERR_LEN, "bad 'filter': want an object");
        return OMNI_E_BAD_REQUEST;
    }
    const char *key;
    json_t *v;
    json_object_foreach((json_t *)filter, key, v)
    {
        if (!json_is_object(v))
            continue;
        if (json_object_size(v) != 1) {
            snprintf(err, OMNI_ERR_LEN, "bad 'filter.%.64s': want one operator",
                     key);
            return OMNI_E_BAD_REQUEST;
        }
        const char *op = json_object_iter_key(json_object_iter(v));
        json_t *arg = json_object_iter_value(json_object_iter(v));
        bool list = !strcmp(op, "$in") || !strcmp(op, "$nin");
        if (!list && strcmp(op, "$eq") && strcmp(op, "$ne")) {
            snprintf(err, OMNI_ERR_LEN,
                     "bad 'filter.%.64s': unknown operator '%.16s' (want "
                     "$eq, $ne, $in or $nin)",
                     key, op);
            return OMNI_E_BAD_REQUEST;
        }
        if (list && !json_is_array(arg)) {
            snprintf(err, OMNI_ERR_LEN, "bad 'filter.%.64s.%s': want an array",
                     key, op);
            return OMNI_E_BAD_REQUEST;
        }
    }
    return OMNI_OK;
}

static bool in_list(const json_t *list, const json_t *v)
{
    for (size_t i = 0; v && i < json_array_size(list); i++)
        if (json_equal(json_array_get(list, i), v))
            return true;
    return false;
}

bool omni_filter_match(const json_t *filter, const json_t *md)
{
    const char *key;
    json_t *want;
    json_object_foreach((json_t *)filter, key, want)
    {
        json_t *have = json_object_get(md, key);
        if (!json_is_object(want)) {
            if (!have || !json_equal(have, want))
                return false;
            continue;
        }
        const char *op = json_object_iter_key(json_object_iter(want));
        json_t *arg = json_object_iter_value(json_object_iter(want));
        bool ok;
        if (!strcmp(op, "$eq"))
            ok = have && json_equal(have, arg);
        else if (!strcmp(op, "$ne"))
            ok = !have || !json_equal(have, arg);
        else if (!strcmp(op, "$in"))
            ok = in_list(arg, have);
        else
            ok = !in_list(arg, have);
        if (!ok)
            return false;
    }
    return true;
}

struct fctx {
    const struct omni_coll *c;
    const json_t *filter;
};

static bool label_ok(uint32_t label, void *arg)
{
    const struct fctx *f = arg;
    const struct omni_cchunk *ch =
        label < f->c->nslots ? f->c->slots[label] : NULL;
    return ch && omni_filter_match(f->filter, ch->doc->metadata);
}

/* ---- fusion and queries ---- */

size_t omni_rrf(const struct omni_hit *a, size_t na, float wa,
                const struct omni_hit *b, size_t nb, float wb, float k,
                struct omni_hit *out, size_t max)
{
    size_t n = na + nb;
    struct omni_hit *all = omni_malloc((n ? n : 1) * sizeof *all);
    size_t m = 0;
    for (int side = 0; side < 2; side++) {
        const struct omni_hit *l = side ? b : a;
        size_t nl = side ? nb : na;
        float w = side ? wb : wa;
        for (size_t r = 0; r < nl; r++) {
            float s = w / (k + (float)(r + 1));
            size_t j = 0;
            while (j < m && all[j].label != l[r].label)
                j++;
            if (j == m)
                all[m++] = (struct omni_hit){l[r].label, 0};
            all[j].dist -= s;
        }
    }
    struct omni_topk t = {out, 0, max};
    for (size_t i = 0; i < m; i++)
        omni_topk_push(&t, all[i].label, all[i].dist);
    omni_topk_sort(&t);
    omni_free(all);
    return t.n;
}

struct exact_ctx {
    const float *q;
    struct omni_vstore *vs;
    struct omni_topk t;
    struct fctx *f;
};

static void exact_one(uint32_t label, const float *v, void *arg)
{
    struct exact_ctx *e = arg;
    if (!label_ok(label, e->f))
        return;
    omni_topk_push(&e->t, label,
                   omni_vec_dist(e->vs->metric, e->q, v, e->vs->dim));
}

/* Vector search; with a filter, fall back to an exact scan of the
 * store when the graph walk finds fewer than k matches. */
static size_t vsearch(struct omni_coll *c, const struct omni_query *q,
                      struct fctx *f, size_t k, struct omni_hit *out)
{
    struct omni_vsearch s = {k, q->ef, f ? label_ok : NULL, f};
    size_t n = c->vs->search(c->vs, q->vec, &s, out);
    if (!f || n >= k || n >= c->nchunks)
        return n;
    struct exact_ctx e = {q->vec, c->vs, {out, 0, k}, f};
    c->vs->each(c->vs, exact_one, &e);
    omni_topk_sort(&e.t);
    return e.t.n;
}

#define TIE_SLACK 32

static const struct omni_coll *sort_coll;

/* Closest first; equal distances by document id, then chunk number. */
static int canon_cmp(const void *a, const void *b)
{
    const struct omni_hit *x = a, *y = b;
    if (x->dist != y->dist)
        return x->dist < y->dist ? -1 : 1;
    const struct omni_cchunk *cx = sort_coll->slots[x->label];
    const struct omni_cchunk *cy = sort_coll->slots[y->label];
    int r = strcmp(cx->doc->id, cy->doc->id);
    if (r)
        return r;
    return cx->idx < cy->idx ? -1 : cx->idx > cy->idx;
}

static size_t canonical(const struct omni_coll *c, struct omni_hit *h, size_t n,
                        size_t keep)
{
    sort_coll = c;
    qsort(h, n, sizeof *h, canon_cmp);
    sort_coll = NULL;
    return n < keep ? n : keep;
}

static float find_score(const struct omni_hit *h, size_t n, uint32_t label,
                        bool ip)
{
    for (size_t i = 0; i < n; i++)
        if (h[i].label == label)
            return ip ? 1.0f - h[i].dist : -h[i].dist;
    return 0;
}

size_t omni_coll_query(struct omni_coll *c, const struct omni_query *q,
                       struct omni_qhit *out)
{
    if (!q->k || !c->nchunks)
        return 0;
    struct fctx fc = {c, q->filter};
    struct fctx *f = q->filter && json_object_size(q->filter) ? &fc : NULL;
    size_t cand = q->candidates ? q->candidates : 100;
    if (cand < q->k)
        cand = q->k;
    size_t kb = q->mode == OMNI_Q_HYBRID ? cand : q->k;
    /* Fetch a few more than needed so that ties at the cut are settled
     * by document id, not by slot numbers (which differ between a
     * worker that ingested and one that loaded from Redis). */
    size_t kx = kb + TIE_SLACK;
    struct omni_hit *hb = omni_malloc(kx * sizeof *hb);
    struct omni_hit *hv = omni_malloc(kx * sizeof *hv);
    size_t nb = 0, nv = 0;
    if (q->mode != OMNI_Q_VECTOR) {
        struct omni_vsearch s = {kx, 0, f ? label_ok : NULL, f};
        nb = canonical(c, hb,
                       omni_bm25_search(c->bm25, q->text, q->len, &s, hb), kb);
    }
    if (q->mode != OMNI_Q_BM25)
        nv = canonical(c, hv, vsearch(c, q, f, kx, hv), kb);
    const struct omni_hit *res;
    struct omni_hit *fused = NULL;
    size_t n;
    if (q->mode == OMNI_Q_HYBRID) {
        fused = omni_malloc((q->k + TIE_SLACK) * sizeof *fused);
        float wb = q->w_bm25, wv = q->w_vec;
        if (wb == 0 && wv == 0)
            wb = wv = 1;
        n = omni_rrf(hb, nb, wb, hv, nv, wv, q->rrf_k > 0 ? q->rrf_k : 60,
                     fused, q->k + TIE_SLACK);
        n = canonical(c, fused, n, q->k);
        res = fused;
    } else {
        res = q->mode == OMNI_Q_BM25 ? hb : hv;
        n = q->mode == OMNI_Q_BM25 ? nb : nv;
    }
    for (size_t i = 0; i < n; i++) {
        uint32_t l = res[i].label;
        out[i].chunk = c->slots[l];
        out[i].bm25 = find_score(hb, nb, l, false);
        out[i].vector = find_score(hv, nv, l, true);
        if (q->mode == OMNI_Q_HYBRID)
            out[i].score = -res[i].dist;
        else
            out[i].score = q->mode == OMNI_Q_BM25 ? out[i].bm25 : out[i].vector;
    }
    omni_free(fused);
    omni_free(hb);
    omni_free(hv);
    return n;
}

static float idf_weight(const char *w, size_t n, void *arg)
{
    return omni_bm25_idf(arg, w, n);
}

void omni_coll_embed_query(const struct omni_coll *c, struct omni_embedder *e,
                           const char *text, size_t n, float *out)
{
    omni_embed_weighted(e, text, n, idf_weight, c->bm25, out);
}
