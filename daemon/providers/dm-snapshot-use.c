/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The dm-snapshot provider's revert and break (provider.h), for an origin X, its real device REAL
 * and a snapshot S whose store is LOOP (dm-snapshot.h).
 *
 * Revert merges the store back into REAL with the kernel's snapshot-merge target, which takes the
 * place of X's snapshot-origin table: "snapshot-merge REAL LOOP P CHUNK". X must be closed to
 * start (unmounted; RevertToSnapshot's forceDismount unmounts it first); once the merge runs, X
 * may be opened again and reads the snapshot's data at once, while the kernel copies the chunks
 * back in the background. Other snapshots of X (other sets) stay valid: the merge's writes to
 * REAL are copied into their stores first, as any write to X is.
 *   1. the record says "merging" (saved before anything changes: a crash or a reboot from here
 *      on finishes the merge instead of forgetting it; dm_snapshot_merge_activate() sets it up
 *      again at boot, before the local filesystems are mounted);
 *   2. S is suspended, X gets the merge table on the same LOOP and is resumed: the kernel hands
 *      S's exceptions over to the merge (S then fails every I/O), and S is removed;
 *   3. revert_progress reads the merge's status ("USED/TOTAL METADATA", done when USED is down to
 *      METADATA); then X gets "snapshot-origin REAL" back, and the snapshot's teardown does the
 *      rest: X's own table again if no other snapshot is left, REAL, the loop device and the
 *      store removed.
 * Until X resumes with the merge table everything is undone on a failure.
 *
 * Break copies the snapshot into an image file of its own, next to the stores
 * (<CowDirectory>/ORIGIN_snap_XXXXXXXX.img, sparse), attached to a loop device that stays: a
 * dm-snapshot holds only the chunks that changed, the rest of its data is the origin's, so no
 * device that depends neither on X nor on snapset's record can exist without the copy. The
 * snapshot is deleted after the copy. After a reboot, `losetup --find --show FILE` attaches the
 * image again. */

#include <fcntl.h>
#include <inttypes.h>
#include <libgen.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "cow.h"
#include "dm-snapshot.h"
#include "log.h"
#include "loop.h"
#include "result.h"
#include "snapshot-set.h"
#include "time-util.h"

/* The store of a "snapshot REAL COW P CHUNK" table: COW's device number. */
static int snapshot_table_cow(const char *table, unsigned *ret_major, unsigned *ret_minor) {
        _cleanup_free_ char *type = NULL, *params = NULL;
        uint64_t start, length;
        int r;

        r = dm_table_line_parse(table, strcspn(table, "\n"), &start, &length, &type, &params);
        if (r < 0)
                return r;
        if (!streq(type, "snapshot") || sscanf(params, "%*u:%*u %u:%u", ret_major, ret_minor) != 2)
                return -EMEDIUMTYPE;
        return 0;
}

/* The snapshot's status: its store's use, and whether it can be merged at all. */
static VssCode snapshot_usage(const DmSnapshotRecord *rec, uint64_t *ret_used, ProviderResult *res) {
        _cleanup_free_ char *type = NULL, *params = NULL;
        uint64_t total, metadata;
        const char *state;
        int r;

        r = dm_device_status(DM_REF_NAME(rec->snapshot_name), &type, &params);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_OBJECT_NOT_FOUND, "Cannot read the status of %s: is the "
                                     "snapshot active?", rec->snapshot_name);
        r = streq(type, "snapshot") ? dm_snapshot_status_parse(params, ret_used, &total, &metadata, &state) : -EBADMSG;
        if (r == -EINVAL)
                return provider_fail(res, 0, 0, VSS_E_BAD_STATE, "Snapshot %s is %s: reverting to it would destroy "
                                     "'%s'; nothing was changed", rec->snapshot_name, state, rec->origin_name);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_BAD_STATE, "%s is not a snapshot (\"%s %s\")",
                                     rec->snapshot_name, type, params);
        return S_OK;
}

/* REAL for an origin whose live table is live: the one X maps already, or one made now with X's
 * table (after a reboot, X runs its own table). */
