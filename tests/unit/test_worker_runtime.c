/*
 * test_worker_runtime - the worker runtime against a real ZeroMQ ROUTER.
 *
 * The test plays the broker: a ROUTER bound on ipc:// in a temporary
 * folder, and for sub-requests a Unix socket speaking Omni frames.  The
 * worker runs in-process on its own event base, pumped between the
 * test's reads and writes.  Heartbeats are short (100 ms) so liveness
 * and reconnects take about a second.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>
#include <zmq.h>

#include "omni_alloc.h"
#include "omni_cfg.h"
#include "omni_log.h"
#include "omni_proto.h"
#include "omni_time.h"
#include "omni_wire.h"
#include "omni_worker.h"
#include "unit.h"
#include "worker_int.h"

#define HB_MS 100
#define BIG   (512 * 1024)

/* ---- the worker under test ---- */

#define NHELD 16
static struct omni_wreq *held[NHELD];
static size_t nheld;
static int ncancel, nshutdown;
static uint64_t cancelled_key;

static void hold_add(struct omni_wreq *r)
{
    if (nheld < NHELD)
        held[nheld++] = r;
}

static void hold_forget(struct omni_wreq *r)
{
    for (size_t i = 0; i < nheld; i++)
        if (held[i] == r)
            held[i] = held[--nheld];
}

/* A "sub" request's data: its sub-request id, malloc'ed. */
static void sub_forget(struct omni_wreq *r)
{
    omni_free(omni_wreq_data(r));
    omni_wreq_set_data(r, NULL);
}

static void on_sub(const struct omni_event *ev, void *arg)
{
    struct omni_wreq *r = arg;
    hold_forget(r);
    sub_forget(r);
    if (ev->type == OMNI_EVENT_FINAL)
        omni_wreq_final(r, ev->body, ev->body_len);
    else if (ev->type == OMNI_EVENT_ERROR)
        omni_wreq_error(r, omni_err_parse(ev->code, strlen(ev->code)),
                        ev->status, 0, "%s", ev->message);
}

static void t_request(struct omni_wreq *r)
{
    struct omni_str op = omni_wreq_op(r), body = omni_wreq_body(r);
    if (omni_str_eq(op, "echo")) {
        omni_wreq_final(r, body.p, body.n);
    } else if (omni_str_eq(op, "stream")) {
        omni_wreq_partial(r, "p0", 2);
        omni_wreq_partial(r, "p1", 2);
        omni_wreq_partial(r, "p2", 2);
        omni_wreq_final(r, "done", 4);
    } else if (omni_str_eq(op, "error")) {
        omni_wreq_error(r, OMNI_E_UPSTREAM, 429, 1500,
                        "provider said no to Bearer abcdefghijklmnop1234");
    } else if (omni_str_eq(op, "big")) {
        char *p = omni_malloc(BIG);
        memset(p, 'b', BIG);
        omni_wreq_final(r, p, BIG);
        omni_free(p);
    } else if (omni_str_eq(op, "sub")) {
        struct omni_request req = {.service = "echo",
                                   .op = "echo",
                                   .body = body.p,
                                   .body_len = body.n};
        uint64_t *id = omni_malloc(sizeof *id);
        if (omni_worker_subcall(omni_wreq_worker(r), &req, on_sub, r, id) < 0) {
            omni_free(id);
            omni_wreq_error(r, OMNI_E_UNAVAILABLE, 0, 0, "no broker");
            return;
        }
        omni_wreq_set_data(r, id);
        hold_add(r);
    } else {
        hold_add(r); /* "hold": answered by the test */
    }
}

static void t_cancel(struct omni_wreq *r)
{
    ncancel++;
    cancelled_key = omni_wreq_key(r);
    hold_forget(r);
    if (omni_wreq_data(r)) {
        uint64_t *id = omni_wreq_data(r);
        omni_worker_subcancel(omni_wreq_worker(r), *id);
        sub_forget(r);
    }
    /* Answers from inside cancel must be dropped. */
    omni_wreq_final(r, "late", 4);
}

static void t_shutdown(struct omni_worker *w)
{
    (void)w;
    nshutdown++;
}

static const struct omni_worker_def def = {
    .service = "test",
    .capacity = 8,
    .request = t_request,
    .cancel = t_cancel,
    .shutdown = t_shutdown,
};

/* ---- the fake broker ---- */

static char dir[64];
static char endpoint[128];
static void *zctx, *router;
static unsigned char ident[256];
static size_t ident_len;
static struct event_base *base;
static struct omni_worker *w;

static bool silent; /* the broker stops heartbeating */
static int64_t last_hb;

static void send_cmd(enum omni_wire_cmd cmd, bool has_key, uint64_t key);

