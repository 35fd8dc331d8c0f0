/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl's output helpers: human sizes and durations, escaping, tables, reply fields. */

#include <check.h>
#include <stdio.h>
#include <time.h>

#include "output.h"
#include "set-print.h"
#include "varlink.h"

static const char *bytes(uint64_t n) {
        static char buf[FORMAT_BYTES_MAX];
        return format_bytes(buf, sizeof buf, n);
}

static const char *duration(uint64_t usec) {
        static char buf[FORMAT_DURATION_MAX];
        return format_duration(buf, sizeof buf, usec);
}

START_TEST(test_sizes_print_in_powers_of_1024_with_one_decimal) {
        ck_assert_str_eq(bytes(0), "0B");
        ck_assert_str_eq(bytes(512), "512B");
        ck_assert_str_eq(bytes(1023), "1023B");
        ck_assert_str_eq(bytes(1024), "1K");
        ck_assert_str_eq(bytes(1536), "1.5K");
        ck_assert_str_eq(bytes(320 * 1024 * 1024), "320M");
        ck_assert_str_eq(bytes(UINT64_C(32) << 30), "32G");
        ck_assert_str_eq(bytes((UINT64_C(9315) << 30) / 10), "931.5G");
        ck_assert_str_eq(bytes(UINT64_C(1) << 40), "1T");
        ck_assert_str_eq(bytes(UINT64_MAX), "16E");
}
END_TEST

START_TEST(test_sizes_that_round_up_to_1024_move_to_the_next_unit) {
        ck_assert_str_eq(bytes(1024 * 1024 - 1), "1M");
        ck_assert_str_eq(bytes((UINT64_C(1) << 30) - 1), "1G");
}
END_TEST

START_TEST(test_durations_read_like_systemd_timespans) {
        ck_assert_str_eq(duration(0), "0s");
        ck_assert_str_eq(duration(250), "250us");
        ck_assert_str_eq(duration(850 * USEC_PER_MSEC), "850ms");
        ck_assert_str_eq(duration(1500 * USEC_PER_MSEC), "1.5s");
        ck_assert_str_eq(duration(10 * USEC_PER_SEC), "10s");
        ck_assert_str_eq(duration(59999 * USEC_PER_MSEC), "59.999s");
        ck_assert_str_eq(duration(60 * USEC_PER_SEC), "1min");
        ck_assert_str_eq(duration(185 * USEC_PER_SEC), "3min 5s");
        ck_assert_str_eq(duration(3600 * USEC_PER_SEC), "1h");
        ck_assert_str_eq(duration((2 * 86400 + 3 * 3600 + 4 * 60 + 5) * USEC_PER_SEC + 250000),
                         "2d 3h 4min 5s");
}
END_TEST

START_TEST(test_freeze_windows_print_in_milliseconds_to_the_microsecond) {
        char buf[FORMAT_MSEC_MAX];

        ck_assert_str_eq(format_msec(buf, sizeof buf, 0), "0.000 ms");
        ck_assert_str_eq(format_msec(buf, sizeof buf, 850), "0.850 ms");
        ck_assert_str_eq(format_msec(buf, sizeof buf, 12345), "12.345 ms");
        ck_assert_str_eq(format_msec(buf, sizeof buf, 10 * USEC_PER_SEC + 7), "10000.007 ms");
}
END_TEST

static char *freeze_window_of(const char *json) {
        _cleanup_(json_object_putp) json_object *set = json_tokener_parse(json);

        ck_assert_ptr_nonnull(set);
        return set_freeze_window_text(set);
}

START_TEST(test_a_set_shows_its_freeze_window_and_the_time_writes_were_held) {
        _cleanup_free_ char *both = freeze_window_of("{\"freezeWindowUsec\": 12345, \"holdUsec\": 3210}");
        _cleanup_free_ char *window = freeze_window_of("{\"freezeWindowUsec\": 850, \"holdUsec\": null}");
        _cleanup_free_ char *none = freeze_window_of("{\"holdUsec\": 3210}");

        ck_assert_str_eq(both, "12.345 ms (writes held 3.210 ms)");
        ck_assert_str_eq(window, "0.850 ms");
        ck_assert_ptr_null(none);
}
END_TEST

START_TEST(test_timestamps_say_how_long_ago) {
        char buf[FORMAT_TIMESTAMP_AGO_MAX];
        uint64_t t = UINT64_C(1714557601) * USEC_PER_SEC;

        setenv("TZ", "UTC", 1);
        tzset();
        ck_assert_str_eq(format_timestamp_ago(buf, sizeof buf, t, t + 185 * USEC_PER_SEC),
                         "2024-05-01 10:00:01 UTC (3min 5s ago)");
        ck_assert_str_eq(format_timestamp_ago(buf, sizeof buf, t, t), "2024-05-01 10:00:01 UTC (0s ago)");
        /* A clock that is behind the daemon's: no "ago" in the future. */
        ck_assert_str_eq(format_timestamp_ago(buf, sizeof buf, t, t - 1), "2024-05-01 10:00:01 UTC");
}
END_TEST

START_TEST(test_control_characters_are_escaped_for_the_terminal) {
        _cleanup_free_ char *a = escape_for_terminal("/dev/x\x1b[31mred\tend\x7f");
        _cleanup_free_ char *b = escape_for_terminal("/dev/vg0/root");

        ck_assert_str_eq(a, "/dev/x\\x1b[31mred\\x09end\\x7f");
        ck_assert_str_eq(b, "/dev/vg0/root");
        ck_assert_uint_eq(text_width("abc"), 3);
        ck_assert_uint_eq(text_width(""), 0);
}
END_TEST

