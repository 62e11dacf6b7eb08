/*
 * mcp_stdio - an MCP server as a child process speaking over pipes.
 *
 * We spawn the configured command with its stdin, stdout and stderr on
 * non-blocking pipes watched by the loop: stdout is split into JSON-RPC
 * lines (at most mcp.max_line bytes each), stderr is copied into our
 * log line by line with the server's name in front, and writes to stdin
 * are buffered while the pipe is full.  The child gets a small, fixed
 * environment (PATH, HOME, locale...) plus the entry's "env", never our
 * own secrets, and dies with us (PR_SET_PDEATHSIG).  End of stdout is
 * the server's death: the up restarts it; the old child is reaped in
 * the background (SIGTERM, then SIGKILL after two seconds).
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "mcp.h"
#include "omni_alloc.h"
#include "omni_log.h"
#include "omni_time.h"

#define WBUF_MAX (64u << 20)
#define ERR_LINE 4096

struct stdio_tp {
    struct omni_mcp_up *up;
    pid_t pid;
    int in_fd, out_fd, err_fd;
    struct event *in_ev, *out_ev, *err_ev, *reap_ev;
    struct omni_buf wbuf;
    struct omni_mcp_lines out, err;
    int reap_tries;
    bool stuck; /* the child stopped reading its input */
};

/* ---- reaping children that we no longer talk to ---- */

struct zombie {
    pid_t pid;
    int64_t kill_at;
    struct event *ev;
    struct zombie *next;
};

static struct zombie *zombies;

static void zombie_drop(struct zombie *z)
{
    struct zombie **pp = &zombies;
    while (*pp && *pp != z)
        pp = &(*pp)->next;
    if (*pp)
        *pp = z->next;
    event_free(z->ev);
    omni_free(z);
}

static void on_zombie(evutil_socket_t fd, short what, void *arg)
{
    struct zombie *z = arg;
    (void)fd;
    (void)what;
    if (waitpid(z->pid, NULL, WNOHANG) != 0) {
        zombie_drop(z);
        return;
    }
    if (z->kill_at && omni_now_ms() >= z->kill_at) {
        kill(z->pid, SIGKILL);
        z->kill_at = 0;
    }
    struct timeval tv = {0, 100000};
    evtimer_add(z->ev, &tv);
}

/* Ask pid to stop and reap it from the loop. */
static void bury(struct event_base *base, pid_t pid)
{
    if (waitpid(pid, NULL, WNOHANG) != 0)
        return;
    kill(pid, SIGTERM);
    struct zombie *z = omni_calloc(1, sizeof *z);
    z->pid = pid;
    z->kill_at = omni_now_ms() + 2000;
    z->ev = evtimer_new(base, on_zombie, z);
    z->next = zombies;
    zombies = z;
    struct timeval tv = {0, 20000};
    evtimer_add(z->ev, &tv);
}

/* At exit: give the children a moment, then kill what is left. */
void omni_mcp_stdio_reap_all(void);
void omni_mcp_stdio_reap_all(void)
{
    for (int i = 0; zombies && i < 50; i++) {
        for (struct zombie *z = zombies, *next; z; z = next) {
            next = z->next;
            if (waitpid(z->pid, NULL, WNOHANG) != 0)
                zombie_drop(z);
        }
        if (zombies)
            usleep(10000);
    }
    while (zombies) {
        kill(zombies->pid, SIGKILL);
        waitpid(zombies->pid, NULL, 0);
        zombie_drop(zombies);
    }
}

/* ---- spawning ---- */

static const char *const keep_env[] = {"PATH",     "HOME",   "USER", "LOGNAME",
                                       "SHELL",    "TERM",   "LANG", "LC_ALL",
                                       "LC_CTYPE", "TMPDIR", "TZ",   NULL};

