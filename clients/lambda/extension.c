/*
 * omni-extension - the Lambda external extension (/opt/extensions/omni)
 * that runs omni-broker and its workers next to the function.
 *
 * Order matters for cold starts: fetch provider keys (Secrets Manager,
 * when OMNI_SECRETS_ARN is set), start omni-broker from the layer's bin/
 * in its own process group and wait until its socket accepts, and only
 * then /register (which lets Lambda start the runtime, whose bootstrap
 * connects at once).  Warm-up (TLS init, DNS of the provider hosts,
 * workers ready) overlaps the runtime's init; then /event/next.  On
 * SHUTDOWN the broker gets SIGTERM and drains; the whole tree is killed
 * when lambda.shutdown_ms runs out or the deadline is near.  A failure
 * before the first event goes to /init/error; a broker that died between
 * events goes to /exit/error.  Either way we exit and Lambda resets.
 */
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <limits.h>
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "lapi.h"
#include "omni.h"
#include "omni_alloc.h"
#include "omni_buf.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_time.h"
#include "secrets.h"

#define NAME               "omni" /* file name in /opt/extensions */
#define SECRETS_TIMEOUT_MS 3000
#define KILL_MARGIN_MS     100 /* kill the tree this long before deadlineMs */
#define DRAIN_MARGIN_MS    300 /* broker drain ends this long before the kill */

struct ext {
    CURL *h;
    char base[256]; /* http://HOST:PORT/2020-01-01/extension */
    char id[128];   /* Lambda-Extension-Identifier */
    pid_t broker;   /* also its process group; 0: none */
    char bindir[PATH_MAX];
    const char *sock;
    int64_t t0; /* monotonic ms at start */
};

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

/* ------------------------------------------------------ Extensions API */

static long call(struct ext *x, const char *method, const char *path,
                 const char *const *hdrs, const char *body,
                 struct omni_lapi_resp *r)
{
    char url[512], err[OMNI_ERR_LEN];
    snprintf(url, sizeof url, "%s%s", x->base, path);
    struct omni_lapi_req req = {.method = method,
                                .url = url,
                                .hdrs = hdrs,
                                .body = body,
                                .body_len = body ? strlen(body) : 0};
    if (omni_lapi_do(x->h, &req, r, err) != OMNI_OK) {
        omni_error("%s", err);
        return 0;
    }
    return r->status;
}

static bool do_register(struct ext *x)
{
    const char *hdrs[] = {"Lambda-Extension-Name: " NAME,
                          "Content-Type: application/json", NULL};
    struct omni_lapi_resp r;
    omni_lapi_resp_init(&r);
    long st = call(x, "POST", "/register", hdrs,
                   "{\"events\":[\"INVOKE\",\"SHUTDOWN\"]}", &r);
    bool ok = st == 200 &&
              omni_lapi_header(&r, "Lambda-Extension-Identifier", x->id,
                               sizeof x->id) &&
              x->id[0];
    if (!ok)
        omni_error("cannot register extension '" NAME "': HTTP %ld %.200s", st,
                   r.body.data);
    omni_lapi_resp_release(&r);
    return ok;
}

/* Report an error to /init/error or /exit/error and exit 1. */
static void die(struct ext *x, const char *path, const char *type,
                const char *msg)
{
    omni_error("%s", msg);
    if (x->broker > 0)
        kill(-x->broker, SIGKILL);
    if (x->id[0] || do_register(x)) {
        char ih[192], th[128];
        snprintf(ih, sizeof ih, "Lambda-Extension-Identifier: %s", x->id);
        snprintf(th, sizeof th, "Lambda-Extension-Function-Error-Type: %s",
                 type);
        const char *hdrs[] = {ih, th, "Content-Type: application/json", NULL};
        struct omni_buf b = OMNI_BUF_INIT;
        char red[OMNI_ERR_LEN];
        omni_redact_str(msg, red, sizeof red);
        omni_buf_adds(&b, "{\"errorMessage\":");
        omni_buf_add_json_str(&b, red, strlen(red));
        omni_buf_addf(&b, ",\"errorType\":\"%s\",\"stackTrace\":[]}", type);
        struct omni_lapi_resp r;
        omni_lapi_resp_init(&r);
        call(x, "POST", path, hdrs, b.data, &r);
        omni_lapi_resp_release(&r);
        omni_buf_release(&b);
    }
    exit(1);
}

/* -------------------------------------------------- the broker's world */

