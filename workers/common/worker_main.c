/*
 * worker_main - a worker process's life: options, configuration,
 * logging, signals, the parent pipe, and the drain.
 *
 * omni_worker_main() parses -c FILE, -o key=value and -e ENDPOINT, loads
 * the configuration and runs one worker until it has drained.  Draining
 * (SIGTERM, SIGINT, EOF on $OMNI_PARENT_FD, omni_worker_stop) calls
 * def->shutdown, refuses new requests with UNAVAILABLE but keeps the
 * link so in-flight replies get out, and ends when nothing is in flight
 * or after broker.drain_ms (what is left then gets UNAVAILABLE).  A
 * second signal ends at once.  Start-up failures exit 1, usage errors 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_ev.h"
#include "omni_log.h"
#include "worker_int.h"

/* ipc:// beside the broker socket, as the broker binds it by default. */
static char *default_endpoint(void)
{
    const char *sock = omni_cfg_socket_path();
    const char *slash = strrchr(sock, '/');
    int dir = slash ? (int)(slash - sock) : 1;
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_addf(&b, "ipc://%.*s/workers.ipc", dir, slash ? sock : ".");
    return omni_buf_detach(&b, NULL);
}

struct omni_worker *omni_worker_new(const struct omni_worker_def *def,
                                    struct event_base *base,
                                    const char *endpoint,
                                    char err[OMNI_ERR_LEN])
{
    struct omni_worker *w = omni_calloc(1, sizeof *w);
    w->def = def;
    w->base = base;
    if (!base) {
        w->base = omni_ev_base_new();
        w->own_base = true;
    }
    w->capacity = def->capacity;
    if (!w->capacity) {
        /* Every service has its capacity.<service> row in omni_cfg.c;
         * a missing one aborts there (a programming error). */
        char key[96];
        snprintf(key, sizeof key, "capacity.%s", def->service);
        w->capacity = (uint32_t)omni_cfg_int(key);
    }
    w->hb_ms = (int)omni_cfg_int("broker.heartbeat_ms");
    w->liveness = (int)omni_cfg_int("broker.liveness");
    w->drain_ms = omni_cfg_int("broker.drain_ms");
    if (endpoint && *endpoint)
        w->endpoint = omni_strdup(endpoint);
    else if (*omni_cfg_str("broker.zmq_endpoint"))
        w->endpoint = omni_strdup(omni_cfg_str("broker.zmq_endpoint"));
    else
        w->endpoint = default_endpoint();
    w->parent_fd = -1;
    omni_htab_init(&w->reqs);
    omni_htab_init(&w->subs);
    omni_htab_init(&w->subs_by_lib);
    if (omni_wlink_init(w, err) < 0) {
        omni_worker_free(w);
        return NULL;
    }
    return w;
}

static void on_parent(evutil_socket_t fd, short what, void *arg)
{
    struct omni_worker *w = arg;
    char buf[256];
    (void)what;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0 || (n < 0 && (errno == EAGAIN || errno == EINTR)))
        return;
    omni_info("worker: the broker is gone (parent pipe closed); draining");
    event_del(w->parent_ev);
    omni_worker_stop(w);
}

/* Watch $OMNI_PARENT_FD, the pipe the broker holds open while it lives. */
static void watch_parent(struct omni_worker *w)
{
    const char *v = getenv("OMNI_PARENT_FD");
    if (!v || !*v)
        return;
    char *end;
    errno = 0;
    long fd = strtol(v, &end, 10);
    if (errno || *end || fd < 0 || fd > 65535 || fcntl((int)fd, F_GETFD) < 0) {
        omni_warn("worker: ignored bad OMNI_PARENT_FD '%.32s'", v);
        return;
    }
    w->parent_fd = (int)fd;
    evutil_make_socket_nonblocking(w->parent_fd);
    w->parent_ev =
        event_new(w->base, w->parent_fd, EV_READ | EV_PERSIST, on_parent, w);
    event_add(w->parent_ev, NULL);
}

int omni_worker_start(struct omni_worker *w, char err[OMNI_ERR_LEN])
{
    if (w->def->init && w->def->init(w) < 0) {
        snprintf(err, OMNI_ERR_LEN, "worker '%s' failed to start",
                 w->def->service);
        return -1;
    }
    watch_parent(w);
    if (omni_wlink_up(w, err) < 0)
        return -1;
    omni_wlink_start_tick(w);
    return 0;
}

int omni_worker_run(struct omni_worker *w)
{
    while (!w->done)
        if (event_base_loop(w->base, EVLOOP_ONCE) != 0)
            break;
    omni_wlink_close(w, true);
    return 0;
}

bool omni_worker_done(const struct omni_worker *w)
{
    return w->done;
}

void omni_worker_check_drained(struct omni_worker *w)
{
    if (w->draining && !w->reqs.n && !w->done) {
        omni_info("worker: drained");
        w->done = true;
    }
}

static void on_drain_timeout(evutil_socket_t fd, short what, void *arg)
{
    struct omni_worker *w = arg;
    (void)fd;
    (void)what;
    omni_warn("worker: drain time over with %zu requests in flight", w->reqs.n);
    omni_wreq_fail_all(w, OMNI_E_UNAVAILABLE,
                       "worker shut down before the request finished");
    w->done = true;
}

