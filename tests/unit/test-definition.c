/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Set definitions (sets.d/NAME.conf): a complete file, the defaults, and every kind of error
 * reported as "FILE:LINE: Key=value: why", never half-applied, with the other files of the
 * directory still read. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include "schedule/definition.h"

static char dir[] = "/tmp/snapset-test-definitions-XXXXXX";

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(dir));
}

static void teardown(void) {
        char cmd[128];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
        strcpy(dir, "/tmp/snapset-test-definitions-XXXXXX");
}

static char *write_file(const char *name, const char *text) {
        char *path;
        FILE *f;

        ck_assert_int_ge(asprintf(&path, "%s/%s", dir, name), 0);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(text, f);
        fclose(f);
        return path;
}

static SetDefinition *load(const char *name, const char *text) {
        _cleanup_free_ char *path = write_file(name, text);
        SetDefinition *d = NULL;

        ck_assert_int_eq(definition_load(path, &d), 0);
        return d;
}

/* Asserts that text gives exactly the error "DIR/db.conf" + suffix. */
static void assert_error(const char *text, const char *suffix) {
        _cleanup_(definition_freep) SetDefinition *d = load("db.conf", text);
        _cleanup_free_ char *expected = NULL;

        ck_assert_int_ge(asprintf(&expected, "%s/db.conf%s", dir, suffix), 0);
        ck_assert_ptr_nonnull(d->error);
        ck_assert_str_eq(d->error, expected);
        ck_assert_str_eq(d->name, "db");
        ck_assert_uint_eq(d->n_volumes, 0);
        ck_assert_ptr_null(d->on_calendar);
}

START_TEST(test_complete_file) {
        _cleanup_(definition_freep) SetDefinition *d = load("db.conf",
                "# the database and its log, together\n"
                "[Set]\nDescription=PostgreSQL\nOnCalendar=*-*-* *:00,30:00\nContext=persistent\n"
                "[Volume]\nPath=/srv/db\nProvider=lvm\nCowSize=2G\n"
                "[Volume]\nPath=/dev/vg/log\n"
                "[Retention]\nKeepLast=3\nKeepHourly=24\nKeepDaily=7\nKeepWeekly=4\nKeepMonthly=12\nKeepYearly=2\n"
                "MinAge=90min\nPruneOnLowSpace=yes\n"
                "[Hooks]\nHook=/usr/local/lib/pg-hook\nHook=/usr/local/lib/other\nHookTimeoutSec=5\n"
                "HookFailure=veto\nGlobalHooks=no\n"
                "[Health]\nWarnUsedPercent=70\nWarnAfterPeriods=2\nCriticalAfterPeriods=4.5\n");

        ck_assert_ptr_null(d->error);
        ck_assert_str_eq(d->name, "db");
        ck_assert_str_eq(d->description, "PostgreSQL");
        ck_assert_str_eq(d->on_calendar, "*-*-* *:00,30:00");
        ck_assert_uint_eq(d->n_volumes, 2);
        ck_assert_str_eq(d->volumes[0].path, "/srv/db");
        ck_assert_str_eq(d->volumes[0].provider, "lvm");
        ck_assert_uint_eq(d->volumes[0].cow_size, 2ULL << 30);
        ck_assert_str_eq(d->volumes[1].path, "/dev/vg/log");
        ck_assert_ptr_null(d->volumes[1].provider);
        ck_assert_uint_eq(d->volumes[1].cow_size, 0);
        ck_assert_uint_eq(d->retention.keep_last, 3);
        ck_assert_uint_eq(d->retention.keep_hourly, 24);
        ck_assert_uint_eq(d->retention.keep_daily, 7);
        ck_assert_uint_eq(d->retention.keep_weekly, 4);
        ck_assert_uint_eq(d->retention.keep_monthly, 12);
        ck_assert_uint_eq(d->retention.keep_yearly, 2);
        ck_assert_uint_eq(d->retention.min_age_usec, 90 * 60 * USEC_PER_SEC);
        ck_assert(d->prune_on_low_space);
        ck_assert_str_eq(d->hooks[0], "/usr/local/lib/pg-hook");
        ck_assert_str_eq(d->hooks[1], "/usr/local/lib/other");
        ck_assert_ptr_null(d->hooks[2]);
        ck_assert_uint_eq(d->hook_timeout_usec, 5 * USEC_PER_SEC);
        ck_assert_int_eq(d->hook_failure, HOOK_FAILURE_VETO);
        ck_assert(!d->global_hooks);
        ck_assert_uint_eq(d->warn_used_percent, 70);
        ck_assert(d->warn_after_periods == 2.0);
        ck_assert(d->critical_after_periods == 4.5);
}
END_TEST

START_TEST(test_defaults) {
        _cleanup_(definition_freep) SetDefinition *d = load("home.conf", "[Volume]\nPath=/home\n");

        ck_assert_ptr_null(d->error);
        ck_assert_ptr_null(d->on_calendar);
        ck_assert(!retention_is_set(&d->retention));
        ck_assert(!d->prune_on_low_space);
        ck_assert_ptr_null(d->hooks);
        ck_assert(d->global_hooks);
        ck_assert_uint_eq(d->hook_timeout_usec, DEFINITION_DEFAULT_HOOK_TIMEOUT_SEC * USEC_PER_SEC);
        ck_assert_int_eq(d->hook_failure, HOOK_FAILURE_WARN);
        ck_assert_uint_eq(d->warn_used_percent, 80);
        ck_assert(d->warn_after_periods == 1.5);
        ck_assert(d->critical_after_periods == 3.0);
}
END_TEST

