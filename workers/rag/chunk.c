/*
 * chunk - structure-first chunking with overlap.
 *
 * Pieces are produced left to right with their size measured by a
 * movable cursor, so the cost stays linear in the text.
 */
#include "chunk.h"

#include <ctype.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_buf.h"

struct piece {
    size_t a, b;   /* byte range */
    size_t ua, ub; /* units before a and before b */
    bool para;     /* first piece of a paragraph */
};

struct split {
    const char *t;
    size_t n;
    const struct omni_chunk_opts *o;
    size_t cur, units; /* cursor: units counted in t[0..cur) */
    struct piece *p;
    size_t np, cap;
    struct omni_chunk *c;
    size_t nc, ccap;
};

static bool is_sp(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' ||
           c == '\v';
}

/* Whether byte i starts a unit (a code point, or a word). */
static bool unit_at(const struct split *s, size_t i)
{
    unsigned char c = (unsigned char)s->t[i];
    if (s->o->mode == OMNI_CHUNK_CHARS)
        return (c & 0xc0) != 0x80;
    return !is_sp((char)c) && (i == 0 || is_sp(s->t[i - 1]));
}

/* Units in t[0..pos).  The cursor moves from where it was, so nearby
 * calls are cheap and a left-to-right pass is linear overall. */
static size_t units_at(struct split *s, size_t pos)
{
    for (; s->cur < pos; s->cur++)
        s->units += unit_at(s, s->cur);
    while (s->cur > pos)
        s->units -= unit_at(s, --s->cur);
    return s->units;
}

static void add_piece(struct split *s, size_t a, size_t b, bool para)
{
    if (s->np == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 64;
        s->p = omni_realloc(s->p, s->cap * sizeof *s->p);
    }
    struct piece *p = &s->p[s->np++];
    p->a = a;
    p->b = b;
    p->ua = units_at(s, a);
    p->ub = units_at(s, b);
    p->para = para;
}

static size_t measure(const struct split *s, size_t from, size_t to)
{
    return s->p[to].ub - s->p[from].ua;
}

/* A piece too big for one chunk: words, and words too big: code points. */
static void add_long(struct split *s, size_t a, size_t b, bool para)
{
    size_t i = a;
    while (i < b) {
        while (i < b && is_sp(s->t[i]))
            i++;
        size_t w = i;
        while (i < b && !is_sp(s->t[i]))
            i++;
        if (w == i)
            break;
        size_t ua = units_at(s, w);
        size_t ub = units_at(s, i);
        if (ub - ua <= s->o->size) {
            add_piece(s, w, i, para);
            para = false;
            continue;
        }
        /* Only in CHARS mode can one word exceed the size. */
        size_t k = w;
        while (k < i) {
            size_t e = k, cps = 0;
            while (e < i && cps < s->o->size) {
                e++;
                while (e < i && ((unsigned char)s->t[e] & 0xc0) == 0x80)
                    e++;
                cps++;
            }
            add_piece(s, k, e, para);
            para = false;
            k = e;
        }
    }
}

static void add_sentence(struct split *s, size_t a, size_t b, bool para)
{
    while (a < b && is_sp(s->t[a]))
        a++;
    while (b > a && is_sp(s->t[b - 1]))
        b--;
    if (a == b)
        return;
    if (units_at(s, b) - units_at(s, a) <= s->o->size)
        add_piece(s, a, b, para);
    else
        add_long(s, a, b, para);
}

/* Sentences of one paragraph: end after . ! ? (and closing quotes or
 * brackets) followed by whitespace, and at every line end. */
static void add_paragraph(struct split *s, size_t a, size_t b)
{
    bool para = true;
    size_t from = a;
    for (size_t i = a; i < b; i++) {
        char c = s->t[i];
        size_t end = 0;
        if (c == '\n') {
            end = i;
        } else if (c == '.' || c == '!' || c == '?') {
            size_t j = i + 1;
            while (j < b && strchr("\"')]", s->t[j]))
                j++;
            if (j < b && is_sp(s->t[j]))
                end = j;
        }
        if (end) {
            size_t before = s->np;
            add_sentence(s, from, end, para);
            if (s->np > before)
                para = false;
            from = end;
            i = end;
        }
    }
    add_sentence(s, from, b, para);
}

/* Paragraphs: runs of text separated by blank lines. */
static void add_section_pieces(struct split *s, size_t a, size_t b)
{
    size_t i = a, para = a;
    while (i < b) {
        const char *nl = memchr(s->t + i, '\n', b - i);
        size_t eol = nl ? (size_t)(nl - s->t) : b;
        bool blank = true;
        for (size_t k = i; k < eol; k++)
            if (!is_sp(s->t[k]))
                blank = false;
        if (blank) {
            if (para < i)
                add_paragraph(s, para, i);
            para = eol + 1;
        }
        i = eol + 1;
    }
    if (para < b)
        add_paragraph(s, para, b);
}

