/*
 * worker_link - the worker's DEALER link to the broker.
 *
 * Owns the ZeroMQ context and socket: connects, announces READY, sends
 * HEARTBEAT when nothing else went out for a while, and declares the
 * broker dead after broker.liveness silent intervals; it then reconnects
 * on a new socket with backoff 1 s -> 32 s plus jitter (reset by any
 * broker message).  Requests in flight when the link drops are abandoned:
 * the broker has already answered them.  Sends never block: a command
 * ZeroMQ refuses (EAGAIN at the high-water mark) is queued in order and
 * retried, so a FINAL is never lost while the link lives.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_evzmq.h"
#include "omni_log.h"
#include "omni_time.h"
#include "worker_int.h"

#define BACKOFF_MIN_MS    1000
#define BACKOFF_MAX_MS    32000
#define RETRY_MS          5
#define GOODBYE_LINGER_MS 1000

static void ms_tv(long ms, struct timeval *tv)
{
    tv->tv_sec = ms / 1000;
    tv->tv_usec = (ms % 1000) * 1000;
}

/* One command from the broker; returns how many messages it consumed. */
static int on_input(void *arg)
{
    struct omni_worker *w = arg;
    struct omni_wire_msg m;
    char err[OMNI_ERR_LEN];
    if (!w->sock)
        return 0;
    enum omni_err rc = omni_wire_recv(w->sock, false, &m, err);
    if (rc == OMNI_AGAIN)
        return 0;
    /* Once DISCONNECT is seen the socket only waits to be closed: read
     * and drop the rest so omni_evzmq does not spin on it. */
    if (w->link_dead) {
        omni_wire_msg_close(&m);
        return 1;
    }
    w->last_recv = omni_now_ms();
    w->backoff_ms = BACKOFF_MIN_MS;
    if (rc != OMNI_OK) {
        omni_warn("worker: ignored a malformed message from the broker: %s",
                  err);
        omni_wire_msg_close(&m);
        return 1;
    }
    switch (m.cmd) {
    case OMNI_W_REQUEST: omni_wreq_on_request(w, &m); break;
    case OMNI_W_CANCEL: omni_wreq_on_cancel(w, m.key); break;
    case OMNI_W_HEARTBEAT: break;
    case OMNI_W_DISCONNECT:
        /* Tear down outside omni_evzmq's callback, which still uses
         * the socket when we return. */
        w->link_dead = true;
        event_active(w->reset_ev, EV_TIMEOUT, 0);
        break;
    case OMNI_W_READY:
    case OMNI_W_PARTIAL:
    case OMNI_W_FINAL:
    case OMNI_W_ERROR:
    case OMNI_W_STATS:
        omni_warn("worker: ignored unexpected command %d from the broker",
                  (int)m.cmd);
        break;
    }
    omni_wire_msg_close(&m);
    return 1;
}

/* Try one send.  False: ZeroMQ refused it for now (queue and retry). */
static bool try_send(struct omni_worker *w, enum omni_wire_cmd cmd,
                     bool has_key, uint64_t key, const void *a, size_t alen,
                     const void *b, size_t blen)
{
    if (omni_wire_send(w->sock, NULL, 0, cmd, has_key, key, a, alen, b, blen,
                       NULL) == OMNI_OK) {
        w->last_send = omni_now_ms();
        return true;
    }
    int e = zmq_errno();
    if (e == EAGAIN || e == EINTR)
        return false;
    omni_warn("worker: cannot send command %d to the broker: %s", (int)cmd,
              zmq_strerror(e));
    return true;
}

static void wq_free(struct wq_item *q)
{
    omni_buf_release(&q->a);
    omni_buf_release(&q->b);
    omni_free(q);
}

static void wq_clear(struct omni_worker *w)
{
    while (w->wq) {
        struct wq_item *q = w->wq;
        w->wq = q->next;
        wq_free(q);
    }
    w->wq_tail = &w->wq;
    w->wq_len = 0;
    evtimer_del(w->flush_ev);
}

static void arm_flush(struct omni_worker *w)
{
    struct timeval tv;
    ms_tv(RETRY_MS, &tv);
    evtimer_add(w->flush_ev, &tv);
}

