/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The pure parts of the dm-snapshot provider: its provider_data record, the names of its real
 * devices, COW sizing, the "COW directory inside the set" check (on a fake sysfs), dm tables and
 * statuses as text, and the preallocated COW file. What needs device-mapper runs in the VM
 * (tests/vm/tests/40-dm-snapshot-provider.sh). */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "providers/cow.h"
#include "providers/dm-snapshot.h"
#include "providers/dm.h"

/* ---------------------------------------------------------------- the record */

static DmSnapshotRecord sample_record(void) {
        return (DmSnapshotRecord) {
                .origin_name = strdup("data"),
                .origin_uuid = strdup("CRYPT-LUKS2-0123456789abcdef-data"),
                .origin_major = 253,
                .origin_minor = 4,
                .origin_table = strdup("0 2048 linear 7:0 0\n2048 2048 linear 7:1 0\n"),
                .real_name = strdup("snapset-real-CRYPT-LUKS2-0123456789abcdef-data"),
                .real_uuid = strdup("SNAPSET-real-CRYPT-LUKS2-0123456789abcdef-data"),
                .snapshot_name = strdup("snapset-6c1f0e9a-0000-4000-8000-000000000001"),
                .snapshot_uuid = strdup("SNAPSET-6c1f0e9a-0000-4000-8000-000000000001"),
                .cow_file = strdup("/var/lib/snapset/cow/6c1f0e9a-0000-4000-8000-000000000001.cow"),
                .cow_size = UINT64_C(5) << 32,
                .chunk_sectors = 8,
                .loop_device = strdup("/dev/loop3"),
                .created_real = true,
                .loaded_origin_table = true,
        };
}

START_TEST(test_record_survives_a_json_round_trip) {
        DmSnapshotRecord a = sample_record(), b = {};
        json_object *j, *reparsed;

        ck_assert_int_eq(dm_snapshot_record_to_json(&a, &j), 0);
        /* Through text, as the state directory stores it. */
        reparsed = json_tokener_parse(json_object_to_json_string(j));
        ck_assert_ptr_nonnull(reparsed);
        ck_assert_int_eq(dm_snapshot_record_from_json(reparsed, &b), 0);
        ck_assert_str_eq(b.origin_name, a.origin_name);
        ck_assert_str_eq(b.origin_uuid, a.origin_uuid);
        ck_assert_uint_eq(b.origin_major, 253);
        ck_assert_uint_eq(b.origin_minor, 4);
        ck_assert_str_eq(b.origin_table, a.origin_table);
        ck_assert_str_eq(b.real_name, a.real_name);
        ck_assert_str_eq(b.real_uuid, a.real_uuid);
        ck_assert_str_eq(b.snapshot_name, a.snapshot_name);
        ck_assert_str_eq(b.snapshot_uuid, a.snapshot_uuid);
        ck_assert_str_eq(b.cow_file, a.cow_file);
        ck_assert_uint_eq(b.cow_size, UINT64_C(5) << 32);
        ck_assert_uint_eq(b.chunk_sectors, 8);
        ck_assert_str_eq(b.loop_device, "/dev/loop3");
        ck_assert(b.created_real);
        ck_assert(b.loaded_origin_table);
        json_object_put(j);
        json_object_put(reparsed);
        dm_snapshot_record_done(&a);
        dm_snapshot_record_done(&b);
}
END_TEST

START_TEST(test_record_without_uuid_or_loop_device_uses_nulls) {
        DmSnapshotRecord a = sample_record(), b = {};
        json_object *j, *v;

        free(a.origin_uuid);
        a.origin_uuid = NULL;
        free(a.loop_device);
        a.loop_device = NULL;
        ck_assert_int_eq(dm_snapshot_record_to_json(&a, &j), 0);
        ck_assert(json_object_object_get_ex(j, "originUuid", &v));
        ck_assert_ptr_null(v);
        ck_assert_int_eq(dm_snapshot_record_from_json(j, &b), 0);
        ck_assert_ptr_null(b.origin_uuid);
        ck_assert_ptr_null(b.loop_device);
        json_object_put(j);
        dm_snapshot_record_done(&a);
        dm_snapshot_record_done(&b);
}
END_TEST

