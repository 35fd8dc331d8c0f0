/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The dm-snapshot provider's record of one snapshot, and the pure helpers around it, exposed for
 * the unit tests. The provider itself is provider_dm_snapshot (provider.h).
 *
 * Devices, for an origin X (any dm device LVM does not manage) and a snapshot S:
 *
 *   X                  keeps its name, number and users; its table becomes
 *                      "0 LEN snapshot-origin REAL" with the first snapshot
 *   snapset-real-ID    (dm UUID SNAPSET-real-ID) X's original table, one per origin, shared by
 *                      all of X's snapshots; hidden from udev's blkid and links
 *   snapset-S          (dm UUID SNAPSET-S) "0 LEN snapshot REAL LOOP P 8", shown as
 *                      /dev/mapper/snapset-S; its copy-on-write store is LOOP, a loop device on
 *                      the preallocated file <CowDirectory>/S.cow
 *
 * ID is derived from X's dm UUID (or its name if it has none), so that it stays the same across
 * reboots, and every snapshot of X finds the same real device. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define DM_SNAPSHOT_RECORD_VERSION 1

/* The real device under an origin that has snapshots: "snapset-real-<origin>". */
#define DM_SNAPSHOT_REAL_NAME_PREFIX "snapset-real-"
#define DM_SNAPSHOT_REAL_UUID_PREFIX SNAPSET_DM_UUID_PREFIX "real-"

/* The provider_data of a snapshot: everything needed to activate, delete or clean it up after a
 * crash, recorded before the freeze window. */
typedef struct DmSnapshotRecord {
        char *origin_name;
        char *origin_uuid;            /* NULL if the origin has no dm UUID */
        unsigned origin_major, origin_minor;  /* at the time of the snapshot; may change at reboot */
        char *origin_table;           /* the origin's table before snapset touched it */
        char *real_name, *real_uuid;
        char *snapshot_name, *snapshot_uuid;
        char *cow_file;
        uint64_t cow_size;            /* bytes */
        unsigned chunk_sectors;
        char *loop_device;            /* /dev/loopN when last attached; NULL if none */
        bool created_real;            /* this snapshot created the real device */
        bool loaded_origin_table;     /* this snapshot switched the origin to snapshot-origin */
        /* From the last query: COW use in sectors ("used/total" of the status); 0 if unknown. */
        uint64_t cow_used_sectors, cow_total_sectors;
        /* RevertToSnapshot: the snapshot is being merged into its origin (dm-snapshot-use.c), from
         * the moment before the first step that cannot be undone; the merge is set up again
         * after a reboot. merge_start_sectors: the store's use when the merge began (progress). */
        bool merging;
        uint64_t merge_start_sectors;
} DmSnapshotRecord;

void dm_snapshot_record_done(DmSnapshotRecord *r);
int dm_snapshot_record_to_json(const DmSnapshotRecord *r, json_object **ret);
/* -EBADMSG if j is not a record of this provider (missing or mistyped keys, unknown version). */
int dm_snapshot_record_from_json(json_object *j, DmSnapshotRecord *ret);

/* The name and dm UUID of the real device of an origin with this dm UUID (or NULL) and name:
 * "snapset-real-ID" and "SNAPSET-real-ID". ID is the UUID (else the name) as it is when it has
 * only characters that udev keeps in /dev/mapper names and fits; otherwise the same with other
 * characters replaced by '_', cut, and a hash of the whole, so that distinct origins never share
 * one. Stable: the same input gives the same names on every run. */
int dm_snapshot_real_names(const char *origin_uuid, const char *origin_name, char **ret_name, char **ret_uuid);

/* Parses the parameters of a snapshot status line: "USED/TOTAL METADATA" (or "Invalid",
 * "Overflow", "Merge failed", "Unknown"). Returns 0 with the numbers, -EINVAL if the snapshot is
 * not usable (*ret_state then points at the word), -EBADMSG if unparsable. */
