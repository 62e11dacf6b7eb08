/*
 * coll - one collection in memory: documents, chunks, the BM25 index
 * and the vector store, and the query paths over them.
 *
 * Chunks live in slots (uint32 labels shared by both indexes); a
 * document owns the slots of its chunks.  A new version of a document
 * arrives as a struct omni_prep (chunked and embedded elsewhere) and
 * replaces the old one in one call, so the indexes never hold half a
 * document.  Queries: BM25, vector, or hybrid by reciprocal rank fusion,
 * with metadata filters (equality, $eq, $ne, $in, $nin; fields ANDed).
 */
#ifndef OMNI_RAG_COLL_H
#define OMNI_RAG_COLL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bm25.h"
#include "embed.h"
#include "omni_err.h"
#include "smap.h"
#include "vec.h"

struct omni_doc;

struct omni_cchunk {
    struct omni_doc *doc;
    uint32_t idx;        /* chunk number within its document */
    uint32_t start, end; /* byte offsets in the document's text */
    uint32_t page;       /* 1-based PDF page, 0 when not a PDF */
    char *heading;       /* heading path, or NULL */
    char *text;
    size_t len;
};

struct omni_doc {
    char *id;
    char hash[65];    /* sha256 hex of the version */
    json_t *metadata; /* an object, never NULL */
    char *content_type;
    uint64_t bytes;      /* size of the content as received */
    int64_t ingested_ms; /* wall clock */
    uint32_t nchunks;
    uint32_t *slots;
};

struct omni_prep_chunk {
    char *text;
    size_t len;
    uint32_t start, end, page;
    char *heading;
};

/* A document version ready to enter a collection. */
struct omni_prep {
    char *id;
    char hash[65];
    json_t *metadata;
    char *content_type;
    uint64_t bytes;
    int64_t ingested_ms;
    struct omni_prep_chunk *chunks;
    uint32_t nchunks;
    float *vecs; /* nchunks x dim */
};

void omni_prep_free(struct omni_prep *p);

struct omni_coll_params {
    struct omni_bm25_params bm25;
    struct omni_hnsw_params hnsw;
    size_t exact_below; /* flat search under this many vectors: 2000 */
};

struct omni_coll {
    char *name;
    uint32_t dim;
    char *embedder;
    struct omni_smap docs; /* id -> struct omni_doc */
    struct omni_cchunk **slots;
    size_t nslots, cap;
    uint32_t *free_slots;
    size_t nfree, freecap;
    size_t nchunks;
    struct omni_bm25 *bm25;
    struct omni_vstore *vs;
};

struct omni_coll *omni_coll_new(const char *name, uint32_t dim,
                                const char *embedder,
                                const struct omni_coll_params *p);
void omni_coll_free(struct omni_coll *c);
/* Insert p (replacing any version of the same id); takes the chunk
 * texts, headings and metadata out of p (p must still be freed). */
void omni_coll_put(struct omni_coll *c, struct omni_prep *p);
/* Remove a document; -1 if absent. */
int omni_coll_remove(struct omni_coll *c, const char *id, size_t n);
struct omni_doc *omni_coll_doc(const struct omni_coll *c, const char *id,
                               size_t n);

enum omni_qmode { OMNI_Q_HYBRID, OMNI_Q_BM25, OMNI_Q_VECTOR };

struct omni_query {
    enum omni_qmode mode;
    const char *text; /* BM25 and hybrid */
    size_t len;
    const float *vec; /* vector and hybrid: dim floats, unit length */
    size_t k;
    uint32_t ef;          /* 0: the store's default */
    const json_t *filter; /* NULL or a checked filter object */
    size_t candidates;    /* per side in hybrid; 0: max(100, k) */
    float rrf_k;          /* 0: 60 */
    float w_bm25, w_vec;  /* RRF weights; 0 and 0: 1 and 1 */
};

struct omni_qhit {
    const struct omni_cchunk *chunk;
    float score; /* RRF, BM25 or cosine, by mode */
    float bm25;  /* component scores, 0 when absent */
    float vector;
};

/* Up to q->k hits, best first, into out[q->k]; the count. */
size_t omni_coll_query(struct omni_coll *c, const struct omni_query *q,
                       struct omni_qhit *out);

/* Embed a query for this collection with the local embedder, each word
 * weighted by its idf in the collection's BM25 index. */
void omni_coll_embed_query(const struct omni_coll *c, struct omni_embedder *e,
                           const char *text, size_t n, float *out);

/* Validate a filter object; OMNI_E_BAD_REQUEST with a message naming
 * the field otherwise. */
enum omni_err omni_filter_check(const json_t *filter, char err[OMNI_ERR_LEN]);
/* True if metadata satisfies the (checked) filter. */
bool omni_filter_match(const json_t *filter, const json_t *metadata);

/* Reciprocal rank fusion of two ranked lists of labels: each label
 * scores sum w / (k + rank), rank from 1.  Writes up to max fused hits
 * (dist = -score, best first) to out; the count. */
size_t omni_rrf(const struct omni_hit *a, size_t na, float wa,
                const struct omni_hit *b, size_t nb, float wb, float k,
                struct omni_hit *out, size_t max);

#endif
