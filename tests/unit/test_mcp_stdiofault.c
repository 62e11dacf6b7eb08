/*
 * test_mcp_stdiofault - the stdio transport (mcp_stdio) with servers
 * that break in the ways a child process can: one that closes its
 * stdin (our reply to its ping fails), one that exits at once with a status,
 * and one that closes its stdout but lives on, ignoring SIGTERM (reaped in the
 * background, SIGKILLed after two seconds), with a stderr line over the stderr
 * limit and a last stderr line without a newline, and one killed by a signal.
 * The log goes to a file for the duration, to check what reached it.
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcp.h"
#include "omni_cfg.h"
#include "omni_time.h"
#include "unit.h"

static struct event_base *base;
static struct event *tick;
static struct omni_mcp_hub *hub;
static char dir[] = "/tmp/omni-mcp-stdio-XXXXXX";
static char logpath[128], pidpath[128];
static int saved_err = -1;

static void on_tick(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    (void)arg;
}

static void run_ms(int ms)
{
    int64_t end = omni_now_ms() + ms;
    while (omni_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
}

static struct omni_mcp_up *up(const char *name)
{
    return omni_mcp_hub_server(hub, name, strlen(name));
}

static bool all_failed(void)
{
    static const char *const names[] = {"deaf", "quits", "noisy", "shot"};
    for (size_t i = 0; i < 4; i++)
        if (!up(names[i]) || !up(names[i])->why[0])
            return false;
    return true;
}

static char *read_log(void)
{
    fflush(stderr);
    static char text[65536];
    text[0] = '\0';
    FILE *f = fopen(logpath, "r");
    if (f) {
        size_t n = fread(text, 1, sizeof text - 1, f);
        text[n] = '\0';
        fclose(f);
    }
    return text;
}

static int setup(void)
{
    signal(SIGPIPE, SIG_IGN);
    setenv("OMNI_MCP_MAX_LINE", "1024", 1);
    setenv("OMNI_MCP_RESTART_MIN_MS", "60000", 1);
    setenv("OMNI_MCP_RESTART_MAX_MS", "60000", 1);
    char err[OMNI_ERR_LEN];
    if (!mkdtemp(dir) || omni_cfg_load(NULL, err) != OMNI_OK)
        return 1;
    snprintf(logpath, sizeof logpath, "%s/log", dir);
    snprintf(pidpath, sizeof pidpath, "%s/noisy.pid", dir);
    fflush(stderr);
    saved_err = dup(2);
    int fd = open(logpath, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || saved_err < 0)
        return 1;
    dup2(fd, 2);
    close(fd);
    char doc[2048];
    snprintf(doc, sizeof doc,
             "{\"mcpServers\":{"
             "\"deaf\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
             "\"exec 0<&-; sleep 0.3; echo '{\\\"jsonrpc\\\":\\\"2.0\\\","
             "\\\"id\\\":7,\\\"method\\\":\\\"ping\\\"}'; exec sleep 5\"]},"
             "\"shot\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
             "\"read -r line; kill -9 $$\"]},"
             "\"quits\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
             "\"read -r line; echo oops >&2; exit 3\"]},"
             "\"noisy\":{\"command\":\"/bin/sh\",\"args\":[\"-c\","
             "\"trap '' TERM; echo $$ > %s; printf '%%5000s\\\\n' x >&2; "
             "printf partial >&2; exec 1>&- 2>&-; exec sleep 6\"]}}}",
             pidpath);
    struct omni_mcp_config cfg;
    if (omni_mcp_config_parse(doc, strlen(doc), &cfg, err) != OMNI_OK) {
        fprintf(stderr, "mcp config: %s\n", err);
        return 1;
    }
    base = event_base_new();
    tick = event_new(base, -1, EV_PERSIST, on_tick, NULL);
    struct timeval tv = {0, 20000};
    evtimer_add(tick, &tv);
    hub = omni_mcp_hub_new(base, &cfg);
    return 0;
}

static int teardown(void)
{
    omni_mcp_hub_free(hub);
    event_free(tick);
    event_base_free(base);
    omni_cfg_free();
    fflush(stderr);
    if (saved_err >= 0) {
        dup2(saved_err, 2);
        close(saved_err);
    }
    unlink(logpath);
    unlink(pidpath);
    rmdir(dir);
    unsetenv("OMNI_MCP_MAX_LINE");
    unsetenv("OMNI_MCP_RESTART_MIN_MS");
    unsetenv("OMNI_MCP_RESTART_MAX_MS");
    return 0;
}

/* Each server fails, and says why. */
static void test_failures(void)
{
    int64_t end = omni_now_ms() + 8000;
    while (!all_failed() && omni_now_ms() < end)
        event_base_loop(base, EVLOOP_ONCE);
    CU_ASSERT_FATAL(all_failed());
    static const struct {
        const char *name, *words;
    } want[] = {
        {"deaf", "cannot write to server"},
        {"quits", "exited with status 3"},
        {"noisy", "server closed its output"},
        {"shot", "exited on signal 9"},
    };
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const char *why = up(want[i].name)->why;
        if (!strstr(why, want[i].words))
            dprintf(saved_err, "%s: got '%s', want '%s'\n", want[i].name, why,
                    want[i].words);
        CU_ASSERT_PTR_NOT_NULL(strstr(why, want[i].words));
        CU_ASSERT_NOT_EQUAL(up(want[i].name)->state, OMNI_MCP_S_READY);
    }
    /* A call to a failed server's tool: not in the catalog. */
    CU_ASSERT_PTR_NULL(omni_mcp_catalog_find(&hub->cat, "quits__x"));
}

/* stderr reached the log: whole lines, the long line cut with its
 * size, and the last line without a newline. */
static void test_stderr_logged(void)
{
    run_ms(300);
    const char *log = read_log();
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "mcp server 'quits' stderr: oops"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "mcp server 'noisy' stderr: "));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "+ bytes)"));
    CU_ASSERT_PTR_NOT_NULL(strstr(log, "mcp server 'noisy' stderr: partial"));
    if (!strstr(log, "stderr: partial"))
        dprintf(saved_err, "log: %s\n", log);
}

/* The server that ignores SIGTERM is SIGKILLed in the background. */
static void test_stubborn_killed(void)
{
    FILE *f = fopen(pidpath, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    int pid = 0;
    CU_ASSERT_EQUAL(fscanf(f, "%d", &pid), 1);
    fclose(f);
    CU_ASSERT_FATAL(pid > 1);
    int64_t end = omni_now_ms() + 5000;
    while (kill(pid, 0) == 0 && omni_now_ms() < end)
        run_ms(100);
    CU_ASSERT_NOT_EQUAL(kill(pid, 0), 0);
}

static CU_TestInfo tests[] = {
    {"servers failing", test_failures},
    {"stderr in the log", test_stderr_logged},
    {"SIGTERM ignored: SIGKILL", test_stubborn_killed},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"mcp_stdiofault", setup, teardown, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
