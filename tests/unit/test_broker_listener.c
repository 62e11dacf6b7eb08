/*
 * test_broker_listener - the socket directory rules (0750, ours, not
 * writable by others), stale-socket handling, and the "omni" service's
 * ping and stats documents.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "../../broker/broker.h"
#include "omni_alloc.h"
#include "unit.h"

static char base[64];

static int suite_init(void)
{
    snprintf(base, sizeof base, "/tmp/omni-tbl.XXXXXX");
    return mkdtemp(base) ? 0 : -1;
}

static int suite_clean(void)
{
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    return system(cmd) == 0 ? 0 : -1;
}

static void path_in(char *out, size_t n, const char *sub)
{
    snprintf(out, n, "%s/%s", base, sub);
}

static void test_dir_created_0750(void)
{
    char sock[128], dir[128];
    path_in(dir, sizeof dir, "new");
    path_in(sock, sizeof sock, "new/omni.sock");
    char err[OMNI_ERR_LEN];
    mode_t old = umask(022);
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(sock, err), OMNI_OK);
    umask(old);
    struct stat st;
    CU_ASSERT_EQUAL_FATAL(stat(dir, &st), 0);
    if ((st.st_mode & 0777) != 0750)
        fprintf(stderr, "\nmode: got %03o, want 750\n", st.st_mode & 0777);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0750);
    /* Existing and ours: fine again. */
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(sock, err), OMNI_OK);
    /* Missing parents are made too (make run's default of
     * /tmp/omni-UID/... on a fresh machine), the socket's own directory
     * still 0750. */
    char deep[128], mid[128];
    path_in(mid, sizeof mid, "a");
    path_in(dir, sizeof dir, "a/b/omni");
    path_in(deep, sizeof deep, "a/b/omni/omni.sock");
    old = umask(022);
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(deep, err), OMNI_OK);
    umask(old);
    CU_ASSERT_EQUAL_FATAL(stat(mid, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0755);
    CU_ASSERT_EQUAL_FATAL(stat(dir, &st), 0);
    CU_ASSERT_EQUAL(st.st_mode & 0777, 0750);
}

static void test_dir_refused(void)
{
    char sock[128], dir[128], err[OMNI_ERR_LEN];
    path_in(dir, sizeof dir, "open");
    path_in(sock, sizeof sock, "open/omni.sock");
    CU_ASSERT_EQUAL_FATAL(mkdir(dir, 0700), 0);
    chmod(dir, 0770);
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(sock, err), OMNI_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "lets others"));
    chmod(dir, 0700);
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(sock, err), OMNI_OK);
    /* Owned by someone else (needs root to arrange). */
    if (geteuid() == 0) {
        CU_ASSERT_EQUAL_FATAL(chown(dir, 65534, 65534), 0);
        CU_ASSERT_EQUAL(omni_listener_prepare_dir(sock, err), OMNI_E_IO);
        CU_ASSERT_PTR_NOT_NULL(strstr(err, "owned by uid 65534"));
    }
    /* Not a directory. */
    char file[128];
    path_in(file, sizeof file, "plain");
    fclose(fopen(file, "w"));
    path_in(sock, sizeof sock, "plain/omni.sock");
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(sock, err), OMNI_E_IO);
    /* A parent that cannot be made (a file is in the way). */
    path_in(sock, sizeof sock, "plain/sub/omni.sock");
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(sock, err), OMNI_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "Not a directory"));
    /* ... or one deeper, where the parent loop meets it. */
    path_in(sock, sizeof sock, "plain/sub/deeper/omni.sock");
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(sock, err), OMNI_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "plain/sub': Not a directory"));
    /* Too long for sun_path. */
    char lng[200];
    memset(lng, 'x', sizeof lng - 1);
    lng[0] = '/';
    lng[sizeof lng - 1] = '\0';
    CU_ASSERT_EQUAL(omni_listener_prepare_dir(lng, err), OMNI_E_CONFIG);
}

static void test_stale_and_live(void)
{
    char sock[128], err[OMNI_ERR_LEN];
    path_in(sock, sizeof sock, "s.sock");
    int fd;
    CU_ASSERT_EQUAL_FATAL(omni_listener_open(sock, &fd, err), OMNI_OK);
    /* Live: refused, and the socket file is left alone. */
    int fd2 = -1;
    CU_ASSERT_EQUAL(omni_listener_open(sock, &fd2, err), OMNI_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "already listening"));
    CU_ASSERT_EQUAL(access(sock, F_OK), 0);
    /* Stale (nobody listens): replaced. */
    close(fd);
    CU_ASSERT_EQUAL(omni_listener_open(sock, &fd, err), OMNI_OK);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    memcpy(sa.sun_path, sock, strlen(sock) + 1);
    int c = socket(AF_UNIX, SOCK_STREAM, 0);
    CU_ASSERT_EQUAL(connect(c, (struct sockaddr *)&sa, sizeof sa), 0);
    close(c);
    close(fd);
    /* Not a socket: refused, not removed. */
    char file[128];
    path_in(file, sizeof file, "f.sock");
    fclose(fopen(file, "w"));
    CU_ASSERT_EQUAL(omni_listener_open(file, &fd, err), OMNI_E_IO);
    CU_ASSERT_PTR_NOT_NULL(strstr(err, "not a socket"));
    CU_ASSERT_EQUAL(access(file, F_OK), 0);
}

