/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetd.conf: defaults, a complete good file, sizes, and every kind of error with the exact
 * "file:line: Key=value: reason" message an administrator sees. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <syslog.h>
#include <unistd.h>

#include "config.h"
#include "macro.h"

/* Parses text as a file named "test.conf". Returns what config_parse() returns; *ret_message
 * gets the error message (or NULL). */
static int parse_text(const char *text, Config *ret, char **ret_message) {
        FILE *f = fmemopen((void *) text, strlen(text), "r");
        int r;

        ck_assert_ptr_nonnull(f);
        *ret_message = NULL;
        r = config_parse(f, "test.conf", ret, ret_message);
        fclose(f);
        return r;
}

/* Asserts that text fails with exactly message. */
static void assert_error(const char *text, const char *message) {
        _cleanup_free_ char *m = NULL;
        Config c;

        ck_assert_int_eq(parse_text(text, &c, &m), -EINVAL);
        ck_assert_ptr_nonnull(m);
        ck_assert_str_eq(m, message);
}

static void assert_defaults(const Config *c) {
        ck_assert_ptr_null(c->read_group);
        ck_assert_int_eq(c->log_level, LOG_INFO);
        ck_assert_str_eq(c->state_directory, SNAPSET_LOCALSTATEDIR "/lib/snapset");
        ck_assert_uint_eq(c->max_volumes_per_set, 64);
        ck_assert_uint_eq(c->max_snapshots_per_volume, 64);
        ck_assert_uint_eq(c->max_connections, 128);
        ck_assert_uint_eq(c->max_connections_per_user, 32);
        ck_assert_uint_eq(c->max_message_bytes, 16U * 1024 * 1024);
        ck_assert_uint_eq(c->idle_timeout_sec, 300);
        ck_assert_uint_eq(c->set_idle_timeout_sec, 120);
        ck_assert_uint_eq(c->flush_timeout_sec, 60);
        ck_assert_uint_eq(c->hold_timeout_sec, 10);
        ck_assert_str_eq(c->cow_directory, SNAPSET_LOCALSTATEDIR "/lib/snapset/cow");
        ck_assert_uint_eq(c->default_cow_size_percent, 10);
        ck_assert_uint_eq(c->default_cow_size_bytes, 0);
        ck_assert_uint_eq(c->thin_pool_max_used_percent, 95);
        ck_assert(!c->lvm_thin_classic);
}

START_TEST(test_missing_default_file_gives_the_defaults) {
        _cleanup_free_ char *m = NULL;
        Config c;

        ck_assert_int_eq(config_load("/nonexistent/snapsetd.conf", true, &c, &m), 0);
        ck_assert_ptr_null(m);
        assert_defaults(&c);
        config_done(&c);
}
END_TEST

START_TEST(test_missing_explicit_file_is_an_error_naming_it) {
        _cleanup_free_ char *m = NULL;
        Config c;

        ck_assert_int_eq(config_load("/nonexistent/snapsetd.conf", false, &c, &m), -ENOENT);
        ck_assert_str_eq(m, "/nonexistent/snapsetd.conf: cannot read the configuration file: No such file or directory");
}
END_TEST

START_TEST(test_empty_file_and_comments_give_the_defaults) {
        _cleanup_free_ char *m = NULL;
        Config c;

        ck_assert_int_eq(parse_text("# nothing\n\n   ; also nothing\n[Daemon]\n[Limits]\n", &c, &m), 0);
        assert_defaults(&c);
        config_done(&c);
}
END_TEST

