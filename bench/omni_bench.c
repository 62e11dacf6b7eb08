/*
 * omni-bench - load generator and checker for omni-broker.
 *
 *   omni-bench -s SOCKET -c CONNS -n TOTAL -p INFLIGHT_PER_CONN
 *              [--svc echo] [--op echo] [--body JSON] [--stream]
 *              [--duration SECS] [--timeout SECS]
 *
 * One thread polls every connection and drives libomni's non-blocking
 * API.  Each connection keeps INFLIGHT requests going until TOTAL are
 * sent (or SECS pass).  Every event must carry the id of a request sent
 * on that connection and still open; a stream's chunks must come with
 * seq 0, 1, 2, ... and, when the final says {"chunks":N}, all N of them.
 * Prints one JSON line and exits 1 if any reply was mismatched or
 * missing (still open when nothing moved for --timeout seconds).
 */
#include <jansson.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bench_stats.h"
#include "omni.h"
#include "omni_alloc.h"
#include "omni_time.h"

/* A request in flight: id 0 marks a free slot. */
struct open_req {
    uint64_t id;
    int64_t t0;        /* µs, when sent */
    uint64_t next_seq; /* next chunk expected */
};

struct conn {
    omni_client *c;
    struct open_req *tab; /* power of two, at least 2 x inflight */
    size_t mask, open;
};

struct err_count {
    char code[32];
    uint64_t n;
};

struct bench {
    const char *socket, *svc, *op, *body;
    long conns, total, inflight, duration, timeout;
    bool stream;
    uint64_t sent, ok, mismatched, missing;
    struct err_count errs[32];
    size_t nerrs;
    struct bench_lat lat;
};

static size_t slot_of(const struct conn *k, uint64_t id)
{
    return (size_t)(id * 0x9e3779b97f4a7c15ULL >> 32) & k->mask;
}

static struct open_req *find(struct conn *k, uint64_t id)
{
    for (size_t i = slot_of(k, id);; i = (i + 1) & k->mask) {
        if (k->tab[i].id == id)
            return &k->tab[i];
        if (!k->tab[i].id)
            return NULL;
    }
}

static void add(struct conn *k, uint64_t id, int64_t t0)
{
    size_t i = slot_of(k, id);
    while (k->tab[i].id)
        i = (i + 1) & k->mask;
    k->tab[i] = (struct open_req){id, t0, 0};
    k->open++;
}

/* Remove by backward shift so probe runs stay whole. */
static void del(struct conn *k, struct open_req *r)
{
    size_t i = (size_t)(r - k->tab);
    for (size_t j = (i + 1) & k->mask; k->tab[j].id; j = (j + 1) & k->mask) {
        size_t h = slot_of(k, k->tab[j].id);
        bool stays = i <= j ? (i < h && h <= j) : (i < h || h <= j);
        if (!stays) {
            k->tab[i] = k->tab[j];
            i = j;
        }
    }
    k->tab[i].id = 0;
    k->open--;
}

static void count_error(struct bench *b, const char *code)
{
    for (size_t i = 0; i < b->nerrs; i++)
        if (!strcmp(b->errs[i].code, code)) {
            b->errs[i].n++;
            return;
        }
    size_t i = b->nerrs < 31 ? b->nerrs++ : 31;
    snprintf(b->errs[i].code, sizeof b->errs[i].code, "%s",
             i == 31 ? "OTHER" : code);
    b->errs[i].n++;
}

/* The final of a stream says how many chunks it sent, when it does. */
static bool chunks_complete(const struct omni_event *ev, uint64_t got)
{
    json_t *j = json_loadb(ev->body, ev->body_len, 0, NULL);
    json_t *n = json_object_get(j, "chunks");
    bool ok = !json_is_integer(n) || (uint64_t)json_integer_value(n) == got;
    json_decref(j);
    return ok;
}

static void on_event(struct bench *b, struct conn *k,
                     const struct omni_event *ev)
{
    struct open_req *r = find(k, ev->id);
    if (!r) {
        b->mismatched++;
        return;
    }
    if (ev->type == OMNI_EVENT_CHUNK) {
        if (ev->seq != r->next_seq)
            b->mismatched++;
        r->next_seq = ev->seq + 1;
        return;
    }
    if (ev->type == OMNI_EVENT_FINAL) {
        if (b->stream && !chunks_complete(ev, r->next_seq))
            b->mismatched++;
        else
            b->ok++;
        bench_lat_add(&b->lat, omni_now_us() - r->t0);
    } else {
        count_error(b, ev->code);
    }
    del(k, r);
}

static int send_one(struct bench *b, struct conn *k)
{
    struct omni_request req = {.service = b->svc,
                               .op = b->op,
                               .body = b->body,
                               .body_len = strlen(b->body),
                               .stream = b->stream};
    uint64_t id;
    int64_t t0 = omni_now_us();
    if (omni_send(k->c, &req, &id) < 0) {
        fprintf(stderr, "omni-bench: cannot send: %s\n", omni_last_error(k->c));
        return -1;
    }
    add(k, id, t0);
    b->sent++;
    return 0;
}

