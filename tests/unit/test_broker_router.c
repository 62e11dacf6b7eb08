/*
 * test_broker_router - the routing core with fake clients, fake workers
 * and a fake clock: every action the router takes is recorded and
 * checked (dispatch order, queues, OVERLOADED, deadlines, cancels,
 * worker loss and re-dispatch, drain).
 */
#include <stdio.h>
#include <string.h>

#include "../../broker/broker.h"
#include "omni_alloc.h"
#include "unit.h"

#define EXPECT_EQ(got, want)                                                   \
    do {                                                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);               \
        if (g_ != w_)                                                          \
            fprintf(stderr, "\n%s:%d: %s: got %lld, want %lld\n", __FILE__,    \
                    __LINE__, #got, g_, w_);                                   \
        CU_ASSERT_EQUAL(g_, w_);                                               \
    } while (0)

enum kind { TO_CLIENT, TO_WORKER, DEAD, DRAINED };

/* One recorded action, with copies of what it carried. */
struct rec {
    void *conn;
    struct omni_bworker *w;
    uint64_t id, seq, key, deadline_ms;
    enum kind kind;
    enum omni_msg_type type;
    enum omni_err code;
    enum omni_wire_cmd cmd;
    uint32_t status, retry;
    bool stream;
    char text[256]; /* error message or body */
    char op[64];
};

#define MAX_RECS 20000
static struct rec recs[MAX_RECS];
static int nrec;
static int64_t fake_now;
static struct omni_bworker *unreachable;

static void put_text(char *dst, const void *p, size_t n)
{
    if (n > 255)
        n = 255;
    memcpy(dst, p, n);
    dst[n] = '\0';
}

static void f_to_client(void *arg, void *conn, const struct omni_msg *m)
{
    (void)arg;
    CU_ASSERT_FATAL(nrec < MAX_RECS);
    struct rec *r = &recs[nrec++];
    memset(r, 0, sizeof *r);
    r->kind = TO_CLIENT;
    r->conn = conn;
    r->type = m->type;
    r->id = m->id;
    r->seq = m->seq;
    r->code = m->code;
    r->status = m->status;
    r->retry = m->retry_after_ms;
    if (m->type == OMNI_MSG_ERROR)
        put_text(r->text, m->message.p, m->message.n);
    else
        put_text(r->text, m->body.p, m->body.n);
}

static int f_to_worker(void *arg, struct omni_bworker *w,
                       enum omni_wire_cmd cmd, uint64_t key, const void *hdr,
                       size_t hlen, zmq_msg_t *body)
{
    (void)arg;
    if (w == unreachable)
        return -1;
    CU_ASSERT_FATAL(nrec < MAX_RECS);
    struct rec *r = &recs[nrec++];
    memset(r, 0, sizeof *r);
    r->kind = TO_WORKER;
    r->w = w;
    r->cmd = cmd;
    r->key = key;
    if (cmd == OMNI_W_REQUEST) {
        struct omni_msg h;
        char err[OMNI_ERR_LEN];
        CU_ASSERT_EQUAL(omni_msg_decode(hdr, hlen, &h, err), OMNI_OK);
        r->deadline_ms = h.deadline_ms;
        r->stream = h.stream;
        put_text(r->op, h.op.p, h.op.n);
        put_text(r->text, zmq_msg_data(body), zmq_msg_size(body));
        zmq_msg_close(body);
        zmq_msg_init(body);
    } else {
        CU_ASSERT_PTR_NULL(hdr);
        CU_ASSERT_PTR_NULL(body);
    }
    return 0;
}

static void f_dead(void *arg, struct omni_bworker *w)
{
    (void)arg;
    struct rec *r = &recs[nrec++];
    memset(r, 0, sizeof *r);
    r->kind = DEAD;
    r->w = w;
}

static void f_drained(void *arg)
{
    (void)arg;
    struct rec *r = &recs[nrec++];
    memset(r, 0, sizeof *r);
    r->kind = DRAINED;
}

