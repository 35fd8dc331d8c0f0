/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The dm-snapshot provider: classic snapshot-origin/snapshot targets, for any device-mapper
 * device that LVM does not manage and that is not a thin volume (linear, striped, crypt,
 * multipath, ...). The copy-on-write store is a preallocated file outside the set, attached
 * through a loop device. The devices are described in dm-snapshot.h.
 *
 * The phases (provider.h), for each origin X and snapshot S:
 *
 *   begin_prepare   COW file + loop device; snapset-real-ID with X's table (active: it maps
 *                   the same blocks X does, and nobody uses it yet); X gets the INACTIVE table
 *                   "snapshot-origin REAL"; snapset-S is created with the INACTIVE table
 *                   "snapshot REAL LOOP P 8". The kernel reads (and for a new store writes) the
 *                   COW header when the table is loaded, but copies origin writes only into
 *                   active snapshots: nothing changes for X's users yet.
 *   end_prepare     the udev cookie for the window's resumes (a semaphore: made now, not then)
 *   hold_writes     suspend X, skip-lockfs (the coordinator froze the filesystem already), and
 *                   with a flush, so that every acknowledged write is in what REAL maps
 *   commit          resume snapset-S: this is the point in time
 *   release_writes  resume X: its snapshot-origin table goes live, and from now on every first
 *                   write to a chunk of X is copied into the store first. Not committed: clear
 *                   X's inactive table first, so that X resumes exactly as it was
 *   post_commit     wait for udev, check that S is valid, S->device = /dev/mapper/snapset-S
 *
 * Between hold_writes and release_writes nothing here allocates (but libdm's task, see dm.h),
 * logs, or looks up a path: devices are named by major:minor, failures go into the preallocated
 * ProviderResult with strerrordesc_np(), which is neither translated nor allocated.
 *
 * Everything that undoes (abort, recover, delete) goes through one idempotent teardown that
 * looks at what exists, so that it works from any phase, after a crash, and twice. */

#include <fcntl.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "json-util.h"
#include "cow.h"
#include "dm-snapshot-stores.h"
#include "dm-snapshot.h"
#include "dm.h"
#include "dm-hold.h"
#include "dm-undo.h"
#include "device-graph.h"
#include "window-crew.h"
#include "json-dispatch.h"
#include "log.h"
#include "loop.h"
#include "provider.h"
#include "result.h"
#include "snapshot-set.h"

#define REAL_NAME_PREFIX DM_SNAPSHOT_REAL_NAME_PREFIX
#define REAL_UUID_PREFIX DM_SNAPSHOT_REAL_UUID_PREFIX
#define SNAPSHOT_NAME_PREFIX SNAPSET_DM_NAME_PREFIX
/* The longest ID that fits both the name (127) and the UUID (128) after its prefix. */
#define REAL_ID_MAX (DM_NAME_MAX - (sizeof(REAL_NAME_PREFIX) - 1))
/* Why a dm-crypt device is not snapshotted itself: its snapshot would keep the plaintext in a
 * COW store elsewhere, and its table, which the origin's real device must copy and the record
 * must keep, holds the volume key (or, for LUKS2, a keyring reference that cannot be loaded
 * again). The device under it holds the ciphertext and the LUKS header. */
#define CRYPT_ADVICE "a dm-crypt device: snapshot the device under it (the one holding the LUKS " \
        "header) instead; that snapshot stays encrypted, and the filesystem on top is frozen " \
        "through the stack"

/* ---------------------------------------------------------------- the record */

void dm_snapshot_record_done(DmSnapshotRecord *r) {
        free(r->origin_name);
        free(r->origin_uuid);
        free(r->origin_table);
        free(r->real_name);
        free(r->real_uuid);
        free(r->snapshot_name);
        free(r->snapshot_uuid);
        free(r->cow_file);
        free(r->loop_device);
        *r = (DmSnapshotRecord) {};
}

int dm_snapshot_record_to_json(const DmSnapshotRecord *r, json_object **ret) {
        json_object *o;
        int k = 0;

        o = json_object_new_object();
        if (!o)
                return -ENOMEM;
        k = k ?: json_add(o, "version", json_object_new_int(DM_SNAPSHOT_RECORD_VERSION));
        k = k ?: json_add(o, "originName", json_object_new_string(strempty(r->origin_name)));
        k = k ?: json_add_string_or_null(o, "originUuid", r->origin_uuid);
        k = k ?: json_add(o, "originMajor", json_object_new_int64(r->origin_major));
        k = k ?: json_add(o, "originMinor", json_object_new_int64(r->origin_minor));
        k = k ?: json_add(o, "originTable", json_object_new_string(strempty(r->origin_table)));
        k = k ?: json_add(o, "realName", json_object_new_string(strempty(r->real_name)));
        k = k ?: json_add(o, "realUuid", json_object_new_string(strempty(r->real_uuid)));
        k = k ?: json_add(o, "snapshotName", json_object_new_string(strempty(r->snapshot_name)));
        k = k ?: json_add(o, "snapshotUuid", json_object_new_string(strempty(r->snapshot_uuid)));
        k = k ?: json_add(o, "cowFile", json_object_new_string(strempty(r->cow_file)));
        k = k ?: json_add(o, "cowSizeBytes", json_object_new_int64((int64_t) r->cow_size));
        k = k ?: json_add(o, "chunkSectors", json_object_new_int64(r->chunk_sectors));
        k = k ?: json_add_string_or_null(o, "loopDevice", r->loop_device);
        k = k ?: json_add(o, "createdReal", json_object_new_boolean(r->created_real));
        k = k ?: json_add(o, "loadedOriginTable", json_object_new_boolean(r->loaded_origin_table));
        if (!k && r->merging) {
                k = json_add(o, "merging", json_object_new_boolean(true));
                k = k ?: json_add(o, "mergeStartSectors", json_object_new_int64((int64_t) r->merge_start_sectors));
        }
        if (!k && r->cow_total_sectors > 0) {
                k = json_add(o, "cowUsedSectors", json_object_new_int64((int64_t) r->cow_used_sectors));
                k = k ?: json_add(o, "cowTotalSectors", json_object_new_int64((int64_t) r->cow_total_sectors));
        }
        if (k < 0) {
                json_object_put(o);
                return k;
        }
        *ret = o;
        return 0;
}

typedef struct RecordJson {
        uint64_t version, origin_major, origin_minor, chunk_sectors;
        DmSnapshotRecord r;
} RecordJson;

#define R(f) offsetof(RecordJson, r.f)
static const JsonDispatch record_table[] = {
        { "version",           JSON_DISPATCH_UINT64, offsetof(RecordJson, version), JSON_MANDATORY },
        { "originName",        JSON_DISPATCH_STRING, R(origin_name),         JSON_MANDATORY },
        { "originUuid",        JSON_DISPATCH_STRING, R(origin_uuid),         JSON_NULLABLE },
        { "originMajor",       JSON_DISPATCH_UINT64, offsetof(RecordJson, origin_major), JSON_MANDATORY },
        { "originMinor",       JSON_DISPATCH_UINT64, offsetof(RecordJson, origin_minor), JSON_MANDATORY },
        { "originTable",       JSON_DISPATCH_STRING, R(origin_table),        JSON_MANDATORY },
        { "realName",          JSON_DISPATCH_STRING, R(real_name),           JSON_MANDATORY },
        { "realUuid",          JSON_DISPATCH_STRING, R(real_uuid),           JSON_MANDATORY },
        { "snapshotName",      JSON_DISPATCH_STRING, R(snapshot_name),       JSON_MANDATORY },
        { "snapshotUuid",      JSON_DISPATCH_STRING, R(snapshot_uuid),       JSON_MANDATORY },
        { "cowFile",           JSON_DISPATCH_STRING, R(cow_file),            JSON_MANDATORY },
        { "cowSizeBytes",      JSON_DISPATCH_UINT64, R(cow_size),            JSON_MANDATORY },
        { "chunkSectors",      JSON_DISPATCH_UINT64, offsetof(RecordJson, chunk_sectors), JSON_MANDATORY },
        { "loopDevice",        JSON_DISPATCH_STRING, R(loop_device),         JSON_NULLABLE },
        { "createdReal",       JSON_DISPATCH_BOOL,   R(created_real),        0 },
        { "loadedOriginTable", JSON_DISPATCH_BOOL,   R(loaded_origin_table), 0 },
        { "cowUsedSectors",    JSON_DISPATCH_UINT64, R(cow_used_sectors),    0 },
        { "cowTotalSectors",   JSON_DISPATCH_UINT64, R(cow_total_sectors),   0 },
        { "merging",           JSON_DISPATCH_BOOL,   R(merging),             0 },
        { "mergeStartSectors", JSON_DISPATCH_UINT64, R(merge_start_sectors), 0 },
        {}
};
#undef R

int dm_snapshot_record_from_json(json_object *j, DmSnapshotRecord *ret) {
        RecordJson rj = {};
        int r;

        if (!j || !json_object_is_type(j, json_type_object))
                return -EBADMSG;
        r = json_dispatch(j, record_table, &rj, NULL);
        if (r == -ENOMEM)
                goto fail;
        if (r < 0 || rj.version != DM_SNAPSHOT_RECORD_VERSION || rj.origin_major > UINT32_MAX ||
            rj.origin_minor > UINT32_MAX || rj.chunk_sectors == 0 || rj.chunk_sectors > UINT32_MAX ||
            !rj.r.origin_name[0] || !rj.r.real_name[0] || !rj.r.snapshot_name[0] || !rj.r.cow_file[0]) {
                r = -EBADMSG;
                goto fail;
        }
        rj.r.origin_major = (unsigned) rj.origin_major;
        rj.r.origin_minor = (unsigned) rj.origin_minor;
        rj.r.chunk_sectors = (unsigned) rj.chunk_sectors;
        *ret = rj.r;
        return 0;

fail:
        json_dispatch_done(record_table, &rj);
        return r;
}

/* ---------------------------------------------------------------- names and tables */

/* What libdm and udev keep in a /dev/mapper name as it is (libdm's whitelist for mangling). */
static bool dm_name_char_ok(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
               (c && strchr("#+-.:=@_", c));
}

/* FNV-1a, 64 bit: stable across versions and machines, which is all this needs. */
static uint64_t fnv1a64(const char *s) {
        uint64_t h = UINT64_C(0xcbf29ce484222325);

        for (; *s; s++) {
                h ^= (unsigned char) *s;
                h *= UINT64_C(0x100000001b3);
        }
        return h;
}

int dm_snapshot_real_names(const char *origin_uuid, const char *origin_name, char **ret_name, char **ret_uuid) {
        const char *source = origin_uuid && origin_uuid[0] ? origin_uuid : origin_name;
        _cleanup_free_ char *name = NULL, *uuid = NULL;
        char id[REAL_ID_MAX + 1];
        size_t len;
        bool clean = true;

        if (!source || !source[0])
                return -EINVAL;
        len = strlen(source);
        for (size_t i = 0; i < len; i++)
                clean = clean && dm_name_char_ok(source[i]);

        if (clean && len <= REAL_ID_MAX)
                memcpy(id, source, len + 1);
        else {
                /* "<sanitised prefix>-<16 hex digits>", exactly REAL_ID_MAX long at most. */
                size_t keep = REAL_ID_MAX - 17;

                if (keep > len)
                        keep = len;
                for (size_t i = 0; i < keep; i++)
                        id[i] = dm_name_char_ok(source[i]) ? source[i] : '_';
                snprintf(id + keep, sizeof(id) - keep, "-%016" PRIx64, fnv1a64(source));
        }
        if (asprintf(&name, REAL_NAME_PREFIX "%s", id) < 0 || asprintf(&uuid, REAL_UUID_PREFIX "%s", id) < 0)
                return -ENOMEM;
        *ret_name = TAKE_PTR(name);
        *ret_uuid = TAKE_PTR(uuid);
        return 0;
}

int dm_snapshot_status_parse(const char *params, uint64_t *ret_used, uint64_t *ret_total,
                             uint64_t *ret_metadata, const char **ret_state) {
        static const char *const bad[] = { "Invalid", "Overflow", "Merge failed", "Unknown" };
        unsigned long long used, total, metadata;
        int n = 0;

        for (size_t i = 0; i < ELEMENTSOF(bad); i++)
                if (startswith(params, bad[i])) {
                        *ret_state = bad[i];
                        return -EINVAL;
                }
        if (sscanf(params, "%llu/%llu %llu%n", &used, &total, &metadata, &n) != 3 || params[n] != 0 ||
            total == 0 || used > total)
                return -EBADMSG;
        *ret_used = used;
        *ret_total = total;
        *ret_metadata = metadata;
        *ret_state = NULL;
        return 0;
}

int dm_snapshot_origin_table(uint64_t length, unsigned real_major, unsigned real_minor, char **ret) {
        return asprintf(ret, "0 %" PRIu64 " snapshot-origin %u:%u\n", length, real_major, real_minor) < 0 ? -ENOMEM : 0;
}

int dm_snapshot_snapshot_table(uint64_t length, unsigned real_major, unsigned real_minor,
                               unsigned cow_major, unsigned cow_minor, unsigned chunk_sectors, char **ret) {
        /* P: persistent, so that the snapshot survives a reboot. Not PO: "Overflow" only differs
         * for writes to the snapshot, and snapset exposes snapshots read-only. */
        return asprintf(ret, "0 %" PRIu64 " snapshot %u:%u %u:%u P %u\n", length, real_major, real_minor,
                        cow_major, cow_minor, chunk_sectors) < 0 ? -ENOMEM : 0;
}

int dm_snapshot_merge_table(uint64_t length, unsigned real_major, unsigned real_minor,
                            unsigned cow_major, unsigned cow_minor, unsigned chunk_sectors, char **ret) {
        return asprintf(ret, "0 %" PRIu64 " snapshot-merge %u:%u %u:%u P %u\n", length, real_major, real_minor,
                        cow_major, cow_minor, chunk_sectors) < 0 ? -ENOMEM : 0;
}

int dm_snapshot_table_parse(const char *table, const char *type, unsigned *ret_major, unsigned *ret_minor) {
        _cleanup_free_ char *t = NULL, *params = NULL;
        size_t len = strcspn(table, "\n");
        uint64_t start, length;
        unsigned ma, mi;
        int n = 0, r;

        if (len == 0)
                return 0;
        r = dm_table_line_parse(table, len, &start, &length, &t, &params);
        if (r < 0)
                return r == -ENOMEM ? r : 0;
        if (!streq(t, type))
                return 0;
        /* Exactly one target. */
        if (table[len] == '\n' && table[len + 1 + strspn(table + len + 1, " \t\r\n")] != 0)
                return 0;
        /* snapshot-origin has only its origin; the others go on after it. */
        if (sscanf(params, "%u:%u%n", &ma, &mi, &n) != 2 ||
            (streq(type, "snapshot-origin") ? params[n] != 0 : params[n] != ' '))
                return -EINVAL;
        *ret_major = ma;
        *ret_minor = mi;
        return 1;
}

int dm_snapshot_origin_table_parse(const char *table, unsigned *ret_major, unsigned *ret_minor) {
        return dm_snapshot_table_parse(table, "snapshot-origin", ret_major, ret_minor);
}

bool dm_snapshot_table_uses_real(const char *table, unsigned major, unsigned minor) {
        for (const char *l = table; *l; ) {
                size_t len = strcspn(l, "\n");
                _cleanup_free_ char *type = NULL, *params = NULL;
                uint64_t start, length;
                unsigned ma, mi;

                if (dm_table_line_parse(l, len, &start, &length, &type, &params) >= 0 &&
                    (streq(type, "snapshot") || streq(type, "snapshot-merge")) &&
                    sscanf(params, "%u:%u", &ma, &mi) == 2 && ma == major && mi == minor)
                        return true;
                l += len;
                if (*l)
                        l++;
        }
        return false;
}

/* ---------------------------------------------------------------- state between phases */

typedef struct DmSnapState {
        DmSnapshotRecord rec;
        unsigned origin_major, origin_minor;
        unsigned real_major, real_minor;
        unsigned snap_major, snap_minor;
        bool origin_suspended;
        bool snapshot_resumed;
        bool origin_cleared;
        /* begin_prepare's udev events (the real device), waited on in end_prepare with every other
         * volume's, not one volume after another. Per snapshot, not per set: a failed add is
         * aborted alone, on a copy of the set's share. */
        uint32_t prepare_cookie;
        bool have_prepare_cookie;
} DmSnapState;

typedef struct DmSetState {
        /* One udev cookie for every resume inside the window, made before it and waited on
         * after it (post_commit or abort): never a udev wait while an origin is suspended. */
        uint32_t cookie;
        bool have_cookie;
        /* The window's suspends and resumes, all at once (window-crew.h): made at pre_commit. */
        WindowCrew *crew;
} DmSetState;

static void snap_state_free(DmSnapState *s) {
        if (!s)
                return;
        if (s->have_prepare_cookie)
                (void) dm_udev_cookie_wait(&s->prepare_cookie);
        dm_snapshot_record_done(&s->rec);
        free(s);
}

static void set_state_free(ProviderSet *ps) {
        DmSetState *s = ps->state;

        if (s && s->have_cookie)
                (void) dm_udev_cookie_wait(&s->cookie);
        if (s)
                window_crew_free(s->crew);
        free(s);
        ps->state = NULL;
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                snap_state_free(ps->snapshots[i]->state);
                ps->snapshots[i]->state = NULL;
        }
}

