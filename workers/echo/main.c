/*
 * omni-echo - the "echo" service: tests and benchmarks of the broker.
 *
 * Operations (protocol/PROTOCOL.md section 5): echo, stream, sleep,
 * fail, crash, and sub (a sub-request through the broker, answered with
 * its final body or error).  Bodies are JSON (jansson); a body that is
 * not valid JSON, or a field of the wrong type or range, is BAD_REQUEST
 * naming it.  Each request's timers and sub-request live in a struct
 * job attached to it, freed when the request ends or is cancelled; a
 * cancelled request logs "echo: request KEY cancelled" at info level.
 */
#include <inttypes.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"
#include "omni_worker.h"

#define MAX_CHUNKS     1000000
#define MAX_CHUNK_SIZE (1024 * 1024)
#define MAX_MS         86400000
#define BURST          64 /* chunks sent per loop pass when interval_ms is 0 */

struct job {
    struct omni_wreq *r;
    struct event *timer;
    long chunks, size, interval_ms, sent, ms;
    bool has_sub;
    uint64_t sub_id;
};

static struct job *job_new(struct omni_wreq *r)
{
    struct job *j = omni_calloc(1, sizeof *j);
    j->r = r;
    omni_wreq_set_data(r, j);
    return j;
}

static void job_free(struct job *j)
{
    if (j->timer)
        event_free(j->timer);
    omni_free(j);
}

static void arm(struct job *j, long ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(j->timer, &tv);
}

/* Parse the body as a JSON object; on failure answer BAD_REQUEST. */
static json_t *parse(struct omni_wreq *r)
{
    struct omni_str b = omni_wreq_body(r);
    json_error_t e;
    json_t *v = json_loadb(b.p, b.n, 0, &e);
    if (!v) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "body is not valid JSON: %s (line %d, column %d)",
                        e.text, e.line, e.column);
        return NULL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "body: want a JSON object");
        return NULL;
    }
    return v;
}

/* Read integer field name into *out (def if absent).  Returns false
 * after answering BAD_REQUEST if it is mistyped or out of [0, max]. */
static bool int_field(struct omni_wreq *r, json_t *o, const char *name,
                      long def, long max, long *out)
{
    json_t *v = json_object_get(o, name);
    if (!v) {
        if (def >= 0) {
            *out = def;
            return true;
        }
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0, "field '%s': missing",
                        name);
        return false;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 0 ||
        json_integer_value(v) > max) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "field '%s': want an integer in [0, %ld]", name, max);
        return false;
    }
    *out = (long)json_integer_value(v);
    return true;
}

/* ---- stream ---- */

/* One chunk: its index in decimal, a newline, then '.' up to size. */
static void send_chunk(struct job *j, char *buf)
{
    int n = snprintf(buf, (size_t)j->size + 1, "%ld\n", j->sent);
    if (n > j->size)
        n = (int)j->size;
    memset(buf + n, '.', (size_t)(j->size - n));
    omni_wreq_partial(j->r, buf, (size_t)j->size);
    j->sent++;
}

static void on_stream_timer(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    (void)fd;
    (void)what;
    char *buf = omni_malloc((size_t)j->size + 32);
    long burst = j->interval_ms ? 1 : BURST;
    for (long i = 0; i < burst && j->sent < j->chunks; i++)
        send_chunk(j, buf);
    omni_free(buf);
    if (j->sent < j->chunks) {
        arm(j, j->interval_ms);
        return;
    }
    char out[64];
    int n = snprintf(out, sizeof out, "{\"chunks\":%ld}", j->chunks);
    struct omni_wreq *r = j->r;
    job_free(j);
    omni_wreq_final(r, out, (size_t)n);
}

static void op_stream(struct omni_wreq *r)
{
    if (!omni_wreq_stream(r)) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "op 'stream' needs a request sent with stream");
        return;
    }
    json_t *o = parse(r);
    if (!o)
        return;
    long chunks, size, interval;
    bool ok = int_field(r, o, "chunks", -1, MAX_CHUNKS, &chunks) &&
              int_field(r, o, "size", 16, MAX_CHUNK_SIZE, &size) &&
              int_field(r, o, "interval_ms", 0, MAX_MS, &interval);
    json_decref(o);
    if (!ok)
        return;
    struct job *j = job_new(r);
    j->chunks = chunks;
    j->size = size;
    j->interval_ms = interval;
    j->timer =
        evtimer_new(omni_worker_base(omni_wreq_worker(r)), on_stream_timer, j);
    arm(j, interval);
}

/* ---- sleep ---- */

static void on_sleep_timer(evutil_socket_t fd, short what, void *arg)
{
    struct job *j = arg;
    (void)fd;
    (void)what;
    char out[64];
    int n = snprintf(out, sizeof out, "{\"slept_ms\":%ld}", j->ms);
    struct omni_wreq *r = j->r;
    job_free(j);
    omni_wreq_final(r, out, (size_t)n);
}

static void op_sleep(struct omni_wreq *r)
{
    json_t *o = parse(r);
    if (!o)
        return;
    long ms;
    bool ok = int_field(r, o, "ms", -1, MAX_MS, &ms);
    json_decref(o);
    if (!ok)
        return;
    struct job *j = job_new(r);
    j->ms = ms;
    j->timer =
        evtimer_new(omni_worker_base(omni_wreq_worker(r)), on_sleep_timer, j);
    arm(j, ms);
}