static int64_t f_now(void *arg)
{
    (void)arg;
    return fake_now;
}

static const struct omni_router_ops ops = {
    .to_client = f_to_client,
    .to_worker = f_to_worker,
    .worker_dead = f_dead,
    .drained = f_drained,
    .now = f_now,
};

/* Conns are just distinct addresses. */
static int conn_a, conn_b;

static struct omni_router *mk(size_t queue_max, int64_t timeout)
{
    nrec = 0;
    fake_now = 1000000;
    unreachable = NULL;
    struct omni_router_cfg cfg = {.services = " echo, llm ,,echo",
                                  .queue_max = queue_max,
                                  .default_timeout_ms = timeout};
    return omni_router_new(&cfg, &ops, NULL);
}

static struct omni_bworker *worker(struct omni_router *r, const char *svc,
                                   uint32_t cap, pid_t pid)
{
    struct omni_bworker *w = omni_calloc(1, sizeof *w);
    w->svc = omni_router_service(r, svc, strlen(svc));
    CU_ASSERT_PTR_NOT_NULL_FATAL(w->svc);
    w->capacity = cap;
    w->pid = pid;
    omni_router_worker_add(r, w);
    return w;
}

static void req(struct omni_router *r, struct omni_rclient *rc, uint64_t id,
                const char *svc, const char *op, const char *body,
                uint64_t deadline, bool stream, bool idem)
{
    struct omni_msg m = {.type = OMNI_MSG_REQUEST,
                         .id = id,
                         .service = omni_str_c(svc),
                         .op = omni_str_c(op),
                         .body = omni_str_c(body),
                         .deadline_ms = deadline,
                         .stream = stream,
                         .idempotent = idem};
    omni_router_request(r, rc, &m);
}

/* The index of the first record of kind k after from, or -1. */
static int find(int from, enum kind k)
{
    for (int i = from; i < nrec; i++)
        if (recs[i].kind == k)
            return i;
    return -1;
}

static void test_services_parsed(void)
{
    struct omni_router *r = mk(8, 0);
    EXPECT_EQ(omni_router_nservices(r), 2);
    CU_ASSERT_STRING_EQUAL(omni_router_service_at(r, 0)->name, "echo");
    CU_ASSERT_STRING_EQUAL(omni_router_service_at(r, 1)->name, "llm");
    CU_ASSERT_PTR_NULL(omni_router_service(r, "ech", 3));
    omni_router_free(r);
}

static void test_no_service(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 5, "nosuch", "x", "{}", 0, false, false);
    EXPECT_EQ(nrec, 1);
    EXPECT_EQ(recs[0].type, OMNI_MSG_ERROR);
    EXPECT_EQ(recs[0].code, OMNI_E_NO_SERVICE);
    EXPECT_EQ(recs[0].id, 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(recs[0].text, "'nosuch'"));
    CU_ASSERT_PTR_EQUAL(recs[0].conn, &conn_a);
    EXPECT_EQ(omni_router_in_flight(r), 0);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
}

static void test_least_loaded(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w1 = worker(r, "echo", 2, 11);
    struct omni_bworker *w2 = worker(r, "echo", 2, 12);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 1, "echo", "echo", "a", 0, false, false);
    req(r, rc, 2, "echo", "echo", "b", 0, false, false);
    req(r, rc, 3, "echo", "echo", "c", 0, false, false);
    EXPECT_EQ(nrec, 3);
    CU_ASSERT_PTR_EQUAL(recs[0].w, w1);
    CU_ASSERT_PTR_EQUAL(recs[1].w, w2);
    CU_ASSERT_PTR_EQUAL(recs[2].w, w1);
    CU_ASSERT_STRING_EQUAL(recs[2].text, "c");
    CU_ASSERT_STRING_EQUAL(recs[2].op, "echo");
    EXPECT_EQ(w1->in_flight, 2);
    EXPECT_EQ(w2->in_flight, 1);
    /* w1 is full: the next goes to w2 whatever the order. */
    req(r, rc, 4, "echo", "echo", "d", 0, false, false);
    CU_ASSERT_PTR_EQUAL(recs[3].w, w2);
    /* Keys are distinct and increasing. */
    CU_ASSERT(recs[0].key < recs[1].key && recs[1].key < recs[2].key);
    omni_router_client_gone(r, rc);
    EXPECT_EQ(w1->in_flight + w2->in_flight, 0);
    omni_router_free(r);
    omni_free(w1);
    omni_free(w2);
}

