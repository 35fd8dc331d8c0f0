/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Runs every Check suite. The list comes from the file names tests/unit/test-NAME.c (the Makefile
 * writes suites.h), so a new suite needs no edit here. Prints Check's own summary and the
 * project-wide "N passed, N failed" line. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>

#define SUITE(name) Suite *suite_##name(void);
#include "suites.h"
#undef SUITE

int main(void) {
        SRunner *sr = srunner_create(NULL);
        int failed, run;

#define SUITE(name) srunner_add_suite(sr, suite_##name());
#include "suites.h"
#undef SUITE

        srunner_run_all(sr, CK_NORMAL);
        failed = srunner_ntests_failed(sr);
        run = srunner_ntests_run(sr);
        srunner_free(sr);

        printf("%d passed, %d failed\n", run - failed, failed);
        return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
