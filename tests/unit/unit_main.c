/*
 * unit_main - runs the CUnit suites of one test program.
 *
 * Each tests/unit/test_*.c defines omni_test_suites[], a CU_SuiteInfo
 * array ended by CU_SUITE_INFO_NULL; the Makefile links it with this
 * file.  An optional argument names the one suite to run.
 */
#include <CUnit/Basic.h>
#include <stdio.h>
#include <string.h>

#include "unit.h"

#include <stdlib.h>
#include <sys/stat.h>

const char *omni_test_shared(const char *sub)
{
    static char path[4096];
    const char *root = getenv("OMNI_SHARED_DIR");
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", root ? root : "../shared", sub);
    if (stat(path, &st) != 0) {
        fprintf(stderr, "note: '%s' is absent; tests that need it skip\n",
                path);
        return NULL;
    }
    return path;
}

int main(int argc, char **argv)
{
    if (CU_initialize_registry() != CUE_SUCCESS)
        return 2;
    if (CU_register_suites(omni_test_suites) != CUE_SUCCESS) {
        fprintf(stderr, "cannot register suites: %s\n", CU_get_error_msg());
        CU_cleanup_registry();
        return 2;
    }
    CU_basic_set_mode(CU_BRM_NORMAL);
    if (argc > 1) {
        CU_pSuite s = CU_get_suite(argv[1]);
        if (!s) {
            fprintf(stderr, "no suite '%s'\n", argv[1]);
            CU_cleanup_registry();
            return 2;
        }
        CU_basic_run_suite(s);
    } else {
        CU_basic_run_tests();
    }
    unsigned failed =
        CU_get_number_of_failures() + CU_get_number_of_tests_failed();
    unsigned ran = CU_get_number_of_tests_run();
    CU_cleanup_registry();
    return failed || !ran ? 1 : 0;
}
