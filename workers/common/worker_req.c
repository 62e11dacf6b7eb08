/*
 * worker_req - requests in flight in a worker.
 *
 * Each REQUEST from the broker becomes a struct omni_wreq in a hash
 * table keyed by the broker's key; it owns the header and body frames
 * (moved out of ZeroMQ, not copied), and its deadline timer.  It ends in
 * exactly one place, finish(): after the worker's FINAL or ERROR, or
 * after def->cancel on CANCEL, deadline, lost link or drain.  A request
 * the runtime cannot take (bad header, draining, over capacity) is
 * answered with an ERROR at once and never reaches the worker.
 */
#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"
#include "worker_int.h"

/* Send an ERROR for key; the message is redacted. */
static void send_error(struct omni_worker *w, uint64_t key, enum omni_err code,
                       int status, uint32_t retry_after_ms, const char *fmt,
                       va_list ap) __attribute__((format(printf, 6, 0)));

static void send_error(struct omni_worker *w, uint64_t key, enum omni_err code,
                       int status, uint32_t retry_after_ms, const char *fmt,
                       va_list ap)
{
    struct omni_buf text = OMNI_BUF_INIT, map = OMNI_BUF_INIT;
    omni_buf_vaddf(&text, fmt, ap);
    omni_redact(&text);
    struct omni_msg m = {.type = OMNI_MSG_ERROR,
                         .code = code,
                         .status = status > 0 ? (uint32_t)status : 0,
                         .message = {text.data, text.len},
                         .retry_after_ms = retry_after_ms};
    omni_msg_pack(&m, &map);
    omni_wlink_send(w, OMNI_W_ERROR, true, key, map.data, map.len, NULL, 0);
    omni_buf_release(&map);
    omni_buf_release(&text);
}

