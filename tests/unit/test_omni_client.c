/*
 * test_omni_client - libomni against a fake broker.
 *
 * Each test binds a temporary Unix socket, connects a client to it and
 * accepts the connection, then plays the broker byte by byte on the
 * accepted end: frames split at every byte, many frames in one write,
 * replies out of order, chunks, errors, a broker that closes mid-frame.
 * What the client sends is decoded with the same codec and checked.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "omni.h"
#include "omni_alloc.h"
#include "omni_proto.h"
#include "omni_time.h"
#include "unit.h"

struct fake {
    char dir[64];
    char path[128];
    int lfd, sfd;
    omni_client *c;
    struct omni_buf in; /* bytes read from the client */
};

static int fake_open(struct fake *f)
{
    memset(f, 0, sizeof *f);
    f->lfd = f->sfd = -1;
    omni_buf_init(&f->in);
    snprintf(f->dir, sizeof f->dir, "/tmp/omni-unit-XXXXXX");
    if (!mkdtemp(f->dir))
        return -1;
    snprintf(f->path, sizeof f->path, "%s/b.sock", f->dir);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof sa.sun_path, "%s", f->path);
    f->lfd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof sa) < 0 ||
        listen(f->lfd, 8) < 0)
        return -1;
    char err[256];
    f->c = omni_connect(f->path, err, sizeof err);
    if (!f->c)
        return -1;
    f->sfd = accept(f->lfd, NULL, NULL);
    return f->sfd < 0 ? -1 : 0;
}

static void fake_close(struct fake *f)
{
    omni_close(f->c);
    if (f->sfd >= 0)
        close(f->sfd);
    if (f->lfd >= 0)
        close(f->lfd);
    unlink(f->path);
    rmdir(f->dir);
    omni_buf_release(&f->in);
}

static void put_bytes(struct fake *f, const void *p, size_t n)
{
    const char *s = p;
    while (n) {
        ssize_t w = write(f->sfd, s, n);
        if (w < 0 && errno == EINTR)
            continue;
        CU_ASSERT_FATAL(w > 0);
        s += w;
        n -= (size_t)w;
    }
}

static void put_msg(struct fake *f, const struct omni_msg *m)
{
    struct omni_buf b = OMNI_BUF_INIT;
    omni_msg_encode(m, &b);
    put_bytes(f, b.data, b.len);
    omni_buf_release(&b);
}

static void put_final(struct fake *f, uint64_t id, const char *body)
{
    struct omni_msg m = {
        .type = OMNI_MSG_FINAL, .id = id, .body = omni_str_c(body)};
    put_msg(f, &m);
}

/* Read the next frame the client sent (waiting up to 2 s) and decode it
 * into m; its strings point into f->in until the next call. */
static int get_msg(struct fake *f, struct omni_msg *m)
{
    static size_t used;
    omni_buf_consume(&f->in, used);
    used = 0;
    for (;;) {
        size_t n;
        if (omni_frame_peek(f->in.data, f->in.len, 1 << 30, &n) == OMNI_OK) {
            char err[OMNI_ERR_LEN];
            used = 4 + n;
            return omni_msg_decode(f->in.data + 4, n, m, err) == OMNI_OK ? 0
                                                                         : -1;
        }
        struct pollfd p = {.fd = f->sfd, .events = POLLIN};
        if (poll(&p, 1, 2000) <= 0)
            return -1;
        char buf[65536];
        ssize_t r = read(f->sfd, buf, sizeof buf);
        if (r <= 0)
            return -1;
        omni_buf_add(&f->in, buf, (size_t)r);
    }
}

static uint64_t send_req(struct fake *f, const char *op, bool stream)
{
    struct omni_request req = {.service = "echo",
                               .op = op,
                               .body = "{}",
                               .body_len = 2,
                               .stream = stream};
    uint64_t id = 0;
    CU_ASSERT_EQUAL(omni_send(f->c, &req, &id), 0);
    return id;
}

