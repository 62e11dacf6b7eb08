/*
 * omni-httpload - open-loop HTTP/1.1 load generator for bench/llm.
 *
 *   omni-httpload -u http://127.0.0.1:PORT/PATH -R RATE
 *                 [-d SECS] [-w WARMUP_SECS] [-n TOTAL] [-c CONNS]
 *                 [-b BODY] [-H 'Name: value']... [--stream]
 *                 [--expect STR] [--timeout SECS]
 *
 * Request i is due at start + i/RATE and its latency is measured from
 * that due time, not from when a connection became free: when every
 * keep-alive connection is busy, due requests wait in a FIFO and the
 * wait counts (no coordinated omission).  Requests due during the
 * warm-up are sent but not counted.  For streams (--stream) the time to
 * the first complete SSE event ("\n\n" in the decoded body) is the time
 * to first token.  A reply counts as ok when its status is 200 and its
 * body holds the --expect string (default "chat.completion", or
 * "data: [DONE]" with --stream).  Prints one JSON line; exits 1 when a
 * counted request failed or was still open --timeout seconds after the
 * last one was due, 2 on a usage or setup error.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "bench_stats.h"
#include "omni_alloc.h"
#include "omni_buf.h"

#define MAX_HEAD      (64 * 1024)
#define BODY_KEEP     (1024 * 1024)
#define MAX_ERR_KINDS 16

/* Where a connection's response parser is. */
enum pstate {
    ST_HEAD,    /* status line and headers */
    ST_LEN,     /* Content-Length body */
    ST_CSIZE,   /* chunk-size line */
    ST_CDATA,   /* chunk data */
    ST_CCRLF,   /* CRLF after chunk data */
    ST_TRAILER, /* trailer lines after the last chunk */
    ST_EOF,     /* body delimited by connection close */
};

struct lg;

struct conn {
    struct lg *lg;
    int fd;
    struct event *rd, *wr;
    bool connecting, busy, measured;
    int64_t due;  /* µs, when its current request was due */
    int64_t ttft; /* µs after due of the first SSE event, -1 none */
    size_t wpos;  /* request bytes written */
    enum pstate st;
    char *in;
    size_t inlen, incap;
    int status;
    long long left;
    bool close_after;
    char prev;  /* last decoded body byte (SSE event detection) */
    char *body; /* decoded body, its first BODY_KEEP bytes */
    size_t blen, bcap;
};

struct err_kind {
    char name[24];
    unsigned long n;
};

struct lg {
    struct event_base *base;
    struct event *timer;
    struct sockaddr_in addr;
    char *req; /* the whole request, sent again and again */
    size_t reqlen;
    const char *url, *expect;
    double rate;
    int64_t start, warm_end, sched_end, total, next_i;
    double timeout_s;
    bool stream, sched_done;
    struct conn *conns;
    long nconns;
    struct conn **idle;
    long nidle;
    int64_t *pend; /* ring of due times waiting for a connection */
    size_t pcap, phead, plen, pmax;
    long open; /* requests sent and not finished */
    long measured_open;
    unsigned long sent, ok, timeouts;
    struct err_kind errs[MAX_ERR_KINDS];
    size_t nerrs;
    int64_t lag_max, last_done;
    unsigned long done_measured;
    struct bench_lat lat, ttft;
};

static int64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void count_err(struct lg *lg, const char *name)
{
    for (size_t i = 0; i < lg->nerrs; i++) {
        if (!strcmp(lg->errs[i].name, name)) {
            lg->errs[i].n++;
            return;
        }
    }
    /* past the table's size, the last kind counts everything else */
    if (lg->nerrs == MAX_ERR_KINDS) {
        snprintf(lg->errs[MAX_ERR_KINDS - 1].name, sizeof lg->errs[0].name,
                 "other");
        lg->errs[MAX_ERR_KINDS - 1].n++;
        return;
    }
    struct err_kind *e = &lg->errs[lg->nerrs++];
    snprintf(e->name, sizeof e->name, "%s", name);
    e->n = 1;
}

static void conn_open(struct conn *c);
static void conn_retry(struct conn *c);
static void conn_send(struct conn *c, int64_t due);
static void maybe_finish(struct lg *lg);

