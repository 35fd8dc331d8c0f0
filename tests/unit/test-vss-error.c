/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The error table against the project's TSV of VSS codes: every row present with exactly its
 * HRESULT, names unique, and every lookup a round trip. */

#include <check.h>
#include <glob.h>
#include <inttypes.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>

#include "macro.h"
#include "varlink.h"
#include "vss-error.h"

#ifndef VSS_CODES_TSV
#define VSS_CODES_TSV "tests/unit/vss-codes.tsv"
#endif

static FILE *open_tsv(void) {
        const char *p = getenv("SNAPSET_VSS_CODES_TSV") ?: VSS_CODES_TSV;
        FILE *f = fopen(p, "re");
        ck_assert_msg(f, "cannot open %s (run from the top of the tree)", p);
        return f;
}

START_TEST(test_every_tsv_row_is_in_the_table_with_its_hresult) {
        FILE *f = open_tsv();
        char line[1024];
        unsigned rows = 0;

        ck_assert_ptr_nonnull(fgets(line, sizeof line, f)); /* header */
        ck_assert_str_eq(strtok(line, "\t"), "name");
        while (fgets(line, sizeof line, f)) {
                char *name = strtok(line, "\t"), *hex = strtok(NULL, "\t");
                VssCode c;

                ck_assert_ptr_nonnull(name);
                ck_assert_ptr_nonnull(hex);
                c = vss_code_from_name(name);
                ck_assert_msg(c >= 0, "%s is missing from the table", name);
                ck_assert_uint_eq(vss_code_hresult(c), (uint32_t) strtoul(hex, NULL, 16));
                rows++;
        }
        fclose(f);
        ck_assert_uint_eq(rows, _VSS_CODE_MAX);
}
END_TEST

START_TEST(test_names_hresults_and_varlink_errors_are_unique) {
        for (VssCode a = 0; a < _VSS_CODE_MAX; a++)
                for (VssCode b = a + 1; b < _VSS_CODE_MAX; b++) {
                        ck_assert_str_ne(vss_code_name(a), vss_code_name(b));
                        ck_assert_uint_ne(vss_code_hresult(a), vss_code_hresult(b));
                        if (vss_code_varlink_error(a) && vss_code_varlink_error(b))
                                ck_assert_str_ne(vss_code_varlink_error(a), vss_code_varlink_error(b));
                }
}
END_TEST

START_TEST(test_every_code_round_trips_through_name_hresult_and_varlink_error) {
        for (VssCode c = 0; c < _VSS_CODE_MAX; c++) {
                const VssCodeInfo *i = vss_code_info(c);

                ck_assert_ptr_nonnull(i);
                ck_assert_int_eq(vss_code_from_name(i->name), c);
                ck_assert_int_eq(vss_code_from_hresult(i->hresult), c);
                ck_assert_ptr_nonnull(i->message);
                ck_assert_int_gt(strlen(i->message), 10);
                if (vss_code_is_success(c)) {
                        ck_assert_ptr_null(i->varlink_error);
                        ck_assert_int_eq(i->exit_status, 0);
                        continue;
                }
                ck_assert_ptr_nonnull(i->varlink_error);
                ck_assert_int_eq(vss_code_from_varlink_error(i->varlink_error), c);
                ck_assert_msg(varlink_qualified_name_is_valid(i->varlink_error), "%s", i->varlink_error);
                ck_assert_ptr_nonnull(startswith(i->varlink_error, SNAPSET_VARLINK_INTERFACE "."));
                ck_assert_int_gt(i->exit_status, 0);
                ck_assert_int_lt(i->exit_status, 64);
        }
}
END_TEST

START_TEST(test_exit_statuses_of_failures_are_unique) {
        for (VssCode a = 0; a < _VSS_CODE_MAX; a++)
                for (VssCode b = a + 1; b < _VSS_CODE_MAX; b++)
                        if (!vss_code_is_success(a) && !vss_code_is_success(b))
                                ck_assert_int_ne(vss_code_info(a)->exit_status, vss_code_info(b)->exit_status);
}
END_TEST

START_TEST(test_lookups_of_unknown_values_are_invalid) {
        ck_assert_ptr_null(vss_code_info(_VSS_CODE_MAX));
        ck_assert_ptr_null(vss_code_info(-1));
        ck_assert_ptr_null(vss_code_name(_VSS_CODE_INVALID));
        ck_assert_int_eq(vss_code_from_name("VSS_E_NO_SUCH_THING"), _VSS_CODE_INVALID);
        ck_assert_int_eq(vss_code_from_name(NULL), _VSS_CODE_INVALID);
        ck_assert_int_eq(vss_code_from_hresult(0x80042305), _VSS_CODE_INVALID);
        ck_assert_int_eq(vss_code_from_varlink_error("io.snapset.Manager.Nope"), _VSS_CODE_INVALID);
        ck_assert_int_eq(vss_code_from_varlink_error(NULL), _VSS_CODE_INVALID);
}
END_TEST

