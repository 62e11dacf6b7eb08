/*
 * workers - the ZeroMQ ROUTER that workers connect to, the registry of
 * workers that sent READY, and their liveness.
 *
 * Every command from a worker counts as a sign of life; a worker silent
 * for liveness * heartbeat_ms is dead: the router settles its requests,
 * we send it DISCONNECT and, if it is our child, the supervisor kills it
 * so that a replacement starts.  Commands from a sender that never sent
 * READY, and a READY for a service not configured, are answered with
 * DISCONNECT (MDP).  Dead workers are unlinked at once but freed later
 * (omni_workers_reap), since callers up the stack may still hold them.
 */
#include "broker.h"

#include <jansson.h>

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_evzmq.h"
#include "omni_log.h"
#include "omni_time.h"

struct omni_workers {
    struct omni_broker *b;
    char *ipc_path; /* file of an ipc:// endpoint, removed at exit */
    void *ctx, *sock;
    struct omni_evzmq *ev;
    struct event *hb_timer, *reap_ev;
    struct omni_bworker *head;      /* registry */
    struct omni_bworker *graveyard; /* dead, linked by next */
    size_t count;
    int64_t heartbeat_ms;
    int liveness;
};

struct omni_workers *omni_workers_new(struct omni_broker *b,
                                      int64_t heartbeat_ms, int liveness)
{
    struct omni_workers *ws = omni_calloc(1, sizeof *ws);
    ws->b = b;
    ws->heartbeat_ms = heartbeat_ms;
    ws->liveness = liveness;
    return ws;
}

static void kick(struct omni_workers *ws)
{
    if (ws->ev)
        omni_evzmq_kick(ws->ev);
}

/* A command without key or frames to ident; failures are ignored (the
 * peer may be gone already). */
static void send_bare(struct omni_workers *ws, const void *ident, size_t n,
                      enum omni_wire_cmd cmd)
{
    if (!ws->sock)
        return;
    omni_wire_send(ws->sock, ident, n, cmd, false, 0, NULL, 0, NULL, 0, NULL);
    kick(ws);
}

/* Print a routing id for logs (hex, bounded). */
static void ident_text(const void *p, size_t n, char out[40])
{
    const unsigned char *u = p;
    size_t i = 0;
    for (; i < n && i < 19; i++)
        snprintf(out + 2 * i, 3, "%02x", u[i]);
    out[2 * i] = '\0';
}

static struct omni_bworker *find(struct omni_workers *ws, const void *ident,
                                 size_t n)
{
    for (struct omni_bworker *w = ws->head; w; w = w->next)
        if (w->ident_len == n && memcmp(w->ident, ident, n) == 0)
            return w;
    return NULL;
}

struct omni_bworker *omni_workers_by_pid(struct omni_workers *ws, pid_t pid)
{
    for (struct omni_bworker *w = ws->head; w; w = w->next)
        if (w->pid == pid)
            return w;
    return NULL;
}

size_t omni_workers_count(const struct omni_workers *ws)
{
    return ws->count;
}

/* Add the numbers of src into acc, member by member, recursing into
 * objects; other values keep the first worker's. */
static void sum_into(json_t *acc, json_t *src)
{
    const char *k;
    json_t *v;
    json_object_foreach(src, k, v)
    {
        json_t *a = json_object_get(acc, k);
        if (!a)
            json_object_set(acc, k, v);
        else if (json_is_object(a) && json_is_object(v))
            sum_into(a, v);
        else if (json_is_integer(a) && json_is_integer(v))
            json_integer_set(a, json_integer_value(a) + json_integer_value(v));
        else if (json_is_number(a) && json_is_number(v))
            json_object_set_new(
                acc, k, json_real(json_number_value(a) + json_number_value(v)));
    }
}

void omni_workers_stats(const struct omni_workers *ws,
                        const struct omni_service *s, struct omni_buf *out)
{
    json_t *acc = NULL;
    for (struct omni_bworker *w = ws->head; w; w = w->next) {
        if (w->dead || w->svc != s || !w->stats)
            continue;
        json_t *j = json_loadb(w->stats, w->stats_len, 0, NULL);
        if (json_is_object(j)) {
            json_object_del(j, "pid");
            if (!acc)
                acc = json_deep_copy(j);
            else
                sum_into(acc, j);
        }
        json_decref(j);
    }
    if (!acc)
        return;
    char *text = json_dumps(acc, JSON_COMPACT);
    omni_buf_addf(out, ",\"worker\":%s", text);
    free(text);
    json_decref(acc);
}

