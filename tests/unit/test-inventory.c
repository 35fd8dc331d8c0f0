/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The inventory on a fake /sys/class/block tree and a fake mountinfo in a temporary directory:
 * device types, sizes, paths, dm names, which devices are listed, mountpoints, the Volume and
 * Provider objects field by field against the IDL, and the provider or reason of each volume
 * with device-mapper usable or not. Then the real thing, which must simply work on any host. */

#include <check.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "blockdev.h"
#include "inventory.h"
#include "macro.h"
#include "varlink.h"

static char tmp[] = "/tmp/snapset-test-inventory.XXXXXX";
static char *sysfs, *devdir, *mountinfo;

static void mkdir_parents(char *path) {
        for (char *c = path + 1; *c; c++) {
                if (*c != '/')
                        continue;
                *c = 0;
                (void) mkdir(path, 0755);
                *c = '/';
        }
}

/* Writes <tmp>/<rel> with content, creating directories on the way. */
static void put(const char *rel, const char *content) {
        _cleanup_free_ char *path = NULL;
        FILE *f;

        ck_assert_int_ge(asprintf(&path, "%s/%s", tmp, rel), 0);
        mkdir_parents(path);
        f = fopen(path, "we");
        ck_assert_ptr_nonnull(f);
        fputs(content, f);
        ck_assert_int_eq(fclose(f), 0);
}

static void put_dir(const char *rel) {
        _cleanup_free_ char *path = NULL;

        ck_assert_int_ge(asprintf(&path, "%s/%s/", tmp, rel), 0);
        mkdir_parents(path);
}

/* One block device of the fake sysfs: the attributes every device has. */
static void fake_device(const char *name, const char *devnum, const char *sectors, const char *ro) {
        char rel[256], content[64];

        snprintf(rel, sizeof rel, "sys/class/block/%s/dev", name);
        snprintf(content, sizeof content, "%s\n", devnum);
        put(rel, content);
        snprintf(rel, sizeof rel, "sys/class/block/%s/size", name);
        snprintf(content, sizeof content, "%s\n", sectors);
        put(rel, content);
        snprintf(rel, sizeof rel, "sys/class/block/%s/ro", name);
        snprintf(content, sizeof content, "%s\n", ro);
        put(rel, content);
        snprintf(rel, sizeof rel, "sys/class/block/%s/holders", name);
        put_dir(rel);
}

static void fake_attr(const char *name, const char *attr, const char *content) {
        char rel[256];

        snprintf(rel, sizeof rel, "sys/class/block/%s/%s", name, attr);
        put(rel, content);
}

#define LVM_UUID "LVM-Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb3dEf6hIj9kLm2oPq5sTu8wXy1zAb3dEf6h"

/* A machine: a disk with two partitions (the second an LVM PV under dm-0), an LVM LV and its
 * "-real" layer, a LUKS mapping, a snapset COW device, bound and unbound loop devices, an md
 * array, a used and an unused ram disk, an empty CD drive, a hidden NVMe path, and cciss. */
