/*
 * ingest - one document object of an ingest request to a struct
 * omni_prep: validation, text extraction, chunking and the version
 * hash.  Embedding is left to the caller (local or through the llm
 * service), so this step never waits.
 *
 * Errors name the document: empty content, binary data in a text type,
 * invalid base64, unreadable PDF, unsupported content type
 * (BAD_REQUEST), and content over max_bytes (TOO_LARGE).
 */
#ifndef OMNI_RAG_INGEST_H
#define OMNI_RAG_INGEST_H

#include <jansson.h>

#include "chunk.h"
#include "coll.h"
#include "embed.h"
#include "omni_buf.h"
#include "omni_err.h"

#define OMNI_RAG_ID_MAX 512

/* Parse a request's "chunking" option ({"mode":"chars"|"tokens",
 * "size","overlap"}) over defaults; NULL opt keeps the defaults. */
enum omni_err omni_ingest_chunking(const json_t *opt,
                                   const struct omni_chunk_opts *chars_def,
                                   struct omni_chunk_opts *out,
                                   char err[OMNI_ERR_LEN]);

/* Prepare doc (a JSON object) into *out (chunks, no vectors yet). */
enum omni_err omni_ingest_prepare(const json_t *doc,
                                  const struct omni_chunk_opts *co,
                                  size_t max_bytes, struct omni_prep **out,
                                  char err[OMNI_ERR_LEN]);

/* The text a chunk is embedded and indexed as: heading path + text. */
void omni_ingest_index_text(const struct omni_prep_chunk *c,
                            struct omni_buf *out);

/* Fill p->vecs with the local embedder. */
void omni_ingest_embed_local(struct omni_embedder *e, struct omni_prep *p);

#endif