/* Send what the high-water mark held back, in order. */
static void on_flush(evutil_socket_t fd, short what, void *arg)
{
    struct omni_worker *w = arg;
    (void)fd;
    (void)what;
    while (w->wq && w->sock) {
        struct wq_item *q = w->wq;
        if (!try_send(w, q->cmd, q->has_key, q->key,
                      q->has_a ? q->a.data : NULL, q->a.len,
                      q->has_b ? q->b.data : NULL, q->b.len)) {
            arm_flush(w);
            return;
        }
        w->wq = q->next;
        if (!w->wq)
            w->wq_tail = &w->wq;
        w->wq_len--;
        wq_free(q);
    }
    if (w->ez)
        omni_evzmq_kick(w->ez);
}

void omni_wlink_send(struct omni_worker *w, enum omni_wire_cmd cmd,
                     bool has_key, uint64_t key, const void *a, size_t alen,
                     const void *b, size_t blen)
{
    if (!w->sock || w->link_dead)
        return;
    if (!w->wq && try_send(w, cmd, has_key, key, a, alen, b, blen)) {
        omni_evzmq_kick(w->ez);
        return;
    }
    struct wq_item *q = omni_calloc(1, sizeof *q);
    q->cmd = cmd;
    q->has_key = has_key;
    q->key = key;
    omni_buf_init(&q->a);
    omni_buf_init(&q->b);
    q->has_a = a != NULL;
    q->has_b = b != NULL;
    if (a)
        omni_buf_add(&q->a, a, alen);
    if (b)
        omni_buf_add(&q->b, b, blen);
    *w->wq_tail = q;
    w->wq_tail = &q->next;
    if (w->wq_len++ == 0) {
        omni_debug("worker: broker link at its high-water mark; queueing");
        arm_flush(w);
    }
}

static void send_ready(struct omni_worker *w)
{
    struct omni_buf map = OMNI_BUF_INIT;
    struct omni_msg m = {.type = OMNI_MSG_READY,
                         .capacity = w->capacity,
                         .pid = (uint32_t)getpid()};
    omni_msg_pack(&m, &map);
    const char *svc = w->def->service;
    omni_wlink_send(w, OMNI_W_READY, false, 0, svc, strlen(svc), map.data,
                    map.len);
    omni_buf_release(&map);
}

