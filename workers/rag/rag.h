/*
 * rag - the "rag" service: operations ingest, query, delete, list,
 * context, semcache_get and semcache_put (protocol/PROTOCOL.md section
 * 5) on collections held in memory and, with redis_url set, persisted
 * in Redis (store.h) and shared by every rag worker.
 */
#ifndef OMNI_RAG_H
#define OMNI_RAG_H

/* Run the worker (the whole of omni-rag's main). */
int omni_rag_main(int argc, char **argv);

#endif