static void refuse(struct omni_worker *w, uint64_t key, enum omni_err code,
                   const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void refuse(struct omni_worker *w, uint64_t key, enum omni_err code,
                   const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    send_error(w, key, code, 0, 0, fmt, ap);
    va_end(ap);
}

/* Unlink r, free it, and see whether a drain is over. */
static void finish(struct omni_wreq *r)
{
    struct omni_worker *w = r->w;
    omni_htab_del(&w->reqs, r->node.key);
    if (r->timer)
        event_free(r->timer);
    zmq_msg_close(&r->hdr);
    zmq_msg_close(&r->body);
    omni_free(r);
    omni_worker_check_drained(w);
}

/* The worker must stop r: tell it, then free r.  Answers it tries to
 * send from inside def->cancel are dropped (r is CANCELLING). */
static void cancel(struct omni_wreq *r)
{
    struct omni_worker *w = r->w;
    omni_htab_del(&w->reqs, r->node.key);
    r->state = WREQ_CANCELLING;
    if (w->def->cancel)
        w->def->cancel(r);
    finish(r);
}

static void on_deadline(evutil_socket_t fd, short what, void *arg)
{
    struct omni_wreq *r = arg;
    (void)fd;
    (void)what;
    omni_debug("worker: request %" PRIu64 " passed its deadline", r->node.key);
    cancel(r);
}

/* Decode the header frame.  The broker forwards the client's request
 * map, so svc may be absent or empty here: that alone is no error. */
static enum omni_err decode_header(struct omni_wreq *r, char err[OMNI_ERR_LEN])
{
    struct omni_msg m;
    enum omni_err rc =
        omni_msg_decode(zmq_msg_data(&r->hdr), zmq_msg_size(&r->hdr), &m, err);
    if (rc == OMNI_E_BAD_REQUEST && m.type == OMNI_MSG_REQUEST &&
        strncmp(err, "field 'svc'", 11) == 0)
        rc = OMNI_OK;
    if (rc != OMNI_OK)
        return rc;
    if (m.type != OMNI_MSG_REQUEST) {
        snprintf(err, OMNI_ERR_LEN, "field 't': want \"req\"");
        return OMNI_E_BAD_REQUEST;
    }
    r->op = m.op;
    r->auth = m.auth;
    r->trace = m.trace;
    r->stream = m.stream;
    if (m.deadline_ms) {
        int64_t ms =
            m.deadline_ms > INT32_MAX ? INT32_MAX : (int64_t)m.deadline_ms;
        r->deadline = omni_now_ms() + ms;
        struct timeval tv = {(time_t)(ms / 1000),
                             (suseconds_t)(ms % 1000) * 1000};
        r->timer = evtimer_new(r->w->base, on_deadline, r);
        evtimer_add(r->timer, &tv);
    }
    return OMNI_OK;
}

void omni_wreq_on_request(struct omni_worker *w, struct omni_wire_msg *m)
{
    uint64_t key = m->key;
    char err[OMNI_ERR_LEN];
    if (omni_htab_get(&w->reqs, key)) {
        omni_warn("worker: ignored a second REQUEST for key %" PRIu64, key);
        return;
    }
    if (w->draining) {
        refuse(w, key, OMNI_E_UNAVAILABLE, "worker '%s' is draining",
               w->def->service);
        return;
    }
    if (w->reqs.n >= w->capacity) {
        refuse(w, key, OMNI_E_OVERLOADED,
               "worker '%s' is at capacity (%" PRIu32 ")", w->def->service,
               w->capacity);
        return;
    }
    struct omni_wreq *r = omni_calloc(1, sizeof *r);
    r->node.key = key;
    r->w = w;
    /* Move the frames into r first: small ZeroMQ messages keep their
     * bytes inside zmq_msg_t itself, so the borrowed strings must point
     * into r's copy. */
    zmq_msg_init(&r->hdr);
    zmq_msg_init(&r->body);
    zmq_msg_move(&r->hdr, &m->parts[0]);
    zmq_msg_move(&r->body, &m->parts[1]);
    enum omni_err rc = decode_header(r, err);
    if (rc != OMNI_OK) {
        omni_warn("worker: refused request %" PRIu64 ": %s", key, err);
        refuse(w, key, rc, "bad request header: %s", err);
        zmq_msg_close(&r->hdr);
        zmq_msg_close(&r->body);
        omni_free(r);
        return;
    }
    omni_htab_put(&w->reqs, &r->node);
    w->def->request(r);
}

void omni_wreq_on_cancel(struct omni_worker *w, uint64_t key)
{
    struct omni_wreq *r = (struct omni_wreq *)omni_htab_get(&w->reqs, key);
    if (!r) {
        omni_debug("worker: CANCEL for unknown key %" PRIu64 " ignored", key);
        return;
    }
    omni_debug("worker: request %" PRIu64 " cancelled by the broker", key);
    cancel(r);
}

void omni_wreq_abandon_all(struct omni_worker *w, const char *why)
{
    if (w->reqs.n)
        omni_warn("worker: abandoning %zu requests in flight: %s", w->reqs.n,
                  why);
    struct omni_hnode *n;
    while ((n = omni_htab_take_any(&w->reqs)))
        cancel((struct omni_wreq *)n);
}

void omni_wreq_fail_all(struct omni_worker *w, enum omni_err code,
                        const char *why)
{
    struct omni_hnode *n;
    while ((n = omni_htab_take_any(&w->reqs))) {
        struct omni_wreq *r = (struct omni_wreq *)n;
        refuse(w, r->node.key, code, "%s", why);
        cancel(r);
    }
}

/* ---- the worker's side ---- */

struct omni_str omni_wreq_op(const struct omni_wreq *r)
{
    return r->op;
}

struct omni_str omni_wreq_body(const struct omni_wreq *r)
{
    struct omni_str s = {zmq_msg_data((zmq_msg_t *)&r->body),
                         zmq_msg_size(&r->body)};
    return s;
}

struct omni_str omni_wreq_auth(const struct omni_wreq *r)
{
    return r->auth;
}

struct omni_str omni_wreq_trace(const struct omni_wreq *r)
{
    return r->trace;
}

bool omni_wreq_stream(const struct omni_wreq *r)
{
    return r->stream;
}

uint64_t omni_wreq_key(const struct omni_wreq *r)
{
    return r->node.key;
}

int64_t omni_wreq_deadline(const struct omni_wreq *r)
{
    return r->deadline;
}

bool omni_wreq_streamed(const struct omni_wreq *r)
{
    return r->streamed;
}

struct omni_worker *omni_wreq_worker(const struct omni_wreq *r)
{
    return r->w;
}

void omni_wreq_set_data(struct omni_wreq *r, void *data)
{
    r->data = data;
}

void *omni_wreq_data(const struct omni_wreq *r)
{
    return r->data;
}

void omni_wreq_partial(struct omni_wreq *r, const void *p, size_t n)
{
    if (r->state != WREQ_LIVE || !r->stream)
        return;
    omni_wlink_send(r->w, OMNI_W_PARTIAL, true, r->node.key, p ? p : "", n,
                    NULL, 0);
    r->streamed = true;
}

void omni_wreq_final(struct omni_wreq *r, const void *p, size_t n)
{
    if (r->state != WREQ_LIVE)
        return;
    omni_wlink_send(r->w, OMNI_W_FINAL, true, r->node.key, p ? p : "", n, NULL,
                    0);
    finish(r);
}

void omni_wreq_error(struct omni_wreq *r, enum omni_err code, int status,
                     uint32_t retry_after_ms, const char *fmt, ...)
{
    if (r->state != WREQ_LIVE)
        return;
    va_list ap;
    va_start(ap, fmt);
    send_error(r->w, r->node.key, code, status, retry_after_ms, fmt, ap);
    va_end(ap);
    finish(r);
}