/* Declare w dead.  disconnect: tell it so; kill: SIGKILL it if it is
 * our child (it is stuck or broken, and a replacement should start). */
static void lose(struct omni_workers *ws, struct omni_bworker *w,
                 const char *why, bool disconnect, bool kill)
{
    if (w->dead)
        return;
    pid_t pid = w->pid;
    if (disconnect)
        send_bare(ws, w->ident, w->ident_len, OMNI_W_DISCONNECT);
    omni_router_worker_lost(ws->b->router, w, why);
    if (kill && pid && ws->b->sup && omni_supervisor_kill(ws->b->sup, pid))
        omni_info("killed worker pid %d", (int)pid);
}

void omni_workers_exited(struct omni_workers *ws, struct omni_bworker *w,
                         const char *why)
{
    lose(ws, w, why, false, false);
}

void omni_workers_dead_op(void *arg, struct omni_bworker *w)
{
    struct omni_broker *b = arg;
    struct omni_workers *ws = b->workers;
    if (w->prev)
        w->prev->next = w->next;
    else
        ws->head = w->next;
    if (w->next)
        w->next->prev = w->prev;
    ws->count--;
    w->prev = NULL;
    w->next = ws->graveyard;
    ws->graveyard = w;
    if (ws->reap_ev)
        event_active(ws->reap_ev, EV_READ, 0);
}

void omni_workers_reap(struct omni_workers *ws)
{
    while (ws->graveyard) {
        struct omni_bworker *w = ws->graveyard;
        ws->graveyard = w->next;
        omni_free(w->stats);
        omni_free(w->ident);
        omni_free(w);
    }
}

int omni_workers_send_op(void *arg, struct omni_bworker *w,
                         enum omni_wire_cmd cmd, uint64_t key, const void *hdr,
                         size_t hlen, zmq_msg_t *body)
{
    struct omni_broker *b = arg;
    struct omni_workers *ws = b->workers;
    if (!ws->sock)
        return -1;
    enum omni_err rc = omni_wire_send(ws->sock, w->ident, w->ident_len, cmd,
                                      true, key, hdr, hlen, NULL, 0, body);
    if (rc != OMNI_OK) {
        omni_debug("cannot send to worker pid %d: %s", (int)w->pid,
                   zmq_strerror(errno));
        return -1;
    }
    kick(ws);
    return 0;
}

/* READY: service frame, then map{t:"ready", capacity, pid}. */
static void ready(struct omni_workers *ws, struct omni_wire_msg *m)
{
    size_t ilen = zmq_msg_size(&m->ident), sn, mn;
    const void *ident = zmq_msg_data(&m->ident);
    const char *svc = omni_wire_part(m, 0, &sn);
    const void *map = omni_wire_part(m, 1, &mn);
    struct omni_msg r;
    char err[OMNI_ERR_LEN];
    char id[40];
    ident_text(ident, ilen, id);
    if (omni_msg_decode(map, mn, &r, err) != OMNI_OK ||
        r.type != OMNI_MSG_READY) {
        omni_warn("worker %s: bad READY: %s", id,
                  r.type == OMNI_MSG_READY ? err : "want t:\"ready\"");
        send_bare(ws, ident, ilen, OMNI_W_DISCONNECT);
        return;
    }
    struct omni_service *s = omni_router_service(ws->b->router, svc, sn);
    if (!s) {
        omni_warn("worker %s (pid %u): service '%.*s' is not configured, "
                  "disconnecting it",
                  id, r.pid, (int)(sn > 64 ? 64 : sn), svc);
        send_bare(ws, ident, ilen, OMNI_W_DISCONNECT);
        return;
    }
    /* A process has one link at a time: a READY from a pid we know means
     * it reconnected (after a DISCONNECT), and the old link is dead. */
    struct omni_bworker *old =
        r.pid ? omni_workers_by_pid(ws, (pid_t)r.pid) : NULL;
    if (old)
        lose(ws, old, "reconnected", false, false);
    struct omni_bworker *w = omni_calloc(1, sizeof *w);
    w->ident = omni_malloc(ilen ? ilen : 1);
    memcpy(w->ident, ident, ilen);
    w->ident_len = ilen;
    w->svc = s;
    w->capacity = r.capacity ? r.capacity : 1;
    w->pid = (pid_t)r.pid;
    w->expiry = omni_now_ms() + ws->heartbeat_ms * ws->liveness;
    w->next = ws->head;
    if (ws->head)
        ws->head->prev = w;
    ws->head = w;
    ws->count++;
    omni_info("worker '%s' ready: pid %d, capacity %u", s->name, (int)w->pid,
              w->capacity);
    if (w->pid && ws->b->sup)
        omni_supervisor_started(ws->b->sup, w->pid);
    omni_router_worker_add(ws->b->router, w);
}

