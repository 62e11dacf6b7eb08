/*
 * mcp_curl - libcurl's multi interface driven by the worker's libevent
 * loop (CURLMOPT_SOCKETFUNCTION and CURLMOPT_TIMERFUNCTION, as in
 * curl's ghiper/evhiperfifo examples).
 *
 * Owns the multi handle, one event per socket curl watches, and one
 * timer.  Transfers are added on the next loop pass rather than at once,
 * so callers may start one from inside any callback (curl forbids
 * re-entering the multi from its own callbacks).  A finished transfer
 * is taken out of the multi before its done callback runs; the caller
 * owns and frees the easy handle.
 */
#include <string.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_log.h"

struct ent {
    CURL *easy;
    omni_mcp_curl_done done;
    void *arg;
    bool added; /* in the multi (else waiting for the kick) */
    struct ent *next, *prev;
};

struct omni_mcp_curl {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct event *kick; /* adds waiting transfers */
    struct ent *ents;   /* every transfer, added or waiting */
    int running;
};

struct sock {
    struct event *ev;
};

static void unlink_ent(struct omni_mcp_curl *c, struct ent *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->ents = e->next;
    if (e->next)
        e->next->prev = e->prev;
}

/* Report every finished transfer. */
static void check_done(struct omni_mcp_curl *c)
{
    CURLMsg *msg;
    int left;
    while ((msg = curl_multi_info_read(c->multi, &left))) {
        if (msg->msg != CURLMSG_DONE)
            continue;
        CURL *easy = msg->easy_handle;
        CURLcode res = msg->data.result;
        struct ent *e = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&e);
        curl_multi_remove_handle(c->multi, easy);
        if (!e)
            continue;
        unlink_ent(c, e);
        omni_mcp_curl_done done = e->done;
        void *arg = e->arg;
        omni_free(e);
        done(arg, easy, (int)res);
    }
}

static void on_event(evutil_socket_t fd, short what, void *arg)
{
    struct omni_mcp_curl *c = arg;
    int action = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
                 ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(c->multi, fd, action, &c->running);
    check_done(c);
    if (c->running <= 0)
        evtimer_del(c->timer);
}

static void on_timer(evutil_socket_t fd, short what, void *arg)
{
    struct omni_mcp_curl *c = arg;
    (void)fd;
    (void)what;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &c->running);
    check_done(c);
}

/* CURLMOPT_SOCKETFUNCTION: watch s as curl asks. */
static int sock_cb(CURL *easy, curl_socket_t s, int what, void *userp,
                   void *socketp)
{
    struct omni_mcp_curl *c = userp;
    struct sock *k = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (k) {
            event_free(k->ev);
            omni_free(k);
            curl_multi_assign(c->multi, s, NULL);
        }
        return 0;
    }
    if (!k) {
        k = omni_calloc(1, sizeof *k);
        curl_multi_assign(c->multi, s, k);
    } else {
        event_free(k->ev);
    }
    short kind = (short)(((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0) | EV_PERSIST);
    k->ev = event_new(c->base, s, kind, on_event, c);
    event_add(k->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: arm or disarm our one timer. */
static int timer_cb(CURLM *multi, long timeout_ms, void *userp)
{
    struct omni_mcp_curl *c = userp;
    (void)multi;
    if (timeout_ms < 0) {
        evtimer_del(c->timer);
        return 0;
    }
    struct timeval tv = {timeout_ms / 1000, (timeout_ms % 1000) * 1000};
    evtimer_add(c->timer, &tv);
    return 0;
}

/* Add the transfers queued since the last pass. */
static void on_kick(evutil_socket_t fd, short what, void *arg)
{
    struct omni_mcp_curl *c = arg;
    (void)fd;
    (void)what;
    for (struct ent *e = c->ents; e; e = e->next) {
        if (e->added)
            continue;
        e->added = true;
        if (curl_multi_add_handle(c->multi, e->easy) != CURLM_OK) {
            /* Report through the normal path on the next pass. */
            omni_error("mcp: cannot start an HTTP transfer");
            e->added = false;
        }
    }
}

struct omni_mcp_curl *omni_mcp_curl_new(struct event_base *base)
{
    struct omni_mcp_curl *c = omni_calloc(1, sizeof *c);
    c->base = base;
    c->multi = curl_multi_init();
    c->timer = evtimer_new(base, on_timer, c);
    c->kick = event_new(base, -1, 0, on_kick, c);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    return c;
}

/* Transfers still running are abandoned without callbacks; their easy
 * handles belong to the callers, who must have freed them first. */
void omni_mcp_curl_free(struct omni_mcp_curl *c)
{
    if (!c)
        return;
    while (c->ents) {
        struct ent *e = c->ents;
        unlink_ent(c, e);
        if (e->added)
            curl_multi_remove_handle(c->multi, e->easy);
        omni_free(e);
    }
    curl_multi_cleanup(c->multi);
    event_free(c->timer);
    event_free(c->kick);
    omni_free(c);
}

int omni_mcp_curl_add(struct omni_mcp_curl *c, CURL *easy,
                      omni_mcp_curl_done done, void *arg)
{
    struct ent *e = omni_calloc(1, sizeof *e);
    e->easy = easy;
    e->done = done;
    e->arg = arg;
    e->next = c->ents;
    if (c->ents)
        c->ents->prev = e;
    c->ents = e;
    curl_easy_setopt(easy, CURLOPT_PRIVATE, e);
    event_active(c->kick, 0, 0);
    return 0;
}

void omni_mcp_curl_remove(struct omni_mcp_curl *c, CURL *easy)
{
    struct ent *e = NULL;
    curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&e);
    if (!e)
        return;
    unlink_ent(c, e);
    if (e->added)
        curl_multi_remove_handle(c->multi, easy);
    curl_easy_setopt(easy, CURLOPT_PRIVATE, NULL);
    omni_free(e);
}
