/*
 * store - RAG persistence in Redis (hiredis async on the worker's loop).
 *
 * Keys (one hash tag per collection, so a collection's keys share a
 * Redis Cluster slot and one MULTI/EXEC can touch them all):
 *   omni:{rag:C}:meta         hash  dim, embedder, created_ms
 *   omni:{rag:C}:docs         set   document ids
 *   omni:{rag:C}:doc:ID       hash  hash, metadata, bytes, chunks,
 *                                   content_type, ingested_ms
 *   omni:{rag:C}:chunks:ID    hash  t:N text, p:N provenance JSON,
 *                                   v:N float32 little-endian vector
 *   omni:{rag}:changes        stream of {op put|del, coll, doc, origin}
 * Writes of one request are one MULTI/EXEC, then an XADD per document
 * (the stream has its own slot, so it cannot join the transaction on a
 * cluster).  At start, and after every reconnection, the whole state is
 * loaded again (SCAN for the meta keys) into a new set of collections;
 * a second connection then follows the stream with XREAD BLOCK from
 * the position read before loading, applying other workers' changes.
 * Nothing here blocks the loop.  While disconnected, writes fail at
 * once (UNAVAILABLE) and a reconnection is tried every second.
 */
#ifndef OMNI_RAG_STORE_H
#define OMNI_RAG_STORE_H

#include <event2/event.h>
#include <stdbool.h>

#include "coll.h"
#include "omni_err.h"
#include "smap.h"

struct omni_rstore;

struct omni_rstore_cbs {
    /* A complete load: colls (name -> struct omni_coll) is the
     * callee's, map and collections. */
    void (*loaded)(struct omni_smap *colls, void *arg);
    /* Another worker wrote document doc of coll: p is its new version
     * (the callee's), or NULL when it was deleted. */
    void (*changed)(const char *coll, uint32_t dim, const char *embedder,
                    const char *doc, struct omni_prep *p, void *arg);
};

/* Result of a write: OMNI_OK, or a code and message. */
typedef void (*omni_rstore_done)(enum omni_err rc, const char *msg, void *arg);

/* Parse url (redis://[user:pass@]host[:port][/db] or
 * unix:///path[?db=N]) and start connecting.  NULL with err set if the
 * URL is malformed. */
struct omni_rstore *omni_rstore_new(struct event_base *base, const char *url,
                                    const struct omni_coll_params *cp,
                                    const struct omni_rstore_cbs *cbs,
                                    void *arg, char err[OMNI_ERR_LEN]);
void omni_rstore_free(struct omni_rstore *rs);
/* Connected and able to take writes. */
bool omni_rstore_up(const struct omni_rstore *rs);
/* "up", "loading" or "down", for stats. */
const char *omni_rstore_state(const struct omni_rstore *rs);

/* Write n document versions of coll in one transaction.  done is always
 * called later (never from inside this call); the preps are borrowed
 * until then. */
void omni_rstore_put(struct omni_rstore *rs, const char *coll, uint32_t dim,
                     const char *embedder, struct omni_prep *const *docs,
                     size_t n, omni_rstore_done done, void *arg);
/* Delete n documents of coll in one transaction; as above. */
void omni_rstore_del(struct omni_rstore *rs, const char *coll,
                     const char *const *ids, size_t n, omni_rstore_done done,
                     void *arg);

#endif
