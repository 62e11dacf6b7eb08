/*
 * unit.h - what every CUnit test file shares.
 */
#ifndef OMNI_UNIT_H
#define OMNI_UNIT_H

#include <CUnit/CUnit.h>
#include <CUnit/TestDB.h>

/* Defined once per test program (one tests/unit/test_*.c file). */
extern CU_SuiteInfo omni_test_suites[];

/* The shared fixtures folder, or NULL (with a note on stderr) when
 * ../shared is absent, as in a user's fresh clone. */
const char *omni_test_shared(const char *sub);

#endif
