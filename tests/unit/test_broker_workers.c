/*
 * test_broker_workers - the worker registry and the ZeroMQ side of the
 * broker, against a fake worker: a real DEALER on an ipc:// endpoint in
 * a temporary directory, speaking omni_wire.  The router is real; what
 * it sends to clients is recorded.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../broker/broker.h"
#include "omni_time.h"
#include "unit.h"

#define EXPECT_EQ(got, want)                                                   \
    do {                                                                       \
        long long g_ = (long long)(got), w_ = (long long)(want);               \
        if (g_ != w_)                                                          \
            fprintf(stderr, "\n%s:%d: %s: got %lld, want %lld\n", __FILE__,    \
                    __LINE__, #got, g_, w_);                                   \
        CU_ASSERT_EQUAL(g_, w_);                                               \
    } while (0)

struct sent {
    enum omni_msg_type type;
    uint64_t id;
    enum omni_err code;
    uint32_t status;
    char text[128];
};

static struct sent sent[64];
static int nsent;
static int conn;

static void rec_client(void *arg, void *c, const struct omni_msg *m)
{
    (void)arg;
    (void)c;
    struct sent *s = &sent[nsent++];
    memset(s, 0, sizeof *s);
    s->type = m->type;
    s->id = m->id;
    s->code = m->code;
    s->status = m->status;
    const struct omni_str *t =
        m->type == OMNI_MSG_ERROR ? &m->message : &m->body;
    snprintf(s->text, sizeof s->text, "%.*s", (int)t->n, t->p);
}

struct fixture {
    char dir[64], ep[96];
    struct omni_broker b;
    void *ctx, *dealer;
    struct omni_rclient *rc;
};

static void setup(struct fixture *f, int64_t hb)
{
    memset(f, 0, sizeof *f);
    nsent = 0;
    snprintf(f->dir, sizeof f->dir, "/tmp/omni-tbw.XXXXXX");
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(f->dir));
    snprintf(f->ep, sizeof f->ep, "ipc://%s/w.ipc", f->dir);
    struct omni_router_cfg cfg = {.services = "echo", .queue_max = 8};
    struct omni_router_ops ops = {.to_client = rec_client,
                                  .to_worker = omni_workers_send_op,
                                  .worker_dead = omni_workers_dead_op};
    f->b.router = omni_router_new(&cfg, &ops, &f->b);
    f->b.workers = omni_workers_new(&f->b, hb, 3);
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(omni_workers_bind(f->b.workers, f->ep, err), OMNI_OK);
    f->ctx = zmq_ctx_new();
    f->dealer = zmq_socket(f->ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(f->dealer, ZMQ_LINGER, &zero, sizeof zero);
    CU_ASSERT_EQUAL_FATAL(zmq_connect(f->dealer, f->ep), 0);
    f->rc = omni_router_client_new(f->b.router, &conn);
}

static void teardown(struct fixture *f)
{
    omni_router_client_gone(f->b.router, f->rc);
    omni_router_free(f->b.router);
    omni_workers_free(f->b.workers);
    zmq_close(f->dealer);
    zmq_ctx_term(f->ctx);
    rmdir(f->dir);
}

/* Let the broker side handle what the fake worker sent. */
static int settle(struct fixture *f, int want)
{
    int n = 0;
    for (int i = 0; i < 200 && n < want; i++) {
        n += omni_workers_poll(f->b.workers);
        if (n < want)
            usleep(2000);
    }
    return n;
}

/* The next command to the fake worker, or -1 after a second. */
static int recv_cmd(struct fixture *f, struct omni_wire_msg *m)
{
    zmq_pollitem_t it = {f->dealer, 0, ZMQ_POLLIN, 0};
    memset(m, 0, sizeof *m);
    if (zmq_poll(&it, 1, 1000) <= 0)
        return -1;
    char err[OMNI_ERR_LEN];
    CU_ASSERT_EQUAL_FATAL(omni_wire_recv(f->dealer, false, m, err), OMNI_OK);
    return (int)m->cmd;
}

static void send_ready(struct fixture *f, const char *svc, uint32_t cap,
                       uint32_t pid)
{
    struct omni_buf map = OMNI_BUF_INIT;
    struct omni_msg r = {.type = OMNI_MSG_READY, .capacity = cap, .pid = pid};
    omni_msg_pack(&r, &map);
    omni_wire_send(f->dealer, NULL, 0, OMNI_W_READY, false, 0, svc, strlen(svc),
                   map.data, map.len, NULL);
    omni_buf_release(&map);
}

static void request(struct fixture *f, uint64_t id, const char *op,
                    const char *body)
{
    struct omni_msg m = {.type = OMNI_MSG_REQUEST,
                         .id = id,
                         .service = omni_str_c("echo"),
                         .op = omni_str_c(op),
                         .deadline_ms = 5000,
                         .trace = omni_str_c("tr-1"),
                         .body = omni_str_c(body)};
    omni_router_request(f->b.router, f->rc, &m);
}