START_TEST(test_every_key_is_parsed) {
        static const char text[] =
                "# a complete file\n"
                "[Daemon]\n"
                "ReadGroup = backup\n"
                "LogLevel=debug\n"
                "StateDirectory=/srv/snapset/\n"
                "\n"
                "[Limits]\n"
                "  MaxVolumesPerSet =4096\n"
                "MaxSnapshotsPerVolume= 512\n"
                "MaxConnections=10\n"
                "MaxConnectionsPerUser=5\n"
                "MaxMessageBytes=64K\n"
                "IdleTimeoutSec=0\n"
                "SetIdleTimeoutSec=30\n"
                "FlushTimeoutSec=5\n"
                "HoldTimeoutSec=120\n"
                "[Storage]\r\n"
                "CowDirectory=/srv/cow\r\n"
                "DefaultCowSize=2G\n";
        _cleanup_free_ char *m = NULL;
        Config c;

        ck_assert_int_eq(parse_text(text, &c, &m), 0);
        ck_assert_str_eq(c.read_group, "backup");
        ck_assert_int_eq(c.log_level, LOG_DEBUG);
        ck_assert_str_eq(c.state_directory, "/srv/snapset");
        ck_assert_uint_eq(c.max_volumes_per_set, 4096);
        ck_assert_uint_eq(c.max_snapshots_per_volume, 512);
        ck_assert_uint_eq(c.max_connections, 10);
        ck_assert_uint_eq(c.max_connections_per_user, 5);
        ck_assert_uint_eq(c.max_message_bytes, 65536);
        ck_assert_uint_eq(c.idle_timeout_sec, 0);
        ck_assert_uint_eq(c.set_idle_timeout_sec, 30);
        ck_assert_uint_eq(c.flush_timeout_sec, 5);
        ck_assert_uint_eq(c.hold_timeout_sec, 120);
        ck_assert_str_eq(c.cow_directory, "/srv/cow");
        ck_assert_uint_eq(c.default_cow_size_bytes, UINT64_C(2) << 30);
        ck_assert_uint_eq(c.default_cow_size_percent, 0);
        config_done(&c);
}
END_TEST

START_TEST(test_file_on_disk_is_read) {
        char path[] = "/tmp/test-config-XXXXXX";
        _cleanup_free_ char *m = NULL;
        int fd = mkstemp(path);
        Config c;

        ck_assert_int_ge(fd, 0);
        ck_assert_int_eq(write(fd, "[Limits]\nMaxVolumesPerSet=abc\n", 30), 30);
        close(fd);
        ck_assert_int_eq(config_load(path, false, &c, &m), -EINVAL);
        unlink(path);
        ck_assert_ptr_nonnull(strstr(m, ":2: MaxVolumesPerSet=abc: not a number between 1 and 4096"));
        ck_assert_ptr_nonnull(startswith(m, path));
}
END_TEST

START_TEST(test_last_value_wins_and_empty_value_restores_the_default) {
        _cleanup_free_ char *m = NULL;
        Config c;

        ck_assert_int_eq(parse_text("[Limits]\nMaxVolumesPerSet=5\nMaxVolumesPerSet=7\n"
                                    "HoldTimeoutSec=20\nHoldTimeoutSec=\n"
                                    "[Daemon]\nReadGroup=wheel\nReadGroup=\n"
                                    "[Storage]\nDefaultCowSize=1G\nDefaultCowSize=\n", &c, &m), 0);
        ck_assert_uint_eq(c.max_volumes_per_set, 7);
        ck_assert_uint_eq(c.hold_timeout_sec, 10);
        ck_assert_ptr_null(c.read_group);
        ck_assert_uint_eq(c.default_cow_size_percent, 10);
        ck_assert_uint_eq(c.default_cow_size_bytes, 0);
        config_done(&c);
}
END_TEST

START_TEST(test_sizes_accept_k_m_g_t_suffixes) {
        static const struct {
                const char *text;
                uint64_t value;
        } good[] = {
                { "0", 0 },
                { "1024", 1024 },
                { "512K", 512U * 1024 },
                { "512k", 512U * 1024 },
                { "16M", 16U * 1024 * 1024 },
                { "16MiB", 16U * 1024 * 1024 },
                { "16MB", 16U * 1024 * 1024 },
                { "3G", UINT64_C(3) << 30 },
                { "2T", UINT64_C(2) << 40 },
                { "100B", 100 },
        };
        static const char *const bad[] = {
                "", "M", "-1", "+1", "1.5G", "1 G", "16X", "16Mi", "16MBB", " 16M",
                "99999999999999999999", "17179869184G",
        };
        uint64_t v;

        for (size_t i = 0; i < ELEMENTSOF(good); i++) {
                ck_assert_msg(config_parse_size(good[i].text, &v) == 0, "'%s' should parse", good[i].text);
                ck_assert_uint_eq(v, good[i].value);
        }
        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(config_parse_size(bad[i], &v) < 0, "'%s' should not parse", bad[i]);
}
END_TEST

