/*
 * router - services, bounded queues, dispatch, request table, deadlines.
 *
 * The routing core, free of sockets: events come in as calls (a client's
 * request or cancel, a worker's READY, reply or death, a clock tick) and
 * actions go out through struct omni_router_ops.  It owns every request
 * from its arrival to its one final or error: each ends in finish(),
 * which unlinks it from every index (broker key, client id, service
 * queue or worker, deadline heap) and frees it.  A request waits in its
 * service's FIFO queue until a ready worker has a free slot; the queue
 * is bounded, and a full one is answered OVERLOADED at once.
 */
#include "broker.h"

#include <inttypes.h>
#include <stdarg.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"

#define NOHEAP          SIZE_MAX
#define OVERLOAD_LOG_MS 10000

/* uint64 -> pointer, open addressing with linear probing. */
struct map {
    uint64_t *keys;
    void **vals;
    size_t cap, n; /* cap: 0 or a power of two */
};

struct omni_rreq {
    uint64_t key, id;
    struct omni_rclient *client;
    struct omni_service *svc;
    struct omni_bworker *worker;   /* set while dispatched */
    struct omni_rreq *prev, *next; /* in svc queue or worker list */
    size_t heap_i;
    int64_t arrived, deadline, timeout_ms;
    uint64_t seq;
    bool stream, idempotent, streamed, queued, has_body;
    zmq_msg_t body;
    struct omni_str op, auth, trace; /* in strs */
    char *strs;
};

struct omni_rclient {
    void *conn;
    struct map ids; /* client id -> request */
};

struct omni_router {
    struct omni_router_ops ops;
    void *arg;
    struct omni_service **svcs;
    size_t nsvcs;
    size_t queue_max;
    int64_t default_timeout;
    struct map keys; /* broker key -> request */
    struct omni_rreq **heap;
    size_t heap_n, heap_cap;
    uint64_t next_key;
    size_t total;
    bool draining;
    struct event *timer;
    int64_t armed_at;
};

/* ------------------------------------------------------------------ */
/* The map.                                                            */

static size_t slot(uint64_t k, size_t mask)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdULL;
    k ^= k >> 33;
    return (size_t)k & mask;
}

static void *map_get(const struct map *m, uint64_t k)
{
    if (!m->cap)
        return NULL;
    size_t mask = m->cap - 1;
    for (size_t i = slot(k, mask); m->vals[i]; i = (i + 1) & mask)
        if (m->keys[i] == k)
            return m->vals[i];
    return NULL;
}

static void map_put(struct map *m, uint64_t k, void *v);

static void map_grow(struct map *m)
{
    struct map old = *m;
    m->cap = old.cap ? old.cap * 2 : 8;
    m->n = 0;
    m->keys = omni_calloc(m->cap, sizeof *m->keys);
    m->vals = omni_calloc(m->cap, sizeof(void *));
    for (size_t i = 0; i < old.cap; i++)
        if (old.vals[i])
            map_put(m, old.keys[i], old.vals[i]);
    omni_free(old.keys);
    omni_free(old.vals);
}

/* k must not be present. */
static void map_put(struct map *m, uint64_t k, void *v)
{
    if ((m->n + 1) * 2 > m->cap)
        map_grow(m);
    size_t mask = m->cap - 1, i = slot(k, mask);
    while (m->vals[i])
        i = (i + 1) & mask;
    m->keys[i] = k;
    m->vals[i] = v;
    m->n++;
}

/* Delete with backward shift, so no tombstones pile up. */
static void map_del(struct map *m, uint64_t k)
{
    if (!m->cap)
        return;
    size_t mask = m->cap - 1, i = slot(k, mask);
    while (m->vals[i] && m->keys[i] != k)
        i = (i + 1) & mask;
    if (!m->vals[i])
        return;
    m->vals[i] = NULL;
    m->n--;
    for (size_t j = (i + 1) & mask; m->vals[j]; j = (j + 1) & mask) {
        size_t h = slot(m->keys[j], mask);
        /* The entry at j may fill the hole at i unless its home slot h
         * lies cyclically in (i, j]. */
        bool stays = i < j ? (h > i && h <= j) : (h > i || h <= j);
        if (stays)
            continue;
        m->keys[i] = m->keys[j];
        m->vals[i] = m->vals[j];
        m->vals[j] = NULL;
        i = j;
    }
}

