/*
 * stats - the built-in service "omni", answered by the broker itself.
 *
 * ping: ready once every configured service has a ready worker, else
 * UNAVAILABLE naming the services that are not (and why, when the
 * supervisor knows: a missing binary, a throttled kind).  stats: the
 * counters of PROTOCOL.md section 5, plus connection counts by peer uid
 * (from SO_PEERCRED).  Neither keeps state of its own.
 */
#include "broker.h"

#include <inttypes.h>
#include <string.h>

#include "omni_log.h"
#include "omni_time.h"

static void add_name(struct omni_buf *out, const char *s)
{
    omni_buf_add_json_str(out, s, strlen(s));
}

enum omni_err omni_stats_ping(struct omni_broker *b, struct omni_buf *out)
{
    struct omni_router *r = b->router;
    size_t n = omni_router_nservices(r), missing = 0;
    if (b->draining) {
        omni_buf_adds(out, "broker is draining");
        return OMNI_E_UNAVAILABLE;
    }
    for (size_t i = 0; i < n; i++) {
        struct omni_service *s = omni_router_service_at(r, i);
        if (s->ready)
            continue;
        omni_buf_adds(out, missing++ ? ", " : "services not ready: ");
        omni_buf_addf(out, "'%s'", s->name);
        if (s->why[0])
            omni_buf_addf(out, " (%s)", s->why);
    }
    if (missing)
        return OMNI_E_UNAVAILABLE;
    omni_buf_adds(out, "{\"ready\":true,\"services\":{");
    for (size_t i = 0; i < n; i++) {
        struct omni_service *s = omni_router_service_at(r, i);
        unsigned workers =
            s->children > s->ready ? s->children : (unsigned)s->ready;
        if (i)
            omni_buf_addch(out, ',');
        add_name(out, s->name);
        omni_buf_addf(out, ":{\"ready\":%zu,\"workers\":%u}", s->ready,
                      workers);
    }
    omni_buf_adds(out, "}}");
    return OMNI_OK;
}

void omni_stats_json(struct omni_broker *b, struct omni_buf *out)
{
    struct omni_router *r = b->router;
    omni_buf_addf(out,
                  "{\"uptime_ms\":%" PRId64 ",\"clients\":%zu,"
                  "\"connections\":%" PRIu64 ",\"in_flight\":%zu,"
                  "\"draining\":%s,\"peers\":{",
                  omni_now_ms() - b->started_ms,
                  b->listener ? omni_listener_clients(b->listener) : 0,
                  b->listener ? omni_listener_accepted(b->listener) : 0,
                  omni_router_in_flight(r), b->draining ? "true" : "false");
    if (b->listener)
        omni_listener_peers(b->listener, out);
    omni_buf_adds(out, "},\"services\":{");
    for (size_t i = 0; i < omni_router_nservices(r); i++) {
        struct omni_service *s = omni_router_service_at(r, i);
        unsigned workers =
            s->children > s->ready ? s->children : (unsigned)s->ready;
        if (i)
            omni_buf_addch(out, ',');
        add_name(out, s->name);
        omni_buf_addf(out,
                      ":{\"workers\":%u,\"ready\":%zu,\"capacity\":%" PRIu64
                      ",\"in_flight\":%zu,\"queued\":%zu,\"requests\":%" PRIu64
                      ",\"errors\":%" PRIu64 ",\"worker_lost\":%" PRIu64
                      ",\"overloaded\":%" PRIu64 ",\"timeouts\":%" PRIu64
                      ",\"restarts\":%" PRIu64,
                      workers, s->ready, s->capacity, s->in_flight, s->queued,
                      s->requests, s->errors, s->worker_lost, s->overloaded,
                      s->timeouts, s->restarts);
        if (b->workers)
            omni_workers_stats(b->workers, s, out);
        omni_buf_addch(out, '}');
    }
    omni_buf_adds(out, "}}");
}

void omni_stats_request(struct omni_broker *b, struct omni_conn *c,
                        const struct omni_msg *m)
{
    struct omni_buf out = OMNI_BUF_INIT;
    if (omni_str_eq(m->op, "ping")) {
        enum omni_err rc = omni_stats_ping(b, &out);
        if (rc != OMNI_OK) {
            omni_client_error(c, m->id, rc, rc == OMNI_E_UNAVAILABLE ? 500 : 0,
                              "%s", out.data);
            omni_buf_release(&out);
            return;
        }
    } else if (omni_str_eq(m->op, "stats")) {
        omni_stats_json(b, &out);
    } else {
        omni_client_error(c, m->id, OMNI_E_UNSUPPORTED, 0,
                          "service 'omni' has no operation '%.*s'",
                          (int)m->op.n, m->op.p);
        return;
    }
    struct omni_msg f = {
        .type = OMNI_MSG_FINAL, .id = m->id, .body = {out.data, out.len}};
    omni_client_send(c, &f);
    omni_buf_release(&out);
}
