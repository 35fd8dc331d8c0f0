/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What lvm says, parsed: the JSON reports of lvs, vgs and pvs (--reportformat json, --units b
 * --nosuffix, so that every size is a number of bytes), and its error messages turned into VSS
 * codes. Pure functions of lvm's text, so that every case is unit-tested. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "vss-error.h"

/* The columns the provider asks lvs for, in -o form. */
#define LVM_LV_COLUMNS "vg_name,lv_name,lv_uuid,lv_attr,segtype,pool_lv,origin,lv_size,lv_tags," \
                       "data_percent,metadata_percent,snap_percent,lv_time"
#define LVM_VG_COLUMNS "vg_name,vg_uuid,vg_attr,vg_extent_size,vg_free"
#define LVM_PV_COLUMNS "pv_name,vg_name"

typedef struct LvmLv {
        char *vg, *name, *uuid;
        char *attr;               /* lv_attr: "owi-aos---" and so on */
        char *segtype;            /* "linear", "striped", "thin", "thin-pool", "snapshot", ... */
        char *pool;               /* pool_lv of a thin volume, else NULL */
        char *origin;             /* origin of a snapshot, else NULL */
        char *tags;               /* comma-separated, else NULL */
        uint64_t size;            /* bytes */
        double data_percent;      /* thin pools and thin volumes; negative when not reported */
        double metadata_percent;  /* thin pools */
        double snap_percent;      /* classic snapshots: COW use */
        uint64_t time;            /* creation, seconds since the epoch (lv_time, 0 if unknown) */
} LvmLv;

typedef struct LvmVg {
        char *name, *uuid, *attr;
        uint64_t extent_size;     /* bytes */
        uint64_t free;            /* bytes */
} LvmVg;

typedef struct LvmPv {
        char *name;               /* /dev/... */
        char *vg;                 /* NULL if in none */
} LvmPv;

void lvm_lv_done(LvmLv *lv);
void lvm_vg_done(LvmVg *vg);
void lvm_pv_done(LvmPv *pv);
LvmLv *lvm_lvs_free(LvmLv *a, size_t n);
LvmVg *lvm_vgs_free(LvmVg *a, size_t n);
LvmPv *lvm_pvs_free(LvmPv *a, size_t n);

/* Parse the standard output of "lvs/vgs/pvs --reportformat json --units b --nosuffix -o ...".
 * Columns not asked for are left at their empty values. -EBADMSG if json is not such a report. */
int lvm_report_parse_lvs(const char *json, LvmLv **ret, size_t *ret_n);
int lvm_report_parse_vgs(const char *json, LvmVg **ret, size_t *ret_n);
int lvm_report_parse_pvs(const char *json, LvmPv **ret, size_t *ret_n);

/* lv_attr decoded: the volume type (first character), the state (fifth: 'a' active, 's'
 * suspended, ...), and open (sixth: 'o'). */
bool lvm_lv_is_active(const LvmLv *lv);
bool lvm_lv_is_thin_volume(const LvmLv *lv);
bool lvm_lv_has_tag(const LvmLv *lv, const char *tag);

/* The VSS code for an lvm failure, from its exit status and what it wrote to stderr: a volume
 * or group that does not exist → VSS_E_OBJECT_NOT_FOUND; not enough space → INSUFFICIENT_STORAGE;
 * a lock held or a device in use → VSS_E_BAD_STATE; anything else → VSS_E_PROVIDER_VETO. */
VssCode lvm_error_code(int exit_status, const char *stderr_text);

/* The lines of lvm's stderr worth showing (its error lines, without leading blanks, joined
 * with "; "), at most n bytes into buf. */
void lvm_error_summary(const char *stderr_text, char *buf, size_t n);

/* Whether a name is one lvm accepts for a VG or an LV (characters a-z A-Z 0-9 + _ . -, not
 * starting with '-'), so that it can be passed on as it is. */
bool lvm_name_is_valid(const char *name);
