/*
 * test_worker_table - the worker runtime's uint64_t hash table.
 */
#include <stdbool.h>
#include <stdlib.h>

#include "omni_alloc.h"
#include "unit.h"
#include "worker_table.h"

#define N 5000

static void test_put_get_del(void)
{
    struct omni_htab t;
    omni_htab_init(&t);
    CU_ASSERT_PTR_NULL(omni_htab_get(&t, 1));
    CU_ASSERT_PTR_NULL(omni_htab_del(&t, 1));
    CU_ASSERT_PTR_NULL(omni_htab_take_any(&t));
    struct omni_hnode *nodes = omni_calloc(N, sizeof *nodes);
    for (size_t i = 0; i < N; i++) {
        /* Sequential keys, as the broker hands them out, plus a few
         * that differ only in high bits. */
        nodes[i].key = i < N / 2 ? i + 1 : ((uint64_t)i << 40);
        omni_htab_put(&t, &nodes[i]);
    }
    CU_ASSERT_EQUAL(t.n, N);
    for (size_t i = 0; i < N; i++)
        if (omni_htab_get(&t, nodes[i].key) != &nodes[i])
            CU_FAIL("get: got another node, want the one put");
    CU_ASSERT_PTR_NULL(omni_htab_get(&t, (uint64_t)N * 7 + 3));
    for (size_t i = 0; i < N; i += 2)
        CU_ASSERT_PTR_EQUAL(omni_htab_del(&t, nodes[i].key), &nodes[i]);
    CU_ASSERT_EQUAL(t.n, N / 2);
    for (size_t i = 0; i < N; i++) {
        struct omni_hnode *got = omni_htab_get(&t, nodes[i].key);
        if (i % 2 == 0 && got)
            CU_FAIL("deleted key still found");
        if (i % 2 == 1 && got != &nodes[i])
            CU_FAIL("kept key lost after deletes");
    }
    omni_htab_release(&t);
    omni_free(nodes);
}

static void test_take_any(void)
{
    struct omni_htab t;
    omni_htab_init(&t);
    struct omni_hnode *nodes = omni_calloc(N, sizeof *nodes);
    for (size_t i = 0; i < N; i++) {
        nodes[i].key = i * 3;
        omni_htab_put(&t, &nodes[i]);
    }
    /* Take everything; halfway, put one back (as a callback might) and
     * check it is taken too. */
    size_t taken = 0;
    bool reput = false;
    struct omni_hnode *n;
    char *seen = omni_calloc(N, 1);
    while ((n = omni_htab_take_any(&t))) {
        size_t i = (size_t)(n - nodes);
        seen[i]++;
        taken++;
        if (taken == N / 2 && !reput) {
            reput = true;
            omni_htab_put(&t, n);
        }
    }
    CU_ASSERT_EQUAL(taken, N + 1);
    CU_ASSERT_EQUAL(t.n, 0);
    size_t once = 0;
    for (size_t i = 0; i < N; i++)
        once += seen[i] >= 1;
    CU_ASSERT_EQUAL(once, N);
    omni_free(seen);
    omni_htab_release(&t);
    omni_free(nodes);
}

static CU_TestInfo tests[] = {
    {"put, get, del", test_put_get_del},
    {"take_any drains, also entries put meanwhile", test_take_any},
    CU_TEST_INFO_NULL,
};

CU_SuiteInfo omni_test_suites[] = {
    {"worker_table", NULL, NULL, NULL, NULL, tests},
    CU_SUITE_INFO_NULL,
};