/* Queue a due request until a connection is free. */
static void pend_push(struct lg *lg, int64_t due)
{
    if (lg->plen == lg->pcap) {
        size_t ncap = lg->pcap ? lg->pcap * 2 : 1024;
        int64_t *n = omni_malloc(ncap * sizeof *n);
        for (size_t i = 0; i < lg->plen; i++)
            n[i] = lg->pend[(lg->phead + i) % lg->pcap];
        omni_free(lg->pend);
        lg->pend = n;
        lg->pcap = ncap;
        lg->phead = 0;
    }
    lg->pend[(lg->phead + lg->plen) % lg->pcap] = due;
    lg->plen++;
    if (lg->plen > lg->pmax)
        lg->pmax = lg->plen;
}

/* A free connection takes the oldest waiting request, or goes idle. */
static void conn_ready(struct conn *c)
{
    struct lg *lg = c->lg;
    if (lg->plen) {
        int64_t due = lg->pend[lg->phead];
        lg->phead = (lg->phead + 1) % lg->pcap;
        lg->plen--;
        conn_send(c, due);
        return;
    }
    lg->idle[lg->nidle++] = c;
}

/* End the current request of c: count it, free the connection. */
static void finish_req(struct conn *c, const char *err)
{
    struct lg *lg = c->lg;
    int64_t t = now_us();
    c->busy = false;
    lg->open--;
    if (c->measured) {
        lg->measured_open--;
        lg->done_measured++;
        lg->last_done = t;
        if (err) {
            count_err(lg, err);
        } else {
            lg->ok++;
            bench_lat_add(&lg->lat, t - c->due);
            if (lg->stream && c->ttft >= 0)
                bench_lat_add(&lg->ttft, c->ttft);
        }
    }
}

/* Reset the response parser for the next request on c. */
static void parser_reset(struct conn *c)
{
    c->st = ST_HEAD;
    c->status = 0;
    c->left = -1;
    c->close_after = false;
    c->prev = 0;
    c->blen = 0;
    c->ttft = -1;
}

static void conn_close(struct conn *c)
{
    if (c->fd < 0)
        return;
    event_free(c->rd);
    event_free(c->wr);
    c->rd = c->wr = NULL;
    close(c->fd);
    c->fd = -1;
}

/* Drop c (its request, if any, failed with err) and connect again. */
static void conn_fail(struct conn *c, const char *err)
{
    struct lg *lg = c->lg;
    if (c->busy)
        finish_req(c, err);
    else if (!c->connecting) {
        /* an idle connection the server closed: take it off the list */
        for (long i = 0; i < lg->nidle; i++) {
            if (lg->idle[i] == c) {
                lg->idle[i] = lg->idle[--lg->nidle];
                break;
            }
        }
    }
    conn_close(c);
    parser_reset(c);
    c->inlen = 0;
    conn_open(c);
    maybe_finish(lg);
}

static void body_feed(struct conn *c, const char *p, size_t n)
{
    if (c->ttft < 0) {
        for (size_t i = 0; i < n; i++) {
            if (p[i] == '\n' && c->prev == '\n') {
                c->ttft = now_us() - c->due;
                break;
            }
            c->prev = p[i];
        }
    }
    size_t room = BODY_KEEP - c->blen;
    if (n > room)
        n = room;
    if (c->blen + n > c->bcap) {
        while (c->blen + n > c->bcap)
            c->bcap *= 2;
        c->body = omni_realloc(c->body, c->bcap);
    }
    memcpy(c->body + c->blen, p, n);
    c->blen += n;
}

/* The response is complete: check it and move on. */
static void resp_done(struct conn *c)
{
    struct lg *lg = c->lg;
    char name[24];
    const char *err = NULL;
    if (c->status != 200) {
        snprintf(name, sizeof name, "http_%d", c->status);
        err = name;
    } else if (!memmem(c->body, c->blen, lg->expect, strlen(lg->expect))) {
        err = "bad_body";
    }
    finish_req(c, err);
    bool close_it = c->close_after || c->st == ST_EOF;
    parser_reset(c);
    if (close_it) {
        conn_close(c);
        c->inlen = 0;
        conn_open(c);
    } else {
        conn_ready(c);
    }
    maybe_finish(lg);
}

static bool head_has(const char *v, size_t n, const char *word)
{
    size_t w = strlen(word);
    for (size_t i = 0; i + w <= n; i++)
        if (!strncasecmp(v + i, word, w))
            return true;
    return false;
}