static void emit(struct split *s, size_t from, size_t to, const char *heading)
{
    if (s->nc == s->ccap) {
        s->ccap = s->ccap ? s->ccap * 2 : 16;
        s->c = omni_realloc(s->c, s->ccap * sizeof *s->c);
    }
    struct omni_chunk *c = &s->c[s->nc++];
    c->start = s->p[from].a;
    c->end = s->p[to].b;
    c->heading = heading && *heading ? omni_strdup(heading) : NULL;
}

/* Pack the section's pieces into chunks. */
static void pack(struct split *s, const char *heading)
{
    size_t size = s->o->size, overlap = s->o->overlap;
    size_t i = 0;
    while (i < s->np) {
        size_t j = i + 1;
        while (j < s->np && measure(s, i, j) <= size)
            j++;
        /* Prefer ending at a paragraph break in the second half. */
        if (j < s->np && !s->p[j].para)
            for (size_t k = j - 1; k > i; k--)
                if (s->p[k].para && measure(s, i, k - 1) >= size / 2) {
                    j = k;
                    break;
                }
        emit(s, i, j - 1, heading);
        if (j >= s->np)
            break;
        size_t k = j;
        while (k - 1 > i && measure(s, k - 1, j - 1) <= overlap)
            k--;
        /* The next chunk must reach past this one, or overlap is moot. */
        while (k < j && measure(s, k, j) > size)
            k++;
        i = k;
    }
    s->np = 0;
}

static void section(struct split *s, size_t a, size_t b, const char *heading)
{
    add_section_pieces(s, a, b);
    pack(s, heading);
}

/* Length of an ATX heading marker at line t[a..eol): level, or 0. */
static int atx_level(const char *t, size_t a, size_t eol, size_t *text)
{
    size_t i = a;
    while (i < eol && i - a < 3 && t[i] == ' ')
        i++;
    size_t h = i;
    while (i < eol && t[i] == '#')
        i++;
    int level = (int)(i - h);
    if (level < 1 || level > 6 || (i < eol && t[i] != ' ' && t[i] != '\t'))
        return 0;
    *text = i;
    return level;
}

static void heading_path(struct omni_buf *b, char *const *stack)
{
    omni_buf_reset(b);
    for (int i = 0; i < 6; i++) {
        if (!stack[i])
            continue;
        if (b->len)
            omni_buf_adds(b, " > ");
        omni_buf_adds(b, stack[i]);
    }
}

size_t omni_chunk_split(const char *t, size_t n,
                        const struct omni_chunk_opts *o,
                        struct omni_chunk **out)
{
    struct split s = {.t = t, .n = n, .o = o};
    if (!o->markdown) {
        section(&s, 0, n, NULL);
    } else {
        char *stack[6] = {0};
        struct omni_buf path = OMNI_BUF_INIT;
        size_t start = 0, i = 0;
        char fence = 0;
        while (i < n) {
            const char *nl = memchr(t + i, '\n', n - i);
            size_t eol = nl ? (size_t)(nl - t) : n;
            size_t k = i;
            while (k < eol && k - i < 3 && t[k] == ' ')
                k++;
            size_t txt;
            int level;
            if (eol - k >= 3 && (t[k] == '`' || t[k] == '~') &&
                t[k + 1] == t[k] && t[k + 2] == t[k]) {
                if (!fence)
                    fence = t[k];
                else if (fence == t[k])
                    fence = 0;
            } else if (!fence && (level = atx_level(t, i, eol, &txt))) {
                section(&s, start, i, path.data);
                size_t e = eol;
                while (e > txt && (is_sp(t[e - 1]) || t[e - 1] == '#'))
                    e--;
                while (txt < e && is_sp(t[txt]))
                    txt++;
                for (int l = level - 1; l < 6; l++) {
                    omni_free(stack[l]);
                    stack[l] = NULL;
                }
                stack[level - 1] = omni_strndup(t + txt, e - txt);
                heading_path(&path, stack);
                start = i;
            }
            i = eol + 1;
        }
        section(&s, start, n, path.data);
        for (int l = 0; l < 6; l++)
            omni_free(stack[l]);
        omni_buf_release(&path);
    }
    omni_free(s.p);
    *out = s.c;
    return s.nc;
}

void omni_chunk_free(struct omni_chunk *c, size_t n)
{
    for (size_t i = 0; i < n; i++)
        omni_free(c[i].heading);
    omni_free(c);
}