static void fake_machine(void) {
        fake_device("sda", "8:0", "2097152", "0");
        fake_device("sda1", "8:1", "1024000", "0");
        fake_attr("sda1", "partition", "1\n");
        fake_device("sda2", "8:2", "1071104", "0");
        fake_attr("sda2", "partition", "2\n");
        fake_attr("sda2", "holders/dm-0", "");

        fake_device("dm-0", "253:0", "409600", "0");
        fake_attr("dm-0", "dm/name", "vg--data-root\n");
        fake_attr("dm-0", "dm/uuid", LVM_UUID "\n");
        fake_attr("dm-0", "dm/suspended", "0\n");
        fake_device("dm-1", "253:1", "409600", "0");
        fake_attr("dm-1", "dm/name", "vg--data-root-real\n");
        fake_attr("dm-1", "dm/uuid", LVM_UUID "-real\n");
        fake_attr("dm-1", "dm/suspended", "1\n");
        fake_device("dm-2", "253:2", "200000", "0");
        fake_attr("dm-2", "dm/name", "cryptdata\n");
        fake_attr("dm-2", "dm/uuid", "CRYPT-LUKS2-0123456789abcdef-cryptdata\n");
        fake_attr("dm-2", "dm/suspended", "0\n");
        fake_device("dm-3", "253:3", "2048", "1");
        fake_attr("dm-3", "dm/name", "snapset-42-cow\n");
        fake_attr("dm-3", "dm/uuid", "SNAPSET-42-cow\n");
        fake_device("dm-4", "253:4", "2048", "0");
        fake_attr("dm-4", "dm/name", "plain\n");
        fake_attr("dm-4", "dm/uuid", "\n");

        fake_device("loop0", "7:0", "0", "0");
        fake_device("loop2", "7:2", "65536", "1");
        fake_device("loop10", "7:10", "65536", "0");
        fake_device("md0", "9:0", "8192", "0");
        put_dir("sys/class/block/md0/md");
        fake_device("ram0", "1:0", "8192", "0");
        fake_device("ram1", "1:1", "8192", "0");
        fake_device("sr0", "11:0", "0", "0");
        fake_device("nvme0c0n1", "259:1", "8192", "0");
        fake_attr("nvme0c0n1", "hidden", "1\n");
        fake_device("cciss!c0d0", "104:0", "8192", "0");

        /* 7:2 mounted twice (once at a path with a space), ram1 mounted, 253:0 mounted. */
        put("mountinfo",
            "22 1 253:0 / / rw,relatime - ext4 /dev/mapper/vg--data-root rw\n"
            "23 22 0:21 / /proc rw - proc proc rw\n"
            "30 22 7:2 / /mnt/a ro - ext4 /dev/loop2 ro\n"
            "31 22 7:2 / /mnt/with\\040space ro - ext4 /dev/loop2 ro\n"
            "32 22 1:1 / /mnt/ram rw - ext2 /dev/ram1 rw\n");
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        return remove(path);
}

static void setup(void) {
        strcpy(tmp, "/tmp/snapset-test-inventory.XXXXXX");
        ck_assert_ptr_nonnull(mkdtemp(tmp));
        ck_assert_int_ge(asprintf(&sysfs, "%s/sys", tmp), 0);
        ck_assert_int_ge(asprintf(&devdir, "%s/dev", tmp), 0);
        ck_assert_int_ge(asprintf(&mountinfo, "%s/mountinfo", tmp), 0);
        ck_assert_int_eq(mkdir(devdir, 0755), 0);
        fake_machine();
}