static VssCode real_ensure(const DmSnapshotRecord *rec, const char *live, DmInfo *real, bool *ret_created,
                           uint32_t *cookie, ProviderResult *res) {
        _cleanup_free_ char *t = NULL;
        unsigned ma, mi;
        int r;

        *ret_created = false;
        if (dm_snapshot_origin_table_parse(live, &ma, &mi) > 0) {
                if (dm_device_info(DM_REF_DEVNUM(ma, mi), real) < 0 || !streq(real->name, rec->real_name))
                        return provider_fail(res, 0, 0, VSS_E_BAD_STATE, "%s is the origin of a snapshot, but not "
                                             "through %s: nothing was changed", rec->origin_name, rec->real_name);
                return S_OK;
        }
        if (dm_device_info(DM_REF_NAME(rec->real_name), real) >= 0) {
                if (dm_device_table(DM_REF_NAME(rec->real_name), false, &t) < 0 || !streq(t, live))
                        return provider_fail(res, 0, EEXIST, VSS_E_BAD_STATE, "%s exists, but is not a copy of %s: "
                                             "remove it with 'dmsetup remove %s'", rec->real_name, rec->origin_name,
                                             rec->real_name);
                return S_OK;
        }
        r = dm_device_create(rec->real_name, rec->real_uuid, live, DM_RULES_HIDDEN, cookie, real);
        if (r < 0)
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot create %s",
                                     rec->real_name);
        *ret_created = true;
        return S_OK;
}

/* Puts X (and S, if it was suspended for the hand-over) back as they were after a failed start.
 * A resume that failed after the kernel swapped the tables leaves X suspended on the merge table
 * with no other: X gets its old table (live) again first. */
static void merge_start_undo(const DmInfo *x, const char *live, bool have_snap, const DmSnapshotRecord *rec,
                             bool created_real, uint32_t *cookie) {
        _cleanup_free_ char *now_live = NULL;
        DmRef o = DM_REF_DEVNUM(x->major, x->minor);
        unsigned ma, mi;
        DmInfo now;

        if (dm_device_info(o, &now) >= 0) {
                if (now.inactive_table)
                        (void) dm_device_clear(o);
                if (now.suspended && dm_device_table(o, false, &now_live) >= 0 &&
                    dm_snapshot_table_parse(now_live, "snapshot-merge", &ma, &mi) > 0)
                        (void) dm_device_load(o, live);
                if (now.suspended && dm_device_resume(o, DM_RULES_ALL, cookie) < 0)
                        (void) dm_device_resume(o, DM_RULES_ALL, NULL);
        }
        if (have_snap)
                (void) dm_device_resume(DM_REF_NAME(rec->snapshot_name), DM_RULES_LOW_PRIORITY, cookie);
        if (created_real)
                (void) dm_device_remove(DM_REF_NAME(rec->real_name), cookie);
}

bool dm_snapshot_merge_running(const DmSnapshotRecord *rec) {
        _cleanup_free_ char *live = NULL;
        unsigned ma, mi;
        DmInfo x;

        return dm_snapshot_origin_find(rec, &x) >= 0 &&
               dm_device_table(DM_REF_DEVNUM(x.major, x.minor), false, &live) >= 0 &&
               dm_snapshot_table_parse(live, "snapshot-merge", &ma, &mi) > 0;
}