static void test_unknown_service(void)
{
    struct fixture f;
    setup(&f, 1000);
    send_ready(&f, "nosuch", 4, 1);
    EXPECT_EQ(settle(&f, 1), 1);
    EXPECT_EQ(omni_workers_count(f.b.workers), 0);
    struct omni_wire_msg m;
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_DISCONNECT);
    omni_wire_msg_close(&m);
    teardown(&f);
}

static void test_unknown_worker(void)
{
    struct fixture f;
    setup(&f, 1000);
    omni_wire_send(f.dealer, NULL, 0, OMNI_W_HEARTBEAT, false, 0, NULL, 0, NULL,
                   0, NULL);
    EXPECT_EQ(settle(&f, 1), 1);
    struct omni_wire_msg m;
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_DISCONNECT);
    omni_wire_msg_close(&m);
    /* A FINAL from a stranger is not routed. */
    omni_wire_send(f.dealer, NULL, 0, OMNI_W_FINAL, true, 1, "x", 1, NULL, 0,
                   NULL);
    EXPECT_EQ(settle(&f, 1), 1);
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_DISCONNECT);
    omni_wire_msg_close(&m);
    EXPECT_EQ(nsent, 0);
    teardown(&f);
}

static void test_round_trip(void)
{
    struct fixture f;
    setup(&f, 1000);
    send_ready(&f, "echo", 3, 4242);
    EXPECT_EQ(settle(&f, 1), 1);
    EXPECT_EQ(omni_workers_count(f.b.workers), 1);
    struct omni_bworker *w = omni_workers_by_pid(f.b.workers, 4242);
    CU_ASSERT_PTR_NOT_NULL(w);
    if (!w) {
        teardown(&f);
        return;
    }
    EXPECT_EQ(w->capacity, 3);
    CU_ASSERT_PTR_NULL(omni_workers_by_pid(f.b.workers, 4243));

    request(&f, 77, "echo", "{\"a\":1}");
    struct omni_wire_msg m;
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_REQUEST);
    EXPECT_EQ(m.nparts, 2);
    size_t hn, bn;
    const void *h = omni_wire_part(&m, 0, &hn);
    const char *body = omni_wire_part(&m, 1, &bn);
    struct omni_msg hdr;
    char err[OMNI_ERR_LEN];
    EXPECT_EQ(omni_msg_decode(h, hn, &hdr, err), OMNI_OK);
    EXPECT_EQ(hdr.type, OMNI_MSG_REQUEST);
    CU_ASSERT(omni_str_eq(hdr.service, "echo"));
    CU_ASSERT(omni_str_eq(hdr.op, "echo"));
    CU_ASSERT(omni_str_eq(hdr.trace, "tr-1"));
    CU_ASSERT(hdr.deadline_ms > 4000 && hdr.deadline_ms <= 5000);
    CU_ASSERT(bn == 7 && memcmp(body, "{\"a\":1}", 7) == 0);
    uint64_t key = m.key;
    omni_wire_msg_close(&m);

    omni_wire_send(f.dealer, NULL, 0, OMNI_W_FINAL, true, key, "done", 4, NULL,
                   0, NULL);
    EXPECT_EQ(settle(&f, 1), 1);
    EXPECT_EQ(nsent, 1);
    EXPECT_EQ(sent[0].type, OMNI_MSG_FINAL);
    EXPECT_EQ(sent[0].id, 77);
    CU_ASSERT_STRING_EQUAL(sent[0].text, "done");
    EXPECT_EQ(w->in_flight, 0);

    /* An ERROR map is forwarded; an undecodable one becomes INTERNAL. */
    request(&f, 78, "fail", "{}");
    request(&f, 79, "fail", "{}");
    uint64_t k[2];
    for (int i = 0; i < 2; i++) {
        EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_REQUEST);
        k[i] = m.key;
        omni_wire_msg_close(&m);
    }
    struct omni_buf e = OMNI_BUF_INIT;
    struct omni_msg em = {.type = OMNI_MSG_ERROR,
                          .code = OMNI_E_UPSTREAM,
                          .status = 429,
                          .message = omni_str_c("slow down")};
    omni_msg_pack(&em, &e);
    omni_wire_send(f.dealer, NULL, 0, OMNI_W_ERROR, true, k[0], e.data, e.len,
                   NULL, 0, NULL);
    omni_wire_send(f.dealer, NULL, 0, OMNI_W_ERROR, true, k[1], "\xc1", 1, NULL,
                   0, NULL);
    omni_buf_release(&e);
    EXPECT_EQ(settle(&f, 2), 2);
    EXPECT_EQ(nsent, 3);
    EXPECT_EQ(sent[1].code, OMNI_E_UPSTREAM);
    EXPECT_EQ(sent[1].status, 429);
    CU_ASSERT_STRING_EQUAL(sent[1].text, "slow down");
    EXPECT_EQ(sent[2].code, OMNI_E_INTERNAL);
    EXPECT_EQ(sent[2].id, 79);
    teardown(&f);
}

