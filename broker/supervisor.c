/*
 * supervisor - the broker's children: workers and the HTTP front.
 *
 * Postfix master style.  For each configured service we keep
 * workers.<svc> processes of <worker_dir>/omni-<svc> running, and one
 * omni-http when http_listen is set and the binary exists.  A child gets
 * the broker's environment plus OMNI_ZMQ_ENDPOINT, OMNI_SOCKET,
 * OMNI_CONFIG and OMNI_PARENT_FD, the read end of a pipe whose write end
 * only we hold: it sees EOF when the broker dies.  Children are reaped
 * from the SIGCHLD event (libevent turns the signal into a self-pipe
 * byte); a dead worker's requests get WORKER_LOST at once.  Restarts
 * back off from restart_min_ms, doubling to restart_max_ms; a kind whose
 * children die before they are started (READY, or connected for the
 * HTTP front) three times in a row is throttled to restart_max_ms.
 */
#include "broker.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_time.h"

extern char **environ;

#define KILL_AFTER_MS 2000
/* The HTTP front sends no READY: living this long counts as started
 * even if it has not connected yet. */
#define HTTP_STARTED_MS    2000
#define MISSING_RECHECK_MS 1000

struct kind {
    char *name; /* "echo", "http" */
    char *path; /* <worker_dir>/omni-<name> */
    char *prog; /* omni-<name>, for the log */
    bool worker;
    bool missing;
    long want;                /* processes to keep */
    struct omni_service *svc; /* NULL for the HTTP front */
    struct omni_sup_policy pol;
};

struct child {
    struct omni_supervisor *s;
    struct kind *k;
    pid_t pid; /* 0: not running */
    int pipe_w;
    bool started, respawn;
    int64_t born;
    struct event *timer;
};

struct omni_supervisor {
    struct omni_broker *b;
    struct omni_sup_cfg cfg;
    struct kind *kinds;
    size_t nkinds;
    struct child *kids;
    size_t nkids;
    size_t running;
    struct event *sigchld, *kill_timer;
    bool stopping;
    void (*done)(void *);
    void *done_arg;
};

int64_t omni_supervisor_delay(struct omni_sup_policy *p, bool started,
                              int64_t lived_ms, int64_t min_ms, int64_t max_ms,
                              bool *throttle)
{
    *throttle = false;
    if (started) {
        p->fails = 0;
        /* A long, healthy life earns a quick restart. */
        if (lived_ms >= max_ms)
            p->backoff = 0;
    } else if (++p->fails >= OMNI_SUP_THROTTLE_AFTER) {
        *throttle = true;
        p->backoff = max_ms;
        return max_ms;
    }
    int64_t d = p->backoff ? p->backoff : min_ms;
    if (d > max_ms)
        d = max_ms;
    p->backoff = d * 2 > max_ms ? max_ms : d * 2;
    return d;
}

/* workers.<name>: a row for the known kinds, else the environment. */
static long wanted(const char *name)
{
    static const char *const known[] = {"echo", "llm", "rag", "mcp"};
    char key[96];
    for (size_t i = 0; i < sizeof known / sizeof *known; i++)
        if (strcmp(name, known[i]) == 0) {
            snprintf(key, sizeof key, "workers.%s", name);
            return omni_cfg_int(key);
        }
    snprintf(key, sizeof key, "OMNI_WORKERS_");
    size_t n = strlen(key);
    for (size_t i = 0; name[i] && n + 1 < sizeof key; i++)
        key[n++] = name[i] == '-' ? '_' : (char)toupper((unsigned char)name[i]);
    key[n] = '\0';
    const char *v = getenv(key);
    if (!v)
        return 1;
    char *end;
    long want = strtol(v, &end, 10);
    return *end || want < 0 || want > 64 ? 1 : want;
}

static void on_restart(evutil_socket_t fd, short what, void *arg);

static void schedule(struct child *ch, int64_t ms)
{
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    evtimer_add(ch->timer, &tv);
}

