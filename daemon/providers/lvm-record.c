/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>

#include "cow.h"
#include "json-dispatch.h"
#include "json-util.h"
#include "lvm.h"
#include "varlink.h"

/* ---------------------------------------------------------------- methods */

static const char *const method_names[_LVM_METHOD_MAX] = {
        [LVM_METHOD_CLASSIC] = "classic",
        [LVM_METHOD_THIN_NESTED] = "thin-nested",
        [LVM_METHOD_THIN_LOCKFS] = "thin-lockfs",
        [LVM_METHOD_CLASSIC_OF_THIN] = "classic-of-thin",
};

const char *lvm_method_to_string(LvmMethod m) {
        return m >= 0 && m < _LVM_METHOD_MAX ? method_names[m] : NULL;
}

LvmMethod lvm_method_from_string(const char *s) {
        for (LvmMethod m = 0; s && m < _LVM_METHOD_MAX; m++)
                if (streq(method_names[m], s))
                        return m;
        return _LVM_METHOD_INVALID;
}

const char *lvm_method_kind(LvmMethod m) {
        return m == LVM_METHOD_THIN_NESTED || m == LVM_METHOD_THIN_LOCKFS ? "thin" : "classic";
}

const char *lvm_method_note(LvmMethod m) {
        switch (m) {
        case LVM_METHOD_CLASSIC_OF_THIN:
                return "a classic (copy-on-write) snapshot of a thin volume: on this kernel LVM cannot take "
                       "native thin snapshots of several volumes at one instant (its freeze does not nest "
                       "inside FIFREEZE before Linux 6.8)";
        case LVM_METHOD_THIN_LOCKFS:
                return "the only volume of its set: frozen by LVM's own suspend, not by snapset";
        default:
                return NULL;
        }
}

bool lvm_method_presuspends(LvmMethod m) {
        return m == LVM_METHOD_CLASSIC || m == LVM_METHOD_CLASSIC_OF_THIN;
}

bool lvm_method_needs_fifreeze(LvmMethod m) {
        return m != LVM_METHOD_THIN_LOCKFS;
}

LvmMethod lvm_method_choose(bool thin, size_t n_set_volumes, FreezeNesting nesting, bool thin_classic) {
        if (!thin)
                return LVM_METHOD_CLASSIC;
        /* Where the freezes nest, every native thin snapshot is taken under snapset's own
         * FIFREEZE, even alone: after a nested cycle the kernel (6.8-6.12 at least) stops letting
         * lockfs freeze that filesystem at all, so lvm's own freeze could not be relied on. */
        if (nesting == FREEZE_NESTING_YES && !thin_classic)
                return LVM_METHOD_THIN_NESTED;
        if (n_set_volumes == 1)
                return LVM_METHOD_THIN_LOCKFS;
        return LVM_METHOD_CLASSIC_OF_THIN;
}

/* ---------------------------------------------------------------- the record */

void lvm_record_done(LvmRecord *r) {
        free(r->vg);
        free(r->origin);
        free(r->origin_uuid);
        free(r->snapshot);
        free(r->pool);
        *r = (LvmRecord) { .method = _LVM_METHOD_INVALID };
}

int lvm_record_to_json(const LvmRecord *r, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        int k;

        if (!o)
                return -ENOMEM;
        k = json_add(o, "version", json_object_new_int(LVM_RECORD_VERSION)) ?:
            json_add_string(o, "vg", strempty(r->vg)) ?:
            json_add_string(o, "origin", strempty(r->origin)) ?:
            json_add_string(o, "originUuid", r->origin_uuid) ?:
            json_add_string(o, "snapshot", strempty(r->snapshot)) ?:
            json_add_string(o, "method", lvm_method_to_string(r->method)) ?:
            json_add_string(o, "pool", r->pool) ?:
            (r->cow_size > 0 ? json_add_int(o, "cowSizeBytes", (int64_t) r->cow_size) : 0) ?:
            (r->merge_start_sectors > 0 ? json_add_int(o, "mergeStartSectors", (int64_t) r->merge_start_sectors) : 0);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(o);
        return 0;
}

typedef struct RecordJson {
        uint64_t version;
        char *method;
        LvmRecord r;
} RecordJson;

#define R(f) offsetof(RecordJson, r.f)
static const JsonDispatch record_table[] = {
        { "version",      JSON_DISPATCH_UINT64, offsetof(RecordJson, version), JSON_MANDATORY },
        { "vg",           JSON_DISPATCH_STRING, R(vg),                         JSON_MANDATORY },
        { "origin",       JSON_DISPATCH_STRING, R(origin),                     JSON_MANDATORY },
        { "originUuid",   JSON_DISPATCH_STRING, R(origin_uuid),                0 },
        { "snapshot",     JSON_DISPATCH_STRING, R(snapshot),                   JSON_MANDATORY },
        { "method",       JSON_DISPATCH_STRING, offsetof(RecordJson, method),  0 },
        { "pool",         JSON_DISPATCH_STRING, R(pool),                       0 },
        { "cowSizeBytes", JSON_DISPATCH_UINT64, R(cow_size),                   0 },
        { "mergeStartSectors", JSON_DISPATCH_UINT64, R(merge_start_sectors),   0 },
        {}
};
#undef R

int lvm_record_from_json(json_object *j, LvmRecord *ret) {
        RecordJson rj = { .r.method = _LVM_METHOD_INVALID };
        int r;

        if (!j || !json_object_is_type(j, json_type_object))
                return -EBADMSG;
        r = json_dispatch(j, record_table, &rj, NULL);
        if (r == -ENOMEM)
                goto fail;
        if (r >= 0 && rj.method) {
                rj.r.method = lvm_method_from_string(rj.method);
                if (rj.r.method < 0)
                        r = -EBADMSG;
        }
        if (r < 0 || rj.version != LVM_RECORD_VERSION || !rj.r.vg[0] || !rj.r.origin[0] ||
            !startswith(rj.r.snapshot, LVM_SNAPSHOT_LV_PREFIX)) {
                r = -EBADMSG;
                goto fail;
        }
        free(rj.method);
        *ret = rj.r;
        return 0;

fail:
        json_dispatch_done(record_table, &rj);
        return r;
}

uint64_t lvm_cow_size(uint64_t requested, unsigned percent, uint64_t default_bytes, uint64_t origin_bytes,
                      uint64_t extent_bytes) {
        uint64_t size = cow_size_compute(requested, percent, default_bytes, origin_bytes);

        if (extent_bytes > 0 && size % extent_bytes)
                size += extent_bytes - size % extent_bytes;
        return size;
}