START_TEST(test_record_from_json_rejects_other_versions_missing_and_unknown_keys) {
        DmSnapshotRecord a = sample_record(), b = {};
        json_object *j;

        ck_assert_int_eq(dm_snapshot_record_to_json(&a, &j), 0);
        json_object_object_add(j, "version", json_object_new_int(2));
        ck_assert_int_eq(dm_snapshot_record_from_json(j, &b), -EBADMSG);
        json_object_object_add(j, "version", json_object_new_int(1));
        json_object_object_del(j, "cowFile");
        ck_assert_int_eq(dm_snapshot_record_from_json(j, &b), -EBADMSG);
        json_object_put(j);

        ck_assert_int_eq(dm_snapshot_record_to_json(&a, &j), 0);
        json_object_object_add(j, "surprise", json_object_new_int(1));
        ck_assert_int_eq(dm_snapshot_record_from_json(j, &b), -EBADMSG);
        json_object_put(j);

        ck_assert_int_eq(dm_snapshot_record_from_json(NULL, &b), -EBADMSG);
        j = json_object_new_array();
        ck_assert_int_eq(dm_snapshot_record_from_json(j, &b), -EBADMSG);
        json_object_put(j);
        dm_snapshot_record_done(&a);
}
END_TEST

/* ---------------------------------------------------------------- names */

static bool name_chars_ok(const char *s) {
        for (; *s; s++)
                if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
                      strchr("#+-.:=@_", *s)))
                        return false;
        return true;
}

START_TEST(test_real_names_use_the_uuid_else_the_name_verbatim_when_clean) {
        char *name, *uuid;

        ck_assert_int_eq(dm_snapshot_real_names("CRYPT-LUKS2-abc-data", "data", &name, &uuid), 0);
        ck_assert_str_eq(name, "snapset-real-CRYPT-LUKS2-abc-data");
        ck_assert_str_eq(uuid, "SNAPSET-real-CRYPT-LUKS2-abc-data");
        free(name);
        free(uuid);

        ck_assert_int_eq(dm_snapshot_real_names(NULL, "vol0", &name, &uuid), 0);
        ck_assert_str_eq(name, "snapset-real-vol0");
        ck_assert_str_eq(uuid, "SNAPSET-real-vol0");
        free(name);
        free(uuid);

        ck_assert_int_eq(dm_snapshot_real_names("", "vol0", &name, &uuid), 0);
        ck_assert_str_eq(name, "snapset-real-vol0");
        free(name);
        free(uuid);

        ck_assert_int_eq(dm_snapshot_real_names(NULL, NULL, &name, &uuid), -EINVAL);
}
END_TEST

START_TEST(test_real_names_are_bounded_valid_stable_and_distinct) {
        char longa[300], longb[300], *n1, *u1, *n2, *u2, *n3, *u3;

        memset(longa, 'x', sizeof(longa) - 1);
        longa[sizeof(longa) - 1] = 0;
        memcpy(longb, longa, sizeof(longb));
        longb[sizeof(longb) - 2] = 'y';   /* differs only at the very end */

        ck_assert_int_eq(dm_snapshot_real_names(NULL, longa, &n1, &u1), 0);
        ck_assert_int_eq(dm_snapshot_real_names(NULL, longb, &n2, &u2), 0);
        ck_assert_int_le(strlen(n1), 127);
        ck_assert_int_le(strlen(u1), 128);
        ck_assert(name_chars_ok(n1));
        ck_assert_str_ne(n1, n2);
        ck_assert_int_eq(dm_snapshot_real_names(NULL, longa, &n3, &u3), 0);
        ck_assert_str_eq(n1, n3);
        ck_assert_str_eq(u1, u3);
        free(n1), free(u1), free(n2), free(u2), free(n3), free(u3);

        /* Characters udev would mangle: replaced, and hashed so that "a b" and "a_b" differ. */
        ck_assert_int_eq(dm_snapshot_real_names(NULL, "a b/c\\d", &n1, &u1), 0);
        ck_assert_int_eq(dm_snapshot_real_names(NULL, "a_b_c_d", &n2, &u2), 0);
        ck_assert(name_chars_ok(n1));
        ck_assert(startswith(n1, "snapset-real-a_b_c_d-"));
        ck_assert_str_eq(n2, "snapset-real-a_b_c_d");
        ck_assert_str_ne(n1, n2);
        free(n1), free(u1), free(n2), free(u2);
}
END_TEST

