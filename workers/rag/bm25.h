/*
 * bm25 - an in-memory inverted index scored with Okapi BM25.
 *
 * Documents are uint32 labels (chunk slots).  Scores use Lucene's idf
 * ln(1 + (N - df + 0.5) / (df + 0.5)) and
 * tf (k1 + 1) / (tf + k1 (1 - b + b dl / avgdl)), summed over the query
 * words (a word repeated in the query counts again).  Removal is eager
 * (postings rewritten), so the statistics always match the live set.
 */
#ifndef OMNI_RAG_BM25_H
#define OMNI_RAG_BM25_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "vec.h"

struct omni_bm25;

struct omni_bm25_params {
    float k1, b; /* 1.2, 0.75 */
    bool stem;   /* Snowball English stemming */
    bool stop;   /* drop English stop words */
};

struct omni_bm25 *omni_bm25_new(const struct omni_bm25_params *p);
void omni_bm25_free(struct omni_bm25 *b);
/* Index text[0..n) under label (which must not be present). */
void omni_bm25_add(struct omni_bm25 *b, uint32_t label, const char *text,
                   size_t n);
/* Drop label; -1 if absent. */
int omni_bm25_remove(struct omni_bm25 *b, uint32_t label);
/* Up to s->k best labels for the query into out, best first; dist is
 * the negated score (so hits sort like vector hits).  s->ef is unused. */
size_t omni_bm25_search(struct omni_bm25 *b, const char *q, size_t n,
                        const struct omni_vsearch *s, struct omni_hit *out);
size_t omni_bm25_count(const struct omni_bm25 *b);
/* idf of one already tokenized (lower-cased, stemmed) word; the largest
 * possible idf for a word not in the index. */
float omni_bm25_idf(const struct omni_bm25 *b, const char *w, size_t n);

#endif