/* Run the worker's loop for ms; the "broker" heartbeats meanwhile. */
static void pump(int ms)
{
    if (!silent && ident_len && omni_now_ms() - last_hb >= HB_MS / 2) {
        send_cmd(OMNI_W_HEARTBEAT, false, 0);
        last_hb = omni_now_ms();
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

/* Wait for a command of type want (HEARTBEATs skipped unless wanted);
 * keeps the sender's identity.  0 when found, -1 on timeout. */
static int expect(struct omni_wire_msg *m, enum omni_wire_cmd want,
                  int timeout_ms)
{
    int64_t end = omni_now_ms() + timeout_ms;
    char err[OMNI_ERR_LEN];
    memset(m, 0, sizeof *m);
    while (omni_now_ms() < end) {
        enum omni_err rc = omni_wire_recv(router, true, m, err);
        if (rc == OMNI_AGAIN) {
            pump(5);
            continue;
        }
        if (rc != OMNI_OK) {
            omni_wire_msg_close(m);
            CU_FAIL("worker sent a malformed message");
            continue;
        }
        ident_len = zmq_msg_size(&m->ident);
        memcpy(ident, zmq_msg_data(&m->ident), ident_len);
        if (m->cmd == want)
            return 0;
        if (m->cmd != OMNI_W_HEARTBEAT) {
            fprintf(stderr, "got command %d, want %d\n", (int)m->cmd,
                    (int)want);
            omni_wire_msg_close(m);
            return -1;
        }
        omni_wire_msg_close(m);
    }
    return -1;
}

/* Nothing but heartbeats for ms; returns the first other command. */
static int quiet(int ms)
{
    struct omni_wire_msg m;
    int64_t end = omni_now_ms() + ms;
    char err[OMNI_ERR_LEN];
    while (omni_now_ms() < end) {
        if (omni_wire_recv(router, true, &m, err) == OMNI_AGAIN) {
            pump(5);
            continue;
        }
        int cmd = m.cmd;
        omni_wire_msg_close(&m);
        if (cmd != OMNI_W_HEARTBEAT)
            return cmd;
    }
    return 0;
}

static void send_req(uint64_t key, const char *op, const char *body,
                     bool stream, uint64_t deadline_ms)
{
    struct omni_buf hdr = OMNI_BUF_INIT;
    struct omni_msg m = {.type = OMNI_MSG_REQUEST,
                         .service = omni_str_c("test"),
                         .op = omni_str_c(op),
                         .stream = stream,
                         .deadline_ms = deadline_ms,
                         .trace = omni_str_c("tr-1")};
    omni_msg_pack(&m, &hdr);
    omni_wire_send(router, ident, ident_len, OMNI_W_REQUEST, true, key,
                   hdr.data, hdr.len, body, strlen(body), NULL);
    omni_buf_release(&hdr);
}

static void send_cmd(enum omni_wire_cmd cmd, bool has_key, uint64_t key)
{
    omni_wire_send(router, ident, ident_len, cmd, has_key, key, NULL, 0, NULL,
                   0, NULL);
}

/* Raw frames from the "broker", for malformed input. */
static void send_raw(const char *const *frames, const size_t *lens, int n)
{
    zmq_send(router, ident, ident_len, ZMQ_SNDMORE);
    for (int i = 0; i < n; i++)
        zmq_send(router, frames[i], lens[i], i + 1 < n ? ZMQ_SNDMORE : 0);
}

static bool part_is(struct omni_wire_msg *m, int i, const char *s)
{
    size_t n;
    const void *p = omni_wire_part(m, i, &n);
    return n == strlen(s) && memcmp(p, s, n) == 0;
}

static int setup_cfg(void)
{
    char err[OMNI_ERR_LEN];
    omni_log_init("test_worker_runtime");
    omni_log_set_level(OMNI_LOG_ERROR);
    if (omni_cfg_load(NULL, err) != OMNI_OK)
        return -1;
    char hb[16];
    snprintf(hb, sizeof hb, "%d", HB_MS);
    omni_cfg_set("broker.heartbeat_ms", hb, err);
    omni_cfg_set("broker.liveness", "3", err);
    omni_cfg_set("broker.drain_ms", "10000", err);
    snprintf(dir, sizeof dir, "/tmp/omni-wt.XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(endpoint, sizeof endpoint, "ipc://%s/w.ipc", dir);
    zctx = zmq_ctx_new();
    return 0;
}

static int teardown_cfg(void)
{
    char cmd[128];
    zmq_ctx_term(zctx);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0)
        return -1;
    omni_cfg_free();
    return 0;
}

/* A fresh broker socket and worker, READY consumed. */
static void start(int rcvhwm)
{
    char err[OMNI_ERR_LEN];
    int one = 1, zero = 0;
    router = zmq_socket(zctx, ZMQ_ROUTER);
    zmq_setsockopt(router, ZMQ_ROUTER_MANDATORY, &one, sizeof one);
    zmq_setsockopt(router, ZMQ_LINGER, &zero, sizeof zero);
    if (rcvhwm)
        zmq_setsockopt(router, ZMQ_RCVHWM, &rcvhwm, sizeof rcvhwm);
    CU_ASSERT_EQUAL_FATAL(zmq_bind(router, endpoint), 0);
    base = event_base_new();
    w = omni_worker_new(&def, base, endpoint, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(omni_worker_start(w, err), 0);
    silent = false;
    ident_len = 0;
    nheld = 0;
    ncancel = nshutdown = 0;
    cancelled_key = 0;
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_READY, 2000), 0);
    omni_wire_msg_close(&m);
}

static void stop(void)
{
    omni_worker_free(w);
    w = NULL;
    event_base_free(base);
    zmq_close(router);
}

/* ---- tests ---- */

static void test_ready(void)
{
    char err[OMNI_ERR_LEN];
    router = zmq_socket(zctx, ZMQ_ROUTER);
    CU_ASSERT_EQUAL_FATAL(zmq_bind(router, endpoint), 0);
    base = event_base_new();
    w = omni_worker_new(&def, base, endpoint, err);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    CU_ASSERT_EQUAL_FATAL(omni_worker_start(w, err), 0);
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_READY, 2000), 0);
    CU_ASSERT_EQUAL(m.nparts, 2);
    CU_ASSERT(part_is(&m, 0, "test"));
    size_t n;
    const void *p = omni_wire_part(&m, 1, &n);
    struct omni_msg rm;
    CU_ASSERT_EQUAL(omni_msg_decode(p, n, &rm, err), OMNI_OK);
    CU_ASSERT_EQUAL(rm.type, OMNI_MSG_READY);
    if (rm.capacity != 8)
        fprintf(stderr, "capacity: got %u, want 8\n", rm.capacity);
    CU_ASSERT_EQUAL(rm.capacity, 8);
    CU_ASSERT_EQUAL(rm.pid, (uint32_t)getpid());
    omni_wire_msg_close(&m);
    stop();
}