/* ---------------------------------------------------------------- teardown */

int dm_snapshot_origin_find(const DmSnapshotRecord *rec, DmInfo *ret) {
        int r = -ENXIO;

        if (rec->origin_uuid)
                r = dm_device_info((DmRef) { .uuid = rec->origin_uuid }, ret);
        if (r == -ENXIO)
                r = dm_device_info(DM_REF_NAME(rec->origin_name), ret);
        return r;
}

/* Whether a snapset snapshot device other than except has a live or inactive table on real. */
static int real_has_other_users(unsigned real_major, unsigned real_minor, const char *except, bool *ret) {
        char **names = NULL;
        bool used = false;
        int r;

        r = dm_device_list(&names);
        if (r < 0)
                return r;
        for (char **n = names; *n && !used; n++) {
                if (!startswith(*n, SNAPSHOT_NAME_PREFIX) || startswith(*n, REAL_NAME_PREFIX) ||
                    streq_ptr(*n, except))
                        continue;
                for (int inactive = 0; inactive <= 1 && !used; inactive++) {
                        _cleanup_free_ char *t = NULL;

                        if (dm_device_table(DM_REF_NAME(*n), inactive, &t) >= 0)
                                used = dm_snapshot_table_uses_real(t, real_major, real_minor);
                }
        }
        blockdev_strv_free(names);
        *ret = used;
        return 0;
}

static void keep_first(int *first, char *msg, size_t n, int r, const char *what, const char *dev) {
        if (r >= 0 || *first < 0)
                return;
        *first = r;
        snprintf(msg, n, "%s %s: %s", what, dev, strerrordesc_np(-r) ?: "unknown error");
}

/* Removes whatever exists of the snapshot rec describes, and puts its origin back when it was
 * the origin's last snapset snapshot. Idempotent; goes on after a failure and returns the first
 * one (message in msg). resume_suspended_origin: the origin may have been left suspended by us
 * (a crash or a failure inside the window): resume it. */
