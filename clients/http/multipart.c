/*
 * multipart - RAG documents from multipart/form-data file uploads.
 *
 * A body is a preamble, then parts each opened by "--BOUNDARY" and a
 * CRLF, a header block ended by an empty line, and content ended by
 * CRLF "--BOUNDARY"; "--BOUNDARY--" closes the body.  We find every
 * delimiter with memmem over the bytes we were given, so a truncated
 * or hostile body ends in an error, never in a read past its end.
 */
#include "multipart.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "omni_alloc.h"
#include "omni_buf.h"
#include "routes.h"

#define MAX_BOUNDARY 70 /* RFC 2046 */
#define MAX_PARTS    4096

void omni_base64_add(struct omni_buf *out, const void *p, size_t n)
{
    static const char tab[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    const unsigned char *s = p;
    omni_buf_reserve(out, (n + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 3 <= n; i += 3) {
        unsigned v = (unsigned)s[i] << 16 | (unsigned)s[i + 1] << 8 | s[i + 2];
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63], tab[(v >> 6) & 63],
                     tab[v & 63]};
        omni_buf_add(out, q, 4);
    }
    if (i < n) {
        unsigned v = (unsigned)s[i] << 16;
        if (i + 1 < n)
            v |= (unsigned)s[i + 1] << 8;
        char q[4] = {tab[v >> 18], tab[(v >> 12) & 63],
                     i + 1 < n ? tab[(v >> 6) & 63] : '=', '='};
        omni_buf_add(out, q, 4);
    }
}

/* Skip blanks in s[0..n) from *i. */
static void skip_ws(const char *s, size_t n, size_t *i)
{
    while (*i < n && (s[*i] == ' ' || s[*i] == '\t'))
        (*i)++;
}

/* Read a header parameter value at s[*i..n): a token up to ';' or a
 * quoted string with backslash escapes.  Returns -1 on an open quote. */
static int param_value(const char *s, size_t n, size_t *i, struct omni_buf *v)
{
    omni_buf_reset(v);
    if (*i < n && s[*i] == '"') {
        for ((*i)++; *i < n && s[*i] != '"'; (*i)++) {
            if (s[*i] == '\\' && *i + 1 < n)
                (*i)++;
            omni_buf_addch(v, s[*i]);
        }
        if (*i >= n)
            return -1;
        (*i)++;
        return 0;
    }
    size_t j = *i;
    while (*i < n && s[*i] != ';')
        (*i)++;
    size_t e = *i;
    while (e > j && (s[e - 1] == ' ' || s[e - 1] == '\t'))
        e--;
    omni_buf_add(v, s + j, e - j);
    return 0;
}

/* Find parameter key in a header value s[0..n) ("form-data; name=x").
 * Returns 1 with *v set, 0 if absent, -1 if malformed. */
static int header_param(const char *s, size_t n, const char *key,
                        struct omni_buf *v)
{
    size_t klen = strlen(key), i = 0;
    struct omni_buf tmp = OMNI_BUF_INIT;
    int found = 0;
    while (i < n) {
        while (i < n && s[i] != ';')
            i++;
        if (i >= n)
            break;
        i++;
        skip_ws(s, n, &i);
        size_t k = i;
        while (i < n && s[i] != '=' && s[i] != ';')
            i++;
        if (i >= n || s[i] != '=')
            continue;
        size_t ke = i;
        while (ke > k && (s[ke - 1] == ' ' || s[ke - 1] == '\t'))
            ke--;
        i++;
        skip_ws(s, n, &i);
        if (param_value(s, n, &i, &tmp) < 0) {
            found = -1;
            break;
        }
        if (ke - k == klen && strncasecmp(s + k, key, klen) == 0) {
            omni_buf_reset(v);
            omni_buf_add(v, tmp.data, tmp.len);
            found = 1;
            break;
        }
    }
    omni_buf_release(&tmp);
    return found;
}

/* The boundary parameter of a multipart Content-Type, or -1. */
static int boundary_of(const char *ct, struct omni_buf *b)
{
    if (!ct || header_param(ct, strlen(ct), "boundary", b) != 1)
        return -1;
    if (b->len == 0 || b->len > MAX_BOUNDARY)
        return -1;
    return 0;
}

struct part {
    struct omni_buf name;
    struct omni_buf filename;
    struct omni_buf type;
};

/* RFC 5987 ext-value "UTF-8''percent%20encoded" into out. */
static int ext_value(const struct omni_buf *v, struct omni_buf *out)
{
    const char *q = memchr(v->data, '\'', v->len);
    const char *q2 =
        q ? memchr(q + 1, '\'', v->len - (size_t)(q + 1 - v->data)) : NULL;
    if (!q2)
        return -1;
    omni_buf_reset(out);
    size_t off = (size_t)(q2 + 1 - v->data);
    return omni_route_unescape(v->data + off, v->len - off, out);
}

