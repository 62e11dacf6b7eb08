/*
 * omni_worker - the runtime every worker process shares.
 *
 * A worker is one process, one libevent loop.  The runtime owns the
 * DEALER link to the broker (READY with service and capacity,
 * heartbeats both ways, reconnect with backoff 1 s -> 32 s plus jitter,
 * reset on any broker message), the table of requests in flight, and
 * their cancellation.  A worker kind supplies a struct omni_worker_def
 * and calls omni_worker_main() from main().  Everything else it needs
 * (curl multi sockets, hiredis async, child pipes, timers) goes on the
 * same loop: omni_worker_base().
 *
 * Request life: the runtime calls def->request(r) once per REQUEST.  The
 * worker answers later, from any callback, with any number of
 * omni_wreq_partial() (only if omni_wreq_stream(r)) then exactly one
 * omni_wreq_final() or omni_wreq_error(), which frees r.  If the broker
 * cancels the request, or the deadline passes first, the runtime calls
 * def->cancel(r): the worker must stop its work and release what it
 * attached with omni_wreq_set_data(); r is freed when cancel returns,
 * and the worker must not answer it.
 *
 * Sub-requests: omni_worker_subcall() sends a request to another service
 * through a libomni connection to the broker's socket, opened lazily on
 * this loop (and again after it drops), and calls back with each event.
 *
 * Embedding: omni_worker_main() is omni_worker_new() + omni_worker_start()
 * + omni_worker_run() + omni_worker_free() around option parsing, config
 * and signals; tests drive the same pieces on their own loop.
 */
#ifndef OMNI_WORKER_H
#define OMNI_WORKER_H

#include <event2/event.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "omni.h"
#include "omni_err.h"
#include "omni_proto.h"

struct omni_worker;
struct omni_wreq;

struct omni_worker_def {
    const char *service; /* name announced in READY */
    uint32_t capacity;   /* requests in flight; 0: capacity.<svc> */
    /* After the config is loaded and the loop exists, before READY.
     * Return 0, or -1 to exit with status 1 (a start-up failure the
     * supervisor will throttle). */
    int (*init)(struct omni_worker *w);
    void (*request)(struct omni_wreq *r);
    void (*cancel)(struct omni_wreq *r);
    /* On drain (SIGTERM or broker DISCONNECT at shutdown): stop taking
     * work; the loop ends once in-flight requests finish. */
    void (*shutdown)(struct omni_worker *w);
    /* Extra fields for the "omni stats" reply: append ,"key":value
     * JSON members to out (optional). */
    void (*stats)(struct omni_worker *w, struct omni_buf *out);
    /* From omni_worker_free, after the requests are abandoned and while
     * the loop still exists: free what init made, events included
     * (optional; also called when init failed or never ran). */
    void (*fini)(struct omni_worker *w);
};

/* Parse standard options (-c FILE, -o key=value, -e ENDPOINT), load the
 * config, set up logging, connect, and run the loop until drained.
 * Returns the process exit status. */
int omni_worker_main(int argc, char **argv, const struct omni_worker_def *def);

struct event_base *omni_worker_base(struct omni_worker *w);
void omni_worker_set_data(struct omni_worker *w, void *data);
void *omni_worker_data(struct omni_worker *w);
/* Requests in flight. */
size_t omni_worker_in_flight(struct omni_worker *w);
/* Stop the loop after in-flight work ends (as on SIGTERM). */
void omni_worker_stop(struct omni_worker *w);

/* Make a worker for def on base (NULL: a new base the worker owns),
 * reading the loaded configuration (omni_cfg_load first): capacity,
 * broker.heartbeat_ms, broker.liveness, broker.drain_ms.  endpoint NULL:
 * broker.zmq_endpoint, else ipc:// beside the broker socket.  def is
 * borrowed and must outlive the worker.  Returns NULL with err set if
 * the ZeroMQ context cannot be made. */
struct omni_worker *omni_worker_new(const struct omni_worker_def *def,
                                    struct event_base *base,
                                    const char *endpoint,
                                    char err[OMNI_ERR_LEN]);
/* Call def->init, watch $OMNI_PARENT_FD (EOF or HUP: the broker is gone,
 * drain), connect and send READY.  Returns 0, or -1 with err set (init
 * failed or the endpoint is invalid). */
int omni_worker_start(struct omni_worker *w, char err[OMNI_ERR_LEN]);
/* Run the loop until drained (omni_worker_stop, SIGTERM, parent gone);
 * returns the exit status (0). */
int omni_worker_run(struct omni_worker *w);
/* True once draining has finished: no work left, the loop may end. */
bool omni_worker_done(const struct omni_worker *w);
/* Abandon requests still in flight (def->cancel for each), close the
 * link and the sub-request connection, call def->fini, free w (NULL is
 * fine).  The base is freed only if the worker made it. */
void omni_worker_free(struct omni_worker *w);

/* ---- requests ---- */
struct omni_str omni_wreq_op(const struct omni_wreq *r);
struct omni_str omni_wreq_body(const struct omni_wreq *r);
struct omni_str omni_wreq_auth(const struct omni_wreq *r);
struct omni_str omni_wreq_trace(const struct omni_wreq *r);
bool omni_wreq_stream(const struct omni_wreq *r);
/* The broker's request key, for logs (unique for the broker's life). */
uint64_t omni_wreq_key(const struct omni_wreq *r);
/* Absolute deadline on omni_now_ms()'s clock, 0 if none. */
int64_t omni_wreq_deadline(const struct omni_wreq *r);
/* True once a PARTIAL has been sent. */
bool omni_wreq_streamed(const struct omni_wreq *r);
struct omni_worker *omni_wreq_worker(const struct omni_wreq *r);
void omni_wreq_set_data(struct omni_wreq *r, void *data);
void *omni_wreq_data(const struct omni_wreq *r);

/* Send a PARTIAL (copied).  Ignored for a request that did not ask to
 * stream (the worker should then answer with one final body).
 * Answers (partial, final, error) to a request being cancelled, i.e.
 * from inside def->cancel, are ignored. */
void omni_wreq_partial(struct omni_wreq *r, const void *p, size_t n);
/* Send the FINAL (copied) and free r. */
void omni_wreq_final(struct omni_wreq *r, const void *p, size_t n);
/* Send an ERROR and free r.  status 0: the code's own status.  The
 * message is redacted before it leaves the process. */
void omni_wreq_error(struct omni_wreq *r, enum omni_err code, int status,
                     uint32_t retry_after_ms, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

/* ---- sub-requests through the broker ---- */

/* Called for each event of a sub-request; the last call has
 * ev->type FINAL or ERROR.  ev is borrowed for the call. */
typedef void (*omni_subcall_cb)(const struct omni_event *ev, void *arg);

/* Send req to another service through the broker, on this loop.
 * Returns 0 and sets *id (for omni_worker_subcancel), or -1 if the
 * broker cannot be reached (cb is then never called).  If the
 * connection drops, every sub-request in flight on it ends with an ERROR
 * event of code "UNAVAILABLE", delivered from the loop (never from
 * inside omni_worker_subcall); the next call reconnects.  Sub-requests
 * still in flight when the worker is freed get no callback. */
int omni_worker_subcall(struct omni_worker *w, const struct omni_request *req,
                        omni_subcall_cb cb, void *arg, uint64_t *id);
/* Cancel a sub-request; its callback is not called again. */
void omni_worker_subcancel(struct omni_worker *w, uint64_t id);

#endif