/* The environment of a child: ours, less the variables we set. */
static char **child_env(struct omni_supervisor *s, int fd)
{
    static const char *const ours[] = {"OMNI_ZMQ_ENDPOINT=", "OMNI_SOCKET=",
                                       "OMNI_CONFIG=", "OMNI_PARENT_FD="};
    size_t n = 0;
    while (environ[n])
        n++;
    char **env = omni_calloc(n + 5, sizeof *env);
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        bool skip = false;
        for (size_t j = 0; j < 4; j++)
            skip |= strncmp(environ[i], ours[j], strlen(ours[j])) == 0;
        if (!skip)
            env[k++] = omni_strdup(environ[i]);
    }
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_addf(&b, "OMNI_ZMQ_ENDPOINT=%s", s->cfg.endpoint);
    env[k++] = omni_buf_detach(&b, NULL);
    omni_buf_addf(&b, "OMNI_SOCKET=%s", s->cfg.socket);
    env[k++] = omni_buf_detach(&b, NULL);
    if (s->cfg.config) {
        omni_buf_addf(&b, "OMNI_CONFIG=%s", s->cfg.config);
        env[k++] = omni_buf_detach(&b, NULL);
    }
    omni_buf_addf(&b, "OMNI_PARENT_FD=%d", fd);
    env[k++] = omni_buf_detach(&b, NULL);
    return env;
}

static void free_strv(char **v)
{
    for (size_t i = 0; v[i]; i++)
        omni_free(v[i]);
    omni_free(v);
}

/* Start ch's process (or note why we cannot). */
static void spawn(struct child *ch)
{
    struct omni_supervisor *s = ch->s;
    struct kind *k = ch->k;
    if (s->stopping)
        return;
    if (access(k->path, X_OK) != 0) {
        if (!k->missing)
            omni_error("cannot run '%s': %s; %s stays not ready", k->path,
                       strerror(errno), k->worker ? k->name : "HTTP front");
        k->missing = true;
        if (k->svc)
            snprintf(k->svc->why, sizeof k->svc->why, "no binary '%s'",
                     k->path);
        schedule(ch, s->cfg.restart_max_ms > MISSING_RECHECK_MS
                         ? s->cfg.restart_max_ms
                         : MISSING_RECHECK_MS);
        return;
    }
    if (k->missing) {
        omni_info("found '%s'", k->path);
        k->missing = false;
        if (k->svc)
            k->svc->why[0] = '\0';
    }
    int p[2];
    if (pipe2(p, O_CLOEXEC) != 0) {
        omni_error("cannot start '%s': pipe: %s", k->path, strerror(errno));
        schedule(ch, s->cfg.restart_max_ms);
        return;
    }
    /* The read end becomes a fixed fd in the child; dup2 clears its
     * close-on-exec flag there. */
    int target = p[0] == 3 ? 4 : 3;
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t at;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, p[0], target);
    posix_spawnattr_init(&at);
    sigset_t none, def;
    sigemptyset(&none);
    sigemptyset(&def);
    sigaddset(&def, SIGTERM);
    sigaddset(&def, SIGINT);
    sigaddset(&def, SIGCHLD);
    sigaddset(&def, SIGPIPE);
    sigaddset(&def, SIGHUP);
    posix_spawnattr_setsigmask(&at, &none);
    posix_spawnattr_setsigdefault(&at, &def);
    posix_spawnattr_setflags(&at,
                             POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    size_t nargs = 0;
    while (k->worker && s->cfg.worker_args && s->cfg.worker_args[nargs])
        nargs++;
    char **argv = omni_calloc(nargs + 2, sizeof *argv);
    argv[0] = k->path;
    for (size_t i = 0; i < nargs; i++)
        argv[i + 1] = s->cfg.worker_args[i];
    char **env = child_env(s, target);
    pid_t pid;
    int rc = posix_spawn(&pid, k->path, &fa, &at, argv, env);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&at);
    omni_free(argv);
    free_strv(env);
    close(p[0]);
    if (rc != 0) {
        close(p[1]);
        omni_error("cannot start '%s': %s", k->path, strerror(rc));
        bool throttle;
        schedule(ch,
                 omni_supervisor_delay(&k->pol, false, 0, s->cfg.restart_min_ms,
                                       s->cfg.restart_max_ms, &throttle));
        return;
    }
    ch->pid = pid;
    ch->pipe_w = p[1];
    ch->started = false;
    ch->born = omni_now_ms();
    s->running++;
    if (k->svc)
        k->svc->children++;
    omni_info("started %s (pid %d)", k->prog, (int)pid);
}

