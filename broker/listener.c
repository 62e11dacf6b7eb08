/*
 * listener - the broker's Unix socket and its client connections.
 *
 * The socket lives in a directory of mode 0750 that we create (or own
 * already): access to the directory is access to the broker, so the
 * socket itself is never chmod'ed after bind.  A stale socket left by a
 * dead broker is removed only when nothing listens on it.  Each
 * connection is a non-blocking bufferevent with its peer's credentials
 * (SO_PEERCRED).  A connection ends in two steps: omni_conn_close()
 * cancels its requests and stops reading, and the connection is freed
 * by the reap event once its output is flushed, never inside one of its
 * own callbacks.
 */
#include "broker.h"

#include <errno.h>
#include <event2/buffer.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"

/* Reading pauses while this much output waits for a slow reader. */
#define OUT_HIGH        (8u * 1024 * 1024)
#define FLUSH_TIMEOUT_S 5
#define MAX_UIDS        16

struct omni_listener {
    struct omni_broker *b;
    int fd;
    char *path;
    struct event *accept_ev, *reap_ev;
    struct omni_conn *head;
    size_t clients, max_clients, max_frame;
    uint64_t serial, accepted, refused;
    int64_t refuse_logged;
    struct {
        uid_t uid;
        uint64_t n;
    } uids[MAX_UIDS];
    size_t nuids;
};

/* The directory part of path in out ("." if none). */
static void dir_of(const char *path, char *out, size_t n)
{
    const char *slash = strrchr(path, '/');
    if (!slash)
        snprintf(out, n, ".");
    else if (slash == path)
        snprintf(out, n, "/");
    else
        snprintf(out, n, "%.*s", (int)(slash - path), path);
}

enum omni_err omni_listener_prepare_dir(const char *path,
                                        char err[OMNI_ERR_LEN])
{
    char dir[sizeof((struct sockaddr_un *)0)->sun_path + 1];
    if (strlen(path) >= sizeof((struct sockaddr_un *)0)->sun_path) {
        snprintf(err, OMNI_ERR_LEN, "socket path '%.64s...' is too long", path);
        return OMNI_E_CONFIG;
    }
    dir_of(path, dir, sizeof dir);
    /* Missing parents first (0755, like mkdir -p), then the socket's own
     * directory, which only we may write to. */
    for (char *slash = strchr(dir + 1, '/'); slash;
         slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        int rc = mkdir(dir, 0755);
        int e = errno;
        *slash = '/';
        if (rc != 0 && e != EEXIST) {
            snprintf(err, OMNI_ERR_LEN, "cannot create '%.*s': %s",
                     (int)(slash - dir), dir, strerror(e));
            return OMNI_E_IO;
        }
    }
    if (mkdir(dir, 0750) != 0 && errno != EEXIST) {
        snprintf(err, OMNI_ERR_LEN, "cannot create '%s': %s", dir,
                 strerror(errno));
        return OMNI_E_IO;
    }
    struct stat st;
    if (lstat(dir, &st) != 0) {
        snprintf(err, OMNI_ERR_LEN, "cannot stat '%s': %s", dir,
                 strerror(errno));
        return OMNI_E_IO;
    }
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, OMNI_ERR_LEN, "cannot use '%s': not a directory", dir);
        return OMNI_E_IO;
    }
    if (st.st_uid != geteuid()) {
        snprintf(err, OMNI_ERR_LEN,
                 "cannot use '%s': owned by uid %u, not by us (uid %u)", dir,
                 (unsigned)st.st_uid, (unsigned)geteuid());
        return OMNI_E_IO;
    }
    if (st.st_mode & (S_IWGRP | S_IWOTH)) {
        snprintf(err, OMNI_ERR_LEN,
                 "cannot use '%s': mode %03o lets others replace the socket",
                 dir, (unsigned)(st.st_mode & 0777));
        return OMNI_E_IO;
    }
    return OMNI_OK;
}