START_TEST(test_only_the_documented_codes_are_valid_provider_returns) {
        static const VssCode valid[] = {
                S_OK, E_OUTOFMEMORY, E_INVALIDARG, E_ACCESSDENIED, VSS_E_BAD_STATE,
                VSS_E_OBJECT_NOT_FOUND, VSS_E_INSUFFICIENT_STORAGE, VSS_E_VOLUME_NOT_SUPPORTED,
                VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED,
                VSS_E_PROVIDER_VETO, VSS_E_CANNOT_REVERT_DISKID,
        };
        unsigned n = 0;

        for (VssCode c = 0; c < _VSS_CODE_MAX; c++)
                if (vss_code_is_valid_provider_return(c)) {
                        bool listed = false;
                        for (size_t i = 0; i < ELEMENTSOF(valid); i++)
                                listed = listed || valid[i] == c;
                        ck_assert_msg(listed, "%s must not be a valid provider return", vss_code_name(c));
                        n++;
                }
        ck_assert_uint_eq(n, ELEMENTSOF(valid));
        ck_assert(!vss_code_is_valid_provider_return(S_FALSE));
        ck_assert(!vss_code_is_valid_provider_return(E_FAIL));
        ck_assert(!vss_code_is_valid_provider_return(E_UNEXPECTED));
        ck_assert(!vss_code_is_valid_provider_return(E_ABORT));
}
END_TEST

START_TEST(test_errno_maps_to_the_closest_code) {
        ck_assert_int_eq(vss_code_from_errno(0), S_OK);
        ck_assert_int_eq(vss_code_from_errno(-ENOMEM), E_OUTOFMEMORY);
        ck_assert_int_eq(vss_code_from_errno(-EINVAL), E_INVALIDARG);
        ck_assert_int_eq(vss_code_from_errno(-EPERM), E_ACCESSDENIED);
        ck_assert_int_eq(vss_code_from_errno(-ENOENT), VSS_E_OBJECT_NOT_FOUND);
        ck_assert_int_eq(vss_code_from_errno(-ENOSPC), VSS_E_INSUFFICIENT_STORAGE);
        ck_assert_int_eq(vss_code_from_errno(-EIO), VSS_E_UNEXPECTED);
}
END_TEST

/* The documents say codes as "NAME   0x8004231F" (tables), "0x8004231F, NAME" and
 * "2147754783 (0x8004231F": each such pair must be what the table says. */
static unsigned check_pairs_in(const char *path, const char *pattern, bool name_first, bool decimal) {
        FILE *f = fopen(path, "re");
        char line[2048];
        unsigned found = 0;
        regex_t re;

        ck_assert_msg(f, "cannot open %s", path);
        ck_assert_int_eq(regcomp(&re, pattern, REG_EXTENDED), 0);
        for (unsigned no = 1; fgets(line, sizeof line, f); no++) {
                regmatch_t m[3];

                for (char *p = line; regexec(&re, p, 3, m, 0) == 0; p += m[0].rm_eo) {
                        char a[64] = "", b[64] = "";
                        const char *name, *hex;
                        VssCode c;

                        snprintf(a, sizeof a, "%.*s", (int) (m[1].rm_eo - m[1].rm_so), p + m[1].rm_so);
                        snprintf(b, sizeof b, "%.*s", (int) (m[2].rm_eo - m[2].rm_so), p + m[2].rm_so);
                        if (decimal) {
                                ck_assert_msg(strtoull(a, NULL, 10) == strtoull(b, NULL, 16),
                                              "%s:%u: %s is not %s", path, no, a, b);
                                found++;
                                continue;
                        }
                        name = name_first ? a : b;
                        hex = name_first ? b : a;
                        c = vss_code_from_name(name);
                        if (c < 0)
                                continue;   /* a word in capitals that is no code */
                        ck_assert_msg(vss_code_hresult(c) == (uint32_t) strtoul(hex, NULL, 16),
                                      "%s:%u: %s is 0x%08" PRIX32 ", not %s", path, no, name, vss_code_hresult(c), hex);
                        found++;
                }
        }
        regfree(&re);
        fclose(f);
        return found;
}

START_TEST(test_the_documents_give_every_code_its_own_hresult) {
        static const char *const patterns[] = { "common/*.varlink", "man/*.[0-9]", "README.md" };
        unsigned found = 0;

        for (size_t k = 0; k < ELEMENTSOF(patterns); k++) {
                glob_t g;

                ck_assert_int_eq(glob(patterns[k], 0, NULL, &g), 0);
                for (size_t i = 0; i < g.gl_pathc; i++) {
                        const char *p = g.gl_pathv[i];

                        found += check_pairs_in(p, "([A-Z][A-Z_]{4,})[ \t]+(0x[0-9A-Fa-f]{8})", true, false);
                        found += check_pairs_in(p, "(0x[0-9A-Fa-f]{8})[,)]? +\\(?([A-Z][A-Z_]{4,})", false, false);
                        found += check_pairs_in(p, "([0-9]{10}) \\((0x[0-9A-Fa-f]{8})", false, true);
                        found += check_pairs_in(p, "([0-9]{10}) for (0x[0-9A-Fa-f]{8})", false, true);
                }
                globfree(&g);
        }
        /* The provider page's table alone has eight. */
        ck_assert_uint_ge(found, 8);
}
END_TEST

Suite *suite_vss_error(void) {
        Suite *s = suite_create("vss-error");
        TCase *tc = tcase_create("table");

        tcase_add_test(tc, test_every_tsv_row_is_in_the_table_with_its_hresult);
        tcase_add_test(tc, test_names_hresults_and_varlink_errors_are_unique);
        tcase_add_test(tc, test_every_code_round_trips_through_name_hresult_and_varlink_error);
        tcase_add_test(tc, test_exit_statuses_of_failures_are_unique);
        tcase_add_test(tc, test_lookups_of_unknown_values_are_invalid);
        tcase_add_test(tc, test_only_the_documented_codes_are_valid_provider_returns);
        tcase_add_test(tc, test_errno_maps_to_the_closest_code);
        tcase_add_test(tc, test_the_documents_give_every_code_its_own_hresult);
        suite_add_tcase(s, tc);
        return s;
}