START_TEST(test_cow_size_is_a_percentage_or_a_size) {
        _cleanup_free_ char *m = NULL;
        Config c;

        ck_assert_int_eq(parse_text("[Storage]\nDefaultCowSize=100%\n", &c, &m), 0);
        ck_assert_uint_eq(c.default_cow_size_percent, 100);
        ck_assert_uint_eq(c.default_cow_size_bytes, 0);
        config_done(&c);

        assert_error("[Storage]\nDefaultCowSize=0%\n",
                     "test.conf:2: DefaultCowSize=0%: not a percentage between 1% and 100%");
        assert_error("[Storage]\nDefaultCowSize=101%\n",
                     "test.conf:2: DefaultCowSize=101%: not a percentage between 1% and 100%");
        assert_error("[Storage]\nDefaultCowSize=512K\n",
                     "test.conf:2: DefaultCowSize=512K: not a percentage of the origin (1%-100%) or a size of at least 1M");
        assert_error("[Storage]\nDefaultCowSize=%\n",
                     "test.conf:2: DefaultCowSize=%: not a percentage of the origin (1%-100%) or a size of at least 1M");
}
END_TEST

START_TEST(test_not_a_number_names_file_line_key_and_range) {
        assert_error("# comment\n\n[Daemon]\nLogLevel=info\n\n[Limits]\nMaxVolumesPerSet=abc\n",
                     "test.conf:7: MaxVolumesPerSet=abc: not a number between 1 and 4096");
        assert_error("[Limits]\nMaxConnections=-1\n",
                     "test.conf:2: MaxConnections=-1: not a number between 1 and 65536");
        assert_error("[Limits]\nIdleTimeoutSec=5s\n",
                     "test.conf:2: IdleTimeoutSec=5s: not a number between 0 and 86400");
}
END_TEST

START_TEST(test_flush_and_hold_timeouts_must_fit_in_half_the_watchdog) {
        Config c = {};
        char *m = NULL;

        (void) unsetenv("WATCHDOG_PID");
        ck_assert_int_eq(setenv("WATCHDOG_USEC", "180000000", 1), 0);
        assert_error("[Limits]\nFlushTimeoutSec=80\nHoldTimeoutSec=20\n",
                     "test.conf:3: FlushTimeoutSec=80 + HoldTimeoutSec=20 = 100 s: must stay below half of "
                     "snapsetd.service's WatchdogSec= (180 s), or the watchdog kills snapsetd in the middle of "
                     "a set; lower them, or raise WatchdogSec= in a drop-in");
        /* The defaults (60 + 10) fit in the shipped 3 minutes. */
        ck_assert_int_eq(parse_text("", &c, &m), 0);
        config_done(&c);
        ck_assert_int_eq(parse_text("[Limits]\nFlushTimeoutSec=79\n", &c, &m), 0);
        config_done(&c);
        (void) unsetenv("WATCHDOG_USEC");
        ck_assert_int_eq(parse_text("[Limits]\nFlushTimeoutSec=80000\n", &c, &m), 0);
        config_done(&c);
        free(m);
}
END_TEST