int omni_wlink_up(struct omni_worker *w, char err[OMNI_ERR_LEN])
{
    void *s = zmq_socket(w->zctx, ZMQ_DEALER);
    if (!s) {
        snprintf(err, OMNI_ERR_LEN, "cannot make a ZeroMQ socket: %s",
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    /* Replies must not be dropped at a high-water mark: unlimited by
     * default (worker.sndhwm); the send queue covers a finite one. */
    int hwm = (int)omni_cfg_int("worker.sndhwm"), zero = 0;
    zmq_setsockopt(s, ZMQ_SNDHWM, &hwm, sizeof hwm);
    zmq_setsockopt(s, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(s, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_connect(s, w->endpoint) < 0) {
        snprintf(err, OMNI_ERR_LEN, "cannot connect to '%s': %s", w->endpoint,
                 zmq_strerror(zmq_errno()));
        zmq_close(s);
        return -1;
    }
    w->sock = s;
    w->link_dead = false;
    w->ez = omni_evzmq_new(w->base, s, on_input, w);
    w->last_recv = w->last_send = omni_now_ms();
    send_ready(w);
    omni_info("worker: '%s' connected to '%s' (capacity %" PRIu32 ")",
              w->def->service, w->endpoint, w->capacity);
    return 0;
}

void omni_wlink_close(struct omni_worker *w, bool say_goodbye)
{
    if (!w->sock)
        return;
    if (say_goodbye && !w->link_dead) {
        on_flush(-1, 0, w);
        if (w->wq_len)
            omni_warn("worker: %zu replies could not be sent", w->wq_len);
        omni_wlink_send(w, OMNI_W_DISCONNECT, false, 0, NULL, 0, NULL, 0);
        /* Give what is queued inside ZeroMQ a moment to leave. */
        int linger = GOODBYE_LINGER_MS;
        zmq_setsockopt(w->sock, ZMQ_LINGER, &linger, sizeof linger);
    }
    wq_clear(w);
    omni_evzmq_free(w->ez);
    w->ez = NULL;
    zmq_close(w->sock);
    w->sock = NULL;
}

static void schedule_reconnect(struct omni_worker *w)
{
    long delay = w->backoff_ms +
                 (long)arc4random_uniform((uint32_t)w->backoff_ms / 2 + 1);
    w->backoff_ms =
        w->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : w->backoff_ms * 2;
    struct timeval tv;
    ms_tv(delay, &tv);
    evtimer_add(w->reconnect_ev, &tv);
    omni_info("worker: reconnecting in %ld ms", delay);
}

void omni_wlink_down(struct omni_worker *w, const char *why)
{
    omni_warn("worker: lost the broker: %s", why);
    omni_wlink_close(w, false);
    omni_wreq_abandon_all(w, why);
    /* While draining there is nothing left to deliver to: stop. */
    if (w->draining) {
        w->done = true;
        return;
    }
    schedule_reconnect(w);
}

static void on_reconnect(evutil_socket_t fd, short what, void *arg)
{
    struct omni_worker *w = arg;
    char err[OMNI_ERR_LEN];
    (void)fd;
    (void)what;
    if (w->sock || w->done)
        return;
    if (omni_wlink_up(w, err) < 0) {
        omni_warn("worker: %s", err);
        schedule_reconnect(w);
    }
}

static void on_reset(evutil_socket_t fd, short what, void *arg)
{
    struct omni_worker *w = arg;
    (void)fd;
    (void)what;
    if (w->sock && w->link_dead)
        omni_wlink_down(w, "broker sent DISCONNECT");
}

/* Every heartbeat interval: is the broker alive, and do we owe it a
 * HEARTBEAT?  Anything else sent recently counts as one. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    struct omni_worker *w = arg;
    (void)fd;
    (void)what;
    if (!w->sock || w->link_dead)
        return;
    int64_t now = omni_now_ms();
    int64_t silent = now - w->last_recv;
    /* After a long loop iteration (thousands of transfers started in one
     * go) the broker's heartbeats may be waiting unread: read them before
     * calling it silent, or a busy worker drops a live link. */
    if (silent >= (int64_t)w->hb_ms * w->liveness) {
        while (w->sock && !w->link_dead && on_input(w) > 0)
            ;
        if (!w->sock || w->link_dead)
            return;
        silent = now - w->last_recv;
        if (silent < 0)
            silent = 0;
    }
    if (silent >= (int64_t)w->hb_ms * w->liveness) {
        char why[96];
        snprintf(why, sizeof why, "silent for %" PRId64 " ms", silent);
        omni_wlink_down(w, why);
        return;
    }
    /* A heartbeat queued behind refused sends would prove nothing. */
    if (w->wq)
        return;
    if (w->def->stats) {
        /* The counters travel once per interval and serve as the
         * heartbeat; the broker keeps the latest for "omni stats". */
        struct omni_buf b = OMNI_BUF_INIT;
        omni_buf_addf(&b, "{\"pid\":%d,\"in_flight\":%zu", (int)getpid(),
                      omni_worker_in_flight(w));
        w->def->stats(w, &b);
        omni_buf_addch(&b, '}');
        omni_wlink_send(w, OMNI_W_STATS, false, 0, b.data, b.len, NULL, 0);
        omni_buf_release(&b);
    } else if (now - w->last_send >= w->hb_ms / 2) {
        omni_wlink_send(w, OMNI_W_HEARTBEAT, false, 0, NULL, 0, NULL, 0);
    }
}

int omni_wlink_init(struct omni_worker *w, char err[OMNI_ERR_LEN])
{
    w->zctx = zmq_ctx_new();
    if (!w->zctx) {
        snprintf(err, OMNI_ERR_LEN, "cannot make a ZeroMQ context: %s",
                 zmq_strerror(zmq_errno()));
        return -1;
    }
    w->backoff_ms = BACKOFF_MIN_MS;
    w->wq_tail = &w->wq;
    w->tick_ev = event_new(w->base, -1, EV_PERSIST, on_tick, w);
    w->reconnect_ev = evtimer_new(w->base, on_reconnect, w);
    w->reset_ev = evtimer_new(w->base, on_reset, w);
    w->flush_ev = evtimer_new(w->base, on_flush, w);
    return 0;
}

/* Start the heartbeat clock (after the first connect). */
void omni_wlink_start_tick(struct omni_worker *w)
{
    struct timeval tv;
    ms_tv(w->hb_ms, &tv);
    event_add(w->tick_ev, &tv);
}

void omni_wlink_release(struct omni_worker *w)
{
    omni_wlink_close(w, false);
    if (w->tick_ev)
        event_free(w->tick_ev);
    if (w->reconnect_ev)
        event_free(w->reconnect_ev);
    if (w->reset_ev)
        event_free(w->reset_ev);
    if (w->flush_ev)
        event_free(w->flush_ev);
    w->tick_ev = w->reconnect_ev = w->reset_ev = w->flush_ev = NULL;
    if (w->zctx)
        zmq_ctx_term(w->zctx);
    w->zctx = NULL;
}
