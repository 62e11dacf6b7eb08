/*
 * test_broker_supervisor - the restart policy (table-driven, no
 * processes), then the real thing on a loop: fake worker scripts that
 * record their environment and fail at start-up, restarted with backoff
 * and then throttled.
 */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../broker/broker.h"
#include "omni_alloc.h"
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

/* A sequence of deaths of one slot, and the delay each one gets. */
static void test_policy(void)
{
    static const struct {
        int64_t lived, want;
        bool started, throttle;
    } steps[] = {
        {50, 100, true, false},   /* first death: restart_min */
        {50, 200, true, false},   /* doubling */
        {50, 400, true, false},   /* doubling */
        {5, 800, false, false},   /* start-up failure 1 */
        {5, 1600, false, false},  /* 2 */
        {5, 2000, false, true},   /* 3 in a row: throttled to max */
        {5, 2000, false, true},   /* still failing: still throttled */
        {50, 2000, true, false},  /* started again: capped */
        {5, 2000, false, false},  /* the count restarted at 1 */
        {5000, 100, true, false}, /* a long life resets the backoff */
        {50, 200, true, false},   /* then doubling again */
    };
    struct omni_sup_policy p = {0, 0};
    for (size_t i = 0; i < sizeof steps / sizeof *steps; i++) {
        bool thr = !steps[i].throttle;
        int64_t d = omni_supervisor_delay(&p, steps[i].started, steps[i].lived,
                                          100, 2000, &thr);
        if (d != steps[i].want || thr != steps[i].throttle)
            fprintf(stderr, "\nstep %zu: got %lld%s, want %lld%s\n", i,
                    (long long)d, thr ? " throttled" : "",
                    (long long)steps[i].want,
                    steps[i].throttle ? " throttled" : "");
        EXPECT_EQ(d, steps[i].want);
        EXPECT_EQ(thr, steps[i].throttle);
    }
}

static void noop_client(void *arg, void *conn, const struct omni_msg *m)
{
    (void)arg;
    (void)conn;
    (void)m;
}

static void write_script(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    fputs(text, f);
    fclose(f);
    chmod(path, 0755);
}

static void run_for(struct event_base *base, int ms)
{
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    event_base_loopexit(base, &tv);
    event_base_dispatch(base);
}

static int count_lines(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    int n = 0, c;
    while ((c = fgetc(f)) != EOF)
        n += c == '\n';
    fclose(f);
    return n;
}

static bool stopped;

static void on_stopped(void *arg)
{
    (void)arg;
    stopped = true;
}

/* A worker that fails at start-up is restarted with backoff, then
 * throttled; its environment carries the contract variables; a missing
 * binary leaves its service not ready with a reason. */
