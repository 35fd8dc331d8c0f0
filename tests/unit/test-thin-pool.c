/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Thin pools as the kernel shows them (providers/thin-pool.c), and the dm-thin provider's
 * record (providers/dm-thin.h): status and table lines, when a snapshot is refused and what the
 * message says, and which thin device id a new snapshot gets. What needs device-mapper runs in
 * the VM (tests/vm/tests/80-*, 81-*). */

#include <check.h>
#include <stdio.h>

#include "macro.h"
#include "providers/dm-thin.h"
#include "providers/thin-pool.h"

/* ---------------------------------------------------------------- status and tables */

START_TEST(test_pool_status_gives_the_numbers_mode_and_flags) {
        ThinPoolStatus s;

        /* As measured on a pool LVM does not manage (lvm-thin-facts.md). */
        ck_assert_int_eq(thin_pool_status_parse("3 114/1024 618/6400 - rw discard_passdown queue_if_no_space - 256", &s), 0);
        ck_assert_uint_eq(s.transaction_id, 3);
        ck_assert_uint_eq(s.meta_used, 114);
        ck_assert_uint_eq(s.meta_total, 1024);
        ck_assert_uint_eq(s.data_used, 618);
        ck_assert_uint_eq(s.data_total, 6400);
        ck_assert_int_eq(s.mode, THIN_POOL_RW);
        ck_assert(!s.needs_check);
        ck_assert(!s.error_if_no_space);
        ck_assert_uint_eq(s.meta_low_watermark, 256);

        ck_assert_int_eq(thin_pool_status_parse("7 10/20 30/40 55 out_of_data_space no_discard_passdown "
                                                "error_if_no_space needs_check 4", &s), 0);
        ck_assert_int_eq(s.mode, THIN_POOL_OUT_OF_DATA_SPACE);
        ck_assert(s.needs_check);
        ck_assert(s.error_if_no_space);

        ck_assert_int_eq(thin_pool_status_parse("0 1/2 3/4 - ro discard_passdown queue_if_no_space -", &s), 0);
        ck_assert_int_eq(s.mode, THIN_POOL_RO);
        ck_assert_uint_eq(s.meta_low_watermark, 0);

        ck_assert_int_eq(thin_pool_status_parse("Fail", &s), 0);
        ck_assert_int_eq(s.mode, THIN_POOL_FAIL);
        ck_assert_int_eq(thin_pool_status_parse("Error", &s), 0);
        ck_assert_int_eq(s.mode, THIN_POOL_FAIL);
}
END_TEST

START_TEST(test_pool_status_rejects_what_is_not_one) {
        static const char *const bad[] = {
                "", "3", "3 114/1024 618/6400 - rw", "x 1/2 3/4 - rw discard_passdown queue_if_no_space -",
                "3 2/1 3/4 - rw discard_passdown queue_if_no_space -",           /* used > total */
                "3 1/2 3/4 - sleepy discard_passdown queue_if_no_space -",       /* unknown mode */
                "3 1/2 3/4 - rw discard_passdown maybe -",
                "3 1/2 3/4 - rw discard_passdown queue_if_no_space perhaps",
                "-3 1/2 3/4 - rw discard_passdown queue_if_no_space -",
        };
        ThinPoolStatus s;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                ck_assert_msg(thin_pool_status_parse(bad[i], &s) == -EBADMSG, "accepted \"%s\"", bad[i]);
}
END_TEST

