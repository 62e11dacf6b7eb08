/*
 * llm_http - libcurl multi on libevent (see llm_http.h).
 *
 * curl tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when
 * to call it back (CURLMOPT_TIMERFUNCTION); every libevent wake-up goes
 * through action(), which runs curl_multi_socket_action, then releases
 * transfers cancelled inside curl's callbacks, then reports finished
 * ones.  Owns: the multi handle, one event per curl socket, one timer
 * per transfer.  A finished transfer's easy handle (curl_easy_reset) and
 * timer go to a bounded free list, so a new request allocates neither
 * and keeps the handle's buffers.  Fails by reporting a transfer's end (struct
 * llm_xfer_result); it never logs request headers (no CURLOPT_VERBOSE:
 * it would print keys).
 */
#include "llm_http.h"

#include <curl/curl.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "omni_alloc.h"
#include "omni_time.h"

/* Released transfers kept for reuse: enough for a burst of requests,
 * small next to the handles of a large number of held streams. */
#define SPARE_MAX 256

/* One curl socket and its libevent event. */
struct sock {
    struct event *ev;
    struct sock *prev, *next;
};

struct llm_xfer {
    struct llm_http *h;
    CURL *easy;
    struct llm_xfer *prev, *next; /* h->all */
    struct llm_xfer *reap_next;   /* h->reap, or h->spare once released */
    char *url;
    char *body;
    struct curl_slist *headers;
    llm_xfer_data_cb on_data;
    llm_xfer_done_cb on_done;
    void *arg;
    struct event *timer;
    int64_t start_ms, start_us, last_ms, deadline;
    int status;
    bool got_byte; /* any header or body byte arrived */
    bool dead;     /* cancelled: no callback may run */
    char ctype[128];
    char retry_after[64];
    char retry_after_ms[32];
    char errbuf[CURL_ERROR_SIZE];
};

struct llm_http {
    struct event_base *base;
    CURLM *multi;
    struct event *timer;
    struct llm_http_limits lim;
    struct llm_xfer *all;
    size_t n;
    struct llm_xfer *reap;
    struct llm_xfer *spare; /* released, easy handle reset, timer idle */
    size_t nspare;
    struct sock *socks;
    int depth;           /* > 0 while curl runs our callbacks */
    const char *ca_file; /* $SSL_CERT_FILE, or NULL: libcurl's default */
};

static void on_xfer_timer(evutil_socket_t fd, short what, void *arg);

static void tv_ms(struct timeval *tv, int64_t ms)
{
    if (ms < 0)
        ms = 0;
    tv->tv_sec = (time_t)(ms / 1000);
    tv->tv_usec = (suseconds_t)((ms % 1000) * 1000);
}

/* Free x with its easy handle and timer. */
static void xfer_free(struct llm_xfer *x)
{
    event_free(x->timer);
    curl_easy_cleanup(x->easy);
    omni_free(x);
}

/* Release x, keeping its handle and timer for a next transfer while the
 * free list has room; x must be out of curl's callbacks. */
static void destroy(struct llm_xfer *x)
{
    struct llm_http *h = x->h;
    event_del(x->timer);
    curl_multi_remove_handle(h->multi, x->easy);
    curl_slist_free_all(x->headers);
    omni_free(x->body);
    omni_free(x->url);
    if (x->prev)
        x->prev->next = x->next;
    else
        h->all = x->next;
    if (x->next)
        x->next->prev = x->prev;
    h->n--;
    if (h->nspare >= SPARE_MAX) {
        xfer_free(x);
        return;
    }
    curl_easy_reset(x->easy);
    CURL *e = x->easy;
    struct event *t = x->timer;
    memset(x, 0, sizeof *x);
    x->h = h;
    x->easy = e;
    x->timer = t;
    x->reap_next = h->spare;
    h->spare = x;
    h->nspare++;
}

/* A cleared transfer: from the free list, or new. */
static struct llm_xfer *xfer_get(struct llm_http *h)
{
    struct llm_xfer *x = h->spare;
    if (x) {
        h->spare = x->reap_next;
        h->nspare--;
        x->reap_next = NULL;
        return x;
    }
    CURL *e = curl_easy_init();
    if (!e)
        return NULL;
    x = omni_calloc(1, sizeof *x);
    x->h = h;
    x->easy = e;
    x->timer = evtimer_new(h->base, on_xfer_timer, x);
    return x;
}

