/*
 * llm_sse - incremental Server-Sent Events parser.
 *
 * Follows the WHATWG "event stream interpretation" rules: bytes are cut
 * into lines (LF, CRLF or CR), each line is a field, a blank line
 * dispatches the event being built.  The parser owns four buffers (the
 * partial line, the event name, the data, the last id) and never holds
 * more than max_event bytes in any of them: a longer line or event makes
 * llm_sse_feed fail with -1, and every later feed fails the same way.
 */
#include "llm_sse.h"

#include <string.h>

/* state bits */
#define ST_BOM_MASK 0x3u  /* BOM bytes matched so far (0..2) */
#define ST_BOM_DONE 0x4u  /* the start of the stream is behind us */
#define ST_CR       0x8u  /* the last byte was a CR: skip one LF */
#define ST_FAILED   0x10u /* an event was too large: refuse input */

static const char bom[3] = {'\xef', '\xbb', '\xbf'};

void llm_sse_init(struct llm_sse *p, size_t max_event)
{
    omni_buf_init(&p->line);
    omni_buf_init(&p->event);
    omni_buf_init(&p->data);
    omni_buf_init(&p->id);
    p->state = 0;
    p->max_event = max_event;
}

void llm_sse_release(struct llm_sse *p)
{
    omni_buf_release(&p->line);
    omni_buf_release(&p->event);
    omni_buf_release(&p->data);
    omni_buf_release(&p->id);
    p->state = 0;
}

/* Blank line: hand the event to cb when it has data, then reset the
 * per-event fields (the last event id persists, as in EventSource). */
static int dispatch(struct llm_sse *p, llm_sse_cb cb, void *arg)
{
    int rc = 0;
    if (p->data.len) {
        /* every data line appended a '\n'; the last one is dropped */
        p->data.len--;
        p->data.data[p->data.len] = '\0';
        struct llm_sse_event ev = {
            .event = p->event.len ? p->event.data : "message",
            .event_len = p->event.len ? p->event.len : 7,
            .data = p->data.data,
            .data_len = p->data.len,
            .id = p->id.data,
        };
        rc = cb(&ev, arg);
    }
    omni_buf_reset(&p->data);
    omni_buf_reset(&p->event);
    return rc;
}

/* One complete line (without its terminator). */
static int line(struct llm_sse *p, const char *s, size_t n, llm_sse_cb cb,
                void *arg)
{
    if (n == 0)
        return dispatch(p, cb, arg);
    if (s[0] == ':')
        return 0;
    const char *colon = memchr(s, ':', n);
    size_t flen = colon ? (size_t)(colon - s) : n;
    const char *v = colon ? colon + 1 : s + n;
    size_t vlen = (size_t)(s + n - v);
    if (vlen && v[0] == ' ') {
        v++;
        vlen--;
    }
    if (flen == 4 && memcmp(s, "data", 4) == 0) {
        if (p->data.len + vlen + 1 > p->max_event)
            return -1;
        omni_buf_add(&p->data, v, vlen);
        omni_buf_addch(&p->data, '\n');
    } else if (flen == 5 && memcmp(s, "event", 5) == 0) {
        omni_buf_reset(&p->event);
        omni_buf_add(&p->event, v, vlen);
    } else if (flen == 2 && memcmp(s, "id", 2) == 0) {
        /* an id containing NUL is ignored, per the spec */
        if (!memchr(v, '\0', vlen)) {
            omni_buf_reset(&p->id);
            omni_buf_add(&p->id, v, vlen);
        }
    }
    /* "retry" and unknown fields are ignored */
    return 0;
}

/* Consume the start of the stream: a UTF-8 BOM, possibly split across
 * feeds, is dropped; anything else ends the check and the bytes matched
 * so far become ordinary line content.  Returns the bytes used. */
static size_t skip_bom(struct llm_sse *p, const char *buf, size_t n)
{
    size_t used = 0;
    while (!(p->state & ST_BOM_DONE) && used < n) {
        unsigned k = (unsigned)p->state & ST_BOM_MASK;
        if (buf[used] == bom[k]) {
            used++;
            if (k + 1 == 3)
                p->state = (p->state & ~(int)ST_BOM_MASK) | ST_BOM_DONE;
            else
                p->state = (p->state & ~(int)ST_BOM_MASK) | (int)(k + 1);
        } else {
            omni_buf_add(&p->line, bom, k);
            p->state = (p->state & ~(int)ST_BOM_MASK) | ST_BOM_DONE;
        }
    }
    return used;
}

int llm_sse_feed(struct llm_sse *p, const char *buf, size_t n, llm_sse_cb cb,
                 void *arg)
{
    if (p->state & ST_FAILED)
        return -1;
    size_t i = skip_bom(p, buf, n);
    while (i < n) {
        if ((p->state & ST_CR) && buf[i] == '\n') {
            /* the LF of a CRLF whose CR ended the previous line */
            p->state &= ~(int)ST_CR;
            i++;
            continue;
        }
        p->state &= ~(int)ST_CR;
        size_t j = i;
        while (j < n && buf[j] != '\n' && buf[j] != '\r')
            j++;
        if (p->line.len + (j - i) > p->max_event) {
            p->state |= ST_FAILED;
            return -1;
        }
        if (j == n) {
            omni_buf_add(&p->line, buf + i, j - i);
            break;
        }
        int rc;
        if (p->line.len) {
            /* the line started in an earlier feed */
            omni_buf_add(&p->line, buf + i, j - i);
            rc = line(p, p->line.data, p->line.len, cb, arg);
            omni_buf_reset(&p->line);
        } else {
            rc = line(p, buf + i, j - i, cb, arg);
        }
        if (buf[j] == '\r')
            p->state |= ST_CR;
        i = j + 1;
        if (rc == -1) {
            p->state |= ST_FAILED;
            return -1;
        }
        if (rc)
            return rc;
    }
    return 0;
}