static void noop_client(void *arg, void *conn, const struct omni_msg *m)
{
    (void)arg;
    (void)conn;
    (void)m;
}

static int noop_worker(void *arg, struct omni_bworker *w,
                       enum omni_wire_cmd cmd, uint64_t key, const void *hdr,
                       size_t hlen, zmq_msg_t *body)
{
    (void)arg;
    (void)w;
    (void)cmd;
    (void)key;
    (void)hdr;
    (void)hlen;
    if (body)
        zmq_msg_close(body);
    return 0;
}

static void test_ping_and_stats(void)
{
    struct omni_router_cfg cfg = {.services = "echo,llm", .queue_max = 4};
    struct omni_router_ops ops = {.to_client = noop_client,
                                  .to_worker = noop_worker};
    struct omni_broker b = {0};
    b.router = omni_router_new(&cfg, &ops, &b);
    struct omni_service *llm = omni_router_service(b.router, "llm", 3);
    snprintf(llm->why, sizeof llm->why, "no binary '/x/omni-llm'");
    struct omni_buf out = OMNI_BUF_INIT;
    CU_ASSERT_EQUAL(omni_stats_ping(&b, &out), OMNI_E_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "'echo'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "'llm' (no binary '/x/omni-llm')"));

    struct omni_bworker we = {.capacity = 10, .pid = 1};
    struct omni_bworker wl = {.capacity = 5, .pid = 2};
    we.svc = omni_router_service(b.router, "echo", 4);
    wl.svc = llm;
    omni_router_worker_add(b.router, &we);
    omni_buf_reset(&out);
    CU_ASSERT_EQUAL(omni_stats_ping(&b, &out), OMNI_E_UNAVAILABLE);
    CU_ASSERT_PTR_NULL(strstr(out.data, "'echo'"));
    omni_router_worker_add(b.router, &wl);
    omni_buf_reset(&out);
    CU_ASSERT_EQUAL(omni_stats_ping(&b, &out), OMNI_OK);
    json_error_t je;
    json_t *j = json_loads(out.data, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT(json_is_true(json_object_get(j, "ready")));
    CU_ASSERT_EQUAL(
        json_integer_value(json_object_get(
            json_object_get(json_object_get(j, "services"), "llm"), "ready")),
        1);
    json_decref(j);

    struct omni_rclient *rc = omni_router_client_new(b.router, NULL);
    struct omni_msg m = {.type = OMNI_MSG_REQUEST,
                         .id = 1,
                         .service = omni_str_c("echo"),
                         .op = omni_str_c("echo")};
    omni_router_request(b.router, rc, &m);
    omni_buf_reset(&out);
    omni_stats_json(&b, &out);
    j = json_loads(out.data, 0, &je);
    CU_ASSERT_PTR_NOT_NULL_FATAL(j);
    CU_ASSERT_EQUAL(json_integer_value(json_object_get(j, "in_flight")), 1);
    json_t *e = json_object_get(json_object_get(j, "services"), "echo");
    static const struct {
        const char *key;
        long long want;
    } want[] = {{"workers", 1},   {"ready", 1},       {"capacity", 10},
                {"in_flight", 1}, {"queued", 0},      {"requests", 1},
                {"errors", 0},    {"worker_lost", 0}, {"overloaded", 0},
                {"timeouts", 0},  {"restarts", 0}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        json_t *v = json_object_get(e, want[i].key);
        if (!json_is_integer(v) || json_integer_value(v) != want[i].want)
            fprintf(stderr, "\nstats %s: got %lld, want %lld\n", want[i].key,
                    (long long)json_integer_value(v), want[i].want);
        CU_ASSERT(json_is_integer(v) && json_integer_value(v) == want[i].want);
    }
    CU_ASSERT(json_is_integer(json_object_get(j, "uptime_ms")));
    json_decref(j);

    b.draining = true;
    omni_buf_reset(&out);
    CU_ASSERT_EQUAL(omni_stats_ping(&b, &out), OMNI_E_UNAVAILABLE);
    CU_ASSERT_PTR_NOT_NULL(strstr(out.data, "draining"));
    omni_buf_release(&out);
    omni_router_client_gone(b.router, rc);
    omni_router_free(b.router);
}

static CU_TestInfo listener_tests[] = {
    {"dir created 0750", test_dir_created_0750},
    {"dir refused", test_dir_refused},
    {"stale and live socket", test_stale_and_live},
    {"ping and stats", test_ping_and_stats},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"listener", suite_init, suite_clean, NULL, NULL, listener_tests},
    CU_SUITE_INFO_NULL,
};
