/*
 * test_core_alloc - the allocation wrappers: zero sizes, copies, and the
 * one-line message and abort() when memory runs out.
 *
 * Exhaustion is provoked with sizes no allocator can give, in a child
 * process whose stderr and fate the parent checks.  The child catches
 * SIGABRT and exits 134 from the handler, so that abort() is proven
 * and its exit handlers still run (a coverage build writes its counters
 * there).  Under ASan, whose allocator reports such sizes itself, the
 * checks are skipped.
 */
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "omni_alloc.h"
#include "unit.h"

/* More than any address space holds, yet not "negative" as valgrind
 * would complain. */
#define HUGE ((size_t)1 << 62)

#if defined(__SANITIZE_ADDRESS__)
static void expect_oom(void (*fn)(void), const char *want)
{
    (void)fn;
    (void)want;
    fprintf(stderr, "note: ASan build: out-of-memory checks skipped\n");
}
#else
#define ABORTED 134 /* the child's status when SIGABRT came */

/* Only ever runs in the child, in abort() called by omni_alloc after
 * its message is out: exit() is safe enough there. */
static void on_abort(int sig)
{
    (void)sig;
    exit(ABORTED);
}

/* Run fn in a child; it must abort() after printing want. */
static void expect_oom(void (*fn)(void), const char *want)
{
    int p[2];
    CU_ASSERT_FATAL(pipe(p) == 0);
    fflush(NULL);
    pid_t pid = fork();
    CU_ASSERT_FATAL(pid >= 0);
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        signal(SIGABRT, on_abort);
        fn();
        _exit(0);
    }
    close(p[1]);
    char out[256] = "";
    size_t n = 0;
    ssize_t r;
    while (n < sizeof out - 1 &&
           (r = read(p[0], out + n, sizeof out - 1 - n)) > 0)
        n += (size_t)r;
    out[n] = '\0';
    close(p[0]);
    int st = 0;
    CU_ASSERT_EQUAL_FATAL(waitpid(pid, &st, 0), pid);
    CU_ASSERT(WIFEXITED(st) && WEXITSTATUS(st) == ABORTED);
    if (!strstr(out, want))
        fprintf(stderr, "stderr: got '%s', want '%s'\n", out, want);
    CU_ASSERT_PTR_NOT_NULL(strstr(out, want));
}
#endif

static void *volatile sink;

static void huge_malloc(void)
{
    sink = omni_malloc(HUGE);
}

static void huge_calloc(void)
{
    sink = omni_calloc(SIZE_MAX / 2, 4);
}

static void huge_realloc(void)
{
    void *p = omni_malloc(16);
    sink = p;
    sink = omni_realloc(p, HUGE);
}

static void test_oom(void)
{
    char want[96];
    snprintf(want, sizeof want, "fatal: out of memory allocating %zu bytes\n",
             HUGE);
    expect_oom(huge_malloc, want);
    /* The product overflows: reported as SIZE_MAX, not wrapped. */
    snprintf(want, sizeof want, "fatal: out of memory allocating %zu bytes\n",
             SIZE_MAX);
    expect_oom(huge_calloc, want);
    snprintf(want, sizeof want, "fatal: out of memory allocating %zu bytes\n",
             HUGE);
    expect_oom(huge_realloc, want);
}

/* Zero sizes give a unique pointer, never NULL; copies are exact. */
static void test_zero_and_copies(void)
{
    void *a = omni_malloc(0), *b = omni_calloc(0, 0);
    CU_ASSERT_PTR_NOT_NULL(a);
    CU_ASSERT_PTR_NOT_NULL(b);
    CU_ASSERT_PTR_NOT_EQUAL(a, b);
    a = omni_realloc(a, 0);
    CU_ASSERT_PTR_NOT_NULL(a);
    unsigned char *z = omni_calloc(3, 5);
    int nonzero = 0;
    for (int i = 0; i < 15; i++)
        nonzero += z[i] != 0;
    CU_ASSERT_EQUAL(nonzero, 0);
    char *s = omni_strndup("abcdef", 3);
    CU_ASSERT_STRING_EQUAL(s, "abc");
    char *t = omni_strdup("");
    CU_ASSERT_STRING_EQUAL(t, "");
    omni_free(a);
    omni_free(b);
    omni_free(z);
    omni_free(s);
    omni_free(t);
    omni_free(NULL);
}

static CU_TestInfo alloc_tests[] = {
    {"out of memory: message and abort", test_oom},
    {"zero sizes and copies", test_zero_and_copies},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"alloc", NULL, NULL, NULL, NULL, alloc_tests},
    CU_SUITE_INFO_NULL,
};