/* Parse the status line and headers in c->in[0..n). */
static int parse_head(struct conn *c, size_t n)
{
    const char *p = c->in;
    if (n < 12 || strncmp(p, "HTTP/1.", 7))
        return -1;
    c->status = (p[9] - '0') * 100 + (p[10] - '0') * 10 + (p[11] - '0');
    bool chunked = false, has_len = false;
    long long len = 0;
    const char *line = memchr(p, '\n', n);
    while (line && (size_t)(line - p) + 1 < n) {
        line++;
        const char *eol = memchr(line, '\n', n - (size_t)(line - p));
        if (!eol)
            break;
        size_t ll = (size_t)(eol - line);
        const char *colon = memchr(line, ':', ll);
        if (colon) {
            size_t kl = (size_t)(colon - line);
            const char *v = colon + 1;
            size_t vl = (size_t)(eol - v);
            if (kl == 14 && !strncasecmp(line, "content-length", kl)) {
                has_len = true;
                len = strtoll(v, NULL, 10);
            } else if (kl == 17 &&
                       !strncasecmp(line, "transfer-encoding", kl)) {
                chunked = head_has(v, vl, "chunked");
            } else if (kl == 10 && !strncasecmp(line, "connection", kl)) {
                c->close_after = head_has(v, vl, "close");
            }
        }
        line = eol;
    }
    if (chunked)
        c->st = ST_CSIZE;
    else if (has_len) {
        c->st = ST_LEN;
        c->left = len;
    } else if (c->status == 204 || c->status == 304) {
        c->st = ST_LEN;
        c->left = 0;
    } else {
        c->st = ST_EOF;
    }
    return 0;
}

/* Consume what c->in holds; 1 when a response completed, -1 on a
 * malformed response, 0 when more bytes are needed. */
static int parse(struct conn *c, size_t *off)
{
    for (;;) {
        char *p = c->in + *off;
        size_t n = c->inlen - *off;
        char *eol;
        switch (c->st) {
        case ST_HEAD:
            eol = memmem(p, n, "\r\n\r\n", 4);
            if (!eol)
                return n > MAX_HEAD ? -1 : 0;
            if (parse_head(c, (size_t)(eol - p) + 2) < 0)
                return -1;
            *off += (size_t)(eol - p) + 4;
            if (c->st == ST_LEN && c->left == 0)
                return 1;
            break;
        case ST_LEN: {
            size_t k = n < (size_t)c->left ? n : (size_t)c->left;
            body_feed(c, p, k);
            *off += k;
            c->left -= (long long)k;
            if (!c->left)
                return 1;
            return 0;
        }
        case ST_CSIZE:
            eol = memmem(p, n, "\r\n", 2);
            if (!eol)
                return n > 64 ? -1 : 0;
            c->left = strtoll(p, NULL, 16);
            if (c->left < 0)
                return -1;
            *off += (size_t)(eol - p) + 2;
            c->st = c->left ? ST_CDATA : ST_TRAILER;
            break;
        case ST_CDATA: {
            if (!n)
                return 0;
            size_t k = n < (size_t)c->left ? n : (size_t)c->left;
            body_feed(c, p, k);
            *off += k;
            c->left -= (long long)k;
            if (c->left)
                return 0;
            c->st = ST_CCRLF;
            break;
        }
        case ST_CCRLF:
            if (n < 2)
                return 0;
            if (p[0] != '\r' || p[1] != '\n')
                return -1;
            *off += 2;
            c->st = ST_CSIZE;
            break;
        case ST_TRAILER:
            eol = memmem(p, n, "\r\n", 2);
            if (!eol)
                return n > MAX_HEAD ? -1 : 0;
            *off += (size_t)(eol - p) + 2;
            if (eol == p)
                return 1;
            break;
        case ST_EOF:
            body_feed(c, p, n);
            *off += n;
            return 0;
        }
    }
}

