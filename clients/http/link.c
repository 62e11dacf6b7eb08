/*
 * link - the HTTP front's broker connection on the libevent loop.
 *
 * Owns the libomni client, its read and write events, and a hash table
 * from request id to callback.  Readable: flush, then take every event
 * libomni has and hand it to its request's callback (the entry goes
 * before the callback of a FINAL or ERROR runs, so the callback may free
 * what arg points to).  Lost connection: every pending callback gets a
 * made-up UNAVAILABLE error, the client is closed, and a timer
 * reconnects with backoff from 50 ms to 5 s.
 */
#include "link.h"

#include <stdio.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_err.h"
#include "omni_log.h"

#define BACKOFF_MIN_MS 50
#define BACKOFF_MAX_MS 5000

struct pending {
    struct pending *next;
    uint64_t id;
    omni_link_cb cb;
    void *arg;
};

struct omni_link {
    struct event_base *base;
    char *path;
    omni_client *c;
    struct event *rd, *wr, *retry;
    struct pending **tab; /* power-of-two buckets */
    size_t nbuckets, n;
    int backoff_ms;
    bool warned; /* the current outage was logged */
};

static struct pending **bucket(struct omni_link *l, uint64_t id)
{
    uint64_t h = id * 0x9e3779b97f4a7c15ULL;
    return &l->tab[(h >> 32) & (l->nbuckets - 1)];
}

static void grow(struct omni_link *l)
{
    struct pending **old = l->tab;
    size_t oldn = l->nbuckets;
    l->nbuckets = oldn ? oldn * 2 : 64;
    l->tab = omni_calloc(l->nbuckets, sizeof(struct pending *));
    for (size_t i = 0; i < oldn; i++) {
        for (struct pending *p = old[i], *next; p; p = next) {
            next = p->next;
            struct pending **b = bucket(l, p->id);
            p->next = *b;
            *b = p;
        }
    }
    omni_free(old);
}

/* Unlink and return the entry of id, or NULL. */
static struct pending *take(struct omni_link *l, uint64_t id)
{
    if (!l->nbuckets)
        return NULL;
    for (struct pending **pp = bucket(l, id); *pp; pp = &(*pp)->next) {
        if ((*pp)->id == id) {
            struct pending *p = *pp;
            *pp = p->next;
            l->n--;
            return p;
        }
    }
    return NULL;
}

static struct pending *find(struct omni_link *l, uint64_t id)
{
    if (!l->nbuckets)
        return NULL;
    for (struct pending *p = *bucket(l, id); p; p = p->next)
        if (p->id == id)
            return p;
    return NULL;
}

static void want_write(struct omni_link *l)
{
    if (l->c && omni_want_write(l->c))
        event_add(l->wr, NULL);
}

static void schedule_retry(struct omni_link *l)
{
    struct timeval tv = {l->backoff_ms / 1000, (l->backoff_ms % 1000) * 1000};
    evtimer_add(l->retry, &tv);
    l->backoff_ms =
        l->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : l->backoff_ms * 2;
}

/* The connection is gone: close it, fail every request, retry later. */
static void drop(struct omni_link *l)
{
    if (!l->c)
        return;
    omni_warn("broker connection lost: %s; reconnecting",
              omni_last_error(l->c));
    l->warned = true;
    event_del(l->rd);
    event_del(l->wr);
    omni_close(l->c);
    l->c = NULL;
    struct omni_event ev = {.type = OMNI_EVENT_ERROR,
                            .code = "UNAVAILABLE",
                            .status = 502,
                            .message = "broker connection lost",
                            .body = "",
                            .body_len = 0};
    /* Callbacks may send (and fail) or cancel; take entries one by one
     * so the table is consistent whenever a callback runs. */
    for (size_t i = 0; i < l->nbuckets; i++) {
        struct pending *p;
        while ((p = l->tab[i])) {
            l->tab[i] = p->next;
            l->n--;
            ev.id = p->id;
            p->cb(&ev, p->arg);
            omni_free(p);
        }
    }
    l->backoff_ms = BACKOFF_MIN_MS;
    schedule_retry(l);
}