/* ---------------------------------------------------------------- COW size */

START_TEST(test_cow_size_prefers_the_call_then_percent_then_default) {
        const uint64_t MiB = 1024 * 1024, GiB = 1024 * MiB;

        ck_assert_uint_eq(cow_size_compute(100 * MiB, 10, 64 * MiB, 10 * GiB), 100 * MiB);
        ck_assert_uint_eq(cow_size_compute(0, 10, 64 * MiB, 10 * GiB), 1 * GiB);
        ck_assert_uint_eq(cow_size_compute(0, 0, 64 * MiB, 10 * GiB), 64 * MiB);
}
END_TEST

START_TEST(test_cow_size_is_whole_chunks_at_least_the_minimum_and_at_most_a_full_copy) {
        const uint64_t MiB = 1024 * 1024, GiB = 1024 * MiB;
        uint64_t s, chunks;

        ck_assert_uint_eq(cow_size_compute(1, 0, 0, 10 * GiB), COW_SIZE_MIN);
        s = cow_size_compute(COW_SIZE_MIN + 1, 0, 0, 10 * GiB);
        ck_assert_uint_eq(s % COW_CHUNK_BYTES, 0);
        ck_assert_uint_eq(s, COW_SIZE_MIN + COW_CHUNK_BYTES);

        /* More than a copy of every chunk of a 1 GiB origin, with its metadata and the header,
         * could never be used. */
        chunks = GiB / COW_CHUNK_BYTES;
        s = cow_size_compute(100 * GiB, 0, 0, GiB);
        ck_assert_uint_eq(s, (chunks + chunks / 256 + 2) * COW_CHUNK_BYTES);
        ck_assert_uint_eq(cow_size_compute(0, 100, 0, GiB), GiB);

        /* Percent of a huge origin does not overflow. */
        ck_assert_uint_gt(cow_size_compute(0, 50, 0, UINT64_MAX / 2), UINT64_MAX / 8);
}
END_TEST

/* ---------------------------------------------------------------- COW directory check */

static char tmp[] = "/tmp/snapset-dmsnap-XXXXXX";

static void setup_tmp(void) {
        ck_assert_ptr_nonnull(mkdtemp(strcpy(tmp, "/tmp/snapset-dmsnap-XXXXXX")));
}

static void teardown_tmp(void) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", tmp);
        ck_assert_int_eq(system(cmd), 0);
}

/* <tmp>/dev/block/<dev>/slaves/<name>/dev containing <slave>, as sysfs has it (there the slave
 * entry is a symlink to the slave's directory; a directory with a dev file reads the same). */
static void fake_slave(const char *dev, const char *name, const char *slave) {
        char p[512];
        FILE *f;

        snprintf(p, sizeof p, "mkdir -p '%s/dev/block/%s/slaves/%s'", tmp, dev, name);
        ck_assert_int_eq(system(p), 0);
        snprintf(p, sizeof p, "%s/dev/block/%s/slaves/%s/dev", tmp, dev, name);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        fprintf(f, "%s\n", slave);
        fclose(f);
}