static void test_capacity_from_cfg(void)
{
    char err[OMNI_ERR_LEN];
    struct omni_worker_def d = def;
    d.service = "echo";
    d.capacity = 0;
    omni_cfg_set("capacity.echo", "77", err);
    router = zmq_socket(zctx, ZMQ_ROUTER);
    CU_ASSERT_EQUAL_FATAL(zmq_bind(router, endpoint), 0);
    base = event_base_new();
    w = omni_worker_new(&d, base, endpoint, err);
    CU_ASSERT_EQUAL_FATAL(omni_worker_start(w, err), 0);
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_READY, 2000), 0);
    CU_ASSERT(part_is(&m, 0, "echo"));
    size_t n;
    const void *p = omni_wire_part(&m, 1, &n);
    struct omni_msg rm;
    omni_msg_decode(p, n, &rm, err);
    CU_ASSERT_EQUAL(rm.capacity, 77);
    omni_wire_msg_close(&m);
    stop();
}

static void test_request_final(void)
{
    start(0);
    send_req(42, "echo", "{\"hi\":1}", false, 0);
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 42);
    CU_ASSERT(part_is(&m, 0, "{\"hi\":1}"));
    omni_wire_msg_close(&m);
    CU_ASSERT_EQUAL(omni_worker_in_flight(w), 0);
    /* An empty body is a valid FINAL too. */
    send_req(43, "echo", "", false, 0);
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 43);
    CU_ASSERT(part_is(&m, 0, ""));
    omni_wire_msg_close(&m);
    stop();
}

static void test_stream(void)
{
    start(0);
    send_req(7, "stream", "", true, 0);
    struct omni_wire_msg m;
    const char *want[] = {"p0", "p1", "p2"};
    for (int i = 0; i < 3; i++) {
        CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_PARTIAL, 2000), 0);
        CU_ASSERT_EQUAL(m.key, 7);
        CU_ASSERT(part_is(&m, 0, want[i]));
        omni_wire_msg_close(&m);
    }
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT(part_is(&m, 0, "done"));
    omni_wire_msg_close(&m);
    /* Not a stream request: the partials are dropped, the final goes. */
    send_req(8, "stream", "", false, 0);
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 8);
    CU_ASSERT(part_is(&m, 0, "done"));
    omni_wire_msg_close(&m);
    stop();
}