enum omni_err omni_listener_open(const char *path, int *fd,
                                 char err[OMNI_ERR_LEN])
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof sa.sun_path) {
        snprintf(err, OMNI_ERR_LEN, "socket path '%.64s...' is too long", path);
        return OMNI_E_CONFIG;
    }
    memcpy(sa.sun_path, path, strlen(path) + 1);
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) {
            snprintf(err, OMNI_ERR_LEN,
                     "cannot bind '%s': exists and is "
                     "not a socket",
                     path);
            return OMNI_E_IO;
        }
        /* Remove the socket only if nobody answers on it. */
        int probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        int rc = connect(probe, (struct sockaddr *)&sa, sizeof sa);
        int e = errno;
        close(probe);
        if (rc == 0) {
            snprintf(err, OMNI_ERR_LEN,
                     "cannot bind '%s': a broker is "
                     "already listening on it",
                     path);
            return OMNI_E_IO;
        }
        if (e != ECONNREFUSED) {
            snprintf(err, OMNI_ERR_LEN, "cannot probe '%s': %s", path,
                     strerror(e));
            return OMNI_E_IO;
        }
        omni_info("removing stale socket '%s'", path);
        unlink(path);
    }
    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        listen(s, 1024) != 0) {
        snprintf(err, OMNI_ERR_LEN, "cannot bind '%s': %s", path,
                 strerror(errno));
        if (s >= 0)
            close(s);
        return OMNI_E_IO;
    }
    *fd = s;
    return OMNI_OK;
}

/* ------------------------------------------------------------------ */
/* Connections.                                                        */

static void reap(evutil_socket_t fd, short what, void *arg)
{
    struct omni_listener *l = arg;
    (void)fd;
    (void)what;
    struct omni_conn *c = l->head;
    while (c) {
        struct omni_conn *next = c->next;
        if (c->state == OMNI_CONN_DEAD) {
            if (c->prev)
                c->prev->next = c->next;
            else
                l->head = c->next;
            if (c->next)
                c->next->prev = c->prev;
            bufferevent_free(c->bev);
            omni_debug("client %llu closed", (unsigned long long)c->serial);
            omni_free(c);
            l->clients--;
        }
        c = next;
    }
}

static void mark_dead(struct omni_conn *c)
{
    c->state = OMNI_CONN_DEAD;
    bufferevent_disable(c->bev, EV_READ | EV_WRITE);
    event_active(c->l->reap_ev, EV_READ, 0);
}

void omni_conn_close(struct omni_conn *c, bool flush)
{
    if (c->state == OMNI_CONN_DEAD)
        return;
    if (c->rc) {
        struct omni_rclient *rc = c->rc;
        c->rc = NULL;
        omni_router_client_gone(c->b->router, rc);
    }
    bufferevent_disable(c->bev, EV_READ);
    if (flush && evbuffer_get_length(bufferevent_get_output(c->bev))) {
        c->state = OMNI_CONN_FLUSHING;
        struct timeval tv = {FLUSH_TIMEOUT_S, 0};
        bufferevent_set_timeouts(c->bev, NULL, &tv);
        return;
    }
    mark_dead(c);
}

static void on_read(struct bufferevent *bev, void *arg)
{
    struct omni_conn *c = arg;
    (void)bev;
    if (c->state != OMNI_CONN_OPEN)
        return;
    omni_client_read(c);
    if (c->state == OMNI_CONN_OPEN &&
        evbuffer_get_length(bufferevent_get_output(c->bev)) > OUT_HIGH) {
        /* A client that does not read its replies sends no more
         * requests until it catches up. */
        c->throttled = true;
        bufferevent_disable(c->bev, EV_READ);
    }
}

static void on_write(struct bufferevent *bev, void *arg)
{
    struct omni_conn *c = arg;
    size_t left = evbuffer_get_length(bufferevent_get_output(bev));
    if (c->state == OMNI_CONN_FLUSHING && left == 0) {
        mark_dead(c);
        return;
    }
    if (c->state == OMNI_CONN_OPEN && c->throttled && left <= OUT_HIGH / 2) {
        c->throttled = false;
        bufferevent_enable(c->bev, EV_READ);
        /* Frames may already wait in the input buffer. */
        omni_client_read(c);
    }
}

static void on_event(struct bufferevent *bev, short what, void *arg)
{
    struct omni_conn *c = arg;
    (void)bev;
    if (what & BEV_EVENT_ERROR)
        omni_debug("client %llu: %s", (unsigned long long)c->serial,
                   evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    omni_conn_close(c, false);
}

static void count_uid(struct omni_listener *l, uid_t uid)
{
    for (size_t i = 0; i < l->nuids; i++)
        if (l->uids[i].uid == uid) {
            l->uids[i].n++;
            return;
        }
    if (l->nuids < MAX_UIDS) {
        l->uids[l->nuids].uid = uid;
        l->uids[l->nuids++].n = 1;
    }
}

/* Over max_clients: tell the peer why, then close. */
static void refuse(struct omni_listener *l, int fd)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_msg_encode_error(&b, 0, OMNI_E_UNAVAILABLE, 1000,
                          "too many clients (%zu)", l->max_clients);
    ssize_t n = send(fd, b.data, b.len, MSG_DONTWAIT | MSG_NOSIGNAL);
    (void)n;
    omni_buf_release(&b);
    close(fd);
    l->refused++;
    int64_t now = omni_now_ms();
    if (now - l->refuse_logged >= 10000) {
        omni_warn("refusing clients: %zu connected (broker.max_clients); "
                  "%llu refused so far",
                  l->clients, (unsigned long long)l->refused);
        l->refuse_logged = now;
    }
}