START_TEST(test_limits_out_of_range_are_errors) {
        assert_error("[Limits]\nMaxSnapshotsPerVolume=513\n",
                     "test.conf:2: MaxSnapshotsPerVolume=513: not a number between 1 and 512");
        assert_error("[Limits]\nMaxVolumesPerSet=0\n",
                     "test.conf:2: MaxVolumesPerSet=0: not a number between 1 and 4096");
        assert_error("[Limits]\nMaxVolumesPerSet=4097\n",
                     "test.conf:2: MaxVolumesPerSet=4097: not a number between 1 and 4096");
        assert_error("[Limits]\nHoldTimeoutSec=0\n",
                     "test.conf:2: HoldTimeoutSec=0: not a number between 1 and 120");
        assert_error("[Limits]\nHoldTimeoutSec=121\n",
                     "test.conf:2: HoldTimeoutSec=121: not a number between 1 and 120");
        assert_error("[Limits]\nFlushTimeoutSec=99999999999999999999999\n",
                     "test.conf:2: FlushTimeoutSec=99999999999999999999999: not a number between 1 and 86400");
        assert_error("[Limits]\nMaxMessageBytes=17M\n",
                     "test.conf:2: MaxMessageBytes=17M: not a size between 64K and 16M (bytes, or with a K, M or G suffix)");
        assert_error("[Limits]\nMaxMessageBytes=1K\n",
                     "test.conf:2: MaxMessageBytes=1K: not a size between 64K and 16M (bytes, or with a K, M or G suffix)");
}
END_TEST

START_TEST(test_per_user_cap_is_clamped_to_the_total) {
        _cleanup_free_ char *m = NULL;
        Config c;

        ck_assert_int_eq(parse_text("[Limits]\nMaxConnections=4\nMaxConnectionsPerUser=16\n", &c, &m), 0);
        ck_assert_uint_eq(c.max_connections_per_user, 4);
        config_done(&c);
}
END_TEST

START_TEST(test_unknown_key_is_an_error_not_a_default) {
        assert_error("[Limits]\nMaxVolumesPerSet=8\nMaxVolumsPerSet=16\n",
                     "test.conf:3: MaxVolumsPerSet=16: unknown key in section [Limits]");
        /* A key of another section is unknown here too. */
        assert_error("[Daemon]\nHoldTimeoutSec=5\n",
                     "test.conf:2: HoldTimeoutSec=5: unknown key in section [Daemon]");
        /* Keys are case-sensitive, as in systemd. */
        assert_error("[Limits]\nmaxvolumesperset=5\n",
                     "test.conf:2: maxvolumesperset=5: unknown key in section [Limits]");
}
END_TEST

START_TEST(test_unknown_section_is_an_error) {
        assert_error("[Daemon]\n[Limit]\nMaxVolumesPerSet=5\n",
                     "test.conf:2: unknown section [Limit] (known: [Daemon], [Limits], [Storage])");
}
END_TEST

START_TEST(test_malformed_lines_are_errors) {
        assert_error("ReadGroup=backup\n",
                     "test.conf:1: ReadGroup=backup: key outside of any section");
        assert_error("[Daemon]\njust some words\n",
                     "test.conf:2: 'just some words': expected Key=value or [Section]");
        assert_error("[Daemon\n",
                     "test.conf:1: '[Daemon': malformed section header");
        assert_error("[Daemon]\n= value\n",
                     "test.conf:2: '=value': missing key name");
}
END_TEST

START_TEST(test_bad_values_of_other_kinds_are_errors) {
        assert_error("[Daemon]\nLogLevel=verbose\n",
                     "test.conf:2: LogLevel=verbose: not a log level (emerg, alert, crit, err, warning, notice, info, debug or 0-7)");
        assert_error("[Daemon]\nReadGroup=backup operators\n",
                     "test.conf:2: ReadGroup=backup operators: not a valid group name");
        assert_error("[Daemon]\nStateDirectory=var/lib/snapset\n",
                     "test.conf:2: StateDirectory=var/lib/snapset: not an absolute path");
        assert_error("[Storage]\nCowDirectory=cow\n",
                     "test.conf:2: CowDirectory=cow: not an absolute path");
}
END_TEST