static void test_error(void)
{
    char err[OMNI_ERR_LEN];
    start(0);
    send_req(9, "error", "", false, 0);
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_ERROR, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 9);
    size_t n;
    const void *p = omni_wire_part(&m, 0, &n);
    struct omni_msg em;
    CU_ASSERT_EQUAL(omni_msg_decode(p, n, &em, err), OMNI_OK);
    CU_ASSERT_EQUAL(em.type, OMNI_MSG_ERROR);
    CU_ASSERT_EQUAL(em.code, OMNI_E_UPSTREAM);
    CU_ASSERT_EQUAL(em.status, 429);
    CU_ASSERT_EQUAL(em.retry_after_ms, 1500);
    char *msg = omni_strndup(em.message.p, em.message.n);
    CU_ASSERT_PTR_NULL(strstr(msg, "abcdefghijklmnop1234"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msg, "provider said no"));
    omni_free(msg);
    omni_wire_msg_close(&m);
    stop();
}

static void test_cancel(void)
{
    start(0);
    send_req(11, "hold", "", false, 0);
    send_req(12, "hold", "", false, 0);
    pump(50);
    CU_ASSERT_EQUAL(omni_worker_in_flight(w), 2);
    CU_ASSERT_EQUAL(nheld, 2);
    send_cmd(OMNI_W_CANCEL, true, 11);
    send_cmd(OMNI_W_CANCEL, true, 999); /* unknown: ignored */
    pump(50);
    CU_ASSERT_EQUAL(ncancel, 1);
    CU_ASSERT_EQUAL(cancelled_key, 11);
    CU_ASSERT_EQUAL(omni_worker_in_flight(w), 1);
    /* The FINAL attempted inside cancel must not reach the broker. */
    CU_ASSERT_EQUAL(quiet(100), 0);
    CU_ASSERT_EQUAL_FATAL(nheld, 1);
    CU_ASSERT_EQUAL(omni_wreq_key(held[0]), 12);
    omni_wreq_final(held[0], "ok", 2);
    nheld = 0;
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 12);
    omni_wire_msg_close(&m);
    stop();
}

static void test_deadline(void)
{
    start(0);
    int64_t t0 = omni_now_ms();
    send_req(21, "hold", "", false, 150);
    send_req(22, "hold", "", false, 0);
    pump(40);
    CU_ASSERT_EQUAL_FATAL(nheld, 2);
    struct omni_wreq *r21 = omni_wreq_key(held[0]) == 21 ? held[0] : held[1];
    struct omni_wreq *r22 = r21 == held[0] ? held[1] : held[0];
    int64_t d = omni_wreq_deadline(r21);
    CU_ASSERT(d >= t0 + 150 && d <= omni_now_ms() + 150);
    CU_ASSERT_EQUAL(omni_wreq_deadline(r22), 0);
    CU_ASSERT(!omni_wreq_stream(r21));
    CU_ASSERT(omni_str_eq(omni_wreq_trace(r21), "tr-1"));
    CU_ASSERT_EQUAL(ncancel, 0);
    CU_ASSERT_EQUAL(quiet(250), 0); /* no answer from the worker */
    CU_ASSERT_EQUAL(ncancel, 1);
    CU_ASSERT_EQUAL(cancelled_key, 21);
    CU_ASSERT_EQUAL(omni_worker_in_flight(w), 1);
    stop(); /* abandons 22 */
    CU_ASSERT_EQUAL(ncancel, 2);
    CU_ASSERT_EQUAL(cancelled_key, 22);
}

static void test_heartbeat(void)
{
    start(0);
    /* Keep the worker's view of the broker alive while we wait. */
    int beats = 0;
    int64_t end = omni_now_ms() + 5 * HB_MS;
    while (omni_now_ms() < end) {
        struct omni_wire_msg m;
        char err[OMNI_ERR_LEN];
        send_cmd(OMNI_W_HEARTBEAT, false, 0);
        pump(HB_MS / 4);
        while (omni_wire_recv(router, true, &m, err) == OMNI_OK) {
            beats += m.cmd == OMNI_W_HEARTBEAT;
            CU_ASSERT_NOT_EQUAL(m.cmd, OMNI_W_READY);
            omni_wire_msg_close(&m);
        }
    }
    if (beats < 2 || beats > 10)
        fprintf(stderr, "heartbeats in %d ms: got %d, want 2..10\n", 5 * HB_MS,
                beats);
    CU_ASSERT(beats >= 2 && beats <= 10);
    stop();
}

