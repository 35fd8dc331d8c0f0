/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The pure parts of the lvm provider: lvm's JSON reports (as lvm2 2.03.16 prints them), its
 * error messages turned into VSS codes, which method takes a snapshot on which kernel, the
 * record, COW sizes, and the command runner's deadline. What needs device-mapper and LVM runs in
 * the VM (tests/vm/tests/80-*..84-*). */

#include <check.h>
#include <stdio.h>
#include <unistd.h>

#include "macro.h"
#include "providers/command.h"
#include "providers/lvm-report.h"
#include "providers/lvm.h"

/* What "lvs --reportformat json --units b --nosuffix -o LVM_LV_COLUMNS" printed in the VM. */
static const char lvs_report[] =
        "  {\n"
        "      \"report\": [\n"
        "          {\n"
        "              \"lv\": [\n"
        "                  {\"vg_name\":\"scrvg\", \"lv_name\":\"classic\", \"lv_uuid\":\"AbCd-1\", \"lv_attr\":\"owi-aos---\", "
        "\"segtype\":\"linear\", \"pool_lv\":\"\", \"origin\":\"\", \"lv_size\":\"209715200\", \"lv_tags\":\"\", "
        "\"data_percent\":\"\", \"metadata_percent\":\"\", \"snap_percent\":\"\", \"lv_time\":\"1796115499\"},\n"
        "                  {\"vg_name\":\"scrvg\", \"lv_name\":\"snapset-15c2fb54-05f8-4d2c-873d-ed81cd764553\", "
        "\"lv_uuid\":\"XyZ-2\", \"lv_attr\":\"Vwi-a-tz--\", \"segtype\":\"thin\", \"pool_lv\":\"pool\", \"origin\":\"thin\", "
        "\"lv_size\":\"314572800\", \"lv_tags\":\"snapset,snapset_set_bd56df38-8dea-4690-bc9d-1a7a51ed7a47\", "
        "\"data_percent\":\"21.48\", \"metadata_percent\":\"\", \"snap_percent\":\"\", \"lv_time\":\"1796115504\"},\n"
        "                  {\"vg_name\":\"scrvg\", \"lv_name\":\"thin\", \"lv_uuid\":\"Q-3\", \"lv_attr\":\"Vwi---tz--\", "
        "\"segtype\":\"thin\", \"pool_lv\":\"pool\", \"origin\":\"\", \"lv_size\":\"314572800\", \"lv_tags\":\"\", "
        "\"data_percent\":\"\", \"metadata_percent\":\"\", \"snap_percent\":\"\", \"lv_time\":\"2026-12-01 08:55:40 +0000\"}\n"
        "              ]\n"
        "          }\n"
        "      ]\n"
        "      ,\n"
        "      \"log\": [\n"
        "      ]\n"
        "  }\n";

START_TEST(test_lvs_report_gives_each_lv_with_sizes_in_bytes) {
        LvmLv *lvs = NULL;
        size_t n = 0;

        ck_assert_int_eq(lvm_report_parse_lvs(lvs_report, &lvs, &n), 0);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(lvs[0].vg, "scrvg");
        ck_assert_str_eq(lvs[0].name, "classic");
        ck_assert_str_eq(lvs[0].segtype, "linear");
        ck_assert_ptr_null(lvs[0].pool);      /* "" is "not applicable" */
        ck_assert_ptr_null(lvs[0].origin);
        ck_assert_uint_eq(lvs[0].size, 209715200);
        ck_assert(lvs[0].data_percent < 0);
        ck_assert_uint_eq(lvs[0].time, 1796115499);
        ck_assert(lvm_lv_is_active(&lvs[0]));
        ck_assert(!lvm_lv_is_thin_volume(&lvs[0]));

        ck_assert_str_eq(lvs[1].pool, "pool");
        ck_assert_str_eq(lvs[1].origin, "thin");
        ck_assert(lvm_lv_is_thin_volume(&lvs[1]));
        ck_assert(lvm_lv_has_tag(&lvs[1], "snapset"));
        ck_assert(lvm_lv_has_tag(&lvs[1], "snapset_set_bd56df38-8dea-4690-bc9d-1a7a51ed7a47"));
        ck_assert(!lvm_lv_has_tag(&lvs[1], "snap"));
        ck_assert(!lvm_lv_has_tag(&lvs[0], "snapset"));
        ck_assert(lvs[1].data_percent > 21.47 && lvs[1].data_percent < 21.49);

        /* Inactive; and a date lvm formatted for people is an unknown time, not an error. */
        ck_assert(!lvm_lv_is_active(&lvs[2]));
        ck_assert_uint_eq(lvs[2].time, 0);
        lvm_lvs_free(lvs, n);
}
END_TEST

