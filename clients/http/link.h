/*
 * link - one libomni connection to the broker, driven by a libevent
 * loop, with per-request callbacks and reconnection.
 *
 * Each request sent through the link has a callback that gets every
 * event of that request, ending with exactly one FINAL or ERROR.  When
 * the connection drops, every request in flight gets an ERROR
 * (UNAVAILABLE, status 502) and the link reconnects with backoff; while
 * it is down omni_link_send() fails at once.
 */
#ifndef OMNI_LINK_H
#define OMNI_LINK_H

#include <event2/event.h>
#include <stdbool.h>
#include <stdint.h>

#include "omni.h"

struct omni_link;

/* ev and what it points to are borrowed for the call only.  The
 * callback must not free the link. */
typedef void (*omni_link_cb)(const struct omni_event *ev, void *arg);

/* Connect to the broker socket at path (NULL: the configured one) on
 * base; a failed first connect is retried like a dropped one. */
struct omni_link *omni_link_new(struct event_base *base, const char *path);
/* Close the connection; pending callbacks are not called. */
void omni_link_free(struct omni_link *l);

/* Send req; cb(arg) gets its events.  Returns 0 with *id set, or -1
 * when the broker is not connected or the send failed. */
int omni_link_send(struct omni_link *l, const struct omni_request *req,
                   omni_link_cb cb, void *arg, uint64_t *id);
/* Ask the broker to cancel request id; its callback still gets the
 * final event. */
void omni_link_cancel(struct omni_link *l, uint64_t id);

#endif