/* ---- fail ---- */

static void op_fail(struct omni_wreq *r)
{
    json_t *o = parse(r);
    if (!o)
        return;
    const char *code = json_string_value(json_object_get(o, "code"));
    const char *msg = json_string_value(json_object_get(o, "message"));
    long status, retry;
    if (!code) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "field 'code': want a string");
    } else if (int_field(r, o, "status", 0, 999, &status) &&
               int_field(r, o, "retry_after_ms", 0, MAX_MS, &retry)) {
        omni_wreq_error(r, omni_err_parse(code, strlen(code)), (int)status,
                        (uint32_t)retry, "%s", msg ? msg : "");
    }
    json_decref(o);
}

/* ---- sub ---- */

static void on_sub_event(const struct omni_event *ev, void *arg)
{
    struct job *j = arg;
    struct omni_wreq *r = j->r;
    if (ev->type == OMNI_EVENT_CHUNK) {
        omni_wreq_partial(r, ev->body, ev->body_len);
        return;
    }
    job_free(j);
    if (ev->type == OMNI_EVENT_FINAL) {
        omni_wreq_final(r, ev->body, ev->body_len);
        return;
    }
    const char *code = ev->code ? ev->code : "INTERNAL";
    omni_wreq_error(r, omni_err_parse(code, strlen(code)), ev->status,
                    ev->retry_after_ms, "%s", ev->message ? ev->message : "");
}

/* A NUL-terminated copy of a borrowed string (absent: ""). */
static char *dup_str(struct omni_str s)
{
    return omni_strndup(s.n ? s.p : "", s.n);
}

static void op_sub(struct omni_wreq *r)
{
    json_t *o = parse(r);
    if (!o)
        return;
    const char *svc = json_string_value(json_object_get(o, "svc"));
    const char *op = json_string_value(json_object_get(o, "op"));
    if (!svc || !op) {
        omni_wreq_error(r, OMNI_E_BAD_REQUEST, 0, 0,
                        "field '%s': want a string", svc ? "op" : "svc");
        json_decref(o);
        return;
    }
    json_t *inner = json_object_get(o, "body");
    char *body =
        inner ? json_dumps(inner, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    /* The sub-request carries our caller's credential and trace, and
     * must end before our own deadline. */
    char *auth = dup_str(omni_wreq_auth(r));
    char *trace = dup_str(omni_wreq_trace(r));
    int64_t deadline = omni_wreq_deadline(r), left = 0;
    if (deadline) {
        left = deadline - omni_now_ms();
        if (left < 1)
            left = 1;
    }
    struct omni_request req = {.service = svc,
                               .op = op,
                               .body = body ? body : "",
                               .body_len = body ? strlen(body) : 0,
                               .stream = omni_wreq_stream(r),
                               .timeout_ms = (uint32_t)left,
                               .auth = *auth ? auth : NULL,
                               .trace = *trace ? trace : NULL};
    struct job *j = job_new(r);
    if (omni_worker_subcall(omni_wreq_worker(r), &req, on_sub_event, j,
                            &j->sub_id) == 0) {
        j->has_sub = true;
    } else {
        job_free(j);
        omni_wreq_error(r, OMNI_E_UNAVAILABLE, 0, 0,
                        "cannot reach the broker for a sub-request to '%s'",
                        svc);
    }
    free(body);
    omni_free(auth);
    omni_free(trace);
    json_decref(o);
}

/* ---- dispatch ---- */

static void on_request(struct omni_wreq *r)
{
    struct omni_str op = omni_wreq_op(r);
    if (omni_str_eq(op, "echo")) {
        struct omni_str b = omni_wreq_body(r);
        omni_wreq_final(r, b.p, b.n);
    } else if (omni_str_eq(op, "stream")) {
        op_stream(r);
    } else if (omni_str_eq(op, "sleep")) {
        op_sleep(r);
    } else if (omni_str_eq(op, "fail")) {
        op_fail(r);
    } else if (omni_str_eq(op, "crash")) {
        omni_warn("echo: crash requested by request %" PRIu64,
                  omni_wreq_key(r));
        _exit(3);
    } else if (omni_str_eq(op, "sub")) {
        op_sub(r);
    } else {
        omni_wreq_error(r, OMNI_E_UNSUPPORTED, 0, 0,
                        "service 'echo' has no op '%.*s'", (int)op.n, op.p);
    }
}

static void on_cancel(struct omni_wreq *r)
{
    struct job *j = omni_wreq_data(r);
    omni_info("echo: request %" PRIu64 " cancelled", omni_wreq_key(r));
    if (!j)
        return;
    if (j->has_sub)
        omni_worker_subcancel(omni_wreq_worker(r), j->sub_id);
    job_free(j);
}

int main(int argc, char **argv)
{
    static const struct omni_worker_def def = {
        .service = "echo",
        .request = on_request,
        .cancel = on_cancel,
    };
    return omni_worker_main(argc, argv, &def);
}