START_TEST(test_vgs_and_pvs_reports_parse) {
        static const char vgs[] = "{\"report\":[{\"vg\":[{\"vg_name\":\"vg0\",\"vg_uuid\":\"U\",\"vg_attr\":\"wz--n-\","
                                  "\"vg_extent_size\":\"4194304\",\"vg_free\":\"104857600\"}]}]}";
        static const char pvs[] = "{\"report\":[{\"pv\":[{\"pv_name\":\"/dev/vda\",\"vg_name\":\"vg0\"},"
                                  "{\"pv_name\":\"/dev/vdc\",\"vg_name\":\"\"}]}]}";
        LvmVg *v = NULL;
        LvmPv *p = NULL;
        size_t n = 0;

        ck_assert_int_eq(lvm_report_parse_vgs(vgs, &v, &n), 0);
        ck_assert_uint_eq(n, 1);
        ck_assert_str_eq(v[0].name, "vg0");
        ck_assert_uint_eq(v[0].extent_size, 4194304);
        ck_assert_uint_eq(v[0].free, 104857600);
        lvm_vgs_free(v, n);
        ck_assert_int_eq(lvm_report_parse_pvs(pvs, &p, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert_str_eq(p[0].name, "/dev/vda");
        ck_assert_ptr_null(p[1].vg);
        lvm_pvs_free(p, n);
}
END_TEST

START_TEST(test_reports_that_are_not_reports_are_refused) {
        static const char *const bad[] = {
                "", "not json", "{}", "{\"report\": {}}", "{\"report\": [{\"vg\": []}]}",
                "{\"report\": [{\"lv\": [{\"lv_size\": \"-5\"}]}]}",
                "{\"report\": [{\"lv\": [{\"lv_size\": 5}]}]}",
                "{\"report\": [{\"lv\": [{\"data_percent\": \"x\"}]}]}",
                "{\"report\": [{\"lv\": [7]}]}",
        };
        LvmLv *lvs = NULL;
        size_t n = 0;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(lvm_report_parse_lvs(bad[i], &lvs, &n) == -EBADMSG, "accepted %s", bad[i]);
}
END_TEST

/* ---------------------------------------------------------------- errors */

START_TEST(test_lvm_failures_map_to_vss_codes) {
        ck_assert_int_eq(lvm_error_code(0, "anything"), S_OK);
        ck_assert_int_eq(lvm_error_code(5, "  Failed to find logical volume \"vg/gone\"\n"), VSS_E_OBJECT_NOT_FOUND);
        ck_assert_int_eq(lvm_error_code(5, "  Volume group \"nope\" not found\n  Cannot process volume group nope\n"),
                         VSS_E_OBJECT_NOT_FOUND);
        ck_assert_int_eq(lvm_error_code(5, "  Volume group \"vg\" has insufficient free space (2 extents): 5 required.\n"),
                         VSS_E_INSUFFICIENT_STORAGE);
        ck_assert_int_eq(lvm_error_code(5, "  Giving up waiting for lock.\n  Can't get lock for vg.\n"), VSS_E_BAD_STATE);
        ck_assert_int_eq(lvm_error_code(5, "  Logical volume vg/lv in use.\n"), VSS_E_BAD_STATE);
        ck_assert_int_eq(lvm_error_code(5, "  device-mapper: suspend ioctl on  (253:6) failed: Device or resource busy\n"),
                         VSS_E_BAD_STATE);
        ck_assert_int_eq(lvm_error_code(3, "  Invalid tag snapset test failure.\n"), VSS_E_PROVIDER_VETO);
}
END_TEST

START_TEST(test_the_summary_keeps_lvms_lines_without_its_noise) {
        char buf[200];

        lvm_error_summary("File descriptor 9 (/dev/null) leaked on lvcreate invocation. Parent PID 1: x\n"
                          "  Volume group \"vg\" has insufficient free space.\n"
                          "\n"
                          "  Run `lvcreate --help' for more information.\n", buf, sizeof buf);
        ck_assert_str_eq(buf, "Volume group \"vg\" has insufficient free space.; Run `lvcreate --help' for more "
                              "information.");
        lvm_error_summary(NULL, buf, sizeof buf);
        ck_assert_str_eq(buf, "");
        /* Cut, never overrun. */
        lvm_error_summary("  0123456789012345678901234567890123456789\n", buf, 10);
        ck_assert_uint_le(strlen(buf), 9);
}
END_TEST

START_TEST(test_only_names_lvm_itself_accepts_are_passed_on) {
        ck_assert(lvm_name_is_valid("vg0"));
        ck_assert(lvm_name_is_valid("data_1.2+x-y"));
        ck_assert(!lvm_name_is_valid(""));
        ck_assert(!lvm_name_is_valid(NULL));
        ck_assert(!lvm_name_is_valid("-vg"));
        ck_assert(!lvm_name_is_valid("."));
        ck_assert(!lvm_name_is_valid(".."));
        ck_assert(!lvm_name_is_valid("a b"));
        ck_assert(!lvm_name_is_valid("a;rm -rf /"));
        ck_assert(!lvm_name_is_valid("a/b"));
        ck_assert(!lvm_name_is_valid("a$(x)"));
}
END_TEST

/* ---------------------------------------------------------------- methods */

START_TEST(test_classic_lvs_are_always_presuspended_classic_snapshots) {
        for (FreezeNesting f = FREEZE_NESTING_UNKNOWN; f <= FREEZE_NESTING_YES; f++) {
                ck_assert_int_eq(lvm_method_choose(false, 1, f, false), LVM_METHOD_CLASSIC);
                ck_assert_int_eq(lvm_method_choose(false, 16, f, true), LVM_METHOD_CLASSIC);
        }
        ck_assert(lvm_method_presuspends(LVM_METHOD_CLASSIC));
        ck_assert(lvm_method_needs_fifreeze(LVM_METHOD_CLASSIC));
        ck_assert_str_eq(lvm_method_kind(LVM_METHOD_CLASSIC), "classic");
        ck_assert_ptr_null(lvm_method_note(LVM_METHOD_CLASSIC));
}
END_TEST

START_TEST(test_thin_lvs_never_get_a_presuspended_native_snapshot) {
        /* Where the freezes nest: native, under FIFREEZE, alone or not. */
        ck_assert_int_eq(lvm_method_choose(true, 1, FREEZE_NESTING_YES, false), LVM_METHOD_THIN_NESTED);
        ck_assert_int_eq(lvm_method_choose(true, 4, FREEZE_NESTING_YES, false), LVM_METHOD_THIN_NESTED);
        /* Where they do not (or nobody knows): lvm's own freeze alone, classic in a set. */
        ck_assert_int_eq(lvm_method_choose(true, 1, FREEZE_NESTING_NO, false), LVM_METHOD_THIN_LOCKFS);
        ck_assert_int_eq(lvm_method_choose(true, 2, FREEZE_NESTING_NO, false), LVM_METHOD_CLASSIC_OF_THIN);
        ck_assert_int_eq(lvm_method_choose(true, 2, FREEZE_NESTING_UNKNOWN, false), LVM_METHOD_CLASSIC_OF_THIN);
        /* LvmThinSnapshots=classic. */
        ck_assert_int_eq(lvm_method_choose(true, 2, FREEZE_NESTING_YES, true), LVM_METHOD_CLASSIC_OF_THIN);
        ck_assert_int_eq(lvm_method_choose(true, 1, FREEZE_NESTING_YES, true), LVM_METHOD_THIN_LOCKFS);

        for (LvmMethod m = 0; m < _LVM_METHOD_MAX; m++) {
                /* The property the facts demand: a native thin method never presuspends. */
                if (streq(lvm_method_kind(m), "thin"))
                        ck_assert(!lvm_method_presuspends(m));
                ck_assert_int_eq(lvm_method_from_string(lvm_method_to_string(m)), m);
        }
        ck_assert(!lvm_method_needs_fifreeze(LVM_METHOD_THIN_LOCKFS));
        ck_assert_ptr_nonnull(strstr(lvm_method_note(LVM_METHOD_CLASSIC_OF_THIN), "classic (copy-on-write)"));
        ck_assert_int_eq(lvm_method_from_string("bogus"), _LVM_METHOD_INVALID);
}
END_TEST

/* ---------------------------------------------------------------- the record, sizes */

START_TEST(test_lvm_record_survives_a_round_trip) {
        LvmRecord a = {
                .vg = strdup("vg0"), .origin = strdup("data"), .origin_uuid = strdup("UUID"),
                .snapshot = strdup("snapset-6c1f0e9a-0000-4000-8000-000000000001"),
                .method = LVM_METHOD_CLASSIC_OF_THIN, .pool = strdup("pool"), .cow_size = 8388608,
        }, b = { .method = _LVM_METHOD_INVALID };
        json_object *j, *re;

        ck_assert_int_eq(lvm_record_to_json(&a, &j), 0);
        re = json_tokener_parse(json_object_to_json_string(j));
        ck_assert_int_eq(lvm_record_from_json(re, &b), 0);
        ck_assert_str_eq(b.vg, "vg0");
        ck_assert_str_eq(b.origin, "data");
        ck_assert_str_eq(b.origin_uuid, "UUID");
        ck_assert_str_eq(b.snapshot, a.snapshot);
        ck_assert_int_eq(b.method, LVM_METHOD_CLASSIC_OF_THIN);
        ck_assert_str_eq(b.pool, "pool");
        ck_assert_uint_eq(b.cow_size, 8388608);
        lvm_record_done(&b);

        /* Before the method is chosen (written at AddToSnapshotSet). */
        a.method = _LVM_METHOD_INVALID;
        json_object_put(j);
        ck_assert_int_eq(lvm_record_to_json(&a, &j), 0);
        ck_assert_int_eq(lvm_record_from_json(j, &b), 0);
        ck_assert_int_eq(b.method, _LVM_METHOD_INVALID);
        lvm_record_done(&b);

        /* Never a record naming an LV that is not snapset's. */
        json_object_object_add(j, "snapshot", json_object_new_string("data"));
        ck_assert_int_eq(lvm_record_from_json(j, &b), -EBADMSG);
        json_object_put(j);
        json_object_put(re);
        lvm_record_done(&a);
}
END_TEST

START_TEST(test_cow_sizes_are_whole_extents) {
        /* 10% of 1 GiB, in 4 MiB extents. */
        ck_assert_uint_eq(lvm_cow_size(0, 10, 0, 1ULL << 30, 4 << 20) % (4 << 20), 0);
        ck_assert_uint_ge(lvm_cow_size(0, 10, 0, 1ULL << 30, 4 << 20), (1ULL << 30) / 10);
        /* Asked for: 10 MiB becomes 12 MiB. */
        ck_assert_uint_eq(lvm_cow_size(10 << 20, 10, 0, 1ULL << 30, 4 << 20), 12 << 20);
}
END_TEST

/* ---------------------------------------------------------------- the runner */

START_TEST(test_commands_capture_output_and_exit_status) {
        _cleanup_(command_freep) Command *c = NULL;

        ck_assert_int_eq(command_new("/bin/sh", false, 0, &c), 0);
        ck_assert_int_eq(command_add(c, "-c"), 0);
        ck_assert_int_eq(command_add(c, "echo out; echo err >&2; echo \"$LC_ALL $HOME\"; exit 3"), 0);
        ck_assert_int_eq(command_run(c, 10 * USEC_PER_SEC), 0);
        ck_assert_int_eq(c->exit_status, 3);
        ck_assert_str_eq(c->out, "out\nC /run\n");
        ck_assert_str_eq(c->err, "err\n");
        ck_assert(!c->timed_out);
}
END_TEST

START_TEST(test_a_command_past_its_deadline_is_killed_and_the_caller_goes_on) {
        _cleanup_(command_freep) Command *c = NULL;
        uint64_t t0 = now_monotonic_usec();

        ck_assert_int_eq(command_new("/bin/sleep", true, 64, &c), 0);
        ck_assert_int_eq(command_add(c, "30"), 0);
        ck_assert_int_eq(command_run(c, 200 * USEC_PER_MSEC), -ETIMEDOUT);
        ck_assert(c->timed_out);
        ck_assert_uint_lt(now_monotonic_usec() - t0, 5 * USEC_PER_SEC);
}
END_TEST

START_TEST(test_fixed_buffers_drop_what_does_not_fit) {
        _cleanup_(command_freep) Command *c = NULL;

        ck_assert_int_eq(command_new("/bin/sh", true, 8, &c), 0);
        ck_assert_int_eq(command_add(c, "-c"), 0);
        ck_assert_int_eq(command_add(c, "echo 0123456789abcdef"), 0);
        ck_assert_int_eq(command_run(c, 10 * USEC_PER_SEC), 0);
        ck_assert_int_eq(c->exit_status, 0);
        ck_assert_str_eq(c->out, "01234567");
        ck_assert(c->out_truncated);
}
END_TEST

Suite *suite_lvm(void);
Suite *suite_lvm(void) {
        Suite *s = suite_create("lvm");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_lvs_report_gives_each_lv_with_sizes_in_bytes);
        tcase_add_test(tc, test_vgs_and_pvs_reports_parse);
        tcase_add_test(tc, test_reports_that_are_not_reports_are_refused);
        tcase_add_test(tc, test_lvm_failures_map_to_vss_codes);
        tcase_add_test(tc, test_the_summary_keeps_lvms_lines_without_its_noise);
        tcase_add_test(tc, test_only_names_lvm_itself_accepts_are_passed_on);
        tcase_add_test(tc, test_classic_lvs_are_always_presuspended_classic_snapshots);
        tcase_add_test(tc, test_thin_lvs_never_get_a_presuspended_native_snapshot);
        tcase_add_test(tc, test_lvm_record_survives_a_round_trip);
        tcase_add_test(tc, test_cow_sizes_are_whole_extents);
        tcase_add_test(tc, test_commands_capture_output_and_exit_status);
        tcase_add_test(tc, test_a_command_past_its_deadline_is_killed_and_the_caller_goes_on);
        tcase_add_test(tc, test_fixed_buffers_drop_what_does_not_fit);
        suite_add_tcase(s, tc);
        return s;
}