int dm_snapshot_teardown(const DmSnapshotRecord *rec, bool resume_suspended_origin, uint32_t *cookie,
                         char *msg, size_t msg_size) {
        _cleanup_free_ char *live = NULL, *inactive = NULL, *real_table = NULL;
        DmInfo origin = {}, real = {}, snap = {};
        bool have_origin, have_real, have_snap, snap_gone, origin_uses_real = false, others = false;
        unsigned ma, mi;
        int first = 0, r;

        msg[0] = 0;
        have_origin = rec->origin_name && dm_snapshot_origin_find(rec, &origin) >= 0;
        have_real = rec->real_name && dm_device_info(DM_REF_NAME(rec->real_name), &real) >= 0;
        have_snap = rec->snapshot_name && dm_device_info(DM_REF_NAME(rec->snapshot_name), &snap) >= 0;
        DmRef o = DM_REF_DEVNUM(origin.major, origin.minor);

        snap_gone = !have_snap;

        if (have_origin && have_real) {
                /* An inactive snapshot-origin table that we loaded and that never went live. */
                if (origin.inactive_table && dm_device_table(o, true, &inactive) >= 0 &&
                    dm_snapshot_origin_table_parse(inactive, &ma, &mi) > 0 && ma == real.major && mi == real.minor) {
                        r = dm_device_clear(o);
                        keep_first(&first, msg, msg_size, r, "clearing the inactive table of", origin.name);
                }
        }
        if (have_origin && origin.suspended && resume_suspended_origin) {
                r = dm_device_resume(o, DM_RULES_ALL, cookie);
                keep_first(&first, msg, msg_size, r, "resuming", origin.name);
        }
        if (have_origin && have_real && dm_device_table(o, false, &live) >= 0)
                origin_uses_real = dm_snapshot_origin_table_parse(live, &ma, &mi) > 0 &&
                                   ma == real.major && mi == real.minor;
        if (have_real) {
                r = real_has_other_users(real.major, real.minor, rec->snapshot_name, &others);
                keep_first(&first, msg, msg_size, r, "listing the snapshots of", real.name);
                if (r < 0)
                        others = true;   /* do not take the origin's snapshot-origin away */
        }

        /* The last snapshot of the origin: the origin gets its own table back first (the real
         * device's, which is the original one, with the device numbers of this boot), so that
         * no snapshot target is unloaded under a live snapshot-origin. */
        if (origin_uses_real && !others) {
                r = dm_device_table(DM_REF_NAME(rec->real_name), false, &real_table);
                if (r >= 0 && !real_table[0]) {
                        free(real_table);
                        real_table = strdup(strempty(rec->origin_table));
                        r = real_table ? 0 : -ENOMEM;
                }
                if (r >= 0)
                        r = dm_device_swap_table(o, real_table, cookie);   /* skip-lockfs: the same blocks */
                keep_first(&first, msg, msg_size, r, "restoring the original table of", origin.name);
                if (r >= 0)
                        origin_uses_real = false;
        }

        if (have_snap) {
                if (origin_uses_real) {
                        /* Other snapshots stay: unload this one with the origin suspended, as
                         * the kernel's snapshot documentation asks. Not while the snapshot is
                         * open: the remove would fail after the origin was suspended for
                         * nothing. */
                        if (snap.open_count > 0)
                                r = -EBUSY;
                        else {
                                r = dm_device_suspend(o, true);
                                if (r >= 0) {
                                        r = dm_device_remove(DM_REF_NAME(rec->snapshot_name), cookie);
                                        int q = dm_device_resume(o, DM_RULES_ALL, cookie);
                                        if (q < 0)
                                                q = dm_device_resume(o, DM_RULES_ALL, NULL);
                                        keep_first(&first, msg, msg_size, q, "resuming", origin.name);
                                }
                        }
                } else
                        r = dm_device_remove(DM_REF_NAME(rec->snapshot_name), cookie);
                keep_first(&first, msg, msg_size, r, "removing", rec->snapshot_name);
                snap_gone = r >= 0;
        }

        if (have_real && !origin_uses_real && !others) {
                r = dm_device_remove(DM_REF_NAME(rec->real_name), cookie);
                keep_first(&first, msg, msg_size, r, "removing", rec->real_name);
        }

        /* With autoclear the loop device went with the snapshot device's table; this is for the
         * cases where it did not (the snapshot device was never created), or where the recorded
         * number is stale (after a reboot it may belong to another file: checked by inode). A
         * snapshot device that could not be removed keeps its store. */
        if (rec->cow_file && snap_gone) {
                _cleanup_free_ char *loop = NULL;
                dev_t devnum;

                if (rec->loop_device)
                        (void) loop_detach_if_backing(rec->loop_device, rec->cow_file);
                if (loop_find_by_backing(rec->cow_file, &loop, &devnum) > 0) {
                        r = loop_detach_if_backing(loop, rec->cow_file);
                        keep_first(&first, msg, msg_size, r, "detaching", loop);
                }
                if (unlink(rec->cow_file) < 0 && errno != ENOENT)
                        keep_first(&first, msg, msg_size, -errno, "removing", rec->cow_file);
        }
        return first;
}

/* ---------------------------------------------------------------- prepare */

/* Whether a line of table has target type. */
static bool table_has_target(const char *table, const char *type) {
        for (const char *line = table; line && *line;) {
                const char *nl = strchr(line, '\n');
                size_t len = nl ? (size_t) (nl - line) : strlen(line);
                _cleanup_free_ char *t = NULL, *params = NULL;
                uint64_t start, length;

                if (dm_table_line_parse(line, len, &start, &length, &t, &params) >= 0 && streq(t, type))
                        return true;
                line = nl ? nl + 1 : NULL;
        }
        return false;
}

/* The origin's live table, checked: one this provider can put under a snapshot-origin. Returns
 * S_OK with the table and, if the origin already is the snapshot-origin of a snapset real device
 * (it has snapset snapshots), that device's number in *ret_real_*. */
static VssCode origin_check(const DmInfo *origin, size_t index, char **ret_table, bool *ret_is_origin,
                            unsigned *ret_real_major, unsigned *ret_real_minor, ProviderResult *res) {
        _cleanup_free_ char *table = NULL;
        unsigned ma, mi;
        DmInfo real;
        int r;

        if (origin->suspended)
                return provider_fail(res, index, EBUSY, VSS_E_BAD_STATE, "%s is suspended (another device-mapper "
                                     "tool is working on it): retry when it has been resumed", origin->name);
        if (origin->inactive_table)
                return provider_fail(res, index, EBUSY, VSS_E_BAD_STATE, "%s has an inactive table loaded (another "
                                     "device-mapper tool is changing it): retry when that is done, or drop it "
                                     "with 'dmsetup clear %s'", origin->name, origin->name);
        r = dm_device_table(DM_REF_DEVNUM(origin->major, origin->minor), false, &table);
        if (r >= 0 && table_has_target(table, "crypt"))
                /* Checked before anything is allocated, and the table (its key) goes nowhere. */
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, "%s is %s",
                                     origin->name, CRYPT_ADVICE);
        if (r < 0)
                return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_OBJECT_NOT_FOUND),
                                     "Cannot read the table of %s", origin->name);
        if (!table[0])
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER,
                                     "%s has no active table", origin->name);

        r = dm_snapshot_origin_table_parse(table, &ma, &mi);
        if (r > 0) {
                /* Ours if the device under it is a snapset real device. */
                if (dm_device_info(DM_REF_DEVNUM(ma, mi), &real) < 0 || !startswith(real.uuid, REAL_UUID_PREFIX))
                        return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER,
                                             "%s already is the origin of a snapshot that snapset did not make "
                                             "(snapshot-origin of %u:%u)", origin->name, ma, mi);
                *ret_is_origin = true;
                *ret_real_major = ma;
                *ret_real_minor = mi;
                *ret_table = TAKE_PTR(table);
                return S_OK;
        }
        for (const char *l = table; *l; ) {
                static const char *const refused[] = { "snapshot", "snapshot-origin", "snapshot-merge",
                                                       "thin-pool", "error", "zero" };
                _cleanup_free_ char *type = NULL, *params = NULL;
                size_t len = strcspn(l, "\n");
                uint64_t start, length;

                r = dm_table_line_parse(l, len, &start, &length, &type, &params);
                if (r < 0)
                        return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot parse the table of %s", origin->name);
                for (size_t i = 0; i < ELEMENTSOF(refused); i++)
                        if (streq(type, refused[i]))
                                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER,
                                                     "%s has a \"%s\" target, which the dm-snapshot provider "
                                                     "cannot put under a snapshot", origin->name, type);
                l += len;
                if (*l)
                        l++;
        }
        *ret_is_origin = false;
        *ret_table = TAKE_PTR(table);
        return S_OK;
}

/* The COW directory: exists (made if only its last component is missing), and not on a
 * filesystem of the set, which will be frozen while the snapshot store must stay writable. */
static VssCode cow_directory_check(const ProviderSet *ps, size_t index, ProviderResult *res) {
        const char *dir = ps->settings ? ps->settings->cow_directory : NULL;
        dev_t fs = 0, conflict = 0;
        struct stat st;
        int r;

        if (!dir || dir[0] != '/')
                return provider_fail(res, index, 0, VSS_E_PROVIDER_VETO, "No copy-on-write directory is configured: "
                                     "set CowDirectory= in snapsetd.conf to a directory on a file system outside "
                                     "the volumes to be snapshotted");
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return provider_fail(res, index, -errno, provider_code_from_errno(-errno, VSS_E_PROVIDER_VETO),
                                     "Cannot create the copy-on-write directory %s (CowDirectory= in "
                                     "snapsetd.conf; create it, or point it to an existing directory)", dir);
        if (stat(dir, &st) < 0 || !S_ISDIR(st.st_mode))
                return provider_fail(res, index, errno ?: ENOTDIR, VSS_E_PROVIDER_VETO, "The copy-on-write "
                                     "directory %s is not a directory: fix CowDirectory= in snapsetd.conf", dir);
        r = cow_directory_fs_device(dir, &fs);
        if (r < 0)
                return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Cannot find the file system of %s", dir);
        if (cow_device_conflicts("/sys", fs, ps->set_devices, ps->n_set_devices, &conflict) > 0)
                return provider_fail(res, index, 0, E_INVALIDARG, "The copy-on-write directory %s is on "
                                     "device %u:%u, %s %u:%u of this snapshot set: that file system is "
                                     "frozen while the snapshots are taken, and a snapshot cannot keep its "
                                     "store on what it snapshots. Set CowDirectory= in snapsetd.conf to a "
                                     "directory on a file system outside the set", dir, major(fs), minor(fs),
                                     conflict == fs ? "which is volume" : "which is stacked on volume",
                                     major(conflict), minor(conflict));
        return S_OK;
}