static void test_queue_and_overload(void)
{
    struct omni_router *r = mk(2, 0);
    struct omni_bworker *w = worker(r, "echo", 1, 11);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    for (uint64_t i = 1; i <= 5; i++)
        req(r, rc, i, "echo", "sleep", "x", 0, false, false);
    struct omni_service *s = omni_router_service(r, "echo", 4);
    EXPECT_EQ(s->queued, 2);
    EXPECT_EQ(s->in_flight, 1);
    EXPECT_EQ(s->overloaded, 2);
    /* 1 dispatched, then two OVERLOADED errors at once (4 and 5). */
    EXPECT_EQ(nrec, 3);
    EXPECT_EQ(recs[1].code, OMNI_E_OVERLOADED);
    EXPECT_EQ(recs[1].id, 4);
    CU_ASSERT(recs[1].retry > 0);
    EXPECT_EQ(recs[2].id, 5);
    /* The final of 1 dispatches 2 (FIFO), then 3. */
    uint64_t k1 = recs[0].key;
    omni_router_final(r, w, k1, "done", 4);
    EXPECT_EQ(recs[3].type, OMNI_MSG_FINAL);
    EXPECT_EQ(recs[3].id, 1);
    CU_ASSERT_STRING_EQUAL(recs[3].text, "done");
    EXPECT_EQ(recs[4].kind, TO_WORKER);
    EXPECT_EQ(recs[4].key, k1 + 1);
    EXPECT_EQ(s->queued, 1);
    omni_router_final(r, w, k1 + 1, "", 0);
    EXPECT_EQ(recs[6].key, k1 + 2);
    EXPECT_EQ(s->queued, 0);
    EXPECT_EQ(s->requests, 5);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
}

static void test_no_worker_queues(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 1, "llm", "chat", "{}", 1000, false, false);
    EXPECT_EQ(nrec, 0);
    EXPECT_EQ(omni_router_in_flight(r), 1);
    fake_now += 300;
    struct omni_bworker *w = worker(r, "llm", 4, 11);
    EXPECT_EQ(nrec, 1);
    EXPECT_EQ(recs[0].kind, TO_WORKER);
    /* The worker sees the time left, not the original deadline. */
    EXPECT_EQ(recs[0].deadline_ms, 700);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
}

static void test_full_queue_without_worker(void)
{
    struct omni_router *r = mk(1, 0);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 1, "llm", "chat", "{}", 0, false, false);
    req(r, rc, 2, "llm", "chat", "{}", 0, false, false);
    EXPECT_EQ(nrec, 1);
    EXPECT_EQ(recs[0].code, OMNI_E_UNAVAILABLE);
    EXPECT_EQ(recs[0].id, 2);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
}

