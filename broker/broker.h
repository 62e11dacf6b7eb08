/*
 * broker.h - the parts of omni-broker and what each file exports.
 *
 * One file per responsibility (Postfix master.h style): main.c (options,
 * start-up, drain), listener.c (Unix socket, connections), client.c
 * (frames in, replies out), router.c (services, queues, dispatch,
 * request table, deadlines), workers.c (ZeroMQ ROUTER, worker registry,
 * liveness), supervisor.c (spawn, reap, restart, throttle) and stats.c
 * (the built-in "omni" service).  router.c and the registry and restart
 * policy of workers.c and supervisor.c run without sockets: events come
 * in as calls and actions go out through callbacks, with a clock the
 * tests can fake.
 */
#ifndef OMNI_BROKER_H
#define OMNI_BROKER_H

#include <event2/bufferevent.h>
#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zmq.h>

#include "omni_buf.h"
#include "omni_err.h"
#include "omni_proto.h"
#include "omni_wire.h"

struct omni_router;
struct omni_rclient;
struct omni_rreq;
struct omni_workers;
struct omni_listener;
struct omni_supervisor;

/* The whole broker; main.c owns it.  Parts may be NULL in unit tests. */
struct omni_broker {
    struct event_base *base;
    struct omni_router *router;
    struct omni_workers *workers;
    struct omni_listener *listener;
    struct omni_supervisor *sup;
    int64_t started_ms;
    bool draining;
};

/* A configured service and its counters (router.c owns it; stats.c and
 * supervisor.c read and bump the fields marked so). */
struct omni_service {
    char *name;
    struct omni_bworker *whead, *wtail; /* ready workers, LRU order */
    size_t ready;                       /* workers in that list */
    uint64_t capacity;                  /* sum of their capacities */
    struct omni_rreq *qhead, *qtail;    /* FIFO of waiting requests */
    size_t queued;
    size_t in_flight; /* dispatched to a worker */
    uint64_t requests, errors, worker_lost, overloaded, timeouts;
    uint64_t restarts;       /* supervisor.c */
    unsigned children;       /* supervisor.c: running */
    char why[160];           /* supervisor.c: why not ready */
    int64_t ewma_ms;         /* service time, for retry hints */
    int64_t overload_logged; /* rate limit of the warning */
    uint64_t overload_quiet; /* rejections not logged since */
};

/* A worker that sent READY (workers.c owns it; router.c links it). */
struct omni_bworker {
    unsigned char *ident; /* ZeroMQ routing id */
    size_t ident_len;
    struct omni_service *svc;
    struct omni_bworker *prev, *next;   /* registry */
    struct omni_bworker *sprev, *snext; /* service's ready list */
    struct omni_rreq *reqs;             /* dispatched here */
    uint32_t capacity, in_flight;
    pid_t pid;      /* from READY; 0 if unknown */
    int64_t expiry; /* dead if silent past this */
    bool dead;
    char *stats; /* latest STATS JSON object, or NULL */
    size_t stats_len;
};

/* ---- router.c: the routing core ---- */

struct omni_router_cfg {
    const char *services;       /* comma-separated names */
    size_t queue_max;           /* per service */
    int64_t default_timeout_ms; /* 0: no deadline */
};

/* Actions out of the router; arg is the router's arg. */
struct omni_router_ops {
    /* Send m (chunk, final or error) to a client connection. */
    void (*to_client)(void *arg, void *conn, const struct omni_msg *m);
    /* Send REQUEST (hdr is the header map, body is consumed on success)
     * or CANCEL (hdr and body NULL) to w.  Returns 0, or -1 when w
     * cannot be reached (body untouched). */
    int (*to_worker)(void *arg, struct omni_bworker *w, enum omni_wire_cmd cmd,
                     uint64_t key, const void *hdr, size_t hlen,
                     zmq_msg_t *body);
    /* w is dead and unlinked from the router: forget it (not at once:
     * callers up the stack may still hold it). */
    void (*worker_dead)(void *arg, struct omni_bworker *w);
    /* Draining and the last request ended (may be NULL). */
    void (*drained)(void *arg);
    /* The clock, ms (NULL: omni_now_ms). */
    int64_t (*now)(void *arg);
};

struct omni_router *omni_router_new(const struct omni_router_cfg *cfg,
                                    const struct omni_router_ops *ops,
                                    void *arg);
/* Free every request (no replies), client handle and service. */
void omni_router_free(struct omni_router *r);
/* Run deadlines on base's clock with a timer (without: call tick). */
void omni_router_attach(struct omni_router *r, struct event_base *base);
/* The service named s[0..n), or NULL if not configured. */
struct omni_service *omni_router_service(struct omni_router *r, const char *s,
                                         size_t n);