START_TEST(test_cow_directory_on_a_set_volume_or_stacked_on_one_conflicts) {
        /* The COW file system is on dm-3 (253:3) = crypt over dm-1 (253:1) = linear over loop0 (7:0). */
        dev_t conflict = 0;
        const dev_t set_direct[] = { makedev(8, 1), makedev(253, 3) };
        const dev_t set_below[] = { makedev(7, 0) };
        const dev_t set_middle[] = { makedev(253, 1) };
        const dev_t set_other[] = { makedev(8, 1), makedev(253, 9) };

        fake_slave("253:3", "dm-1", "253:1");
        fake_slave("253:1", "loop0", "7:0");

        ck_assert_int_eq(cow_device_conflicts(tmp, makedev(253, 3), set_direct, 2, &conflict), 1);
        ck_assert(conflict == makedev(253, 3));
        ck_assert_int_eq(cow_device_conflicts(tmp, makedev(253, 3), set_below, 1, &conflict), 1);
        ck_assert(conflict == makedev(7, 0));
        ck_assert_int_eq(cow_device_conflicts(tmp, makedev(253, 3), set_middle, 1, &conflict), 1);
        ck_assert(conflict == makedev(253, 1));
        ck_assert_int_eq(cow_device_conflicts(tmp, makedev(253, 3), set_other, 2, &conflict), 0);
        /* No block device under the file system (tmpfs): never in the set. */
        ck_assert_int_eq(cow_device_conflicts(tmp, 0, set_direct, 2, &conflict), 0);
}
END_TEST

START_TEST(test_cow_device_walk_stops_on_a_loop_in_a_broken_tree) {
        dev_t conflict = 0;
        const dev_t set[] = { makedev(8, 1) };

        fake_slave("253:1", "dm-2", "253:2");
        fake_slave("253:2", "dm-1", "253:1");
        ck_assert_int_eq(cow_device_conflicts(tmp, makedev(253, 1), set, 1, &conflict), 0);
}
END_TEST

START_TEST(test_cow_file_is_preallocated_and_never_overwritten) {
        char *path;
        struct stat st;

        ck_assert_int_eq(cow_file_path(tmp, "6c1f0e9a-0000-4000-8000-000000000001", &path), 0);
        ck_assert(startswith(path, tmp));
        ck_assert(strstr(path, "/6c1f0e9a-0000-4000-8000-000000000001.cow"));
        ck_assert_int_eq(cow_file_create(path, COW_SIZE_MIN), 0);
        ck_assert_int_eq(stat(path, &st), 0);
        ck_assert_int_eq(st.st_size, COW_SIZE_MIN);
        /* Really allocated, not sparse (tmpfs and every disk file system allocate on fallocate). */
        ck_assert_int_ge((uint64_t) st.st_blocks * 512, COW_SIZE_MIN);
        ck_assert_int_eq(st.st_mode & 07777, 0600);
        ck_assert_int_eq(cow_file_create(path, COW_SIZE_MIN), -EEXIST);
        free(path);
}
END_TEST

/* ---------------------------------------------------------------- tables and statuses */

START_TEST(test_table_lines_format_and_parse) {
        char *t = NULL, *type, *params;
        uint64_t start, length, total;
        const char *line = "  2048   4096 linear 7:0   0  \r";

        ck_assert_int_eq(dm_table_append(&t, 0, 2048, "linear", "7:0 0"), 0);
        ck_assert_int_eq(dm_table_append(&t, 2048, 4096, "error", ""), 0);
        ck_assert_str_eq(t, "0 2048 linear 7:0 0\n2048 4096 error\n");
        ck_assert_int_eq(dm_table_length(t, &total), 0);
        ck_assert_uint_eq(total, 6144);
        free(t);

        ck_assert_int_eq(dm_table_line_parse(line, strlen(line), &start, &length, &type, &params), 0);
        ck_assert_uint_eq(start, 2048);
        ck_assert_uint_eq(length, 4096);
        ck_assert_str_eq(type, "linear");
        ck_assert_str_eq(params, "7:0   0");
        free(type);
        free(params);

        ck_assert_int_eq(dm_table_line_parse("0 8 zero", 8, &start, &length, &type, &params), 0);
        ck_assert_str_eq(params, "");
        free(type);
        free(params);

        ck_assert_int_eq(dm_table_line_parse("0 0 zero", 8, &start, &length, &type, &params), -EINVAL);
        ck_assert_int_eq(dm_table_line_parse("-1 8 zero", 9, &start, &length, &type, &params), -EINVAL);
        ck_assert_int_eq(dm_table_line_parse("0 8", 3, &start, &length, &type, &params), -EINVAL);
        ck_assert_int_eq(dm_table_line_parse("0x0 8 zero", 10, &start, &length, &type, &params), -EINVAL);
        ck_assert_int_eq(dm_table_length("", &total), -EINVAL);
        ck_assert_int_eq(dm_table_length("0 8 zero\nnonsense\n", &total), -EINVAL);
}
END_TEST