/* The child's environment: the kept variables, then the entry's. */
static char **child_env(const struct omni_mcp_server_cfg *cfg)
{
    size_t n = 0, i = 0;
    while (keep_env[n])
        n++;
    for (size_t k = 0; cfg->env && cfg->env[k]; k++)
        n++;
    char **env = omni_calloc(n + 1, sizeof *env);
    for (size_t k = 0; keep_env[k]; k++) {
        const char *v = getenv(keep_env[k]);
        bool overridden = false;
        size_t kl = strlen(keep_env[k]);
        for (size_t j = 0; cfg->env && cfg->env[j]; j++)
            if (strncmp(cfg->env[j], keep_env[k], kl) == 0 &&
                cfg->env[j][kl] == '=')
                overridden = true;
        if (!v || overridden)
            continue;
        size_t len = kl + strlen(v) + 2;
        env[i] = omni_malloc(len);
        snprintf(env[i++], len, "%s=%s", keep_env[k], v);
    }
    for (size_t k = 0; cfg->env && cfg->env[k]; k++)
        env[i++] = omni_strdup(cfg->env[k]);
    return env;
}

static void free_env(char **env)
{
    for (size_t i = 0; env[i]; i++)
        omni_free(env[i]);
    omni_free(env);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child(int in, int out, int err, pid_t parent,
                  const struct omni_mcp_server_cfg *cfg, char **env)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
    if (getppid() != parent)
        _exit(127);
    setpgid(0, 0);
    signal(SIGPIPE, SIG_DFL);
    dup2(in, 0);
    dup2(out, 1);
    dup2(err, 2);
    execvpe(cfg->command, cfg->argv, env);
    static const char msg[] = "cannot run the server's command\n";
    ssize_t w = write(2, msg, sizeof msg - 1);
    (void)w;
    _exit(127);
}

static void set_nonblock(int fd)
{
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
}

static void on_out(evutil_socket_t fd, short what, void *arg);
static void on_err(evutil_socket_t fd, short what, void *arg);
static void on_in(evutil_socket_t fd, short what, void *arg);

static int st_open(struct omni_mcp_up *u, char why[OMNI_ERR_LEN])
{
    int in[2], out[2], err[2];
    if (pipe2(in, O_CLOEXEC) < 0) {
        snprintf(why, OMNI_ERR_LEN, "cannot make a pipe: %s", strerror(errno));
        return -1;
    }
    if (pipe2(out, O_CLOEXEC) < 0) {
        snprintf(why, OMNI_ERR_LEN, "cannot make a pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        return -1;
    }
    if (pipe2(err, O_CLOEXEC) < 0) {
        snprintf(why, OMNI_ERR_LEN, "cannot make a pipe: %s", strerror(errno));
        close(in[0]);
        close(in[1]);
        close(out[0]);
        close(out[1]);
        return -1;
    }
    char **env = child_env(u->cfg);
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid == 0)
        child(in[0], out[1], err[1], parent, u->cfg, env);
    free_env(env);
    close(in[0]);
    close(out[1]);
    close(err[1]);
    if (pid < 0) {
        snprintf(why, OMNI_ERR_LEN, "cannot fork: %s", strerror(errno));
        close(in[1]);
        close(out[0]);
        close(err[0]);
        return -1;
    }
    struct stdio_tp *t = omni_calloc(1, sizeof *t);
    struct event_base *base = u->hub->base;
    t->up = u;
    t->pid = pid;
    t->in_fd = in[1];
    t->out_fd = out[0];
    t->err_fd = err[0];
    set_nonblock(t->in_fd);
    set_nonblock(t->out_fd);
    set_nonblock(t->err_fd);
    omni_buf_init(&t->wbuf);
    omni_mcp_lines_init(&t->out, u->hub->max_line);
    omni_mcp_lines_init(&t->err, ERR_LINE);
    t->in_ev = event_new(base, t->in_fd, EV_WRITE, on_in, t);
    t->out_ev = event_new(base, t->out_fd, EV_READ | EV_PERSIST, on_out, t);
    t->err_ev = event_new(base, t->err_fd, EV_READ | EV_PERSIST, on_err, t);
    event_add(t->out_ev, NULL);
    event_add(t->err_ev, NULL);
    u->tp = t;
    omni_info("mcp server '%s' started: pid %ld, '%s'", u->cfg->name, (long)pid,
              u->cfg->command);
    return 0;
}

/* ---- output from the child ---- */

