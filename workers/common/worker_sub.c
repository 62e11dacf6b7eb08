/*
 * worker_sub - sub-requests from a worker to another service.
 *
 * One libomni connection to the broker's Unix socket, opened on first
 * use and watched on the worker's loop (read always, write while libomni
 * has bytes queued).  Events are dispatched to per-sub-request
 * callbacks.  Our ids are our own, not libomni's, so they stay unique
 * across reconnects: each sub-request sits in two tables, by our id and
 * by libomni's.  When the connection drops, every sub-request on it is
 * moved to a list and told UNAVAILABLE from a loop callback; the next
 * omni_worker_subcall() connects again.
 */
#include <stddef.h>
#include <string.h>

#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "worker_int.h"

struct subcall {
    struct omni_hnode node;     /* key: our id */
    struct omni_hnode lib_node; /* key: libomni's id */
    omni_subcall_cb cb;
    void *arg;
    struct subcall *next_failed;
};

#define FROM_LIB(n)                                                            \
    ((struct subcall *)((char *)(n)-offsetof(struct subcall, lib_node)))

static void watch_write(struct omni_worker *w)
{
    if (w->client && omni_want_write(w->client))
        event_add(w->cli_wev, NULL);
    else if (w->cli_wev)
        event_del(w->cli_wev);
}

static void on_failed(evutil_socket_t fd, short what, void *arg)
{
    struct omni_worker *w = arg;
    (void)fd;
    (void)what;
    struct subcall *list = w->failed;
    w->failed = NULL;
    while (list) {
        struct subcall *s = list;
        list = s->next_failed;
        struct omni_event ev = {.type = OMNI_EVENT_ERROR,
                                .id = s->node.key,
                                .body = "",
                                .code = "UNAVAILABLE",
                                .status = 503,
                                .message = "the connection to the broker "
                                           "was lost"};
        s->cb(&ev, s->arg);
        omni_free(s);
    }
}

/* Close the connection; its sub-requests will hear UNAVAILABLE. */
static void drop_client(struct omni_worker *w, const char *why)
{
    omni_warn("worker: sub-request connection lost: %s", why);
    event_free(w->cli_rev);
    event_free(w->cli_wev);
    w->cli_rev = w->cli_wev = NULL;
    omni_close(w->client);
    w->client = NULL;
    omni_htab_release(&w->subs_by_lib);
    struct omni_hnode *n;
    while ((n = omni_htab_take_any(&w->subs))) {
        struct subcall *s = (struct subcall *)n;
        s->next_failed = w->failed;
        w->failed = s;
    }
    if (w->failed)
        event_active(w->fail_ev, EV_TIMEOUT, 0);
}

/* Readable or writable: flush, then hand out every event received. */
static void on_client(evutil_socket_t fd, short what, void *arg)
{
    struct omni_worker *w = arg;
    omni_client *c = w->client;
    (void)fd;
    if ((what & EV_WRITE) && omni_flush(c) < 0) {
        drop_client(w, omni_last_error(c));
        return;
    }
    for (;;) {
        struct omni_event ev;
        int rc = omni_next(c, &ev);
        if (rc == 0)
            break;
        if (rc < 0) {
            drop_client(w, omni_last_error(c));
            return;
        }
        bool last = ev.type != OMNI_EVENT_CHUNK;
        struct omni_hnode *n = last ? omni_htab_del(&w->subs_by_lib, ev.id)
                                    : omni_htab_get(&w->subs_by_lib, ev.id);
        if (!n)
            continue; /* cancelled by us, or not ours */
        struct subcall *s = FROM_LIB(n);
        if (last)
            omni_htab_del(&w->subs, s->node.key);
        ev.id = s->node.key;
        s->cb(&ev, s->arg);
        if (last)
            omni_free(s);
        /* The callback may have made a sub-request that found the
         * connection broken and replaced it. */
        if (w->client != c)
            return;
    }
    watch_write(w);
}

static int open_client(struct omni_worker *w)
{
    char err[OMNI_ERR_LEN];
    const char *path = omni_cfg_socket_path();
    omni_client *c = omni_connect(path, err, sizeof err);
    if (!c) {
        omni_warn("worker: cannot connect to the broker at '%s': %s", path,
                  err);
        return -1;
    }
    w->client = c;
    w->cli_rev =
        event_new(w->base, omni_fd(c), EV_READ | EV_PERSIST, on_client, w);
    w->cli_wev = event_new(w->base, omni_fd(c), EV_WRITE, on_client, w);
    event_add(w->cli_rev, NULL);
    if (!w->fail_ev)
        w->fail_ev = evtimer_new(w->base, on_failed, w);
    return 0;
}

/* Send on the current connection, opening it if needed. */
static int send_one(struct omni_worker *w, const struct omni_request *req,
                    uint64_t *lib_id)
{
    if (!w->client && open_client(w) < 0)
        return -1;
    if (omni_send(w->client, req, lib_id) == 0)
        return 0;
    omni_warn("worker: cannot send a sub-request to '%s': %s",
              req->service ? req->service : "", omni_last_error(w->client));
    /* A refused request leaves the connection usable; a broken one
     * fails its flush too, and is replaced. */
    if (omni_flush(w->client) == 0)
        return -1;
    drop_client(w, omni_last_error(w->client));
    return -2;
}

int omni_worker_subcall(struct omni_worker *w, const struct omni_request *req,
                        omni_subcall_cb cb, void *arg, uint64_t *id)
{
    uint64_t lib_id;
    if (!req || !cb)
        return -1;
    int rc = send_one(w, req, &lib_id);
    if (rc == -2)
        rc = send_one(w, req, &lib_id);
    if (rc < 0)
        return -1;
    struct subcall *s = omni_calloc(1, sizeof *s);
    s->node.key = ++w->next_sub_id;
    s->lib_node.key = lib_id;
    s->cb = cb;
    s->arg = arg;
    omni_htab_put(&w->subs, &s->node);
    omni_htab_put(&w->subs_by_lib, &s->lib_node);
    if (id)
        *id = s->node.key;
    watch_write(w);
    return 0;
}

void omni_worker_subcancel(struct omni_worker *w, uint64_t id)
{
    struct subcall *s = (struct subcall *)omni_htab_del(&w->subs, id);
    if (s) {
        omni_htab_del(&w->subs_by_lib, s->lib_node.key);
        /* Its closing event (CANCELLED) finds no entry and is dropped. */
        if (w->client && omni_cancel(w->client, s->lib_node.key) < 0)
            omni_debug("worker: cannot cancel sub-request %llu: %s",
                       (unsigned long long)id, omni_last_error(w->client));
        omni_free(s);
        watch_write(w);
        return;
    }
    for (struct subcall **pp = &w->failed; *pp; pp = &(*pp)->next_failed) {
        if ((*pp)->node.key == id) {
            s = *pp;
            *pp = s->next_failed;
            omni_free(s);
            return;
        }
    }
}

void omni_wsub_release(struct omni_worker *w)
{
    struct omni_hnode *n;
    while ((n = omni_htab_take_any(&w->subs)))
        omni_free(n);
    while (w->failed) {
        struct subcall *s = w->failed;
        w->failed = s->next_failed;
        omni_free(s);
    }
    if (w->cli_rev)
        event_free(w->cli_rev);
    if (w->cli_wev)
        event_free(w->cli_wev);
    w->cli_rev = w->cli_wev = NULL;
    omni_close(w->client);
    w->client = NULL;
    if (w->fail_ev)
        event_free(w->fail_ev);
    w->fail_ev = NULL;
}