START_TEST(test_pool_and_thin_tables_parse) {
        unsigned a, b, c, d, pma, pmi;
        uint64_t block;
        uint32_t id;
        char *ext = NULL;

        ck_assert_int_eq(thin_pool_table_parse("253:1 253:2 128 0 1 skip_block_zeroing", &a, &b, &c, &d, &block), 0);
        ck_assert_uint_eq(a, 253);
        ck_assert_uint_eq(b, 1);
        ck_assert_uint_eq(c, 253);
        ck_assert_uint_eq(d, 2);
        ck_assert_uint_eq(block, 128);
        ck_assert_int_eq(thin_pool_table_parse("253:1 253:2 0 0", &a, &b, &c, &d, &block), -EBADMSG);
        ck_assert_int_eq(thin_pool_table_parse("253:1 253:2", &a, &b, &c, &d, &block), -EBADMSG);

        ck_assert_int_eq(thin_table_parse("253:3 7", &pma, &pmi, &id, &ext), 0);
        ck_assert_uint_eq(pma, 253);
        ck_assert_uint_eq(pmi, 3);
        ck_assert_uint_eq(id, 7);
        ck_assert_ptr_null(ext);
        ck_assert_int_eq(thin_table_parse("253:3 16777215 7:0", &pma, &pmi, &id, &ext), 0);
        ck_assert_uint_eq(id, THIN_DEV_ID_MAX);
        ck_assert_str_eq(ext, "7:0");
        free(ext);
        ck_assert_int_eq(thin_table_parse("253:3 16777216", &pma, &pmi, &id, &ext), -EBADMSG);
        ck_assert_int_eq(thin_table_parse("253:3", &pma, &pmi, &id, &ext), -EBADMSG);
        ck_assert_int_eq(thin_table_parse("pool 3", &pma, &pmi, &id, &ext), -EBADMSG);
        ck_assert_int_eq(thin_table_parse("253:3 3 bad", &pma, &pmi, &id, &ext), -EBADMSG);
}
END_TEST

/* ---------------------------------------------------------------- space */

START_TEST(test_a_healthy_pool_with_room_takes_a_snapshot) {
        ThinPoolStatus s = { .meta_used = 100, .meta_total = 1024, .data_used = 600, .data_total = 6400 };
        char msg[400];

        ck_assert_int_eq(thin_pool_check_space(&s, "vg/pool", 65536, 95, msg, sizeof msg), 0);
}
END_TEST

START_TEST(test_a_full_pool_is_insufficient_storage_with_the_numbers) {
        ThinPoolStatus s = { .meta_used = 100, .meta_total = 1024, .data_used = 6100, .data_total = 6400 };
        char msg[400];

        ck_assert_int_eq(thin_pool_check_space(&s, "vg/pool", 65536, 95, msg, sizeof msg), -ENOSPC);
        ck_assert_ptr_nonnull(strstr(msg, "vg/pool"));
        ck_assert_ptr_nonnull(strstr(msg, "95% of its data space"));
        ck_assert_ptr_nonnull(strstr(msg, "6100 of 6400 blocks"));
        ck_assert_ptr_nonnull(strstr(msg, "381.2 MiB of 400.0 MiB"));
        ck_assert_ptr_nonnull(strstr(msg, "extend the pool"));

        s.data_used = 10;
        s.mode = THIN_POOL_OUT_OF_DATA_SPACE;
        ck_assert_int_eq(thin_pool_check_space(&s, "p", 65536, 95, msg, sizeof msg), -ENOSPC);
        ck_assert_ptr_nonnull(strstr(msg, "out of data space"));
}
END_TEST

START_TEST(test_full_metadata_or_below_the_low_water_mark_is_insufficient_storage) {
        ThinPoolStatus s = { .meta_used = 1000, .meta_total = 1024, .data_used = 10, .data_total = 6400 };
        char msg[400];

        ck_assert_int_eq(thin_pool_check_space(&s, "tp", 65536, 95, msg, sizeof msg), -ENOSPC);
        ck_assert_ptr_nonnull(strstr(msg, "metadata space"));
        ck_assert_ptr_nonnull(strstr(msg, "1000 of 1024 blocks"));
        /* 50% used, but fewer blocks free than the pool's own low-water mark. */
        s = (ThinPoolStatus) { .meta_used = 512, .meta_total = 1024, .data_used = 1, .data_total = 2,
                               .meta_low_watermark = 600 };
        ck_assert_int_eq(thin_pool_check_space(&s, "tp", 65536, 95, msg, sizeof msg), -ENOSPC);
        ck_assert_ptr_nonnull(strstr(msg, "low-water mark 600"));
        /* Read-only because the metadata filled up: still a question of space. */
        s = (ThinPoolStatus) { .meta_used = 64, .meta_total = 64, .data_used = 1, .data_total = 2, .mode = THIN_POOL_RO };
        ck_assert_int_eq(thin_pool_check_space(&s, "tp", 65536, 95, msg, sizeof msg), -ENOSPC);
        ck_assert_ptr_nonnull(strstr(msg, "out of metadata space"));
}
END_TEST

