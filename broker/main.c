/*
 * main - omni-broker: options, start-up, the event loop, the drain.
 *
 *   omni-broker [-c FILE] [-o key=value]... [--print-config] [-v]
 *
 * Start-up failures (bad configuration, a socket we may not use) are
 * fatal and exit 1.  On SIGTERM or SIGINT the broker drains: it stops
 * accepting connections and refuses new requests (UNAVAILABLE), lets
 * the requests in flight finish within broker.drain_ms, answers any
 * left with UNAVAILABLE, sends DISCONNECT to the workers, stops its
 * children (SIGTERM, SIGKILL after 2 s), flushes the replies, removes
 * the socket and exits 0.  A second signal skips the wait.
 */
#include "broker.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_ev.h"
#include "omni_log.h"
#include "omni_time.h"
#include "server.h"

#define EXIT_FLUSH_MS 1000
#define EXIT_POLL_MS  20

struct opts {
    const char *config;
    char **sets; /* "key=value" */
    size_t nsets;
    bool print;
    bool verbose;
};

/* The process's shutdown state (one broker per process). */
static struct life {
    struct omni_broker *b;
    struct omni_http_server *http; /* http.mode=broker */
    bool http_drained;             /* its replies are written */
    struct event *drain_timer, *finish_ev, *exit_timer;
    bool finishing;
    int64_t exit_by;
} life;

static void usage(FILE *out)
{
    fprintf(out, "usage: omni-broker [-c FILE] [-o key=value]... "
                 "[--print-config] [-v]\n"
                 "  -c FILE          configuration file (else $OMNI_CONFIG)\n"
                 "  -o key=value     set a configuration key (repeatable)\n"
                 "  --print-config   print every setting and exit\n"
                 "  -v               log at debug level\n");
}