static void test_reconnect_silence(void)
{
    start(0);
    unsigned char old[256];
    size_t old_len = ident_len;
    memcpy(old, ident, ident_len);
    send_req(31, "hold", "", false, 0);
    pump(20);
    CU_ASSERT_EQUAL(nheld, 1);
    /* Silence: dead after 3 x 100 ms, then a new socket after 1-1.5 s. */
    silent = true;
    int64_t t0 = omni_now_ms();
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_READY, 3000), 0);
    silent = false;
    int64_t dt = omni_now_ms() - t0;
    omni_wire_msg_close(&m);
    if (dt < 1000 + 3 * HB_MS - 50 || dt > 2200)
        fprintf(stderr, "reconnect after %lld ms, want ~1.3-2 s\n",
                (long long)dt);
    CU_ASSERT(dt >= 1000 + 3 * HB_MS - 50 && dt <= 2200);
    CU_ASSERT(ident_len != old_len || memcmp(ident, old, old_len) != 0);
    CU_ASSERT_EQUAL(ncancel, 1); /* the request in flight, abandoned */
    CU_ASSERT_EQUAL(cancelled_key, 31);
    CU_ASSERT_EQUAL(omni_worker_in_flight(w), 0);
    /* The new link works. */
    send_req(32, "echo", "x", false, 0);
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 32);
    omni_wire_msg_close(&m);
    stop();
}

static void test_reconnect_disconnect(void)
{
    start(0);
    send_req(41, "hold", "", false, 0);
    pump(20);
    send_cmd(OMNI_W_DISCONNECT, false, 0);
    pump(50);
    CU_ASSERT_EQUAL(ncancel, 1);
    CU_ASSERT_EQUAL(cancelled_key, 41);
    struct omni_wire_msg m;
    int64_t t0 = omni_now_ms();
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_READY, 3000), 0);
    int64_t dt = omni_now_ms() - t0;
    CU_ASSERT(dt >= 900 && dt <= 1700);
    omni_wire_msg_close(&m);
    stop();
}

static void test_malformed(void)
{
    char err[OMNI_ERR_LEN];
    start(0);
    const char req = OMNI_W_REQUEST, bogus = 99;
    const char key[8] = {0, 0, 0, 0, 0, 0, 0, 5};
    struct omni_buf final_hdr = OMNI_BUF_INIT;
    struct omni_msg fm = {.type = OMNI_MSG_FINAL};
    omni_msg_pack(&fm, &final_hdr);
    struct {
        const char *frames[5];
        size_t lens[5];
        int n;
    } cases[] = {
        {{"OMNIW2", &req}, {6, 1}, 2},                      /* bad sig */
        {{OMNI_WIRE_SIG, &bogus}, {6, 1}, 2},               /* command */
        {{OMNI_WIRE_SIG, &req}, {6, 1}, 2},                 /* no key */
        {{OMNI_WIRE_SIG, &req, "abc"}, {6, 1, 3}, 3},       /* short key */
        {{OMNI_WIRE_SIG, &req, key, "x"}, {6, 1, 8, 1}, 4}, /* no body */
        {{OMNI_WIRE_SIG, &req, key, "x", "y"}, {6, 1, 8, 1, 1}, 5},
        {{OMNI_WIRE_SIG, &req, key, final_hdr.data, "y"},
         {6, 1, 8, final_hdr.len, 1},
         5},
        {{OMNI_WIRE_SIG}, {6}, 1},
        {{""}, {0}, 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++)
        send_raw(cases[i].frames, cases[i].lens, cases[i].n);
    /* A garbage header with a readable key is answered, not dropped: the
     * broker would otherwise wait for the deadline.  Two of those. */
    struct omni_wire_msg m;
    for (int i = 0; i < 2; i++) {
        CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_ERROR, 2000), 0);
        CU_ASSERT_EQUAL(m.key, 5);
        size_t n;
        const void *p = omni_wire_part(&m, 0, &n);
        struct omni_msg em;
        CU_ASSERT_EQUAL(omni_msg_decode(p, n, &em, err), OMNI_OK);
        CU_ASSERT(em.code == OMNI_E_PROTOCOL || em.code == OMNI_E_BAD_REQUEST);
        omni_wire_msg_close(&m);
    }
    CU_ASSERT_EQUAL(omni_worker_in_flight(w), 0);
    CU_ASSERT_EQUAL(nheld, 0);
    /* Unexpected commands are ignored too; the link still works. */
    send_cmd(OMNI_W_FINAL, true, 3);
    send_cmd(OMNI_W_READY, false, 0);
    send_req(51, "echo", "still here", false, 0);
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 51);
    CU_ASSERT(part_is(&m, 0, "still here"));
    omni_wire_msg_close(&m);
    omni_buf_release(&final_hdr);
    stop();
}