static void map_release(struct map *m)
{
    omni_free(m->keys);
    omni_free(m->vals);
    memset(m, 0, sizeof *m);
}

/* The values of m, in a new array of m->n entries (caller frees). */
static void **map_values(const struct map *m)
{
    void **v = omni_malloc((m->n ? m->n : 1) * sizeof(void *));
    size_t n = 0;
    for (size_t i = 0; i < m->cap; i++)
        if (m->vals[i])
            v[n++] = m->vals[i];
    return v;
}

/* ------------------------------------------------------------------ */
/* The deadline heap (min-heap on deadline).                           */

static void heap_set(struct omni_router *r, size_t i, struct omni_rreq *q)
{
    r->heap[i] = q;
    q->heap_i = i;
}

static void heap_up(struct omni_router *r, size_t i)
{
    struct omni_rreq *q = r->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (r->heap[p]->deadline <= q->deadline)
            break;
        heap_set(r, i, r->heap[p]);
        i = p;
    }
    heap_set(r, i, q);
}

static void heap_down(struct omni_router *r, size_t i)
{
    struct omni_rreq *q = r->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= r->heap_n)
            break;
        if (c + 1 < r->heap_n &&
            r->heap[c + 1]->deadline < r->heap[c]->deadline)
            c++;
        if (q->deadline <= r->heap[c]->deadline)
            break;
        heap_set(r, i, r->heap[c]);
        i = c;
    }
    heap_set(r, i, q);
}

static void heap_push(struct omni_router *r, struct omni_rreq *q)
{
    if (r->heap_n == r->heap_cap) {
        r->heap_cap = r->heap_cap ? r->heap_cap * 2 : 64;
        r->heap =
            omni_realloc(r->heap, r->heap_cap * sizeof(struct omni_rreq *));
    }
    heap_set(r, r->heap_n++, q);
    heap_up(r, q->heap_i);
}

static void heap_del(struct omni_router *r, struct omni_rreq *q)
{
    size_t i = q->heap_i;
    if (i == NOHEAP)
        return;
    q->heap_i = NOHEAP;
    struct omni_rreq *last = r->heap[--r->heap_n];
    if (last == q)
        return;
    heap_set(r, i, last);
    heap_up(r, i);
    heap_down(r, last->heap_i);
}

/* ------------------------------------------------------------------ */
/* Small helpers.                                                      */

static int64_t now_ms(struct omni_router *r)
{
    return r->ops.now ? r->ops.now(r->arg) : omni_now_ms();
}

static void reply(struct omni_router *r, struct omni_rreq *q,
                  const struct omni_msg *m)
{
    r->ops.to_client(r->arg, q->client->conn, m);
}

/* Send an error for request id to a client. */
static void send_error(struct omni_router *r, struct omni_rclient *rc,
                       uint64_t id, enum omni_err code, uint32_t retry_after_ms,
                       const char *fmt, ...)
    __attribute__((format(printf, 6, 7)));

