/*
 * metrics - the HTTP front's counters and their Prometheus text
 * exposition (format 0.0.4), with the broker's own counters added from
 * an `omni stats` reply.
 *
 * Owns: request counts by route and status, error counts by code word,
 * latency and time-to-first-chunk histograms per route, the in-flight
 * gauge.  Every numeric field of the stats JSON becomes a gauge
 * (omni_broker_<field>, omni_service_<field>{service}), so counters a
 * worker adds later appear without a change here.
 */
#ifndef OMNI_METRICS_H
#define OMNI_METRICS_H

#include <stdbool.h>
#include <stddef.h>

#include "omni_buf.h"
#include "routes.h"

#define OMNI_METRICS_BUCKETS 15

struct omni_metrics;

struct omni_metrics *omni_metrics_new(void);
void omni_metrics_free(struct omni_metrics *m);

/* A request started (in-flight gauge). */
void omni_metrics_begin(struct omni_metrics *m);
/* A request that began ended with status after seconds; code is the
 * error code word sent (any case), NULL or "" when none. */
void omni_metrics_end(struct omni_metrics *m, enum omni_route_name route,
                      int status, const char *code, double seconds);
/* An error inside a stream whose status was already sent. */
void omni_metrics_error(struct omni_metrics *m, const char *code);
/* The first chunk of a streamed reply arrived after seconds. */
void omni_metrics_first_chunk(struct omni_metrics *m,
                              enum omni_route_name route, double seconds);
/* Append the exposition to out.  stats is the broker's stats JSON
 * (n bytes), or NULL when the broker could not be asked. */
void omni_metrics_render(const struct omni_metrics *m, const char *stats,
                         size_t n, struct omni_buf *out);

#endif