static void exe_dir(char *out, size_t n)
{
    ssize_t k = readlink("/proc/self/exe", out, n - 1);
    out[k > 0 ? k : 0] = '\0';
    char *slash = strrchr(out, '/');
    if (slash && slash != out)
        *slash = '\0';
    else
        snprintf(out, n, ".");
}

/* OMNI_SERVICES, unless set: the configured services whose worker binary
 * is in the layer (a layer without omni-rag must not wait for rag). */
static void pick_services(const struct ext *x)
{
    if (getenv("OMNI_SERVICES"))
        return;
    struct omni_buf list = OMNI_BUF_INIT;
    char *all = omni_strdup(omni_cfg_str("services"));
    for (char *p = all; *p;) {
        size_t n = strcspn(p, ",");
        char svc[64], path[PATH_MAX + 80];
        snprintf(svc, sizeof svc, "%.*s", (int)n, p);
        snprintf(path, sizeof path, "%s/omni-%s", x->bindir, svc);
        if (*svc && access(path, X_OK) == 0)
            omni_buf_addf(&list, "%s%s", list.len ? "," : "", svc);
        p += n + (p[n] == ',');
    }
    setenv("OMNI_SERVICES", list.data, 1);
    omni_info("services '%s'", list.data);
    omni_free(all);
    omni_buf_release(&list);
}

/* Provider keys from Secrets Manager into our environment, which the
 * broker and its workers inherit. */
static void load_secrets(struct ext *x)
{
    const char *arn = omni_cfg_str("lambda.secrets_arn");
    if (!*arn)
        return;
    struct omni_secrets_cfg cfg = {
        .arn = arn,
        .region = omni_cfg_str("aws.region"),
        .endpoint = omni_cfg_str("lambda.secrets_endpoint"),
        .key_id = omni_cfg_str("aws.access_key_id"),
        .secret_key = omni_cfg_str("aws.secret_access_key"),
        .token = omni_cfg_str("aws.session_token"),
        .timeout_ms = SECRETS_TIMEOUT_MS,
    };
    struct omni_secrets s = {0};
    char err[OMNI_ERR_LEN];
    int64_t t = omni_now_ms();
    if (omni_secrets_fetch(&cfg, &s, err) != OMNI_OK) {
        omni_secrets_release(&s);
        die(x, "/init/error", "Extension.SecretsUnavailable", err);
    }
    struct omni_buf names = OMNI_BUF_INIT;
    for (size_t i = 0; i < s.n; i++) {
        omni_redact_add(s.values[i]);
        setenv(s.names[i], s.values[i], 1);
        omni_buf_addf(&names, "%s%s", i ? "," : "", s.names[i]);
    }
    omni_info("secret '%s': %zu variables (%s), %zu members skipped, "
              "%lld ms",
              arn, s.n, names.data, s.skipped, (long long)(omni_now_ms() - t));
    omni_buf_release(&names);
    omni_secrets_release(&s);
    /* Reload so that what we read later sees the new variables. */
    if (omni_cfg_load(NULL, err) != OMNI_OK)
        die(x, "/init/error", "Extension.ConfigInvalid", err);
}

/* The broker's environment: ours plus what Lambda needs of it. */
static void broker_env(const struct ext *x)
{
    setenv("OMNI_SOCKET", x->sock, 1);
    setenv("OMNI_HTTP_LISTEN", "", 1);
    if (!getenv("OMNI_WORKER_DIR"))
        setenv("OMNI_WORKER_DIR", x->bindir, 1);
    long budget = omni_cfg_int("lambda.shutdown_ms") - DRAIN_MARGIN_MS;
    if (budget < 0)
        budget = 0;
    if (omni_cfg_int("broker.drain_ms") > budget) {
        char v[32];
        snprintf(v, sizeof v, "%ld", budget);
        setenv("OMNI_DRAIN_MS", v, 1);
    }
    /* libcurl's built-in CA path is Debian's; point OpenSSL users at the
     * bundle this system has. */
    const char *ca = omni_lapi_ca_file();
    if (ca)
        setenv("SSL_CERT_FILE", ca, 0);
    pick_services(x);
}

static pid_t spawn_broker(const struct ext *x)
{
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/omni-broker", x->bindir);
    if (access(path, X_OK) != 0) {
        omni_error("cannot run '%s': %s", path, strerror(errno));
        return -1;
    }
    pid_t ppid = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        omni_error("cannot start '%s': fork: %s", path, strerror(errno));
        return -1;
    }
    if (pid == 0) {
        /* Its own process group, so that one kill() reaches the workers;
         * SIGTERM (a drain) if we die first. */
        setpgid(0, 0);
        prctl(PR_SET_PDEATHSIG, SIGTERM);
        if (getppid() != ppid)
            _exit(1);
        char *argv[] = {"omni-broker", NULL};
        execv(path, argv);
        _exit(127);
    }
    setpgid(pid, pid);
    return pid;
}

