/*
 * omni.c - libomni: one Unix-socket connection to omni-broker.
 *
 * Owns the connection's two byte queues.  Requests are encoded with
 * omni_msg_encode (protocol/omni_proto.c, the one codec) into the write
 * queue and written without blocking; what the socket does not take
 * waits for omni_flush.  Replies are read into one buffer and cut into
 * frames with omni_frame_peek and omni_msg_decode; an event borrows its
 * body from that buffer until the next call.  Ids in flight live in a
 * small open-addressing table so events for any id, in any order, end
 * the right request.
 *
 * Failures: a closed or broken connection, or a frame over the limit,
 * marks the client lost: frames already read are still delivered, then
 * every call returns -1 with the reason in omni_last_error().  No error
 * text ever includes the auth field.
 */
#include "omni.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_proto.h"
#include "omni_time.h"

#define READ_MIN      (64 * 1024) /* free space wanted before a read */
#define CALL_GRACE_MS 2000        /* omni_call waits this past timeout_ms */

/* A request in flight; id 0 marks a free slot (ids start at 1). */
struct slot {
    uint64_t id;
    bool discard; /* omni_call gave up on it: swallow its events */
};

/* An event put aside by omni_call for a later omni_next. */
struct held {
    struct held *next;
    struct omni_event ev;
    char data[]; /* body, then code and message, NUL-terminated */
};

struct omni_client {
    int fd;
    bool lost;    /* no more bytes will be read */
    bool wfailed; /* writing failed; reads go on until EOF */
    char err[OMNI_ERR_LEN];
    uint64_t next_id;
    size_t max_frame;
    struct omni_buf out; /* write queue; out_off bytes already sent */
    size_t out_off;
    char *in; /* read buffer: bytes [in_start, in_end) are unparsed */
    size_t in_start, in_end, in_cap;
    struct omni_buf text; /* code and message of the last event */
    struct slot *slots;   /* power-of-two table of ids in flight */
    size_t nslots, nused;
    struct held *held, *held_tail, *held_done;
};

static _Thread_local char connect_err[OMNI_ERR_LEN];