/* Find the integer after the first (or last) "id": in s. */
static bool find_id(const char *s, size_t n, bool last, int64_t *id)
{
    bool found = false;
    for (size_t i = 0; i + 5 < n; i++) {
        if (memcmp(s + i, "\"id\"", 4))
            continue;
        size_t j = i + 4;
        while (j < n && (s[j] == ' ' || s[j] == ':'))
            j++;
        int64_t v = 0;
        size_t d = j;
        while (d < n && s[d] >= '0' && s[d] <= '9' && d - j < 18)
            v = v * 10 + (s[d++] - '0');
        if (d == j)
            continue;
        *id = v;
        found = true;
        if (!last)
            break;
    }
    return found;
}

static void on_line(void *arg, const char *line, size_t n)
{
    struct stdio_tp *t = arg;
    omni_mcp_up_input(t->up, line, n);
}

/* A message over mcp.max_line: dropped, and if it names a request we
 * wait for (JSON-RPC ids sit at the start or, for the TypeScript SDK,
 * at the end), that request fails now instead of timing out. */
static void on_long(void *arg, size_t n, const char *edge, size_t edgen,
                    bool end)
{
    struct stdio_tp *t = arg;
    struct omni_mcp_up *u = t->up;
    int64_t id;
    if (!end)
        omni_error("mcp server '%s' sent a message over mcp.max_line "
                   "(%zu bytes); dropped",
                   u->cfg->name, u->hub->max_line);
    if (!find_id(edge, edgen, end, &id))
        return;
    struct omni_mcp_pending *p = omni_mcp_ptab_find(&u->ptab, id);
    if (!p)
        return;
    char msg[128];
    snprintf(msg, sizeof msg, "reply over mcp.max_line (%zu bytes)", n);
    json_t *e = json_pack("{s:i,s:s}", "code", -32603, "message", msg);
    struct omni_mcp_reply r = {.outcome = OMNI_MCP_RPC_ERROR, .error = e};
    omni_mcp_up_answer(u, p, &r);
    json_decref(e);
}

/* Describe how pid ended, if it has. */
static bool ended(struct stdio_tp *t, char *why, size_t n)
{
    int status;
    if (t->pid <= 0 || waitpid(t->pid, &status, WNOHANG) != t->pid)
        return false;
    if (WIFSIGNALED(status))
        snprintf(why, n, "exited on signal %d", WTERMSIG(status));
    else
        snprintf(why, n, "exited with status %d", WEXITSTATUS(status));
    t->pid = 0;
    return true;
}

/* stdout closed: wait up to ~200 ms for the exit status, for a clear
 * message, then fail the server. */
static void on_reap(evutil_socket_t fd, short what, void *arg)
{
    struct stdio_tp *t = arg;
    char why[96];
    (void)fd;
    (void)what;
    if (ended(t, why, sizeof why)) {
        omni_mcp_up_fail(t->up, "server process %s", why);
        return;
    }
    if (++t->reap_tries >= 10) {
        omni_mcp_up_fail(t->up, "server closed its output");
        return;
    }
    struct timeval tv = {0, 20000};
    evtimer_add(t->reap_ev, &tv);
}

static void on_out(evutil_socket_t fd, short what, void *arg)
{
    struct stdio_tp *t = arg;
    char buf[65536];
    (void)what;
    /* A few reads per wake-up keeps one chatty server from starving
     * the rest of the loop. */
    for (int i = 0; i < 4; i++) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n > 0) {
            omni_mcp_lines_feed(&t->out, buf, (size_t)n, on_line, on_long, t);
            if (t->up->failing)
                return;
            continue;
        }
        if (n < 0 && (errno == EAGAIN || errno == EINTR))
            return;
        event_del(t->out_ev);
        if (n < 0)
            omni_mcp_up_fail(t->up, "cannot read from server: %s",
                             strerror(errno));
        else if (!t->reap_ev) {
            t->reap_ev = evtimer_new(t->up->hub->base, on_reap, t);
            on_reap(-1, 0, t);
        }
        return;
    }
}

