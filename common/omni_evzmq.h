/*
 * omni_evzmq - a ZeroMQ socket on a libevent loop.
 *
 * ZeroMQ's ZMQ_FD is edge-triggered and is also consumed by sends: after
 * a zmq_send the fd may stay quiet although messages wait.  So we never
 * trust it alone: the callback runs when the fd fires, and again after
 * every kick (call omni_evzmq_kick after sending), and it keeps running
 * until a receive finds nothing, which re-arms the fd.  To stay fair to
 * other fds, one pass handles at most a batch and then re-arms itself.
 */
#ifndef OMNI_EVZMQ_H
#define OMNI_EVZMQ_H

#include <event2/event.h>

struct omni_evzmq;

/* on_input(arg) must read with ZMQ_DONTWAIT and return how many messages
 * it handled: 0 only when a receive found none (EAGAIN), never when it
 * merely chose to stop, or the edge is lost and the socket hangs. */
typedef int (*omni_evzmq_cb)(void *arg);

struct omni_evzmq *omni_evzmq_new(struct event_base *base, void *sock,
                                  omni_evzmq_cb on_input, void *arg);
/* Ask for a re-check of the socket in this loop iteration. */
void omni_evzmq_kick(struct omni_evzmq *z);
/* Stop watching; the socket itself is the caller's. */
void omni_evzmq_free(struct omni_evzmq *z);

#endif
