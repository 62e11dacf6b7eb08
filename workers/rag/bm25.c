/*
 * bm25 - inverted index: word -> postings (label, tf), per-label length
 * and unique word list (for removal).  Scoring accumulates into a dense
 * array indexed by label and collects the touched labels, so a query
 * costs the length of its words' postings.
 */
#include "bm25.h"

#include <math.h>
#include <string.h>

#include "omni_alloc.h"
#include "smap.h"
#include "tok.h"

struct posting {
    uint32_t label;
    uint32_t tf;
};

struct term {
    struct posting *p;
    uint32_t n, cap;
    uint32_t id;
};

struct doc {
    uint32_t len;    /* words */
    uint32_t nterms; /* unique words */
    uint32_t *terms; /* term ids; NULL when the label is absent */
};

struct omni_bm25 {
    struct omni_bm25_params p;
    struct omni_tok *tok;
    struct omni_smap dict; /* word -> struct term */
    struct term **terms;   /* by id */
    size_t nterms, tcap;
    struct doc *docs;
    size_t ndocs_cap, live;
    uint64_t total_len;
    float *acc; /* scratch scores, ndocs_cap */
    uint32_t *touched;
    /* Scratch for one add: term ids and counts. */
    uint32_t *ids, *cnt;
    size_t nids, idcap;
    uint32_t *mark, *where; /* per term: generation seen, index in ids */
    size_t mcap;
    uint32_t gen;
};

struct omni_bm25 *omni_bm25_new(const struct omni_bm25_params *p)
{
    struct omni_bm25 *b = omni_calloc(1, sizeof *b);
    b->p = p ? *p : (struct omni_bm25_params){1.2f, 0.75f, true, true};
    b->tok = omni_tok_new(b->p.stem, b->p.stop);
    return b;
}

void omni_bm25_free(struct omni_bm25 *b)
{
    if (!b)
        return;
    omni_tok_free(b->tok);
    omni_smap_free(&b->dict);
    omni_free(b->mark);
    omni_free(b->where);
    for (size_t i = 0; i < b->nterms; i++) {
        omni_free(b->terms[i]->p);
        omni_free(b->terms[i]);
    }
    omni_free(b->terms);
    for (size_t i = 0; i < b->ndocs_cap; i++)
        omni_free(b->docs[i].terms);
    omni_free(b->docs);
    omni_free(b->acc);
    omni_free(b->touched);
    omni_free(b->ids);
    omni_free(b->cnt);
    omni_free(b);
}

size_t omni_bm25_count(const struct omni_bm25 *b)
{
    return b->live;
}

static uint32_t term_id(struct omni_bm25 *b, const char *w, size_t n,
                        bool create)
{
    struct term *t = omni_smap_get(&b->dict, w, n);
    if (t)
        return t->id;
    if (!create)
        return UINT32_MAX;
    if (b->nterms == b->tcap) {
        b->tcap = b->tcap ? b->tcap * 2 : 1024;
        b->terms = omni_realloc(b->terms, b->tcap * sizeof(void *));
    }
    t = omni_calloc(1, sizeof *t);
    t->id = (uint32_t)b->nterms++;
    b->terms[t->id] = t;
    omni_smap_put(&b->dict, w, n, t);
    return t->id;
}

/* Collect the unique words of one text with their counts. */
static void on_add_word(const char *w, size_t n, void *arg)
{
    struct omni_bm25 *b = arg;
    uint32_t id = term_id(b, w, n, true);
    if (id >= b->mcap) {
        size_t m = b->tcap;
        b->mark = omni_realloc(b->mark, m * sizeof *b->mark);
        b->where = omni_realloc(b->where, m * sizeof *b->where);
        memset(b->mark + b->mcap, 0, (m - b->mcap) * sizeof *b->mark);
        b->mcap = m;
    }
    if (b->mark[id] == b->gen) {
        b->cnt[b->where[id]]++;
        return;
    }
    if (b->nids == b->idcap) {
        b->idcap = b->idcap ? b->idcap * 2 : 256;
        b->ids = omni_realloc(b->ids, b->idcap * sizeof *b->ids);
        b->cnt = omni_realloc(b->cnt, b->idcap * sizeof *b->cnt);
    }
    b->mark[id] = b->gen;
    b->where[id] = (uint32_t)b->nids;
    b->ids[b->nids] = id;
    b->cnt[b->nids] = 1;
    b->nids++;
}

