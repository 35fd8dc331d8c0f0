/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one file that talks to libdevmapper (in the manner of cryptsetup's lib/libdevmapper.c):
 * every function here turns libdm's 1/0 into negative errno, and libdm's own messages go to
 * log_debug, never to stderr. No other file includes <libdevmapper.h>.
 *
 * libdevmapper, run as root on a machine without /dev/mapper/control, creates /dev/mapper and
 * the control node by itself (and then fails, and says so on stderr). So every entry point here
 * first checks that the control node exists, and leaves libdm alone if it does not: on a kernel
 * without device-mapper, probing is a stat() and a readable reason, nothing more. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define DM_CONTROL_PATH "/dev/mapper/control"

/* Whether the kernel's device-mapper can be used here. Returns 1 if it can, 0 if not (then
 * *ret_reason says why and what to do, for an administrator), negative errno if the check
 * itself failed. Opening the control node may autoload dm_mod: that is how every dm tool works,
 * and the daemon needs it loaded anyway. */
int dm_probe(char **ret_reason);

/* Whether every target in the NULL-terminated list can be used: either the kernel lists it as
 * loaded, or module (e.g. "dm-snapshot") is built in or installed under /lib/modules/$(uname -r),
 * since the kernel loads a target's module on first use. Same returns as dm_probe(); call it only
 * after dm_probe() returned 1. */
int dm_targets_available(const char *const *targets, const char *module, char **ret_reason);

/* The target types of the live table of device major:minor, each once, in table order, as a
 * NULL-terminated array (empty if there is no live table). -ENODEV if there is no device-mapper,
 * -ENXIO if there is no such device. */
int dm_device_get_targets(unsigned major, unsigned minor, char ***ret_targets);

/* The dm name of the thin pool a thin volume (major:minor, a single "thin" target) maps to. */
int dm_device_thin_pool_name(unsigned major, unsigned minor, char *buf, size_t n);

/* Splits the dm name of an LVM volume, "VG-LV[-LAYER]" with '-' inside names doubled, into its
 * parts (libdm's dm_split_lvm_name(); a pure string function, no kernel involved). *ret_layer is
 * NULL when there is no layer. -EINVAL if name is not of that form. */
int dm_lvm_name_split(const char *name, char **ret_vg, char **ret_lv, char **ret_layer);
/* The reverse: the dm name of LVM's VG/LV (layer NULL, or "tpool", "real", "cow", ...), as LVM
 * names its devices ("vg-lv", '-' doubled inside each part). Reading such a device's table or
 * status is fine; changing it is LVM's business. */
int dm_lvm_name_join(const char *vg, const char *lv, const char *layer, char **ret);

/* ---------------------------------------------------------------- devices: create, load, swap
 *
 * What the snapshot providers need, each a thin wrapper around one libdm task. A device is named
 * by a DmRef: by name if name is set, else by UUID if uuid is set, else by major:minor. Inside
 * the freeze window, name devices by major:minor: libdm copies (and may mangle) names and UUIDs
 * into the task, which allocates; the task itself (dm_task_create, the ioctl buffer in
 * dm_task_run) still allocates, which libdm offers no way around: the daemon locks its memory
 * (mlockall) so that this never waits on a page-in from a frozen filesystem. */

typedef struct DmRef {
        const char *name;
        const char *uuid;
        unsigned major, minor;
} DmRef;

#define DM_REF_NAME(n) ((DmRef) { .name = (n) })
#define DM_REF_DEVNUM(ma, mi) ((DmRef) { .major = (ma), .minor = (mi) })

/* dm names are at most 127 characters, UUIDs at most 128 (DM_NAME_LEN, DM_UUID_LEN with NUL). */
#define DM_NAME_MAX 127
#define DM_UUID_MAX 128

typedef struct DmInfo {
        bool suspended;
        bool live_table;
        bool inactive_table;
        unsigned major, minor;
        int open_count;
        char name[DM_NAME_MAX + 1];
        char uuid[DM_UUID_MAX + 1];
} DmInfo;

/* How udev should treat the uevents of a device we create or resume (the DM_UDEV_* flags that
 * libdm passes along with the udev cookie). */
typedef enum DmUdevRules {
        DM_RULES_ALL,           /* an ordinary device */
        DM_RULES_LOW_PRIORITY,  /* a snapshot: same filesystem UUID as its origin, whose
                                   /dev/disk/by-uuid links must keep pointing at the origin */
        DM_RULES_HIDDEN,        /* an internal layer (the origin's "real" device): no blkid, no
                                   links, no systemd units; only the /dev/mapper node */
        _DM_RULES_MAX,
        _DM_RULES_INVALID = -EINVAL,
} DmUdevRules;

/* Info about a device: -ENXIO if there is no such device, -ENODEV without device-mapper. */
int dm_device_info(DmRef ref, DmInfo *ret);

/* The live (or, with inactive=true, the inactive) table in text form, one target a line,
 * "START LENGTH TYPE PARAMS\n", as dmsetup table prints it; "" when there is no such table. */
int dm_device_table(DmRef ref, bool inactive, char **ret_table);

/* The status of the first target of the live table: *ret_type ("snapshot"), *ret_params (what
 * follows the type in dmsetup status). -ENODATA if there is no live table. */
int dm_device_status(DmRef ref, char **ret_type, char **ret_params);

/* Creates a device. With a table: created, loaded and resumed (active) in one go, like dmsetup
 * create --table. With table NULL: created without a table (load one with dm_device_load() and
 * activate it with dm_device_resume()). ret_info (optional) gets the new device's info. The udev
 * events join *cookie (see dm_udev_cookie_new()); wait for them with dm_udev_cookie_wait(). A
 * device without a table sends no event with a cookie: it is not added to *cookie. */
int dm_device_create(const char *name, const char *uuid, const char *table, DmUdevRules rules,
                     uint32_t *cookie, DmInfo *ret_info);
/* Loads table as the device's inactive table (DM_DEVICE_RELOAD); it goes live on resume. */
int dm_device_load(DmRef ref, const char *table);
/* Drops the inactive table (DM_DEVICE_CLEAR). */
int dm_device_clear(DmRef ref);
/* Suspends the device, flushing in-flight I/O (never noflush: a snapshot must contain every
 * write that was acknowledged). skip_lockfs: do not freeze the filesystem on it (it is already
 * frozen with FIFREEZE, or its content does not change across the table swap). */
int dm_device_suspend(DmRef ref, bool skip_lockfs);
/* Resumes the device, swapping in its inactive table if it has one. cookie may be NULL: then no
 * udev synchronisation for this resume, and libdm flags its uevent to keep udev's rules off
 * /dev/mapper (DM_UDEV_DISABLE_DM_RULES_FLAG), leaving the node to itself, which it makes only
 * for a task that names the device: resumed by number, the device loses /dev/mapper/NAME until
 * its next uevent with a cookie (seen in the VM). So NULL only where a resume must not fail
 * for want of a semaphore. */
int dm_device_resume(DmRef ref, DmUdevRules rules, uint32_t *cookie);
/* Makes table the device's live table: load, suspend with skip-lockfs, resume (once more without
 * udev if that fails: never left suspended). For a table that maps the same data, or a device
 * nothing has open: there is nothing for a filesystem freeze to make consistent. */
int dm_device_swap_table(DmRef ref, const char *table, uint32_t *cookie);
/* Removes the device (retrying while udev's blkid holds it open for a moment). */
int dm_device_remove(DmRef ref, uint32_t *cookie);
/* Sends a target message (DM_DEVICE_TARGET_MSG) to the target of ref's live table that starts at
 * sector: e.g. "create_snap 5 3" to a thin pool. The kernel's -errno on failure (EEXIST for a
 * thin device id in use, ENODATA for one that does not exist, EBUSY for a thin device still open,
 * EOPNOTSUPP once a pool is read-only or out of metadata space); its reason goes to the kernel log. */
int dm_device_message(DmRef ref, uint64_t sector, const char *message);
/* Makes sure /dev/mapper/NAME exists and is right (DM_DEVICE_MKNODES; ref must name the device
 * by name). Needed after a resume by major:minor without udev: libdm only makes a node on a
 * resume that names the device, and udev is not there to do it. With udev, a no-op once udev is
 * done. */
int dm_device_mknodes(DmRef ref);
/* The names of every device-mapper device, as a NULL-terminated array. */
int dm_device_list(char ***ret_names);

/* udev synchronisation (libdm's cookies, SysV semaphores). A cookie collects the uevents of many
 * tasks; waiting on it waits for udev to have processed all of them, and then makes sure the
 * /dev/mapper nodes are right. Without udev (not running, or DM_DISABLE_UDEV=1) the cookie is 0
 * and libdm creates and removes the nodes itself, when the cookie is waited on. Create the cookie
 * outside the freeze window; never wait on it while a device is suspended.
 * What udev's side costs: every uevent of a libdm task carries DM_COOKIE, with a cookie or
 * without (then only flags: DM_UDEV_PRIMARY_SOURCE_FLAG at least), and for each Debian's dm rules
 * start dmsetup: "udevflags" for an add or change, "udevcomplete" for every action. Under TCG
 * that is 70-120 ms of CPU per process: deleting 8 dm-snapshot snapshots (4 processes each: the
 * origin's table given back, a change; the snapshot and REAL removed) made udev use 2.2-3.2 s of
 * CPU, snapsetd 0.1 s (bench/results/2026-12-03-*-udev-cpu.md). Fewer uevents is the only
 * way to less of it; waiting on one cookie instead of many changes nothing there. */
int dm_udev_cookie_new(uint32_t *ret_cookie);
/* Waits and sets *cookie to 0; a no-op (but the node updates) for cookie 0. Always call it once
 * for a cookie that was created, also on error paths, or the semaphore leaks. */
int dm_udev_cookie_wait(uint32_t *cookie);

/* ---------------------------------------------------------------- tables as text (pure) */

/* Appends one target line, "START LENGTH TYPE PARAMS\n", to *table (allocated or NULL). */
int dm_table_append(char **table, uint64_t start, uint64_t length, const char *type, const char *params);
/* Parses one target line "START LENGTH TYPE PARAMS" (the first len characters of line, without
 * its newline; PARAMS may be empty). *ret_type and *ret_params are allocated. -EINVAL if the
 * line is malformed: numbers that do not parse, a zero length, no type. */
int dm_table_line_parse(const char *line, size_t len, uint64_t *ret_start, uint64_t *ret_length,
                        char **ret_type, char **ret_params);
/* The total length in sectors of a table in text form (the end of its last target). */
int dm_table_length(const char *table, uint64_t *ret_sectors);
