/*
 * chunk - split text into overlapping chunks along its structure.
 *
 * Structure first: Markdown ATX headings (outside code fences) open
 * sections, which never share a chunk; within a section paragraphs,
 * then sentences (and lines), then words, then code points are the
 * pieces packed greedily up to the size, preferring to end a chunk at a
 * paragraph break.  Consecutive chunks overlap by whole pieces up to
 * the overlap.  Size is counted in code points (CHARS) or in
 * whitespace-separated words (TOKENS, an approximation of tokens).
 * Each chunk keeps its byte offsets and its heading path.
 */
#ifndef OMNI_RAG_CHUNK_H
#define OMNI_RAG_CHUNK_H

#include <stdbool.h>
#include <stddef.h>

enum omni_chunk_mode { OMNI_CHUNK_CHARS, OMNI_CHUNK_TOKENS };

struct omni_chunk_opts {
    enum omni_chunk_mode mode;
    size_t size;    /* > 0 */
    size_t overlap; /* < size */
    bool markdown;  /* recognise "#" headings */
};

struct omni_chunk {
    size_t start, end; /* byte offsets into the text, end exclusive */
    char *heading;     /* "Intro > Setup", or NULL */
};

/* Split t[0..n) into *out (malloc'ed array); returns the count (0 for
 * text that is only whitespace).  Free with omni_chunk_free(). */
size_t omni_chunk_split(const char *t, size_t n,
                        const struct omni_chunk_opts *o,
                        struct omni_chunk **out);
void omni_chunk_free(struct omni_chunk *c, size_t n);

#endif