/* No COW store of an older snapshot of the origin may be on a filesystem of the set. */
static VssCode older_stores_check(const ProviderSet *ps, size_t index, unsigned real_major, unsigned real_minor,
                                  const char *origin, ProviderResult *res) {
        StoreConflict c;
        int r;

        r = dm_snapshot_store_conflict(real_major, real_minor, ps->set_devices, ps->n_set_devices, &c);
        if (r < 0)
                return provider_fail(res, index, r, VSS_E_PROVIDER_VETO, "Cannot check where the older snapshots "
                                     "of %s keep their copy-on-write stores", origin);
        if (r == 0)
                return S_OK;
        return provider_fail(res, index, 0, E_INVALIDARG, "The copy-on-write store %s of %s, an older snapshot of %s, "
                             "is on the filesystem of volume %u:%u of this set: writes to %s inside the freeze "
                             "window would have to be copied into a frozen filesystem. Leave that volume out of "
                             "the set, or delete the older snapshot first", c.store, c.snapshot, origin,
                             major(c.volume), minor(c.volume), origin);
}

static VssCode dm_snapshot_begin_prepare(ProviderSet *ps, ProviderSnapshot *snap, ProviderResult *res) {
        _cleanup_free_ char *origin_table = NULL, *snap_table = NULL;
        _cleanup_close_ int loop_fd = -EBADF;
        const BlockDevice *v = snap->volume;
        Snapshot *model = snap->snapshot;
        size_t index = provider_snapshot_index(ps, snap);
        DmSnapState *st = NULL;
        DmSnapshotRecord *rec;
        DmInfo origin, real = {}, sinfo;
        uint32_t *cookie;
        bool is_origin = false;
        json_object *j = NULL;
        uint64_t length, cow_size;
        dev_t loop_devnum;
        VssCode code;
        char size_text[32], free_text[32];
        int r;

        if (!v || v->type != BLOCK_DEVICE_DM || !model)
                return provider_fail(res, index, EINVAL, E_INVALIDARG, "not a device-mapper volume");
        if (snap->state)
                return provider_fail(res, index, EALREADY, VSS_E_BAD_STATE, "%s is already prepared", strna(v->path));
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                DmSnapState *o = ps->snapshots[i]->state;
                if (o && o->origin_major == v->major && o->origin_minor == v->minor)
                        return provider_fail(res, index, EEXIST, VSS_E_BAD_STATE, "%s is twice in the set",
                                             strna(v->path));
        }

        r = dm_device_info(DM_REF_DEVNUM(v->major, v->minor), &origin);
        if (r < 0)
                return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_OBJECT_NOT_FOUND),
                                     "Device-mapper device %u:%u (%s) is gone", v->major, v->minor, strna(v->path));
        code = origin_check(&origin, index, &origin_table, &is_origin, &real.major, &real.minor, res);
        if (code != S_OK)
                return code;
        r = dm_table_length(origin_table, &length);
        if (r < 0)
                return provider_fail(res, index, r, VSS_E_PROVIDER_VETO, "Cannot parse the table of %s", origin.name);
        code = cow_directory_check(ps, index, res);
        if (code != S_OK)
                return code;

        st = calloc(1, sizeof(DmSnapState));
        if (!st)
                return provider_fail(res, index, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        rec = &st->rec;
        st->origin_major = origin.major;
        st->origin_minor = origin.minor;
        rec->origin_major = origin.major;
        rec->origin_minor = origin.minor;
        rec->chunk_sectors = COW_CHUNK_SECTORS;
        rec->origin_name = strdup(origin.name);
        rec->origin_uuid = origin.uuid[0] ? strdup(origin.uuid) : NULL;
        if (!rec->origin_name || (origin.uuid[0] && !rec->origin_uuid) ||
            asprintf(&rec->snapshot_name, SNAPSHOT_NAME_PREFIX "%s", model->id) < 0 ||
            asprintf(&rec->snapshot_uuid, SNAPSET_DM_UUID_PREFIX "%s", model->id) < 0 ||
            cow_file_path(ps->settings->cow_directory, model->id, &rec->cow_file) < 0) {
                code = provider_fail(res, index, ENOMEM, E_OUTOFMEMORY, "Out of memory");
                goto fail_nothing;
        }
        if (is_origin) {
                /* The original table is the real device's; record that one. */
                DmInfo ri;

                r = dm_device_info(DM_REF_DEVNUM(real.major, real.minor), &ri);
                free(origin_table);
                origin_table = NULL;
                if (r >= 0)
                        r = dm_device_table(DM_REF_DEVNUM(real.major, real.minor), false, &origin_table);
                if (r >= 0 && (!(rec->real_name = strdup(ri.name)) || !(rec->real_uuid = strdup(ri.uuid))))
                        r = -ENOMEM;
                if (r < 0) {
                        code = provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot read the real device under %s", origin.name);
                        goto fail_nothing;
                }
        } else {
                r = dm_snapshot_real_names(rec->origin_uuid, rec->origin_name, &rec->real_name, &rec->real_uuid);
                if (r < 0) {
                        code = provider_fail(res, index, r, provider_code_from_errno(r, E_INVALIDARG),
                                             "Cannot name the real device of %s", origin.name);
                        goto fail_nothing;
                }
        }
        rec->origin_table = TAKE_PTR(origin_table);
        /* Its older snapshots' stores, against the set so far (again at pre-commit, against all
         * of it). */
        if (is_origin) {
                code = older_stores_check(ps, index, real.major, real.minor, origin.name, res);
                if (code != S_OK)
                        goto fail_nothing;
        }

        /* The store: preallocated now, so that a full file system shows here, before anything
         * is frozen, and never as an invalid snapshot later. */
        cow_size = cow_size_compute(model->cow_size, ps->settings->default_cow_percent,
                                    ps->settings->default_cow_size, length * 512);
        rec->cow_size = cow_size;

        /* Every name is known before anything is made: recorded now, so that a crash from here
         * on is undone by recover() (dm_snapshot_teardown() removes what exists of it). */
        r = dm_snapshot_record_to_json(rec, &j);
        if (r >= 0)
                r = provider_record_intent(ps, model, TAKE_PTR(j));
        if (r < 0) {
                code = provider_fail(res, index, r, r == -ENOMEM ? E_OUTOFMEMORY : VSS_E_UNEXPECTED,
                                     "Cannot record the snapshot of %s for crash recovery", origin.name);
                goto fail_nothing;
        }

        r = cow_file_create(rec->cow_file, cow_size);
        if (r < 0) {
                uint64_t avail = 0;

                provider_format_bytes(size_text, sizeof(size_text), cow_size);
                if (r == -ENOSPC || r == -EDQUOT) {
                        (void) cow_directory_free(ps->settings->cow_directory, &avail);
                        provider_format_bytes(free_text, sizeof(free_text), avail);
                        code = provider_fail(res, index, r, VSS_E_INSUFFICIENT_STORAGE, "Not enough space in %s for "
                                             "the %s copy-on-write store of %s (%s free): free space there, ask "
                                             "for a smaller cow size, or set CowDirectory= in snapsetd.conf to a "
                                             "larger file system", ps->settings->cow_directory, size_text,
                                             origin.name, free_text);
                } else
                        code = provider_fail(res, index, r, r == -EEXIST ? VSS_E_BAD_STATE :
                                             provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot create the %s copy-on-write store %s", size_text, rec->cow_file);
                /* Nothing was created: the file is gone again (or was not ours). */
                free(rec->cow_file);
                rec->cow_file = NULL;
                goto fail_nothing;
        }
        model->cow_size = cow_size;
        if (snapshot_set_field(&model->kind, "classic") < 0) {
                code = provider_fail(res, index, ENOMEM, E_OUTOFMEMORY, "Out of memory");
                goto fail;
        }

        r = loop_attach(rec->cow_file, &loop_fd, &rec->loop_device, &loop_devnum);
        if (r < 0) {
                code = provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot attach %s to "
                                     "a loop device (is the loop module loaded? 'modprobe loop')", rec->cow_file);
                goto fail;
        }

        r = dm_udev_cookie_new(&st->prepare_cookie);
        if (r < 0) {
                code = provider_fail(res, index, r, E_OUTOFMEMORY, "Cannot create a udev cookie (SysV semaphore)");
                goto fail;
        }
        st->have_prepare_cookie = true;
        cookie = &st->prepare_cookie;

        if (!is_origin) {
                DmInfo existing;

                /* A real device left by a crash, with the same table and unused: take it. */
                if (dm_device_info(DM_REF_NAME(rec->real_name), &existing) >= 0) {
                        _cleanup_free_ char *t = NULL;

                        if (existing.open_count > 0 || dm_device_table(DM_REF_NAME(rec->real_name), false, &t) < 0 ||
                            !streq(t, rec->origin_table)) {
                                code = provider_fail(res, index, EEXIST, VSS_E_BAD_STATE, "%s exists already and "
                                                     "is not a copy of %s (left by an earlier run?): remove it "
                                                     "with 'dmsetup remove %s'", rec->real_name, origin.name,
                                                     rec->real_name);
                                goto fail;
                        }
                        real = existing;
                } else {
                        r = dm_device_create(rec->real_name, rec->real_uuid, rec->origin_table, DM_RULES_HIDDEN,
                                             cookie, &real);
                        if (r < 0) {
                                code = provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                                     "Cannot create %s with the table of %s", rec->real_name,
                                                     origin.name);
                                goto fail;
                        }
                        rec->created_real = true;
                }
                free(snap_table);
                snap_table = NULL;
                r = dm_snapshot_origin_table(length, real.major, real.minor, &snap_table);
                if (r >= 0)
                        r = dm_device_load(DM_REF_DEVNUM(origin.major, origin.minor), snap_table);
                if (r < 0) {
                        code = provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot load the snapshot-origin table into %s", origin.name);
                        goto fail;
                }
                rec->loaded_origin_table = true;
        }
        st->real_major = real.major;
        st->real_minor = real.minor;

        free(snap_table);
        snap_table = NULL;
        r = dm_snapshot_snapshot_table(length, real.major, real.minor, major(loop_devnum), minor(loop_devnum),
                                       COW_CHUNK_SECTORS, &snap_table);
        if (r >= 0)
                r = dm_device_create(rec->snapshot_name, rec->snapshot_uuid, NULL, DM_RULES_LOW_PRIORITY,
                                     cookie, &sinfo);
        if (r < 0) {
                code = provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Cannot create %s", rec->snapshot_name);
                goto fail;
        }
        r = dm_device_load(DM_REF_NAME(rec->snapshot_name), snap_table);
        if (r < 0) {
                code = provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Cannot load the snapshot table into %s (%s)", rec->snapshot_name,
                                     "see the kernel log");
                goto fail;
        }
        st->snap_major = sinfo.major;
        st->snap_minor = sinfo.minor;
        /* The snapshot table holds the loop device now; from here on, autoclear detaches it when
         * that table goes. */
        loop_fd = safe_close(loop_fd);

        /* Recorded before returning, so that the coordinator writes it to /run/snapset before
         * the window: after a crash, recover() finds everything from it. */
        r = dm_snapshot_record_to_json(rec, &j);
        if (r < 0) {
                code = provider_fail(res, index, r, E_OUTOFMEMORY, "Out of memory");
                goto fail;
        }
        provider_data_replace(model, j);
        snap->state = st;
        log_debug("dm-snapshot: prepared %s of %s: real %s, store %s (%" PRIu64 " bytes) on %s.",
                  rec->snapshot_name, origin.name, rec->real_name, rec->cow_file, cow_size, rec->loop_device);
        return S_OK;

