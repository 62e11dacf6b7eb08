/*
 * mcp_sse - a text/event-stream parser for Streamable HTTP bodies.
 *
 * Follows the HTML living standard's event-stream rules: lines end in
 * CRLF, LF or CR (we accept CRLF and LF; MCP servers use LF), "field:
 * value" with one optional space, data lines joined by '\n', a blank
 * line dispatches, ':' starts a comment, unknown fields are ignored.
 * Events with empty data (an MCP server's priming event) are not
 * dispatched.  Memory per event is bounded by max.
 */
#include <string.h>

#include "mcp.h"

/* Initialise s for events of at most max data bytes. */
void omni_mcp_sse_init(struct omni_mcp_sse *s, size_t max)
{
    omni_mcp_lines_init(&s->lines, max + 64);
    omni_buf_init(&s->data);
    omni_buf_init(&s->event);
    s->has_data = false;
    s->overflow = false;
    s->max = max;
}

/* Free the buffers. */
void omni_mcp_sse_release(struct omni_mcp_sse *s)
{
    omni_mcp_lines_release(&s->lines);
    omni_buf_release(&s->data);
    omni_buf_release(&s->event);
}

struct feed_ctx {
    struct omni_mcp_sse *s;
    omni_mcp_sse_cb cb;
    omni_mcp_long_cb too_long;
    void *arg;
};

/* Dispatch the event being read, then start a new one. */
static void dispatch(struct feed_ctx *c)
{
    struct omni_mcp_sse *s = c->s;
    if (s->has_data && s->data.len > 0 && !s->overflow)
        c->cb(c->arg, s->event.len ? s->event.data : "message", s->data.data,
              s->data.len);
    omni_buf_reset(&s->data);
    omni_buf_reset(&s->event);
    s->has_data = false;
    s->overflow = false;
}

/* One field line of the stream. */
static void field(struct feed_ctx *c, const char *line, size_t n)
{
    struct omni_mcp_sse *s = c->s;
    if (line[0] == ':')
        return;
    const char *colon = memchr(line, ':', n);
    size_t klen = colon ? (size_t)(colon - line) : n;
    const char *v = colon ? colon + 1 : line + n;
    size_t vlen = (size_t)(line + n - v);
    if (vlen > 0 && *v == ' ') {
        v++;
        vlen--;
    }
    if (klen == 4 && memcmp(line, "data", 4) == 0) {
        if (s->overflow)
            return;
        if (s->data.len + vlen + 1 > s->max) {
            s->overflow = true;
            if (c->too_long)
                c->too_long(c->arg, s->data.len + vlen + 1, v,
                            vlen < 256 ? vlen : 256, false);
            return;
        }
        if (s->has_data)
            omni_buf_addch(&s->data, '\n');
        omni_buf_add(&s->data, v, vlen);
        s->has_data = true;
    } else if (klen == 5 && memcmp(line, "event", 5) == 0) {
        omni_buf_reset(&s->event);
        omni_buf_add(&s->event, v, vlen < 64 ? vlen : 64);
    }
}

/* A non-blank line of the stream. */
static void on_line(void *arg, const char *line, size_t n)
{
    field(arg, line, n);
}

static void on_long(void *arg, size_t n, const char *edge, size_t edgen,
                    bool end)
{
    struct feed_ctx *c = arg;
    c->s->overflow = true;
    if (c->too_long && !end)
        c->too_long(c->arg, n, edge, edgen, end);
}

/* Feed body bytes; complete events go to cb. */
void omni_mcp_sse_feed(struct omni_mcp_sse *s, const char *p, size_t n,
                       omni_mcp_sse_cb cb, omni_mcp_long_cb too_long, void *arg)
{
    struct feed_ctx c = {s, cb, too_long, arg};
    /* The line splitter skips blank lines, but a blank line ends an SSE
     * event: feed it one line at a time and see the blank ones here. */
    while (n > 0) {
        const char *nl = memchr(p, '\n', n);
        size_t seg = nl ? (size_t)(nl - p) + 1 : n;
        bool blank = nl && s->lines.buf.len == 0 && !s->lines.dropping &&
                     (seg == 1 || (seg == 2 && p[0] == '\r'));
        /* A CRLF blank line split between two reads. */
        bool split = nl && seg == 1 && s->lines.buf.len == 1 &&
                     s->lines.buf.data[0] == '\r';
        if (split)
            omni_buf_reset(&s->lines.buf);
        if (blank || split)
            dispatch(&c);
        else
            omni_mcp_lines_feed(&s->lines, p, seg, on_line, on_long, &c);
        p += seg;
        n -= seg;
    }
}