size_t omni_router_nservices(const struct omni_router *r);
struct omni_service *omni_router_service_at(struct omni_router *r, size_t i);
/* Requests alive: queued and dispatched. */
size_t omni_router_in_flight(const struct omni_router *r);

/* A client connection's handle; conn is passed back to to_client. */
struct omni_rclient *omni_router_client_new(struct omni_router *r, void *conn);
/* The connection closed: cancel its dispatched requests at their
 * workers, drop its queued ones, free rc. */
void omni_router_client_gone(struct omni_router *r, struct omni_rclient *rc);
/* A decoded "req" (borrowed; what is kept is copied). */
void omni_router_request(struct omni_router *r, struct omni_rclient *rc,
                         const struct omni_msg *m);
/* A "cancel": CANCEL at the worker, CANCELLED to the client. */
void omni_router_cancel(struct omni_router *r, struct omni_rclient *rc,
                        uint64_t id);

/* w sent READY; w->svc and w->capacity are set. */
void omni_router_worker_add(struct omni_router *r, struct omni_bworker *w);
/* w is gone (why: for the log and the error message): its requests get
 * WORKER_LOST, or go back to the queue when idempotent and not yet
 * streamed; then ops->worker_dead(w). */
void omni_router_worker_lost(struct omni_router *r, struct omni_bworker *w,
                             const char *why);
/* Replies from w for request key (p/n borrowed).  Replies for a request
 * that has ended, or that w does not hold, are dropped. */
void omni_router_partial(struct omni_router *r, struct omni_bworker *w,
                         uint64_t key, const void *p, size_t n);
void omni_router_final(struct omni_router *r, struct omni_bworker *w,
                       uint64_t key, const void *p, size_t n);
void omni_router_error(struct omni_router *r, struct omni_bworker *w,
                       uint64_t key, const struct omni_msg *e);
/* Expire deadlines: TIMEOUT to the client, CANCEL to the worker.
 * Returns the next deadline (ms on the clock), or 0 if none. */
int64_t omni_router_tick(struct omni_router *r);
/* Refuse new requests with UNAVAILABLE; ops->drained once idle. */
void omni_router_drain(struct omni_router *r);
/* Answer every request left with UNAVAILABLE (why) and cancel it at
 * its worker. */
void omni_router_abort(struct omni_router *r, const char *why);

/* ---- workers.c: ZeroMQ ROUTER, worker registry, liveness ---- */

struct omni_workers *omni_workers_new(struct omni_broker *b,
                                      int64_t heartbeat_ms, int liveness);
/* Bind the ROUTER on endpoint and watch it on b->base. */
enum omni_err omni_workers_bind(struct omni_workers *ws, const char *endpoint,
                                char err[OMNI_ERR_LEN]);
/* Close the socket and free every worker (no messages). */
void omni_workers_free(struct omni_workers *ws);
/* Handle one received command (what omni_wire_recv gave: rc, err). */
void omni_workers_command(struct omni_workers *ws, struct omni_wire_msg *m,
                          enum omni_err rc, const char *err);
/* Handle every command waiting on the socket (without a loop: tests).
 * Returns how many. */
int omni_workers_poll(struct omni_workers *ws);
/* Heartbeat every worker and declare the silent ones dead. */
void omni_workers_tick(struct omni_workers *ws);
/* The worker that announced pid, or NULL. */
struct omni_bworker *omni_workers_by_pid(struct omni_workers *ws, pid_t pid);
/* w's process is gone: WORKER_LOST for its requests at once. */
void omni_workers_exited(struct omni_workers *ws, struct omni_bworker *w,
                         const char *why);
/* Send DISCONNECT to every worker (shutdown). */
void omni_workers_disconnect_all(struct omni_workers *ws);
/* Free the workers the router declared dead. */
void omni_workers_reap(struct omni_workers *ws);
size_t omni_workers_count(const struct omni_workers *ws);
/* Append ,"worker":{...} to out: the latest STATS of s's live workers,
 * numbers summed member by member (nothing when none sent any). */
void omni_workers_stats(const struct omni_workers *ws,
                        const struct omni_service *s, struct omni_buf *out);
/* Router ops (arg: the broker). */
int omni_workers_send_op(void *arg, struct omni_bworker *w,
                         enum omni_wire_cmd cmd, uint64_t key, const void *hdr,
                         size_t hlen, zmq_msg_t *body);
void omni_workers_dead_op(void *arg, struct omni_bworker *w);

/* ---- listener.c: the Unix socket and its connections ---- */

/* A client connection (listener.c owns it, client.c reads and writes). */
struct omni_conn {
    struct omni_listener *l;
    struct omni_broker *b;
    struct bufferevent *bev;
    struct omni_rclient *rc; /* NULL once closing */
    struct omni_conn *prev, *next;
    uint64_t serial;
    pid_t pid;
    uid_t uid;
    gid_t gid;
    enum { OMNI_CONN_OPEN, OMNI_CONN_FLUSHING, OMNI_CONN_DEAD } state;
    bool throttled;       /* reading paused: too much output queued */
    unsigned logged_errs; /* protocol errors logged for this peer */
};

