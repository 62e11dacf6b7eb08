/*
 * worker_table - an intrusive hash table keyed by uint64_t.
 *
 * The worker runtime keeps its requests in flight (by broker key) and
 * its sub-requests (by libomni id) here: thousands of entries, looked up
 * on every reply.  Entries embed a struct omni_hnode; the table owns no
 * entry memory.  Chained buckets, doubled when the load passes 1.
 */
#ifndef OMNI_WORKER_TABLE_H
#define OMNI_WORKER_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct omni_hnode {
    uint64_t key;
    struct omni_hnode *next;
};

struct omni_htab {
    struct omni_hnode **b;
    size_t nb;   /* buckets, a power of two (0 before the first put) */
    size_t n;    /* entries */
    size_t scan; /* where omni_htab_take_any looks first */
};

void omni_htab_init(struct omni_htab *t);
/* Free the buckets; entries still in the table are the caller's. */
void omni_htab_release(struct omni_htab *t);
/* Insert node under node->key (the caller checks for duplicates). */
void omni_htab_put(struct omni_htab *t, struct omni_hnode *node);
struct omni_hnode *omni_htab_get(const struct omni_htab *t, uint64_t key);
/* Unlink and return the entry for key, or NULL. */
struct omni_hnode *omni_htab_del(struct omni_htab *t, uint64_t key);
/* Unlink and return some entry, or NULL when empty: for draining a table
 * whose entries' callbacks may remove other entries meanwhile. */
struct omni_hnode *omni_htab_take_any(struct omni_htab *t);

#endif