void omni_worker_stop(struct omni_worker *w)
{
    if (w->draining)
        return;
    w->draining = true;
    omni_info("worker: draining with %zu requests in flight", w->reqs.n);
    if (w->def->shutdown)
        w->def->shutdown(w);
    if (w->reqs.n) {
        struct timeval tv = {w->drain_ms / 1000, (w->drain_ms % 1000) * 1000};
        w->drain_ev = evtimer_new(w->base, on_drain_timeout, w);
        evtimer_add(w->drain_ev, &tv);
    }
    omni_worker_check_drained(w);
}

void omni_worker_free(struct omni_worker *w)
{
    if (!w)
        return;
    omni_wreq_abandon_all(w, "worker shutting down");
    omni_wsub_release(w);
    omni_wlink_release(w);
    if (w->drain_ev)
        event_free(w->drain_ev);
    if (w->parent_ev)
        event_free(w->parent_ev);
    omni_htab_release(&w->reqs);
    omni_htab_release(&w->subs);
    omni_htab_release(&w->subs_by_lib);
    /* The kind's events live on our base: they go before it does. */
    if (w->def->fini)
        w->def->fini(w);
    if (w->own_base)
        event_base_free(w->base);
    omni_free(w->endpoint);
    omni_free(w);
}

struct event_base *omni_worker_base(struct omni_worker *w)
{
    return w->base;
}

void omni_worker_set_data(struct omni_worker *w, void *data)
{
    w->data = data;
}

void *omni_worker_data(struct omni_worker *w)
{
    return w->data;
}

size_t omni_worker_in_flight(struct omni_worker *w)
{
    return w->reqs.n;
}

/* SIGTERM/SIGINT: drain; a second one: stop now. */
static void on_signal(evutil_socket_t sig, short what, void *arg)
{
    struct omni_worker *w = arg;
    (void)what;
    if (!w->draining) {
        omni_info("worker: signal %d; draining", (int)sig);
        omni_worker_stop(w);
        return;
    }
    omni_warn("worker: signal %d while draining; stopping now", (int)sig);
    omni_wreq_fail_all(w, OMNI_E_UNAVAILABLE,
                       "worker shut down before the request finished");
    w->done = true;
}

static void usage(const char *prog)
{
    fprintf(stderr,
            "usage: %s [-c FILE] [-o key=value]... [-e ENDPOINT]\n"
            "  -c FILE      config file (default: $OMNI_CONFIG)\n"
            "  -o key=value set one setting (highest precedence)\n"
            "  -e ENDPOINT  broker ZeroMQ endpoint "
            "(default: $OMNI_ZMQ_ENDPOINT)\n",
            prog);
}

/* Load the configuration: file, environment, then each -o. */
static int configure(const char *file, char **opts, int nopts)
{
    char err[OMNI_ERR_LEN];
    if (omni_cfg_load(file, err) != OMNI_OK) {
        omni_error("cannot load the configuration: %s", err);
        return -1;
    }
    for (int i = 0; i < nopts; i++) {
        if (omni_cfg_set(opts[i], NULL, err) != OMNI_OK) {
            omni_error("bad option -o '%.64s': %s", opts[i], err);
            return -1;
        }
    }
    int lvl = omni_log_level_parse(omni_cfg_str("log_level"));
    if (lvl >= 0)
        omni_log_set_level((enum omni_log_level)lvl);
    omni_log_set_json(strcmp(omni_cfg_str("log_format"), "text") != 0);
    return 0;
}

int omni_worker_main(int argc, char **argv, const struct omni_worker_def *def)
{
    const char *file = NULL, *endpoint = NULL;
    char **opts = omni_calloc((size_t)argc + 1, sizeof *opts);
    int nopts = 0, c;
    omni_log_init(argv[0]);
    while ((c = getopt(argc, argv, "c:o:e:h")) != -1) {
        switch (c) {
        case 'c': file = optarg; break;
        case 'o': opts[nopts++] = optarg; break;
        case 'e': endpoint = optarg; break;
        case 'h':
            usage(argv[0]);
            omni_free(opts);
            return 0;
        default:
            usage(argv[0]);
            omni_free(opts);
            return 2;
        }
    }
    if (optind < argc) {
        usage(argv[0]);
        omni_free(opts);
        return 2;
    }
    int rc = configure(file, opts, nopts);
    omni_free(opts);
    if (rc < 0) {
        omni_cfg_free();
        return 1;
    }
    signal(SIGPIPE, SIG_IGN);
    char err[OMNI_ERR_LEN];
    struct omni_worker *w = omni_worker_new(def, NULL, endpoint, err);
    if (!w) {
        omni_error("%s", err);
        omni_cfg_free();
        return 1;
    }
    struct event *sigs[2] = {
        evsignal_new(w->base, SIGTERM, on_signal, w),
        evsignal_new(w->base, SIGINT, on_signal, w),
    };
    event_add(sigs[0], NULL);
    event_add(sigs[1], NULL);
    int status = 1;
    if (omni_worker_start(w, err) < 0)
        omni_error("%s", err);
    else
        status = omni_worker_run(w);
    event_free(sigs[0]);
    event_free(sigs[1]);
    omni_worker_free(w);
    omni_cfg_free();
    return status;
}