static void on_restart(evutil_socket_t fd, short what, void *arg)
{
    struct child *ch = arg;
    (void)fd;
    (void)what;
    if (ch->respawn && ch->k->svc)
        ch->k->svc->restarts++;
    if (ch->respawn)
        omni_info("restarting %s", ch->k->prog);
    ch->respawn = false;
    spawn(ch);
}

/* What a wait status says, for the log. */
static void describe(int st, char *out, size_t n)
{
    if (WIFEXITED(st))
        snprintf(out, n, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(out, n, "killed by signal %d", WTERMSIG(st));
    else
        snprintf(out, n, "ended (status 0x%x)", (unsigned)st);
}

static void reaped(struct omni_supervisor *s, pid_t pid, int st)
{
    struct child *ch = NULL;
    for (size_t i = 0; i < s->nkids && !ch; i++)
        if (s->kids[i].pid == pid)
            ch = &s->kids[i];
    if (!ch)
        return;
    struct kind *k = ch->k;
    char why[64];
    describe(st, why, sizeof why);
    close(ch->pipe_w);
    ch->pipe_w = -1;
    ch->pid = 0;
    s->running--;
    if (k->svc)
        k->svc->children--;
    if (k->worker && s->b->workers) {
        struct omni_bworker *w = omni_workers_by_pid(s->b->workers, pid);
        if (w)
            omni_workers_exited(s->b->workers, w, why);
    }
    if (s->stopping) {
        omni_info("%s (pid %d) %s", k->prog, (int)pid, why);
        if (s->running == 0 && s->done)
            s->done(s->done_arg);
        return;
    }
    int64_t lived = omni_now_ms() - ch->born;
    bool started = ch->started || (!k->worker && lived >= HTTP_STARTED_MS);
    bool throttle;
    int64_t d =
        omni_supervisor_delay(&k->pol, started, lived, s->cfg.restart_min_ms,
                              s->cfg.restart_max_ms, &throttle);
    if (throttle) {
        omni_warn("%s: bad command startup -- throttling", k->prog);
        if (k->svc)
            snprintf(k->svc->why, sizeof k->svc->why,
                     "%s fails at start-up: throttled", k->prog);
    }
    omni_warn("%s (pid %d) %s%s; restart in %lld ms", k->prog, (int)pid, why,
              started ? "" : " before it was ready", (long long)d);
    ch->respawn = true;
    schedule(ch, d);
}

static void on_sigchld(evutil_socket_t fd, short what, void *arg)
{
    struct omni_supervisor *s = arg;
    (void)fd;
    (void)what;
    int st;
    pid_t pid;
    while ((pid = waitpid(-1, &st, WNOHANG)) > 0)
        reaped(s, pid, st);
}

static void add_kind(struct omni_supervisor *s, const char *name,
                     struct omni_service *svc, long n)
{
    s->kinds = omni_realloc(s->kinds, (s->nkinds + 1) * sizeof *s->kinds);
    struct kind *k = &s->kinds[s->nkinds++];
    memset(k, 0, sizeof *k);
    struct omni_buf b = OMNI_BUF_INIT;
    k->name = omni_strdup(name);
    omni_buf_addf(&b, "omni-%s", name);
    k->prog = omni_buf_detach(&b, NULL);
    omni_buf_addf(&b, "%s/omni-%s", s->cfg.worker_dir, name);
    k->path = omni_buf_detach(&b, NULL);
    k->worker = svc != NULL;
    k->svc = svc;
    k->want = n;
    s->nkids += (size_t)n;
}

struct omni_supervisor *omni_supervisor_new(struct omni_broker *b,
                                            const struct omni_sup_cfg *cfg)
{
    struct omni_supervisor *s = omni_calloc(1, sizeof *s);
    s->b = b;
    s->cfg = *cfg;
    struct omni_router *r = b->router;
    for (size_t i = 0; i < omni_router_nservices(r); i++) {
        struct omni_service *svc = omni_router_service_at(r, i);
        long n = wanted(svc->name);
        if (n > 0)
            add_kind(s, svc->name, svc, n);
    }
    if (cfg->http_listen && *cfg->http_listen) {
        struct omni_buf p = OMNI_BUF_INIT;
        omni_buf_addf(&p, "%s/omni-http", cfg->worker_dir);
        if (access(p.data, X_OK) == 0)
            add_kind(s, "http", NULL, 1);
        else
            omni_info("no '%s': the HTTP front is not started", p.data);
        omni_buf_release(&p);
    }
    /* Slots point into kinds[], so lay them out once kinds is final. */
    s->kids = omni_calloc(s->nkids ? s->nkids : 1, sizeof *s->kids);
    size_t at = 0;
    for (size_t i = 0; i < s->nkinds; i++) {
        struct kind *k = &s->kinds[i];
        for (long j = 0; j < k->want; j++, at++) {
            struct child *ch = &s->kids[at];
            ch->s = s;
            ch->k = k;
            ch->pipe_w = -1;
            ch->timer = evtimer_new(b->base, on_restart, ch);
        }
    }
    s->sigchld = evsignal_new(b->base, SIGCHLD, on_sigchld, s);
    event_add(s->sigchld, NULL);
    return s;
}

void omni_supervisor_start(struct omni_supervisor *s)
{
    for (size_t i = 0; i < s->nkids; i++)
        spawn(&s->kids[i]);
}

void omni_supervisor_started(struct omni_supervisor *s, pid_t pid)
{
    for (size_t i = 0; i < s->nkids; i++) {
        struct child *ch = &s->kids[i];
        if (ch->pid != pid || ch->started)
            continue;
        ch->started = true;
        ch->k->pol.fails = 0;
        if (ch->k->svc)
            ch->k->svc->why[0] = '\0';
        return;
    }
}

bool omni_supervisor_kill(struct omni_supervisor *s, pid_t pid)
{
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i].pid == pid && pid > 0) {
            kill(pid, SIGKILL);
            return true;
        }
    return false;
}

