/*
 * tok - the word tokenizer shared by BM25 and the local embedder.
 *
 * A word is a run of ASCII letters and digits or of non-ASCII bytes
 * (whole UTF-8 sequences), lower-cased (ASCII), at most 64 bytes
 * (longer runs are cut).  Optionally English stop words are dropped and
 * words are stemmed with the Snowball English (Porter 2) stemmer of
 * libstemmer.
 */
#ifndef OMNI_RAG_TOK_H
#define OMNI_RAG_TOK_H

#include <stdbool.h>
#include <stddef.h>

#define OMNI_TOK_MAX 64

struct omni_tok;

typedef void (*omni_tok_cb)(const char *w, size_t n, void *arg);

struct omni_tok *omni_tok_new(bool stem, bool stop);
void omni_tok_free(struct omni_tok *t);
/* Call cb for each word of text[0..n), in order; the word is borrowed. */
void omni_tok_each(struct omni_tok *t, const char *text, size_t n,
                   omni_tok_cb cb, void *arg);
/* True if the lower-case word is an English stop word. */
bool omni_tok_is_stop(const char *w, size_t n);

#endif