START_TEST(test_a_failed_read_only_or_unchecked_pool_is_refused_with_the_reason) {
        ThinPoolStatus s = { .meta_used = 1, .meta_total = 1024, .data_used = 1, .data_total = 64 };
        char msg[400];

        s.mode = THIN_POOL_FAIL;
        ck_assert_int_eq(thin_pool_check_space(&s, "tp", 65536, 95, msg, sizeof msg), -EROFS);
        ck_assert_ptr_nonnull(strstr(msg, "failed"));
        s.mode = THIN_POOL_RO;
        ck_assert_int_eq(thin_pool_check_space(&s, "tp", 65536, 95, msg, sizeof msg), -EROFS);
        ck_assert_ptr_nonnull(strstr(msg, "read-only"));
        s.mode = THIN_POOL_RW;
        s.needs_check = true;
        ck_assert_int_eq(thin_pool_check_space(&s, "tp", 65536, 95, msg, sizeof msg), -EROFS);
        ck_assert_ptr_nonnull(strstr(msg, "thin_check"));
}
END_TEST

/* ---------------------------------------------------------------- ids */

START_TEST(test_new_ids_go_above_every_id_in_use_and_wrap_to_the_lowest_free) {
        uint32_t id;

        ck_assert_int_eq(thin_pick_device_id(NULL, 0, &id), 0);
        ck_assert_uint_eq(id, 0);
        ck_assert_int_eq(thin_pick_device_id((uint32_t[]) { 5, 0, 3 }, 3, &id), 0);
        ck_assert_uint_eq(id, 6);
        ck_assert_int_eq(thin_pick_device_id((uint32_t[]) { THIN_DEV_ID_MAX, 0, 1, 3 }, 4, &id), 0);
        ck_assert_uint_eq(id, 2);
        ck_assert_int_eq(thin_pick_device_id((uint32_t[]) { THIN_DEV_ID_MAX, 1 }, 2, &id), 0);
        ck_assert_uint_eq(id, 0);
        ck_assert_int_eq(thin_pick_device_id((uint32_t[]) { THIN_DEV_ID_MAX, 0, 0, 1 }, 4, &id), 0);
        ck_assert_uint_eq(id, 2);
}
END_TEST

/* ---------------------------------------------------------------- the dm-thin record */

static DmThinRecord sample(void) {
        return (DmThinRecord) {
                .origin_name = strdup("data"), .origin_uuid = strdup("CRYPT-data"),
                .pool_name = strdup("tpool"), .pool_uuid = NULL,
                .origin_id = 3, .id_picked = true, .snapshot_id = 17, .length_sectors = 2097152,
                .snapshot_name = strdup("snapset-6c1f0e9a-0000-4000-8000-000000000001"),
                .snapshot_uuid = strdup("SNAPSET-6c1f0e9a-0000-4000-8000-000000000001"),
                .created = true,
        };
}

