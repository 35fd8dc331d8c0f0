/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Provider selection as a pure function of a device and of which providers are usable: every
 * kind of device (plain, LVM, LVM-internal, thin, thin pool, classic snapshot, snapset's own)
 * against every combination that matters, and the reasons a user reads when none applies. Plus
 * the LVM name split and the device-mapper probe on a machine without device-mapper. */

#include <check.h>
#include <stdarg.h>
#include <sys/stat.h>

#include "blockdev.h"
#include "macro.h"
#include "providers/dm.h"
#include "providers/provider.h"

#define NO_DM "the kernel has no device-mapper (test)"
#define NO_LVM "the lvm command is not installed (test)"

/* A device built in the test; free with blockdev_done(). targets: NULL-terminated list, or
 * UNKNOWN_TABLE for "the table could not be read". */
static const char *const UNKNOWN_TABLE[] = { NULL };

static BlockDevice dm_device(const char *dm_name, const char *uuid, const char *const *targets) {
        BlockDevice d = {
                .type = BLOCK_DEVICE_DM,
                .major = 253,
                .name = strdup("dm-0"),
                .dm_name = strdup(dm_name),
                .dm_uuid = uuid ? strdup(uuid) : NULL,
        };

        if (targets != UNKNOWN_TABLE) {
                d.dm_targets = calloc(1, sizeof(char *));
                ck_assert_ptr_nonnull(d.dm_targets);
                for (const char *const *t = targets; *t; t++)
                        ck_assert_int_eq(blockdev_strv_push(&d.dm_targets, *t), 0);
        }
        if (uuid && startswith(uuid, "LVM-"))
                (void) dm_lvm_name_split(dm_name, &d.lvm_vg, &d.lvm_lv, &d.lvm_layer);
        return d;
}

static BlockDevice plain_device(BlockDeviceType type, const char *name, size_t n_holders) {
        return (BlockDevice) {
                .type = type,
                .major = 8,
                .name = strdup(name),
                .n_holders = n_holders,
        };
}

/* The built-ins in priority order, usable or not as given. */
static void status_of(ProviderStatus st[3], bool lvm, bool thin, bool snapshot) {
        st[0] = (ProviderStatus) { &provider_lvm, lvm, lvm ? NULL : (char *) NO_LVM };
        st[1] = (ProviderStatus) { &provider_dm_thin, thin, thin ? NULL : (char *) NO_DM };
        st[2] = (ProviderStatus) { &provider_dm_snapshot, snapshot, snapshot ? NULL : (char *) NO_DM };
}

/* Runs the selection; returns the provider's name, or NULL and the reason in *reason. */
static const char *select_for(const BlockDevice *d, bool lvm, bool thin, bool snapshot, char **reason) {
        ProviderStatus st[3];
        const Provider *p = NULL;
        int r;

        status_of(st, lvm, thin, snapshot);
        *reason = NULL;
        r = provider_select(st, 3, d, &p, reason);
        ck_assert_int_ge(r, 0);
        if (r > 0) {
                ck_assert_ptr_null(*reason);
                return p->name;
        }
        ck_assert_ptr_nonnull(*reason);
        return NULL;
}

static void assert_selects(const BlockDevice *d, bool lvm, bool thin, bool snapshot, const char *expected) {
        _cleanup_free_ char *reason = NULL;
        const char *got = select_for(d, lvm, thin, snapshot, &reason);

        ck_assert_msg(got && streq(got, expected), "expected %s, got %s (%s)", expected, strna(got),
                      strna(reason));
}

static void assert_refused(const BlockDevice *d, bool lvm, bool thin, bool snapshot, const char *needle) {
        _cleanup_free_ char *reason = NULL;
        const char *got = select_for(d, lvm, thin, snapshot, &reason);

        ck_assert_msg(!got, "expected no provider, got %s", strna(got));
        ck_assert_msg(strstr(reason, needle), "reason \"%s\" lacks \"%s\"", reason, needle);
}

#define LVM_UUID "LVM-Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb3dEf6hIj9kLm2oPq5sTu8wXy1zAb3dEf6h"
#define THIN_TARGETS ((const char *const[]) { "thin", NULL })
#define LINEAR_TARGETS ((const char *const[]) { "linear", NULL })

START_TEST(test_builtin_providers_are_lvm_dm_thin_dm_snapshot_in_ascending_priority) {
        const Provider *const *p;
        size_t n;

        p = provider_builtins(&n);
        ck_assert_uint_eq(n, 3);
        ck_assert_str_eq(p[0]->name, "lvm");
        ck_assert_str_eq(p[1]->name, "dm-thin");
        ck_assert_str_eq(p[2]->name, "dm-snapshot");
        for (size_t i = 0; i < n; i++) {
                ck_assert_str_eq(p[i]->kind, "builtin");
                ck_assert_ptr_nonnull(p[i]->ops->probe);
                ck_assert_ptr_nonnull(p[i]->ops->is_volume_supported);
                /* A provider takes snapshots completely or not at all: no half-implemented
                 * interface that pretends to work. */
                {
                        const ProviderOps *o = p[i]->ops;
                        bool any = o->begin_prepare_snapshot || o->commit_snapshots || o->abort_snapshots ||
                                   o->release_writes || o->delete_snapshot || o->recover;
                        bool all = o->begin_prepare_snapshot && o->commit_snapshots && o->abort_snapshots &&
                                   o->release_writes && o->delete_snapshot && o->recover;
                        ck_assert_msg(any == all, "%s implements only part of the snapshot methods", p[i]->name);
                }
                if (i > 0)
                        ck_assert_int_lt(p[i - 1]->priority, p[i]->priority);
        }
}
END_TEST

START_TEST(test_plain_disk_is_not_a_device_mapper_device_even_with_every_provider_usable) {
        BlockDevice d = plain_device(BLOCK_DEVICE_DISK, "sda", 0);

        assert_refused(&d, true, true, true, "not a device-mapper device: put it under device-mapper");
        assert_refused(&d, false, false, false, "not a device-mapper device: put it under device-mapper");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_partition_with_devices_on_it_says_to_snapshot_those) {
        BlockDevice d = plain_device(BLOCK_DEVICE_PART, "sda2", 2);

        assert_refused(&d, true, true, true, "2 devices are stacked on it: snapshot those instead");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_lvm_volume_goes_to_lvm_when_lvm_is_usable) {
        BlockDevice d = dm_device("vg0-root", LVM_UUID, LINEAR_TARGETS);

        ck_assert_str_eq(d.lvm_vg, "vg0");
        ck_assert_str_eq(d.lvm_lv, "root");
        assert_selects(&d, true, true, true, "lvm");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_lvm_volume_without_usable_lvm_says_why_and_is_not_given_to_dm_providers) {
        BlockDevice d = dm_device("vg0-root", LVM_UUID, LINEAR_TARGETS);

        assert_refused(&d, false, true, true, "the lvm provider would take it, but " NO_LVM);
        blockdev_done(&d);
}
END_TEST

START_TEST(test_lvm_thin_volume_goes_to_lvm_not_dm_thin) {
        BlockDevice d = dm_device("vg0-thin1", LVM_UUID, THIN_TARGETS);

        assert_selects(&d, true, true, true, "lvm");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_lvm_layer_device_is_refused_as_internal) {
        BlockDevice d = dm_device("vg0-root-real", LVM_UUID "-real", LINEAR_TARGETS);

        ck_assert_str_eq(d.lvm_layer, "real");
        assert_refused(&d, true, true, true, "internal device of LVM logical volume vg0/root (layer \"real\")");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_lvm_hidden_sub_volume_is_refused) {
        BlockDevice d = dm_device("vg0-pool_tdata", LVM_UUID, LINEAR_TARGETS);

        assert_refused(&d, true, true, true, "hidden LVM sub-volume (vg0/pool_tdata)");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_lvm_classic_snapshot_is_refused) {
        BlockDevice d = dm_device("vg0-snap1", LVM_UUID, ((const char *const[]) { "snapshot", NULL }));

        assert_refused(&d, true, true, true, "LVM cannot snapshot a snapshot");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_lvm_names_with_dashes_are_split_as_lvm_writes_them) {
        _cleanup_free_ char *vg = NULL, *lv = NULL, *layer = NULL;

        ck_assert_int_eq(dm_lvm_name_split("my--vg-my--lv-tpool", &vg, &lv, &layer), 0);
        ck_assert_str_eq(vg, "my-vg");
        ck_assert_str_eq(lv, "my-lv");
        ck_assert_str_eq(layer, "tpool");
}
END_TEST

START_TEST(test_lvm_name_without_a_logical_volume_is_invalid) {
        char *vg = NULL, *lv = NULL, *layer = NULL;

        ck_assert_int_eq(dm_lvm_name_split("novolume", &vg, &lv, &layer), -EINVAL);
        ck_assert_ptr_null(vg);
        ck_assert_ptr_null(lv);
}
END_TEST

START_TEST(test_thin_volume_goes_to_dm_thin) {
        BlockDevice d = dm_device("thin1", "THIN-1", THIN_TARGETS);

        assert_selects(&d, true, true, true, "dm-thin");
        assert_selects(&d, false, true, false, "dm-thin");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_thin_volume_without_usable_dm_thin_says_why) {
        BlockDevice d = dm_device("thin1", NULL, THIN_TARGETS);

        assert_refused(&d, true, false, true, "the dm-thin provider would take it, but " NO_DM);
        blockdev_done(&d);
}
END_TEST

START_TEST(test_thin_pool_is_refused_as_not_a_volume) {
        BlockDevice d = dm_device("pool", NULL, ((const char *const[]) { "thin-pool", NULL }));

        assert_refused(&d, true, true, true, "a thin pool, not a thin volume");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_thin_mixed_with_linear_falls_back_to_dm_snapshot) {
        BlockDevice d = dm_device("mixed", NULL, ((const char *const[]) { "thin", "linear", NULL }));

        assert_selects(&d, true, true, true, "dm-snapshot");
        /* With dm-snapshot unusable, the first explanation is the one that applies. */
        assert_refused(&d, true, true, false, "the dm-snapshot provider would take it, but " NO_DM);
        blockdev_done(&d);
}
END_TEST

START_TEST(test_linear_striped_and_multipath_devices_go_to_dm_snapshot) {
        static const char *const kinds[] = { "linear", "striped", "snapshot-origin", "multipath" };

        for (size_t i = 0; i < ELEMENTSOF(kinds); i++) {
                BlockDevice d = dm_device("data", "mpath-0123", ((const char *const[]) { kinds[i], NULL }));

                assert_selects(&d, true, true, true, "dm-snapshot");
                blockdev_done(&d);
        }
}
END_TEST

/* Its snapshot would hold plaintext, and its table the key: the device under it is the one. */
START_TEST(test_a_dm_crypt_device_is_refused_with_the_device_under_it_as_advice) {
        BlockDevice d = dm_device("data", "CRYPT-LUKS2-0123", ((const char *const[]) { "crypt", NULL }));

        assert_refused(&d, true, true, true, "a dm-crypt device: snapshot the device under it");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_dm_device_without_device_mapper_explains_the_kernel) {
        BlockDevice d = dm_device("data", NULL, UNKNOWN_TABLE);

        assert_refused(&d, false, false, false, "the dm-snapshot provider would take it, but " NO_DM);
        blockdev_done(&d);
}
END_TEST

START_TEST(test_dm_device_with_unreadable_table_goes_to_dm_snapshot) {
        BlockDevice d = dm_device("data", NULL, UNKNOWN_TABLE);

        assert_selects(&d, true, true, true, "dm-snapshot");
        blockdev_done(&d);
}
END_TEST

START_TEST(test_snapset_own_devices_are_never_snapshotted) {
        BlockDevice a = dm_device("snapset-1234-cow", SNAPSET_DM_UUID_PREFIX "1234-cow", LINEAR_TARGETS);
        BlockDevice b = dm_device("snapset-1234", SNAPSET_DM_UUID_PREFIX "1234", THIN_TARGETS);

        assert_refused(&a, true, true, true, "snapset's own devices");
        assert_refused(&b, true, true, true, "snapset's own devices");
        blockdev_done(&a);
        blockdev_done(&b);
}
END_TEST

START_TEST(test_classic_snapshot_and_merging_devices_are_refused) {
        BlockDevice s = dm_device("snap", NULL, ((const char *const[]) { "snapshot", NULL }));
        BlockDevice m = dm_device("origin", NULL, ((const char *const[]) { "snapshot-merge", NULL }));

        assert_refused(&s, true, true, true, "a classic snapshot itself");
        assert_refused(&m, true, true, true, "being merged");
        blockdev_done(&s);
        blockdev_done(&m);
}
END_TEST

START_TEST(test_device_without_live_table_is_refused) {
        BlockDevice d = dm_device("inactive", NULL, ((const char *const[]) { NULL }));

        assert_refused(&d, true, true, true, "no active table");
        blockdev_done(&d);
}
END_TEST

/* On the development hosts there is no device-mapper; in the VM there is. Either way the probe
 * must answer, and without the control node it must explain and create nothing. */
START_TEST(test_dm_probe_without_control_node_explains_and_creates_nothing) {
        _cleanup_free_ char *reason = NULL;
        struct stat st;
        int r;

        if (stat(DM_CONTROL_PATH, &st) >= 0)
                return; /* device-mapper is here: nothing to check */
        ck_assert_int_lt(stat("/dev/mapper", &st), 0);

        r = dm_probe(&reason);
        ck_assert_int_eq(r, 0);
        ck_assert_ptr_nonnull(reason);
        ck_assert_msg(strstr(reason, "device-mapper") && strstr(reason, DM_CONTROL_PATH), "%s", reason);
        ck_assert_int_lt(stat("/dev/mapper", &st), 0);
}
END_TEST

START_TEST(test_probing_every_provider_gives_a_reason_exactly_when_unusable) {
        ProviderStatus *st = NULL;
        size_t n = 0;

        ck_assert_int_eq(provider_probe_all(&st, &n), 0);
        ck_assert_uint_eq(n, 3);
        for (size_t i = 0; i < n; i++)
                ck_assert_msg(st[i].usable == !st[i].reason, "%s: usable=%d reason=%s",
                              st[i].provider->name, st[i].usable, strna(st[i].reason));
        provider_status_free(st, n);
}
END_TEST

Suite *suite_provider(void);
Suite *suite_provider(void) {
        Suite *s = suite_create("provider");
        TCase *tc = tcase_create("selection");

        tcase_add_test(tc, test_builtin_providers_are_lvm_dm_thin_dm_snapshot_in_ascending_priority);
        tcase_add_test(tc, test_plain_disk_is_not_a_device_mapper_device_even_with_every_provider_usable);
        tcase_add_test(tc, test_partition_with_devices_on_it_says_to_snapshot_those);
        tcase_add_test(tc, test_lvm_volume_goes_to_lvm_when_lvm_is_usable);
        tcase_add_test(tc, test_lvm_volume_without_usable_lvm_says_why_and_is_not_given_to_dm_providers);
        tcase_add_test(tc, test_lvm_thin_volume_goes_to_lvm_not_dm_thin);
        tcase_add_test(tc, test_lvm_layer_device_is_refused_as_internal);
        tcase_add_test(tc, test_lvm_hidden_sub_volume_is_refused);
        tcase_add_test(tc, test_lvm_classic_snapshot_is_refused);
        tcase_add_test(tc, test_thin_volume_goes_to_dm_thin);
        tcase_add_test(tc, test_thin_volume_without_usable_dm_thin_says_why);
        tcase_add_test(tc, test_thin_pool_is_refused_as_not_a_volume);
        tcase_add_test(tc, test_thin_mixed_with_linear_falls_back_to_dm_snapshot);
        tcase_add_test(tc, test_linear_striped_and_multipath_devices_go_to_dm_snapshot);
        tcase_add_test(tc, test_a_dm_crypt_device_is_refused_with_the_device_under_it_as_advice);
        tcase_add_test(tc, test_dm_device_without_device_mapper_explains_the_kernel);
        tcase_add_test(tc, test_dm_device_with_unreadable_table_goes_to_dm_snapshot);
        tcase_add_test(tc, test_snapset_own_devices_are_never_snapshotted);
        tcase_add_test(tc, test_classic_snapshot_and_merging_devices_are_refused);
        tcase_add_test(tc, test_device_without_live_table_is_refused);
        suite_add_tcase(s, tc);

        tc = tcase_create("names-and-probes");
        tcase_add_test(tc, test_lvm_names_with_dashes_are_split_as_lvm_writes_them);
        tcase_add_test(tc, test_lvm_name_without_a_logical_volume_is_invalid);
        tcase_add_test(tc, test_dm_probe_without_control_node_explains_and_creates_nothing);
        tcase_add_test(tc, test_probing_every_provider_gives_a_reason_exactly_when_unusable);
        suite_add_tcase(s, tc);
        return s;
}