fail:
        {
                char msg[256];

                uint32_t own = 0;

                loop_fd = safe_close(loop_fd);
                /* Without a cookie, libdm makes the nodes itself, at once; st's is waited on when
                 * it is freed. */
                r = dm_snapshot_teardown(rec, false, st->have_prepare_cookie ? &st->prepare_cookie : &own,
                                         msg, sizeof(msg));
                (void) dm_udev_cookie_wait(&own);
                if (r < 0)
                        log_warning("dm-snapshot: cleaning up after the failed preparation of %s: %s",
                                    origin.name, msg);
                /* What is left stays recorded: the coordinator's abort tries again, and keeps the
                 * record if that fails too. */
                if (r < 0)
                        goto keep_record;
        }
fail_nothing:
        /* Nothing of it exists (or what is there is not ours, like a COW file of that name). */
        provider_data_replace(model, NULL);
keep_record:
        snap_state_free(st);
        return code;
}

static VssCode dm_snapshot_end_prepare(ProviderSet *ps, ProviderResult *res) {
        DmSetState *s;
        int r;

        /* Every real device of the set is there for udev now, handled side by side: the waits
         * add up to about one. */
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                DmSnapState *st = ps->snapshots[i]->state;

                if (st && st->have_prepare_cookie) {
                        (void) dm_udev_cookie_wait(&st->prepare_cookie);
                        st->have_prepare_cookie = false;
                }
        }
        if (ps->state)
                return S_OK;
        s = calloc(1, sizeof(DmSetState));
        if (!s)
                return provider_fail(res, SIZE_MAX, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        /* The semaphore the window's resumes will count on: made now, waited on after the thaw. */
        r = dm_udev_cookie_new(&s->cookie);
        if (r < 0) {
                free(s);
                return provider_fail(res, SIZE_MAX, r, E_OUTOFMEMORY, "Cannot create a udev cookie (SysV semaphore)");
        }
        s->have_cookie = true;
        ps->state = s;
        return S_OK;
}

/* The target of a table's first line, for messages ("crypt", "linear"), or "no table". */
static const char *table_target(const char *table, char *buf, size_t size) {
        _cleanup_free_ char *type = NULL, *params = NULL;
        uint64_t start, length;
        const char *nl;

        if (!table || !table[0])
                return "no table";
        nl = strchr(table, '\n');
        if (dm_table_line_parse(table, nl ? (size_t) (nl - table) : strlen(table), &start, &length, &type, &params) < 0)
                return "unreadable";
        snprintf(buf, size, "%s", type);
        return buf;
}

/* Whether table is exactly a snapshot-origin of real over the origin's whole length. */
static bool is_our_origin_table(const char *table, const DmSnapState *st) {
        uint64_t length = 0, ours = 0;
        unsigned ma, mi;

        return table && dm_snapshot_origin_table_parse(table, &ma, &mi) > 0 && ma == st->real_major &&
               mi == st->real_minor && dm_table_length(table, &length) >= 0 &&
               dm_table_length(st->rec.origin_table, &ours) >= 0 && length == ours;
}

/* The origin's tables are the ones this set expects: the inactive one we loaded (or none, when
 * the origin already is a snapshot-origin), and for the latter the live one. Another tool
 * (cryptsetup refresh, kpartx, dmsetup reload) may have loaded its own since AddToSnapshotSet:
 * the release would make it live, and the origin's writes would bypass the snapshot. */
static VssCode origin_tables_check(const DmSnapState *st, size_t index, ProviderResult *res) {
        _cleanup_free_ char *table = NULL;
        DmRef o = DM_REF_DEVNUM(st->origin_major, st->origin_minor);
        bool inactive = st->rec.loaded_origin_table;
        char target[64];
        int r;

        r = dm_device_table(o, inactive, &table);
        if (r < 0)
                return provider_fail(res, index, r, VSS_E_BAD_STATE, "Cannot read the %s table of %s",
                                     inactive ? "inactive" : "live", st->rec.origin_name);
        if (!is_our_origin_table(table, st))
                return provider_fail(res, index, ESTALE, VSS_E_BAD_STATE, "The %s table of %s is not the one snapset "
                                     "loaded (its target is %s): another tool changed it since AddToSnapshotSet; "
                                     "the set is undone and %s keeps its own table. Retry when that tool is done",
                                     inactive ? "inactive" : "live", st->rec.origin_name,
                                     table_target(table, target, sizeof target), st->rec.origin_name);
        return S_OK;
}

static VssCode dm_snapshot_pre_commit(ProviderSet *ps, ProviderResult *res) {
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                DmSnapState *st = ps->snapshots[i]->state;
                VssCode code;
                DmInfo o, s;

                if (!st)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "%s was not prepared",
                                             strna(ps->snapshots[i]->volume ? ps->snapshots[i]->volume->path : NULL));
                if (dm_device_info(DM_REF_DEVNUM(st->snap_major, st->snap_minor), &s) < 0 ||
                    !streq(s.name, st->rec.snapshot_name) || !s.inactive_table)
                        return provider_fail(res, i, ENXIO, VSS_E_BAD_STATE, "The prepared snapshot device %s is "
                                             "gone or lost its table", st->rec.snapshot_name);
                if (dm_device_info(DM_REF_DEVNUM(st->origin_major, st->origin_minor), &o) < 0 ||
                    !streq(o.name, st->rec.origin_name) || o.suspended ||
                    o.inactive_table != st->rec.loaded_origin_table)
                        return provider_fail(res, i, ESTALE, VSS_E_BAD_STATE, "%s changed since it was prepared "
                                             "(suspended, renamed, or its inactive table changed)", st->rec.origin_name);
                code = origin_tables_check(st, i, res);
                if (code == S_OK && !st->rec.loaded_origin_table)
                        code = older_stores_check(ps, i, st->real_major, st->real_minor, st->rec.origin_name, res);
                if (code != S_OK)
                        return code;
                /* Ours: an emergency resume drops it, and the origin comes back as it was. */
                ps->snapshots[i]->undo_drop_inactive = st->rec.loaded_origin_table;
        }
        if (!ps->state)
                return provider_fail(res, SIZE_MAX, EINVAL, VSS_E_BAD_STATE, "end_prepare_snapshots was not called");
        return provider_window_crew_new(&((DmSetState *) ps->state)->crew, ps->n_snapshots, res);
}

/* ---------------------------------------------------------------- the window
 *
 * From here to release_writes: no malloc of ours, no logging, no path lookups. */

/* Each origin is suspended, activated into its snapshot and resumed from the set's crew
 * (window-crew.h), all at once: one after another, their grace periods added up to a second of
 * held writes for 64 volumes under TCG. The functions run by the crew touch only their own
 * volume's state, and name devices by number. */

static VssCode states_check(ProviderSet *ps, ProviderResult *res) {
        for (size_t i = 0; i < ps->n_snapshots; i++)
                if (!ps->snapshots[i]->state)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "A volume was not prepared");
        return S_OK;
}

static WindowCrew *crew_of(const ProviderSet *ps) {
        const DmSetState *s = ps->state;

        return s ? s->crew : NULL;
}

static uint32_t *cookie_of(const ProviderSet *ps) {
        DmSetState *s = ps->state;

        return s && s->have_cookie ? &s->cookie : NULL;
}

static DmHeld held_of(ProviderSet *ps, size_t i) {
        DmSnapState *st = ps->snapshots[i]->state;

        return st ? (DmHeld) { st->origin_major, st->origin_minor, &st->origin_suspended } : (DmHeld) {};
}

/* skip-lockfs (dm-hold.h): the coordinator froze the filesystem with FIFREEZE, and a lockfs
 * suspend on top fails with EBUSY before Linux 6.8. */