static void teardown(void) {
        (void) nftw(tmp, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
        free(sysfs);
        free(devdir);
        free(mountinfo);
}

static const BlockDevice *find(const BlockDevice *d, size_t n, const char *name) {
        for (size_t i = 0; i < n; i++)
                if (streq(d[i].name, name))
                        return d + i;
        ck_abort_msg("%s not enumerated", name);
        return NULL;
}

/* ---------------------------------------------------------------- blockdev */

START_TEST(test_enumerate_reads_types_sizes_paths_and_dm_names) {
        BlockDevice *d = NULL;
        const BlockDevice *x;
        size_t n = 0;

        ck_assert_int_eq(blockdev_enumerate(sysfs, &d, &n), 0);
        ck_assert_uint_eq(n, 17);

        x = find(d, n, "sda");
        ck_assert_int_eq(x->type, BLOCK_DEVICE_DISK);
        ck_assert_uint_eq(x->major, 8);
        ck_assert_uint_eq(x->minor, 0);
        ck_assert_uint_eq(x->size_bytes, UINT64_C(2097152) * 512);
        ck_assert_str_eq(x->path, "/dev/sda");
        ck_assert_ptr_null(x->dm_name);

        x = find(d, n, "sda2");
        ck_assert_int_eq(x->type, BLOCK_DEVICE_PART);
        ck_assert_uint_eq(x->n_holders, 1);

        x = find(d, n, "dm-0");
        ck_assert_int_eq(x->type, BLOCK_DEVICE_DM);
        ck_assert_str_eq(x->dm_name, "vg--data-root");
        ck_assert_str_eq(x->dm_uuid, LVM_UUID);
        ck_assert_str_eq(x->path, "/dev/mapper/vg--data-root");
        ck_assert(blockdev_is_lvm(x));
        ck_assert(!x->dm_suspended);
        ck_assert(find(d, n, "dm-1")->dm_suspended);

        x = find(d, n, "dm-4");
        ck_assert_ptr_null(x->dm_uuid); /* empty uuid file: no UUID */
        ck_assert(!blockdev_is_lvm(x));

        x = find(d, n, "loop2");
        ck_assert_int_eq(x->type, BLOCK_DEVICE_LOOP);
        ck_assert(x->read_only);
        ck_assert_int_eq(find(d, n, "md0")->type, BLOCK_DEVICE_MD);
        ck_assert_int_eq(find(d, n, "ram0")->type, BLOCK_DEVICE_RAM);
        ck_assert_int_eq(find(d, n, "sr0")->type, BLOCK_DEVICE_ROM);
        ck_assert(find(d, n, "nvme0c0n1")->hidden);
        ck_assert_str_eq(find(d, n, "cciss!c0d0")->path, "/dev/cciss/c0d0");
        ck_assert_ptr_nonnull(find(d, n, "sda")->mountpoints);

        blockdev_array_free(d, n);
}
END_TEST

START_TEST(test_enumerate_sorts_names_in_version_order) {
        BlockDevice *d = NULL;
        size_t n = 0, i2 = SIZE_MAX, i10 = SIZE_MAX;

        ck_assert_int_eq(blockdev_enumerate(sysfs, &d, &n), 0);
        for (size_t i = 0; i < n; i++) {
                if (streq(d[i].name, "loop2"))
                        i2 = i;
                if (streq(d[i].name, "loop10"))
                        i10 = i;
                if (i > 0)
                        ck_assert_int_lt(strverscmp(d[i - 1].name, d[i].name), 0);
        }
        ck_assert_uint_lt(i2, i10);
        blockdev_array_free(d, n);
}
END_TEST

START_TEST(test_enumerate_without_sysfs_fails_cleanly) {
        BlockDevice *d = (BlockDevice *) 0x1;
        size_t n = 77;

        ck_assert_int_eq(blockdev_enumerate("/nonexistent-sysfs", &d, &n), -ENOENT);
        ck_assert_ptr_eq(d, (BlockDevice *) 0x1);
        ck_assert_uint_eq(n, 77);
}
END_TEST

START_TEST(test_device_type_names_match_the_api) {
        ck_assert_str_eq(block_device_type_to_string(BLOCK_DEVICE_DISK), "disk");
        ck_assert_str_eq(block_device_type_to_string(BLOCK_DEVICE_PART), "part");
        ck_assert_str_eq(block_device_type_to_string(BLOCK_DEVICE_DM), "dm");
        ck_assert_str_eq(block_device_type_to_string(BLOCK_DEVICE_LOOP), "loop");
        ck_assert_ptr_null(block_device_type_to_string(_BLOCK_DEVICE_TYPE_MAX));
        ck_assert_ptr_null(block_device_type_to_string(_BLOCK_DEVICE_TYPE_INVALID));
}
END_TEST

/* ---------------------------------------------------------------- volumes */

static ProviderStatus fake_status[3];

static void set_status(bool usable) {
        static const Provider *const *b;
        size_t n;

        b = provider_builtins(&n);
        for (size_t i = 0; i < n; i++)
                fake_status[i] = (ProviderStatus) {
                        .provider = b[i],
                        .usable = usable,
                        .reason = usable ? NULL : (char *) "the kernel has no device-mapper (test)",
                };
}

static json_object *volumes(bool dm_usable) {
        InventoryRoots roots = { .sysfs = sysfs, .dev = devdir, .mountinfo = mountinfo };
        json_object *a = NULL;

        set_status(dm_usable);
        ck_assert_int_eq(inventory_volumes_build(&roots, fake_status, 3, &a), 0);
        ck_assert(json_object_is_type(a, json_type_array));
        return a;
}

static json_object *volume_by_path(json_object *a, const char *path) {
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *v = json_object_array_get_idx(a, i), *p;

                if (json_object_object_get_ex(v, "path", &p) && streq(json_object_get_string(p), path))
                        return v;
        }
        return NULL;
}

static const char *field(json_object *v, const char *key) {
        json_object *f;

        if (!json_object_object_get_ex(v, key, &f) || json_object_is_type(f, json_type_null))
                return NULL;
        return json_object_get_string(f);
}