/* ERROR: map{t:"error", code, status, message, retry_after_ms}. */
static void error_reply(struct omni_workers *ws, struct omni_bworker *w,
                        struct omni_wire_msg *m)
{
    size_t n;
    const void *p = omni_wire_part(m, 0, &n);
    struct omni_msg e;
    char err[OMNI_ERR_LEN];
    if (omni_msg_decode(p, n, &e, err) != OMNI_OK || e.type != OMNI_MSG_ERROR ||
        e.code == OMNI_OK) {
        omni_warn("worker '%s' pid %d: undecodable ERROR: %s", w->svc->name,
                  (int)w->pid, e.type == OMNI_MSG_ERROR ? err : "bad type");
        memset(&e, 0, sizeof e);
        e.type = OMNI_MSG_ERROR;
        e.code = OMNI_E_INTERNAL;
        e.message = omni_str_c("worker sent an undecodable error");
    }
    omni_router_error(ws->b->router, w, m->key, &e);
}

void omni_workers_command(struct omni_workers *ws, struct omni_wire_msg *m,
                          enum omni_err rc, const char *err)
{
    if (!m->has_ident)
        return;
    const void *ident = zmq_msg_data(&m->ident);
    size_t ilen = zmq_msg_size(&m->ident);
    struct omni_bworker *w = find(ws, ident, ilen);
    char id[40];
    if (rc != OMNI_OK) {
        ident_text(ident, ilen, id);
        omni_warn("worker %s (pid %d): bad message: %s", id,
                  w ? (int)w->pid : 0, err);
        if (w)
            lose(ws, w, "protocol error", true, true);
        else
            send_bare(ws, ident, ilen, OMNI_W_DISCONNECT);
        return;
    }
    if (w)
        w->expiry = omni_now_ms() + ws->heartbeat_ms * ws->liveness;
    if (!w && m->cmd != OMNI_W_READY) {
        /* Not one of ours (or one we declared dead): MDP says DISCONNECT,
         * and the worker reconnects on a new socket. */
        ident_text(ident, ilen, id);
        omni_debug("command %d from unknown worker %s: disconnecting it",
                   (int)m->cmd, id);
        if (m->cmd != OMNI_W_DISCONNECT)
            send_bare(ws, ident, ilen, OMNI_W_DISCONNECT);
        return;
    }
    size_t n;
    const void *p;
    switch (m->cmd) {
    case OMNI_W_READY:
        if (w)
            lose(ws, w, "READY twice", true, true);
        else
            ready(ws, m);
        break;
    case OMNI_W_HEARTBEAT: break;
    case OMNI_W_STATS:
        p = omni_wire_part(m, 0, &n);
        omni_free(w->stats);
        w->stats = omni_strndup(p, n);
        w->stats_len = n;
        break;
    case OMNI_W_PARTIAL:
        p = omni_wire_part(m, 0, &n);
        omni_router_partial(ws->b->router, w, m->key, p, n);
        break;
    case OMNI_W_FINAL:
        p = omni_wire_part(m, 0, &n);
        omni_router_final(ws->b->router, w, m->key, p, n);
        break;
    case OMNI_W_ERROR: error_reply(ws, w, m); break;
    case OMNI_W_DISCONNECT: lose(ws, w, "disconnected", false, false); break;
    case OMNI_W_REQUEST:
    case OMNI_W_CANCEL: lose(ws, w, "sent a broker command", true, true); break;
    }
}

static int on_input(void *arg)
{
    struct omni_workers *ws = arg;
    struct omni_wire_msg m;
    char err[OMNI_ERR_LEN];
    enum omni_err rc = omni_wire_recv(ws->sock, true, &m, err);
    if (rc == OMNI_AGAIN)
        return 0;
    omni_workers_command(ws, &m, rc, err);
    omni_wire_msg_close(&m);
    return 1;
}