static bool socket_accepts(const char *path)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path)
        return false;
    memcpy(a.sun_path, path, strlen(path) + 1);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return false;
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    close(fd);
    return ok;
}

/* Wait for the broker's socket; false (with why) if it exits first or
 * wait_ms passes. */
static bool wait_socket(struct ext *x, long wait_ms, char *why, size_t n)
{
    int64_t end = omni_now_ms() + wait_ms;
    long delay = 1;
    for (;;) {
        if (socket_accepts(x->sock))
            return true;
        int st;
        if (waitpid(x->broker, &st, WNOHANG) == x->broker) {
            snprintf(why, n,
                     "omni-broker exited with status %d before "
                     "its socket '%s' accepted",
                     WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st),
                     x->sock);
            x->broker = 0;
            return false;
        }
        if (omni_now_ms() >= end) {
            snprintf(why, n, "omni-broker socket '%s' not ready after %ld ms",
                     x->sock, wait_ms);
            return false;
        }
        sleep_ms(delay);
        delay = delay * 2 > 20 ? 20 : delay * 2;
    }
}

/* ------------------------------------------------------------- warm-up */

static void resolve(const char *url)
{
    if (!url || !*url)
        return;
    CURLU *u = curl_url();
    char *host = NULL;
    if (curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
        curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK) {
        struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
        int64_t t = omni_now_ms();
        int rc = getaddrinfo(host, "443", &hints, &res);
        omni_debug("warm-up: resolve '%s': %s (%lld ms)", host,
                   rc ? gai_strerror(rc) : "ok",
                   (long long)(omni_now_ms() - t));
        if (res)
            freeaddrinfo(res);
    }
    curl_free(host);
    curl_url_cleanup(u);
}

/* DNS of the enabled providers' hosts, then wait (bounded) until every
 * service has a ready worker. */
static void warm_up(struct ext *x)
{
    if (*omni_cfg_str("openai.api_key"))
        resolve(omni_cfg_str("openai.base_url"));
    if (*omni_cfg_str("anthropic.api_key"))
        resolve(omni_cfg_str("anthropic.base_url"));
    if (*omni_cfg_str("gemini.api_key"))
        resolve(*omni_cfg_str("gemini.base_url")
                    ? omni_cfg_str("gemini.base_url")
                    : "https://generativelanguage.googleapis.com/");
    if (*omni_cfg_str("azure.api_key"))
        resolve(omni_cfg_str("azure.endpoint"));

    int64_t end = omni_now_ms() + omni_cfg_int("lambda.ready_ms");
    char err[OMNI_ERR_LEN] = "";
    omni_client *c = omni_connect(x->sock, err, sizeof err);
    struct omni_request ping = {
        .service = "omni", .op = "ping", .timeout_ms = 1000};
    long delay = 1;
    while (c) {
        int status = 0;
        char *body = NULL;
        size_t n = 0;
        int rc = omni_call(c, &ping, NULL, NULL, &body, &n, &status);
        omni_free(body);
        if (rc == 0) {
            omni_info("workers ready %lld ms after start",
                      (long long)(omni_now_ms() - x->t0));
            break;
        }
        snprintf(err, sizeof err, "%s", omni_last_error(c));
        if (status == 0 || omni_now_ms() >= end) {
            omni_warn("workers not ready: %s; serving anyway", err);
            break;
        }
        sleep_ms(delay);
        delay = delay * 2 > 20 ? 20 : delay * 2;
    }
    if (!c)
        omni_warn("cannot ask the broker: %s", err);
    omni_close(c);
}

/* ------------------------------------------------------------ shutdown */

/* SIGTERM the broker, wait for its drain, SIGKILL the tree at the
 * limit: lambda.shutdown_ms, or just before deadline_ms (wall). */
static void shut_down(struct ext *x, int64_t deadline_ms, const char *why)
{
    int64_t t = omni_now_ms();
    int64_t limit = t + omni_cfg_int("lambda.shutdown_ms");
    if (deadline_ms) {
        int64_t d = t + (deadline_ms - omni_wall_ms()) - KILL_MARGIN_MS;
        if (d < limit)
            limit = d;
    }
    omni_info("shutdown (%s): draining for up to %lld ms", why,
              (long long)(limit - t));
    int st = 0;
    bool gone = x->broker <= 0;
    if (!gone)
        kill(x->broker, SIGTERM);
    while (!gone && omni_now_ms() < limit) {
        if (waitpid(x->broker, &st, WNOHANG) == x->broker) {
            gone = true;
            break;
        }
        sleep_ms(2);
    }
    if (x->broker > 0)
        kill(-x->broker, SIGKILL);
    if (!gone) {
        omni_warn("shutdown: broker still running after %lld ms: killed",
                  (long long)(omni_now_ms() - t));
        waitpid(x->broker, &st, 0);
    }
    omni_info("shutdown done in %lld ms", (long long)(omni_now_ms() - t));
    exit(0);
}