/* Report the end of x and release it. */
static void finish(struct llm_xfer *x, enum llm_xfer_end end, const char *why)
{
    struct llm_xfer_result res = {
        .end = end,
        .status = x->status,
        .error = why,
        .elapsed_us = omni_now_us() - x->start_us,
        .content_type = x->ctype,
        .retry_after = x->retry_after,
        .retry_after_ms = x->retry_after_ms,
    };
    x->dead = true;
    event_del(x->timer);
    x->on_done(x->arg, &res);
    destroy(x);
}

/* Arm the transfer's one timer for whichever comes first: the first-byte
 * or idle limit, or the deadline.  The idle limit is checked lazily:
 * bytes only move last_ms, and the timer re-arms itself when it fires
 * early, so a busy stream costs no timer operation per chunk. */
static void arm(struct llm_xfer *x, int64_t now)
{
    int64_t due = x->got_byte ? x->last_ms + x->h->lim.idle_ms
                              : x->start_ms + x->h->lim.first_byte_ms;
    if (x->deadline && x->deadline < due)
        due = x->deadline;
    struct timeval tv;
    tv_ms(&tv, due - now);
    evtimer_add(x->timer, &tv);
}

static void on_xfer_timer(evutil_socket_t fd, short what, void *arg)
{
    struct llm_xfer *x = arg;
    (void)fd;
    (void)what;
    int64_t now = omni_now_ms();
    if (x->deadline && now >= x->deadline)
        finish(x, LLM_XFER_DEADLINE, "deadline passed");
    else if (!x->got_byte && now >= x->start_ms + x->h->lim.first_byte_ms)
        finish(x, LLM_XFER_FIRST_BYTE,
               "no reply within the first-byte timeout");
    else if (x->got_byte && now >= x->last_ms + x->h->lim.idle_ms)
        finish(x, LLM_XFER_IDLE, "stream idle for too long");
    else
        arm(x, now);
}

static void touch(struct llm_xfer *x)
{
    x->last_ms = omni_now_ms();
    if (!x->got_byte) {
        x->got_byte = true;
        arm(x, x->last_ms);
    }
}

/* Copy a header's value (after "name:") if line is that header. */
static void grab(const char *line, size_t n, const char *name, char *out,
                 size_t outlen)
{
    size_t k = strlen(name);
    if (n <= k || line[k] != ':' || strncasecmp(line, name, k) != 0)
        return;
    const char *v = line + k + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' ' ||
                       end[-1] == '\t'))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, v, len);
    out[len] = '\0';
}

static size_t on_header(char *p, size_t size, size_t nmemb, void *arg)
{
    struct llm_xfer *x = arg;
    size_t n = size * nmemb;
    if (x->dead)
        return 0;
    touch(x);
    /* A status line starts a new response head (after a 100 Continue,
     * say): forget the previous one's headers. */
    if (n > 5 && strncmp(p, "HTTP/", 5) == 0) {
        const char *s = memchr(p, ' ', n);
        int status = 0;
        for (s = s ? s + 1 : p + n; s < p + n && *s >= '0' && *s <= '9'; s++)
            status = status * 10 + (*s - '0');
        x->status = status;
        x->ctype[0] = x->retry_after[0] = x->retry_after_ms[0] = '\0';
        return n;
    }
    grab(p, n, "content-type", x->ctype, sizeof x->ctype);
    grab(p, n, "retry-after", x->retry_after, sizeof x->retry_after);
    grab(p, n, "retry-after-ms", x->retry_after_ms, sizeof x->retry_after_ms);
    return n;
}

static size_t on_write(char *p, size_t size, size_t nmemb, void *arg)
{
    struct llm_xfer *x = arg;
    size_t n = size * nmemb;
    if (x->dead)
        return 0;
    touch(x);
    if (x->on_data(x->arg, p, n) != 0)
        llm_xfer_cancel(x);
    /* Returning less than n makes curl stop the transfer; the handle is
     * released after curl returns (reap). */
    return x->dead ? 0 : n;
}

/* Release transfers cancelled while curl was running our callbacks. */
static void reap(struct llm_http *h)
{
    while (h->reap) {
        struct llm_xfer *x = h->reap;
        h->reap = x->reap_next;
        destroy(x);
    }
}