int dm_snapshot_status_parse(const char *params, uint64_t *ret_used, uint64_t *ret_total,
                             uint64_t *ret_metadata, const char **ret_state);

/* "0 LEN snapshot-origin MAJ:MIN\n" and "0 LEN snapshot MAJ:MIN MAJ:MIN P CHUNK\n". */
int dm_snapshot_origin_table(uint64_t length, unsigned real_major, unsigned real_minor, char **ret);
int dm_snapshot_snapshot_table(uint64_t length, unsigned real_major, unsigned real_minor,
                               unsigned cow_major, unsigned cow_minor, unsigned chunk_sectors, char **ret);
/* If table is exactly one snapshot-origin target, returns 1 and the device it maps (MAJ:MIN);
 * 0 if it is something else; -EINVAL if it is a snapshot-origin with unparsable parameters. */
int dm_snapshot_origin_table_parse(const char *table, unsigned *ret_major, unsigned *ret_minor);
/* "0 LEN snapshot-merge MAJ:MIN MAJ:MIN P CHUNK\n": the origin's table while a snapshot merges. */
int dm_snapshot_merge_table(uint64_t length, unsigned real_major, unsigned real_minor,
                            unsigned cow_major, unsigned cow_minor, unsigned chunk_sectors, char **ret);
/* If table is exactly one target of type ("snapshot-origin", "snapshot-merge", "snapshot"), returns 1
 * and the origin it maps (the first MAJ:MIN); 0 if it is something else; -EINVAL if unparsable. */
int dm_snapshot_table_parse(const char *table, const char *type, unsigned *ret_major, unsigned *ret_minor);
/* Whether table has a "snapshot" target whose origin is major:minor. */
bool dm_snapshot_table_uses_real(const char *table, unsigned major, unsigned minor);

/* ---- shared by dm-snapshot.c and dm-snapshot-use.c (revert and break), not for others ---- */

#include "dm.h"
#include "provider.h"

VssCode dm_snapshot_record_of(const Snapshot *snap, DmSnapshotRecord *ret, ProviderResult *res);
VssCode dm_snapshot_record_store(Snapshot *snap, const DmSnapshotRecord *rec, ProviderResult *res);
/* The origin, by its dm UUID if it has one, else by name. */
int dm_snapshot_origin_find(const DmSnapshotRecord *rec, DmInfo *ret);
/* Removes whatever exists of the snapshot rec describes (its device, the real device if it was
 * the origin's last snapshot, the loop device and the store), and gives the origin its own table
 * back when no snapshot is left on it. Idempotent; the first failure is returned, described in
 * msg. */
int dm_snapshot_teardown(const DmSnapshotRecord *rec, bool resume_suspended_origin, uint32_t *cookie,
                         char *msg, size_t msg_size);

/* Writes completed on a block device since it appeared (the fifth field of its sysfs stat). */
int dm_snapshot_origin_writes(unsigned major, unsigned minor, uint64_t *ret);

/* dm-snapshot-use.c */
/* Whether the origin of rec runs the merge table now. */
bool dm_snapshot_merge_running(const DmSnapshotRecord *rec);
/* Takes a failed merge off the origin (back to snapshot-origin on the real device), so that its
 * snapshot can be deleted. 0 if there was none. */
int dm_snapshot_merge_stop(const DmSnapshotRecord *rec);
VssCode dm_snapshot_revert_start(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                 ProviderResult *res);
VssCode dm_snapshot_revert_progress(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                    ProviderResult *res);
/* Sets up the merge of a snapshot whose record says merging, at activation (after a reboot). */
VssCode dm_snapshot_merge_activate(Snapshot *snap, DmSnapshotRecord *rec, ProviderResult *res);
VssCode dm_snapshot_break(Snapshot *snap, const ProviderSettings *settings, char **ret_device, ProviderResult *res);
