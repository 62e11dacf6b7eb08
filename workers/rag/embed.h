/*
 * embed - the local embedder: feature hashing, no model weights.
 *
 * Features of a text: its words (stop words dropped, Snowball stems),
 * word bigrams, and the character 3- to 5-grams of each word padded as
 * "<word>".  Each feature's weight is its group weight times the
 * sublinear term frequency 1 + ln(tf); it is added with a sign taken
 * from its hash into one of dim buckets, and the vector is normalised
 * to unit length (all zeros for a text without words).  Deterministic
 * across processes and machines.
 */
#ifndef OMNI_RAG_EMBED_H
#define OMNI_RAG_EMBED_H

#include <stddef.h>
#include <stdint.h>

struct omni_embedder;

/* Group weights; the defaults are what bench/rag tuned on SciFact. */
struct omni_embed_weights {
    float unigram, bigram, chargram;
};

struct omni_embedder *omni_embed_new(uint32_t dim,
                                     const struct omni_embed_weights *w);
void omni_embed_free(struct omni_embedder *e);
uint32_t omni_embed_dim(const struct omni_embedder *e);
/* Embed text[0..n) into out[dim]. */
void omni_embed_one(struct omni_embedder *e, const char *text, size_t n,
                    float *out);
/* Embed a query with a weight per word (stemmed, as the tokenizer
 * gives it): each feature of the word is scaled by wfn's answer.  Used
 * to weight query words by a collection's idf, so that rare words count
 * more while document vectors stay collection-independent. */
typedef float (*omni_embed_wfn)(const char *w, size_t n, void *arg);
void omni_embed_weighted(struct omni_embedder *e, const char *text, size_t n,
                         omni_embed_wfn wfn, void *arg, float *out);
/* Embed count texts into out[count * dim], row by row. */
void omni_embed_batch(struct omni_embedder *e, const char *const *texts,
                      const size_t *lens, size_t count, float *out);

#endif