static char *print_table(Table *t) {
        char *buf = NULL;
        size_t size = 0;
        FILE *f = open_memstream(&buf, &size);

        ck_assert_ptr_nonnull(f);
        ck_assert_int_eq(table_print(t, f), 0);
        ck_assert_int_eq(fclose(f), 0);
        return buf;
}

START_TEST(test_tables_align_columns_and_leave_no_trailing_blanks) {
        _cleanup_(table_freep) Table *t = table_new(3, "NAME", "PRIORITY", "REASON");
        _cleanup_free_ char *out = NULL;

        ck_assert_ptr_nonnull(t);
        table_align_right(t, 1);
        ck_assert_int_eq(table_add_row(t, "lvm", "100", NULL), 0);
        ck_assert_int_eq(table_add_row(t, "dm-snapshot", "5", "no device-mapper"), 0);
        ck_assert_uint_eq(table_rows(t), 2);

        out = print_table(t);
        ck_assert_str_eq(out,
                         "NAME         PRIORITY  REASON\n"
                         "lvm               100  -\n"
                         "dm-snapshot         5  no device-mapper\n");
}
END_TEST

START_TEST(test_an_indented_table_indents_every_line) {
        _cleanup_(table_freep) Table *t = table_new(2, "VOLUME", "STATUS");
        _cleanup_free_ char *out = NULL;

        ck_assert_ptr_nonnull(t);
        table_set_indent(t, 2);
        ck_assert_int_eq(table_add_row(t, "/dev/vg0/root", "valid"), 0);
        out = print_table(t);
        ck_assert_str_eq(out,
                         "  VOLUME         STATUS\n"
                         "  /dev/vg0/root  valid\n");
}
END_TEST

START_TEST(test_table_cells_are_escaped) {
        _cleanup_(table_freep) Table *t = table_new(2, "A", "B");
        _cleanup_free_ char *out = NULL;

        ck_assert_int_eq(table_add_row(t, "x\ny", ""), 0);
        out = print_table(t);
        ck_assert_str_eq(out, "A       B\nx\\x0ay  -\n");
}
END_TEST

START_TEST(test_reply_fields_of_the_wrong_type_read_as_missing) {
        _cleanup_(json_object_putp) json_object *o =
                json_tokener_parse("{\"s\": \"text\", \"i\": 7, \"b\": true, \"n\": null,"
                                   " \"a\": [\"/\", 1, \"/home\"], \"o\": {}}");
        _cleanup_free_ char *joined = NULL, *empty = NULL;
        int64_t i = -1;
        bool b = false;

        ck_assert_ptr_nonnull(o);
        ck_assert_str_eq(reply_get_string(o, "s"), "text");
        ck_assert_ptr_null(reply_get_string(o, "i"));
        ck_assert_ptr_null(reply_get_string(o, "n"));
        ck_assert_ptr_null(reply_get_string(o, "missing"));
        ck_assert(reply_get_int(o, "i", &i));
        ck_assert_int_eq(i, 7);
        ck_assert(!reply_get_int(o, "s", &i));
        ck_assert(reply_get_bool(o, "b", &b));
        ck_assert(b);
        ck_assert_ptr_nonnull(reply_get_object(o, "o"));
        ck_assert_ptr_null(reply_get_array(o, "o"));

        joined = reply_join_strings(reply_get_array(o, "a"), ",");
        empty = reply_join_strings(NULL, ",");
        ck_assert_str_eq(joined, "/,/home");
        ck_assert_str_eq(empty, "");
}
END_TEST

START_TEST(test_json_modes_parse) {
        ck_assert_int_eq(json_mode_from_string(NULL), JSON_SHORT);
        ck_assert_int_eq(json_mode_from_string("short"), JSON_SHORT);
        ck_assert_int_eq(json_mode_from_string("pretty"), JSON_PRETTY);
        ck_assert_int_eq(json_mode_from_string("off"), JSON_OFF);
        ck_assert_int_eq(json_mode_from_string("yaml"), _JSON_MODE_INVALID);
}
END_TEST

Suite *suite_client_output(void) {
        Suite *s = suite_create("client-output");
        TCase *tc = tcase_create("output");

        tcase_add_test(tc, test_sizes_print_in_powers_of_1024_with_one_decimal);
        tcase_add_test(tc, test_sizes_that_round_up_to_1024_move_to_the_next_unit);
        tcase_add_test(tc, test_durations_read_like_systemd_timespans);
        tcase_add_test(tc, test_freeze_windows_print_in_milliseconds_to_the_microsecond);
        tcase_add_test(tc, test_a_set_shows_its_freeze_window_and_the_time_writes_were_held);
        tcase_add_test(tc, test_timestamps_say_how_long_ago);
        tcase_add_test(tc, test_control_characters_are_escaped_for_the_terminal);
        tcase_add_test(tc, test_tables_align_columns_and_leave_no_trailing_blanks);
        tcase_add_test(tc, test_an_indented_table_indents_every_line);
        tcase_add_test(tc, test_table_cells_are_escaped);
        tcase_add_test(tc, test_reply_fields_of_the_wrong_type_read_as_missing);
        tcase_add_test(tc, test_json_modes_parse);
        suite_add_tcase(s, tc);
        return s;
}