/* X, found, not left suspended by a start cut short, and its live table. */
static VssCode origin_now(const DmSnapshotRecord *rec, DmInfo *x, char **ret_live, ProviderResult *res) {
        int r;

        r = dm_snapshot_origin_find(rec, x);
        if (r < 0)
                return r == -ENXIO ? S_FALSE : provider_fail(res, 0, r, VSS_E_UNEXPECTED, "Cannot look at %s",
                                                             rec->origin_name);
        /* Only the merge's start suspends X with the record saying merging: a crash in the middle. */
        if (x->suspended) {
                if (dm_device_resume(DM_REF_DEVNUM(x->major, x->minor), DM_RULES_ALL, NULL) < 0)
                        return provider_fail(res, 0, EAGAIN, VSS_E_UNEXPECTED, "%s is suspended and cannot be "
                                             "resumed (see the kernel log)", x->name);
                (void) dm_device_info(DM_REF_DEVNUM(x->major, x->minor), x);
        }
        r = dm_device_table(DM_REF_DEVNUM(x->major, x->minor), false, ret_live);
        if (r < 0 || !(*ret_live)[0])
                return provider_fail(res, 0, r < 0 ? r : ENODATA, VSS_E_BAD_STATE, "Cannot read the table of %s",
                                     x->name);
        return S_OK;
}

/* Without S, nothing copied X's writes into the store since X came up (a reboot): merging the
 * store over them would mix them with the snapshot's data. */
static VssCode origin_untouched_check(const DmSnapshotRecord *rec, const DmInfo *x, ProviderResult *res) {
        uint64_t writes = 0;
        int r;

        r = dm_snapshot_origin_writes(x->major, x->minor, &writes);
        if (r >= 0 && writes == 0)
                return S_OK;
        return provider_fail(res, 0, r < 0 ? r : EEXIST, VSS_E_BAD_STATE, "%s was written since it came up (%" PRIu64
                             " writes) before the merge of %s could be set up again, and merging now would mix those "
                             "writes with the snapshot's data", x->name, writes, rec->snapshot_name);
}

/* The store S uses (S suspended for the hand-over), or one attached now (S is gone). */
static int merge_store(const DmSnapshotRecord *rec, bool have_snap, int *loop_fd, char **loop,
                       unsigned *ret_major, unsigned *ret_minor) {
        _cleanup_free_ char *table = NULL;
        dev_t devnum;
        int r;

        if (!have_snap) {
                r = loop_attach(rec->cow_file, loop_fd, loop, &devnum);
                *ret_major = major(devnum);
                *ret_minor = minor(devnum);
                return r;
        }
        r = dm_device_table(DM_REF_NAME(rec->snapshot_name), false, &table);
        if (r >= 0)
                r = snapshot_table_cow(table, ret_major, ret_minor);
        if (r >= 0)
                r = dm_device_suspend(DM_REF_NAME(rec->snapshot_name), true);
        return r;
}

/* X merges the store, whatever was done of it before (idempotent). *ret_pending: X is open, or
 * not set up yet, so the merge cannot start now; asked again at the next poll. A failure leaves
 * everything as it was. */
