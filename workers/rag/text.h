/*
 * text - turning document bytes into indexable UTF-8 text.
 *
 * Validation (UTF-8, no NUL bytes), HTML to Markdown-shaped text (tags,
 * scripts, styles and comments dropped, entities decoded, headings kept
 * as "#" lines so the chunker sees the structure), base64 decoding, and
 * PDF text extraction through poppler-glib (page start offsets kept for
 * provenance).  Each function reports failure with a message in err.
 */
#ifndef OMNI_RAG_TEXT_H
#define OMNI_RAG_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omni_buf.h"
#include "omni_err.h"

enum omni_text_kind {
    OMNI_TEXT_PLAIN,
    OMNI_TEXT_MARKDOWN,
    OMNI_TEXT_HTML,
    OMNI_TEXT_PDF,
};

/* Map a content type ("text/html; charset=utf-8", ...) to a kind; -1 if
 * it is not one we ingest. */
int omni_text_kind(const char *content_type);

/* True if p[0..n) is valid UTF-8 without NUL bytes; otherwise false and
 * *bad (if not NULL) gets the offset of the first offending byte. */
bool omni_text_valid(const char *p, size_t n, size_t *bad);

/* Append the text of HTML p[0..n) to out: block elements become
 * paragraph breaks, <hN> becomes a line of N '#', <li> a "- " line. */
void omni_text_from_html(const char *p, size_t n, struct omni_buf *out);

/* Decode base64 (standard alphabet, padding optional, whitespace
 * ignored) into out.  Returns false on any other character. */
bool omni_text_base64(const char *p, size_t n, struct omni_buf *out);

/* Append the text of PDF bytes p[0..n) to out, pages separated by a
 * blank line; *pages gets a malloc'ed array of each page's start offset
 * in out and *npages its length.  Returns OMNI_OK, or
 * OMNI_E_BAD_REQUEST with a message in err for an unreadable PDF. */
enum omni_err omni_text_from_pdf(const void *p, size_t n, struct omni_buf *out,
                                 uint32_t **pages, uint32_t *npages,
                                 char err[OMNI_ERR_LEN]);

/* Number of UTF-8 code points in p[0..n). */
size_t omni_text_codepoints(const char *p, size_t n);

#endif
