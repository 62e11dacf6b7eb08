/*
 * omni_buf - a growable byte buffer.
 *
 * Invariants (after git's strbuf): data is never NULL once initialised
 * with OMNI_BUF_INIT or omni_buf_init(), and data[len] is always '\0' so
 * text can be used as a C string.  omni_buf_detach() is the only way
 * memory leaves the buffer; omni_buf_release() frees it and leaves an
 * empty, reusable buffer.
 */
#ifndef OMNI_BUF_H
#define OMNI_BUF_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

struct omni_buf {
    char *data;
    size_t len;
    size_t cap;
};

extern char omni_buf_empty[];
#define OMNI_BUF_INIT                                                          \
    {                                                                          \
        omni_buf_empty, 0, 0                                                   \
    }

void omni_buf_init(struct omni_buf *b);
void omni_buf_release(struct omni_buf *b);
/* Make room for at least extra more bytes (plus the trailing NUL). */
void omni_buf_reserve(struct omni_buf *b, size_t extra);
void omni_buf_add(struct omni_buf *b, const void *p, size_t n);
void omni_buf_adds(struct omni_buf *b, const char *s);
void omni_buf_addch(struct omni_buf *b, char c);
void omni_buf_addf(struct omni_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void omni_buf_vaddf(struct omni_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Append s as a JSON string literal, quotes included. */
void omni_buf_add_json_str(struct omni_buf *b, const char *s, size_t n);
/* Drop the first n bytes (n <= len). */
void omni_buf_consume(struct omni_buf *b, size_t n);
void omni_buf_reset(struct omni_buf *b);
/* Hand the bytes to the caller, who must omni_free() them; *len_out
 * (if not NULL) gets the length.  The buffer is left empty. */
char *omni_buf_detach(struct omni_buf *b, size_t *len_out);

#endif