static VssCode dm_snapshot_hold_writes(ProviderSet *ps, ProviderResult *res) {
        size_t n = provider_test_fail_at(ps, "HoldWrites"), failed = 0;
        VssCode code;
        int r;

        code = states_check(ps, res);
        if (code != S_OK)
                return code;
        r = dm_held_suspend(crew_of(ps), ps, n, held_of, &failed);
        if (r < 0)
                return provider_fail(res, failed, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Suspending %s failed",
                                     ((DmSnapState *) ps->snapshots[failed]->state)->rec.origin_name);
        if (provider_test_fails(ps, "HoldWrites", n, res, &code))
                return code;
        return S_OK;
}

/* The point in time: the snapshot goes active while its origin is suspended. */
static int commit_one(size_t i, void *userdata) {
        ProviderSet *ps = userdata;
        DmSnapState *st = ps->snapshots[i]->state;
        int r;

        r = dm_device_resume(DM_REF_DEVNUM(st->snap_major, st->snap_minor), DM_RULES_LOW_PRIORITY, cookie_of(ps));
        if (r >= 0)
                st->snapshot_resumed = true;
        return r;
}

static VssCode dm_snapshot_commit(ProviderSet *ps, ProviderResult *res) {
        size_t n = provider_test_fail_at(ps, "CommitSnapshots"), failed = 0;
        VssCode code;
        int r;

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                DmSnapState *st = ps->snapshots[i]->state;

                if (!st || !st->origin_suspended)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "%s is not held",
                                             st ? st->rec.origin_name : "a volume");
        }
        r = window_crew_run(crew_of(ps), n, commit_one, ps, &failed);
        if (r < 0)
                return provider_fail(res, failed, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Activating snapshot %s failed (see the kernel log)",
                                     ((DmSnapState *) ps->snapshots[failed]->state)->rec.snapshot_name);
        if (provider_test_fails(ps, "CommitSnapshots", n, res, &code))
                return code;
        return S_OK;
}

/* Every held origin is resumed, whatever fails on the way. Not committed, back exactly as it
 * was: the snapshot-origin table is dropped before it can go live (a failure path: one after
 * another, before the resumes). */
static VssCode dm_snapshot_release_writes(ProviderSet *ps, bool committed, ProviderResult *res) {
        VssCode code = S_OK;
        size_t failed = 0;
        int r;

        for (size_t i = 0; i < ps->n_snapshots && !committed; i++) {
                DmSnapState *st = ps->snapshots[i]->state;

                if (!st || !st->origin_suspended || !st->rec.loaded_origin_table || st->origin_cleared)
                        continue;
                r = dm_device_clear(DM_REF_DEVNUM(st->origin_major, st->origin_minor));
                if (r >= 0)
                        st->origin_cleared = true;
                else if (code == S_OK)
                        code = provider_fail(res, i, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Dropping the inactive table of %s failed", st->rec.origin_name);
        }
        r = dm_held_resume(crew_of(ps), ps, held_of, cookie_of(ps), &failed);
        if (r < 0 && code == S_OK)
                code = provider_fail(res, failed, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Resuming %s failed",
                                     ((DmSnapState *) ps->snapshots[failed]->state)->rec.origin_name);
        return code;
}

/* ---------------------------------------------------------------- after the window */

static VssCode snapshot_check_status(const char *name, size_t index, DmSnapshotRecord *rec, Snapshot *model,
                                     ProviderResult *res) {
        _cleanup_free_ char *type = NULL, *params = NULL;
        uint64_t used, total, metadata;
        const char *state = NULL;
        int r;

        r = dm_device_status(DM_REF_NAME(name), &type, &params);
        if (r < 0)
                return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_OBJECT_NOT_FOUND),
                                     "Cannot read the status of %s", name);
        if (!streq(type, "snapshot"))
                return provider_fail(res, index, 0, VSS_E_BAD_STATE, "%s is not a snapshot (its target is %s)",
                                     name, type);
        r = dm_snapshot_status_parse(params, &used, &total, &metadata, &state);
        if (r == -EINVAL) {
                if (model)
                        model->invalid = true;
                return provider_fail(res, index, 0, streq(state, "Invalid") || streq(state, "Overflow") ?
                                     VSS_E_INSUFFICIENT_STORAGE : VSS_E_PROVIDER_VETO,
                                     "Snapshot %s is %s: its copy-on-write store %s is full or failed (see the "
                                     "kernel log); give snapshots of this volume a larger cow size", name, state,
                                     strna(rec ? rec->cow_file : NULL));
        }
        if (r < 0)
                return provider_fail(res, index, r, VSS_E_PROVIDER_VETO, "Cannot parse the status of %s (\"%s\")",
                                     name, params);
        if (rec) {
                rec->cow_used_sectors = used;
                rec->cow_total_sectors = total;
        }
        if (model) {
                model->invalid = false;
                model->cow_used_percent = total > 0 ? 100.0 * (double) used / (double) total : -1;
        }
        return S_OK;
}

static VssCode origin_live_check(const DmSnapState *st, size_t index, ProviderResult *res) {
        _cleanup_free_ char *table = NULL;
        char target[64];
        int r;

        r = dm_device_table(DM_REF_DEVNUM(st->origin_major, st->origin_minor), false, &table);
        if (r < 0)
                return provider_fail(res, index, r, VSS_E_BAD_STATE, "Cannot read the table of %s",
                                     st->rec.origin_name);
        if (!is_our_origin_table(table, st))
                return provider_fail(res, index, ESTALE, VSS_E_BAD_STATE, "After the snapshot, %s does not run the "
                                     "snapshot-origin table onto %s (its target is %s): its writes would not be "
                                     "copied into snapshot %s, so the set is undone", st->rec.origin_name,
                                     st->rec.real_name, table_target(table, target, sizeof target),
                                     st->rec.snapshot_name);
        return S_OK;
}

static int model_set_device(Snapshot *model, const char *dm_name) {
        char *p;

        if (asprintf(&p, "/dev/mapper/%s", dm_name) < 0)
                return -ENOMEM;
        free(model->device);
        model->device = p;
        return 0;
}

static VssCode dm_snapshot_post_commit(ProviderSet *ps, ProviderResult *res) {
        DmSetState *s = ps->state;

        /* Everything is resumed and thawed: now udev may be waited for. */
        if (s && s->have_cookie) {
                (void) dm_udev_cookie_wait(&s->cookie);
                s->have_cookie = false;
        }
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                DmSnapState *st = ps->snapshots[i]->state;
                Snapshot *model = ps->snapshots[i]->snapshot;
                VssCode code;

                if (!st || !st->snapshot_resumed)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "A snapshot was not committed");
                code = snapshot_check_status(st->rec.snapshot_name, i, NULL, model, res);
                if (code != S_OK)
                        return code;
                /* The origin runs the snapshot-origin table now: a swap that failed in the kernel
                 * (which then keeps the old table, and a second resume "succeeds" on it) would
                 * leave its writes uncopied. */
                code = origin_live_check(st, i, res);
                if (code != S_OK)
                        return code;
                if (model_set_device(model, st->rec.snapshot_name) < 0)
                        return provider_fail(res, i, ENOMEM, E_OUTOFMEMORY, "Out of memory");
                /* The window resumed it by number, so without udev nobody made its node yet. */
                (void) dm_device_mknodes(DM_REF_NAME(st->rec.snapshot_name));
                if (access(model->device, F_OK) < 0)
                        return provider_fail(res, i, errno, VSS_E_PROVIDER_VETO, "%s did not appear (udev rules "
                                             "for device-mapper missing?)", model->device);
        }
        /* Done: what is left to know is in each snapshot's provider_data. */
        set_state_free(ps);
        return S_OK;
}

static VssCode dm_snapshot_abort(ProviderSet *ps, ProviderResult *res) {
        uint32_t cookie = 0;
        VssCode code = S_OK;

        (void) dm_udev_cookie_new(&cookie);
        for (size_t i = ps->n_snapshots; i-- > 0; ) {
                ProviderSnapshot *snap = ps->snapshots[i];
                DmSnapState *st = snap->state;
                DmSnapshotRecord parsed = {};
                const DmSnapshotRecord *rec;
                char msg[256];
                int r;

                if (st)
                        rec = &st->rec;
                else if (snap->snapshot && snap->snapshot->provider_data &&
                         dm_snapshot_record_from_json(snap->snapshot->provider_data, &parsed) >= 0)
                        /* Committed, and post_commit freed its state (another provider failed
                         * later): undone from its record, like a delete. */
                        rec = &parsed;
                else
                        continue;   /* never prepared, or its begin_prepare cleaned up itself */

                r = dm_snapshot_teardown(rec, st && st->origin_suspended, &cookie, msg, sizeof(msg));
                if (r < 0 && code == S_OK)
                        code = provider_fail(res, i, r, VSS_E_PROVIDER_VETO, "Could not remove everything of "
                                             "snapshot %s: %s. Once the cause is fixed (a process holding it: "
                                             "fuser -vm, lsof), run 'snapsetctl cleanup'; snapsetd also retries "
                                             "at every start", rec->snapshot_name, msg);
                dm_snapshot_record_done(&parsed);
        }
        (void) dm_udev_cookie_wait(&cookie);
        /* The set's cookie, which the window's resumes may count on, is waited on here too. */
        set_state_free(ps);
        return code;
}

/* ---------------------------------------------------------------- finished snapshots */

VssCode dm_snapshot_record_of(const Snapshot *snap, DmSnapshotRecord *ret, ProviderResult *res) {
        int r;

        r = dm_snapshot_record_from_json(snap->provider_data, ret);
        if (r < 0)
                return provider_fail(res, 0, r, provider_code_from_errno(r, E_INVALIDARG), "Snapshot %s has no valid "
                                     "dm-snapshot record (provider data)", snap->id);
        return S_OK;
}

VssCode dm_snapshot_record_store(Snapshot *snap, const DmSnapshotRecord *rec, ProviderResult *res) {
        json_object *j;
        int r;

        r = dm_snapshot_record_to_json(rec, &j);
        if (r < 0)
                return provider_fail(res, 0, r, E_OUTOFMEMORY, "Out of memory");
        provider_data_replace(snap, j);
        return S_OK;
}