static VssCode merge_ensure(const DmSnapshotRecord *rec, bool *ret_pending, ProviderResult *res) {
        _cleanup_free_ char *live = NULL, *table = NULL, *loop = NULL;
        _cleanup_close_ int loop_fd = -EBADF;
        DmInfo x, real, s;
        unsigned ma, mi, cow_major, cow_minor;
        uint64_t length;
        bool have_snap, created_real = false;
        uint32_t cookie = 0;
        VssCode code;
        int r;

        code = origin_now(rec, &x, &live, res);
        *ret_pending = code == S_FALSE;
        if (code != S_OK)
                return code == S_FALSE ? S_OK : code;
        have_snap = dm_device_info(DM_REF_NAME(rec->snapshot_name), &s) >= 0;
        if (dm_snapshot_table_parse(live, "snapshot-merge", &ma, &mi) > 0) {
                /* Running; an S left by a cut-short start was handed over already. */
                if (have_snap)
                        (void) dm_device_remove(DM_REF_NAME(rec->snapshot_name), NULL);
                return S_OK;
        }
        if (x.open_count > 0) {
                *ret_pending = true;
                return S_OK;
        }
        if (have_snap && s.open_count > 0)
                return provider_fail(res, 0, EBUSY, VSS_E_VOLUME_IN_USE, "The snapshot device %s is open (mounted, "
                                     "or used by a program): close it", rec->snapshot_name);
        code = have_snap ? S_OK : origin_untouched_check(rec, &x, res);
        if (code != S_OK)
                return code;
        r = dm_table_length(live, &length);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_BAD_STATE, "Cannot parse the table of %s", x.name);

        (void) dm_udev_cookie_new(&cookie);
        code = real_ensure(rec, live, &real, &created_real, &cookie, res);
        if (code != S_OK)
                goto finish;
        r = merge_store(rec, have_snap, &loop_fd, &loop, &cow_major, &cow_minor);
        if (r < 0) {
                code = provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot reach the "
                                     "copy-on-write store %s of %s", rec->cow_file, rec->snapshot_name);
                goto undo;
        }
        r = dm_snapshot_merge_table(length, real.major, real.minor, cow_major, cow_minor, rec->chunk_sectors, &table);
        if (r >= 0)
                r = dm_device_load(DM_REF_DEVNUM(x.major, x.minor), table);
        if (r >= 0)
                r = dm_device_suspend(DM_REF_DEVNUM(x.major, x.minor), true);
        if (r >= 0)
                r = dm_device_resume(DM_REF_DEVNUM(x.major, x.minor), DM_RULES_ALL, &cookie);
        if (r < 0) {
                code = provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot start "
                                     "merging %s into %s (see the kernel log): nothing was changed",
                                     rec->snapshot_name, x.name);
                goto undo;
        }
        /* Handed over: S fails every I/O from now on, and goes. */
        if (have_snap) {
                r = dm_device_remove(DM_REF_NAME(rec->snapshot_name), &cookie);
                if (r < 0)
                        log_warning_errno(r, "The merge into %s runs, but %s could not be removed: %m; it is "
                                          "removed when the merge is done", x.name, rec->snapshot_name);
        }
        code = S_OK;
        goto finish;

undo:
        merge_start_undo(&x, live, have_snap, rec, created_real, &cookie);
finish:
        (void) dm_udev_cookie_wait(&cookie);
        return code;
}

VssCode dm_snapshot_revert_start(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                 ProviderResult *res) {
        _cleanup_(dm_snapshot_record_done) DmSnapshotRecord rec = {};
        json_object *j;
        uint64_t used;
        DmInfo x, s;
        bool pending;
        VssCode code;
        int r;

        code = dm_snapshot_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        r = dm_snapshot_origin_find(&rec, &x);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_OBJECT_NOT_FOUND, "The origin %s of snapshot %s is not there: "
                                     "set it up, then revert", rec.origin_name, snap->id);
        if (x.open_count > 0)
                return provider_fail(res, 0, EBUSY, VSS_E_VOLUME_IN_USE, "'%s' is open (mounted, or used by another "
                                     "device): unmount it and revert again, or revert with forceDismount (snapsetctl "
                                     "revert --force-dismount)", x.name);
        if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) >= 0 && s.open_count > 0)
                return provider_fail(res, 0, EBUSY, VSS_E_VOLUME_IN_USE, "The snapshot device %s is open (mounted, or "
                                     "used by a program): close it and revert again", rec.snapshot_name);
        code = snapshot_usage(&rec, &used, res);
        if (code != S_OK)
                return code;

        rec.merging = true;
        rec.merge_start_sectors = used;
        r = dm_snapshot_record_to_json(&rec, &j);
        if (r >= 0)
                r = provider_revert_commit(ret, snap, j);
        if (r < 0)
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_UNEXPECTED), "Cannot record that "
                                     "snapshot %s is being merged: nothing was changed", snap->id);
        code = merge_ensure(&rec, &pending, res);
        if (code != S_OK) {
                /* Nothing changed: the revert is not recorded any more either. */
                rec.merging = false;
                rec.merge_start_sectors = 0;
                if (dm_snapshot_record_to_json(&rec, &j) >= 0)
                        provider_revert_uncommit(ret, snap, j);
                return code;
        }
        ret->pending = pending;
        ret->percent = 0;
        return S_OK;
}

/* The merge is done and X no longer needs it: the snapshot's teardown (the store, the loop
 * device, REAL, and X's own table back when no other snapshot is left). Also what is left of a
 * teardown cut short. Its udev events join *cookie, which this waits on. */