static void report_done(struct llm_http *h)
{
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct llm_xfer *x = NULL;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&x);
        if (!x || x->dead)
            continue;
        CURLcode rc = m->data.result;
        const char *why = x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc);
        if (rc == CURLE_OK)
            finish(x, LLM_XFER_OK, "");
        else if (rc == CURLE_OPERATION_TIMEDOUT && !x->got_byte)
            finish(x, LLM_XFER_CONNECT_TIMEOUT, why);
        else
            finish(x, x->got_byte ? LLM_XFER_BROKEN : LLM_XFER_CONNECT, why);
    }
}

/* Every curl wake-up: run curl, then clean up and report. */
static void action(struct llm_http *h, curl_socket_t fd, int ev)
{
    int running;
    h->depth++;
    curl_multi_socket_action(h->multi, fd, ev, &running);
    h->depth--;
    reap(h);
    report_done(h);
}

static void on_sock(evutil_socket_t fd, short what, void *arg)
{
    int ev = ((what & EV_READ) ? CURL_CSELECT_IN : 0) |
             ((what & EV_WRITE) ? CURL_CSELECT_OUT : 0);
    action(arg, fd, ev);
}

static void on_multi_timer(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    action(arg, CURL_SOCKET_TIMEOUT, 0);
}

static void sock_free(struct llm_http *h, struct sock *s)
{
    event_free(s->ev);
    if (s->prev)
        s->prev->next = s->next;
    else
        h->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    omni_free(s);
}

/* CURLMOPT_SOCKETFUNCTION: watch fd for what curl asks. */
static int sock_cb(CURL *easy, curl_socket_t fd, int what, void *userp,
                   void *socketp)
{
    struct llm_http *h = userp;
    struct sock *s = socketp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (s)
            sock_free(h, s);
        return 0;
    }
    short kind = (short)(EV_PERSIST | ((what & CURL_POLL_IN) ? EV_READ : 0) |
                         ((what & CURL_POLL_OUT) ? EV_WRITE : 0));
    if (!s) {
        s = omni_calloc(1, sizeof *s);
        s->ev = event_new(h->base, fd, kind, on_sock, h);
        s->next = h->socks;
        if (h->socks)
            h->socks->prev = s;
        h->socks = s;
        curl_multi_assign(h->multi, fd, s);
    } else {
        event_del(s->ev);
        event_assign(s->ev, h->base, fd, kind, on_sock, h);
    }
    event_add(s->ev, NULL);
    return 0;
}

/* CURLMOPT_TIMERFUNCTION: one libevent timer for the whole multi. */
static int timer_cb(CURLM *multi, long ms, void *userp)
{
    struct llm_http *h = userp;
    (void)multi;
    if (ms < 0) {
        evtimer_del(h->timer);
    } else {
        struct timeval tv;
        tv_ms(&tv, ms);
        evtimer_add(h->timer, &tv);
    }
    return 0;
}

struct llm_http *llm_http_new(struct event_base *base,
                              const struct llm_http_limits *lim,
                              char err[OMNI_ERR_LEN])
{
    CURLM *multi = curl_multi_init();
    if (!multi) {
        snprintf(err, OMNI_ERR_LEN, "cannot create a curl multi handle");
        return NULL;
    }
    struct llm_http *h = omni_calloc(1, sizeof *h);
    h->base = base;
    h->multi = multi;
    h->lim = *lim;
    h->ca_file = getenv("SSL_CERT_FILE");
    if (h->ca_file && !*h->ca_file)
        h->ca_file = NULL;
    h->timer = evtimer_new(base, on_multi_timer, h);
    curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, sock_cb);
    curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, h);
    curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, timer_cb);
    curl_multi_setopt(multi, CURLMOPT_TIMERDATA, h);
    curl_multi_setopt(multi, CURLMOPT_PIPELINING, (long)CURLPIPE_MULTIPLEX);
    curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                      lim->max_host_conns);
    /* libcurl's default cache is 4 x the transfers in progress, so a
     * dip in concurrency closes connections the next burst reopens
     * (0 keeps that default). */
    if (lim->max_idle_conns > 0)
        curl_multi_setopt(multi, CURLMOPT_MAXCONNECTS, lim->max_idle_conns);
    return h;
}