START_TEST(test_volumes_leave_out_empty_hidden_and_unused_ram_devices) {
        _cleanup_(json_object_putp) json_object *a = volumes(false);

        ck_assert_ptr_null(volume_by_path(a, "/dev/loop0"));
        ck_assert_ptr_null(volume_by_path(a, "/dev/sr0"));
        ck_assert_ptr_null(volume_by_path(a, "/dev/ram0"));
        ck_assert_ptr_null(volume_by_path(a, "/dev/nvme0c0n1"));
        ck_assert_ptr_nonnull(volume_by_path(a, "/dev/ram1"));       /* mounted */
        ck_assert_ptr_nonnull(volume_by_path(a, "/dev/loop2"));
        ck_assert_ptr_nonnull(volume_by_path(a, "/dev/cciss/c0d0"));
        ck_assert_uint_eq(json_object_array_length(a), 13);
}
END_TEST

/* Every field of the IDL's Volume type, with its JSON type and whether it may be absent. */
static const struct {
        const char *name;
        json_type type;
        bool nullable;
} volume_fields[] = {
        { "path", json_type_string, false },
        { "device", json_type_string, false },
        { "type", json_type_string, false },
        { "sizeBytes", json_type_int, false },
        { "readOnly", json_type_boolean, false },
        { "dmName", json_type_string, true },
        { "dmTargets", json_type_array, true },
        { "lvmName", json_type_string, true },
        { "filesystem", json_type_string, true },
        { "uuid", json_type_string, true },
        { "mountpoints", json_type_array, false },
        { "provider", json_type_string, true },
        { "reason", json_type_string, true },
};

static void assert_is_volume(json_object *v) {
        size_t known = 0;

        for (size_t i = 0; i < ELEMENTSOF(volume_fields); i++) {
                json_object *f;

                if (!json_object_object_get_ex(v, volume_fields[i].name, &f)) {
                        ck_assert_msg(volume_fields[i].nullable, "%s missing", volume_fields[i].name);
                        continue;
                }
                known++;
                ck_assert_msg(json_object_is_type(f, volume_fields[i].type), "%s has the wrong type",
                              volume_fields[i].name);
        }
        ck_assert_msg(known == (size_t) json_object_object_length(v), "unknown fields in %s",
                      json_object_to_json_string(v));
        /* Exactly one of the two: who takes it, or why nobody does. */
        ck_assert(!field(v, "provider") != !field(v, "reason"));
}

START_TEST(test_every_volume_has_exactly_the_fields_of_the_idl) {
        for (int usable = 0; usable <= 1; usable++) {
                _cleanup_(json_object_putp) json_object *a = volumes(usable);

                for (size_t i = 0; i < json_object_array_length(a); i++)
                        assert_is_volume(json_object_array_get_idx(a, i));
        }
}
END_TEST

START_TEST(test_volumes_carry_device_numbers_types_sizes_and_dm_names) {
        _cleanup_(json_object_putp) json_object *a = volumes(false);
        json_object *v, *f;

        v = volume_by_path(a, "/dev/mapper/vg--data-root");
        ck_assert_ptr_nonnull(v);
        ck_assert_str_eq(field(v, "device"), "253:0");
        ck_assert_str_eq(field(v, "type"), "dm");
        ck_assert_str_eq(field(v, "dmName"), "vg--data-root");
        ck_assert_str_eq(field(v, "lvmName"), "vg-data/root");
        ck_assert(json_object_object_get_ex(v, "sizeBytes", &f));
        ck_assert_int_eq(json_object_get_int64(f), INT64_C(409600) * 512);
        /* The fake tree has no dm tables to read. */
        ck_assert(!json_object_object_get_ex(v, "dmTargets", NULL));

        /* A layer device is no "VG/LV". */
        v = volume_by_path(a, "/dev/mapper/vg--data-root-real");
        ck_assert_ptr_nonnull(v);
        ck_assert_ptr_null(field(v, "lvmName"));

        v = volume_by_path(a, "/dev/loop2");
        ck_assert(json_object_object_get_ex(v, "readOnly", &f));
        ck_assert(json_object_get_boolean(f));
        ck_assert_str_eq(field(v, "type"), "loop");
        ck_assert_str_eq(field(volume_by_path(a, "/dev/sda1"), "type"), "part");
        ck_assert_str_eq(field(volume_by_path(a, "/dev/md0"), "type"), "md");
}
END_TEST