static VssCode merge_leftovers_removed(const DmSnapshotRecord *rec, uint32_t *cookie, ProviderRevert *ret,
                                       ProviderResult *res) {
        char msg[256];
        int r;

        r = dm_snapshot_teardown(rec, false, cookie, msg, sizeof msg);
        (void) dm_udev_cookie_wait(cookie);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "The merge into %s is done, but cleaning up "
                                     "failed: %s", rec->origin_name, msg);
        return provider_revert_done(ret);
}

/* The merge is done: X routes through REAL as for any snapshot, then the teardown. */
static VssCode merge_finish(const DmSnapshotRecord *rec, const DmInfo *x, uint64_t length, unsigned real_major,
                            unsigned real_minor, ProviderRevert *ret, ProviderResult *res) {
        _cleanup_free_ char *table = NULL;
        uint32_t cookie = 0;
        int r;

        /* One wait for udev, after the teardown: the swap's uevent and the removals' together. */
        (void) dm_udev_cookie_new(&cookie);
        r = dm_snapshot_origin_table(length, real_major, real_minor, &table);
        if (r >= 0)
                r = dm_device_swap_table(DM_REF_DEVNUM(x->major, x->minor), table, &cookie);
        if (r < 0) {
                (void) dm_udev_cookie_wait(&cookie);
                return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "The merge into %s is done, but it cannot leave "
                                     "the merge table: %s", x->name, strerrordesc_np(-r) ?: "unknown error");
        }
        return merge_leftovers_removed(rec, &cookie, ret, res);
}

VssCode dm_snapshot_revert_progress(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                    ProviderResult *res) {
        _cleanup_(dm_snapshot_record_done) DmSnapshotRecord rec = {};
        _cleanup_free_ char *live = NULL, *type = NULL, *params = NULL;
        uint64_t used, total, metadata, length;
        unsigned ma, mi;
        const char *state;
        DmInfo x;
        VssCode code;
        int r;

        code = dm_snapshot_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (!rec.merging)
                return provider_fail(res, 0, 0, VSS_E_BAD_STATE, "Snapshot %s is not being merged", snap->id);
        if (!dm_snapshot_merge_running(&rec)) {
                /* Cut short after the merge was done and its store removed: only the rest of the
                 * teardown may be left. */
                if (access(rec.cow_file, F_OK) < 0 && errno == ENOENT) {
                        uint32_t cookie = 0;

                        (void) dm_udev_cookie_new(&cookie);
                        return merge_leftovers_removed(&rec, &cookie, ret, res);
                }
                /* Cut short before the merge ran, or X came back without it: start it. */
                code = merge_ensure(&rec, &ret->pending, res);
                ret->percent = 0;
                return code;
        }
        if (dm_snapshot_origin_find(&rec, &x) < 0 ||
            dm_device_table(DM_REF_DEVNUM(x.major, x.minor), false, &live) < 0 ||
            dm_snapshot_table_parse(live, "snapshot-merge", &ma, &mi) <= 0)
                return provider_fail(res, 0, ENXIO, VSS_E_UNEXPECTED, "The merge into %s stopped while it was being "
                                     "looked at", rec.origin_name);
        r = dm_device_status(DM_REF_DEVNUM(x.major, x.minor), &type, &params);
        if (r >= 0)
                r = dm_snapshot_status_parse(params, &used, &total, &metadata, &state);
        if (r == -EINVAL)
                /* VSS_E_BAD_STATE: the revert is failed, and snapsetd stops asking. */
                return provider_fail(res, 0, 0, VSS_E_BAD_STATE, "the kernel reports the merge of %s into %s as "
                                     "'%s' (see the kernel log)", snap->id, x.name, state);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "Cannot read the merge's status of %s", x.name);
        if (used > metadata) {
                ret->percent = rec.merge_start_sectors > metadata && rec.merge_start_sectors >= used ?
                        100.0 * (double) (rec.merge_start_sectors - used) / (double) (rec.merge_start_sectors - metadata) :
                        -1;
                return S_OK;
        }
        r = dm_table_length(live, &length);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "Cannot parse the table of %s", x.name);
        return merge_finish(&rec, &x, length, ma, mi, ret, res);
}