static void seterr(omni_client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Record an error on c, secrets masked. */
static void seterr(omni_client *c, const char *fmt, ...)
{
    char raw[OMNI_ERR_LEN];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(raw, sizeof raw, fmt, ap);
    va_end(ap);
    omni_redact_str(raw, c->err, sizeof c->err);
}

/* ------------------------------------------------------------------ */
/* Ids in flight: linear probing, deletion by backward shift.          */

static size_t home(const omni_client *c, uint64_t id)
{
    return (size_t)((id * 0x9e3779b97f4a7c15ULL) >> 32) & (c->nslots - 1);
}

static struct slot *ids_find(omni_client *c, uint64_t id)
{
    if (!id || !c->nslots)
        return NULL;
    for (size_t i = home(c, id);; i = (i + 1) & (c->nslots - 1)) {
        if (c->slots[i].id == id)
            return &c->slots[i];
        if (!c->slots[i].id)
            return NULL;
    }
}

static void ids_put(omni_client *c, uint64_t id, bool discard)
{
    size_t i = home(c, id);
    while (c->slots[i].id)
        i = (i + 1) & (c->nslots - 1);
    c->slots[i].id = id;
    c->slots[i].discard = discard;
}

static void ids_add(omni_client *c, uint64_t id)
{
    if ((c->nused + 1) * 2 > c->nslots) {
        struct slot *old = c->slots;
        size_t n = c->nslots;
        c->nslots = n ? n * 2 : 64;
        c->slots = omni_calloc(c->nslots, sizeof *c->slots);
        for (size_t i = 0; i < n; i++)
            if (old[i].id)
                ids_put(c, old[i].id, old[i].discard);
        omni_free(old);
    }
    ids_put(c, id, false);
    c->nused++;
}

static void ids_del(omni_client *c, struct slot *s)
{
    size_t mask = c->nslots - 1;
    size_t i = (size_t)(s - c->slots);
    /* Pull later entries of the probe run back so lookups still find
     * them: an entry moves into the hole unless its home lies cyclically
     * in (hole, entry]. */
    for (size_t j = (i + 1) & mask; c->slots[j].id; j = (j + 1) & mask) {
        size_t k = home(c, c->slots[j].id);
        bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
        if (!stays) {
            c->slots[i] = c->slots[j];
            i = j;
        }
    }
    c->slots[i].id = 0;
    c->nused--;
}

/* ------------------------------------------------------------------ */
/* Connection.                                                         */

/* The connection is over: drop the ids and the unsent bytes. */
static void lose(omni_client *c)
{
    c->lost = true;
    if (c->nslots)
        memset(c->slots, 0, c->nslots * sizeof *c->slots);
    c->nused = 0;
    omni_buf_reset(&c->out);
    c->out_off = 0;
}

static const char *default_path(void)
{
    const char *env = getenv("OMNI_SOCKET");
    return env && *env ? env : omni_cfg_socket_path();
}

static size_t max_frame_from_env(void)
{
    const char *env = getenv("OMNI_MAX_FRAME");
    if (env && *env) {
        char *end;
        unsigned long long v = strtoull(env, &end, 10);
        if (!*end && v >= 1024 && v <= (1ULL << 30))
            return (size_t)v;
    }
    return OMNI_MAX_FRAME_DEFAULT;
}

omni_client *omni_connect(const char *path, char *err, size_t errlen)
{
    if (!path || !*path)
        path = default_path();
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    int fd = -1;
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(connect_err, sizeof connect_err,
                 "cannot connect to '%s': path too long", path);
        goto fail;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        snprintf(connect_err, sizeof connect_err, "cannot create a socket: %s",
                 strerror(errno));
        goto fail;
    }
    /* Connect blocking (a Unix connect only waits when the broker's
     * backlog is full), then switch to non-blocking for the traffic. */
    int rc;
    do
        rc = connect(fd, (struct sockaddr *)&sa, sizeof sa);
    while (rc < 0 && errno == EINTR);
    if (rc < 0) {
        int e = errno;
        snprintf(connect_err, sizeof connect_err,
                 "cannot connect to '%s': %s%s", path, strerror(e),
                 e == ENOENT || e == ECONNREFUSED ? " (is omni-broker running?)"
                                                  : "");
        goto fail;
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        snprintf(connect_err, sizeof connect_err,
                 "cannot make the socket non-blocking: %s", strerror(errno));
        goto fail;
    }
    omni_client *c = omni_calloc(1, sizeof *c);
    c->fd = fd;
    c->max_frame = max_frame_from_env();
    c->in_cap = READ_MIN;
    c->in = omni_malloc(c->in_cap);
    omni_buf_init(&c->out);
    omni_buf_init(&c->text);
    connect_err[0] = '\0';
    if (err && errlen)
        err[0] = '\0';
    return c;
fail:
    if (fd >= 0)
        close(fd);
    if (err && errlen)
        snprintf(err, errlen, "%s", connect_err);
    return NULL;
}

static void free_held(struct held *h)
{
    while (h) {
        struct held *next = h->next;
        omni_free(h);
        h = next;
    }
}

void omni_close(omni_client *c)
{
    if (!c)
        return;
    close(c->fd);
    omni_buf_release(&c->out);
    omni_buf_release(&c->text);
    omni_free(c->in);
    omni_free(c->slots);
    free_held(c->held);
    free_held(c->held_done);
    omni_free(c);
}

const char *omni_last_error(const omni_client *c)
{
    return c ? c->err : connect_err;
}

int omni_fd(const omni_client *c)
{
    return c->fd;
}

bool omni_want_write(const omni_client *c)
{
    return c->out_off < c->out.len;
}

size_t omni_in_flight(const omni_client *c)
{
    return c->nused;
}

/* ------------------------------------------------------------------ */
/* Writing.                                                            */