START_TEST(test_volumes_show_every_mountpoint_from_mountinfo) {
        _cleanup_(json_object_putp) json_object *a = volumes(false);
        json_object *m;

        ck_assert(json_object_object_get_ex(volume_by_path(a, "/dev/loop2"), "mountpoints", &m));
        ck_assert_uint_eq(json_object_array_length(m), 2);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(m, 0)), "/mnt/a");
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(m, 1)), "/mnt/with space");

        ck_assert(json_object_object_get_ex(volume_by_path(a, "/dev/mapper/vg--data-root"), "mountpoints", &m));
        ck_assert_uint_eq(json_object_array_length(m), 1);
        ck_assert_str_eq(json_object_get_string(json_object_array_get_idx(m, 0)), "/");

        ck_assert(json_object_object_get_ex(volume_by_path(a, "/dev/sda"), "mountpoints", &m));
        ck_assert_uint_eq(json_object_array_length(m), 0);
}
END_TEST

START_TEST(test_volumes_get_their_provider_when_device_mapper_is_usable) {
        _cleanup_(json_object_putp) json_object *a = volumes(true);

        ck_assert_str_eq(field(volume_by_path(a, "/dev/mapper/vg--data-root"), "provider"), "lvm");
        ck_assert_str_eq(field(volume_by_path(a, "/dev/mapper/cryptdata"), "provider"), "dm-snapshot");
        ck_assert_str_eq(field(volume_by_path(a, "/dev/mapper/plain"), "provider"), "dm-snapshot");
        ck_assert_ptr_nonnull(strstr(field(volume_by_path(a, "/dev/mapper/vg--data-root-real"), "reason"),
                                     "internal device of LVM logical volume vg-data/root"));
        ck_assert_ptr_nonnull(strstr(field(volume_by_path(a, "/dev/mapper/snapset-42-cow"), "reason"),
                                     "snapset's own devices"));
        ck_assert_ptr_nonnull(strstr(field(volume_by_path(a, "/dev/sda1"), "reason"),
                                     "not a device-mapper device"));
        ck_assert_ptr_nonnull(strstr(field(volume_by_path(a, "/dev/sda2"), "reason"),
                                     "1 device is stacked on it"));
}
END_TEST

START_TEST(test_volumes_explain_a_kernel_without_device_mapper) {
        _cleanup_(json_object_putp) json_object *a = volumes(false);

        ck_assert_str_eq(field(volume_by_path(a, "/dev/mapper/vg--data-root"), "reason"),
                         "the lvm provider would take it, but the kernel has no device-mapper (test)");
        ck_assert_str_eq(field(volume_by_path(a, "/dev/mapper/cryptdata"), "reason"),
                         "the dm-snapshot provider would take it, but the kernel has no device-mapper (test)");
        ck_assert_ptr_nonnull(strstr(field(volume_by_path(a, "/dev/loop2"), "reason"),
                                     "not a device-mapper device: put it under device-mapper"));
}
END_TEST

/* blkid reads regular files like devices, so an image named like the device stands in for it. */
START_TEST(test_volumes_show_the_filesystem_blkid_finds) {
        _cleanup_free_ char *image = NULL;
        json_object *a, *v;
        int status;
        pid_t pid;

        if (access("/sbin/mkfs.ext4", X_OK) < 0 && access("/usr/sbin/mkfs.ext4", X_OK) < 0)
                return; /* nothing to make the image with: this is covered on the host tier */
        ck_assert_int_ge(asprintf(&image, "%s/loop10", devdir), 0);
        pid = fork();
        ck_assert_int_ge(pid, 0);
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);

                /* mkfs.ext4 says "Creating regular file" even with -q. */
                (void) dup2(null, STDOUT_FILENO);
                (void) dup2(null, STDERR_FILENO);
                execlp("mkfs.ext4", "mkfs.ext4", "-q", "-F", "-U", "0b2c0e8e-5f53-4b5a-9d3e-5c1f1d0e9a77",
                       image, "2M", (char *) NULL);
                _exit(127);
        }
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) == 127)
                return; /* mkfs.ext4 not in PATH */
        ck_assert_int_eq(WEXITSTATUS(status), 0);

        a = volumes(false);
        v = volume_by_path(a, "/dev/loop10");
        ck_assert_str_eq(field(v, "filesystem"), "ext4");
        ck_assert_str_eq(field(v, "uuid"), "0b2c0e8e-5f53-4b5a-9d3e-5c1f1d0e9a77");
        /* No image for loop2: unknown, not an error. */
        ck_assert_ptr_null(field(volume_by_path(a, "/dev/loop2"), "filesystem"));
        json_object_put(a);
}
END_TEST