static void on_read(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    if (c->incap - c->inlen < 8192) {
        c->incap *= 2;
        c->in = omni_realloc(c->in, c->incap);
    }
    ssize_t r = read(fd, c->in + c->inlen, c->incap - c->inlen);
    if (r < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (r <= 0) {
        if (c->busy && c->st == ST_EOF && r == 0)
            resp_done(c);
        else
            conn_fail(c, "closed");
        return;
    }
    if (!c->busy) {
        conn_fail(c, "unexpected_data");
        return;
    }
    c->inlen += (size_t)r;
    size_t off = 0;
    int rc = parse(c, &off);
    if (rc < 0) {
        conn_fail(c, "bad_response");
        return;
    }
    memmove(c->in, c->in + off, c->inlen - off);
    c->inlen -= off;
    if (rc == 1) {
        if (c->inlen) {
            conn_fail(c, "unexpected_data");
            return;
        }
        resp_done(c);
    }
}

/* Write what is left of the request; arm the write event if needed. */
static void conn_write(struct conn *c)
{
    struct lg *lg = c->lg;
    while (c->wpos < lg->reqlen) {
        ssize_t w =
            send(c->fd, lg->req + c->wpos, lg->reqlen - c->wpos, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) {
                event_add(c->wr, NULL);
                return;
            }
            conn_fail(c, "send");
            return;
        }
        c->wpos += (size_t)w;
    }
}

static void on_write(evutil_socket_t fd, short what, void *arg)
{
    (void)what;
    struct conn *c = arg;
    if (c->connecting) {
        int err = 0;
        socklen_t len = sizeof err;
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len);
        if (err) {
            c->connecting = false;
            count_err(c->lg, "connect");
            conn_close(c);
            conn_retry(c);
            return;
        }
        c->connecting = false;
        event_add(c->rd, NULL);
        conn_ready(c);
        return;
    }
    conn_write(c);
}

static void on_retry(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    conn_open(arg);
}

/* Connect again in 100 ms rather than spin on a refusing server. */
static void conn_retry(struct conn *c)
{
    struct timeval tv = {0, 100000};
    event_base_once(c->lg->base, -1, EV_TIMEOUT, on_retry, c, &tv);
}

static void conn_open(struct conn *c)
{
    struct lg *lg = c->lg;
    c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (c->fd < 0) {
        fprintf(stderr, "omni-httpload: cannot create socket: %s\n",
                strerror(errno));
        exit(2);
    }
    int one = 1;
    setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    c->rd = event_new(lg->base, c->fd, EV_READ | EV_PERSIST, on_read, c);
    c->wr = event_new(lg->base, c->fd, EV_WRITE, on_write, c);
    c->connecting = true;
    if (connect(c->fd, (struct sockaddr *)&lg->addr, sizeof lg->addr) < 0 &&
        errno != EINPROGRESS) {
        count_err(lg, "connect");
        c->connecting = false;
        conn_close(c);
        conn_retry(c);
        return;
    }
    event_add(c->wr, NULL);
}

static void conn_send(struct conn *c, int64_t due)
{
    struct lg *lg = c->lg;
    c->busy = true;
    c->due = due;
    c->measured = due >= lg->warm_end;
    c->wpos = 0;
    lg->open++;
    if (c->measured)
        lg->measured_open++;
    lg->sent++;
    conn_write(c);
}

/* A request is due: send it on an idle connection or queue it. */
static void dispatch(struct lg *lg, int64_t due)
{
    if (lg->nidle) {
        conn_send(lg->idle[--lg->nidle], due);
        return;
    }
    pend_push(lg, due);
}

static void maybe_finish(struct lg *lg)
{
    if (lg->sched_done && lg->open == 0 && lg->plen == 0)
        event_base_loopbreak(lg->base);
}

static void on_timeout(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lg *lg = arg;
    lg->timeouts = (unsigned long)lg->measured_open;
    for (size_t i = 0; i < lg->plen; i++)
        if (lg->pend[(lg->phead + i) % lg->pcap] >= lg->warm_end)
            lg->timeouts++;
    event_base_loopbreak(lg->base);
}

