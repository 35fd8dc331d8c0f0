/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The exit status table of snapsetctl(8) is written by hand; this keeps it equal to the error
 * table in common/vss-error.c: every failure code has its row with its exit status, HRESULT and
 * message, and every other row is one of snapsetctl's own statuses. */

#include <check.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "macro.h"
#include "snapsetctl.h"
#include "vss-error.h"

#ifndef SNAPSETCTL_MAN
#define SNAPSETCTL_MAN "man/snapsetctl.8"
#endif

#define MAX_ROWS 64

typedef struct ManRow {
        int status;
        char hresult[16];   /* "0x80042316", or "\-" */
        char name[64];      /* the VSS name after ".B", "" for snapsetctl's own statuses */
        char message[1024]; /* the text lines after ".br", joined with spaces */
} ManRow;

static const int client_statuses[] = {
        SNAPSET_EXIT_SUCCESS, SNAPSET_EXIT_FAILURE, SNAPSET_EXIT_USAGE,
        SNAPSET_EXIT_UNAVAILABLE, SNAPSETCTL_EXIT_TIMEOUT, SNAPSET_EXIT_PROTOCOL,
};

static void chomp(char *line) {
        line[strcspn(line, "\n")] = 0;
}

/* The few roff escapes a message could need, back to plain text. */
static void unescape_roff(char *s) {
        static const struct {
                const char *escape, *text;
        } escapes[] = { { "\\-", "-" }, { "\\(aq", "'" }, { "\\e", "\\" }, { "\\&", "" } };
        char *out = s;

        while (*s) {
                bool done = false;
                for (size_t i = 0; i < ELEMENTSOF(escapes) && !done; i++)
                        if (startswith(s, escapes[i].escape)) {
                                out = stpcpy(out, escapes[i].text);
                                s += strlen(escapes[i].escape);
                                done = true;
                        }
                if (!done)
                        *out++ = *s++;
        }
        *out = 0;
}

static void append_text(char *message, size_t size, const char *line) {
        size_t used = strlen(message), n = strlen(line);

        ck_assert_msg(used + 1 + n < size, "message too long in the exit status table: %s", line);
        if (used > 0)
                message[used++] = ' ';
        memcpy(message + used, line, n + 1);
}

/* Reads one row's text block, up to "T}". */
static void read_text_block(FILE *f, ManRow *row) {
        char line[1024];
        bool first = true, after_break = false;

        /* A code's block is ".B NAME", ".br", then the message; any other block is prose. */
        for (; fgets(line, sizeof line, f); first = false) {
                chomp(line);
                if (streq(line, "T}"))
                        return;
                if (first && startswith(line, ".B "))
                        snprintf(row->name, sizeof row->name, "%.63s", line + 3);
                else if (streq(line, ".br"))
                        after_break = true;
                else if (after_break && line[0] != '.') {
                        unescape_roff(line);
                        append_text(row->message, sizeof row->message, line);
                }
        }
        ck_abort_msg("text block of status %d has no end", row->status);
}

/* Skips to the table after '.SH "EXIT STATUS"' and past its format line (the one ending in '.'). */
static void skip_to_table_rows(FILE *f) {
        char line[1024];
        bool in_section = false, in_table = false;

        while (fgets(line, sizeof line, f)) {
                chomp(line);
                if (streq(line, ".SH \"EXIT STATUS\""))
                        in_section = true;
                else if (in_section && streq(line, ".TS"))
                        in_table = true;
                else if (in_table && line[0] && line[strlen(line) - 1] == '.')
                        return;
        }
        ck_abort_msg("no table in the EXIT STATUS section of %s", SNAPSETCTL_MAN);
}