static void test_connect_missing(void)
{
    char err[256] = "x";
    omni_client *c = omni_connect("/nonexistent-omni/b.sock", err, sizeof err);
    CU_ASSERT_PTR_NULL(c);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "cannot connect to "
                                       "'/nonexistent-omni/b.sock'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "No such file or directory"));
    CU_ASSERT_STRING_EQUAL(omni_last_error(NULL), err);
    /* Too long for sun_path: refused before any system call. */
    char longp[200];
    memset(longp, 'a', sizeof longp - 1);
    longp[sizeof longp - 1] = '\0';
    CU_ASSERT_PTR_NULL(omni_connect(longp, err, sizeof err));
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "path too long"));
}

static void test_connect_env(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    setenv("OMNI_SOCKET", f.path, 1);
    char err[256];
    omni_client *c = omni_connect(NULL, err, sizeof err);
    unsetenv("OMNI_SOCKET");
    CU_ASSERT_PTR_NOT_NULL(c);
    CU_ASSERT_STRING_EQUAL(err, "");
    omni_close(c);
    fake_close(&f);
}

/* The request on the wire carries every field, and ids increase. */
static void test_send_fields(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    struct omni_request req = {.service = "llm",
                               .op = "chat",
                               .body = "{\"a\":1}",
                               .body_len = 7,
                               .stream = true,
                               .idempotent = true,
                               .timeout_ms = 1500,
                               .auth = "key-1234",
                               .trace = "tr-9"};
    uint64_t id1 = 0, id2 = 0;
    CU_ASSERT_EQUAL(omni_send(f.c, &req, &id1), 0);
    CU_ASSERT_EQUAL(omni_send(f.c, &req, &id2), 0);
    CU_ASSERT(id1 > 0);
    CU_ASSERT(id2 > id1);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 2);
    struct omni_msg m;
    CU_ASSERT_FATAL(get_msg(&f, &m) == 0);
    CU_ASSERT_EQUAL(m.type, OMNI_MSG_REQUEST);
    CU_ASSERT_EQUAL(m.id, id1);
    CU_ASSERT(omni_str_eq(m.service, "llm"));
    CU_ASSERT(omni_str_eq(m.op, "chat"));
    CU_ASSERT(omni_str_eq(m.body, "{\"a\":1}"));
    CU_ASSERT(omni_str_eq(m.auth, "key-1234"));
    CU_ASSERT(omni_str_eq(m.trace, "tr-9"));
    CU_ASSERT(m.stream && m.idempotent);
    CU_ASSERT_EQUAL(m.deadline_ms, 1500);
    CU_ASSERT_FATAL(get_msg(&f, &m) == 0);
    CU_ASSERT_EQUAL(m.id, id2);

    /* Invalid requests fail locally with a message. */
    struct omni_request bad = {.service = "llm"};
    CU_ASSERT_EQUAL(omni_send(f.c, &bad, &id1), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(omni_last_error(f.c), "service and an op"));
    fake_close(&f);
}

/* A frame split at every byte boundary is delivered once, whole. */
static void test_split_every_byte(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    struct omni_buf b = OMNI_BUF_INIT;
    struct omni_msg m = {.type = OMNI_MSG_FINAL,
                         .id = 0,
                         .body = omni_str_c("{\"hello\":\"world\"}")};
    for (int round = 0; round < 2; round++) {
        uint64_t id = send_req(&f, "echo", false);
        m.id = id;
        omni_buf_reset(&b);
        omni_msg_encode(&m, &b);
        for (size_t cut = 1; cut < b.len; cut++) {
            struct omni_event ev;
            put_bytes(&f, b.data + cut - 1, 1);
            int rc = omni_next(f.c, &ev);
            if (rc != 0) {
                CU_FAIL("event before the frame was complete");
                break;
            }
        }
        put_bytes(&f, b.data + b.len - 1, 1);
        struct omni_event ev;
        CU_ASSERT_EQUAL_FATAL(omni_next(f.c, &ev), 1);
        CU_ASSERT_EQUAL(ev.type, OMNI_EVENT_FINAL);
        CU_ASSERT_EQUAL(ev.id, id);
        CU_ASSERT_EQUAL(ev.body_len, 17);
        CU_ASSERT(memcmp(ev.body, "{\"hello\":\"world\"}", 17) == 0);
        CU_ASSERT_EQUAL(omni_next(f.c, &ev), 0);
        CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    }
    omni_buf_release(&b);
    fake_close(&f);
}

