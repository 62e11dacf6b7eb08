/*
 * embed - hashed n-gram embedder.
 *
 * Term frequencies are counted in a scratch open-addressing table keyed
 * by the feature's 64-bit hash (collisions of 64-bit hashes are
 * ignored), reused across calls so a batch allocates nothing.
 */
#include "embed.h"

#include <math.h>
#include <string.h>

#include "omni_alloc.h"
#include "smap.h"
#include "tok.h"

enum { G_UNI, G_BI, G_CHAR };

struct feat {
    uint64_t h; /* 0: empty */
    uint32_t tf;
    uint32_t group;
    float iw; /* word weight (1 unless a query is weighted) */
};

struct omni_embedder {
    uint32_t dim;
    struct omni_embed_weights w;
    struct omni_tok *tok;
    struct feat *tab;
    size_t cap, len;
    uint64_t prev; /* hash of the previous word, 0 at the start */
    float prev_w;
    omni_embed_wfn wfn;
    void *warg;
};

static const struct omni_embed_weights default_weights = {1.0f, 0.1f, 1.0f};

struct omni_embedder *omni_embed_new(uint32_t dim,
                                     const struct omni_embed_weights *w)
{
    struct omni_embedder *e = omni_calloc(1, sizeof *e);
    e->dim = dim;
    e->w = w ? *w : default_weights;
    e->tok = omni_tok_new(true, true);
    e->cap = 1024;
    e->tab = omni_calloc(e->cap, sizeof *e->tab);
    return e;
}

void omni_embed_free(struct omni_embedder *e)
{
    if (!e)
        return;
    omni_tok_free(e->tok);
    omni_free(e->tab);
    omni_free(e);
}

uint32_t omni_embed_dim(const struct omni_embedder *e)
{
    return e->dim;
}

static void count(struct omni_embedder *e, uint64_t h, uint32_t group, float iw)
{
    if (!h)
        h = 1;
    if ((e->len + 1) * 2 > e->cap) {
        struct feat *old = e->tab;
        size_t ocap = e->cap;
        e->cap *= 2;
        e->tab = omni_calloc(e->cap, sizeof *e->tab);
        for (size_t i = 0; i < ocap; i++) {
            if (!old[i].h)
                continue;
            size_t j = (size_t)old[i].h & (e->cap - 1);
            while (e->tab[j].h)
                j = (j + 1) & (e->cap - 1);
            e->tab[j] = old[i];
        }
        omni_free(old);
    }
    size_t i = (size_t)h & (e->cap - 1);
    while (e->tab[i].h && e->tab[i].h != h)
        i = (i + 1) & (e->cap - 1);
    if (!e->tab[i].h) {
        e->tab[i].h = h;
        e->tab[i].group = group;
        e->tab[i].iw = iw;
        e->len++;
    }
    e->tab[i].tf++;
    if (iw > e->tab[i].iw)
        e->tab[i].iw = iw;
}

static void on_word(const char *w, size_t n, void *arg)
{
    struct omni_embedder *e = arg;
    uint64_t h = omni_hash64(w, n, G_UNI);
    float iw = e->wfn ? e->wfn(w, n, e->warg) : 1.0f;
    count(e, h, G_UNI, iw);
    if (e->prev)
        count(e, (e->prev * 0x9e3779b97f4a7c15ULL) ^ h ^ G_BI, G_BI,
              (iw + e->prev_w) / 2);
    e->prev = h;
    e->prev_w = iw;
    /* Character n-grams of "<w>", lengths 3 to 5 (bytes). */
    char pad[OMNI_TOK_MAX + 2];
    if (n > OMNI_TOK_MAX)
        n = OMNI_TOK_MAX;
    pad[0] = '<';
    memcpy(pad + 1, w, n);
    pad[n + 1] = '>';
    size_t pn = n + 2;
    for (size_t g = 3; g <= 5; g++)
        for (size_t i = 0; i + g <= pn; i++)
            count(e, omni_hash64(pad + i, g, G_CHAR), G_CHAR, iw);
}

void omni_embed_weighted(struct omni_embedder *e, const char *text, size_t n,
                         omni_embed_wfn wfn, void *arg, float *out)
{
    memset(out, 0, e->dim * sizeof *out);
    e->prev = 0;
    e->wfn = wfn;
    e->warg = arg;
    omni_tok_each(e->tok, text, n, on_word, e);
    const float gw[] = {e->w.unigram, e->w.bigram, e->w.chargram};
    for (size_t i = 0; i < e->cap && e->len; i++) {
        struct feat *f = &e->tab[i];
        if (!f->h)
            continue;
        float v = f->iw * gw[f->group] * (1.0f + logf((float)f->tf));
        /* Bucket and sign from independent bits of the hash. */
        uint32_t b = (uint32_t)((f->h >> 1) % e->dim);
        out[b] += (f->h & 1) ? v : -v;
        f->h = 0;
        f->tf = 0;
        e->len--;
    }
    double ss = 0;
    for (uint32_t i = 0; i < e->dim; i++)
        ss += (double)out[i] * out[i];
    if (ss > 0) {
        float inv = (float)(1.0 / sqrt(ss));
        for (uint32_t i = 0; i < e->dim; i++)
            out[i] *= inv;
    }
}

void omni_embed_one(struct omni_embedder *e, const char *text, size_t n,
                    float *out)
{
    omni_embed_weighted(e, text, n, NULL, NULL, out);
}

void omni_embed_batch(struct omni_embedder *e, const char *const *texts,
                      const size_t *lens, size_t count_, float *out)
{
    for (size_t i = 0; i < count_; i++)
        omni_embed_one(e, texts[i], lens[i], out + i * e->dim);
}