START_TEST(test_snapshot_tables_are_what_the_kernel_expects) {
        char *t;
        unsigned ma, mi;

        ck_assert_int_eq(dm_snapshot_origin_table(1228800, 253, 7, &t), 0);
        ck_assert_str_eq(t, "0 1228800 snapshot-origin 253:7\n");
        ck_assert_int_eq(dm_snapshot_origin_table_parse(t, &ma, &mi), 1);
        ck_assert_uint_eq(ma, 253);
        ck_assert_uint_eq(mi, 7);
        free(t);

        ck_assert_int_eq(dm_snapshot_snapshot_table(1228800, 253, 7, 7, 3, 8, &t), 0);
        ck_assert_str_eq(t, "0 1228800 snapshot 253:7 7:3 P 8\n");
        ck_assert(dm_snapshot_table_uses_real(t, 253, 7));
        ck_assert(!dm_snapshot_table_uses_real(t, 7, 3));
        ck_assert_int_eq(dm_snapshot_origin_table_parse(t, &ma, &mi), 0);
        free(t);

        ck_assert_int_eq(dm_snapshot_origin_table_parse("0 8 linear 7:0 0\n", &ma, &mi), 0);
        ck_assert_int_eq(dm_snapshot_origin_table_parse("", &ma, &mi), 0);
        ck_assert_int_eq(dm_snapshot_origin_table_parse("0 8 snapshot-origin 253:1\n8 8 linear 7:0 0\n",
                                                        &ma, &mi), 0);
        ck_assert_int_eq(dm_snapshot_origin_table_parse("0 8 snapshot-origin /dev/x\n", &ma, &mi), -EINVAL);
        ck_assert(!dm_snapshot_table_uses_real("0 8 linear 253:7 0\n", 253, 7));
}
END_TEST

START_TEST(test_merge_tables_and_the_merging_record) {
        DmSnapshotRecord a = sample_record(), b = {};
        json_object *j;
        unsigned ma, mi;
        char *t;

        /* The origin's table while a snapshot merges: the snapshot's arguments, another target. */
        ck_assert_int_eq(dm_snapshot_merge_table(1228800, 253, 7, 7, 3, 8, &t), 0);
        ck_assert_str_eq(t, "0 1228800 snapshot-merge 253:7 7:3 P 8\n");
        ck_assert_int_eq(dm_snapshot_table_parse(t, "snapshot-merge", &ma, &mi), 1);
        ck_assert_uint_eq(ma, 253);
        ck_assert_uint_eq(mi, 7);
        ck_assert_int_eq(dm_snapshot_origin_table_parse(t, &ma, &mi), 0);
        ck_assert(dm_snapshot_table_uses_real(t, 253, 7));
        free(t);
        ck_assert_int_eq(dm_snapshot_table_parse("0 8 snapshot-merge 253:7\n", "snapshot-merge", &ma, &mi), -EINVAL);
        ck_assert_int_eq(dm_snapshot_table_parse("0 8 snapshot-origin 253:7 7:3 P 8\n", "snapshot-origin", &ma, &mi),
                         -EINVAL);

        /* "merging" and where it began survive the record's round trip; absent means not merging. */
        ck_assert_int_eq(dm_snapshot_record_to_json(&a, &j), 0);
        ck_assert_ptr_null(json_object_object_get(j, "merging"));
        json_object_put(j);
        a.merging = true;
        a.merge_start_sectors = 4096;
        ck_assert_int_eq(dm_snapshot_record_to_json(&a, &j), 0);
        ck_assert_int_eq(dm_snapshot_record_from_json(j, &b), 0);
        ck_assert(b.merging);
        ck_assert_uint_eq(b.merge_start_sectors, 4096);
        json_object_put(j);
        dm_snapshot_record_done(&a);
        dm_snapshot_record_done(&b);
}
END_TEST