VssCode dm_snapshot_merge_activate(Snapshot *snap, DmSnapshotRecord *rec, ProviderResult *res) {
        bool pending;
        VssCode code;

        code = merge_ensure(rec, &pending, res);
        if (code == S_OK && pending)
                log_notice("The merge of snapshot %s into %s waits until %s is set up and closed.", snap->id,
                           rec->origin_name, rec->origin_name);
        return code;
}

/* ---------------------------------------------------------------- break */

#define COPY_CHUNK (1024 * 1024)
#define WATCHDOG_PING_USEC (10 * USEC_PER_SEC)

static bool all_zero(const uint8_t *p, size_t n) {
        return n == 0 || (p[0] == 0 && memcmp(p, p + 1, n - 1) == 0);
}

/* Copies size bytes of the device at from into a new sparse file at to, fsync'd. A copy of a
 * large volume takes long: the service watchdog is told that snapsetd is alive meanwhile. */
static int copy_sparse(const char *from, const char *to, uint64_t size) {
        _cleanup_close_ int in = -EBADF, out = -EBADF;
        _cleanup_free_ uint8_t *buf = NULL;
        uint64_t next_ping = now_monotonic_usec() + WATCHDOG_PING_USEC;

        in = open(from, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        if (in < 0)
                return -errno;
        out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
        if (out < 0)
                return -errno;
        buf = malloc(COPY_CHUNK);
        if (!buf)
                return -ENOMEM;
        if (ftruncate(out, (off_t) size) < 0)
                return -errno;
        for (uint64_t off = 0; off < size;) {
                size_t want = size - off < COPY_CHUNK ? (size_t) (size - off) : COPY_CHUNK;
                ssize_t n = pread(in, buf, want, (off_t) off);

                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return -errno;
                if (n == 0)
                        return -EIO;     /* shorter than its table says */
                if (!all_zero(buf, (size_t) n)) {
                        for (ssize_t done = 0; done < n;) {
                                ssize_t w = pwrite(out, buf + done, (size_t) (n - done), (off_t) off + done);
                                if (w < 0 && errno == EINTR)
                                        continue;
                                if (w < 0)
                                        return -errno;
                                done += w;
                        }
                }
                off += (uint64_t) n;
                if (now_monotonic_usec() >= next_ping) {
                        (void) sd_notify(false, "WATCHDOG=1");
                        next_ping = now_monotonic_usec() + WATCHDOG_PING_USEC;
                }
        }
        return fsync(out) < 0 ? -errno : 0;
}

/* A loop device on the image that stays when its opener closes it (loop.h makes them go). */
static int image_attach(const char *image, char **ret_device) {
        _cleanup_close_ int fd = -EBADF;
        dev_t devnum;
        int r;

        r = loop_attach(image, &fd, ret_device, &devnum);
        if (r < 0)
                return r;
        r = loop_keep(fd);
        if (r < 0) {
                (void) loop_detach_if_backing(*ret_device, image);
                free(*ret_device);
                *ret_device = NULL;
        }
        return r;
}

VssCode dm_snapshot_break(Snapshot *snap, const ProviderSettings *settings, char **ret_device, ProviderResult *res) {
        _cleanup_(dm_snapshot_record_done) DmSnapshotRecord rec = {};
        _cleanup_free_ char *dir = NULL, *image = NULL, *from = NULL, *table = NULL, *device = NULL;
        uint64_t length, free_bytes;
        uint32_t cookie = 0;
        char msg[256];
        struct stat st;
        DmInfo s;
        VssCode code;
        int r;

        code = dm_snapshot_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (rec.merging)
                return provider_fail(res, 0, 0, VSS_E_REVERT_IN_PROGRESS, "Snapshot %s is being merged into %s; "
                                     "nothing was changed", snap->id, rec.origin_name);
        dir = strdup(rec.cow_file);
        if (!dir || asprintf(&image, "%s/%s_snap_%.8s.img", dirname(dir), rec.origin_name, snap->id) < 0 ||
            asprintf(&from, "/dev/mapper/%s", rec.snapshot_name) < 0)
                return provider_fail(res, 0, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) < 0 || !s.live_table)
                return provider_fail(res, 0, ENXIO, VSS_E_OBJECT_NOT_FOUND, "The snapshot device %s is not active: "
                                     "nothing was changed", rec.snapshot_name);
        if (s.open_count > 0)
                return provider_fail(res, 0, EBUSY, VSS_E_VOLUME_IN_USE, "The snapshot device %s is open (mounted, or "
                                     "used by a program): nothing was changed", rec.snapshot_name);
        if (stat(image, &st) >= 0)
                return provider_fail(res, 0, EEXIST, VSS_E_OBJECT_ALREADY_EXISTS, "%s exists already: nothing was "
                                     "changed", image);
        r = dm_device_table(DM_REF_NAME(rec.snapshot_name), false, &table);
        if (r >= 0)
                r = dm_table_length(table, &length);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_BAD_STATE, "Cannot read the table of %s", rec.snapshot_name);
        r = cow_directory_free(dir, &free_bytes);
        if (r >= 0 && free_bytes < length * 512)
                return provider_fail(res, 0, ENOSPC, VSS_E_INSUFFICIENT_STORAGE, "Breaking snapshot %s off copies it "
                                     "into %s, which needs up to %" PRIu64 " MiB; %s has %" PRIu64 " MiB free: "
                                     "nothing was changed", snap->id, image, length * 512 >> 20, dir, free_bytes >> 20);

        r = copy_sparse(from, image, length * 512);
        if (r >= 0)
                r = image_attach(image, &device);
        if (r < 0) {
                (void) unlink(image);
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot copy %s into "
                                     "%s: %s; nothing was changed", from, image, strerrordesc_np(-r) ?: "error");
        }
        r = dm_snapshot_teardown(&rec, false, &cookie, msg, sizeof msg);
        (void) dm_udev_cookie_wait(&cookie);
        if (r < 0 && access(rec.cow_file, F_OK) >= 0 && dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) >= 0) {
                (void) loop_detach_if_backing(device, image);
                (void) unlink(image);
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "The snapshot was "
                                     "copied, but removing it failed (%s): the copy is gone again, the snapshot "
                                     "stays", msg);
        }
        if (r < 0)
                /* Part of the snapshot is gone with its store: the copy is now the only one. */
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "The snapshot was "
                                     "copied into %s (attached as %s), but removing it failed half way (%s): keep "
                                     "the copy, and delete the snapshot again", image, device, msg);
        log_info("Snapshot %s of %s is now the image %s, attached as %s (after a reboot: losetup --find --show %s).",
                 snap->id, rec.origin_name, image, device, image);
        *ret_device = TAKE_PTR(device);
        return S_OK;
}

int dm_snapshot_merge_stop(const DmSnapshotRecord *rec) {
        _cleanup_free_ char *live = NULL, *table = NULL;
        uint64_t length;
        unsigned ma, mi;
        uint32_t cookie = 0;
        DmInfo x;
        int r;

        r = dm_snapshot_origin_find(rec, &x);
        if (r >= 0)
                r = dm_device_table(DM_REF_DEVNUM(x.major, x.minor), false, &live);
        if (r < 0 || dm_snapshot_table_parse(live, "snapshot-merge", &ma, &mi) <= 0)
                return r < 0 ? r : 0;
        r = dm_table_length(live, &length);
        if (r >= 0)
                r = dm_snapshot_origin_table(length, ma, mi, &table);
        if (r >= 0) {
                (void) dm_udev_cookie_new(&cookie);
                r = dm_device_swap_table(DM_REF_DEVNUM(x.major, x.minor), table, &cookie);
                (void) dm_udev_cookie_wait(&cookie);
        }
        return r;
}