static void on_accept(evutil_socket_t lfd, short what, void *arg)
{
    struct omni_listener *l = arg;
    (void)what;
    for (int i = 0; i < 64; i++) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                omni_warn("cannot accept on '%s': %s", l->path,
                          strerror(errno));
            return;
        }
        if (l->clients >= l->max_clients) {
            refuse(l, fd);
            continue;
        }
        struct ucred cr = {0, 0, 0};
        socklen_t len = sizeof cr;
        getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len);
        struct omni_conn *c = omni_calloc(1, sizeof *c);
        c->l = l;
        c->b = l->b;
        c->serial = ++l->serial;
        c->pid = cr.pid;
        c->uid = cr.uid;
        c->gid = cr.gid;
        c->bev = bufferevent_socket_new(l->b->base, fd, BEV_OPT_CLOSE_ON_FREE);
        c->rc = omni_router_client_new(l->b->router, c);
        bufferevent_setcb(c->bev, on_read, on_write, on_event, c);
        bufferevent_setwatermark(c->bev, EV_WRITE, OUT_HIGH / 2, 0);
        bufferevent_enable(c->bev, EV_READ | EV_WRITE);
        c->next = l->head;
        if (l->head)
            l->head->prev = c;
        l->head = c;
        l->clients++;
        l->accepted++;
        count_uid(l, cr.uid);
        omni_debug("client %llu connected: pid %d uid %u gid %u",
                   (unsigned long long)c->serial, (int)cr.pid, (unsigned)cr.uid,
                   (unsigned)cr.gid);
        if (l->b->sup && cr.pid)
            omni_supervisor_started(l->b->sup, cr.pid);
    }
}

struct omni_listener *omni_listener_new(struct omni_broker *b, int fd,
                                        const char *path, size_t max_clients,
                                        size_t max_frame)
{
    struct omni_listener *l = omni_calloc(1, sizeof *l);
    l->b = b;
    l->fd = fd;
    l->path = omni_strdup(path);
    l->max_clients = max_clients;
    l->max_frame = max_frame;
    l->accept_ev = event_new(b->base, fd, EV_READ | EV_PERSIST, on_accept, l);
    l->reap_ev = event_new(b->base, -1, 0, reap, l);
    event_add(l->accept_ev, NULL);
    return l;
}

void omni_listener_stop(struct omni_listener *l)
{
    if (l->fd < 0)
        return;
    event_del(l->accept_ev);
    /* Close the socket so that new clients are refused at once rather
     * than left waiting in the backlog; the file goes at exit. */
    close(l->fd);
    l->fd = -1;
}

void omni_listener_close_all(struct omni_listener *l)
{
    for (struct omni_conn *c = l->head; c; c = c->next)
        omni_conn_close(c, true);
}

void omni_listener_free(struct omni_listener *l)
{
    if (!l)
        return;
    omni_listener_stop(l);
    for (struct omni_conn *c = l->head; c; c = c->next) {
        if (c->rc) {
            omni_router_client_gone(c->b->router, c->rc);
            c->rc = NULL;
        }
        c->state = OMNI_CONN_DEAD;
    }
    reap(-1, 0, l);
    event_free(l->accept_ev);
    event_free(l->reap_ev);
    unlink(l->path);
    omni_free(l->path);
    omni_free(l);
}

size_t omni_listener_clients(const struct omni_listener *l)
{
    return l->clients;
}

uint64_t omni_listener_accepted(const struct omni_listener *l)
{
    return l->accepted;
}

size_t omni_listener_max_frame(const struct omni_listener *l)
{
    return l->max_frame;
}

void omni_listener_peers(const struct omni_listener *l, struct omni_buf *out)
{
    for (size_t i = 0; i < l->nuids; i++)
        omni_buf_addf(out, "%s\"%u\":%llu", i ? "," : "",
                      (unsigned)l->uids[i].uid,
                      (unsigned long long)l->uids[i].n);
}
