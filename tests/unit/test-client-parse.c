/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl's command-line values: sizes, seconds, the default timeout of each method, and the
 * VOLUME[:KEY=VALUE,...] arguments of 'snapsetctl create'. */

#include <check.h>

#include "parse.h"

static uint64_t size_of(const char *s) {
        uint64_t v = UINT64_MAX;

        ck_assert_msg(parse_size(s, &v) == 0, "'%s' should parse as a size", s);
        return v;
}

START_TEST(test_sizes_are_bytes_or_powers_of_1024) {
        ck_assert_uint_eq(size_of("0"), 0);
        ck_assert_uint_eq(size_of("4096"), 4096);
        ck_assert_uint_eq(size_of("512B"), 512);
        ck_assert_uint_eq(size_of("4K"), 4096);
        ck_assert_uint_eq(size_of("4k"), 4096);
        ck_assert_uint_eq(size_of("320M"), UINT64_C(320) << 20);
        ck_assert_uint_eq(size_of("2G"), UINT64_C(2) << 30);
        ck_assert_uint_eq(size_of("2GiB"), UINT64_C(2) << 30);
        ck_assert_uint_eq(size_of("2gib"), UINT64_C(2) << 30);
        ck_assert_uint_eq(size_of("1T"), UINT64_C(1) << 40);
}
END_TEST

START_TEST(test_size_fractions_need_a_unit_and_drop_fractions_of_a_byte) {
        uint64_t v;

        ck_assert_uint_eq(size_of("1.5G"), UINT64_C(3) << 29);
        ck_assert_uint_eq(size_of("0.5K"), 512);
        ck_assert_uint_eq(size_of("0.1K"), 102);
        /* Digits past the sixth do not count. */
        ck_assert_uint_eq(size_of("1.0000009K"), 1024);
        ck_assert_int_eq(parse_size("1.5", &v), -EINVAL);
        ck_assert_int_eq(parse_size("1.5B", &v), -EINVAL);
}
END_TEST

START_TEST(test_sizes_that_are_not_sizes_are_refused) {
        static const char *const bad[] = {
                "", "G", "-1", "+1", " 1G", "1G ", "1 G", "1.G", ".5G", "1e9", "2GB", "2Gi", "1KK",
                "1P", "0x10", "1,5G", "1..5G",
        };
        uint64_t v = 7;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(parse_size(bad[i], &v) == -EINVAL, "'%s' should not parse", bad[i]);
        ck_assert_int_eq(parse_size(NULL, &v), -EINVAL);
        ck_assert_uint_eq(v, 7);
}
END_TEST

START_TEST(test_sizes_beyond_a_json_integer_are_out_of_range) {
        uint64_t v;

        ck_assert_uint_eq(size_of("9223372036854775807"), INT64_MAX);
        ck_assert_int_eq(parse_size("9223372036854775808", &v), -ERANGE);
        ck_assert_int_eq(parse_size("99999999999999999999999", &v), -ERANGE);
        ck_assert_uint_eq(size_of("8388607T"), UINT64_C(8388607) << 40);
        ck_assert_int_eq(parse_size("8388608T", &v), -ERANGE);
        ck_assert_uint_eq(size_of("8388607.5T"), (UINT64_C(16777215) << 39));
}
END_TEST

START_TEST(test_seconds_take_fractions_and_an_optional_s) {
        uint64_t v;

        ck_assert_int_eq(parse_seconds("0", &v), 0);
        ck_assert_uint_eq(v, 0);
        ck_assert_int_eq(parse_seconds("30", &v), 0);
        ck_assert_uint_eq(v, 30 * USEC_PER_SEC);
        ck_assert_int_eq(parse_seconds("0.5", &v), 0);
        ck_assert_uint_eq(v, 500 * USEC_PER_MSEC);
        ck_assert_int_eq(parse_seconds("120s", &v), 0);
        ck_assert_uint_eq(v, 120 * USEC_PER_SEC);
        ck_assert_int_eq(parse_seconds("1.000001", &v), 0);
        ck_assert_uint_eq(v, USEC_PER_SEC + 1);

        ck_assert_int_eq(parse_seconds("", &v), -EINVAL);
        ck_assert_int_eq(parse_seconds("-1", &v), -EINVAL);
        ck_assert_int_eq(parse_seconds("1min", &v), -EINVAL);
        ck_assert_int_eq(parse_seconds("abc", &v), -EINVAL);
        ck_assert_int_eq(parse_seconds("31536001", &v), -ERANGE);
        ck_assert_int_eq(parse_seconds("99999999999999999999999", &v), -ERANGE);
}
END_TEST

