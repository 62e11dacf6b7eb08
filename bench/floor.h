/*
 * floor.h - the transport floors omni-floor measures.
 *
 * A floor is the cost of one bare hop with nothing of Omni in it: an
 * echo server process and a client process, a small message, either
 * one in flight (latency) or many (pipelined throughput).  Each mode
 * forks its server, runs, and fills a floor_result.
 */
#ifndef OMNI_FLOOR_H
#define OMNI_FLOOR_H

#include <stddef.h>

#include "bench_stats.h"

struct floor_opts {
    long n;          /* measured round trips (after the warm-up) */
    long inflight;   /* messages in flight: 1 = latency mode */
    long size;       /* message bytes */
    const char *dir; /* a private temporary directory for sockets */
};

struct floor_result {
    struct bench_lat lat; /* per message, send to reply, µs */
    double secs;          /* wall time of the measured part */
};

/* Bare Unix stream socket echo.  0, or -1 after a message on stderr. */
int floor_unix(const struct floor_opts *o, struct floor_result *r);
/* Bare ZeroMQ ipc DEALER -> ROUTER echo.  0, or -1 after a message. */
int floor_zmq(const struct floor_opts *o, struct floor_result *r);

#endif
