/*
 * worker_table - chained hash table of uint64_t keys (worker_table.h).
 */
#include "worker_table.h"

#include "omni_alloc.h"

/* Broker keys and libomni ids are sequential: mix them (splitmix64's
 * finaliser) so consecutive keys spread over the buckets. */
static size_t slot(const struct omni_htab *t, uint64_t k)
{
    k ^= k >> 30;
    k *= 0xbf58476d1ce4e5b9ULL;
    k ^= k >> 27;
    k *= 0x94d049bb133111ebULL;
    k ^= k >> 31;
    return (size_t)k & (t->nb - 1);
}

void omni_htab_init(struct omni_htab *t)
{
    t->b = NULL;
    t->nb = 0;
    t->n = 0;
    t->scan = 0;
}

void omni_htab_release(struct omni_htab *t)
{
    omni_free(t->b);
    omni_htab_init(t);
}

static void grow(struct omni_htab *t)
{
    struct omni_htab bigger = {NULL, t->nb ? t->nb * 2 : 64, 0, 0};
    bigger.b = omni_calloc(bigger.nb, sizeof(struct omni_hnode *));
    for (size_t i = 0; i < t->nb; i++) {
        struct omni_hnode *e = t->b[i];
        while (e) {
            struct omni_hnode *next = e->next;
            size_t s = slot(&bigger, e->key);
            e->next = bigger.b[s];
            bigger.b[s] = e;
            e = next;
        }
    }
    bigger.n = t->n;
    omni_free(t->b);
    *t = bigger;
}

void omni_htab_put(struct omni_htab *t, struct omni_hnode *node)
{
    if (t->n >= t->nb)
        grow(t);
    size_t s = slot(t, node->key);
    node->next = t->b[s];
    t->b[s] = node;
    t->n++;
}

struct omni_hnode *omni_htab_get(const struct omni_htab *t, uint64_t key)
{
    if (!t->n)
        return NULL;
    for (struct omni_hnode *e = t->b[slot(t, key)]; e; e = e->next)
        if (e->key == key)
            return e;
    return NULL;
}

struct omni_hnode *omni_htab_del(struct omni_htab *t, uint64_t key)
{
    if (!t->n)
        return NULL;
    for (struct omni_hnode **pp = &t->b[slot(t, key)]; *pp; pp = &(*pp)->next) {
        struct omni_hnode *e = *pp;
        if (e->key == key) {
            *pp = e->next;
            e->next = NULL;
            t->n--;
            return e;
        }
    }
    return NULL;
}

struct omni_hnode *omni_htab_take_any(struct omni_htab *t)
{
    if (!t->n)
        return NULL;
    /* Resume where the last call stopped; wrap once, since callbacks
     * run between calls may have put entries into earlier buckets. */
    for (size_t k = 0; k < t->nb; k++) {
        size_t i = (t->scan + k) & (t->nb - 1);
        struct omni_hnode *e = t->b[i];
        if (e) {
            t->b[i] = e->next;
            e->next = NULL;
            t->n--;
            t->scan = i;
            return e;
        }
    }
    return NULL;
}
