/*
 * mcp_lines - split a byte stream into newline-delimited messages.
 *
 * stdio MCP servers write one JSON-RPC message per line.  Bytes arrive
 * in arbitrary pieces; a line may span many reads and a read may hold
 * many lines.  A line longer than the limit is dropped whole (reported
 * once, as soon as it crosses the limit) and reading resumes after its
 * newline, so one bad message never costs more than max bytes of memory
 * nor desynchronises the stream.
 */
#include <string.h>

#include "mcp.h"

/* Initialise l for lines of at most max bytes. */
void omni_mcp_lines_init(struct omni_mcp_lines *l, size_t max)
{
    omni_buf_init(&l->buf);
    l->max = max;
    l->dropping = false;
}

/* Free the partial line. */
void omni_mcp_lines_release(struct omni_mcp_lines *l)
{
    omni_buf_release(&l->buf);
    l->dropping = false;
}

/* Hand a line to cb without its '\r', skipping blank ones. */
static void emit(const char *s, size_t n, omni_mcp_line_cb cb, void *arg)
{
    if (n > 0 && s[n - 1] == '\r')
        n--;
    size_t i = 0;
    while (i < n && (s[i] == ' ' || s[i] == '\t'))
        i++;
    if (i < n)
        cb(arg, s, n);
}

/* Remember the last bytes of a line being dropped. */
static void keep_tail(struct omni_mcp_lines *l, const char *p, size_t n)
{
    size_t cap = sizeof l->tail;
    if (n >= cap) {
        memcpy(l->tail, p + n - cap, cap);
        l->tailn = cap;
        return;
    }
    size_t keep = l->tailn + n > cap ? cap - n : l->tailn;
    memmove(l->tail, l->tail + l->tailn - keep, keep);
    memcpy(l->tail + keep, p, n);
    l->tailn = keep + n;
}

/* A line crossed the limit with seg more bytes at p: report its head
 * and start dropping it. */
static void start_drop(struct omni_mcp_lines *l, const char *p, size_t seg,
                       omni_mcp_long_cb too_long, void *arg)
{
    char head[256];
    size_t hn = l->buf.len < sizeof head ? l->buf.len : sizeof head;
    memcpy(head, l->buf.data, hn);
    size_t more = sizeof head - hn < seg ? sizeof head - hn : seg;
    memcpy(head + hn, p, more);
    l->dropped = l->buf.len + seg;
    l->tailn = 0;
    keep_tail(l, l->buf.data, l->buf.len);
    keep_tail(l, p, seg);
    omni_buf_reset(&l->buf);
    l->dropping = true;
    if (too_long)
        too_long(arg, l->dropped, head, hn + more, false);
}

/* Feed p[0..n): every complete line goes to line(), over-long lines to
 * too_long() at their start and at their end. */
void omni_mcp_lines_feed(struct omni_mcp_lines *l, const char *p, size_t n,
                         omni_mcp_line_cb line, omni_mcp_long_cb too_long,
                         void *arg)
{
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) : n;
        if (l->dropping) {
            keep_tail(l, p, seg);
            l->dropped += seg;
        } else if (l->buf.len + seg > l->max) {
            start_drop(l, p, seg, too_long, arg);
        } else if (!nl) {
            omni_buf_add(&l->buf, p, n);
            return;
        } else if (l->buf.len == 0) {
            /* The common case: a whole line in this read, no copy. */
            emit(p, seg, line, arg);
        } else {
            omni_buf_add(&l->buf, p, seg);
            emit(l->buf.data, l->buf.len, line, arg);
            omni_buf_reset(&l->buf);
        }
        if (!nl)
            return;
        if (l->dropping) {
            l->dropping = false;
            if (too_long)
                too_long(arg, l->dropped, l->tail, l->tailn, true);
        }
        n -= seg + 1;
        p = nl + 1;
    }
}