static void log_err(void *arg, const char *line, size_t n)
{
    struct stdio_tp *t = arg;
    omni_info("mcp server '%s' stderr: %.*s", t->up->cfg->name, (int)n, line);
}

static void long_err(void *arg, size_t n, const char *edge, size_t edgen,
                     bool end)
{
    struct stdio_tp *t = arg;
    if (!end)
        omni_info("mcp server '%s' stderr: %.*s... (%zu+ bytes)",
                  t->up->cfg->name, (int)edgen, edge, n);
}

static void on_err(evutil_socket_t fd, short what, void *arg)
{
    struct stdio_tp *t = arg;
    char buf[8192];
    (void)what;
    ssize_t n = read(fd, buf, sizeof buf);
    if (n > 0) {
        omni_mcp_lines_feed(&t->err, buf, (size_t)n, log_err, long_err, t);
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
        if (t->err.buf.len)
            log_err(t, t->err.buf.data, t->err.buf.len);
        omni_buf_reset(&t->err.buf);
        event_del(t->err_ev);
    }
}

/* ---- input to the child ---- */

/* Write what the pipe takes.  Failures are reported from the loop
 * (may_fail false: we are inside a send, whose caller still holds the
 * request it just queued). */
static void flush(struct stdio_tp *t, bool may_fail)
{
    if (t->stuck && may_fail) {
        omni_mcp_up_fail(t->up,
                         "server does not read its input (%zu bytes "
                         "waiting)",
                         t->wbuf.len);
        return;
    }
    while (t->wbuf.len > 0) {
        ssize_t n = write(t->in_fd, t->wbuf.data, t->wbuf.len);
        if (n > 0) {
            omni_buf_consume(&t->wbuf, (size_t)n);
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && errno == EAGAIN) {
            event_add(t->in_ev, NULL);
            return;
        }
        if (!may_fail) {
            event_active(t->in_ev, EV_WRITE, 0);
            return;
        }
        omni_buf_reset(&t->wbuf);
        omni_mcp_up_fail(t->up, "cannot write to server: %s", strerror(errno));
        return;
    }
}

static void on_in(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    flush(arg, true);
}

static void st_send(struct omni_mcp_up *u, const json_t *msg,
                    struct omni_mcp_pending *p)
{
    struct stdio_tp *t = u->tp;
    (void)p;
    if (!t || u->failing)
        return;
    if (t->stuck)
        return;
    if (t->wbuf.len > WBUF_MAX) {
        t->stuck = true;
        event_active(t->in_ev, EV_WRITE, 0);
        return;
    }
    size_t n;
    char *s = omni_mcp_dump(msg, &n);
    bool idle = t->wbuf.len == 0;
    omni_buf_add(&t->wbuf, s, n);
    omni_buf_addch(&t->wbuf, '\n');
    omni_free(s);
    if (idle)
        flush(t, false);
}

static void st_forget(struct omni_mcp_up *u, struct omni_mcp_pending *p)
{
    (void)u;
    (void)p;
}

static void st_ready(struct omni_mcp_up *u)
{
    (void)u;
}

static void st_close(struct omni_mcp_up *u)
{
    struct stdio_tp *t = u->tp;
    if (!t)
        return;
    u->tp = NULL;
    event_free(t->in_ev);
    event_free(t->out_ev);
    event_free(t->err_ev);
    if (t->reap_ev)
        event_free(t->reap_ev);
    /* Closing stdin is the polite way to stop an MCP server. */
    close(t->in_fd);
    close(t->out_fd);
    close(t->err_fd);
    if (t->pid > 0)
        bury(u->hub->base, t->pid);
    omni_buf_release(&t->wbuf);
    omni_mcp_lines_release(&t->out);
    omni_mcp_lines_release(&t->err);
    omni_free(t);
}

static long st_pid(const struct omni_mcp_up *u)
{
    const struct stdio_tp *t = u->tp;
    return t ? (long)t->pid : 0;
}

const struct omni_mcp_tp_ops omni_mcp_stdio_ops = {
    .open = st_open,
    .send = st_send,
    .forget = st_forget,
    .ready = st_ready,
    .reset = st_ready,
    .close = st_close,
    .pid = st_pid,
};