/* The REQUEST map the broker forwards may lack svc: still a request. */
static void test_header_without_svc(void)
{
    start(0);
    struct omni_buf hdr = OMNI_BUF_INIT;
    struct omni_msg hm = {.type = OMNI_MSG_REQUEST, .op = omni_str_c("echo")};
    omni_msg_pack(&hm, &hdr);
    omni_wire_send(router, ident, ident_len, OMNI_W_REQUEST, true, 61, hdr.data,
                   hdr.len, "b", 1, NULL);
    omni_buf_release(&hdr);
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 61);
    omni_wire_msg_close(&m);
    stop();
}

static void test_capacity(void)
{
    char err[OMNI_ERR_LEN];
    start(0);
    for (uint64_t k = 1; k <= 9; k++)
        send_req(k, "hold", "", false, 0);
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_ERROR, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 9);
    size_t n;
    const void *p = omni_wire_part(&m, 0, &n);
    struct omni_msg em;
    omni_msg_decode(p, n, &em, err);
    CU_ASSERT_EQUAL(em.code, OMNI_E_OVERLOADED);
    omni_wire_msg_close(&m);
    CU_ASSERT_EQUAL(omni_worker_in_flight(w), 8);
    /* A duplicate key is ignored, not answered. */
    send_req(3, "echo", "dup", false, 0);
    CU_ASSERT_EQUAL(quiet(100), 0);
    stop();
    CU_ASSERT_EQUAL(ncancel, 8);
}

static void test_drain(void)
{
    char err[OMNI_ERR_LEN];
    start(0);
    send_req(71, "hold", "", false, 0);
    pump(30);
    CU_ASSERT_EQUAL_FATAL(nheld, 1);
    omni_worker_stop(w);
    CU_ASSERT_EQUAL(nshutdown, 1);
    CU_ASSERT(!omni_worker_done(w));
    /* New work is refused while draining. */
    send_req(72, "echo", "x", false, 0);
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_ERROR, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 72);
    size_t n;
    const void *p = omni_wire_part(&m, 0, &n);
    struct omni_msg em;
    omni_msg_decode(p, n, &em, err);
    CU_ASSERT_EQUAL(em.code, OMNI_E_UNAVAILABLE);
    omni_wire_msg_close(&m);
    /* The reply in flight still gets out, then the worker is done. */
    omni_wreq_final(held[0], "last", 4);
    nheld = 0;
    CU_ASSERT(omni_worker_done(w));
    CU_ASSERT_EQUAL(omni_worker_run(w), 0);
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 71);
    omni_wire_msg_close(&m);
    /* run() said goodbye. */
    CU_ASSERT_EQUAL(expect(&m, OMNI_W_DISCONNECT, 2000), 0);
    omni_wire_msg_close(&m);
    stop();
}

static void test_drain_timeout(void)
{
    char err[OMNI_ERR_LEN];
    omni_cfg_set("broker.drain_ms", "100", err);
    start(0);
    omni_cfg_set("broker.drain_ms", "10000", err);
    send_req(81, "hold", "", false, 0);
    pump(30);
    omni_worker_stop(w);
    omni_worker_stop(w); /* twice is once */
    CU_ASSERT_EQUAL(nshutdown, 1);
    int64_t t0 = omni_now_ms();
    CU_ASSERT_EQUAL(omni_worker_run(w), 0);
    int64_t dt = omni_now_ms() - t0;
    CU_ASSERT(dt >= 90 && dt < 1000);
    CU_ASSERT_EQUAL(ncancel, 1);
    struct omni_wire_msg m;
    CU_ASSERT_EQUAL_FATAL(expect(&m, OMNI_W_ERROR, 2000), 0);
    CU_ASSERT_EQUAL(m.key, 81);
    omni_wire_msg_close(&m);
    stop();
}

static void test_parent_fd(void)
{
    int fds[2];
    CU_ASSERT_EQUAL_FATAL(pipe(fds), 0);
    char v[16];
    snprintf(v, sizeof v, "%d", fds[0]);
    setenv("OMNI_PARENT_FD", v, 1);
    start(0);
    unsetenv("OMNI_PARENT_FD");
    CU_ASSERT(write(fds[1], "x", 1) == 1); /* data is not EOF */
    pump(50);
    CU_ASSERT_EQUAL(nshutdown, 0);
    close(fds[1]);
    int64_t t0 = omni_now_ms();
    CU_ASSERT_EQUAL(omni_worker_run(w), 0);
    CU_ASSERT(omni_now_ms() - t0 < 1000);
    CU_ASSERT_EQUAL(nshutdown, 1);
    stop();
    close(fds[0]);
}