/* Parse the header block h[0..n) of one part into p. */
static int part_headers(const char *h, size_t n, struct part *p,
                        char err[OMNI_ERR_LEN])
{
    static const char cd[] = "content-disposition:";
    static const char ct[] = "content-type:";
    size_t i = 0;
    while (i < n) {
        const char *eol = memmem(h + i, n - i, "\r\n", 2);
        size_t e = eol ? (size_t)(eol - h) : n;
        const char *line = h + i;
        size_t len = e - i;
        if (len >= sizeof cd - 1 && strncasecmp(line, cd, sizeof cd - 1) == 0) {
            struct omni_buf star = OMNI_BUF_INIT;
            int a = header_param(line, len, "name", &p->name);
            int b = header_param(line, len, "filename", &p->filename);
            int c = header_param(line, len, "filename*", &star);
            int bad = a < 0 || b < 0 || c < 0 ||
                      (c == 1 && ext_value(&star, &p->filename) < 0);
            omni_buf_release(&star);
            if (bad) {
                snprintf(err, OMNI_ERR_LEN,
                         "malformed Content-Disposition in multipart body");
                return -1;
            }
        } else if (len >= sizeof ct - 1 &&
                   strncasecmp(line, ct, sizeof ct - 1) == 0) {
            size_t j = sizeof ct - 1;
            skip_ws(line, len, &j);
            omni_buf_reset(&p->type);
            omni_buf_add(&p->type, line + j, len - j);
        }
        i = e + 2;
    }
    return 0;
}

/* The last path component of a file name (some clients send paths). */
static const char *base_name(const struct omni_buf *f, size_t *n)
{
    size_t i = f->len;
    while (i > 0 && f->data[i - 1] != '/' && f->data[i - 1] != '\\')
        i--;
    *n = f->len - i;
    return f->data + i;
}

/* Add the document of one file part. */
static int add_file(const struct part *p, const char *data, size_t n,
                    json_t *docs, char err[OMNI_ERR_LEN])
{
    size_t idn;
    const char *id = base_name(&p->filename, &idn);
    if (!omni_route_valid_id(id, idn)) {
        snprintf(err, OMNI_ERR_LEN,
                 "bad file name in multipart part 'file': want 1 to %d "
                 "bytes of UTF-8 without control characters",
                 OMNI_ROUTE_MAX_ID);
        return -1;
    }
    struct omni_buf b64 = OMNI_BUF_INIT;
    omni_base64_add(&b64, data, n);
    const char *type = p->type.len ? p->type.data : "application/octet-stream";
    json_t *doc = json_object();
    json_object_set_new(doc, "id", json_stringn(id, idn));
    json_object_set_new(doc, "content_base64", json_stringn(b64.data, b64.len));
    json_object_set_new(doc, "content_type", json_string(type));
    json_array_append_new(docs, doc);
    omni_buf_release(&b64);
    return 0;
}

static void part_release(struct part *p)
{
    omni_buf_release(&p->name);
    omni_buf_release(&p->filename);
    omni_buf_release(&p->type);
}

int omni_multipart_files(const char *content_type, const char *body, size_t n,
                         json_t *docs, char err[OMNI_ERR_LEN])
{
    struct omni_buf delim = OMNI_BUF_INIT;
    if (boundary_of(content_type, &delim) < 0) {
        snprintf(err, OMNI_ERR_LEN,
                 "missing or bad boundary in multipart Content-Type");
        omni_buf_release(&delim);
        return -1;
    }
    /* The delimiter proper is CRLF "--" boundary; the first one may
     * start the body without the CRLF. */
    struct omni_buf d = OMNI_BUF_INIT;
    omni_buf_adds(&d, "\r\n--");
    omni_buf_add(&d, delim.data, delim.len);
    omni_buf_release(&delim);

    size_t pos;
    if (n >= d.len - 2 && memcmp(body, d.data + 2, d.len - 2) == 0) {
        pos = d.len - 2;
    } else {
        const char *f = memmem(body, n, d.data, d.len);
        pos = f ? (size_t)(f - body) + d.len : n + 1;
    }
    int rc = -1, parts = 0;
    if (pos > n) {
        snprintf(err, OMNI_ERR_LEN, "no part found in multipart body");
        goto out;
    }
    for (;;) {
        if (n - pos >= 2 && memcmp(body + pos, "--", 2) == 0) {
            rc = 0;
            break;
        }
        skip_ws(body, n, &pos);
        const char *hs = body + pos;
        if (n - pos < 2 || memcmp(hs, "\r\n", 2) != 0) {
            snprintf(err, OMNI_ERR_LEN, "malformed multipart delimiter");
            break;
        }
        hs += 2;
        size_t left = n - pos - 2;
        const char *he = left >= 2 && memcmp(hs, "\r\n", 2) == 0
                             ? hs
                             : memmem(hs, left, "\r\n\r\n", 4);
        if (!he) {
            snprintf(err, OMNI_ERR_LEN, "truncated multipart part headers");
            break;
        }
        const char *cs = he == hs ? hs + 2 : he + 4;
        const char *ce = memmem(cs, n - (size_t)(cs - body), d.data, d.len);
        if (!ce) {
            snprintf(err, OMNI_ERR_LEN, "truncated multipart body");
            break;
        }
        if (++parts > MAX_PARTS) {
            snprintf(err, OMNI_ERR_LEN, "too many multipart parts (max %d)",
                     MAX_PARTS);
            break;
        }
        struct part p = {OMNI_BUF_INIT, OMNI_BUF_INIT, OMNI_BUF_INIT};
        int bad = part_headers(hs, (size_t)(he - hs), &p, err) < 0;
        if (!bad && p.name.len == 4 && memcmp(p.name.data, "file", 4) == 0)
            bad = add_file(&p, cs, (size_t)(ce - cs), docs, err) < 0;
        part_release(&p);
        if (bad)
            break;
        pos = (size_t)(ce - body) + d.len;
    }
out:
    omni_buf_release(&d);
    return rc;
}
