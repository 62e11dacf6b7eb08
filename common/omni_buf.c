/*
 * omni_buf - growable byte buffer, always NUL-terminated.
 */
#include "omni_buf.h"

#include <stdio.h>
#include <string.h>

#include "omni_alloc.h"

char omni_buf_empty[1];

void omni_buf_init(struct omni_buf *b)
{
    b->data = omni_buf_empty;
    b->len = 0;
    b->cap = 0;
}

void omni_buf_release(struct omni_buf *b)
{
    if (b->cap)
        omni_free(b->data);
    omni_buf_init(b);
}

void omni_buf_reserve(struct omni_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    if (b->cap) {
        b->data = omni_realloc(b->data, cap);
    } else {
        b->data = omni_malloc(cap);
        b->data[0] = '\0';
    }
    b->cap = cap;
}

void omni_buf_add(struct omni_buf *b, const void *p, size_t n)
{
    if (!n)
        return;
    omni_buf_reserve(b, n);
    memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void omni_buf_adds(struct omni_buf *b, const char *s)
{
    omni_buf_add(b, s, strlen(s));
}

void omni_buf_addch(struct omni_buf *b, char c)
{
    omni_buf_add(b, &c, 1);
}

void omni_buf_vaddf(struct omni_buf *b, const char *fmt, va_list ap)
{
    va_list cp;
    va_copy(cp, ap);
    int n = vsnprintf(NULL, 0, fmt, cp);
    va_end(cp);
    if (n <= 0)
        return;
    omni_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void omni_buf_addf(struct omni_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(b, fmt, ap);
    va_end(ap);
}

void omni_buf_add_json_str(struct omni_buf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789abcdef";
    omni_buf_reserve(b, n + 2);
    omni_buf_addch(b, '"');
    size_t run = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\')
            continue;
        omni_buf_add(b, s + run, i - run);
        run = i + 1;
        switch (c) {
        case '"': omni_buf_add(b, "\\\"", 2); break;
        case '\\': omni_buf_add(b, "\\\\", 2); break;
        case '\n': omni_buf_add(b, "\\n", 2); break;
        case '\r': omni_buf_add(b, "\\r", 2); break;
        case '\t': omni_buf_add(b, "\\t", 2); break;
        default: {
            char esc[6] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15]};
            omni_buf_add(b, esc, 6);
        }
        }
    }
    omni_buf_add(b, s + run, n - run);
    omni_buf_addch(b, '"');
}

void omni_buf_consume(struct omni_buf *b, size_t n)
{
    if (n >= b->len) {
        omni_buf_reset(b);
        return;
    }
    memmove(b->data, b->data + n, b->len - n);
    b->len -= n;
    b->data[b->len] = '\0';
}

void omni_buf_reset(struct omni_buf *b)
{
    b->len = 0;
    if (b->cap)
        b->data[0] = '\0';
}

char *omni_buf_detach(struct omni_buf *b, size_t *len_out)
{
    char *p;
    if (len_out)
        *len_out = b->len;
    if (b->cap)
        p = b->data;
    else
        p = omni_strndup("", 0);
    omni_buf_init(b);
    return p;
}