static void test_silent_worker(void)
{
    struct fixture f;
    setup(&f, 50);
    send_ready(&f, "echo", 3, 99);
    EXPECT_EQ(settle(&f, 1), 1);
    request(&f, 5, "sleep", "{}");
    struct omni_wire_msg m;
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_REQUEST);
    omni_wire_msg_close(&m);
    /* Alive: a tick heartbeats it. */
    omni_workers_tick(f.b.workers);
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_HEARTBEAT);
    omni_wire_msg_close(&m);
    EXPECT_EQ(nsent, 0);
    /* Silent past liveness * heartbeat: dead. */
    usleep(3 * 50 * 1000 + 20000);
    omni_workers_tick(f.b.workers);
    EXPECT_EQ(nsent, 1);
    EXPECT_EQ(sent[0].code, OMNI_E_WORKER_LOST);
    EXPECT_EQ(sent[0].id, 5);
    CU_ASSERT_PTR_NOT_NULL(strstr(sent[0].text, "silent"));
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_DISCONNECT);
    omni_wire_msg_close(&m);
    EXPECT_EQ(omni_workers_count(f.b.workers), 0);
    omni_workers_reap(f.b.workers);
    /* Its late reply is from a stranger now. */
    omni_wire_send(f.dealer, NULL, 0, OMNI_W_HEARTBEAT, false, 0, NULL, 0, NULL,
                   0, NULL);
    settle(&f, 1);
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_DISCONNECT);
    omni_wire_msg_close(&m);
    teardown(&f);
}

static void test_worker_disconnects(void)
{
    struct fixture f;
    setup(&f, 1000);
    send_ready(&f, "echo", 3, 98);
    EXPECT_EQ(settle(&f, 1), 1);
    request(&f, 6, "sleep", "{}");
    struct omni_wire_msg m;
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_REQUEST);
    omni_wire_msg_close(&m);
    omni_wire_send(f.dealer, NULL, 0, OMNI_W_DISCONNECT, false, 0, NULL, 0,
                   NULL, 0, NULL);
    EXPECT_EQ(settle(&f, 1), 1);
    EXPECT_EQ(nsent, 1);
    EXPECT_EQ(sent[0].code, OMNI_E_WORKER_LOST);
    EXPECT_EQ(omni_workers_count(f.b.workers), 0);
    /* No DISCONNECT back to a worker that said goodbye. */
    EXPECT_EQ(recv_cmd(&f, &m), -1);
    teardown(&f);
}

static void test_ready_twice(void)
{
    struct fixture f;
    setup(&f, 1000);
    send_ready(&f, "echo", 3, 97);
    send_ready(&f, "echo", 3, 97);
    EXPECT_EQ(settle(&f, 2), 2);
    EXPECT_EQ(omni_workers_count(f.b.workers), 0);
    struct omni_wire_msg m;
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_DISCONNECT);
    omni_wire_msg_close(&m);
    teardown(&f);
}

/* The same process on a new link: the old link is dead. */
static void test_reconnect(void)
{
    struct fixture f;
    setup(&f, 1000);
    send_ready(&f, "echo", 3, 555);
    EXPECT_EQ(settle(&f, 1), 1);
    request(&f, 8, "sleep", "{}");
    struct omni_wire_msg m;
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_REQUEST);
    omni_wire_msg_close(&m);
    void *old = f.dealer;
    f.dealer = zmq_socket(f.ctx, ZMQ_DEALER);
    int zero = 0;
    zmq_setsockopt(f.dealer, ZMQ_LINGER, &zero, sizeof zero);
    CU_ASSERT_EQUAL_FATAL(zmq_connect(f.dealer, f.ep), 0);
    send_ready(&f, "echo", 3, 555);
    EXPECT_EQ(settle(&f, 1), 1);
    EXPECT_EQ(omni_workers_count(f.b.workers), 1);
    EXPECT_EQ(nsent, 1);
    EXPECT_EQ(sent[0].code, OMNI_E_WORKER_LOST);
    CU_ASSERT_PTR_NOT_NULL(strstr(sent[0].text, "reconnected"));
    /* New work goes to the new link. */
    request(&f, 9, "echo", "{}");
    EXPECT_EQ(recv_cmd(&f, &m), OMNI_W_REQUEST);
    omni_wire_msg_close(&m);
    zmq_close(old);
    teardown(&f);
}

static CU_TestInfo workers_tests[] = {
    {"unknown service", test_unknown_service},
    {"unknown worker", test_unknown_worker},
    {"round trip", test_round_trip},
    {"silent worker", test_silent_worker},
    {"worker disconnects", test_worker_disconnects},
    {"ready twice", test_ready_twice},
    {"reconnect", test_reconnect},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"workers", NULL, NULL, NULL, NULL, workers_tests},
    CU_SUITE_INFO_NULL,
};
