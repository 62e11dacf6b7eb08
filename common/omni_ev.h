/*
 * omni_ev - the event loop every Omni process runs.
 */
#ifndef OMNI_EV_H
#define OMNI_EV_H

#include <event2/event.h>

/* A libevent base with epoll's change list: the epoll_ctl calls of one
 * loop iteration are merged, so a del and an add of the same fd (evhttp
 * pausing a connection while we watch it for a disconnect, libcurl
 * switching a socket from writing to reading) cost one system call or
 * none instead of two.  NULL when libevent cannot make a base. */
struct event_base *omni_ev_base_new(void);

#endif