static void test_spawn_and_throttle(void)
{
    char dir[] = "/tmp/omni-tbs.XXXXXX";
    CU_ASSERT_PTR_NOT_NULL_FATAL(mkdtemp(dir));
    char script[256], log[256], envf[256];
    snprintf(script, sizeof script, "%s/omni-echo", dir);
    snprintf(log, sizeof log, "%s/starts", dir);
    snprintf(envf, sizeof envf, "%s/env", dir);
    char text[1024];
    snprintf(text, sizeof text,
             "#!/bin/sh\n"
             "if [ -e /proc/$$/fd/$OMNI_PARENT_FD ]; then fd=open; fi\n"
             "echo \"$OMNI_ZMQ_ENDPOINT|$OMNI_SOCKET|$OMNI_CONFIG|$fd|$1 $2\" "
             "> %s\n"
             "date +%%s%%N >> %s\n"
             "exit 1\n",
             envf, log);
    write_script(script, text);

    struct omni_broker b = {.base = event_base_new()};
    struct omni_router_cfg rcfg = {.services = "echo,ghost", .queue_max = 4};
    struct omni_router_ops ops = {.to_client = noop_client,
                                  .to_worker = omni_workers_send_op,
                                  .worker_dead = omni_workers_dead_op};
    b.router = omni_router_new(&rcfg, &ops, &b);
    b.workers = omni_workers_new(&b, 1000, 3);
    char *args[] = {"-o", "log_level=info", NULL};
    struct omni_sup_cfg cfg = {.worker_dir = dir,
                               .endpoint = "ipc:///nowhere",
                               .socket = "/run/x/omni.sock",
                               .config = NULL,
                               .http_listen = "",
                               .restart_min_ms = 20,
                               .restart_max_ms = 600,
                               .worker_args = args};
    unsetenv("OMNI_CONFIG");
    b.sup = omni_supervisor_new(&b, &cfg);
    omni_supervisor_start(b.sup);
    /* Starts at about 0, 20 and 60 ms, then a pause of restart_max_ms.
     * Timed by polling, so that a slow machine only makes it slower. */
    struct omni_service *echo = omni_router_service(b.router, "echo", 4);
    struct omni_service *ghost = omni_router_service(b.router, "ghost", 5);
    int64_t t0 = omni_now_ms();
    while (count_lines(log) < 3 && omni_now_ms() - t0 < 5000)
        run_for(b.base, 5);
    EXPECT_EQ(count_lines(log), 3);
    while (!strstr(echo->why, "throttled") && omni_now_ms() - t0 < 5000)
        run_for(b.base, 5);
    EXPECT_EQ(echo->restarts, 2);
    EXPECT_EQ(echo->children, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(echo->why, "throttled"));
    CU_ASSERT_PTR_NOT_NULL(strstr(ghost->why, "omni-ghost"));
    while (count_lines(log) < 4 && omni_now_ms() - t0 < 8000)
        run_for(b.base, 5);
    EXPECT_EQ(count_lines(log), 4);
    /* The starts' own clock: the 4th came restart_max_ms after the 3rd
     * failed, the 2nd restart_min_ms after the 1st. */
    long long ns[4] = {0};
    FILE *sf = fopen(log, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(sf);
    for (int i = 0; i < 4 && fscanf(sf, "%lld", &ns[i]) == 1; i++)
        ;
    fclose(sf);
    long long gap = (ns[3] - ns[2]) / 1000000,
              first = (ns[1] - ns[0]) / 1000000;
    /* libevent schedules from the time cached at the top of the loop
     * pass, so a timer may fire a millisecond or two early measured by
     * the wall clock of the children: allow that much. */
    if (gap < 590 || first < 17)
        fprintf(stderr,
                "\nstart gaps: got %lld and %lld ms, want >= 17 "
                "and >= 590\n",
                first, gap);
    CU_ASSERT(gap >= 590);
    CU_ASSERT(first >= 17);

    FILE *f = fopen(envf, "r");
    char line[512] = "";
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    CU_ASSERT_PTR_NOT_NULL(fgets(line, sizeof line, f));
    fclose(f);
    CU_ASSERT_STRING_EQUAL(line, "ipc:///nowhere|/run/x/omni.sock||open|-o "
                                 "log_level=info\n");

    /* A child still running at stop gets SIGTERM, and done is called. */
    write_script(script, "#!/bin/sh\nexec sleep 30\n");
    t0 = omni_now_ms();
    while (echo->children == 0 && omni_now_ms() - t0 < 5000)
        run_for(b.base, 5);
    EXPECT_EQ(echo->children, 1);
    stopped = false;
    t0 = omni_now_ms();
    omni_supervisor_stop(b.sup, on_stopped, NULL);
    for (int i = 0; i < 50 && !stopped; i++)
        run_for(b.base, 20);
    CU_ASSERT(stopped);
    CU_ASSERT(omni_now_ms() - t0 < 1500);
    EXPECT_EQ(echo->children, 0);

    omni_supervisor_free(b.sup);
    omni_router_free(b.router);
    omni_workers_free(b.workers);
    event_base_free(b.base);
    unlink(script);
    unlink(log);
    unlink(envf);
    rmdir(dir);
}

static CU_TestInfo sup_tests[] = {
    {"policy", test_policy},
    {"spawn and throttle", test_spawn_and_throttle},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"supervisor", NULL, NULL, NULL, NULL, sup_tests},
    CU_SUITE_INFO_NULL,
};