/* Many frames in one write, replies in reverse order of the requests. */
static void test_many_out_of_order(void)
{
    enum { N = 300 };
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    uint64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = send_req(&f, "echo", false);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), N);
    struct omni_buf b = OMNI_BUF_INIT;
    for (int i = N - 1; i >= 0; i--) {
        char body[32];
        snprintf(body, sizeof body, "r%llu", (unsigned long long)ids[i]);
        struct omni_msg m = {
            .type = OMNI_MSG_FINAL, .id = ids[i], .body = omni_str_c(body)};
        omni_msg_encode(&m, &b);
    }
    put_bytes(&f, b.data, b.len);
    omni_buf_release(&b);
    int got = 0;
    struct omni_event ev;
    while (got < N && omni_recv(f.c, &ev, 2000) == 1) {
        uint64_t want = ids[N - 1 - got];
        char body[32];
        int n = snprintf(body, sizeof body, "r%llu", (unsigned long long)want);
        if (ev.id != want || ev.body_len != (size_t)n ||
            memcmp(ev.body, body, (size_t)n) != 0) {
            CU_FAIL("event out of sequence or with a wrong body");
            break;
        }
        got++;
    }
    CU_ASSERT_EQUAL(got, N);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    CU_ASSERT_EQUAL(omni_next(f.c, &ev), 0);
    fake_close(&f);
}

static void test_chunks_then_final(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    uint64_t a = send_req(&f, "stream", true);
    uint64_t b = send_req(&f, "stream", true);
    /* Chunks of two requests interleaved, then both finals. */
    for (uint64_t s = 0; s < 3; s++) {
        char body[8];
        snprintf(body, sizeof body, "c%llu", (unsigned long long)s);
        struct omni_msg m = {.type = OMNI_MSG_CHUNK,
                             .id = a,
                             .seq = s,
                             .body = omni_str_c(body)};
        put_msg(&f, &m);
        m.id = b;
        put_msg(&f, &m);
    }
    put_final(&f, b, "");
    put_final(&f, a, "end");
    struct omni_event ev;
    uint64_t next_seq[2] = {0, 0};
    int finals = 0;
    while (finals < 2 && omni_recv(f.c, &ev, 2000) == 1) {
        int k = ev.id == a ? 0 : 1;
        if (ev.type == OMNI_EVENT_CHUNK) {
            char body[8];
            snprintf(body, sizeof body, "c%llu",
                     (unsigned long long)next_seq[k]);
            CU_ASSERT_EQUAL(ev.seq, next_seq[k]);
            CU_ASSERT(ev.body_len == 2 && memcmp(ev.body, body, 2) == 0);
            CU_ASSERT_EQUAL(omni_in_flight(f.c), 2 - finals);
            next_seq[k]++;
        } else {
            CU_ASSERT_EQUAL(ev.type, OMNI_EVENT_FINAL);
            CU_ASSERT_EQUAL(next_seq[k], 3);
            if (k == 0)
                CU_ASSERT(ev.body_len == 3 && !memcmp(ev.body, "end", 3));
            finals++;
        }
    }
    CU_ASSERT_EQUAL(finals, 2);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    fake_close(&f);
}

