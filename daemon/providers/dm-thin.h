/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The dm-thin provider's record of one snapshot, exposed for the unit tests. The provider itself
 * is provider_dm_thin (provider.h).
 *
 * Devices, for a thin volume X (table "0 LEN thin POOL ID", in a pool LVM does not manage) and a
 * snapshot S:
 *
 *   X              untouched, but for being suspended (skip-lockfs) while the pool records S
 *   thin id N      in X's pool: "create_snap N ID", sent while X is suspended
 *   snapset-S      (dm UUID SNAPSET-S) "0 LEN thin POOL N", shown as /dev/mapper/snapset-S;
 *                  made without a table before the window, given its table after it (the id
 *                  does not exist before create_snap)
 *
 * A thin snapshot is a thin device like any other: after a reboot it only needs its table again,
 * and nothing that was written to X in between can leak into it. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#define DM_THIN_RECORD_VERSION 1

typedef struct DmThinRecord {
        char *origin_name;
        char *origin_uuid;            /* NULL if the origin has no dm UUID */
        char *pool_name;
        char *pool_uuid;              /* NULL if the pool has no dm UUID */
        uint32_t origin_id;           /* the origin's thin device id */
        /* N: chosen and verified free right before the window (pre_commit). Before that there is
         * no id, and nothing in the pool may be deleted in the snapshot's name. */
        bool id_picked;
        uint32_t snapshot_id;
        uint64_t length_sectors;      /* the origin's size, which the snapshot keeps */
        char *snapshot_name, *snapshot_uuid;
        /* create_snap succeeded: N is ours. Only ever true in a record written after the window;
         * the record written before it (for crash recovery) has false, and recovery then
         * deletes N only if it exists and nothing has it open. */
        bool created;
        /* RevertToSnapshot got past its first step that cannot be undone ("delete ID"):
         * revert_progress finishes it, after a crash or a reboot (dm-thin-use.c). */
        bool reverting;
} DmThinRecord;

void dm_thin_record_done(DmThinRecord *r);
int dm_thin_record_to_json(const DmThinRecord *r, json_object **ret);
/* -EBADMSG if j is not a record of this provider. */
int dm_thin_record_from_json(json_object *j, DmThinRecord *ret);

/* ---- shared by dm-thin.c and dm-thin-use.c (revert and break), not for others ---- */

#include "dm.h"
#include "provider.h"

/* A device by its dm UUID if it has one (stable across reboots), else by name. */
int dm_thin_find_device(const char *uuid, const char *name, DmInfo *ret);
/* The one thin target of a device's live table. -EMEDIUMTYPE if the table is anything else. */
int dm_thin_read_table(DmRef ref, uint64_t *ret_length, unsigned *ret_pool_major, unsigned *ret_pool_minor,
                       uint32_t *ret_id, char **ret_external);
/* "0 LENGTH thin MAJ:MIN ID". */
int dm_thin_table(uint64_t length, unsigned pool_major, unsigned pool_minor, uint32_t id, char **ret);
/* Gives device name the thin table of id and resumes it; its udev events join *cookie. */
int dm_thin_activate_device(const char *name, uint64_t length, unsigned pool_major, unsigned pool_minor,
                            uint32_t id, uint32_t *cookie);
VssCode dm_thin_record_of(const Snapshot *snap, DmThinRecord *ret, ProviderResult *res);
/* The record and the pool it names, which must be there. */
VssCode dm_thin_record_and_pool(const Snapshot *snap, DmThinRecord *rec, DmInfo *pool, ProviderResult *res);

/* dm-thin-use.c */
VssCode dm_thin_revert_start(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                             ProviderResult *res);
VssCode dm_thin_revert_progress(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                ProviderResult *res);
VssCode dm_thin_break(Snapshot *snap, const ProviderSettings *settings, char **ret_device, ProviderResult *res);