START_TEST(test_errors_name_file_line_and_key) {
        assert_error("[Volume]\nPath=/srv\n[Retention]\nKeepDaily=seven\n",
                     ":4: KeepDaily=seven: not a number of sets between 0 and 100000");
        assert_error("[Set]\nContext=backup\n",
                     ":2: Context=backup: a defined set is kept until retention deletes it, so its context can only be 'persistent'");
        assert_error("[Volume]\nPath=srv\n", ":2: Path=srv: not an absolute path (a block device or a mountpoint)");
        assert_error("[Volume]\nPath=/srv\nCowSize=lots\n",
                     ":3: CowSize=lots: not a size of at least 1M (bytes, or with a K, M, G or T suffix)");
        assert_error("[Volume]\nPath=/srv\n[Retention]\nMinAge=soon\n",
                     ":4: MinAge=soon: not a time span (e.g. 90min, 12h, 2d, 1w)");
        assert_error("[Volume]\nPath=/srv\n[Hooks]\nHookFailure=abort\n",
                     ":4: HookFailure=abort: not 'warn' (take the set anyway) or 'veto' (do not)");
        assert_error("[Volume]\nPath=/srv\n[Hooks]\nHook=pg-hook\n",
                     ":4: Hook=pg-hook: not an absolute path to an executable");
        assert_error("[Volume]\nPath=/srv\n[Hooks]\nHookTimeoutSec=0\n",
                     ":4: HookTimeoutSec=0: not a number of seconds between 1 and 600");
        assert_error("[Volume]\nPath=/srv\n[Health]\nWarnUsedPercent=101\n",
                     ":4: WarnUsedPercent=101: not a percentage between 1 and 100");
        assert_error("[Schedule]\n", ":1: unknown section [Schedule] (known: [Set], [Volume], [Retention], [Hooks], [Health])");
        assert_error("[Set]\nOnCalender=hourly\n",
                     ":2: OnCalender=hourly: unknown key in section [Set] (known: OnCalendar=, Context=, Description=)");
        assert_error("[Set]\nOnCalendar=hourly\n", ": no [Volume] section: name at least one volume (Path=)");
        assert_error("[Volume]\nProvider=lvm\n", ": [Volume] section 1 has no Path=");
        assert_error("[Volume]\nPath=/srv\n[Volume]\nPath=/srv\n", ": Path=/srv: the volume is named twice");
        assert_error("[Volume]\nPath=/srv\n[Health]\nWarnAfterPeriods=4\n",
                     ": CriticalAfterPeriods=3 is below WarnAfterPeriods=4");
        assert_error("Path=/srv\n", ":1: Path=/srv: key outside of any section");
}
END_TEST

START_TEST(test_directory_keeps_going_past_a_broken_file) {
        DefinitionList l = {};
        _cleanup_free_ char *a = write_file("a.conf", "[Volume]\nPath=/a\n");
        _cleanup_free_ char *b = write_file("b.conf", "[Volume]\nPath=/b\nBogus=1\n");
        _cleanup_free_ char *c = write_file("bad name.conf", "[Volume]\nPath=/c\n");
        _cleanup_free_ char *ignored = write_file("notes.txt", "not a definition\n");
        _cleanup_free_ char *expected = NULL;

        ck_assert_int_eq(definitions_load(dir, &l), 0);
        ck_assert_uint_eq(l.n, 3);
        ck_assert_str_eq(l.items[0]->name, "a");
        ck_assert_ptr_null(definitions_find(&l, "a")->error);
        ck_assert_str_eq(definitions_find(&l, "a")->volumes[0].path, "/a");
        ck_assert_ptr_nonnull(definitions_find(&l, "b")->error);
        ck_assert_int_ge(asprintf(&expected, "%s/bad name.conf: 'bad name' is not a valid set name "
                                  "(letters, digits, '_', '-' and '.', at most 64)", dir), 0);
        ck_assert_str_eq(definitions_find(&l, "bad name")->error, expected);
        ck_assert_ptr_null(definitions_find(&l, "notes"));
        definitions_done(&l);

        ck_assert_int_eq(definitions_load("/nonexistent/sets.d", &l), 0);
        ck_assert_uint_eq(l.n, 0);
        definitions_done(&l);
}
END_TEST

START_TEST(test_names_and_timespans) {
        uint64_t u;

        ck_assert(definition_name_is_valid("db-hourly_2.x"));
        ck_assert(!definition_name_is_valid("-x"));
        ck_assert(!definition_name_is_valid(".x"));
        ck_assert(!definition_name_is_valid("a/b"));
        ck_assert(!definition_name_is_valid(""));
        ck_assert_int_eq(definition_parse_timespan("90", &u), 0);
        ck_assert_uint_eq(u, 90 * USEC_PER_SEC);
        ck_assert_int_eq(definition_parse_timespan("2d", &u), 0);
        ck_assert_uint_eq(u, 2 * 86400 * USEC_PER_SEC);
        ck_assert_int_eq(definition_parse_timespan("1 week", &u), 0);
        ck_assert_uint_eq(u, 7 * 86400 * USEC_PER_SEC);
        ck_assert_int_eq(definition_parse_timespan("1y", &u), -EINVAL);
        ck_assert_int_eq(definition_parse_timespan("h", &u), -EINVAL);
}
END_TEST

Suite *suite_definition(void);
Suite *suite_definition(void) {
        Suite *s = suite_create("definition");
        TCase *tc = tcase_create("core");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_complete_file);
        tcase_add_test(tc, test_defaults);
        tcase_add_test(tc, test_errors_name_file_line_and_key);
        tcase_add_test(tc, test_directory_keeps_going_past_a_broken_file);
        tcase_add_test(tc, test_names_and_timespans);
        suite_add_tcase(s, tc);
        return s;
}