static int parse(int argc, char **argv, struct opts *o)
{
    static const struct option longs[] = {
        {"config", required_argument, NULL, 'c'},
        {"print-config", no_argument, NULL, 'P'},
        {"verbose", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    int c;
    while ((c = getopt_long(argc, argv, "c:o:vh", longs, NULL)) != -1) {
        switch (c) {
        case 'c': o->config = optarg; break;
        case 'o':
            o->sets = omni_realloc(o->sets, (o->nsets + 1) * sizeof *o->sets);
            o->sets[o->nsets++] = optarg;
            break;
        case 'P': o->print = true; break;
        case 'v': o->verbose = true; break;
        case 'h': usage(stdout); exit(0);
        default: usage(stderr); return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "omni-broker: unexpected argument '%s'\n",
                argv[optind]);
        usage(stderr);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ */
/* Drain and exit.                                                     */

static void on_exit_poll(evutil_socket_t fd, short what, void *arg)
{
    struct omni_broker *b = arg;
    (void)fd;
    (void)what;
    if ((omni_listener_clients(b->listener) == 0 &&
         (!life.http || life.http_drained)) ||
        omni_now_ms() >= life.exit_by) {
        event_base_loopexit(b->base, NULL);
        return;
    }
    struct timeval tv = {0, EXIT_POLL_MS * 1000};
    evtimer_add(life.exit_timer, &tv);
}

/* Every child is gone: flush the replies, then leave the loop. */
static void children_gone(void *arg)
{
    struct omni_broker *b = arg;
    omni_listener_close_all(b->listener);
    life.exit_by = omni_now_ms() + EXIT_FLUSH_MS;
    life.exit_timer = evtimer_new(b->base, on_exit_poll, b);
    struct timeval tv = {0, 0};
    evtimer_add(life.exit_timer, &tv);
}

static void finish(evutil_socket_t fd, short what, void *arg)
{
    struct omni_broker *b = arg;
    (void)fd;
    (void)what;
    if (life.finishing)
        return;
    life.finishing = true;
    evtimer_del(life.drain_timer);
    size_t left = omni_router_in_flight(b->router);
    if (left)
        omni_warn("drain: %zu requests still in flight: answering them "
                  "UNAVAILABLE",
                  left);
    omni_router_abort(b->router, "broker is shutting down");
    omni_workers_disconnect_all(b->workers);
    omni_info("drain: stopping workers");
    omni_supervisor_stop(b->sup, children_gone, b);
}

/* The embedded HTTP front answered its last request and wrote every
 * reply; the broker's own drain decides when to stop. */
static void on_http_drained(void *arg)
{
    (void)arg;
    life.http_drained = true;
}

/* Router op: draining and idle.  Called from deep inside the router, so
 * the work is deferred to the loop. */
static void on_drained(void *arg)
{
    (void)arg;
    if (life.finish_ev)
        event_active(life.finish_ev, EV_READ, 0);
}

static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct omni_broker *b = arg;
    (void)what;
    if (b->draining) {
        omni_info("signal %d while draining: stopping now", (int)sig);
        event_active(life.finish_ev, EV_READ, 0);
        return;
    }
    long ms = omni_cfg_int("broker.drain_ms");
    omni_info("signal %d: draining %zu requests (up to %ld ms)", (int)sig,
              omni_router_in_flight(b->router), ms);
    b->draining = true;
    if (life.http)
        omni_http_server_drain(life.http);
    omni_listener_stop(b->listener);
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(life.drain_timer, &tv);
    omni_router_drain(b->router);
}

/* ------------------------------------------------------------------ */
/* Start-up.                                                           */

/* path made absolute (relative to the working directory). */
static char *absolute(const char *path)
{
    struct omni_buf b = OMNI_BUF_INIT;
    if (path[0] != '/') {
        char cwd[PATH_MAX];
        if (getcwd(cwd, sizeof cwd))
            omni_buf_addf(&b, "%s/", cwd);
    }
    omni_buf_adds(&b, path);
    return omni_buf_detach(&b, NULL);
}

/* The directory holding this executable. */
static char *exe_dir(void)
{
    char p[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", p, sizeof p - 1);
    if (n <= 0)
        return omni_strdup(".");
    p[n] = '\0';
    char *slash = strrchr(p, '/');
    if (slash && slash != p)
        *slash = '\0';
    return omni_strdup(p);
}

static void log_setup(const struct opts *o)
{
    int lvl = omni_log_level_parse(omni_cfg_str("log_level"));
    if (lvl >= 0)
        omni_log_set_level((enum omni_log_level)lvl);
    if (o->verbose)
        omni_log_set_level(OMNI_LOG_DEBUG);
    omni_log_set_json(strcmp(omni_cfg_str("log_format"), "text") != 0);
}

static int run(const struct opts *o)
{
    char err[OMNI_ERR_LEN];
    char *sock = absolute(omni_cfg_socket_path());
    char *cfgpath = omni_cfg_path() ? absolute(omni_cfg_path()) : NULL;
    char *wdir = *omni_cfg_str("worker_dir")
                     ? omni_strdup(omni_cfg_str("worker_dir"))
                     : exe_dir();
    struct omni_buf ep = OMNI_BUF_INIT;
    if (*omni_cfg_str("broker.zmq_endpoint")) {
        omni_buf_adds(&ep, omni_cfg_str("broker.zmq_endpoint"));
    } else {
        const char *slash = strrchr(sock, '/');
        omni_buf_addf(&ep, "ipc://%.*s/workers.ipc", (int)(slash - sock), sock);
    }
    char **wargs = omni_calloc(2 * o->nsets + 1, sizeof *wargs);
    for (size_t i = 0; i < o->nsets; i++) {
        wargs[2 * i] = "-o";
        wargs[2 * i + 1] = o->sets[i];
    }
    struct omni_broker b = {.started_ms = omni_now_ms()};
    int fd = -1, status = 1;
    life.b = &b;
    const char *mode = omni_cfg_str("http.mode");
    if (strcmp(mode, "broker") && strcmp(mode, "process")) {
        omni_error("http.mode '%.32s': want broker or process", mode);
        goto out;
    }
    if (omni_listener_prepare_dir(sock, err) != OMNI_OK ||
        omni_listener_open(sock, &fd, err) != OMNI_OK) {
        omni_error("%s", err);
        goto out;
    }
    b.base = omni_ev_base_new();
    struct omni_router_cfg rcfg = {
        .services = omni_cfg_str("services"),
        .queue_max = (size_t)omni_cfg_int("broker.queue_max"),
        .default_timeout_ms = omni_cfg_int("broker.default_timeout_ms"),
    };
    struct omni_router_ops ops = {
        .to_client = omni_client_deliver_op,
        .to_worker = omni_workers_send_op,
        .worker_dead = omni_workers_dead_op,
        .drained = on_drained,
    };
    b.router = omni_router_new(&rcfg, &ops, &b);
    omni_router_attach(b.router, b.base);
    b.workers = omni_workers_new(&b, omni_cfg_int("broker.heartbeat_ms"),
                                 (int)omni_cfg_int("broker.liveness"));
    if (omni_workers_bind(b.workers, ep.data, err) != OMNI_OK) {
        omni_error("%s", err);
        close(fd);
        unlink(sock);
        goto out;
    }
    b.listener = omni_listener_new(&b, fd, sock,
                                   (size_t)omni_cfg_int("broker.max_clients"),
                                   (size_t)omni_cfg_int("broker.max_frame"));
    struct omni_sup_cfg scfg = {
        .worker_dir = wdir,
        .endpoint = ep.data,
        .socket = sock,
        .config = cfgpath,
        .http_listen = omni_cfg_str("http_listen"),
        .restart_min_ms = omni_cfg_int("broker.restart_min_ms"),
        .restart_max_ms = omni_cfg_int("broker.restart_max_ms"),
        .worker_args = wargs,
    };
    if (*scfg.http_listen && !strcmp(mode, "broker")) {
        scfg.http_listen = "";
        struct omni_http_opts hopts = {
            .listen = omni_cfg_str("http_listen"),
            .client_keys = omni_cfg_str("client_keys"),
            .max_body = (size_t)omni_cfg_int("http.max_body"),
            .socket = sock,
            .drained = on_http_drained,
        };
        life.http = omni_http_server_new(b.base, &hopts, err);
        if (!life.http) {
            omni_error("%s", err);
            goto out;
        }
    }
    b.sup = omni_supervisor_new(&b, &scfg);
    life.drain_timer = evtimer_new(b.base, finish, &b);
    life.finish_ev = event_new(b.base, -1, 0, finish, &b);
    struct event *sigterm = evsignal_new(b.base, SIGTERM, on_signal, &b);
    struct event *sigint = evsignal_new(b.base, SIGINT, on_signal, &b);
    event_add(sigterm, NULL);
    event_add(sigint, NULL);
    omni_info("listening on '%s', workers on '%s', services '%s'", sock,
              ep.data, rcfg.services);
    omni_supervisor_start(b.sup);
    event_base_dispatch(b.base);
    /* Freeing the signal events restores the default actions: a second
     * SIGTERM arriving now would kill us with the drain already done. */
    sigset_t quiet;
    sigemptyset(&quiet);
    sigaddset(&quiet, SIGTERM);
    sigaddset(&quiet, SIGINT);
    sigprocmask(SIG_BLOCK, &quiet, NULL);
    omni_info("exiting");
    status = life.finishing ? 0 : 1;
    event_free(sigterm);
    event_free(sigint);
out:
    omni_http_server_free(life.http);
    omni_supervisor_free(b.sup);
    omni_listener_free(b.listener);
    omni_router_free(b.router);
    omni_workers_free(b.workers);
    if (life.drain_timer)
        event_free(life.drain_timer);
    if (life.finish_ev)
        event_free(life.finish_ev);
    if (life.exit_timer)
        event_free(life.exit_timer);
    if (b.base)
        event_base_free(b.base);
    omni_buf_release(&ep);
    omni_free(wargs);
    omni_free(wdir);
    omni_free(cfgpath);
    omni_free(sock);
    return status;
}

int main(int argc, char **argv)
{
    struct opts o = {0};
    char err[OMNI_ERR_LEN];
    omni_log_init(argv[0]);
    if (parse(argc, argv, &o) != 0)
        return 2;
    int status = 1;
    if (omni_cfg_load(o.config, err) != OMNI_OK) {
        omni_error("%s", err);
        goto out;
    }
    for (size_t i = 0; i < o.nsets; i++)
        if (omni_cfg_set(o.sets[i], NULL, err) != OMNI_OK) {
            omni_error("-o %s: %s", o.sets[i], err);
            goto out;
        }
    log_setup(&o);
    if (o.print) {
        omni_cfg_print(stdout);
        status = 0;
        goto out;
    }
    signal(SIGPIPE, SIG_IGN);
    status = run(&o);
out:
    omni_free(o.sets);
    omni_cfg_free();
    omni_redact_clear();
    return status;
}