/* Undoes snap from its record; its udev events join *cookie, for the caller to wait on. */
static VssCode undo_from_record(Snapshot *snap, bool recovering, uint32_t *cookie, ProviderResult *res) {
        _cleanup_(dm_snapshot_record_done) DmSnapshotRecord rec = {};
        char msg[256];
        VssCode code;
        int r;

        code = dm_snapshot_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        /* A running merge holds the store: only a failed one (sets-revert.c) is taken off first. */
        if (rec.merging && streq_ptr(snap->revert, "failed")) {
                r = dm_snapshot_merge_stop(&rec);
                if (r < 0)
                        return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "Cannot take the failed merge of %s off %s",
                                             snap->id, rec.origin_name);
        } else if (rec.merging && dm_snapshot_merge_running(&rec))
                return provider_fail(res, 0, EBUSY, VSS_E_REVERT_IN_PROGRESS, "Snapshot %s is being merged into %s: "
                                     "it goes by itself when the merge is done", snap->id, rec.origin_name);
        r = dm_snapshot_teardown(&rec, recovering, cookie, msg, sizeof(msg));
        if (r < 0)
                return provider_fail(res, 0, r, r == -EBUSY ? VSS_E_BAD_STATE : provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Removing snapshot %s failed, %s%s", rec.snapshot_name, msg,
                                     r == -EBUSY ? " (is it mounted or exposed? unmount it first)" : "");
        return S_OK;
}

/* Whether anything but the devices a and b holds major:minor: a table, live or inactive, on it. */
static int held_by_others(unsigned major, unsigned minor, dev_t a, dev_t b, bool *ret) {
        _cleanup_free_ dev_t *holders = NULL;
        size_t n;
        int r;

        r = device_graph_holders("/sys", makedev(major, minor), &holders, &n);
        if (r < 0)
                return r;
        *ret = false;
        for (size_t i = 0; i < n; i++)
                *ret = *ret || (holders[i] != a && holders[i] != b);
        return 0;
}

/* The removals prepare_delete can do side by side for snap (dm-undo.h): 1 with *ret (and the
 * origin's table, allocated, in *ret_table), or 0 to leave everything to the one-by-one delete,
 * which handles every unusual case (a merge, an open or suspended device, an inactive table). */
static int removal_of(const Snapshot *snap, DmRemoval *ret, char **ret_table) {
        _cleanup_(dm_snapshot_record_done) DmSnapshotRecord rec = {};
        _cleanup_free_ char *live = NULL;
        unsigned ma, mi;
        DmInfo x, real, s;
        bool others;

        if (dm_snapshot_record_from_json(snap->provider_data, &rec) < 0 || rec.merging ||
            dm_snapshot_origin_find(&rec, &x) < 0 || x.suspended || x.inactive_table ||
            dm_device_info(DM_REF_NAME(rec.real_name), &real) < 0 ||
            dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) < 0 || s.open_count > 0 || s.inactive_table ||
            dm_device_table(DM_REF_DEVNUM(x.major, x.minor), false, &live) < 0 ||
            dm_snapshot_origin_table_parse(live, &ma, &mi) <= 0 || ma != real.major || mi != real.minor ||
            held_by_others(real.major, real.minor, makedev(x.major, x.minor), makedev(s.major, s.minor), &others) < 0)
                return 0;
        *ret = (DmRemoval) { .origin_major = x.major, .origin_minor = x.minor,
                             .major = { s.major, real.major }, .minor = { s.minor, real.minor } };
        if (others) {
                ret->suspend_origin = true;
                ret->n_devices = 1;
                return 1;
        }
        /* The last snapshot of the origin: the origin gets the real device's table back first. */
        if (dm_device_table(DM_REF_DEVNUM(real.major, real.minor), false, ret_table) < 0 || !(*ret_table)[0])
                return 0;
        ret->origin_table = *ret_table;
        ret->n_devices = 2;
        return 1;
}

/* A whole set's snapshots: their devices removed side by side, then each snapshot's own
 * delete with one udev cookie (dm-undo.h), which finds them gone and removes the rest. */
static void dm_snapshot_prepare_delete(Snapshot *const *snaps, size_t n, const ProviderSettings *settings) {
        _cleanup_free_ DmRemoval *items = calloc(n, sizeof(DmRemoval));
        _cleanup_free_ char **tables = calloc(n, sizeof(char *));
        size_t m = 0;
        uint32_t cookie = 0;

        if (items && tables) {
                for (size_t i = 0; i < n; i++)
                        m += removal_of(snaps[i], &items[m], &tables[m]);
                (void) dm_udev_cookie_new(&cookie);
                dm_removals_run(items, m, &cookie);
                (void) dm_udev_cookie_wait(&cookie);
        }
        for (size_t i = 0; tables && i < n; i++)
                free(tables[i]);
        dm_undo_batch(undo_from_record, snaps, n);
}

/* Removes a finished snapshot: its device, its loop device and COW file, and, if it was the
 * origin's last snapset snapshot, the real device, after the origin got its table back. Done
 * already (nothing of it exists) is success. */
static VssCode dm_snapshot_delete(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        return dm_undo_one(undo_from_record, snap, false, res);
}

/* After a crash at any point of a set's creation (the record is written before the window):
 * drop an inactive snapshot-origin table we loaded, resume the origin if it was left suspended
 * (a crash inside the window leaves it so: every writer to it hangs until then), and remove
 * everything, as abort would. */
static VssCode dm_snapshot_recover(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        return dm_undo_one(undo_from_record, snap, true, res);
}

int dm_snapshot_origin_writes(unsigned major, unsigned minor, uint64_t *ret) {
        char path[64];
        unsigned long long f[5];
        FILE *f_stat;
        int n;

        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/stat", major, minor);
        f_stat = fopen(path, "re");
        if (!f_stat)
                return -errno;
        n = fscanf(f_stat, "%llu %llu %llu %llu %llu", &f[0], &f[1], &f[2], &f[3], &f[4]);
        fclose(f_stat);
        if (n != 5)
                return -EBADMSG;
        *ret = f[4];
        return 0;
}

/* Brings a persistent snapshot back after a reboot: the COW file keeps the copied chunks and
 * the exception table (persistent store, "P"), so a loop device on it, the real device with the
 * origin's table, the snapshot device, and the origin switched to snapshot-origin give back the
 * same snapshot.
 *
 * Writes to the origin between boot and this activation are not copied into the store, so it
 * runs first from snapset-activate.service, before the local filesystems are mounted
 * (activate_before_mounts), and again at snapsetd's start for what that could not do. Only an
 * origin nothing has written since it came up is re-armed; any other is marked invalid. */