/* Create the socket's directory with mode 0750, or accept an existing
 * one that we own and that others cannot write. */
enum omni_err omni_listener_prepare_dir(const char *path,
                                        char err[OMNI_ERR_LEN]);
/* Bind and listen on path, removing a stale socket that nobody
 * listens on and refusing a live one.  *fd gets the socket. */
enum omni_err omni_listener_open(const char *path, int *fd,
                                 char err[OMNI_ERR_LEN]);
struct omni_listener *omni_listener_new(struct omni_broker *b, int fd,
                                        const char *path, size_t max_clients,
                                        size_t max_frame);
/* Stop accepting (drain); existing connections stay. */
void omni_listener_stop(struct omni_listener *l);
/* Close every connection after flushing what it has queued. */
void omni_listener_close_all(struct omni_listener *l);
/* Close everything now, remove the socket file, free l. */
void omni_listener_free(struct omni_listener *l);
size_t omni_listener_clients(const struct omni_listener *l);
uint64_t omni_listener_accepted(const struct omni_listener *l);
size_t omni_listener_max_frame(const struct omni_listener *l);
/* Connections accepted per peer uid, as "uid":n JSON members. */
void omni_listener_peers(const struct omni_listener *l, struct omni_buf *out);
/* End c: cancel its requests, then close once its output is flushed
 * (flush) or at once.  c is freed later, never inside this call. */
void omni_conn_close(struct omni_conn *c, bool flush);

/* ---- client.c: frames from a client, replies to it ---- */

/* Parse and handle every whole frame in c's input buffer. */
void omni_client_read(struct omni_conn *c);
/* Queue m for c (dropped if c is closing). */
void omni_client_send(struct omni_conn *c, const struct omni_msg *m);
/* Queue an error for request id. */
void omni_client_error(struct omni_conn *c, uint64_t id, enum omni_err code,
                       uint32_t retry_after_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));
/* Router op (arg: the broker). */
void omni_client_deliver_op(void *arg, void *conn, const struct omni_msg *m);

/* ---- supervisor.c: worker and HTTP front processes ---- */

struct omni_sup_cfg {
    const char *worker_dir;  /* where omni-<name> binaries are */
    const char *endpoint;    /* OMNI_ZMQ_ENDPOINT for workers */
    const char *socket;      /* OMNI_SOCKET, absolute */
    const char *config;      /* OMNI_CONFIG, or NULL */
    const char *http_listen; /* "" disables the HTTP front */
    int64_t restart_min_ms, restart_max_ms;
    char **worker_args; /* extra argv for workers (-o k=v), NULL end */
};

/* Start-up failures in a row before a kind is throttled. */
#define OMNI_SUP_THROTTLE_AFTER 3

/* Restart policy of one process slot, kept across its lives. */
struct omni_sup_policy {
    unsigned fails;  /* start-up failures in a row (the kind's) */
    int64_t backoff; /* next delay; 0 = restart_min */
};

/* A process died (started: it had sent READY or connected; lived: ms
 * since spawn).  Returns the delay before the restart and sets
 * *throttle when the kind must be throttled. */
int64_t omni_supervisor_delay(struct omni_sup_policy *p, bool started,
                              int64_t lived_ms, int64_t min_ms, int64_t max_ms,
                              bool *throttle);

struct omni_supervisor *omni_supervisor_new(struct omni_broker *b,
                                            const struct omni_sup_cfg *cfg);
/* Spawn the configured processes. */
void omni_supervisor_start(struct omni_supervisor *s);
/* pid sent READY (a worker) or connected (the HTTP front). */
void omni_supervisor_started(struct omni_supervisor *s, pid_t pid);
/* SIGKILL pid if it is one of our children; returns whether it was. */
bool omni_supervisor_kill(struct omni_supervisor *s, pid_t pid);
/* Stop restarting, SIGTERM every child, SIGKILL after 2 s; done(arg)
 * once none is left. */
void omni_supervisor_stop(struct omni_supervisor *s, void (*done)(void *),
                          void *arg);
void omni_supervisor_free(struct omni_supervisor *s);

/* ---- stats.c: the built-in "omni" service ---- */

/* Answer an "omni" request (ping, stats) on c. */
void omni_stats_request(struct omni_broker *b, struct omni_conn *c,
                        const struct omni_msg *m);
/* ping: OMNI_OK with the body in out, or OMNI_E_UNAVAILABLE with the
 * reason in out. */
enum omni_err omni_stats_ping(struct omni_broker *b, struct omni_buf *out);
/* stats: the JSON document, appended to out. */
void omni_stats_json(struct omni_broker *b, struct omni_buf *out);

#endif