START_TEST(test_broken_mountinfo_fails_the_listing) {
        InventoryRoots roots = { .sysfs = sysfs, .dev = devdir, .mountinfo = "/nonexistent/mountinfo" };
        json_object *a = NULL;

        set_status(false);
        ck_assert_int_lt(inventory_volumes_build(&roots, fake_status, 3, &a), 0);
        ck_assert_ptr_null(a);
}
END_TEST

/* ---------------------------------------------------------------- providers */

START_TEST(test_provider_objects_have_the_idl_fields_and_a_reason_only_when_unusable) {
        for (int usable = 0; usable <= 1; usable++) {
                _cleanup_(json_object_putp) json_object *a = NULL;

                set_status(usable);
                ck_assert_int_eq(inventory_providers_build(fake_status, 3, &a), 0);
                ck_assert_uint_eq(json_object_array_length(a), 3);
                for (size_t i = 0; i < 3; i++) {
                        json_object *p = json_object_array_get_idx(a, i), *f;

                        ck_assert_str_eq(field(p, "name"), fake_status[i].provider->name);
                        ck_assert_str_eq(field(p, "kind"), "builtin");
                        ck_assert(json_object_object_get_ex(p, "priority", &f));
                        ck_assert(json_object_is_type(f, json_type_int));
                        ck_assert(json_object_object_get_ex(p, "usable", &f));
                        ck_assert(json_object_is_type(f, json_type_boolean));
                        ck_assert_int_eq(json_object_get_boolean(f), usable);
                        ck_assert_int_eq(!!field(p, "reason"), !usable);
                        ck_assert_int_eq(json_object_object_length(p), usable ? 4 : 5);
                }
        }
}
END_TEST

/* ---------------------------------------------------------------- this machine */

START_TEST(test_listing_this_machine_works) {
        _cleanup_(json_object_putp) json_object *p = NULL, *v = NULL;

        ck_assert_int_eq(inventory_list_providers(&p), 0);
        ck_assert_uint_eq(json_object_array_length(p), 3);
        ck_assert_int_eq(inventory_list_volumes(&v), 0);
        for (size_t i = 0; i < json_object_array_length(v); i++)
                assert_is_volume(json_object_array_get_idx(v, i));
}
END_TEST

Suite *suite_inventory(void);
Suite *suite_inventory(void) {
        Suite *s = suite_create("inventory");
        TCase *tc = tcase_create("fake-sysfs");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_enumerate_reads_types_sizes_paths_and_dm_names);
        tcase_add_test(tc, test_enumerate_sorts_names_in_version_order);
        tcase_add_test(tc, test_enumerate_without_sysfs_fails_cleanly);
        tcase_add_test(tc, test_device_type_names_match_the_api);
        tcase_add_test(tc, test_volumes_leave_out_empty_hidden_and_unused_ram_devices);
        tcase_add_test(tc, test_every_volume_has_exactly_the_fields_of_the_idl);
        tcase_add_test(tc, test_volumes_carry_device_numbers_types_sizes_and_dm_names);
        tcase_add_test(tc, test_volumes_show_every_mountpoint_from_mountinfo);
        tcase_add_test(tc, test_volumes_get_their_provider_when_device_mapper_is_usable);
        tcase_add_test(tc, test_volumes_explain_a_kernel_without_device_mapper);
        tcase_add_test(tc, test_volumes_show_the_filesystem_blkid_finds);
        tcase_add_test(tc, test_broken_mountinfo_fails_the_listing);
        tcase_add_test(tc, test_provider_objects_have_the_idl_fields_and_a_reason_only_when_unusable);
        suite_add_tcase(s, tc);

        tc = tcase_create("this-machine");
        tcase_add_test(tc, test_listing_this_machine_works);
        suite_add_tcase(s, tc);
        return s;
}