static void test_deadlines(void)
{
    struct omni_router *r = mk(8, 5000);
    struct omni_bworker *w = worker(r, "echo", 1, 11);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 1, "echo", "sleep", "x", 100, false, false); /* dispatched */
    req(r, rc, 2, "echo", "sleep", "y", 50, false, false);  /* queued */
    req(r, rc, 3, "echo", "sleep", "z", 0, false, false);   /* default */
    EXPECT_EQ(recs[0].deadline_ms, 100);
    uint64_t k1 = recs[0].key;
    int at = nrec;
    fake_now += 49;
    EXPECT_EQ(omni_router_tick(r), fake_now + 1);
    EXPECT_EQ(nrec, at);
    fake_now += 1;
    omni_router_tick(r);
    /* 2 timed out in the queue: an error, no CANCEL. */
    EXPECT_EQ(nrec, at + 1);
    EXPECT_EQ(recs[at].code, OMNI_E_TIMEOUT);
    EXPECT_EQ(recs[at].id, 2);
    CU_ASSERT_PTR_NOT_NULL(strstr(recs[at].text, "50 ms"));
    fake_now += 50;
    EXPECT_EQ(omni_router_tick(r), 1000000 + 5000);
    /* 1: CANCEL at the worker, TIMEOUT to the client, and the freed slot
     * takes 3 with its remaining time. */
    int c = find(at + 1, TO_WORKER);
    CU_ASSERT_FATAL(c >= 0);
    EXPECT_EQ(recs[c].cmd, OMNI_W_CANCEL);
    EXPECT_EQ(recs[c].key, k1);
    int e = find(at + 1, TO_CLIENT);
    EXPECT_EQ(recs[e].code, OMNI_E_TIMEOUT);
    EXPECT_EQ(recs[e].id, 1);
    int d = find(c + 1, TO_WORKER);
    CU_ASSERT_FATAL(d >= 0);
    EXPECT_EQ(recs[d].cmd, OMNI_W_REQUEST);
    EXPECT_EQ(recs[d].deadline_ms, 4900);
    /* A late reply for the timed-out request is dropped. */
    at = nrec;
    omni_router_final(r, w, k1, "late", 4);
    EXPECT_EQ(nrec, at);
    EXPECT_EQ(omni_router_service(r, "echo", 4)->timeouts, 2);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
}

static void test_cancel(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w = worker(r, "echo", 1, 11);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 1, "echo", "sleep", "x", 0, false, false);
    req(r, rc, 2, "echo", "sleep", "y", 0, false, false);
    uint64_t k1 = recs[0].key;
    /* Cancel the queued one: CANCELLED, nothing to the worker. */
    omni_router_cancel(r, rc, 2);
    EXPECT_EQ(nrec, 2);
    EXPECT_EQ(recs[1].code, OMNI_E_CANCELLED);
    EXPECT_EQ(recs[1].id, 2);
    /* Cancel the dispatched one: CANCEL, then CANCELLED. */
    omni_router_cancel(r, rc, 1);
    EXPECT_EQ(recs[2].kind, TO_WORKER);
    EXPECT_EQ(recs[2].cmd, OMNI_W_CANCEL);
    EXPECT_EQ(recs[2].key, k1);
    EXPECT_EQ(recs[3].code, OMNI_E_CANCELLED);
    EXPECT_EQ(recs[3].id, 1);
    EXPECT_EQ(w->in_flight, 0);
    /* An id not in flight: nothing. */
    omni_router_cancel(r, rc, 99);
    EXPECT_EQ(nrec, 4);
    EXPECT_EQ(omni_router_in_flight(r), 0);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
}

static void test_client_gone(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w = worker(r, "echo", 1, 11);
    struct omni_rclient *a = omni_router_client_new(r, &conn_a);
    struct omni_rclient *b = omni_router_client_new(r, &conn_b);
    req(r, a, 1, "echo", "stream", "x", 0, true, false);
    req(r, a, 2, "echo", "sleep", "y", 0, false, false);
    req(r, b, 1, "echo", "echo", "z", 0, false, false);
    uint64_t k1 = recs[0].key;
    omni_router_client_gone(r, a);
    /* CANCEL for a's dispatched request, a's queued one dropped without
     * a word, and b's queued request takes the slot. */
    EXPECT_EQ(nrec, 3);
    EXPECT_EQ(recs[1].cmd, OMNI_W_CANCEL);
    EXPECT_EQ(recs[1].key, k1);
    EXPECT_EQ(recs[2].cmd, OMNI_W_REQUEST);
    CU_ASSERT_STRING_EQUAL(recs[2].text, "z");
    EXPECT_EQ(find(0, TO_CLIENT), -1);
    EXPECT_EQ(omni_router_in_flight(r), 1);
    omni_router_final(r, w, recs[2].key, "z", 1);
    CU_ASSERT_PTR_EQUAL(recs[3].conn, &conn_b);
    omni_router_client_gone(r, b);
    omni_router_free(r);
    omni_free(w);
}