START_TEST(test_creating_and_deleting_wait_longer_and_monitor_waits_for_ever) {
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.Manager.CreateSnapshotSet", 1), 120 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.Manager.DoSnapshotSet", 1), 120 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("CreateSnapshotSet", 1), 120 * USEC_PER_SEC);
        /* Deleting a set of many snapshots takes as long as creating it. */
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.Manager.DeleteSnapshots", 1), 120 * USEC_PER_SEC);
        /* And both grow with the set: 10 s for each volume after the first; 0 counts as 1. */
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.Manager.CreateSnapshotSet", 64), 750 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("DeleteSnapshots", 16), 270 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("DeleteSnapshots", 0), 120 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.Manager.GetStatus", 64), 30 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("CreateSnapshotSet", SIZE_MAX), 0);
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.Manager.Monitor", 1), 0);
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.Manager.GetStatus", 1), 30 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.Manager.ListSnapshotSets", 1), 30 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("org.varlink.service.GetInfo", 1), 30 * USEC_PER_SEC);
        /* Another interface's method of the same name is not ours. */
        ck_assert_uint_eq(method_default_timeout_usec("com.example.Monitor", 1), 30 * USEC_PER_SEC);
        ck_assert_uint_eq(method_default_timeout_usec("io.snapset.ManagerX.CreateSnapshotSet", 1), 30 * USEC_PER_SEC);
}
END_TEST

/* ---------------------------------------------------------------- volumes of create */

static VolumeSpec spec_of(const char *arg) {
        char reason[VOLUME_SPEC_REASON_MAX];
        VolumeSpec v = {};
        int r = volume_spec_parse(arg, &v, reason);

        ck_assert_msg(r == 0, "'%s' should parse: %s", arg, reason);
        return v;
}

START_TEST(test_a_plain_volume_has_no_options) {
        _cleanup_(volume_spec_done) VolumeSpec a = spec_of("/dev/vg0/root");
        _cleanup_(volume_spec_done) VolumeSpec b = spec_of("/home");

        ck_assert_str_eq(a.volume, "/dev/vg0/root");
        ck_assert_ptr_null(a.provider);
        ck_assert_uint_eq(a.cow_size, 0);
        ck_assert_str_eq(b.volume, "/home");
}
END_TEST

START_TEST(test_options_after_the_last_colon_apply_to_the_volume) {
        _cleanup_(volume_spec_done) VolumeSpec a = spec_of("/dev/vg0/db:cow-size=4G");
        _cleanup_(volume_spec_done) VolumeSpec b = spec_of("/dev/vg0/db:provider=lvm,cow-size=512M");
        _cleanup_(volume_spec_done) VolumeSpec c = spec_of("/dev/vg0/db:provider=dm-snapshot");

        ck_assert_str_eq(a.volume, "/dev/vg0/db");
        ck_assert_uint_eq(a.cow_size, UINT64_C(4) << 30);
        ck_assert_ptr_null(a.provider);
        ck_assert_str_eq(b.volume, "/dev/vg0/db");
        ck_assert_str_eq(b.provider, "lvm");
        ck_assert_uint_eq(b.cow_size, UINT64_C(512) << 20);
        ck_assert_str_eq(c.provider, "dm-snapshot");
        ck_assert_uint_eq(c.cow_size, 0);
}
END_TEST