static void test_error_fields(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    uint64_t a = send_req(&f, "echo", false);
    uint64_t b = send_req(&f, "echo", false);
    struct omni_buf buf = OMNI_BUF_INIT;
    omni_msg_encode_error(&buf, a, OMNI_E_OVERLOADED, 250, "queue '%s' full",
                          "echo");
    put_bytes(&f, buf.data, buf.len);
    omni_buf_release(&buf);
    /* An unknown code from a newer broker reads as INTERNAL, keeping
     * the status it came with. */
    struct omni_msg m = {.type = OMNI_MSG_ERROR,
                         .id = b,
                         .code = OMNI_E_UPSTREAM,
                         .status = 418,
                         .message = omni_str_c("teapot")};
    struct omni_buf raw = OMNI_BUF_INIT;
    omni_msg_encode(&m, &raw);
    static const char newcode[8] = "NEWCODE!"; /* patched in, no NUL */
    char *w = memmem(raw.data, raw.len, "UPSTREAM", sizeof newcode);
    CU_ASSERT_PTR_NOT_NULL_FATAL(w);
    if (w) /* the FATAL assert longjmps; the analyzer cannot see it */
        memcpy(w, newcode, sizeof newcode);
    put_bytes(&f, raw.data, raw.len);
    omni_buf_release(&raw);

    struct omni_event ev;
    CU_ASSERT_EQUAL_FATAL(omni_recv(f.c, &ev, 2000), 1);
    CU_ASSERT_EQUAL(ev.type, OMNI_EVENT_ERROR);
    CU_ASSERT_EQUAL(ev.id, a);
    CU_ASSERT_STRING_EQUAL(ev.code, "OVERLOADED");
    CU_ASSERT_EQUAL(ev.status, 503);
    CU_ASSERT_STRING_EQUAL(ev.message, "queue 'echo' full");
    CU_ASSERT_EQUAL(ev.retry_after_ms, 250);
    CU_ASSERT_EQUAL_FATAL(omni_recv(f.c, &ev, 2000), 1);
    CU_ASSERT_EQUAL(ev.id, b);
    CU_ASSERT_STRING_EQUAL(ev.code, "INTERNAL");
    CU_ASSERT_EQUAL(ev.status, 418);
    CU_ASSERT_STRING_EQUAL(ev.message, "teapot");
    CU_ASSERT_EQUAL(ev.retry_after_ms, 0);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    fake_close(&f);
}

/* An undecodable message in a good frame is an error event; reading
 * goes on with the next frame. */
static void test_bad_message(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    uint64_t id = send_req(&f, "echo", false);
    static const unsigned char notmap[] = {0, 0, 0, 1, 0x93};
    put_bytes(&f, notmap, sizeof notmap);
    put_final(&f, id, "ok");
    struct omni_event ev;
    CU_ASSERT_EQUAL_FATAL(omni_recv(f.c, &ev, 2000), 1);
    CU_ASSERT_EQUAL(ev.type, OMNI_EVENT_ERROR);
    CU_ASSERT_EQUAL(ev.id, 0);
    CU_ASSERT_STRING_EQUAL(ev.code, "PROTOCOL");
    CU_ASSERT_PTR_NOT_NULL(strstr(ev.message, "undecodable reply"));
    CU_ASSERT_EQUAL_FATAL(omni_recv(f.c, &ev, 2000), 1);
    CU_ASSERT_EQUAL(ev.type, OMNI_EVENT_FINAL);
    CU_ASSERT_EQUAL(ev.id, id);
    fake_close(&f);
}