static size_t read_exit_status_table(ManRow rows[static MAX_ROWS]) {
        const char *path = getenv("SNAPSET_SNAPSETCTL_MAN") ?: SNAPSETCTL_MAN;
        FILE *f = fopen(path, "re");
        char line[1024];
        size_t n = 0;

        ck_assert_msg(f, "cannot open %s (run from the top of the tree)", path);
        skip_to_table_rows(f);
        while (fgets(line, sizeof line, f)) {
                ManRow *row = &rows[n];

                chomp(line);
                if (streq(line, ".TE"))
                        break;
                if (startswith(line, "\\fB"))   /* the header */
                        continue;
                ck_assert_uint_lt(n, MAX_ROWS);
                *row = (ManRow) {};
                ck_assert_msg(sscanf(line, "%d@%15[^@]@T{", &row->status, row->hresult) == 2,
                              "unexpected line in the exit status table: %s", line);
                read_text_block(f, row);
                n++;
        }
        fclose(f);
        return n;
}

static const ManRow *find_row_by_name(const ManRow *rows, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(rows[i].name, name))
                        return &rows[i];
        return NULL;
}

START_TEST(test_every_failure_code_has_its_row_with_status_hresult_and_message) {
        ManRow rows[MAX_ROWS];
        size_t n = read_exit_status_table(rows);

        for (VssCode c = 0; c < _VSS_CODE_MAX; c++) {
                const VssCodeInfo *info = vss_code_info(c);
                const ManRow *row;
                char hresult[16];

                if (vss_code_is_success(c))
                        continue;
                row = find_row_by_name(rows, n, info->name);
                ck_assert_msg(row, "snapsetctl(8) has no exit status row for %s", info->name);
                ck_assert_msg(row->status == info->exit_status, "%s: the man page says %d, the table %d",
                              info->name, row->status, info->exit_status);
                snprintf(hresult, sizeof hresult, "0x%08" PRIX32, info->hresult);
                ck_assert_str_eq(row->hresult, hresult);
                ck_assert_str_eq(row->message, info->message);
        }
}
END_TEST

START_TEST(test_every_row_is_a_failure_code_or_a_status_of_snapsetctl_itself) {
        ManRow rows[MAX_ROWS];
        size_t n = read_exit_status_table(rows), codes = 0;

        for (size_t i = 0; i < n; i++) {
                bool known = false;

                if (*rows[i].name) {
                        VssCode c = vss_code_from_name(rows[i].name);
                        ck_assert_msg(c >= 0 && !vss_code_is_success(c),
                                      "%s in snapsetctl(8) is not a failure code of the table", rows[i].name);
                        codes++;
                        continue;
                }
                for (size_t k = 0; k < ELEMENTSOF(client_statuses); k++)
                        known = known || rows[i].status == client_statuses[k];
                ck_assert_msg(known, "exit status %d in snapsetctl(8) is neither a code nor one of snapsetctl's",
                              rows[i].status);
                ck_assert_str_eq(rows[i].hresult, "\\-");
        }
        ck_assert_uint_eq(codes, _VSS_CODE_MAX - 2); /* all but S_OK and S_FALSE */
        ck_assert_uint_eq(n, codes + ELEMENTSOF(client_statuses));
}
END_TEST

START_TEST(test_rows_are_in_ascending_order_of_status_each_once) {
        ManRow rows[MAX_ROWS];
        size_t n = read_exit_status_table(rows);

        ck_assert_uint_gt(n, 0);
        for (size_t i = 1; i < n; i++)
                ck_assert_msg(rows[i - 1].status < rows[i].status, "status %d after %d",
                              rows[i].status, rows[i - 1].status);
}
END_TEST

Suite *suite_client_manpage(void) {
        Suite *s = suite_create("client-manpage");
        TCase *tc = tcase_create("exit-status-table");

        tcase_add_test(tc, test_every_failure_code_has_its_row_with_status_hresult_and_message);
        tcase_add_test(tc, test_every_row_is_a_failure_code_or_a_status_of_snapsetctl_itself);
        tcase_add_test(tc, test_rows_are_in_ascending_order_of_status_each_once);
        suite_add_tcase(s, tc);
        return s;
}
