/*
 * smap - a string-keyed hash map (open addressing, linear probing).
 *
 * Keys are copied (any bytes, explicit length); values are borrowed
 * pointers the caller owns.  Deletion uses backward-shift, so there are
 * no tombstones and lookups stay short.  Iterate with omni_smap_next().
 * Never fails: allocation aborts on exhaustion (omni_alloc).
 */
#ifndef OMNI_SMAP_H
#define OMNI_SMAP_H

#include <stddef.h>
#include <stdint.h>

struct omni_smap_slot {
    char *key; /* NULL: empty slot */
    size_t klen;
    uint64_t hash;
    void *val;
};

struct omni_smap {
    struct omni_smap_slot *slots;
    size_t cap; /* power of two, or 0 */
    size_t len;
};

#define OMNI_SMAP_INIT                                                         \
    {                                                                          \
        NULL, 0, 0                                                             \
    }

/* 64-bit hash of n bytes (FNV-1a with a final avalanche). */
uint64_t omni_hash64(const void *p, size_t n, uint64_t seed);

/* The value stored under key, or NULL. */
void *omni_smap_get(const struct omni_smap *m, const char *key, size_t n);
/* Store val under key (replacing); returns the previous value or NULL. */
void *omni_smap_put(struct omni_smap *m, const char *key, size_t n, void *val);
/* Remove key; returns its value or NULL. */
void *omni_smap_del(struct omni_smap *m, const char *key, size_t n);
/* Iterate: start with *pos = 0; returns the next used slot or NULL.
 * The map must not change during the iteration. */
struct omni_smap_slot *omni_smap_next(const struct omni_smap *m, size_t *pos);
/* Free the table and keys (not the values). */
void omni_smap_free(struct omni_smap *m);

#endif