START_TEST(test_dm_thin_record_survives_a_round_trip) {
        DmThinRecord a = sample(), b = {};
        json_object *j, *re;

        ck_assert_int_eq(dm_thin_record_to_json(&a, &j), 0);
        re = json_tokener_parse(json_object_to_json_string(j));
        ck_assert_int_eq(dm_thin_record_from_json(re, &b), 0);
        ck_assert_str_eq(b.origin_name, "data");
        ck_assert_str_eq(b.origin_uuid, "CRYPT-data");
        ck_assert_str_eq(b.pool_name, "tpool");
        ck_assert_ptr_null(b.pool_uuid);
        ck_assert_uint_eq(b.origin_id, 3);
        ck_assert(b.id_picked);
        ck_assert_uint_eq(b.snapshot_id, 17);
        ck_assert_uint_eq(b.length_sectors, 2097152);
        ck_assert_str_eq(b.snapshot_name, a.snapshot_name);
        ck_assert(b.created);
        json_object_put(j);
        json_object_put(re);
        dm_thin_record_done(&a);
        dm_thin_record_done(&b);
}
END_TEST

START_TEST(test_dm_thin_record_without_an_id_names_nothing_in_the_pool) {
        DmThinRecord a = sample(), b = {};
        json_object *j, *v;

        /* Written before pre_commit: no id yet, so recovery must not delete any id. */
        a.id_picked = false;
        a.created = false;
        ck_assert_int_eq(dm_thin_record_to_json(&a, &j), 0);
        ck_assert(json_object_object_get_ex(j, "snapshotThinId", &v));
        ck_assert_ptr_null(v);
        ck_assert_int_eq(dm_thin_record_from_json(j, &b), 0);
        ck_assert(!b.id_picked);
        dm_thin_record_done(&b);
        /* "created" without an id is a contradiction, not a record. */
        json_object_object_add(j, "created", json_object_new_boolean(true));
        ck_assert_int_eq(dm_thin_record_from_json(j, &b), -EBADMSG);
        json_object_put(j);
        dm_thin_record_done(&a);
}
END_TEST

START_TEST(test_dm_thin_record_rejects_other_versions_and_bad_ids) {
        DmThinRecord a = sample(), b = {};
        json_object *j;

        ck_assert_int_eq(dm_thin_record_to_json(&a, &j), 0);
        json_object_object_add(j, "snapshotThinId", json_object_new_int64(THIN_DEV_ID_MAX + 1LL));
        ck_assert_int_eq(dm_thin_record_from_json(j, &b), -EBADMSG);
        json_object_object_add(j, "snapshotThinId", json_object_new_int64(1));
        json_object_object_add(j, "version", json_object_new_int(2));
        ck_assert_int_eq(dm_thin_record_from_json(j, &b), -EBADMSG);
        json_object_object_add(j, "version", json_object_new_int(1));
        json_object_object_add(j, "surprise", json_object_new_int(1));
        ck_assert_int_eq(dm_thin_record_from_json(j, &b), -EBADMSG);
        ck_assert_int_eq(dm_thin_record_from_json(NULL, &b), -EBADMSG);
        json_object_put(j);
        dm_thin_record_done(&a);
}
END_TEST

Suite *suite_thin_pool(void);
Suite *suite_thin_pool(void) {
        Suite *s = suite_create("thin-pool");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_pool_status_gives_the_numbers_mode_and_flags);
        tcase_add_test(tc, test_pool_status_rejects_what_is_not_one);
        tcase_add_test(tc, test_pool_and_thin_tables_parse);
        tcase_add_test(tc, test_a_healthy_pool_with_room_takes_a_snapshot);
        tcase_add_test(tc, test_a_full_pool_is_insufficient_storage_with_the_numbers);
        tcase_add_test(tc, test_full_metadata_or_below_the_low_water_mark_is_insufficient_storage);
        tcase_add_test(tc, test_a_failed_read_only_or_unchecked_pool_is_refused_with_the_reason);
        tcase_add_test(tc, test_new_ids_go_above_every_id_in_use_and_wrap_to_the_lowest_free);
        tcase_add_test(tc, test_dm_thin_record_survives_a_round_trip);
        tcase_add_test(tc, test_dm_thin_record_without_an_id_names_nothing_in_the_pool);
        tcase_add_test(tc, test_dm_thin_record_rejects_other_versions_and_bad_ids);
        suite_add_tcase(s, tc);
        return s;
}