static void send_error(struct omni_router *r, struct omni_rclient *rc,
                       uint64_t id, enum omni_err code, uint32_t retry_after_ms,
                       const char *fmt, ...)
{
    struct omni_buf text = OMNI_BUF_INIT;
    char clean[OMNI_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(&text, fmt, ap);
    va_end(ap);
    omni_redact_str(text.data, clean, sizeof clean);
    omni_buf_release(&text);
    struct omni_msg m = {.type = OMNI_MSG_ERROR,
                         .id = id,
                         .code = code,
                         .retry_after_ms = retry_after_ms,
                         .message = omni_str_c(clean)};
    r->ops.to_client(r->arg, rc->conn, &m);
}

static void queue_unlink(struct omni_rreq *q)
{
    struct omni_service *s = q->svc;
    if (q->prev)
        q->prev->next = q->next;
    else
        s->qhead = q->next;
    if (q->next)
        q->next->prev = q->prev;
    else
        s->qtail = q->prev;
    q->prev = q->next = NULL;
    q->queued = false;
    s->queued--;
}

static void queue_push(struct omni_rreq *q, bool front)
{
    struct omni_service *s = q->svc;
    q->queued = true;
    s->queued++;
    if (front) {
        q->prev = NULL;
        q->next = s->qhead;
        if (s->qhead)
            s->qhead->prev = q;
        else
            s->qtail = q;
        s->qhead = q;
    } else {
        q->next = NULL;
        q->prev = s->qtail;
        if (s->qtail)
            s->qtail->next = q;
        else
            s->qhead = q;
        s->qtail = q;
    }
}

/* Take q off its worker (the slot becomes free). */
static void worker_unlink(struct omni_rreq *q)
{
    struct omni_bworker *w = q->worker;
    if (q->prev)
        q->prev->next = q->next;
    else
        w->reqs = q->next;
    if (q->next)
        q->next->prev = q->prev;
    q->prev = q->next = NULL;
    q->worker = NULL;
    w->in_flight--;
    q->svc->in_flight--;
}

static void release_body(struct omni_rreq *q)
{
    if (q->has_body)
        zmq_msg_close(&q->body);
    q->has_body = false;
}

/* The end of every request: unlink it from every index and free it. */
static void finish(struct omni_router *r, struct omni_rreq *q)
{
    map_del(&r->keys, q->key);
    map_del(&q->client->ids, q->id);
    heap_del(r, q);
    if (q->worker)
        worker_unlink(q);
    else if (q->queued)
        queue_unlink(q);
    release_body(q);
    omni_free(q->strs);
    omni_free(q);
    r->total--;
    if (r->draining && r->total == 0 && r->ops.drained)
        r->ops.drained(r->arg);
}

/* CANCEL q at its worker, if it has one. */
static void cancel_at_worker(struct omni_router *r, struct omni_rreq *q)
{
    if (q->worker)
        r->ops.to_worker(r->arg, q->worker, OMNI_W_CANCEL, q->key, NULL, 0,
                         NULL);
}

/* End q with an error to its client. */
static void fail(struct omni_router *r, struct omni_rreq *q, enum omni_err code,
                 const char *fmt, ...) __attribute__((format(printf, 4, 5)));

static void fail(struct omni_router *r, struct omni_rreq *q, enum omni_err code,
                 const char *fmt, ...)
{
    struct omni_buf text = OMNI_BUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    omni_buf_vaddf(&text, fmt, ap);
    va_end(ap);
    q->svc->errors++;
    send_error(r, q->client, q->id, code, 0, "%s", text.data);
    omni_buf_release(&text);
    finish(r, q);
}

/* Re-arm the deadline timer for the earliest deadline. */
static void rearm(struct omni_router *r)
{
    if (!r->timer)
        return;
    int64_t next = r->heap_n ? r->heap[0]->deadline : 0;
    if (next == r->armed_at && (next == 0 || evtimer_pending(r->timer, 0)))
        return;
    r->armed_at = next;
    if (!next) {
        evtimer_del(r->timer);
        return;
    }
    int64_t d = next - now_ms(r);
    if (d < 0)
        d = 0;
    struct timeval tv = {(time_t)(d / 1000), (suseconds_t)(d % 1000) * 1000};
    evtimer_add(r->timer, &tv);
}

/* ------------------------------------------------------------------ */
/* Dispatch.                                                           */

/* The ready worker of s with the fewest requests and a free slot; among
 * equals the least recently used (the list is kept in LRU order). */
static struct omni_bworker *pick(struct omni_service *s)
{
    struct omni_bworker *best = NULL;
    for (struct omni_bworker *w = s->whead; w; w = w->snext)
        if (w->in_flight < w->capacity &&
            (!best || w->in_flight < best->in_flight))
            best = w;
    return best;
}

static void svc_unlink(struct omni_bworker *w)
{
    struct omni_service *s = w->svc;
    if (w->sprev)
        w->sprev->snext = w->snext;
    else
        s->whead = w->snext;
    if (w->snext)
        w->snext->sprev = w->sprev;
    else
        s->wtail = w->sprev;
    w->sprev = w->snext = NULL;
}

static void svc_append(struct omni_bworker *w)
{
    struct omni_service *s = w->svc;
    w->snext = NULL;
    w->sprev = s->wtail;
    if (s->wtail)
        s->wtail->snext = w;
    else
        s->whead = w;
    s->wtail = w;
}

/* Send q to w.  Returns 0, or -1 if w cannot be reached (q untouched). */
static int dispatch(struct omni_router *r, struct omni_rreq *q,
                    struct omni_bworker *w)
{
    int64_t left = 0;
    if (q->deadline) {
        left = q->deadline - now_ms(r);
        if (left < 1)
            left = 1;
    }
    struct omni_msg h = {.type = OMNI_MSG_REQUEST,
                         .id = q->key,
                         .service = {q->svc->name, strlen(q->svc->name)},
                         .op = q->op,
                         .deadline_ms = (uint64_t)left,
                         .stream = q->stream,
                         .idempotent = q->idempotent,
                         .auth = q->auth,
                         .trace = q->trace};
    struct omni_buf hdr = OMNI_BUF_INIT;
    omni_msg_pack(&h, &hdr);
    /* An idempotent request keeps its body for a re-dispatch: send a
     * reference-counted copy.  Otherwise the body moves to ZeroMQ. */
    zmq_msg_t copy;
    zmq_msg_t *body = &q->body;
    if (q->idempotent) {
        zmq_msg_init(&copy);
        zmq_msg_copy(&copy, &q->body);
        body = &copy;
    }
    int rc = r->ops.to_worker(r->arg, w, OMNI_W_REQUEST, q->key, hdr.data,
                              hdr.len, body);
    omni_buf_release(&hdr);
    if (q->idempotent && rc != 0)
        zmq_msg_close(&copy);
    if (rc != 0)
        return -1;
    if (!q->idempotent)
        release_body(q);
    q->worker = w;
    q->prev = NULL;
    q->next = w->reqs;
    if (w->reqs)
        w->reqs->prev = q;
    w->reqs = q;
    w->in_flight++;
    q->svc->in_flight++;
    /* Least recently used last: equals are taken in turn. */
    svc_unlink(w);
    svc_append(w);
    return 0;
}

static void lose(struct omni_router *r, struct omni_bworker *w,
                 const char *why);

/* Hand queued requests of s to workers with free slots. */
static void pump(struct omni_router *r, struct omni_service *s)
{
    struct omni_bworker *w;
    while (s->qhead && (w = pick(s))) {
        struct omni_rreq *q = s->qhead;
        queue_unlink(q);
        if (dispatch(r, q, w) == 0)
            continue;
        queue_push(q, true);
        lose(r, w, "unreachable");
    }
}

/* Take w out of service and settle its requests (no pump). */
static void lose(struct omni_router *r, struct omni_bworker *w, const char *why)
{
    if (w->dead)
        return;
    struct omni_service *s = w->svc;
    w->dead = true;
    svc_unlink(w);
    s->ready--;
    s->capacity -= w->capacity;
    unsigned failed = 0, again = 0;
    struct omni_rreq *list = w->reqs;
    w->reqs = NULL;
    while (list) {
        struct omni_rreq *q = list;
        list = q->next;
        q->prev = q->next = NULL;
        q->worker = NULL;
        w->in_flight--;
        s->in_flight--;
        if (q->idempotent && !q->streamed && q->has_body) {
            queue_push(q, true);
            again++;
            continue;
        }
        failed++;
        s->worker_lost++;
        fail(r, q, OMNI_E_WORKER_LOST, "worker of '%s' (pid %d) lost: %s",
             s->name, (int)w->pid, why);
    }
    omni_log(failed || again ? OMNI_LOG_WARN : OMNI_LOG_INFO,
             "worker '%s' pid %d lost: %s; %u requests failed, %u "
             "re-dispatched",
             s->name, (int)w->pid, why, failed, again);
    r->ops.worker_dead(r->arg, w);
}

/* ------------------------------------------------------------------ */
/* Life cycle.                                                         */

struct omni_router *omni_router_new(const struct omni_router_cfg *cfg,
                                    const struct omni_router_ops *ops,
                                    void *arg)
{
    struct omni_router *r = omni_calloc(1, sizeof *r);
    r->ops = *ops;
    r->arg = arg;
    r->queue_max = cfg->queue_max;
    r->default_timeout = cfg->default_timeout_ms;
    r->next_key = 1;
    const char *p = cfg->services ? cfg->services : "";
    while (*p) {
        size_t n = strcspn(p, ",");
        const char *s = p, *e = p + n;
        while (s < e && (*s == ' ' || *s == '\t'))
            s++;
        while (e > s && (e[-1] == ' ' || e[-1] == '\t'))
            e--;
        if (e > s && e - s <= OMNI_MAX_SERVICE &&
            !omni_router_service(r, s, (size_t)(e - s))) {
            struct omni_service *svc = omni_calloc(1, sizeof *svc);
            svc->name = omni_strndup(s, (size_t)(e - s));
            r->svcs = omni_realloc(r->svcs, (r->nsvcs + 1) *
                                                sizeof(struct omni_service *));
            r->svcs[r->nsvcs++] = svc;
        }
        p += n;
        if (*p == ',')
            p++;
    }
    return r;
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct omni_router *r = arg;
    (void)fd;
    (void)what;
    r->armed_at = 0;
    omni_router_tick(r);
}

void omni_router_attach(struct omni_router *r, struct event_base *base)
{
    r->timer = evtimer_new(base, on_timer, r);
    rearm(r);
}

void omni_router_free(struct omni_router *r)
{
    if (!r)
        return;
    for (size_t i = 0; i < r->keys.cap; i++) {
        struct omni_rreq *q = r->keys.vals[i];
        if (!q)
            continue;
        release_body(q);
        omni_free(q->strs);
        omni_free(q);
    }
    map_release(&r->keys);
    for (size_t i = 0; i < r->nsvcs; i++) {
        omni_free(r->svcs[i]->name);
        omni_free(r->svcs[i]);
    }
    omni_free(r->svcs);
    omni_free(r->heap);
    if (r->timer)
        event_free(r->timer);
    omni_free(r);
}

struct omni_service *omni_router_service(struct omni_router *r, const char *s,
                                         size_t n)
{
    for (size_t i = 0; i < r->nsvcs; i++)
        if (strlen(r->svcs[i]->name) == n &&
            memcmp(r->svcs[i]->name, s, n) == 0)
            return r->svcs[i];
    return NULL;
}

size_t omni_router_nservices(const struct omni_router *r)
{
    return r->nsvcs;
}

struct omni_service *omni_router_service_at(struct omni_router *r, size_t i)
{
    return i < r->nsvcs ? r->svcs[i] : NULL;
}

size_t omni_router_in_flight(const struct omni_router *r)
{
    return r->total;
}

/* ------------------------------------------------------------------ */
/* Clients.                                                            */

struct omni_rclient *omni_router_client_new(struct omni_router *r, void *conn)
{
    (void)r;
    struct omni_rclient *rc = omni_calloc(1, sizeof *rc);
    rc->conn = conn;
    return rc;
}

void omni_router_client_gone(struct omni_router *r, struct omni_rclient *rc)
{
    if (!rc)
        return;
    size_t n = rc->ids.n;
    struct omni_rreq **qs = (struct omni_rreq **)map_values(&rc->ids);
    /* End all of them before pumping: a pump may lose a worker and
     * fail requests, which must not be ones still in qs. */
    for (size_t i = 0; i < n; i++) {
        cancel_at_worker(r, qs[i]);
        finish(r, qs[i]);
    }
    omni_free(qs);
    map_release(&rc->ids);
    omni_free(rc);
    if (n)
        for (size_t i = 0; i < r->nsvcs; i++)
            pump(r, r->svcs[i]);
    rearm(r);
}

/* Copy the strings a request keeps into one block. */
static void keep_strs(struct omni_rreq *q, const struct omni_msg *m)
{
    size_t n = m->op.n + m->auth.n + m->trace.n + 3;
    char *p = q->strs = omni_malloc(n);
    const struct omni_str *src[3] = {&m->op, &m->auth, &m->trace};
    struct omni_str *dst[3] = {&q->op, &q->auth, &q->trace};
    for (int i = 0; i < 3; i++) {
        if (src[i]->n)
            memcpy(p, src[i]->p, src[i]->n);
        p[src[i]->n] = '\0';
        dst[i]->p = p;
        dst[i]->n = src[i]->n;
        p += src[i]->n + 1;
    }
}

/* A hint for OVERLOADED: about how long until a slot is likely free. */
static uint32_t retry_hint(const struct omni_service *s)
{
    int64_t per = s->ewma_ms ? s->ewma_ms : 100;
    uint64_t cap = s->capacity ? s->capacity : 1;
    int64_t ms = per * (int64_t)(s->queued + 1) / (int64_t)cap;
    if (ms < 10)
        ms = 10;
    if (ms > 30000)
        ms = 30000;
    return (uint32_t)ms;
}

static void overloaded(struct omni_router *r, struct omni_rclient *rc,
                       struct omni_service *s, uint64_t id)
{
    s->overloaded++;
    s->errors++;
    int64_t now = now_ms(r);
    if (!s->overload_logged || now - s->overload_logged >= OVERLOAD_LOG_MS) {
        omni_warn("service '%s' queue full (%zu queued, %zu in flight), "
                  "rejecting requests (%" PRIu64 " more since last warning)",
                  s->name, s->queued, s->in_flight, s->overload_quiet);
        s->overload_logged = now;
        s->overload_quiet = 0;
    } else {
        s->overload_quiet++;
    }
    if (!s->ready)
        send_error(r, rc, id, OMNI_E_UNAVAILABLE, retry_hint(s),
                   "no worker of '%s' is ready and its queue is full "
                   "(%zu)",
                   s->name, s->queued);
    else
        send_error(r, rc, id, OMNI_E_OVERLOADED, retry_hint(s),
                   "service '%s' is overloaded: queue full (%zu)", s->name,
                   s->queued);
}

void omni_router_request(struct omni_router *r, struct omni_rclient *rc,
                         const struct omni_msg *m)
{
    if (map_get(&rc->ids, m->id)) {
        send_error(r, rc, m->id, OMNI_E_BAD_REQUEST, 0,
                   "field 'id': %" PRIu64 " is already in flight on "
                   "this connection",
                   m->id);
        return;
    }
    struct omni_service *s = omni_router_service(r, m->service.p, m->service.n);
    if (!s) {
        send_error(r, rc, m->id, OMNI_E_NO_SERVICE, 0, "no service '%.*s'",
                   (int)m->service.n, m->service.p);
        return;
    }
    s->requests++;
    if (r->draining) {
        s->errors++;
        send_error(r, rc, m->id, OMNI_E_UNAVAILABLE, 0, "broker is draining");
        return;
    }
    struct omni_bworker *w = pick(s);
    if (!w && s->queued >= r->queue_max) {
        overloaded(r, rc, s, m->id);
        return;
    }
    struct omni_rreq *q = omni_calloc(1, sizeof *q);
    q->key = r->next_key++;
    q->id = m->id;
    q->client = rc;
    q->svc = s;
    q->heap_i = NOHEAP;
    q->arrived = now_ms(r);
    q->timeout_ms =
        m->deadline_ms ? (int64_t)m->deadline_ms : r->default_timeout;
    if (q->timeout_ms < 0 || q->timeout_ms > INT64_MAX / 4)
        q->timeout_ms = INT64_MAX / 4;
    q->deadline = q->timeout_ms ? q->arrived + q->timeout_ms : 0;
    q->stream = m->stream;
    q->idempotent = m->idempotent;
    keep_strs(q, m);
    zmq_msg_init_size(&q->body, m->body.n);
    if (m->body.n)
        memcpy(zmq_msg_data(&q->body), m->body.p, m->body.n);
    q->has_body = true;
    map_put(&r->keys, q->key, q);
    map_put(&rc->ids, q->id, q);
    r->total++;
    if (q->deadline)
        heap_push(r, q);
    if (!w || dispatch(r, q, w) != 0) {
        queue_push(q, w != NULL);
        if (w)
            lose(r, w, "unreachable");
        pump(r, s);
    }
    rearm(r);
}

void omni_router_cancel(struct omni_router *r, struct omni_rclient *rc,
                        uint64_t id)
{
    struct omni_rreq *q = map_get(&rc->ids, id);
    if (!q)
        return; /* its reply already went out */
    struct omni_service *s = q->svc;
    cancel_at_worker(r, q);
    fail(r, q, OMNI_E_CANCELLED, "cancelled by the client");
    pump(r, s);
    rearm(r);
}

/* ------------------------------------------------------------------ */
/* Workers.                                                            */

void omni_router_worker_add(struct omni_router *r, struct omni_bworker *w)
{
    struct omni_service *s = w->svc;
    w->dead = false;
    svc_append(w);
    s->ready++;
    s->capacity += w->capacity;
    pump(r, s);
    rearm(r);
}

void omni_router_worker_lost(struct omni_router *r, struct omni_bworker *w,
                             const char *why)
{
    struct omni_service *s = w->svc;
    lose(r, w, why);
    pump(r, s);
    rearm(r);
}

/* The request key held by w, or NULL. */
static struct omni_rreq *held(struct omni_router *r, struct omni_bworker *w,
                              uint64_t key)
{
    struct omni_rreq *q = map_get(&r->keys, key);
    return q && q->worker == w ? q : NULL;
}

void omni_router_partial(struct omni_router *r, struct omni_bworker *w,
                         uint64_t key, const void *p, size_t n)
{
    struct omni_rreq *q = held(r, w, key);
    if (!q || !q->stream)
        return;
    /* Once a chunk is out, a re-dispatch would repeat it. */
    q->streamed = true;
    release_body(q);
    struct omni_msg m = {
        .type = OMNI_MSG_CHUNK, .id = q->id, .seq = q->seq++, .body = {p, n}};
    reply(r, q, &m);
}

void omni_router_final(struct omni_router *r, struct omni_bworker *w,
                       uint64_t key, const void *p, size_t n)
{
    struct omni_rreq *q = held(r, w, key);
    if (!q)
        return;
    struct omni_service *s = q->svc;
    int64_t took = now_ms(r) - q->arrived;
    s->ewma_ms = s->ewma_ms ? (s->ewma_ms * 7 + took) / 8 : took + 1;
    struct omni_msg m = {.type = OMNI_MSG_FINAL, .id = q->id, .body = {p, n}};
    reply(r, q, &m);
    finish(r, q);
    pump(r, s);
    rearm(r);
}

void omni_router_error(struct omni_router *r, struct omni_bworker *w,
                       uint64_t key, const struct omni_msg *e)
{
    struct omni_rreq *q = held(r, w, key);
    if (!q)
        return;
    struct omni_service *s = q->svc;
    s->errors++;
    struct omni_msg m = {.type = OMNI_MSG_ERROR,
                         .id = q->id,
                         .code = e->code,
                         .status = e->status,
                         .message = e->message,
                         .retry_after_ms = e->retry_after_ms};
    reply(r, q, &m);
    finish(r, q);
    pump(r, s);
    rearm(r);
}

/* ------------------------------------------------------------------ */
/* Time and shutdown.                                                  */

int64_t omni_router_tick(struct omni_router *r)
{
    int64_t now = now_ms(r);
    while (r->heap_n && r->heap[0]->deadline <= now) {
        struct omni_rreq *q = r->heap[0];
        struct omni_service *s = q->svc;
        s->timeouts++;
        cancel_at_worker(r, q);
        fail(r, q, OMNI_E_TIMEOUT, "deadline of %" PRId64 " ms passed",
             q->timeout_ms);
        pump(r, s);
    }
    rearm(r);
    return r->heap_n ? r->heap[0]->deadline : 0;
}

void omni_router_drain(struct omni_router *r)
{
    r->draining = true;
    if (r->total == 0 && r->ops.drained)
        r->ops.drained(r->arg);
}

void omni_router_abort(struct omni_router *r, const char *why)
{
    size_t n = r->keys.n;
    struct omni_rreq **qs = (struct omni_rreq **)map_values(&r->keys);
    bool draining = r->draining;
    r->draining = false;
    for (size_t i = 0; i < n; i++) {
        cancel_at_worker(r, qs[i]);
        fail(r, qs[i], OMNI_E_UNAVAILABLE, "%s", why);
    }
    r->draining = draining;
    omni_free(qs);
    rearm(r);
}