/* ZeroMQ refusing sends (high-water mark) must not lose a FINAL. */
static void test_hwm_queue(void)
{
    char err[OMNI_ERR_LEN];
    omni_cfg_set("worker.sndhwm", "1", err);
    start(1);
    omni_cfg_set("worker.sndhwm", "0", err);
    const uint64_t n = 40;
    for (uint64_t k = 1; k <= n; k++)
        send_req(k, "big", "", false, 0);
    /* The broker does not read for a while; heartbeats from it keep the
     * link alive. */
    size_t most = 0;
    for (int i = 0; i < 20; i++) {
        send_cmd(OMNI_W_HEARTBEAT, false, 0);
        pump(10);
        if (w->wq_len > most)
            most = w->wq_len;
    }
    if (most == 0)
        fprintf(stderr, "note: the send queue was never used\n");
    CU_ASSERT(most > 0);
    for (uint64_t k = 1; k <= n; k++) {
        struct omni_wire_msg m;
        send_cmd(OMNI_W_HEARTBEAT, false, 0);
        if (expect(&m, OMNI_W_FINAL, 3000) != 0) {
            CU_FAIL("a FINAL was lost");
            break;
        }
        size_t len;
        omni_wire_part(&m, 0, &len);
        if (m.key != k || len != BIG)
            fprintf(stderr, "final: got key %llu len %zu, want %llu %d\n",
                    (unsigned long long)m.key, len, (unsigned long long)k, BIG);
        CU_ASSERT(m.key == k && len == BIG);
        omni_wire_msg_close(&m);
    }
    pump(20);
    CU_ASSERT_EQUAL(w->wq_len, 0);
    stop();
}

/* ---- sub-requests against a fake broker socket ---- */

static int lfd = -1;

static int fake_listen(void)
{
    char path[128], err[OMNI_ERR_LEN];
    snprintf(path, sizeof path, "%s/omni.sock", dir);
    unlink(path);
    omni_cfg_set("socket", path, err);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) < 0 || listen(fd, 8) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Accept a connection, pumping the worker meanwhile. */
static int fake_accept(int timeout_ms)
{
    int64_t end = omni_now_ms() + timeout_ms;
    while (omni_now_ms() < end) {
        int c = accept4(lfd, NULL, NULL, SOCK_NONBLOCK);
        if (c >= 0)
            return c;
        pump(5);
    }
    return -1;
}

/* Read one frame from c into m (backed by buf), pumping meanwhile. */
static int fake_read(int c, struct omni_buf *buf, struct omni_msg *m,
                     int timeout_ms)
{
    int64_t end = omni_now_ms() + timeout_ms;
    char err[OMNI_ERR_LEN];
    memset(m, 0, sizeof *m);
    while (omni_now_ms() < end) {
        size_t n;
        if (omni_frame_peek(buf->data, buf->len, 1 << 20, &n) == OMNI_OK)
            return omni_msg_decode(buf->data + 4, n, m, err) == OMNI_OK ? 0
                                                                        : -1;
        char tmp[4096];
        ssize_t got = read(c, tmp, sizeof tmp);
        if (got > 0)
            omni_buf_add(buf, tmp, (size_t)got);
        else if (got == 0)
            return -1;
        else
            pump(5);
    }
    return -1;
}

static void fake_consume(struct omni_buf *buf)
{
    size_t n;
    omni_frame_peek(buf->data, buf->len, 1 << 20, &n);
    omni_buf_consume(buf, n + 4);
}

static void fake_final(int c, uint64_t id, const char *body)
{
    struct omni_buf out = OMNI_BUF_INIT;
    struct omni_msg m = {
        .type = OMNI_MSG_FINAL, .id = id, .body = omni_str_c(body)};
    omni_msg_encode(&m, &out);
    CU_ASSERT_EQUAL((size_t)write(c, out.data, out.len), out.len);
    omni_buf_release(&out);
}