static void test_chunks(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w = worker(r, "echo", 4, 11);
    struct omni_bworker *other = worker(r, "echo", 4, 12);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 7, "echo", "stream", "x", 0, true, false);
    req(r, rc, 8, "echo", "stream", "x", 0, false, false);
    CU_ASSERT_PTR_EQUAL(recs[0].w, w);
    CU_ASSERT(recs[0].stream);
    uint64_t k = recs[0].key, k8 = recs[1].key;
    int at = nrec;
    omni_router_partial(r, w, k, "c0", 2);
    omni_router_partial(r, other, k, "bad", 3); /* not its request */
    omni_router_partial(r, w, k, "c1", 2);
    omni_router_partial(r, w, k, "c2", 2);
    omni_router_partial(r, other, k8, "no", 2); /* 8 does not stream */
    EXPECT_EQ(nrec, at + 3);
    for (int i = 0; i < 3; i++) {
        char want[3] = {'c', (char)('0' + i), 0};
        EXPECT_EQ(recs[at + i].type, OMNI_MSG_CHUNK);
        EXPECT_EQ(recs[at + i].seq, i);
        EXPECT_EQ(recs[at + i].id, 7);
        CU_ASSERT_STRING_EQUAL(recs[at + i].text, want);
    }
    omni_router_final(r, w, k, "", 0);
    EXPECT_EQ(recs[nrec - 1].type, OMNI_MSG_FINAL);
    /* After the final: nothing more for id 7. */
    at = nrec;
    omni_router_partial(r, w, k, "c3", 2);
    EXPECT_EQ(nrec, at);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
    omni_free(other);
}

static void test_worker_error(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w = worker(r, "echo", 4, 11);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 3, "echo", "fail", "{}", 0, false, false);
    struct omni_msg e = {.type = OMNI_MSG_ERROR,
                         .code = OMNI_E_UPSTREAM,
                         .status = 529,
                         .retry_after_ms = 1500,
                         .message = omni_str_c("overloaded upstream")};
    omni_router_error(r, w, recs[0].key, &e);
    EXPECT_EQ(recs[1].code, OMNI_E_UPSTREAM);
    EXPECT_EQ(recs[1].status, 529);
    EXPECT_EQ(recs[1].retry, 1500);
    EXPECT_EQ(recs[1].id, 3);
    CU_ASSERT_STRING_EQUAL(recs[1].text, "overloaded upstream");
    EXPECT_EQ(omni_router_service(r, "echo", 4)->errors, 1);
    EXPECT_EQ(w->in_flight, 0);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
}

