/*
 * omni_evzmq - bridge ZeroMQ's edge-triggered ZMQ_FD to libevent.
 */
#include "omni_evzmq.h"

#include <zmq.h>

#include "omni_alloc.h"

#define BATCH 256

struct omni_evzmq {
    void *sock;
    struct event *fd_ev;
    struct event *kick_ev;
    omni_evzmq_cb cb;
    void *arg;
};

static int pending_input(void *sock)
{
    int ev = 0;
    size_t len = sizeof ev;
    if (zmq_getsockopt(sock, ZMQ_EVENTS, &ev, &len) < 0)
        return 0;
    return ev & ZMQ_POLLIN;
}

static void run(evutil_socket_t fd, short what, void *arg)
{
    struct omni_evzmq *z = arg;
    (void)fd;
    (void)what;
    int handled = 0;
    while (handled < BATCH && pending_input(z->sock)) {
        int n = z->cb(z->arg);
        if (n <= 0)
            break;
        handled += n;
    }
    /* Either more is waiting (come back after other events) or the
     * edge has been re-armed by reading ZMQ_EVENTS. */
    if (pending_input(z->sock))
        event_active(z->kick_ev, EV_READ, 0);
}

struct omni_evzmq *omni_evzmq_new(struct event_base *base, void *sock,
                                  omni_evzmq_cb on_input, void *arg)
{
    struct omni_evzmq *z = omni_calloc(1, sizeof *z);
    int fd;
    size_t len = sizeof fd;
    zmq_getsockopt(sock, ZMQ_FD, &fd, &len);
    z->sock = sock;
    z->cb = on_input;
    z->arg = arg;
    z->fd_ev = event_new(base, fd, EV_READ | EV_PERSIST, run, z);
    z->kick_ev = event_new(base, -1, 0, run, z);
    event_add(z->fd_ev, NULL);
    event_active(z->kick_ev, EV_READ, 0);
    return z;
}

void omni_evzmq_kick(struct omni_evzmq *z)
{
    if (!event_pending(z->kick_ev, EV_READ, NULL))
        event_active(z->kick_ev, EV_READ, 0);
}

void omni_evzmq_free(struct omni_evzmq *z)
{
    if (!z)
        return;
    event_free(z->fd_ev);
    event_free(z->kick_ev);
    omni_free(z);
}