int omni_flush(omni_client *c)
{
    if (c->lost || c->wfailed)
        return -1;
    while (c->out_off < c->out.len) {
        ssize_t w = send(c->fd, c->out.data + c->out_off,
                         c->out.len - c->out_off, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            /* Keep reading: the broker may have said why it closed. */
            seterr(c, "cannot write to the broker: %s", strerror(errno));
            c->wfailed = true;
            omni_buf_reset(&c->out);
            c->out_off = 0;
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (c->out_off == c->out.len) {
        omni_buf_reset(&c->out);
        c->out_off = 0;
    } else if (c->out_off > READ_MIN && c->out_off * 2 > c->out.len) {
        omni_buf_consume(&c->out, c->out_off);
        c->out_off = 0;
    }
    return 0;
}

/* Fail a call on a client that can no longer write. */
static int not_writable(omni_client *c)
{
    if (!c->lost && !c->wfailed)
        return 0;
    if (!c->err[0])
        seterr(c, "connection to the broker is lost");
    return -1;
}

int omni_send(omni_client *c, const struct omni_request *req, uint64_t *id)
{
    if (not_writable(c) < 0)
        return -1;
    if (!req->service || !*req->service || !req->op || !*req->op) {
        seterr(c, "request needs a service and an op");
        return -1;
    }
    if (strlen(req->service) > OMNI_MAX_SERVICE ||
        strlen(req->op) > OMNI_MAX_OP) {
        seterr(c, "service or op longer than %d bytes", OMNI_MAX_SERVICE);
        return -1;
    }
    if (req->body_len && !req->body) {
        seterr(c, "request body is NULL with a length of %zu", req->body_len);
        return -1;
    }
    if (req->body_len + 1024 > c->max_frame) {
        seterr(c, "request body of %zu bytes over the %zu-byte frame limit",
               req->body_len, c->max_frame);
        return -1;
    }
    struct omni_msg m = {.type = OMNI_MSG_REQUEST,
                         .id = ++c->next_id,
                         .service = omni_str_c(req->service),
                         .op = omni_str_c(req->op),
                         .deadline_ms = req->timeout_ms,
                         .stream = req->stream,
                         .idempotent = req->idempotent,
                         .auth = omni_str_c(req->auth),
                         .trace = omni_str_c(req->trace),
                         .body = {req->body, req->body_len}};
    omni_msg_encode(&m, &c->out);
    ids_add(c, m.id);
    if (id)
        *id = m.id;
    if (omni_flush(c) < 0) {
        struct slot *s = ids_find(c, m.id);
        if (s)
            ids_del(c, s);
        return -1;
    }
    return 0;
}

int omni_cancel(omni_client *c, uint64_t id)
{
    if (not_writable(c) < 0)
        return -1;
    if (!ids_find(c, id)) {
        seterr(c, "cannot cancel request %llu: not in flight",
               (unsigned long long)id);
        return -1;
    }
    struct omni_msg m = {.type = OMNI_MSG_CANCEL, .id = id};
    omni_msg_encode(&m, &c->out);
    return omni_flush(c);
}

/* ------------------------------------------------------------------ */
/* Reading.                                                            */

/* Make room for a read: at least READ_MIN bytes, or the rest of a frame
 * whose header is already in. */
static void make_room(omni_client *c)
{
    if (c->in_start == c->in_end)
        c->in_start = c->in_end = 0;
    size_t have = c->in_end - c->in_start, want = READ_MIN;
    if (have >= OMNI_FRAME_HDR) {
        const unsigned char *h = (unsigned char *)c->in + c->in_start;
        size_t n =
            (size_t)h[0] << 24 | (size_t)h[1] << 16 | (size_t)h[2] << 8 | h[3];
        /* parse() has checked n against max_frame already. */
        if (OMNI_FRAME_HDR + n > have + want)
            want = OMNI_FRAME_HDR + n - have;
    }
    if (c->in_cap - c->in_end >= want)
        return;
    if (c->in_start) {
        memmove(c->in, c->in + c->in_start, have);
        c->in_start = 0;
        c->in_end = have;
    }
    if (c->in_cap - c->in_end >= want)
        return;
    size_t cap = c->in_cap ? c->in_cap : READ_MIN;
    while (cap - have < want)
        cap *= 2;
    c->in = omni_realloc(c->in, cap);
    c->in_cap = cap;
}

/* Read once.  Returns 1 when bytes came, 0 when none are waiting, -1
 * when the connection ended (c->lost is then set). */
static int fill(omni_client *c)
{
    make_room(c);
    for (;;) {
        ssize_t r = read(c->fd, c->in + c->in_end, c->in_cap - c->in_end);
        if (r > 0) {
            c->in_end += (size_t)r;
            return 1;
        }
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        /* A broker that closes with our bytes unread resets. */
        bool closed = r == 0 || errno == ECONNRESET;
        if (closed && c->in_end > c->in_start)
            seterr(c,
                   "broker closed the connection in the middle of a "
                   "frame (%zu bytes pending)",
                   c->in_end - c->in_start);
        else if (closed)
            seterr(c, "broker closed the connection");
        else
            seterr(c, "cannot read from the broker: %s", strerror(errno));
        lose(c);
        return -1;
    }
}

/* Fill ev from one decoded message.  Returns 1, or 0 to skip it. */
static int to_event(omni_client *c, const struct omni_msg *m,
                    struct omni_event *ev)
{
    memset(ev, 0, sizeof *ev);
    switch (m->type) {
    case OMNI_MSG_CHUNK: ev->type = OMNI_EVENT_CHUNK; break;
    case OMNI_MSG_FINAL: ev->type = OMNI_EVENT_FINAL; break;
    case OMNI_MSG_ERROR: ev->type = OMNI_EVENT_ERROR; break;
    default: return 0; /* nothing else travels to clients */
    }
    struct slot *s = ids_find(c, m->id);
    bool discard = s && s->discard;
    if (s && ev->type != OMNI_EVENT_CHUNK)
        ids_del(c, s);
    if (discard)
        return 0;
    ev->id = m->id;
    ev->seq = m->seq;
    ev->body = m->body.p ? m->body.p : "";
    ev->body_len = m->body.n;
    if (ev->type == OMNI_EVENT_ERROR) {
        /* Local codes (OK, AGAIN) never belong on the wire. */
        enum omni_err code =
            m->code < OMNI_E_BAD_REQUEST ? OMNI_E_INTERNAL : m->code;
        const char *word = omni_err_code(code);
        omni_buf_reset(&c->text);
        omni_buf_add(&c->text, word, strlen(word) + 1);
        omni_buf_add(&c->text, m->message.p, m->message.n);
        ev->code = c->text.data;
        ev->message = c->text.data + strlen(word) + 1;
        ev->status = m->status ? (int)m->status : omni_err_status(code);
        ev->retry_after_ms = m->retry_after_ms;
    }
    return 1;
}

/* The next whole frame in the read buffer as an event: 1, or 0 when
 * more bytes are needed, or -1 on a framing error (connection lost). */
static int parse(omni_client *c, struct omni_event *ev)
{
    for (;;) {
        size_t n;
        enum omni_err rc = omni_frame_peek(
            c->in + c->in_start, c->in_end - c->in_start, c->max_frame, &n);
        if (rc == OMNI_AGAIN)
            return 0;
        if (rc != OMNI_OK) {
            seterr(c, "broker sent a frame of length 0 or over %zu bytes",
                   c->max_frame);
            lose(c);
            return -1;
        }
        const char *p = c->in + c->in_start + OMNI_FRAME_HDR;
        c->in_start += OMNI_FRAME_HDR + n;
        struct omni_msg m;
        char why[OMNI_ERR_LEN];
        if (omni_msg_decode(p, n, &m, why) != OMNI_OK) {
            /* A well-formed frame with a bad message: report it on the
             * id when it could be read, and go on with the next frame. */
            uint64_t id = m.id;
            struct slot *s = ids_find(c, id);
            bool discard = s && s->discard;
            if (s)
                ids_del(c, s);
            if (discard)
                continue;
            omni_buf_reset(&c->text);
            omni_buf_addf(&c->text, "PROTOCOL%cundecodable reply: %s", 0, why);
            memset(ev, 0, sizeof *ev);
            ev->type = OMNI_EVENT_ERROR;
            ev->id = id;
            ev->body = "";
            ev->code = c->text.data;
            ev->message = c->text.data + strlen("PROTOCOL") + 1;
            ev->status = omni_err_status(OMNI_E_PROTOCOL);
            return 1;
        }
        if (to_event(c, &m, ev))
            return 1;
    }
}

/* Free what the previous event borrowed from the held list. */
static void release_held(omni_client *c)
{
    free_held(c->held_done);
    c->held_done = NULL;
}

/* The next event from the socket, not the held list: 1, 0, -1. */
static int next_raw(omni_client *c, struct omni_event *ev)
{
    for (;;) {
        int rc = parse(c, ev);
        if (rc)
            return rc;
        if (c->lost) {
            if (!c->err[0])
                seterr(c, "connection to the broker is lost");
            return -1;
        }
        if (fill(c) == 0)
            return 0;
    }
}

int omni_next(omni_client *c, struct omni_event *ev)
{
    release_held(c);
    if (c->held) {
        struct held *h = c->held;
        c->held = h->next;
        if (!c->held)
            c->held_tail = NULL;
        h->next = NULL;
        c->held_done = h;
        *ev = h->ev;
        return 1;
    }
    return next_raw(c, ev);
}

/* Wait for an event up to timeout_ms; from the held list when held. */
static int wait_event(omni_client *c, struct omni_event *ev, int timeout_ms,
                      bool held)
{
    int64_t end = timeout_ms >= 0 ? omni_now_ms() + timeout_ms : -1;
    for (;;) {
        int rc = held ? omni_next(c, ev) : next_raw(c, ev);
        if (rc)
            return rc;
        if (omni_want_write(c))
            omni_flush(c);
        int wait = -1;
        if (end >= 0) {
            int64_t left = end - omni_now_ms();
            if (left <= 0)
                return 0;
            wait = left > 1000000 ? 1000000 : (int)left;
        }
        struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
        if (omni_want_write(c))
            pfd.events |= POLLOUT;
        if (poll(&pfd, 1, wait) < 0 && errno != EINTR) {
            seterr(c, "cannot wait for the broker: %s", strerror(errno));
            lose(c);
            return -1;
        }
    }
}

int omni_recv(omni_client *c, struct omni_event *ev, int timeout_ms)
{
    return wait_event(c, ev, timeout_ms, true);
}

/* Keep a copy of ev for a later omni_next (omni_call meets events of
 * other requests while it waits for its own). */
static void hold(omni_client *c, const struct omni_event *ev)
{
    size_t cl = ev->code ? strlen(ev->code) + 1 : 0;
    size_t ml = ev->message ? strlen(ev->message) + 1 : 0;
    struct held *h = omni_malloc(sizeof *h + ev->body_len + 1 + cl + ml);
    char *d = h->data;
    h->next = NULL;
    h->ev = *ev;
    memcpy(d, ev->body, ev->body_len);
    d[ev->body_len] = '\0';
    h->ev.body = d;
    d += ev->body_len + 1;
    if (cl) {
        memcpy(d, ev->code, cl);
        h->ev.code = d;
        d += cl;
    }
    if (ml) {
        memcpy(d, ev->message, ml);
        h->ev.message = d;
    }
    if (c->held_tail)
        c->held_tail->next = h;
    else
        c->held = h;
    c->held_tail = h;
}

int omni_call(omni_client *c, const struct omni_request *req,
              void (*on_chunk)(const void *p, size_t n, void *arg), void *arg,
              char **body, size_t *body_len, int *status)
{
    uint64_t id;
    if (status)
        *status = 0;
    if (omni_send(c, req, &id) < 0)
        return -1;
    struct omni_buf acc = OMNI_BUF_INIT;
    int64_t end =
        req->timeout_ms ? omni_now_ms() + req->timeout_ms + CALL_GRACE_MS : -1;
    for (;;) {
        struct omni_event ev;
        int wait = -1;
        if (end >= 0) {
            int64_t left = end - omni_now_ms();
            wait = left < 0 ? 0 : (int)left;
        }
        int rc = wait_event(c, &ev, wait, false);
        if (rc < 0)
            break;
        if (rc == 0) {
            /* The broker should have answered TIMEOUT by now; stop
             * waiting and let its late events be swallowed. */
            omni_cancel(c, id);
            struct slot *s = ids_find(c, id);
            if (s)
                s->discard = true;
            seterr(c, "TIMEOUT: no reply within %u ms", req->timeout_ms);
            if (status)
                *status = omni_err_status(OMNI_E_TIMEOUT);
            break;
        }
        if (ev.id != id) {
            hold(c, &ev);
            continue;
        }
        if (ev.type == OMNI_EVENT_ERROR) {
            seterr(c, "%s: %s", ev.code, ev.message);
            if (status)
                *status = ev.status;
            break;
        }
        omni_buf_add(&acc, ev.body, ev.body_len);
        if (ev.type == OMNI_EVENT_CHUNK) {
            if (on_chunk)
                on_chunk(ev.body, ev.body_len, arg);
            continue;
        }
        if (status)
            *status = 200;
        size_t n;
        char *p = omni_buf_detach(&acc, &n);
        if (body_len)
            *body_len = n;
        if (body)
            *body = p;
        else
            omni_free(p);
        return 0;
    }
    omni_buf_release(&acc);
    return -1;
}
