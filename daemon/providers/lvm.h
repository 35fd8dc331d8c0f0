/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The lvm provider's record of one snapshot and how it takes it, exposed for the unit tests.
 * The provider itself is provider_lvm (provider.h).
 *
 * A snapshot of LV VG/X is the LV VG/snapset-<snapshot id>, tagged "snapset" and
 * "snapset_set_<set id>" (and "snapset_backup" for a backup-context set), so that it can be told
 * apart from anyone else's and found again without a record. */

#include <json-c/json.h>
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "freeze-nesting.h"

#define LVM_RECORD_VERSION 1
#define LVM_SNAPSHOT_LV_PREFIX "snapset-"
#define LVM_TAG "snapset"
#define LVM_SET_TAG_PREFIX "snapset_set_"
#define LVM_BACKUP_TAG "snapset_backup"

/* How one LV joins the set's instant (lvm-thin-facts.md, snapsetd(8) "LVM volumes"). */
typedef enum LvmMethod {
        /* Classic COW snapshot ("lvcreate -s -L"), the origin suspended by snapset inside the
         * hold with skip-lockfs after FIFREEZE: lvm finds it suspended, skips its own (lockfs)
         * suspend, and resumes it into the snapshot's tables. One instant on every kernel. */
        LVM_METHOD_CLASSIC,
        /* Native thin snapshot of a thin LV under FIFREEZE, the origin NOT suspended by snapset:
         * lvm's lockfs suspend nests inside the FIFREEZE, which only Linux 6.8+ allows. lvm
         * sends the pool's create_snap only from its own suspend, so a pre-suspended thin
         * origin would give a snapshot that does not exist in the pool. */
        LVM_METHOD_THIN_NESTED,
        /* Native thin snapshot of the only volume of a set, without FIFREEZE: lvm's own lockfs
         * suspend freezes the filesystem, and one volume is one instant anyway. */
        LVM_METHOD_THIN_LOCKFS,
        /* Classic COW snapshot of a thin LV (as LVM_METHOD_CLASSIC), for a thin LV in a set of
         * several volumes on a kernel where the freezes do not nest. */
        LVM_METHOD_CLASSIC_OF_THIN,
        _LVM_METHOD_MAX,
        _LVM_METHOD_INVALID = -EINVAL,
} LvmMethod;

const char *lvm_method_to_string(LvmMethod m);
LvmMethod lvm_method_from_string(const char *s);
/* "classic" or "thin": what the snapshot is. */
const char *lvm_method_kind(LvmMethod m);
/* What the user should know about a snapshot taken this way (for the API's note), or NULL. */
const char *lvm_method_note(LvmMethod m);
/* Whether snapset suspends the origin inside the hold (the classic methods), and whether the
 * coordinator freezes the origin's filesystems (all but THIN_LOCKFS). */
bool lvm_method_presuspends(LvmMethod m);
bool lvm_method_needs_fifreeze(LvmMethod m);

/* The method for an LV: thin or not, in a set of n_set_volumes volumes, on a kernel whose
 * freezes nest or not (unknown counts as not), and whether the administrator asked for classic
 * snapshots of thin LVs in sets (LvmThinSnapshots=classic). */
LvmMethod lvm_method_choose(bool thin, size_t n_set_volumes, FreezeNesting nesting, bool thin_classic);

typedef struct LvmRecord {
        char *vg;
        char *origin;                 /* the origin LV's name */
        char *origin_uuid;            /* lv_uuid, NULL if unknown */
        char *snapshot;               /* "snapset-<snapshot id>" */
        LvmMethod method;             /* _LVM_METHOD_INVALID until chosen (end of preparation) */
        char *pool;                   /* the thin pool of a thin origin, else NULL */
        uint64_t cow_size;            /* bytes, for the classic methods */
        /* A classic snapshot being merged (RevertToSnapshot): its COW data, sectors, when the
         * merge began, for the progress; 0 if unknown. */
        uint64_t merge_start_sectors;
} LvmRecord;

void lvm_record_done(LvmRecord *r);
int lvm_record_to_json(const LvmRecord *r, json_object **ret);
/* -EBADMSG if j is not a record of this provider. */
int lvm_record_from_json(json_object *j, LvmRecord *ret);

/* The size of a classic snapshot's COW LV for an origin of origin_bytes: as cow_size_compute()
 * (cow.h), then rounded up to whole extents of extent_bytes. */
uint64_t lvm_cow_size(uint64_t requested, unsigned percent, uint64_t default_bytes, uint64_t origin_bytes,
                      uint64_t extent_bytes);
