/*
 * smap - string-keyed hash map with linear probing and backward-shift
 * deletion.  Load factor at most 1/2; the table doubles when it passes.
 */
#include "smap.h"

#include <string.h>

#include "omni_alloc.h"

uint64_t omni_hash64(const void *p, size_t n, uint64_t seed)
{
    const unsigned char *s = p;
    uint64_t h = 0xcbf29ce484222325ULL ^ seed;
    for (size_t i = 0; i < n; i++) {
        h ^= s[i];
        h *= 0x100000001b3ULL;
    }
    /* FNV alone mixes the high bits poorly; finish with splitmix64. */
    h ^= h >> 30;
    h *= 0xbf58476d1ce4e5b9ULL;
    h ^= h >> 27;
    h *= 0x94d049bb133111ebULL;
    h ^= h >> 31;
    return h;
}

static size_t find(const struct omni_smap *m, const char *key, size_t n,
                   uint64_t h)
{
    size_t mask = m->cap - 1;
    size_t i = (size_t)h & mask;
    while (m->slots[i].key) {
        const struct omni_smap_slot *s = &m->slots[i];
        if (s->hash == h && s->klen == n && memcmp(s->key, key, n) == 0)
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

void *omni_smap_get(const struct omni_smap *m, const char *key, size_t n)
{
    if (!m->len)
        return NULL;
    size_t i = find(m, key, n, omni_hash64(key, n, 0));
    return m->slots[i].key ? m->slots[i].val : NULL;
}

static void grow(struct omni_smap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 16;
    struct omni_smap_slot *old = m->slots;
    size_t ocap = m->cap;
    m->slots = omni_calloc(cap, sizeof *m->slots);
    m->cap = cap;
    for (size_t i = 0; i < ocap; i++) {
        if (!old[i].key)
            continue;
        size_t j = (size_t)old[i].hash & (cap - 1);
        while (m->slots[j].key)
            j = (j + 1) & (cap - 1);
        m->slots[j] = old[i];
    }
    omni_free(old);
}

void *omni_smap_put(struct omni_smap *m, const char *key, size_t n, void *val)
{
    if ((m->len + 1) * 2 > m->cap)
        grow(m);
    uint64_t h = omni_hash64(key, n, 0);
    size_t i = find(m, key, n, h);
    struct omni_smap_slot *s = &m->slots[i];
    if (s->key) {
        void *prev = s->val;
        s->val = val;
        return prev;
    }
    s->key = omni_strndup(key, n);
    s->klen = n;
    s->hash = h;
    s->val = val;
    m->len++;
    return NULL;
}

void *omni_smap_del(struct omni_smap *m, const char *key, size_t n)
{
    if (!m->len)
        return NULL;
    size_t i = find(m, key, n, omni_hash64(key, n, 0));
    if (!m->slots[i].key)
        return NULL;
    void *val = m->slots[i].val;
    omni_free(m->slots[i].key);
    m->slots[i].key = NULL;
    m->len--;
    /* Backward shift: move later entries of the run into the hole when
     * their home slot does not lie between the hole and themselves. */
    size_t mask = m->cap - 1;
    size_t hole = i, j = i;
    for (;;) {
        j = (j + 1) & mask;
        if (!m->slots[j].key)
            break;
        size_t home = (size_t)m->slots[j].hash & mask;
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            m->slots[hole] = m->slots[j];
            m->slots[j].key = NULL;
            hole = j;
        }
    }
    return val;
}

struct omni_smap_slot *omni_smap_next(const struct omni_smap *m, size_t *pos)
{
    while (*pos < m->cap) {
        struct omni_smap_slot *s = &m->slots[(*pos)++];
        if (s->key)
            return s;
    }
    return NULL;
}

void omni_smap_free(struct omni_smap *m)
{
    for (size_t i = 0; i < m->cap; i++)
        omni_free(m->slots[i].key);
    omni_free(m->slots);
    m->slots = NULL;
    m->cap = m->len = 0;
}