/* Send every request whose time has come, then sleep until the next. */
static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    struct lg *lg = arg;
    int64_t now = now_us();
    for (;;) {
        int64_t due =
            lg->start + (int64_t)((double)lg->next_i * 1e6 / lg->rate);
        if (due >= lg->sched_end || (lg->total && lg->next_i >= lg->total)) {
            lg->sched_done = true;
            struct timeval tv = {
                (time_t)lg->timeout_s,
                (suseconds_t)((lg->timeout_s - (double)(time_t)lg->timeout_s) *
                              1e6)};
            event_base_once(lg->base, -1, EV_TIMEOUT, on_timeout, lg, &tv);
            maybe_finish(lg);
            return;
        }
        if (due > now) {
            struct timeval tv = {(time_t)((due - now) / 1000000),
                                 (suseconds_t)((due - now) % 1000000)};
            evtimer_add(lg->timer, &tv);
            return;
        }
        if (now - due > lg->lag_max)
            lg->lag_max = now - due;
        dispatch(lg, due);
        lg->next_i++;
    }
}

static int parse_url(struct lg *lg, const char *url, const char **path)
{
    const char *p = url;
    if (strncmp(p, "http://", 7))
        return -1;
    p += 7;
    const char *colon = strchr(p, ':');
    const char *slash = strchr(p, '/');
    if (!colon || !slash || colon > slash)
        return -1;
    char host[64];
    size_t hl = (size_t)(colon - p);
    if (hl >= sizeof host)
        return -1;
    memcpy(host, p, hl);
    host[hl] = 0;
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (end != slash || port <= 0 || port > 65535)
        return -1;
    lg->addr.sin_family = AF_INET;
    lg->addr.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &lg->addr.sin_addr) != 1)
        return -1;
    *path = slash;
    return 0;
}

static void usage(void)
{
    fprintf(stderr, "usage: omni-httpload -u http://IP:PORT/PATH -R RATE "
                    "[-d SECS] [-w SECS] [-n TOTAL]\n"
                    "         [-c CONNS] [-b BODY] [-H 'Name: value']... "
                    "[--stream] [--expect STR] [--timeout SECS]\n");
    exit(2);
}

static void print_json(struct lg *lg, double secs, double cpu)
{
    double win = lg->last_done > lg->warm_end
                     ? (double)(lg->last_done - lg->warm_end) / 1e6
                     : 0;
    printf("{\"url\":\"%s\",\"rate\":%.0f,\"conns\":%ld,\"secs\":%.2f,"
           "\"sent\":%lu,\"ok\":%lu,\"errors\":{",
           lg->url, lg->rate, lg->nconns, secs, lg->sent, lg->ok);
    for (size_t i = 0; i < lg->nerrs; i++)
        printf("%s\"%s\":%lu", i ? "," : "", lg->errs[i].name, lg->errs[i].n);
    printf("},\"timeouts\":%lu,\"rps\":%.0f,\"p50_us\":%lld,"
           "\"p90_us\":%lld,\"p99_us\":%lld,\"p999_us\":%lld,"
           "\"max_us\":%lld",
           lg->timeouts, win > 0 ? (double)lg->done_measured / win : 0,
           (long long)bench_lat_pct(&lg->lat, 50),
           (long long)bench_lat_pct(&lg->lat, 90),
           (long long)bench_lat_pct(&lg->lat, 99),
           (long long)bench_lat_pct(&lg->lat, 99.9),
           (long long)bench_lat_pct(&lg->lat, 100));
    if (lg->stream)
        printf(",\"ttft_p50_us\":%lld,\"ttft_p90_us\":%lld,"
               "\"ttft_p99_us\":%lld",
               (long long)bench_lat_pct(&lg->ttft, 50),
               (long long)bench_lat_pct(&lg->ttft, 90),
               (long long)bench_lat_pct(&lg->ttft, 99));
    printf(",\"lag_max_us\":%lld,\"queue_max\":%zu,\"cpu_s\":%.2f}\n",
           (long long)lg->lag_max, lg->pmax, cpu);
}

