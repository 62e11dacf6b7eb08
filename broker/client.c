/*
 * client - frames from a client connection in, replies out.
 *
 * The input buffer is parsed incrementally: omni_frame_peek says whether
 * a whole frame is there, omni_msg_decode decodes it in place, and the
 * frame is drained once handled (the router copies what it keeps).  Bad
 * input follows PROTOCOL.md section 4: an undecodable message in a good
 * frame gets an error (id 0 if its id could not be read) and the
 * connection stays; a bad frame length gets one error, then the
 * connection closes once that error is flushed.  Each protocol error is
 * logged with a printable excerpt of the offending bytes.
 */
#include "broker.h"

#include <ctype.h>
#include <event2/buffer.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_log.h"

#define EXCERPT         64
#define LOGGED_ERRS_MAX 5
/* Bodies above this go to the socket by reference, not copied again. */
#define BIG_BODY 65536

static void free_buf(const void *data, size_t len, void *arg)
{
    (void)len;
    (void)arg;
    omni_free((void *)data);
}

void omni_client_send(struct omni_conn *c, const struct omni_msg *m)
{
    if (c->state != OMNI_CONN_OPEN)
        return;
    struct evbuffer *out = bufferevent_get_output(c->bev);
    struct omni_buf b = OMNI_BUF_INIT;
    omni_msg_encode(m, &b);
    if (b.len >= BIG_BODY) {
        size_t n;
        char *p = omni_buf_detach(&b, &n);
        evbuffer_add_reference(out, p, n, free_buf, NULL);
    } else {
        evbuffer_add(out, b.data, b.len);
        omni_buf_release(&b);
    }
}

void omni_client_deliver_op(void *arg, void *conn, const struct omni_msg *m)
{
    (void)arg;
    omni_client_send(conn, m);
}

void omni_client_error(struct omni_conn *c, uint64_t id, enum omni_err code,
                       uint32_t retry_after_ms, const char *fmt, ...)
{
    if (c->state != OMNI_CONN_OPEN)
        return;
    struct omni_buf text = OMNI_BUF_INIT, b = OMNI_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(&text, fmt, ap);
    va_end(ap);
    omni_msg_encode_error(&b, id, code, retry_after_ms, "%s", text.data);
    evbuffer_add(bufferevent_get_output(c->bev), b.data, b.len);
    omni_buf_release(&b);
    omni_buf_release(&text);
}

/* Log a protocol error with a printable excerpt of the bytes (a few per
 * connection, so a hostile peer cannot flood the log). */
static void log_bad(struct omni_conn *c, const char *what, const void *p,
                    size_t n)
{
    if (c->logged_errs > LOGGED_ERRS_MAX)
        return;
    if (c->logged_errs++ == LOGGED_ERRS_MAX) {
        omni_warn("client %llu (pid %d): further protocol errors not logged",
                  (unsigned long long)c->serial, (int)c->pid);
        return;
    }
    char ex[EXCERPT + 1];
    const unsigned char *u = p;
    size_t k = n < EXCERPT ? n : EXCERPT;
    for (size_t i = 0; i < k; i++)
        ex[i] = isprint(u[i]) && u[i] != '"' && u[i] != '\\' ? (char)u[i] : '.';
    ex[k] = '\0';
    omni_warn("client %llu (pid %d uid %u): protocol error: %s; %zu bytes: "
              "'%s'",
              (unsigned long long)c->serial, (int)c->pid, (unsigned)c->uid,
              what, n, ex);
}

/* One frame's payload. */
static void handle(struct omni_conn *c, const char *p, size_t n)
{
    struct omni_msg m;
    char err[OMNI_ERR_LEN];
    enum omni_err rc = omni_msg_decode(p, n, &m, err);
    if (rc == OMNI_OK && m.version && m.version != OMNI_PROTOCOL_VERSION) {
        snprintf(err, sizeof err, "field 'v': want %d, got %u",
                 OMNI_PROTOCOL_VERSION, m.version);
        rc = OMNI_E_BAD_REQUEST;
    }
    if (rc == OMNI_OK && m.type != OMNI_MSG_REQUEST &&
        m.type != OMNI_MSG_CANCEL) {
        snprintf(err, sizeof err, "field 't': '%s' is not a client message",
                 omni_msg_type_name(m.type));
        rc = OMNI_E_BAD_REQUEST;
    }
    if (rc != OMNI_OK) {
        log_bad(c, err, p, n);
        omni_client_error(c, m.id, rc, 0, "%s", err);
        return;
    }
    if (m.type == OMNI_MSG_CANCEL)
        omni_router_cancel(c->b->router, c->rc, m.id);
    else if (omni_str_eq(m.service, "omni"))
        omni_stats_request(c->b, c, &m);
    else
        omni_router_request(c->b->router, c->rc, &m);
}

void omni_client_read(struct omni_conn *c)
{
    struct evbuffer *in = bufferevent_get_input(c->bev);
    size_t max_frame = omni_listener_max_frame(c->l);
    while (c->state == OMNI_CONN_OPEN && !c->throttled) {
        size_t have = evbuffer_get_length(in);
        if (have < OMNI_FRAME_HDR)
            return;
        const unsigned char *h = evbuffer_pullup(in, OMNI_FRAME_HDR);
        size_t n = 0;
        enum omni_err rc = omni_frame_peek(h, have, max_frame, &n);
        if (rc == OMNI_AGAIN)
            return;
        if (rc != OMNI_OK) {
            /* The stream cannot be resynchronised: one error, then
             * close once it is flushed. */
            uint32_t len = (uint32_t)h[0] << 24 | (uint32_t)h[1] << 16 |
                           (uint32_t)h[2] << 8 | h[3];
            char what[OMNI_ERR_LEN];
            if (len == 0)
                snprintf(what, sizeof what, "frame of length 0");
            else
                snprintf(what, sizeof what,
                         "frame of %u bytes over the limit of %zu", len,
                         max_frame);
            size_t k = have < EXCERPT ? have : EXCERPT;
            log_bad(c, what, evbuffer_pullup(in, (ev_ssize_t)k), k);
            omni_client_error(c, 0, len ? OMNI_E_TOO_LARGE : OMNI_E_PROTOCOL, 0,
                              "%s", what);
            evbuffer_drain(in, have);
            omni_conn_close(c, true);
            return;
        }
        const char *p =
            (const char *)evbuffer_pullup(in, (ev_ssize_t)(OMNI_FRAME_HDR + n));
        handle(c, p + OMNI_FRAME_HDR, n);
        evbuffer_drain(in, OMNI_FRAME_HDR + n);
    }
}