static void ensure_doc(struct omni_bm25 *b, uint32_t label)
{
    if (label < b->ndocs_cap)
        return;
    size_t n = b->ndocs_cap ? b->ndocs_cap : 1024;
    while (n <= label)
        n *= 2;
    b->docs = omni_realloc(b->docs, n * sizeof *b->docs);
    memset(b->docs + b->ndocs_cap, 0, (n - b->ndocs_cap) * sizeof *b->docs);
    b->acc = omni_realloc(b->acc, n * sizeof *b->acc);
    memset(b->acc + b->ndocs_cap, 0, (n - b->ndocs_cap) * sizeof *b->acc);
    b->touched = omni_realloc(b->touched, n * sizeof *b->touched);
    b->ndocs_cap = n;
}

void omni_bm25_add(struct omni_bm25 *b, uint32_t label, const char *text,
                   size_t n)
{
    ensure_doc(b, label);
    if (b->docs[label].terms)
        omni_bm25_remove(b, label);
    b->nids = 0;
    if (++b->gen == 0) {
        memset(b->mark, 0, b->mcap * sizeof *b->mark);
        b->gen = 1;
    }
    omni_tok_each(b->tok, text, n, on_add_word, b);
    struct doc *d = &b->docs[label];
    d->terms = omni_malloc((b->nids ? b->nids : 1) * sizeof *d->terms);
    d->nterms = (uint32_t)b->nids;
    d->len = 0;
    for (size_t i = 0; i < b->nids; i++) {
        struct term *t = b->terms[b->ids[i]];
        if (t->n == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 4;
            t->p = omni_realloc(t->p, t->cap * sizeof *t->p);
        }
        t->p[t->n++] = (struct posting){label, b->cnt[i]};
        d->terms[i] = b->ids[i];
        d->len += b->cnt[i];
    }
    b->live++;
    b->total_len += d->len;
}

int omni_bm25_remove(struct omni_bm25 *b, uint32_t label)
{
    if (label >= b->ndocs_cap || !b->docs[label].terms)
        return -1;
    struct doc *d = &b->docs[label];
    for (uint32_t i = 0; i < d->nterms; i++) {
        struct term *t = b->terms[d->terms[i]];
        for (uint32_t k = 0; k < t->n; k++)
            if (t->p[k].label == label) {
                t->p[k] = t->p[--t->n];
                break;
            }
    }
    b->total_len -= d->len;
    b->live--;
    omni_free(d->terms);
    d->terms = NULL;
    d->nterms = d->len = 0;
    return 0;
}

float omni_bm25_idf(const struct omni_bm25 *b, const char *w, size_t n)
{
    const struct term *t = omni_smap_get(&b->dict, w, n);
    double N = (double)b->live;
    double df = t ? t->n : 0;
    return (float)log(1.0 + (N - df + 0.5) / (df + 0.5));
}

struct qctx {
    struct omni_bm25 *b;
    size_t ntouched;
    float avgdl;
};

static void on_query_word(const char *w, size_t n, void *arg)
{
    struct qctx *q = arg;
    struct omni_bm25 *b = q->b;
    uint32_t id = term_id(b, w, n, false);
    if (id == UINT32_MAX || !b->terms[id]->n)
        return;
    struct term *t = b->terms[id];
    double N = (double)b->live, df = t->n;
    float idf = (float)log(1.0 + (N - df + 0.5) / (df + 0.5));
    float k1 = b->p.k1, bb = b->p.b;
    for (uint32_t i = 0; i < t->n; i++) {
        uint32_t l = t->p[i].label;
        float tf = (float)t->p[i].tf;
        float dl = (float)b->docs[l].len;
        float s =
            idf * tf * (k1 + 1) / (tf + k1 * (1 - bb + bb * dl / q->avgdl));
        if (b->acc[l] == 0)
            b->touched[q->ntouched++] = l;
        b->acc[l] += s;
    }
}

size_t omni_bm25_search(struct omni_bm25 *b, const char *q, size_t n,
                        const struct omni_vsearch *s, struct omni_hit *out)
{
    if (!b->live || !s->k)
        return 0;
    struct qctx c = {b, 0, (float)((double)b->total_len / (double)b->live)};
    if (c.avgdl <= 0)
        c.avgdl = 1;
    omni_tok_each(b->tok, q, n, on_query_word, &c);
    struct omni_topk t = {out, 0, s->k};
    for (size_t i = 0; i < c.ntouched; i++) {
        uint32_t l = b->touched[i];
        float sc = b->acc[l];
        b->acc[l] = 0;
        if (s->filter && !s->filter(l, s->arg))
            continue;
        omni_topk_push(&t, l, -sc);
    }
    omni_topk_sort(&t);
    return t.n;
}