/* Build the request bytes once: POST with the body, keep-alive. */
static void build_request(struct lg *lg, const char *path, const char *body,
                          char **hdrs, int nh)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_buf_addf(&b,
                  "POST %s HTTP/1.1\r\nHost: %s:%u\r\n"
                  "Content-Type: application/json\r\n"
                  "Content-Length: %zu\r\n",
                  path, inet_ntoa(lg->addr.sin_addr), ntohs(lg->addr.sin_port),
                  strlen(body));
    for (int i = 0; i < nh; i++)
        omni_buf_addf(&b, "%s\r\n", hdrs[i]);
    omni_buf_addf(&b, "\r\n%s", body);
    lg->req = omni_buf_detach(&b, &lg->reqlen);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"stream", no_argument, NULL, 's'},
        {"expect", required_argument, NULL, 'e'},
        {"timeout", required_argument, NULL, 't'},
        {NULL, 0, NULL, 0},
    };
    struct lg lg = {.rate = 1000, .timeout_s = 10, .nconns = 32};
    const char *body = "{}", *path = NULL;
    double dur = 0, warm = 0;
    char *hdrs[32];
    int nh = 0, o;
    while ((o = getopt_long(argc, argv, "u:R:d:w:n:c:b:H:", opts, NULL)) !=
           -1) {
        switch (o) {
        case 'u': lg.url = optarg; break;
        case 'R': lg.rate = strtod(optarg, NULL); break;
        case 'd': dur = strtod(optarg, NULL); break;
        case 'w': warm = strtod(optarg, NULL); break;
        case 'n': lg.total = strtoll(optarg, NULL, 10); break;
        case 'c': lg.nconns = strtol(optarg, NULL, 10); break;
        case 'b': body = optarg; break;
        case 'H':
            if (nh == 32)
                usage();
            hdrs[nh++] = optarg;
            break;
        case 's': lg.stream = true; break;
        case 'e': lg.expect = optarg; break;
        case 't': lg.timeout_s = strtod(optarg, NULL); break;
        default: usage();
        }
    }
    if (!lg.url || parse_url(&lg, lg.url, &path) < 0 || lg.rate <= 0 ||
        lg.nconns < 1 || (dur <= 0 && lg.total <= 0))
        usage();
    if (!lg.expect)
        lg.expect = lg.stream ? "data: [DONE]" : "chat.completion";
    build_request(&lg, path, body, hdrs, nh);

    /* many connections need many descriptors: take the hard limit */
    struct rlimit rl;
    if (!getrlimit(RLIMIT_NOFILE, &rl)) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    struct event_config *cfg = event_config_new();
    event_config_set_flag(cfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    lg.base = event_base_new_with_config(cfg);
    event_config_free(cfg);
    if (!lg.base) {
        fprintf(stderr, "omni-httpload: cannot create the event base\n");
        return 2;
    }
    lg.conns = omni_calloc((size_t)lg.nconns, sizeof *lg.conns);
    lg.idle = omni_calloc((size_t)lg.nconns, sizeof(struct conn *));
    for (long i = 0; i < lg.nconns; i++) {
        struct conn *c = &lg.conns[i];
        c->lg = &lg;
        c->incap = 32768;
        c->in = omni_malloc(c->incap);
        c->bcap = 4096;
        c->body = omni_malloc(c->bcap);
        parser_reset(c);
        conn_open(c);
    }
    /* connect everything before the clock starts */
    int64_t until = now_us() + 10 * 1000000;
    while (lg.nidle < lg.nconns && now_us() < until)
        event_base_loop(lg.base, EVLOOP_ONCE);
    if (lg.nidle < lg.nconns) {
        fprintf(stderr, "omni-httpload: only %ld of %ld connections up\n",
                lg.nidle, lg.nconns);
        return 2;
    }
    lg.nerrs = 0;
    lg.start = now_us() + 1000;
    lg.warm_end = lg.start + (int64_t)(warm * 1e6);
    lg.sched_end = dur > 0 ? lg.warm_end + (int64_t)(dur * 1e6) : INT64_MAX;
    lg.timer = evtimer_new(lg.base, on_tick, &lg);
    struct timeval tv = {0, 1000};
    evtimer_add(lg.timer, &tv);
    event_base_dispatch(lg.base);

    double secs = (double)(now_us() - lg.start) / 1e6;
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
                 (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
    print_json(&lg, secs, cpu);
    bool bad = lg.timeouts || lg.nerrs;
    for (long i = 0; i < lg.nconns; i++) {
        conn_close(&lg.conns[i]);
        omni_free(lg.conns[i].in);
        omni_free(lg.conns[i].body);
    }
    event_free(lg.timer);
    event_base_free(lg.base);
    omni_free(lg.conns);
    omni_free(lg.idle);
    omni_free(lg.pend);
    omni_free(lg.req);
    bench_lat_free(&lg.lat);
    bench_lat_free(&lg.ttft);
    return bad ? 1 : 0;
}
