/*
 * omni-http - the OpenAI-compatible HTTP front, a client of the broker.
 *
 * Spawned by omni-broker (or run by hand) with OMNI_SOCKET, OMNI_CONFIG
 * and OMNI_PARENT_FD in the environment; listens on http_listen.
 * SIGTERM or SIGINT: stop accepting, finish what is in flight, exit 0.
 * EOF on OMNI_PARENT_FD (the broker is gone): exit 0 at once.  A bad
 * configuration or an address that cannot be bound exits 1.
 */
#include <errno.h>
#include <event2/event.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni_cfg.h"
#include "omni_ev.h"
#include "omni_log.h"
#include "server.h"

struct state {
    struct event_base *base;
    struct omni_http_server *server;
};

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct state *st = arg;
    (void)what;
    omni_info("got signal %d: draining", (int)sig);
    omni_http_server_drain(st->server);
}

/* The broker holds the other end of the pipe; EOF means it is gone. */
static void on_parent(evutil_socket_t fd, short what, void *arg)
{
    struct state *st = arg;
    (void)what;
    char buf[64];
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    omni_info("broker went away: exiting");
    event_base_loopbreak(st->base);
}

/* OMNI_PARENT_FD as a descriptor, or -1. */
static int parent_fd(void)
{
    const char *v = getenv("OMNI_PARENT_FD");
    if (!v || !*v)
        return -1;
    char *end;
    long fd = strtol(v, &end, 10);
    if (*end || fd < 0 || fd > 65535) {
        omni_warn("ignoring bad OMNI_PARENT_FD '%.16s'", v);
        return -1;
    }
    return (int)fd;
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    omni_log_init("omni-http");
    char err[OMNI_ERR_LEN];
    if (omni_cfg_load(NULL, err) != OMNI_OK)
        omni_fatal("%s", err);
    int level = omni_log_level_parse(omni_cfg_str("log_level"));
    if (level >= 0)
        omni_log_set_level((enum omni_log_level)level);
    omni_log_set_json(strcmp(omni_cfg_str("log_format"), "text") != 0);

    const char *listen = omni_cfg_str("http_listen");
    if (!*listen) {
        omni_info("http_listen is empty: the HTTP front is disabled");
        omni_cfg_free();
        return 0;
    }
    signal(SIGPIPE, SIG_IGN);
    struct state st = {omni_ev_base_new(), NULL};
    if (!st.base)
        omni_fatal("cannot create the event loop");
    struct omni_http_opts opts = {
        .listen = listen,
        .client_keys = omni_cfg_str("client_keys"),
        .max_body = (size_t)omni_cfg_int("http.max_body"),
        .socket = omni_cfg_socket_path(),
    };
    st.server = omni_http_server_new(st.base, &opts, err);
    if (!st.server)
        omni_fatal("%s", err);

    struct event *term = evsignal_new(st.base, SIGTERM, on_signal, &st);
    struct event *intr = evsignal_new(st.base, SIGINT, on_signal, &st);
    event_add(term, NULL);
    event_add(intr, NULL);
    struct event *parent = NULL;
    int pfd = parent_fd();
    if (pfd >= 0) {
        parent = event_new(st.base, pfd, EV_READ | EV_PERSIST, on_parent, &st);
        event_add(parent, NULL);
    }

    event_base_dispatch(st.base);

    omni_http_server_free(st.server);
    event_free(term);
    event_free(intr);
    if (parent)
        event_free(parent);
    event_base_free(st.base);
    omni_info("stopped");
    omni_cfg_free();
    return 0;
}