START_TEST(test_snapshot_status_gives_use_or_the_reason_it_is_unusable) {
        uint64_t used, total, meta;
        const char *state;

        ck_assert_int_eq(dm_snapshot_status_parse("16/65536 16", &used, &total, &meta, &state), 0);
        ck_assert_uint_eq(used, 16);
        ck_assert_uint_eq(total, 65536);
        ck_assert_uint_eq(meta, 16);
        ck_assert_ptr_null(state);

        ck_assert_int_eq(dm_snapshot_status_parse("Invalid", &used, &total, &meta, &state), -EINVAL);
        ck_assert_str_eq(state, "Invalid");
        ck_assert_int_eq(dm_snapshot_status_parse("Overflow", &used, &total, &meta, &state), -EINVAL);
        ck_assert_str_eq(state, "Overflow");
        ck_assert_int_eq(dm_snapshot_status_parse("Merge failed", &used, &total, &meta, &state), -EINVAL);
        ck_assert_int_eq(dm_snapshot_status_parse("16/0 16", &used, &total, &meta, &state), -EBADMSG);
        ck_assert_int_eq(dm_snapshot_status_parse("17/16 1", &used, &total, &meta, &state), -EBADMSG);
        ck_assert_int_eq(dm_snapshot_status_parse("16/65536 16 junk", &used, &total, &meta, &state), -EBADMSG);
        ck_assert_int_eq(dm_snapshot_status_parse("", &used, &total, &meta, &state), -EBADMSG);
}
END_TEST

Suite *suite_dm_snapshot(void) {
        Suite *s = suite_create("dm-snapshot");
        TCase *tc = tcase_create("pure");
        TCase *files = tcase_create("files");

        tcase_add_test(tc, test_record_survives_a_json_round_trip);
        tcase_add_test(tc, test_merge_tables_and_the_merging_record);
        tcase_add_test(tc, test_record_without_uuid_or_loop_device_uses_nulls);
        tcase_add_test(tc, test_record_from_json_rejects_other_versions_missing_and_unknown_keys);
        tcase_add_test(tc, test_real_names_use_the_uuid_else_the_name_verbatim_when_clean);
        tcase_add_test(tc, test_real_names_are_bounded_valid_stable_and_distinct);
        tcase_add_test(tc, test_cow_size_prefers_the_call_then_percent_then_default);
        tcase_add_test(tc, test_cow_size_is_whole_chunks_at_least_the_minimum_and_at_most_a_full_copy);
        tcase_add_test(tc, test_table_lines_format_and_parse);
        tcase_add_test(tc, test_snapshot_tables_are_what_the_kernel_expects);
        tcase_add_test(tc, test_snapshot_status_gives_use_or_the_reason_it_is_unusable);
        suite_add_tcase(s, tc);

        tcase_add_checked_fixture(files, setup_tmp, teardown_tmp);
        tcase_add_test(files, test_cow_directory_on_a_set_volume_or_stacked_on_one_conflicts);
        tcase_add_test(files, test_cow_device_walk_stops_on_a_loop_in_a_broken_tree);
        tcase_add_test(files, test_cow_file_is_preallocated_and_never_overwritten);
        suite_add_tcase(s, files);
        return s;
}