static void test_subcall(void)
{
    char err[OMNI_ERR_LEN];
    signal(SIGPIPE, SIG_IGN);
    start(0);
    lfd = fake_listen();
    CU_ASSERT_FATAL(lfd >= 0);

    /* A sub-request goes through the broker socket and its FINAL
     * answers the worker's request. */
    send_req(91, "sub", "{\"q\":1}", false, 0);
    int c = fake_accept(2000);
    CU_ASSERT_FATAL(c >= 0);
    struct omni_buf in = OMNI_BUF_INIT;
    struct omni_msg m;
    CU_ASSERT_EQUAL_FATAL(fake_read(c, &in, &m, 2000), 0);
    CU_ASSERT_EQUAL(m.type, OMNI_MSG_REQUEST);
    CU_ASSERT(omni_str_eq(m.service, "echo"));
    CU_ASSERT(omni_str_eq(m.body, "{\"q\":1}"));
    uint64_t id = m.id;
    fake_consume(&in);
    fake_final(c, id, "sub-reply");
    struct omni_wire_msg wm;
    CU_ASSERT_EQUAL_FATAL(expect(&wm, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(wm.key, 91);
    CU_ASSERT(part_is(&wm, 0, "sub-reply"));
    omni_wire_msg_close(&wm);

    /* Cancelling the request cancels its sub-request; a late reply to
     * it is dropped. */
    send_req(92, "sub", "{}", false, 0);
    CU_ASSERT_EQUAL_FATAL(fake_read(c, &in, &m, 2000), 0);
    id = m.id;
    fake_consume(&in);
    send_cmd(OMNI_W_CANCEL, true, 92);
    CU_ASSERT_EQUAL_FATAL(fake_read(c, &in, &m, 2000), 0);
    CU_ASSERT_EQUAL(m.type, OMNI_MSG_CANCEL);
    CU_ASSERT_EQUAL(m.id, id);
    fake_consume(&in);
    CU_ASSERT_EQUAL(ncancel, 1);
    fake_final(c, id, "too late");
    CU_ASSERT_EQUAL(quiet(100), 0);

    /* The connection drops with a sub-request in flight: UNAVAILABLE. */
    send_req(93, "sub", "{}", false, 0);
    CU_ASSERT_EQUAL_FATAL(fake_read(c, &in, &m, 2000), 0);
    fake_consume(&in);
    close(c);
    CU_ASSERT_EQUAL_FATAL(expect(&wm, OMNI_W_ERROR, 2000), 0);
    CU_ASSERT_EQUAL(wm.key, 93);
    size_t n;
    const void *p = omni_wire_part(&wm, 0, &n);
    struct omni_msg em;
    CU_ASSERT_EQUAL(omni_msg_decode(p, n, &em, err), OMNI_OK);
    CU_ASSERT_EQUAL(em.code, OMNI_E_UNAVAILABLE);
    omni_wire_msg_close(&wm);

    /* The next sub-request reconnects. */
    send_req(94, "sub", "again", false, 0);
    c = fake_accept(2000);
    CU_ASSERT_FATAL(c >= 0);
    omni_buf_reset(&in);
    CU_ASSERT_EQUAL_FATAL(fake_read(c, &in, &m, 2000), 0);
    fake_final(c, m.id, "again-reply");
    fake_consume(&in);
    CU_ASSERT_EQUAL_FATAL(expect(&wm, OMNI_W_FINAL, 2000), 0);
    CU_ASSERT_EQUAL(wm.key, 94);
    CU_ASSERT(part_is(&wm, 0, "again-reply"));
    omni_wire_msg_close(&wm);
    close(c);
    pump(20);

    /* No broker socket at all: the sub-request is refused at once. */
    close(lfd);
    lfd = -1;
    char path[128];
    snprintf(path, sizeof path, "%s/omni.sock", dir);
    unlink(path);
    send_req(95, "sub", "{}", false, 0);
    CU_ASSERT_EQUAL_FATAL(expect(&wm, OMNI_W_ERROR, 2000), 0);
    CU_ASSERT_EQUAL(wm.key, 95);
    omni_wire_msg_close(&wm);

    omni_buf_release(&in);
    stop();
}

static CU_TestInfo tests[] = {
    {"READY names service, capacity, pid", test_ready},
    {"capacity from capacity.<service>", test_capacity_from_cfg},
    {"REQUEST -> FINAL", test_request_final},
    {"PARTIALs then FINAL; none unless stream", test_stream},
    {"ERROR carries code, status, retry, redacted text", test_error},
    {"CANCEL calls cancel; answers inside it dropped", test_cancel},
    {"deadline cancels the request", test_deadline},
    {"HEARTBEAT sent when idle", test_heartbeat},
    {"silent broker: abandon, reconnect, READY", test_reconnect_silence},
    {"DISCONNECT: abandon, reconnect", test_reconnect_disconnect},
    {"malformed frames ignored or answered", test_malformed},
    {"header without svc accepted", test_header_without_svc},
    {"over capacity: OVERLOADED; duplicate key ignored", test_capacity},
    {"drain: refuse new, finish old, goodbye", test_drain},
    {"drain timeout answers what is left", test_drain_timeout},
    {"parent pipe EOF drains", test_parent_fd},
    {"high-water mark: FINALs queued, none lost", test_hwm_queue},
    {"sub-requests: reply, cancel, drop, reconnect", test_subcall},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"worker_runtime", setup_cfg, teardown_cfg, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