START_TEST(test_colons_inside_a_device_path_are_part_of_the_volume) {
        _cleanup_(volume_spec_done) VolumeSpec a = spec_of("/dev/disk/by-path/pci-0000:00:1f.2-ata-1");
        _cleanup_(volume_spec_done) VolumeSpec b = spec_of("/dev/disk/by-path/pci-0000:00:1f.2-ata-1:cow-size=1G");
        _cleanup_(volume_spec_done) VolumeSpec c = spec_of("/mnt/a=b:c/d");

        ck_assert_str_eq(a.volume, "/dev/disk/by-path/pci-0000:00:1f.2-ata-1");
        ck_assert_uint_eq(a.cow_size, 0);
        ck_assert_str_eq(b.volume, "/dev/disk/by-path/pci-0000:00:1f.2-ata-1");
        ck_assert_uint_eq(b.cow_size, UINT64_C(1) << 30);
        ck_assert_str_eq(c.volume, "/mnt/a=b:c/d");
}
END_TEST

static void assert_spec_fails(const char *arg, int error, const char *reason_part) {
        char reason[VOLUME_SPEC_REASON_MAX];
        VolumeSpec v = {};

        ck_assert_int_eq(volume_spec_parse(arg, &v, reason), error);
        ck_assert_msg(strstr(reason, reason_part), "'%s': reason '%s' lacks '%s'", arg, reason, reason_part);
        ck_assert_ptr_null(v.volume);
}

START_TEST(test_bad_volume_options_say_what_is_wrong) {
        assert_spec_fails("", -EINVAL, "the volume is empty");
        assert_spec_fails(":cow-size=1G", -EINVAL, "the volume is empty");
        assert_spec_fails("/dev/x:foo=1", -EINVAL, "unknown option 'foo'");
        assert_spec_fails("/dev/x:cow-size=2GB", -EINVAL, "'2GB' is not a size");
        assert_spec_fails("/dev/x:cow-size=0", -EINVAL, "more than 0");
        assert_spec_fails("/dev/x:cow-size=9999999999T", -ERANGE, "too large");
        assert_spec_fails("/dev/x:cow-size=", -EINVAL, "has no value");
        assert_spec_fails("/dev/x:provider=", -EINVAL, "has no value");
        assert_spec_fails("/dev/x:cow-size=1G,cow-size=2G", -EINVAL, "cow-size is given twice");
        assert_spec_fails("/dev/x:provider=a,provider=b", -EINVAL, "provider is given twice");
        assert_spec_fails("/dev/x:cow-size=1G,", -EINVAL, "an option is empty");
        assert_spec_fails("/dev/x:cow-size=1G,,provider=lvm", -EINVAL, "an option is empty");
        assert_spec_fails("/dev/x:cow-size=1G,lvm", -EINVAL, "'lvm' is not KEY=VALUE");
}
END_TEST

Suite *suite_client_parse(void) {
        Suite *s = suite_create("client-parse");
        TCase *tc = tcase_create("values");
        TCase *volumes = tcase_create("volumes");

        tcase_add_test(tc, test_sizes_are_bytes_or_powers_of_1024);
        tcase_add_test(tc, test_size_fractions_need_a_unit_and_drop_fractions_of_a_byte);
        tcase_add_test(tc, test_sizes_that_are_not_sizes_are_refused);
        tcase_add_test(tc, test_sizes_beyond_a_json_integer_are_out_of_range);
        tcase_add_test(tc, test_seconds_take_fractions_and_an_optional_s);
        tcase_add_test(tc, test_creating_and_deleting_wait_longer_and_monitor_waits_for_ever);
        suite_add_tcase(s, tc);

        tcase_add_test(volumes, test_a_plain_volume_has_no_options);
        tcase_add_test(volumes, test_options_after_the_last_colon_apply_to_the_volume);
        tcase_add_test(volumes, test_colons_inside_a_device_path_are_part_of_the_volume);
        tcase_add_test(volumes, test_bad_volume_options_say_what_is_wrong);
        suite_add_tcase(s, volumes);
        return s;
}