static void test_worker_lost(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w1 = worker(r, "echo", 8, 11);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 1, "echo", "sleep", "plain", 0, false, false);
    req(r, rc, 2, "echo", "sleep", "idem", 0, false, true);
    req(r, rc, 3, "echo", "stream", "idem-streamed", 0, true, true);
    omni_router_partial(r, w1, recs[2].key, "c", 1);
    int at = nrec;
    omni_router_worker_lost(r, w1, "test");
    /* 1 and 3 fail; 2 waits for a worker; w1 is reported dead. */
    int lost = 0;
    for (int i = at; i < nrec; i++)
        if (recs[i].kind == TO_CLIENT) {
            EXPECT_EQ(recs[i].code, OMNI_E_WORKER_LOST);
            CU_ASSERT(recs[i].id == 1 || recs[i].id == 3);
            CU_ASSERT_PTR_NOT_NULL(strstr(recs[i].text, "pid 11"));
            lost++;
        }
    EXPECT_EQ(lost, 2);
    int d = find(at, DEAD);
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT_PTR_EQUAL(recs[d].w, w1);
    CU_ASSERT(w1->dead);
    struct omni_service *s = omni_router_service(r, "echo", 4);
    EXPECT_EQ(s->worker_lost, 2);
    EXPECT_EQ(s->ready, 0);
    EXPECT_EQ(s->queued, 1);
    /* A new worker gets the idempotent request, body intact. */
    struct omni_bworker *w2 = worker(r, "echo", 8, 12);
    EXPECT_EQ(recs[nrec - 1].kind, TO_WORKER);
    CU_ASSERT_PTR_EQUAL(recs[nrec - 1].w, w2);
    CU_ASSERT_STRING_EQUAL(recs[nrec - 1].text, "idem");
    omni_router_final(r, w2, recs[nrec - 1].key, "ok", 2);
    EXPECT_EQ(recs[nrec - 1].id, 2);
    EXPECT_EQ(recs[nrec - 1].type, OMNI_MSG_FINAL);
    EXPECT_EQ(omni_router_in_flight(r), 0);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w1);
    omni_free(w2);
}

static void test_unreachable_worker(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w1 = worker(r, "echo", 8, 11);
    struct omni_bworker *w2 = worker(r, "echo", 8, 12);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    unreachable = w1;
    /* Not sent, so safe to send elsewhere even if not idempotent. */
    req(r, rc, 1, "echo", "echo", "x", 0, false, false);
    int d = find(0, DEAD);
    CU_ASSERT_FATAL(d >= 0);
    CU_ASSERT_PTR_EQUAL(recs[d].w, w1);
    int s = find(0, TO_WORKER);
    CU_ASSERT_FATAL(s >= 0);
    CU_ASSERT_PTR_EQUAL(recs[s].w, w2);
    CU_ASSERT_STRING_EQUAL(recs[s].text, "x");
    EXPECT_EQ(find(0, TO_CLIENT), -1);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w1);
    omni_free(w2);
}

static void test_duplicate_id(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w = worker(r, "echo", 8, 11);
    struct omni_rclient *a = omni_router_client_new(r, &conn_a);
    struct omni_rclient *b = omni_router_client_new(r, &conn_b);
    req(r, a, 1, "echo", "echo", "x", 0, false, false);
    req(r, a, 1, "echo", "echo", "y", 0, false, false);
    EXPECT_EQ(recs[1].code, OMNI_E_BAD_REQUEST);
    EXPECT_EQ(recs[1].id, 1);
    /* Ids are per connection. */
    req(r, b, 1, "echo", "echo", "z", 0, false, false);
    EXPECT_EQ(recs[2].kind, TO_WORKER);
    /* Once 1 has ended, the id may be used again. */
    omni_router_final(r, w, recs[0].key, "x", 1);
    req(r, a, 1, "echo", "echo", "w", 0, false, false);
    EXPECT_EQ(recs[nrec - 1].kind, TO_WORKER);
    CU_ASSERT_STRING_EQUAL(recs[nrec - 1].text, "w");
    omni_router_client_gone(r, a);
    omni_router_client_gone(r, b);
    omni_router_free(r);
    omni_free(w);
}

