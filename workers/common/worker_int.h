/*
 * worker_int - the worker runtime's private state, shared by its files:
 * worker_link.c (the DEALER link: READY, heartbeats, reconnect, sends),
 * worker_req.c (requests in flight), worker_sub.c (sub-requests through
 * libomni) and worker_main.c (options, config, signals, drain).
 */
#ifndef OMNI_WORKER_INT_H
#define OMNI_WORKER_INT_H

#include <zmq.h>

#include "omni_wire.h"
#include "omni_worker.h"
#include "worker_table.h"

/* A command ZeroMQ refused (EAGAIN at the high-water mark), kept in
 * order until it can go: a FINAL must never be lost. */
struct wq_item {
    struct wq_item *next;
    enum omni_wire_cmd cmd;
    bool has_key;
    uint64_t key;
    bool has_a, has_b;
    struct omni_buf a, b;
};

enum wreq_state { WREQ_LIVE, WREQ_CANCELLING };

struct omni_wreq {
    struct omni_hnode node; /* key: the broker's request key */
    struct omni_worker *w;
    enum wreq_state state;
    zmq_msg_t hdr; /* header map; op/auth/trace point into it */
    zmq_msg_t body;
    struct omni_str op, auth, trace;
    bool stream;
    bool streamed;
    int64_t deadline; /* omni_now_ms() clock, 0 = none */
    struct event *timer;
    void *data;
};

struct omni_worker {
    const struct omni_worker_def *def;
    struct event_base *base;
    bool own_base;
    void *data;

    /* The link to the broker. */
    void *zctx;
    void *sock; /* NULL while waiting to reconnect */
    struct omni_evzmq *ez;
    char *endpoint;
    uint32_t capacity;
    int hb_ms;
    int liveness;
    long drain_ms;
    int64_t last_recv, last_send;
    int backoff_ms;        /* next reconnect delay, before jitter */
    bool link_dead;        /* torn down at the next reset_ev */
    struct event *tick_ev; /* every hb_ms: heartbeat, liveness */
    struct event *reconnect_ev;
    struct event *reset_ev; /* deferred teardown (not inside evzmq) */
    struct event *flush_ev; /* retry of the send queue */
    struct wq_item *wq, **wq_tail;
    size_t wq_len;

    /* Requests in flight, and draining. */
    struct omni_htab reqs;
    bool draining;
    bool done;
    struct event *drain_ev;
    int parent_fd;
    struct event *parent_ev;

    /* Sub-requests. */
    omni_client *client;
    struct event *cli_rev, *cli_wev;
    struct omni_htab subs;        /* by our id (omni_worker_subcall) */
    struct omni_htab subs_by_lib; /* by libomni's id on this client */
    uint64_t next_sub_id;
    struct subcall *failed; /* to be told UNAVAILABLE from fail_ev */
    struct event *fail_ev;
};

/* worker_link.c */
int omni_wlink_up(struct omni_worker *w, char err[OMNI_ERR_LEN]);
void omni_wlink_down(struct omni_worker *w, const char *why);
void omni_wlink_close(struct omni_worker *w, bool say_goodbye);
void omni_wlink_send(struct omni_worker *w, enum omni_wire_cmd cmd,
                     bool has_key, uint64_t key, const void *a, size_t alen,
                     const void *b, size_t blen);
int omni_wlink_init(struct omni_worker *w, char err[OMNI_ERR_LEN]);
void omni_wlink_start_tick(struct omni_worker *w);
void omni_wlink_release(struct omni_worker *w);

/* worker_req.c */
void omni_wreq_on_request(struct omni_worker *w, struct omni_wire_msg *m);
void omni_wreq_on_cancel(struct omni_worker *w, uint64_t key);
/* Cancel every request in flight (def->cancel, then free). */
void omni_wreq_abandon_all(struct omni_worker *w, const char *why);
/* Answer every request in flight with an ERROR, then cancel it. */
void omni_wreq_fail_all(struct omni_worker *w, enum omni_err code,
                        const char *why);

/* worker_main.c: in-flight count changed; finish a drain at zero. */
void omni_worker_check_drained(struct omni_worker *w);

/* worker_sub.c */
void omni_wsub_release(struct omni_worker *w);

#endif