START_TEST(test_failed_parse_leaves_the_result_untouched) {
        _cleanup_free_ char *m = NULL;
        Config c = { .max_volumes_per_set = 12345 };

        ck_assert_int_eq(parse_text("[Limits]\nMaxVolumesPerSet=5\nBogus=1\n", &c, &m), -EINVAL);
        ck_assert_uint_eq(c.max_volumes_per_set, 12345);
        ck_assert_ptr_null(c.state_directory);
}
END_TEST

START_TEST(test_embedded_nul_is_an_error) {
        static const char text[] = "[Daemon]\nReadGroup=a\0b\n";
        _cleanup_free_ char *m = NULL;
        FILE *f = fmemopen((void *) text, sizeof text - 1, "r");
        Config c;

        ck_assert_int_eq(config_parse(f, "test.conf", &c, &m), -EINVAL);
        fclose(f);
        ck_assert_str_eq(m, "test.conf:2: line contains a NUL byte");
}
END_TEST

START_TEST(test_shipped_example_file_parses_to_the_defaults) {
        _cleanup_free_ char *m = NULL;
        Config c;

        /* systemd/snapsetd.conf lists every key commented out at its default. */
        ck_assert_msg(config_load("systemd/snapsetd.conf", false, &c, &m) == 0, "%s", strna(m));
        assert_defaults(&c);
        config_done(&c);
}
END_TEST

START_TEST(test_shipped_example_file_uncommented_parses_to_the_defaults) {
        _cleanup_free_ char *m = NULL, *text = NULL;
        size_t size = 0;
        FILE *in = fopen("systemd/snapsetd.conf", "re"), *out;
        char line[1024];
        unsigned keys = 0;
        Config c;

        ck_assert_ptr_nonnull(in);
        out = open_memstream(&text, &size);
        ck_assert_ptr_nonnull(out);
        /* "#Key=value" lines are the keys; "# text" lines are prose. */
        while (fgets(line, sizeof line, in)) {
                if (line[0] == '#' && line[1] != ' ' && line[1] != '\n' && strchr(line, '=')) {
                        fputs(line + 1, out);
                        keys++;
                } else
                        fputs(line, out);
        }
        fclose(in);
        fclose(out);

        ck_assert_uint_eq(keys, 17);
        ck_assert_msg(parse_text(text, &c, &m) == 0, "%s", strna(m));
        assert_defaults(&c);
        config_done(&c);
}
END_TEST

Suite *suite_config(void);
Suite *suite_config(void) {
        Suite *s = suite_create("config");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_missing_default_file_gives_the_defaults);
        tcase_add_test(tc, test_missing_explicit_file_is_an_error_naming_it);
        tcase_add_test(tc, test_empty_file_and_comments_give_the_defaults);
        tcase_add_test(tc, test_every_key_is_parsed);
        tcase_add_test(tc, test_file_on_disk_is_read);
        tcase_add_test(tc, test_last_value_wins_and_empty_value_restores_the_default);
        tcase_add_test(tc, test_sizes_accept_k_m_g_t_suffixes);
        tcase_add_test(tc, test_cow_size_is_a_percentage_or_a_size);
        tcase_add_test(tc, test_not_a_number_names_file_line_key_and_range);
        tcase_add_test(tc, test_limits_out_of_range_are_errors);
        tcase_add_test(tc, test_flush_and_hold_timeouts_must_fit_in_half_the_watchdog);
        tcase_add_test(tc, test_per_user_cap_is_clamped_to_the_total);
        tcase_add_test(tc, test_unknown_key_is_an_error_not_a_default);
        tcase_add_test(tc, test_unknown_section_is_an_error);
        tcase_add_test(tc, test_malformed_lines_are_errors);
        tcase_add_test(tc, test_bad_values_of_other_kinds_are_errors);
        tcase_add_test(tc, test_failed_parse_leaves_the_result_untouched);
        tcase_add_test(tc, test_embedded_nul_is_an_error);
        tcase_add_test(tc, test_shipped_example_file_parses_to_the_defaults);
        tcase_add_test(tc, test_shipped_example_file_uncommented_parses_to_the_defaults);
        suite_add_tcase(s, tc);
        return s;
}