int omni_workers_poll(struct omni_workers *ws)
{
    int n = 0;
    while (on_input(ws))
        n++;
    return n;
}

/* Is any worker past its expiry? */
static bool any_expired(const struct omni_workers *ws, int64_t now)
{
    for (const struct omni_bworker *w = ws->head; w; w = w->next)
        if (w->expiry <= now)
            return true;
    return false;
}

void omni_workers_tick(struct omni_workers *ws)
{
    int64_t now = omni_now_ms();
    /* After a long loop iteration a worker's messages may be waiting
     * unread: read them before calling anyone silent. */
    if (ws->sock && any_expired(ws, now)) {
        omni_workers_poll(ws);
        now = omni_now_ms();
    }
    struct omni_bworker *w = ws->head;
    while (w) {
        if (w->expiry <= now) {
            char why[64];
            int64_t silent = ws->heartbeat_ms * ws->liveness;
            snprintf(why, sizeof why, "silent for %" PRId64 " ms", silent);
            lose(ws, w, why, true, true);
            /* Losing may lose others too (a re-dispatch that cannot be
             * sent): start over. */
            w = ws->head;
            continue;
        }
        if (ws->sock &&
            omni_wire_send(ws->sock, w->ident, w->ident_len, OMNI_W_HEARTBEAT,
                           false, 0, NULL, 0, NULL, 0, NULL) != OMNI_OK &&
            errno == EHOSTUNREACH) {
            lose(ws, w, "connection gone", false, false);
            w = ws->head;
            continue;
        }
        w = w->next;
    }
    kick(ws);
}

static void on_heartbeat(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    omni_workers_tick(arg);
}

static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    omni_workers_reap(arg);
}

enum omni_err omni_workers_bind(struct omni_workers *ws, const char *endpoint,
                                char err[OMNI_ERR_LEN])
{
    ws->ctx = zmq_ctx_new();
    ws->sock = zmq_socket(ws->ctx, ZMQ_ROUTER);
    int one = 1, zero = 0;
    /* Unroutable sends fail (EHOSTUNREACH) instead of vanishing; no
     * high-water mark: worker capacity already bounds what we queue. */
    zmq_setsockopt(ws->sock, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(ws->sock, ZMQ_SNDHWM, &zero, sizeof zero);
    zmq_setsockopt(ws->sock, ZMQ_RCVHWM, &zero, sizeof zero);
    zmq_setsockopt(ws->sock, ZMQ_LINGER, &zero, sizeof zero);
    if (zmq_bind(ws->sock, endpoint) != 0) {
        snprintf(err, OMNI_ERR_LEN, "cannot bind '%s': %s", endpoint,
                 zmq_strerror(errno));
        return OMNI_E_IO;
    }
    if (strncmp(endpoint, "ipc://", 6) == 0)
        ws->ipc_path = omni_strdup(endpoint + 6);
    if (ws->b->base) {
        ws->ev = omni_evzmq_new(ws->b->base, ws->sock, on_input, ws);
        ws->hb_timer = event_new(ws->b->base, -1, EV_PERSIST, on_heartbeat, ws);
        struct timeval tv = {(time_t)(ws->heartbeat_ms / 1000),
                             (suseconds_t)(ws->heartbeat_ms % 1000) * 1000};
        event_add(ws->hb_timer, &tv);
        ws->reap_ev = event_new(ws->b->base, -1, 0, on_reap, ws);
    }
    return OMNI_OK;
}

void omni_workers_disconnect_all(struct omni_workers *ws)
{
    for (struct omni_bworker *w = ws->head; w; w = w->next)
        send_bare(ws, w->ident, w->ident_len, OMNI_W_DISCONNECT);
}

void omni_workers_free(struct omni_workers *ws)
{
    if (!ws)
        return;
    omni_evzmq_free(ws->ev);
    if (ws->hb_timer)
        event_free(ws->hb_timer);
    if (ws->reap_ev)
        event_free(ws->reap_ev);
    omni_workers_reap(ws);
    while (ws->head) {
        struct omni_bworker *w = ws->head;
        ws->head = w->next;
        omni_free(w->stats);
        omni_free(w->ident);
        omni_free(w);
    }
    if (ws->sock)
        zmq_close(ws->sock);
    if (ws->ctx)
        zmq_ctx_term(ws->ctx);
    if (ws->ipc_path)
        unlink(ws->ipc_path);
    omni_free(ws->ipc_path);
    omni_free(ws);
}