void llm_http_free(struct llm_http *h)
{
    if (!h)
        return;
    h->reap = NULL;
    while (h->all)
        destroy(h->all);
    while (h->spare) {
        struct llm_xfer *x = h->spare;
        h->spare = x->reap_next;
        xfer_free(x);
    }
    curl_multi_cleanup(h->multi);
    /* Connections left in the cache may close without a REMOVE call. */
    while (h->socks)
        sock_free(h, h->socks);
    event_free(h->timer);
    omni_free(h);
}

struct llm_xfer *llm_http_start(struct llm_http *h, struct llm_http_req *req,
                                int64_t deadline, llm_xfer_data_cb on_data,
                                llm_xfer_done_cb on_done, void *arg,
                                char err[OMNI_ERR_LEN])
{
    if (h->depth > 0) {
        snprintf(err, OMNI_ERR_LEN,
                 "cannot start a transfer from a curl "
                 "callback");
        return NULL;
    }
    struct llm_xfer *x = xfer_get(h);
    if (!x) {
        snprintf(err, OMNI_ERR_LEN, "cannot create a curl easy handle");
        return NULL;
    }
    CURL *e = x->easy;
    x->url = req->url;
    x->body = req->body;
    /* An empty Expect stops curl from waiting for 100 Continue before
     * sending a large body. */
    x->headers = curl_slist_append(req->headers, "Expect:");
    req->url = NULL;
    req->body = NULL;
    req->headers = NULL;
    x->on_data = on_data;
    x->on_done = on_done;
    x->arg = arg;
    x->deadline = deadline;
    x->start_ms = omni_now_ms();
    x->start_us = omni_now_us();

    curl_easy_setopt(e, CURLOPT_URL, x->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, x->headers);
    if (x->body) {
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, x->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                         (curl_off_t)req->body_len);
    } else {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    }
    curl_easy_setopt(e, CURLOPT_PRIVATE, x);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Waiting for a connection that may multiplex only pays where
     * HTTP/2 can be negotiated (TLS); on cleartext HTTP/1.1 it would hold
     * every new request behind the first response's head. */
    if (strncmp(x->url, "https://", 8) == 0)
        curl_easy_setopt(e, CURLOPT_PIPEWAIT, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* Debian's libcurl has Debian's CA path built in; elsewhere (Amazon
     * Linux in Lambda) the bundle is named by SSL_CERT_FILE. */
    if (h->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, h->ca_file);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, h->lim.connect_ms);
    curl_easy_setopt(e, CURLOPT_USERAGENT, "omni-llm");
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, x->errbuf);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, x);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, x);

    x->next = h->all;
    if (h->all)
        h->all->prev = x;
    h->all = x;
    h->n++;
    CURLMcode mc = curl_multi_add_handle(h->multi, e);
    if (mc != CURLM_OK) {
        snprintf(err, OMNI_ERR_LEN, "cannot start transfer: %s",
                 curl_multi_strerror(mc));
        destroy(x);
        return NULL;
    }
    arm(x, x->start_ms);
    return x;
}

void llm_xfer_cancel(struct llm_xfer *x)
{
    if (!x || x->dead)
        return;
    x->dead = true;
    if (x->h->depth > 0) {
        x->reap_next = x->h->reap;
        x->h->reap = x;
        return;
    }
    destroy(x);
}

static int discard_data(void *arg, const char *p, size_t n)
{
    (void)arg;
    (void)p;
    (void)n;
    return 0;
}

static void discard_done(void *arg, const struct llm_xfer_result *res)
{
    (void)arg;
    (void)res;
}

void llm_xfer_detach(struct llm_xfer *x)
{
    x->on_data = discard_data;
    x->on_done = discard_done;
    x->arg = NULL;
}

int llm_xfer_status(const struct llm_xfer *x)
{
    return x->status;
}

const char *llm_xfer_content_type(const struct llm_xfer *x)
{
    return x->ctype;
}

const char *llm_xfer_retry_after(const struct llm_xfer *x)
{
    return x->retry_after;
}

const char *llm_xfer_retry_after_ms(const struct llm_xfer *x)
{
    return x->retry_after_ms;
}

size_t llm_http_in_flight(const struct llm_http *h)
{
    return h->n;
}