static VssCode dm_snapshot_activate(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        _cleanup_(dm_snapshot_record_done) DmSnapshotRecord rec = {};
        _cleanup_free_ char *live = NULL, *table = NULL, *loop = NULL;
        _cleanup_close_ int loop_fd = -EBADF;
        DmInfo origin, real, s;
        uint32_t cookie = 0;
        dev_t loop_devnum;
        uint64_t length, writes = 0;
        unsigned ma = 0, mi = 0;
        bool is_origin, created_real = false;
        VssCode code;
        int r;

        code = dm_snapshot_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        /* A failed revert (sets-revert.c) is not set up again: its snapshot waits to be deleted. */
        if (rec.merging)
                return streq_ptr(snap->revert, "failed") ? S_OK : dm_snapshot_merge_activate(snap, &rec, res);
        r = dm_snapshot_origin_find(&rec, &origin);
        if (r < 0)
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_OBJECT_NOT_FOUND), "The origin %s of "
                                     "snapshot %s is not there (is its device-mapper table set up yet?)",
                                     rec.origin_name, snap->id);
        r = dm_device_table(DM_REF_DEVNUM(origin.major, origin.minor), false, &live);
        if (r < 0 || !live[0])
                return provider_fail(res, 0, r < 0 ? r : ENODATA, VSS_E_BAD_STATE, "Cannot read the table of %s",
                                     origin.name);
        /* Through the real device already: for another snapshot, or merging one of them. */
        is_origin = dm_snapshot_origin_table_parse(live, &ma, &mi) > 0 ||
                    dm_snapshot_table_parse(live, "snapshot-merge", &ma, &mi) > 0;

        if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) >= 0 && s.live_table) {
                /* Active already; fine if its origin copies into it. */
                if (is_origin && dm_device_info(DM_REF_NAME(rec.real_name), &real) >= 0 &&
                    real.major == ma && real.minor == mi) {
                        if (model_set_device(snap, rec.snapshot_name) < 0)
                                return provider_fail(res, 0, ENOMEM, E_OUTOFMEMORY, "Out of memory");
                        return S_OK;
                }
                return provider_fail(res, 0, 0, VSS_E_BAD_STATE, "%s is active, but %s is not its origin: "
                                     "writes to %s are not being copied into it; delete the snapshot",
                                     rec.snapshot_name, origin.name, origin.name);
        }
        if (access(rec.cow_file, F_OK) < 0)
                return provider_fail(res, 0, errno, VSS_E_OBJECT_NOT_FOUND, "The copy-on-write store %s of "
                                     "snapshot %s is gone", rec.cow_file, snap->id);
        /* Re-armed only if nothing has written to the origin since it came up: a write before
         * the snapshot-origin table is back was never copied into the store, and the snapshot
         * would silently show it. Written, or no way to tell: it is invalid from now on. */
        if (snap->invalid)
                return S_OK;
        r = dm_snapshot_origin_writes(origin.major, origin.minor, &writes);
        if (r < 0 || writes > 0) {
                snap->invalid = true;
                if (r < 0)
                        snprintf(res->message, sizeof res->message, "cannot tell whether %s was written since it "
                                 "came up (%s), so snapshot %s may no longer show its point in time: it is marked "
                                 "invalid", origin.name, strerror(-r), snap->id);
                else
                        snprintf(res->message, sizeof res->message, "%s was written since it came up (%" PRIu64
                                 " writes) before snapshot %s could be re-armed: those writes were never copied "
                                 "into its store, so it is marked invalid (delete it)", origin.name, writes, snap->id);
                return S_OK;
        }

        (void) dm_udev_cookie_new(&cookie);
        /* Left from an interrupted activation. */
        if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) >= 0)
                (void) dm_device_remove(DM_REF_NAME(rec.snapshot_name), &cookie);

        if (is_origin) {
                if (dm_device_info(DM_REF_DEVNUM(ma, mi), &real) < 0 || !streq(real.name, rec.real_name)) {
                        code = provider_fail(res, 0, 0, VSS_E_BAD_STATE, "%s is the origin of a snapshot, but "
                                             "not through %s", origin.name, rec.real_name);
                        goto finish;
                }
        } else if (dm_device_info(DM_REF_NAME(rec.real_name), &real) >= 0) {
                /* Left from an interrupted activation: must be a copy of the origin's table. */
                _cleanup_free_ char *t = NULL;

                if (dm_device_table(DM_REF_NAME(rec.real_name), false, &t) < 0 || !streq(t, live)) {
                        code = provider_fail(res, 0, EEXIST, VSS_E_BAD_STATE, "%s exists, but is not a copy of "
                                             "%s: remove it with 'dmsetup remove %s'", rec.real_name, origin.name,
                                             rec.real_name);
                        goto finish;
                }
        } else {
                /* The origin's table of this boot (device numbers may have changed since the
                 * snapshot was taken), not the recorded one. */
                r = dm_device_create(rec.real_name, rec.real_uuid, live, DM_RULES_HIDDEN, &cookie, &real);
                if (r < 0) {
                        code = provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot create %s", rec.real_name);
                        goto finish;
                }
                created_real = true;
        }
        r = dm_table_length(live, &length);
        if (r < 0) {
                code = provider_fail(res, 0, r, VSS_E_PROVIDER_VETO, "Cannot parse the table of %s", origin.name);
                goto undo;
        }

        r = loop_attach(rec.cow_file, &loop_fd, &loop, &loop_devnum);
        if (r < 0) {
                code = provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot attach %s to a "
                                     "loop device", rec.cow_file);
                goto undo;
        }
        r = dm_snapshot_snapshot_table(length, real.major, real.minor, major(loop_devnum), minor(loop_devnum),
                                       rec.chunk_sectors, &table);
        if (r >= 0)
                r = dm_device_create(rec.snapshot_name, rec.snapshot_uuid, NULL, DM_RULES_LOW_PRIORITY, &cookie, &s);
        if (r >= 0)
                r = dm_device_load(DM_REF_NAME(rec.snapshot_name), table);
        if (r < 0) {
                code = provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot set up %s on %s "
                                     "(see the kernel log)", rec.snapshot_name, rec.cow_file);
                goto undo;
        }
        loop_fd = safe_close(loop_fd);

        /* As in the window: origin suspended while the snapshot goes active, so that no write
         * to it escapes the copy. The filesystem is not frozen: skip-lockfs, the flush is
         * enough at this level, since the snapshot's content is the past. */
        if (!is_origin) {
                free(table);
                table = NULL;
                r = dm_snapshot_origin_table(length, real.major, real.minor, &table);
                if (r >= 0)
                        r = dm_device_load(DM_REF_DEVNUM(origin.major, origin.minor), table);
                if (r < 0) {
                        code = provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot load the snapshot-origin table into %s", origin.name);
                        goto undo;
                }
        }
        r = dm_device_suspend(DM_REF_DEVNUM(origin.major, origin.minor), true);
        if (r < 0) {
                code = provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Suspending %s failed",
                                     origin.name);
                goto undo;
        }
        r = dm_device_resume(DM_REF_NAME(rec.snapshot_name), DM_RULES_LOW_PRIORITY, &cookie);
        int q = dm_device_resume(DM_REF_DEVNUM(origin.major, origin.minor), DM_RULES_ALL, &cookie);
        if (q < 0)
                q = dm_device_resume(DM_REF_DEVNUM(origin.major, origin.minor), DM_RULES_ALL, NULL);
        if (r < 0 || q < 0) {
                code = provider_fail(res, 0, r < 0 ? r : q, VSS_E_PROVIDER_VETO, "Activating %s failed (see the "
                                     "kernel log)", rec.snapshot_name);
                goto undo;
        }
        (void) dm_udev_cookie_wait(&cookie);

        free(rec.loop_device);
        rec.loop_device = TAKE_PTR(loop);
        rec.origin_major = origin.major;
        rec.origin_minor = origin.minor;
        code = snapshot_check_status(rec.snapshot_name, 0, &rec, snap, res);
        if (code == S_OK)
                code = dm_snapshot_record_store(snap, &rec, res);
        if (code == S_OK && model_set_device(snap, rec.snapshot_name) < 0)
                code = provider_fail(res, 0, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        return code;

undo:
        /* Back to what the boot gave: no snapshot device, the origin's own table; the COW file
         * stays, it is the snapshot. */
        loop_fd = safe_close(loop_fd);
        if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) >= 0)
                (void) dm_device_remove(DM_REF_NAME(rec.snapshot_name), &cookie);
        if (!is_origin) {
                DmRef o = DM_REF_DEVNUM(origin.major, origin.minor);
                DmInfo oi;

                if (dm_device_info(o, &oi) >= 0) {
                        if (oi.inactive_table)
                                (void) dm_device_clear(o);
                        if (oi.suspended)
                                (void) dm_device_resume(o, DM_RULES_ALL, &cookie);
                }
        }
        if (created_real)
                (void) dm_device_remove(DM_REF_NAME(rec.real_name), &cookie);
        if (loop)
                (void) loop_detach_if_backing(loop, rec.cow_file);
finish:
        (void) dm_udev_cookie_wait(&cookie);
        return code;
}

/* The snapshot's status: COW use (kept in its record) and whether it is still valid. */
static VssCode dm_snapshot_query(Snapshot *snap, ProviderResult *res) {
        _cleanup_(dm_snapshot_record_done) DmSnapshotRecord rec = {};
        VssCode code;

        code = dm_snapshot_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        /* Being merged: its device is gone, revert_progress follows the merge. */
        if (rec.merging)
                return S_OK;
        code = snapshot_check_status(rec.snapshot_name, 0, &rec, snap, res);
        /* An invalid snapshot is a valid answer: snap->invalid says it. */
        if (snap->invalid)
                return S_OK;
        if (code != S_OK)
                return code;
        return dm_snapshot_record_store(snap, &rec, res);
}

/* ---------------------------------------------------------------- probe, support */

static int dm_snapshot_probe(char **ret_reason) {
        static const char *const targets[] = { "snapshot", "snapshot-origin", NULL };
        int r;

        r = dm_probe(ret_reason);
        if (r <= 0)
                return r;
        return dm_targets_available(targets, "dm-snapshot", ret_reason);
}

static bool only_thin(char *const *targets) {
        return blockdev_strv_length(targets) == 1 && streq(targets[0], "thin");
}

static int dm_snapshot_is_volume_supported(const BlockDevice *d, char **ret_reason) {
        if (d->type != BLOCK_DEVICE_DM || blockdev_is_lvm(d))
                return VOLUME_NOT_HANDLED;
        if (provider_device_is_snapset_own(d))
                return provider_not_supported(ret_reason, "one of snapset's own devices (a snapshot "
                                              "or a copy-on-write store)");
        /* Table unknown (it could not be read): taken here, and checked again when preparing. */
        if (!d->dm_targets)
                return VOLUME_SUPPORTED;
        if (!d->dm_targets[0])
                return provider_not_supported(ret_reason, "it has no active table");
        if (only_thin(d->dm_targets))
                return VOLUME_NOT_HANDLED;
        if (blockdev_strv_contains(d->dm_targets, "snapshot"))
                return provider_not_supported(ret_reason, "a classic snapshot itself: snapshot its "
                                              "origin instead");
        if (blockdev_strv_contains(d->dm_targets, "snapshot-merge"))
                return provider_not_supported(ret_reason, "a snapshot is being merged into it: wait "
                                              "until the merge has finished");
        if (blockdev_strv_contains(d->dm_targets, "thin-pool"))
                return provider_not_supported(ret_reason, "a thin pool, not a volume: snapshot the "
                                              "thin volumes in it");
        if (blockdev_strv_contains(d->dm_targets, "crypt"))
                return provider_not_supported(ret_reason, CRYPT_ADVICE);
        return VOLUME_SUPPORTED;
}

static const ProviderOps dm_snapshot_ops = {
        .probe = dm_snapshot_probe,
        .is_volume_supported = dm_snapshot_is_volume_supported,
        .begin_prepare_snapshot = dm_snapshot_begin_prepare,
        .end_prepare_snapshots = dm_snapshot_end_prepare,
        .pre_commit_snapshots = dm_snapshot_pre_commit,
        .hold_writes = dm_snapshot_hold_writes,
        .commit_snapshots = dm_snapshot_commit,
        .release_writes = dm_snapshot_release_writes,
        .post_commit_snapshots = dm_snapshot_post_commit,
        .abort_snapshots = dm_snapshot_abort,
        .delete_snapshot = dm_snapshot_delete,
        .prepare_delete = dm_snapshot_prepare_delete,
        .activate_snapshot = dm_snapshot_activate,
        .activate_before_mounts = true,
        .recover = dm_snapshot_recover,
        .query = dm_snapshot_query,
        .revert_start = dm_snapshot_revert_start,
        .revert_progress = dm_snapshot_revert_progress,
        .break_snapshot = dm_snapshot_break,
};

const Provider provider_dm_snapshot = {
        .name = "dm-snapshot",
        .kind = "builtin",
        .priority = 30,
        .ops = &dm_snapshot_ops,
};