static void on_ready(evutil_socket_t fd, short what, void *arg);

static void try_connect(evutil_socket_t fd, short what, void *arg)
{
    struct omni_link *l = arg;
    (void)fd;
    (void)what;
    char err[OMNI_ERR_LEN];
    l->c = omni_connect(l->path, err, sizeof err);
    if (!l->c) {
        if (!l->warned)
            omni_warn("%s; retrying", err);
        l->warned = true;
        schedule_retry(l);
        return;
    }
    omni_info("connected to the broker");
    l->warned = false;
    l->backoff_ms = BACKOFF_MIN_MS;
    event_assign(l->rd, l->base, omni_fd(l->c), EV_READ | EV_PERSIST, on_ready,
                 l);
    event_assign(l->wr, l->base, omni_fd(l->c), EV_WRITE, on_ready, l);
    event_add(l->rd, NULL);
}

static void on_ready(evutil_socket_t fd, short what, void *arg)
{
    struct omni_link *l = arg;
    (void)fd;
    (void)what;
    /* A write failure still lets us read what the broker said last;
     * omni_next reports the loss once the socket is drained. */
    omni_flush(l->c);
    struct omni_event ev;
    int rc = 0;
    while (l->c && (rc = omni_next(l->c, &ev)) > 0) {
        bool end = ev.type != OMNI_EVENT_CHUNK;
        struct pending *p = end ? take(l, ev.id) : find(l, ev.id);
        if (p)
            p->cb(&ev, p->arg);
        if (end)
            omni_free(p);
    }
    if (l->c && rc < 0)
        drop(l);
    else
        want_write(l);
}

struct omni_link *omni_link_new(struct event_base *base, const char *path)
{
    struct omni_link *l = omni_calloc(1, sizeof *l);
    l->base = base;
    l->path = path ? omni_strdup(path) : NULL;
    l->rd = event_new(base, -1, 0, NULL, NULL);
    l->wr = event_new(base, -1, 0, NULL, NULL);
    l->retry = evtimer_new(base, try_connect, l);
    l->backoff_ms = BACKOFF_MIN_MS;
    grow(l);
    try_connect(-1, 0, l);
    return l;
}

void omni_link_free(struct omni_link *l)
{
    if (!l)
        return;
    event_free(l->rd);
    event_free(l->wr);
    event_free(l->retry);
    omni_close(l->c);
    for (size_t i = 0; i < l->nbuckets; i++) {
        for (struct pending *p = l->tab[i], *next; p; p = next) {
            next = p->next;
            omni_free(p);
        }
    }
    omni_free(l->tab);
    omni_free(l->path);
    omni_free(l);
}

int omni_link_send(struct omni_link *l, const struct omni_request *req,
                   omni_link_cb cb, void *arg, uint64_t *id)
{
    if (!l->c)
        return -1;
    if (omni_send(l->c, req, id) < 0) {
        omni_warn("cannot send to the broker: %s", omni_last_error(l->c));
        /* The read side notices the close; make sure it looks soon. */
        event_active(l->rd, EV_READ, 0);
        return -1;
    }
    if (l->n >= l->nbuckets)
        grow(l);
    struct pending *p = omni_malloc(sizeof *p);
    *p = (struct pending){NULL, *id, cb, arg};
    struct pending **b = bucket(l, *id);
    p->next = *b;
    *b = p;
    l->n++;
    want_write(l);
    return 0;
}

void omni_link_cancel(struct omni_link *l, uint64_t id)
{
    if (!l->c || !find(l, id))
        return;
    if (omni_cancel(l->c, id) < 0)
        event_active(l->rd, EV_READ, 0);
    want_write(l);
}
