/*
 * text - validation, HTML stripping and base64 for ingestion.
 *
 * The HTML reader is a small tolerant scanner, not a full HTML5 parser:
 * it only needs the text and the heading/paragraph structure.  Raw-text
 * elements (script, style, head, noscript, template, svg) are skipped
 * to their end tag; whitespace collapses as browsers do except in <pre>.
 */
#include "text.h"

#include <ctype.h>
#include <string.h>
#include <strings.h>

int omni_text_kind(const char *ct)
{
    static const struct {
        const char *name;
        int kind;
    } kinds[] = {
        {"text/plain", OMNI_TEXT_PLAIN},
        {"text/markdown", OMNI_TEXT_MARKDOWN},
        {"text/x-markdown", OMNI_TEXT_MARKDOWN},
        {"text/html", OMNI_TEXT_HTML},
        {"application/xhtml+xml", OMNI_TEXT_HTML},
        {"application/pdf", OMNI_TEXT_PDF},
    };
    if (!ct || !*ct)
        return OMNI_TEXT_PLAIN;
    size_t n = strcspn(ct, "; \t");
    for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++)
        if (strlen(kinds[i].name) == n &&
            strncasecmp(kinds[i].name, ct, n) == 0)
            return kinds[i].kind;
    return -1;
}

bool omni_text_valid(const char *p, size_t n, size_t *bad)
{
    const unsigned char *s = (const unsigned char *)p;
    size_t i = 0;
    while (i < n) {
        unsigned c = s[i];
        size_t len;
        unsigned min;
        if (c == 0)
            goto fail;
        if (c < 0x80) {
            i++;
            continue;
        }
        if (c >= 0xc2 && c <= 0xdf) {
            len = 2;
            min = 0x80;
        } else if (c >= 0xe0 && c <= 0xef) {
            len = 3;
            min = 0x800;
        } else if (c >= 0xf0 && c <= 0xf4) {
            len = 4;
            min = 0x10000;
        } else {
            goto fail;
        }
        if (i + len > n)
            goto fail;
        unsigned cp = c & (0xff >> (len + 1));
        for (size_t k = 1; k < len; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                goto fail;
            cp = (cp << 6) | (s[i + k] & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            goto fail;
        i += len;
    }
    return true;
fail:
    if (bad)
        *bad = i;
    return false;
}

size_t omni_text_codepoints(const char *p, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        k += ((unsigned char)p[i] & 0xc0) != 0x80;
    return k;
}

/* ---- HTML ---- */

struct html {
    struct omni_buf *out;
    size_t base; /* out->len when we started */
    bool space;  /* a space is pending before the next text */
    int pre;     /* depth of <pre> */
    int heading; /* inside <hN> */
};

static void put_utf8(struct omni_buf *b, unsigned cp)
{
    if (cp == 0 || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        cp = 0xfffd;
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xc0 | (cp >> 6));
        u[1] = (char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xe0 | (cp >> 12));
        u[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[2] = (char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        u[0] = (char)(0xf0 | (cp >> 18));
        u[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
        u[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
        u[3] = (char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    omni_buf_add(b, u, n);
}

/* Trim trailing spaces and end the output with at least n newlines
 * (nothing at the very start). */
static void html_break(struct html *h, int n)
{
    struct omni_buf *o = h->out;
    while (o->len > h->base && o->data[o->len - 1] == ' ')
        o->len--;
    o->data[o->len] = '\0';
    h->space = false;
    if (o->len == h->base)
        return;
    int have = 0;
    while (have < n && o->len - (size_t)have > h->base &&
           o->data[o->len - 1 - (size_t)have] == '\n')
        have++;
    for (; have < n; have++)
        omni_buf_addch(o, '\n');
}

static void html_char(struct html *h, const char *p, size_t n)
{
    struct omni_buf *o = h->out;
    if (h->pre) {
        omni_buf_add(o, p, n);
        return;
    }
    if (n == 1 && isspace((unsigned char)*p)) {
        h->space = true;
        return;
    }
    if (h->space && o->len > h->base && o->data[o->len - 1] != '\n')
        omni_buf_addch(o, ' ');
    h->space = false;
    omni_buf_add(o, p, n);
}

static const struct {
    const char *name;
    unsigned cp;
} entities[] = {
    {"amp", '&'},      {"lt", '<'},       {"gt", '>'},       {"quot", '"'},
    {"apos", '\''},    {"nbsp", ' '},     {"copy", 0xa9},    {"reg", 0xae},
    {"trade", 0x2122}, {"mdash", 0x2014}, {"ndash", 0x2013}, {"hellip", 0x2026},
    {"lsquo", 0x2018}, {"rsquo", 0x2019}, {"ldquo", 0x201c}, {"rdquo", 0x201d},
    {"laquo", 0xab},   {"raquo", 0xbb},   {"middot", 0xb7},  {"bull", 0x2022},
    {"deg", 0xb0},     {"times", 0xd7},   {"euro", 0x20ac},  {"para", 0xb6},
    {"sect", 0xa7},    {"shy", 0xad},     {"micro", 0xb5},
};

/* Decode the entity at p (just after '&'); returns bytes consumed after
 * the '&', or 0 if it is not an entity (the '&' is then literal). */
static size_t html_entity(struct html *h, const char *p, size_t n)
{
    size_t i = 0;
    while (i < n && i < 12 && p[i] != ';' && isalnum((unsigned char)p[i]))
        i++;
    if (p[0] == '#' && n > 1) {
        i = 1;
        int base = 10;
        if (i < n && (p[i] == 'x' || p[i] == 'X')) {
            base = 16;
            i++;
        }
        unsigned cp = 0;
        size_t d0 = i;
        while (i < n && i < d0 + 7 &&
               (base == 16 ? isxdigit((unsigned char)p[i])
                           : isdigit((unsigned char)p[i]))) {
            int c = (unsigned char)p[i];
            cp = cp * (unsigned)base +
                 (unsigned)(isdigit(c) ? c - '0' : (tolower(c) - 'a' + 10));
            i++;
        }
        if (i == d0)
            return 0;
        struct omni_buf tmp = OMNI_BUF_INIT;
        put_utf8(&tmp, cp);
        html_char(h, tmp.data, tmp.len);
        omni_buf_release(&tmp);
        return i + (i < n && p[i] == ';');
    }
    if (i == n || p[i] != ';')
        return 0;
    for (size_t k = 0; k < sizeof entities / sizeof *entities; k++) {
        if (strlen(entities[k].name) == i &&
            memcmp(entities[k].name, p, i) == 0) {
            if (entities[k].cp == ' ') {
                h->space = true;
                return i + 1;
            }
            struct omni_buf tmp = OMNI_BUF_INIT;
            put_utf8(&tmp, entities[k].cp);
            html_char(h, tmp.data, tmp.len);
            omni_buf_release(&tmp);
            return i + 1;
        }
    }
    return 0;
}

static bool name_is(const char *name, size_t n, const char *const *set)
{
    for (; *set; set++)
        if (strlen(*set) == n && strncasecmp(*set, name, n) == 0)
            return true;
    return false;
}

static const char *const raw_tags[] = {"script",   "style",    "head",
                                       "noscript", "template", "svg",
                                       "iframe",   "object",   NULL};
static const char *const block_tags[] = {
    "p",          "div",   "section", "article",    "header",   "footer",
    "nav",        "aside", "main",    "ul",         "ol",       "table",
    "blockquote", "form",  "figure",  "figcaption", "address",  "dl",
    "hr",         "html",  "body",    "title",      "fieldset", "details",
    "summary",    NULL};
static const char *const line_tags[] = {"br", "tr",      "dt",
                                        "dd", "caption", NULL};
static const char *const cell_tags[] = {"td", "th", NULL};

/* Find the end of a raw-text element: the offset of "</name" or n. */
static size_t raw_end(const char *p, size_t n, const char *name, size_t nl)
{
    for (size_t i = 0; i + 2 + nl <= n; i++)
        if (p[i] == '<' && p[i + 1] == '/' &&
            strncasecmp(p + i + 2, name, nl) == 0)
            return i;
    return n;
}

static void html_tag(struct html *h, const char *name, size_t nl, bool closing)
{
    if (nl == 2 && (name[0] == 'h' || name[0] == 'H') && name[1] >= '1' &&
        name[1] <= '6') {
        html_break(h, 2);
        if (!closing) {
            for (int i = 0; i < name[1] - '0'; i++)
                omni_buf_addch(h->out, '#');
            omni_buf_addch(h->out, ' ');
            h->heading++;
        } else if (h->heading) {
            h->heading--;
        }
        return;
    }
    if (nl == 3 && strncasecmp(name, "pre", 3) == 0) {
        html_break(h, 2);
        h->pre += closing ? (h->pre > 0 ? -1 : 0) : 1;
        return;
    }
    if (nl == 2 && strncasecmp(name, "li", 2) == 0) {
        html_break(h, 1);
        if (!closing)
            omni_buf_adds(h->out, "- ");
        return;
    }
    if (h->heading && !closing && name_is(name, nl, line_tags)) {
        h->space = true;
        return;
    }
    if (name_is(name, nl, block_tags))
        html_break(h, 2);
    else if (name_is(name, nl, line_tags))
        html_break(h, 1);
    else if (name_is(name, nl, cell_tags))
        h->space = true;
}

void omni_text_from_html(const char *p, size_t n, struct omni_buf *out)
{
    struct html h = {.out = out, .base = out->len};
    size_t i = 0;
    while (i < n) {
        char c = p[i];
        if (c == '&') {
            size_t k = html_entity(&h, p + i + 1, n - i - 1);
            if (k) {
                i += 1 + k;
                continue;
            }
            html_char(&h, p + i, 1);
            i++;
            continue;
        }
        if (c != '<') {
            size_t len = 1;
            if ((unsigned char)c >= 0x80)
                while (i + len < n &&
                       ((unsigned char)p[i + len] & 0xc0) == 0x80)
                    len++;
            if (h.heading && !h.pre && (c == '\n' || c == '\r'))
                c = ' ';
            html_char(&h, c == '\r' ? "\n" : p + i, len);
            i += len;
            continue;
        }
        if (n - i >= 4 && memcmp(p + i, "<!--", 4) == 0) {
            const char *e = memmem(p + i + 4, n - i - 4, "-->", 3);
            i = e ? (size_t)(e - p) + 3 : n;
            continue;
        }
        if (n - i >= 9 && memcmp(p + i, "<![CDATA[", 9) == 0) {
            const char *e = memmem(p + i + 9, n - i - 9, "]]>", 3);
            size_t end = e ? (size_t)(e - p) : n;
            for (size_t k = i + 9; k < end; k++)
                html_char(&h, p + k, 1);
            i = e ? end + 3 : n;
            continue;
        }
        size_t j = i + 1;
        bool closing = j < n && p[j] == '/';
        if (closing)
            j++;
        size_t ns = j;
        while (j < n &&
               (isalnum((unsigned char)p[j]) || p[j] == '-' || p[j] == ':'))
            j++;
        size_t nl = j - ns;
        if (nl == 0 && !(j < n && (p[j] == '!' || p[j] == '?'))) {
            html_char(&h, "<", 1);
            i++;
            continue;
        }
        /* Skip attributes to '>', honouring quotes. */
        char q = 0;
        while (j < n && (q || p[j] != '>')) {
            if (q && p[j] == q)
                q = 0;
            else if (!q && (p[j] == '"' || p[j] == '\''))
                q = p[j];
            j++;
        }
        bool selfclose = j > 0 && j < n && p[j - 1] == '/';
        i = j < n ? j + 1 : n;
        if (!nl)
            continue;
        if (!closing && !selfclose && name_is(p + ns, nl, raw_tags)) {
            size_t e = raw_end(p + i, n - i, p + ns, nl);
            i += e;
            const char *gt = memchr(p + i, '>', n - i);
            i = gt ? (size_t)(gt - p) + 1 : n;
            continue;
        }
        html_tag(&h, p + ns, nl, closing);
    }
    html_break(&h, 0);
    while (out->len > h.base && out->data[out->len - 1] == '\n')
        out->len--;
    out->data[out->len] = '\0';
}

/* ---- base64 ---- */

bool omni_text_base64(const char *p, size_t n, struct omni_buf *out)
{
    uint32_t acc = 0;
    int bits = 0;
    size_t pad = 0;
    omni_buf_reserve(out, n / 4 * 3 + 3);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)p[i];
        int v;
        if (c >= 'A' && c <= 'Z')
            v = c - 'A';
        else if (c >= 'a' && c <= 'z')
            v = c - 'a' + 26;
        else if (c >= '0' && c <= '9')
            v = c - '0' + 52;
        else if (c == '+' || c == '-')
            v = 62;
        else if (c == '/' || c == '_')
            v = 63;
        else if (c == '=') {
            pad++;
            continue;
        } else if (isspace(c))
            continue;
        else
            return false;
        if (pad)
            return false;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            omni_buf_addch(out, (char)((acc >> bits) & 0xff));
        }
    }
    return pad <= 2 && bits < 6;
}