static void test_drain(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w = worker(r, "echo", 1, 11);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 1, "echo", "sleep", "x", 0, false, false);
    req(r, rc, 2, "echo", "sleep", "y", 0, false, false);
    omni_router_drain(r);
    EXPECT_EQ(find(0, DRAINED), -1);
    req(r, rc, 3, "echo", "echo", "z", 0, false, false);
    EXPECT_EQ(recs[nrec - 1].code, OMNI_E_UNAVAILABLE);
    EXPECT_EQ(recs[nrec - 1].id, 3);
    CU_ASSERT_PTR_NOT_NULL(strstr(recs[nrec - 1].text, "draining"));
    /* Admitted requests still run: 1 ends, 2 is dispatched. */
    omni_router_final(r, w, recs[0].key, "", 0);
    EXPECT_EQ(find(0, DRAINED), -1);
    int d = find(0, TO_WORKER);
    d = find(d + 1, TO_WORKER);
    CU_ASSERT_FATAL(d >= 0);
    omni_router_final(r, w, recs[d].key, "", 0);
    EXPECT_EQ(recs[nrec - 1].kind, DRAINED);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
}

static void test_abort(void)
{
    struct omni_router *r = mk(8, 0);
    struct omni_bworker *w = worker(r, "echo", 1, 11);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    req(r, rc, 1, "echo", "sleep", "x", 0, false, false);
    req(r, rc, 2, "echo", "sleep", "y", 0, false, false);
    int at = nrec;
    omni_router_abort(r, "shutting down");
    int errors = 0, cancels = 0;
    for (int i = at; i < nrec; i++) {
        if (recs[i].kind == TO_CLIENT) {
            EXPECT_EQ(recs[i].code, OMNI_E_UNAVAILABLE);
            errors++;
        }
        if (recs[i].kind == TO_WORKER) {
            EXPECT_EQ(recs[i].cmd, OMNI_W_CANCEL);
            cancels++;
        }
    }
    EXPECT_EQ(errors, 2);
    EXPECT_EQ(cancels, 1);
    EXPECT_EQ(omni_router_in_flight(r), 0);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
}

/* Thousands of requests ending in a scrambled order: every reply goes
 * to the right id exactly once (exercises the tables' deletes). */
static void test_many(void)
{
    enum { N = 4000 };
    struct omni_router *r = mk(N, 0);
    struct omni_bworker *w = worker(r, "echo", N, 11);
    struct omni_rclient *rc = omni_router_client_new(r, &conn_a);
    static uint64_t keys[N];
    for (uint64_t i = 0; i < N; i++) {
        req(r, rc, i * 7919 + 3, "echo", "echo", "b", 0, false, false);
        keys[i] = recs[nrec - 1].key;
    }
    EXPECT_EQ(w->in_flight, N);
    nrec = 0;
    static bool seen[N];
    memset(seen, 0, sizeof seen);
    for (uint64_t j = 0; j < N; j++) {
        /* A permutation: the multiplier is odd and not a multiple of 5. */
        uint64_t i = (j * 2654435761u) % N;
        omni_router_final(r, w, keys[i], "", 0);
    }
    int bad = 0;
    for (int i = 0; i < nrec; i++) {
        uint64_t idx = (recs[i].id - 3) / 7919;
        if (idx >= N || seen[idx])
            bad++;
        else
            seen[idx] = true;
    }
    EXPECT_EQ(bad, 0);
    EXPECT_EQ(nrec, N);
    EXPECT_EQ(omni_router_in_flight(r), 0);
    omni_router_client_gone(r, rc);
    omni_router_free(r);
    omni_free(w);
}

static CU_TestInfo router_tests[] = {
    {"services parsed", test_services_parsed},
    {"no service", test_no_service},
    {"least loaded", test_least_loaded},
    {"queue and overload", test_queue_and_overload},
    {"no worker queues", test_no_worker_queues},
    {"full queue without worker", test_full_queue_without_worker},
    {"deadlines", test_deadlines},
    {"cancel", test_cancel},
    {"client gone", test_client_gone},
    {"chunks", test_chunks},
    {"worker error", test_worker_error},
    {"worker lost", test_worker_lost},
    {"unreachable worker", test_unreachable_worker},
    {"duplicate id", test_duplicate_id},
    {"drain", test_drain},
    {"abort", test_abort},
    {"many", test_many},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"router", NULL, NULL, NULL, NULL, router_tests},
    CU_SUITE_INFO_NULL,
};