static void test_close_mid_frame(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    uint64_t a = send_req(&f, "echo", false);
    send_req(&f, "echo", false);
    struct omni_buf b = OMNI_BUF_INIT;
    struct omni_msg m = {
        .type = OMNI_MSG_FINAL, .id = a, .body = omni_str_c("whole")};
    omni_msg_encode(&m, &b);
    size_t whole = b.len;
    omni_msg_encode(&m, &b);
    put_bytes(&f, b.data, whole + 7); /* one frame and a bit */
    omni_buf_release(&b);
    close(f.sfd);
    f.sfd = -1;
    struct omni_event ev;
    CU_ASSERT_EQUAL(omni_recv(f.c, &ev, 2000), 1); /* the whole one */
    CU_ASSERT_EQUAL(ev.id, a);
    CU_ASSERT_EQUAL(omni_recv(f.c, &ev, 2000), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(omni_last_error(f.c),
                                  "closed the connection in the middle "
                                  "of a frame"));
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    /* Every later call fails too. */
    CU_ASSERT_EQUAL(omni_next(f.c, &ev), -1);
    struct omni_request req = {.service = "echo", .op = "echo"};
    uint64_t id;
    CU_ASSERT_EQUAL(omni_send(f.c, &req, &id), -1);
    CU_ASSERT_EQUAL(omni_call(f.c, &req, NULL, NULL, NULL, NULL, NULL), -1);
    fake_close(&f);
}

static void test_close_clean(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    send_req(&f, "echo", false);
    close(f.sfd);
    f.sfd = -1;
    struct omni_event ev;
    CU_ASSERT_EQUAL(omni_recv(f.c, &ev, 2000), -1);
    CU_ASSERT_STRING_EQUAL(omni_last_error(f.c),
                           "broker closed the connection");
    fake_close(&f);
}

static void test_frame_too_large(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    static const unsigned char huge[] = {0xff, 0xff, 0xff, 0xff, 0x80};
    put_bytes(&f, huge, sizeof huge);
    struct omni_event ev;
    CU_ASSERT_EQUAL(omni_recv(f.c, &ev, 2000), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(omni_last_error(f.c), "frame of length"));
    fake_close(&f);
}

static void test_cancel(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    uint64_t id = send_req(&f, "sleep", false);
    CU_ASSERT_EQUAL(omni_cancel(f.c, id), 0);
    struct omni_msg m;
    CU_ASSERT_FATAL(get_msg(&f, &m) == 0);
    CU_ASSERT_EQUAL(m.type, OMNI_MSG_REQUEST);
    CU_ASSERT_FATAL(get_msg(&f, &m) == 0);
    CU_ASSERT_EQUAL(m.type, OMNI_MSG_CANCEL);
    CU_ASSERT_EQUAL(m.id, id);
    /* The request still ends with an event. */
    struct omni_buf b = OMNI_BUF_INIT;
    omni_msg_encode_error(&b, id, OMNI_E_CANCELLED, 0, "cancelled");
    put_bytes(&f, b.data, b.len);
    omni_buf_release(&b);
    struct omni_event ev;
    CU_ASSERT_EQUAL_FATAL(omni_recv(f.c, &ev, 2000), 1);
    CU_ASSERT_STRING_EQUAL(ev.code, "CANCELLED");
    CU_ASSERT_EQUAL(ev.status, 499);
    CU_ASSERT_EQUAL(omni_cancel(f.c, id), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(omni_last_error(f.c), "not in flight"));
    fake_close(&f);
}

struct chunks {
    int n;
    size_t bytes;
};

static void on_chunk(const void *p, size_t n, void *arg)
{
    struct chunks *k = arg;
    (void)p;
    k->n++;
    k->bytes += n;
}

/* omni_call concatenates chunks and the final body, and keeps events
 * of other requests for omni_next. */
