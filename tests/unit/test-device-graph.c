/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The device graph (daemon/device-graph.c) on a fake sysfs tree: holders and partitions, directly
 * and through several layers, each device once. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "device-graph.h"
#include "macro.h"

static char root[] = "/tmp/snapset-graph-XXXXXX";

static void put(const char *path, const char *content) {
        char p[512], cmd[600];
        FILE *f;

        snprintf(p, sizeof p, "%s/%s", root, path);
        snprintf(cmd, sizeof cmd, "mkdir -p \"$(dirname '%s')\"", p);
        ck_assert_int_eq(system(cmd), 0);
        f = fopen(p, "we");
        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        fclose(f);
}

/* A disk 8:0 with partition 8:1; on 8:1 a dm device 253:0; on that one 253:1 and 253:2 (both
 * via holders/), and 253:2 also holds... nothing. A loop 7:0 with nothing on it. */
static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(strcpy(root, "/tmp/snapset-graph-XXXXXX")));
        put("dev/block/8:0/dev", "8:0\n");
        put("dev/block/8:0/sda1/partition", "1\n");
        put("dev/block/8:0/sda1/dev", "8:1\n");
        put("dev/block/8:0/queue/dev", "999:999\n");          /* a subdirectory, not a partition */
        put("dev/block/8:1/holders/dm-0/dev", "253:0\n");
        put("dev/block/253:0/holders/dm-1/dev", "253:1\n");
        put("dev/block/253:0/holders/dm-2/dev", "253:2\n");
        put("dev/block/253:1/holders/dm-2/dev", "253:2\n");   /* reached twice */
        put("dev/block/7:0/dev", "7:0\n");
}

static void teardown(void) {
        char cmd[300];

        snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
        ck_assert_int_eq(system(cmd), 0);
}

static bool has(const dev_t *a, size_t n, dev_t d) {
        for (size_t i = 0; i < n; i++)
                if (a[i] == d)
                        return true;
        return false;
}

START_TEST(test_everything_above_a_disk_each_once) {
        _cleanup_free_ dev_t *a = NULL;
        size_t n = 0;

        ck_assert_int_eq(device_graph_above(root, makedev(8, 0), &a, &n), 0);
        ck_assert_uint_eq(n, 4);
        ck_assert(has(a, n, makedev(8, 1)));
        ck_assert(has(a, n, makedev(253, 0)));
        ck_assert(has(a, n, makedev(253, 1)));
        ck_assert(has(a, n, makedev(253, 2)));
}
END_TEST

START_TEST(test_nothing_above_a_top_device_or_a_lone_one) {
        _cleanup_free_ dev_t *a = NULL, *b = NULL;
        size_t n = 9, m = 9;

        ck_assert_int_eq(device_graph_above(root, makedev(253, 2), &a, &n), 0);
        ck_assert_uint_eq(n, 0);
        ck_assert_int_eq(device_graph_above(root, makedev(7, 0), &b, &m), 0);
        ck_assert_uint_eq(m, 0);
}
END_TEST

START_TEST(test_is_above_goes_one_way_only) {
        ck_assert_int_eq(device_graph_is_above(root, makedev(253, 1), makedev(8, 0)), 1);
        ck_assert_int_eq(device_graph_is_above(root, makedev(253, 2), makedev(253, 1)), 1);
        ck_assert_int_eq(device_graph_is_above(root, makedev(8, 0), makedev(253, 1)), 0);
        ck_assert_int_eq(device_graph_is_above(root, makedev(7, 0), makedev(8, 0)), 0);
        /* A device that does not exist has nothing above it. */
        ck_assert_int_eq(device_graph_is_above(root, makedev(8, 0), makedev(1, 99)), 0);
}
END_TEST

START_TEST(test_holders_are_the_direct_ones_without_partitions) {
        _cleanup_free_ dev_t *a = NULL, *b = NULL;
        size_t n = 9, m = 9;

        ck_assert_int_eq(device_graph_holders(root, makedev(253, 0), &a, &n), 0);
        ck_assert_uint_eq(n, 2);
        ck_assert(has(a, n, makedev(253, 1)));
        ck_assert(has(a, n, makedev(253, 2)));
        /* A disk's partitions are above it, but do not hold it. */
        ck_assert_int_eq(device_graph_holders(root, makedev(8, 0), &b, &m), 0);
        ck_assert_uint_eq(m, 0);
}
END_TEST

Suite *suite_device_graph(void);
Suite *suite_device_graph(void) {
        Suite *s = suite_create("device-graph");
        TCase *tc = tcase_create("sysfs");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_everything_above_a_disk_each_once);
        tcase_add_test(tc, test_nothing_above_a_top_device_or_a_lone_one);
        tcase_add_test(tc, test_is_above_goes_one_way_only);
        tcase_add_test(tc, test_holders_are_the_direct_ones_without_partitions);
        suite_add_tcase(s, tc);
        return s;
}