static void print_result(struct bench *b, double secs)
{
    printf("{\"sent\":%llu,\"ok\":%llu,\"errors\":{",
           (unsigned long long)b->sent, (unsigned long long)b->ok);
    for (size_t i = 0; i < b->nerrs; i++)
        printf("%s\"%s\":%llu", i ? "," : "", b->errs[i].code,
               (unsigned long long)b->errs[i].n);
    uint64_t done = b->lat.n;
    for (size_t i = 0; i < b->nerrs; i++)
        done += b->errs[i].n;
    printf("},\"mismatched\":%llu,\"missing\":%llu,\"rps\":%.0f,"
           "\"p50_us\":%lld,\"p90_us\":%lld,\"p99_us\":%lld}\n",
           (unsigned long long)b->mismatched, (unsigned long long)b->missing,
           secs > 0 ? (double)done / secs : 0.0,
           (long long)bench_lat_pct(&b->lat, 50),
           (long long)bench_lat_pct(&b->lat, 90),
           (long long)bench_lat_pct(&b->lat, 99));
    fflush(stdout);
}

static const char usage[] =
    "usage: omni-bench -s SOCKET -c CONNS -n TOTAL -p INFLIGHT_PER_CONN\n"
    "                  [--svc echo] [--op echo] [--body JSON] [--stream]\n"
    "                  [--duration SECS] [--timeout SECS]\n";

static int parse_args(struct bench *b, int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        long *num = NULL;
        const char **str = NULL;
        if (!strcmp(a, "--stream")) {
            b->stream = true;
            continue;
        }
        if (!strcmp(a, "-s"))
            str = &b->socket;
        else if (!strcmp(a, "--svc"))
            str = &b->svc;
        else if (!strcmp(a, "--op"))
            str = &b->op;
        else if (!strcmp(a, "--body"))
            str = &b->body;
        else if (!strcmp(a, "-c"))
            num = &b->conns;
        else if (!strcmp(a, "-n"))
            num = &b->total;
        else if (!strcmp(a, "-p"))
            num = &b->inflight;
        else if (!strcmp(a, "--duration"))
            num = &b->duration;
        else if (!strcmp(a, "--timeout"))
            num = &b->timeout;
        if ((!num && !str) || !v) {
            fputs(usage, stderr);
            return -1;
        }
        if (str) {
            *str = v;
        } else {
            char *end;
            *num = strtol(v, &end, 10);
            if (*end || *num < 0) {
                fprintf(stderr, "omni-bench: bad value '%s' for %s\n", v, a);
                return -1;
            }
        }
        i++;
    }
    if (b->conns < 1 || b->inflight < 1 || (b->total < 1 && !b->duration)) {
        fputs(usage, stderr);
        return -1;
    }
    return 0;
}

static bool more_to_send(const struct bench *b, int64_t end_ms)
{
    if (b->duration)
        return omni_now_ms() < end_ms;
    return b->sent < (uint64_t)b->total;
}

int main(int argc, char **argv)
{
    struct bench b = {.svc = "echo",
                      .op = "echo",
                      .body = "{\"hi\":1}",
                      .conns = 1,
                      .inflight = 1,
                      .timeout = 30};
    if (parse_args(&b, argc, argv) < 0)
        return 2;
    struct conn *ks = omni_calloc((size_t)b.conns, sizeof *ks);
    struct pollfd *pf = omni_calloc((size_t)b.conns, sizeof *pf);
    size_t tabn = 16;
    while (tabn < (size_t)b.inflight * 2)
        tabn *= 2;
    int rc = 0;
    for (long i = 0; i < b.conns; i++) {
        char err[512];
        ks[i].c = omni_connect(b.socket, err, sizeof err);
        if (!ks[i].c) {
            fprintf(stderr, "omni-bench: %s\n", err);
            rc = 2;
            goto out;
        }
        ks[i].tab = omni_calloc(tabn, sizeof *ks[i].tab);
        ks[i].mask = tabn - 1;
    }
    int64_t start = omni_now_us();
    int64_t end_ms = omni_now_ms() + b.duration * 1000;
    int64_t last_progress = omni_now_ms();
    for (;;) {
        size_t open = 0, alive = 0;
        for (long i = 0; i < b.conns; i++) {
            while (ks[i].c && ks[i].open < (size_t)b.inflight &&
                   more_to_send(&b, end_ms))
                if (send_one(&b, &ks[i]) < 0) {
                    omni_close(ks[i].c);
                    ks[i].c = NULL;
                }
            open += ks[i].c ? ks[i].open : 0;
            alive += ks[i].c != NULL;
            pf[i].fd = ks[i].c ? omni_fd(ks[i].c) : -1;
            pf[i].events = POLLIN;
            if (ks[i].c && omni_want_write(ks[i].c))
                pf[i].events |= POLLOUT;
        }
        if (!alive || (!open && !more_to_send(&b, end_ms)))
            break;
        if (omni_now_ms() - last_progress > b.timeout * 1000)
            break;
        if (poll(pf, (nfds_t)b.conns, 1000) <= 0)
            continue;
        for (long i = 0; i < b.conns; i++) {
            if (!pf[i].revents || !ks[i].c)
                continue;
            struct omni_event ev;
            int r;
            omni_flush(ks[i].c);
            while ((r = omni_next(ks[i].c, &ev)) == 1) {
                on_event(&b, &ks[i], &ev);
                last_progress = omni_now_ms();
            }
            if (r < 0) {
                fprintf(stderr, "omni-bench: connection %ld: %s\n", i,
                        omni_last_error(ks[i].c));
                omni_close(ks[i].c);
                ks[i].c = NULL;
            }
        }
    }
    double secs = (double)(omni_now_us() - start) / 1e6;
    for (long i = 0; i < b.conns; i++)
        b.missing += ks[i].open;
    print_result(&b, secs);
    rc = b.mismatched || b.missing ? 1 : 0;
out:
    for (long i = 0; i < b.conns; i++) {
        omni_close(ks[i].c);
        omni_free(ks[i].tab);
    }
    omni_free(ks);
    omni_free(pf);
    bench_lat_free(&b.lat);
    return rc;
}