static void test_call(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    uint64_t other = send_req(&f, "echo", false);
    uint64_t next = other + 1; /* the id omni_call will use */
    put_final(&f, other, "other");
    const char *parts[] = {"alpha ", "beta ", "gamma"};
    for (uint64_t s = 0; s < 3; s++) {
        struct omni_msg m = {.type = OMNI_MSG_CHUNK,
                             .id = next,
                             .seq = s,
                             .body = omni_str_c(parts[s])};
        put_msg(&f, &m);
    }
    put_final(&f, next, "!");
    struct omni_request req = {
        .service = "echo", .op = "stream", .stream = true};
    struct chunks k = {0, 0};
    char *body = NULL;
    size_t len = 0;
    int status = 0;
    CU_ASSERT_EQUAL_FATAL(
        omni_call(f.c, &req, on_chunk, &k, &body, &len, &status), 0);
    CU_ASSERT_STRING_EQUAL(body, "alpha beta gamma!");
    CU_ASSERT_EQUAL(len, 17);
    CU_ASSERT_EQUAL(status, 200);
    CU_ASSERT_EQUAL(k.n, 3);
    CU_ASSERT_EQUAL(k.bytes, 16);
    free(body);
    struct omni_event ev;
    CU_ASSERT_EQUAL_FATAL(omni_next(f.c, &ev), 1);
    CU_ASSERT_EQUAL(ev.id, other);
    CU_ASSERT(ev.body_len == 5 && memcmp(ev.body, "other", 5) == 0);
    CU_ASSERT_EQUAL(omni_next(f.c, &ev), 0);

    /* An error event: -1, "CODE: message", its status. */
    uint64_t third = next + 1;
    struct omni_buf b = OMNI_BUF_INIT;
    omni_msg_encode_error(&b, third, OMNI_E_UPSTREAM, 0, "provider said no");
    put_bytes(&f, b.data, b.len);
    omni_buf_release(&b);
    body = NULL;
    CU_ASSERT_EQUAL(omni_call(f.c, &req, NULL, NULL, &body, &len, &status), -1);
    CU_ASSERT_PTR_NULL(body);
    CU_ASSERT_STRING_EQUAL(omni_last_error(f.c), "UPSTREAM: provider said no");
    CU_ASSERT_EQUAL(status, 502);
    fake_close(&f);
}

/* omni_call gives up after timeout_ms plus its grace and cancels; the
 * late reply is swallowed. */
static void test_call_timeout(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    struct omni_request req = {
        .service = "echo", .op = "sleep", .timeout_ms = 10};
    int status = 0;
    int64_t t0 = omni_now_ms();
    CU_ASSERT_EQUAL(omni_call(f.c, &req, NULL, NULL, NULL, NULL, &status), -1);
    int64_t dt = omni_now_ms() - t0;
    CU_ASSERT(dt >= 2000 && dt < 4000);
    CU_ASSERT_EQUAL(status, 504);
    CU_ASSERT_PTR_NOT_NULL(strstr(omni_last_error(f.c), "TIMEOUT"));
    struct omni_msg m = {0};
    CU_ASSERT_FATAL(get_msg(&f, &m) == 0);
    uint64_t id = m.id;
    CU_ASSERT_FATAL(get_msg(&f, &m) == 0);
    CU_ASSERT_EQUAL(m.type, OMNI_MSG_CANCEL);
    CU_ASSERT_EQUAL(m.id, id);
    put_final(&f, id, "late");
    struct omni_event ev;
    CU_ASSERT_EQUAL(omni_recv(f.c, &ev, 100), 0);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    fake_close(&f);
}

/* omni_send never blocks: what the socket does not take is queued and
 * goes out through omni_flush, intact and in order. */
static void test_write_queue(void)
{
    enum { N = 64, SIZE = 64 * 1024 };
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    char *body = omni_malloc(SIZE);
    struct omni_request req = {
        .service = "echo", .op = "echo", .body = body, .body_len = SIZE};
    fcntl(f.sfd, F_SETFL, O_NONBLOCK);
    int64_t t0 = omni_now_ms();
    for (int i = 0; i < N; i++) {
        memset(body, 'a' + i % 26, SIZE);
        uint64_t id;
        CU_ASSERT_EQUAL(omni_send(f.c, &req, &id), 0);
    }
    CU_ASSERT(omni_now_ms() - t0 < 1000);
    CU_ASSERT(omni_want_write(f.c));
    int got = 0, idle = 0;
    size_t used = 0;
    /* Alternate: the client flushes, the fake broker reads what came
     * and checks every whole frame. */
    while (got < N && idle < 20) {
        CU_ASSERT_EQUAL(omni_flush(f.c), 0);
        char buf[65536];
        ssize_t r = read(f.sfd, buf, sizeof buf);
        if (r <= 0) {
            struct pollfd p = {.fd = f.sfd, .events = POLLIN};
            idle += poll(&p, 1, 50) <= 0;
            continue;
        }
        idle = 0;
        omni_buf_add(&f.in, buf, (size_t)r);
        size_t n;
        struct omni_msg m;
        char err[OMNI_ERR_LEN];
        while (omni_frame_peek(f.in.data + used, f.in.len - used, 1 << 30,
                               &n) == OMNI_OK) {
            bool ok =
                omni_msg_decode(f.in.data + used + 4, n, &m, err) == OMNI_OK &&
                m.body.n == SIZE && m.body.p[0] == 'a' + got % 26 &&
                m.body.p[SIZE - 1] == 'a' + got % 26;
            used += 4 + n;
            if (!ok) {
                CU_FAIL("frame body damaged or out of order");
                idle = 20;
                break;
            }
            got++;
        }
    }
    CU_ASSERT_EQUAL(got, N);
    CU_ASSERT(!omni_want_write(f.c));
    omni_free(body);
    fake_close(&f);
}