static void on_kill_timer(evutil_socket_t fd, short what, void *arg)
{
    struct omni_supervisor *s = arg;
    (void)fd;
    (void)what;
    for (size_t i = 0; i < s->nkids; i++)
        if (s->kids[i].pid) {
            omni_warn("%s (pid %d) still running: killing it",
                      s->kids[i].k->prog, (int)s->kids[i].pid);
            kill(s->kids[i].pid, SIGKILL);
        }
}

void omni_supervisor_stop(struct omni_supervisor *s, void (*done)(void *),
                          void *arg)
{
    s->stopping = true;
    s->done = done;
    s->done_arg = arg;
    for (size_t i = 0; i < s->nkids; i++) {
        evtimer_del(s->kids[i].timer);
        if (s->kids[i].pid)
            kill(s->kids[i].pid, SIGTERM);
    }
    if (s->running == 0) {
        if (done)
            done(arg);
        return;
    }
    s->kill_timer = evtimer_new(s->b->base, on_kill_timer, s);
    struct timeval tv = {KILL_AFTER_MS / 1000, (KILL_AFTER_MS % 1000) * 1000};
    evtimer_add(s->kill_timer, &tv);
}

void omni_supervisor_free(struct omni_supervisor *s)
{
    if (!s)
        return;
    for (size_t i = 0; i < s->nkids; i++) {
        struct child *ch = &s->kids[i];
        if (ch->pid) {
            /* Only on an abnormal exit: do not leave orphans. */
            kill(ch->pid, SIGKILL);
            waitpid(ch->pid, NULL, 0);
        }
        if (ch->pipe_w >= 0)
            close(ch->pipe_w);
        event_free(ch->timer);
    }
    for (size_t i = 0; i < s->nkinds; i++) {
        omni_free(s->kinds[i].name);
        omni_free(s->kinds[i].path);
        omni_free(s->kinds[i].prog);
    }
    if (s->kill_timer)
        event_free(s->kill_timer);
    event_free(s->sigchld);
    omni_free(s->kinds);
    omni_free(s->kids);
    omni_free(s);
}