/* ---------------------------------------------------------------- main */

static void event_loop(struct ext *x)
{
    char ih[192];
    snprintf(ih, sizeof ih, "Lambda-Extension-Identifier: %s", x->id);
    const char *hdrs[] = {ih, NULL};
    struct omni_lapi_resp r;
    omni_lapi_resp_init(&r);
    bool first = true;
    for (;;) {
        long st = call(x, "GET", "/event/next", hdrs, NULL, &r);
        if (first) {
            first = false;
            omni_debug("first event received");
        }
        if (st != 200) {
            omni_error("event/next: HTTP %ld: exiting", st);
            shut_down(x, 0, "Extensions API error");
        }
        json_t *j = json_loadb(r.body.data, r.body.len, 0, NULL);
        const char *type = json_string_value(json_object_get(j, "eventType"));
        json_t *dl = json_object_get(j, "deadlineMs");
        int64_t deadline = json_is_integer(dl) ? json_integer_value(dl) : 0;
        if (type && strcasecmp(type, "SHUTDOWN") == 0) {
            const char *reason =
                json_string_value(json_object_get(j, "shutdownReason"));
            char why[64];
            snprintf(why, sizeof why, "%s", reason ? reason : "unknown");
            json_decref(j);
            omni_lapi_resp_release(&r);
            shut_down(x, deadline, why);
        }
        json_decref(j);
        int ws;
        if (x->broker > 0 && waitpid(x->broker, &ws, WNOHANG) == x->broker) {
            x->broker = 0;
            omni_lapi_resp_release(&r);
            die(x, "/exit/error", "Extension.BrokerExited",
                "omni-broker exited: the environment must be reset");
        }
    }
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    struct ext x = {.t0 = omni_now_ms()};
    omni_log_init("omni-extension");
    signal(SIGPIPE, SIG_IGN);
    char err[OMNI_ERR_LEN];
    enum omni_err cfg_rc = omni_cfg_load(NULL, err);
    const char *api = cfg_rc == OMNI_OK ? omni_cfg_str("lambda.runtime_api")
                                        : getenv("AWS_LAMBDA_RUNTIME_API");
    if (!api || !*api)
        omni_fatal("AWS_LAMBDA_RUNTIME_API is not set: omni-extension runs "
                   "inside AWS Lambda or its emulator");
    snprintf(x.base, sizeof x.base, "http://%s/2020-01-01/extension", api);
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK ||
        !(x.h = curl_easy_init()))
        omni_fatal("cannot initialise libcurl");
    omni_lapi_setup(x.h);
    if (cfg_rc != OMNI_OK)
        die(&x, "/init/error", "Extension.ConfigInvalid", err);
    int lvl = omni_log_level_parse(omni_cfg_str("log_level"));
    if (lvl >= 0)
        omni_log_set_level((enum omni_log_level)lvl);
    omni_log_set_json(strcmp(omni_cfg_str("log_format"), "text") != 0);

    if (*omni_cfg_str("worker_dir"))
        snprintf(x.bindir, sizeof x.bindir, "%s", omni_cfg_str("worker_dir"));
    else
        exe_dir(x.bindir, sizeof x.bindir);
    x.sock = omni_strdup(omni_cfg_socket_path());

    load_secrets(&x);
    broker_env(&x);
    x.broker = spawn_broker(&x);
    if (x.broker < 0) {
        x.broker = 0;
        die(&x, "/init/error", "Extension.BrokerFailed",
            "cannot start omni-broker");
    }
    if (!wait_socket(&x, omni_cfg_int("lambda.wait_ms"), err, sizeof err))
        die(&x, "/init/error", "Extension.BrokerFailed", err);
    omni_info("broker %d listening on '%s' %lld ms after start", (int)x.broker,
              x.sock, (long long)(omni_now_ms() - x.t0));
    if (!do_register(&x))
        die(&x, "/init/error", "Extension.RegisterFailed",
            "cannot register with the Extensions API");
    warm_up(&x);
    event_loop(&x);
    return 0;
}