static void on_alarm(int sig)
{
    (void)sig;
}

/* A signal during the wait (EINTR) neither fails nor ends it early. */
static void test_recv_eintr(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    struct sigaction sa = {.sa_handler = on_alarm}, old;
    sigaction(SIGALRM, &sa, &old); /* no SA_RESTART */
    struct itimerval it = {{0, 20000}, {0, 20000}};
    setitimer(ITIMER_REAL, &it, NULL);
    struct omni_event ev;
    int64_t t0 = omni_now_ms();
    int rc = omni_recv(f.c, &ev, 300);
    int64_t dt = omni_now_ms() - t0;
    struct itimerval off = {{0, 0}, {0, 0}};
    setitimer(ITIMER_REAL, &off, NULL);
    sigaction(SIGALRM, &old, NULL);
    CU_ASSERT_EQUAL(rc, 0);
    CU_ASSERT(dt >= 290);
    fake_close(&f);
}

/* Requests the broker would refuse fail locally, before any byte is
 * sent, and leave the connection usable. */
static void test_send_limits(void)
{
    setenv("OMNI_MAX_FRAME", "2048", 1);
    struct fake f;
    int rc = fake_open(&f);
    unsetenv("OMNI_MAX_FRAME");
    CU_ASSERT_FATAL(rc == 0);
    static char longname[OMNI_MAX_SERVICE + 2];
    memset(longname, 's', sizeof longname - 1);
    longname[sizeof longname - 1] = '\0';
    static char big[1100];
    memset(big, 'b', sizeof big);
    static const struct {
        struct omni_request req;
        const char *want;
    } cases[] = {
        {{.service = longname, .op = "echo"}, "longer than 64 bytes"},
        {{.service = "echo", .op = longname}, "longer than 64 bytes"},
        {{.service = "echo", .op = "echo", .body_len = 5},
         "request body is NULL with a length of 5"},
        {{.service = "echo", .op = "echo", .body = big, .body_len = sizeof big},
         "request body of 1100 bytes over the 2048-byte frame limit"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        uint64_t id = 0;
        CU_ASSERT_EQUAL(omni_send(f.c, &cases[i].req, &id), -1);
        if (!strstr(omni_last_error(f.c), cases[i].want))
            fprintf(stderr, "case %zu: got '%s', want '%s'\n", i,
                    omni_last_error(f.c), cases[i].want);
        CU_ASSERT_PTR_NOT_NULL(strstr(omni_last_error(f.c), cases[i].want));
    }
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    uint64_t id = send_req(&f, "echo", false);
    struct omni_msg m = {0};
    CU_ASSERT_FATAL(get_msg(&f, &m) == 0);
    CU_ASSERT_EQUAL(m.id, id);
    CU_ASSERT(omni_str_eq(m.service, "echo"));
    fake_close(&f);
}

/* Ids finished in a scrambled order: the in-flight table (linear
 * probing, deletion by backward shift) finds every one exactly once. */
static void test_ids_scrambled(void)
{
    enum { N = 2000 };
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    static uint64_t ids[N];
    for (int i = 0; i < N; i++)
        ids[i] = send_req(&f, "echo", false);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), N);
    /* i * 7919 mod N visits every index once: 7919 is prime to N. */
    struct omni_buf b = OMNI_BUF_INIT;
    for (int i = 0; i < N; i++) {
        struct omni_msg m = {.type = OMNI_MSG_FINAL,
                             .id = ids[(size_t)i * 7919 % N],
                             .body = omni_str_c("x")};
        omni_msg_encode(&m, &b);
    }
    /* And one reply for an id that is not in flight: handed out as it
     * is, with the count of requests in flight untouched. */
    struct omni_msg stray = {.type = OMNI_MSG_FINAL,
                             .id = ids[N - 1] + 1000,
                             .body = omni_str_c("")};
    omni_msg_encode(&stray, &b);
    put_bytes(&f, b.data, b.len);
    omni_buf_release(&b);
    int got = 0, wrong = 0;
    struct omni_event ev;
    while (got < N && omni_recv(f.c, &ev, 2000) == 1) {
        if (ev.id != ids[(size_t)got * 7919 % N])
            wrong++;
        got++;
    }
    CU_ASSERT_EQUAL(got, N);
    CU_ASSERT_EQUAL(wrong, 0);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    CU_ASSERT_EQUAL_FATAL(omni_recv(f.c, &ev, 1000), 1);
    CU_ASSERT_EQUAL(ev.id, ids[N - 1] + 1000);
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    CU_ASSERT_EQUAL(omni_recv(f.c, &ev, 100), 0);
    fake_close(&f);
}

