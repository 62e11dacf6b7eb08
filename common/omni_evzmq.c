/*
 * omni_evzmq - bridge ZeroMQ's edge-triggered ZMQ_FD to libevent.
 *
 * Every ZMQ_EVENTS read, and every receive that finds nothing, costs
 * libzmq a getpid() and a poll() on its mailbox.  So we never read
 * ZMQ_EVENTS: a pass calls the callback until it reports that a
 * receive found nothing, and that receive has processed the mailbox
 * and re-armed the edge just as a ZMQ_EVENTS read would.  A kick that
 * arrives while a pass runs is already covered by that pass's last
 * receive, so only kicks between passes schedule one.  A pass that hits
 * the batch limit resumes from a zero timer, that is in the next loop
 * iteration: an event_active would run it in the same one, and a burst
 * of thousands of messages would then keep timers (heartbeats) and
 * other fds waiting until all of it is handled.
 */
#include "omni_evzmq.h"

#include <stdbool.h>
#include <zmq.h>

#include "omni_alloc.h"

#define BATCH 256

struct omni_evzmq {
    void *sock;
    struct event *fd_ev;
    struct event *kick_ev;
    struct event *later_ev; /* the rest of a batch, next iteration */
    omni_evzmq_cb cb;
    void *arg;
    bool running; /* inside run(): a kick needs no new pass */
};

static void run(evutil_socket_t fd, short what, void *arg)
{
    struct omni_evzmq *z = arg;
    (void)fd;
    (void)what;
    int handled = 0;
    z->running = true;
    for (;;) {
        int n = z->cb(z->arg);
        if (n <= 0)
            break;
        handled += n;
        if (handled >= BATCH) {
            static const struct timeval now = {0, 0};
            evtimer_add(z->later_ev, &now);
            break;
        }
    }
    z->running = false;
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
    z->later_ev = evtimer_new(base, run, z);
    event_add(z->fd_ev, NULL);
    event_active(z->kick_ev, EV_READ, 0);
    return z;
}

void omni_evzmq_kick(struct omni_evzmq *z)
{
    if (!z->running && !event_pending(z->kick_ev, EV_READ, NULL))
        event_active(z->kick_ev, EV_READ, 0);
}

void omni_evzmq_free(struct omni_evzmq *z)
{
    if (!z)
        return;
    event_free(z->fd_ev);
    event_free(z->kick_ev);
    event_free(z->later_ev);
    omni_free(z);
}
