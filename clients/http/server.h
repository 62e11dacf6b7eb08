/*
 * server - omni-http's evhttp server: HTTP requests in, broker requests
 * out through the link, replies (JSON or SSE) back, on one libevent
 * loop.
 *
 * Owns the listening socket, one state per request in flight, the
 * /health ping cache and the metrics.  A client that disconnects has
 * its broker request cancelled.  Drain: stop accepting, answer what is
 * in flight, then leave the loop.
 */
#ifndef OMNI_HTTP_SERVER_H
#define OMNI_HTTP_SERVER_H

#include <event2/event.h>
#include <stddef.h>

#include "omni_err.h"

struct omni_http_server;

struct omni_http_opts {
    const char *listen;      /* host:port, [v6]:port */
    const char *client_keys; /* comma list, "" for none */
    size_t max_body;         /* bytes */
    const char *socket;      /* broker socket, NULL: the configured one */
    /* Called once a drain has nothing left in flight; NULL: leave the
     * loop (event_base_loopexit). */
    void (*drained)(void *arg);
    void *drained_arg;
};

/* Bind and start serving on base.  NULL with err set when the address
 * is malformed or cannot be bound. */
struct omni_http_server *omni_http_server_new(struct event_base *base,
                                              const struct omni_http_opts *o,
                                              char err[OMNI_ERR_LEN]);
/* Stop accepting; once nothing is in flight and every reply is written
 * (or a second after the last request ended), call o->drained or leave
 * the loop. */
void omni_http_server_drain(struct omni_http_server *s);
void omni_http_server_free(struct omni_http_server *s);

#endif