/* The broker end is closed: the send fails with the reason, the request
 * is not left in flight, and later calls fail at once. */
static void test_write_fails(void)
{
    struct fake f;
    CU_ASSERT_FATAL(fake_open(&f) == 0);
    close(f.sfd);
    f.sfd = -1;
    struct omni_request req = {
        .service = "echo", .op = "echo", .body = "{}", .body_len = 2};
    uint64_t id = 0;
    CU_ASSERT_EQUAL(omni_send(f.c, &req, &id), -1);
    CU_ASSERT_PTR_NOT_NULL(
        strstr(omni_last_error(f.c), "cannot write to the broker"));
    CU_ASSERT_EQUAL(omni_in_flight(f.c), 0);
    CU_ASSERT_EQUAL(omni_flush(f.c), -1);
    CU_ASSERT_EQUAL(omni_cancel(f.c, id), -1);
    CU_ASSERT_EQUAL(omni_send(f.c, &req, &id), -1);
    struct omni_event ev;
    CU_ASSERT_EQUAL(omni_recv(f.c, &ev, 1000), -1);
    fake_close(&f);
}

static CU_TestInfo client_tests[] = {
    {"connect to a missing socket", test_connect_missing},
    {"connect via OMNI_SOCKET", test_connect_env},
    {"request fields and ids", test_send_fields},
    {"frame split at every byte", test_split_every_byte},
    {"many frames, out of order", test_many_out_of_order},
    {"chunks then final", test_chunks_then_final},
    {"error event fields", test_error_fields},
    {"undecodable message", test_bad_message},
    {"broker closes mid-frame", test_close_mid_frame},
    {"broker closes cleanly", test_close_clean},
    {"frame over the limit", test_frame_too_large},
    {"cancel", test_cancel},
    {"omni_call", test_call},
    {"omni_call timeout", test_call_timeout},
    {"non-blocking write queue", test_write_queue},
    {"EINTR during recv", test_recv_eintr},
    {"requests over the limits", test_send_limits},
    {"ids finished in a scrambled order", test_ids_scrambled},
    {"write to a closed broker", test_write_fails},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"libomni", NULL, NULL, NULL, NULL, client_tests},
    CU_SUITE_INFO_NULL,
};
