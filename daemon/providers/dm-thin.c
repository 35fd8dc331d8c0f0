/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The dm-thin provider: thin volumes of a thin pool that LVM does not manage. A snapshot is a
 * "create_snap" message to the pool while the origin is suspended: O(1), and no write penalty
 * on the origin afterwards, which makes it the provider of choice wherever it applies. The
 * devices are described in dm-thin.h.
 *
 * The phases (provider.h), for each origin X and snapshot S:
 *
 *   begin_prepare   X is one "thin" target, of a pool that is rw, healthy, and below
 *                   ThinPoolMaxUsedPercent in data and metadata; snapset-S is made, without a
 *                   table
 *   pre_commit      a thin id N for S: above every id the pool's active devices use, and
 *                   verified free by loading "thin POOL N" into snapset-S, which the kernel
 *                   refuses (ENODATA) for an id that does not exist; the message
 *                   "create_snap N ID" is formatted now
 *   hold_writes     suspend every origin, skip-lockfs (the coordinator froze the filesystems):
 *                   all of them before the first message, so the point in time is one
 *   commit          "create_snap N ID" to each origin's pool: this is the point in time
 *   release_writes  resume every origin
 *   post_commit     snapset-S gets "thin POOL N" and is resumed; udev is waited for
 *
 * Between hold_writes and release_writes nothing here allocates (but libdm's task, see dm.h),
 * logs or looks up a path. Undoing (abort, recovery, delete) removes snapset-S first, then
 * sends "delete N", which the kernel refuses while any device has N open. */

#include <inttypes.h>
#include <stdio.h>

#include "dm-thin.h"
#include "dm-hold.h"
#include "dm.h"
#include "dm-undo.h"
#include "json-dispatch.h"
#include "json-util.h"
#include "log.h"
#include "provider.h"
#include "result.h"
#include "snapshot-set.h"
#include "thin-pool.h"
#include "varlink.h"

#define SNAPSHOT_NAME_PREFIX SNAPSET_DM_NAME_PREFIX
/* How many ids above the highest active one are tried before giving up: each try that finds
 * an id in use means an inactive thin device of the pool has it. */
#define ID_TRIES 256

/* ---------------------------------------------------------------- the record */

void dm_thin_record_done(DmThinRecord *r) {
        free(r->origin_name);
        free(r->origin_uuid);
        free(r->pool_name);
        free(r->pool_uuid);
        free(r->snapshot_name);
        free(r->snapshot_uuid);
        *r = (DmThinRecord) {};
}

int dm_thin_record_to_json(const DmThinRecord *r, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        int k;

        if (!o)
                return -ENOMEM;
        k = json_add(o, "version", json_object_new_int(DM_THIN_RECORD_VERSION)) ?:
            json_add_string(o, "originName", strempty(r->origin_name)) ?:
            json_add_string_or_null(o, "originUuid", r->origin_uuid) ?:
            json_add_string(o, "poolName", strempty(r->pool_name)) ?:
            json_add_string_or_null(o, "poolUuid", r->pool_uuid) ?:
            json_add_int(o, "originThinId", r->origin_id) ?:
            (r->id_picked ? json_add_int(o, "snapshotThinId", r->snapshot_id) :
                            json_object_object_add(o, "snapshotThinId", NULL) < 0 ? -ENOMEM : 0) ?:
            json_add_int(o, "lengthSectors", (int64_t) r->length_sectors) ?:
            json_add_string(o, "snapshotName", strempty(r->snapshot_name)) ?:
            json_add_string(o, "snapshotUuid", strempty(r->snapshot_uuid)) ?:
            json_add(o, "created", json_object_new_boolean(r->created)) ?:
            (r->reverting ? json_add(o, "reverting", json_object_new_boolean(true)) : 0);
        if (k < 0)
                return k;
        *ret = TAKE_PTR(o);
        return 0;
}

typedef struct RecordJson {
        uint64_t version, origin_id, snapshot_id;
        bool has_snapshot_id;
        DmThinRecord r;
} RecordJson;

/* An id, or null for none yet: has_snapshot_id says which. */
static int dispatch_thin_id(const char *name, json_object *value, JsonDispatchFlags flags, void *field) {
        RecordJson *rj = (RecordJson *) ((char *) field - offsetof(RecordJson, snapshot_id));

        if (!value || json_object_is_type(value, json_type_null)) {
                rj->has_snapshot_id = false;
                return 0;
        }
        rj->has_snapshot_id = true;
        return json_dispatch_uint64(name, value, flags, field);
}

#define R(f) offsetof(RecordJson, r.f)
static const JsonDispatch record_table[] = {
        { "version",        JSON_DISPATCH_UINT64, offsetof(RecordJson, version),     JSON_MANDATORY },
        { "originName",     JSON_DISPATCH_STRING, R(origin_name),                    JSON_MANDATORY },
        { "originUuid",     JSON_DISPATCH_STRING, R(origin_uuid),                    JSON_NULLABLE },
        { "poolName",       JSON_DISPATCH_STRING, R(pool_name),                      JSON_MANDATORY },
        { "poolUuid",       JSON_DISPATCH_STRING, R(pool_uuid),                      JSON_NULLABLE },
        { "originThinId",   JSON_DISPATCH_UINT64, offsetof(RecordJson, origin_id),   JSON_MANDATORY },
        { "snapshotThinId", dispatch_thin_id,     offsetof(RecordJson, snapshot_id), JSON_MANDATORY | JSON_NULLABLE },
        { "lengthSectors",  JSON_DISPATCH_UINT64, R(length_sectors),                 JSON_MANDATORY },
        { "snapshotName",   JSON_DISPATCH_STRING, R(snapshot_name),                  JSON_MANDATORY },
        { "snapshotUuid",   JSON_DISPATCH_STRING, R(snapshot_uuid),                  JSON_MANDATORY },
        { "created",        JSON_DISPATCH_BOOL,   R(created),                        JSON_MANDATORY },
        { "reverting",      JSON_DISPATCH_BOOL,   R(reverting),                      0 },
        {}
};
#undef R

int dm_thin_record_from_json(json_object *j, DmThinRecord *ret) {
        RecordJson rj = {};
        int r;

        if (!j || !json_object_is_type(j, json_type_object))
                return -EBADMSG;
        r = json_dispatch(j, record_table, &rj, NULL);
        if (r == -ENOMEM)
                goto fail;
        if (r < 0 || rj.version != DM_THIN_RECORD_VERSION || rj.origin_id > THIN_DEV_ID_MAX ||
            rj.snapshot_id > THIN_DEV_ID_MAX || rj.r.length_sectors == 0 || !rj.r.origin_name[0] ||
            !rj.r.pool_name[0] || !rj.r.snapshot_name[0]) {
                r = -EBADMSG;
                goto fail;
        }
        rj.r.origin_id = (uint32_t) rj.origin_id;
        rj.r.snapshot_id = (uint32_t) rj.snapshot_id;
        rj.r.id_picked = rj.has_snapshot_id;
        if (rj.r.created && !rj.r.id_picked) {
                r = -EBADMSG;
                goto fail;
        }
        *ret = rj.r;
        return 0;

fail:
        json_dispatch_done(record_table, &rj);
        return r;
}

/* ---------------------------------------------------------------- devices */

/* A device by its dm UUID if it has one (stable across reboots), else by name. */
int dm_thin_find_device(const char *uuid, const char *name, DmInfo *ret) {
        int r = -ENXIO;

        if (uuid)
                r = dm_device_info((DmRef) { .uuid = uuid }, ret);
        if (r == -ENXIO)
                r = dm_device_info(DM_REF_NAME(name), ret);
        return r;
}

/* The one thin target of a device's live table. -EMEDIUMTYPE if the table is anything else. */
int dm_thin_read_table(DmRef ref, uint64_t *ret_length, unsigned *ret_pool_major, unsigned *ret_pool_minor,
                           uint32_t *ret_id, char **ret_external) {
        _cleanup_free_ char *table = NULL, *type = NULL, *params = NULL;
        uint64_t start;
        size_t len;
        int r;

        r = dm_device_table(ref, false, &table);
        if (r < 0)
                return r;
        len = strcspn(table, "\n");
        if (len == 0 || (table[len] == '\n' && table[len + 1]))
                return -EMEDIUMTYPE;
        r = dm_table_line_parse(table, len, &start, ret_length, &type, &params);
        if (r < 0)
                return r;
        if (start != 0 || !streq(type, "thin"))
                return -EMEDIUMTYPE;
        return thin_table_parse(params, ret_pool_major, ret_pool_minor, ret_id, ret_external);
}

/* The pool's status and its data block size in bytes. */
static int read_pool(unsigned major, unsigned minor, ThinPoolStatus *ret_status, uint64_t *ret_block_bytes) {
        _cleanup_free_ char *type = NULL, *params = NULL, *table = NULL, *ttype = NULL, *tparams = NULL;
        unsigned a, b, c, d;
        uint64_t start, length, block;
        int r;

        r = dm_device_status(DM_REF_DEVNUM(major, minor), &type, &params);
        if (r < 0)
                return r;
        if (!streq(type, "thin-pool"))
                return -EMEDIUMTYPE;
        r = thin_pool_status_parse(params, ret_status);
        if (r < 0)
                return r;
        if (!ret_block_bytes)
                return 0;
        r = dm_device_table(DM_REF_DEVNUM(major, minor), false, &table);
        if (r < 0)
                return r;
        r = dm_table_line_parse(table, strcspn(table, "\n"), &start, &length, &ttype, &tparams);
        if (r >= 0)
                r = thin_pool_table_parse(tparams, &a, &b, &c, &d, &block);
        if (r < 0)
                return r;
        *ret_block_bytes = block * 512;
        return 0;
}

int dm_thin_table(uint64_t length, unsigned pool_major, unsigned pool_minor, uint32_t id, char **ret) {
        char params[64];

        *ret = NULL;
        snprintf(params, sizeof params, "%u:%u %" PRIu32, pool_major, pool_minor, id);
        return dm_table_append(ret, 0, length, "thin", params);
}

/* The thin ids the pool's active devices (live tables) use. */
static int pool_ids_in_use(unsigned pool_major, unsigned pool_minor, uint32_t **ret, size_t *ret_n) {
        _cleanup_free_ uint32_t *ids = NULL;
        char **names = NULL;
        size_t n = 0;
        int r;

        r = dm_device_list(&names);
        if (r < 0)
                return r;
        for (char **i = names; *i; i++) {
                _cleanup_free_ char *external = NULL;
                unsigned ma, mi;
                uint64_t length;
                uint32_t id, *grown;

                if (dm_thin_read_table(DM_REF_NAME(*i), &length, &ma, &mi, &id, &external) < 0 ||
                    ma != pool_major || mi != pool_minor)
                        continue;
                grown = reallocarray(ids, n + 1, sizeof(uint32_t));
                if (!grown) {
                        blockdev_strv_free(names);
                        return -ENOMEM;
                }
                ids = grown;
                ids[n++] = id;
        }
        blockdev_strv_free(names);
        *ret = TAKE_PTR(ids);
        *ret_n = n;
        return 0;
}

/* Whether thin id exists in the pool: the kernel opens the id when a "thin" table is loaded, and
 * refuses one that does not exist with ENODATA. probe is a device without a live table of ours
 * (the snapshot's own, before the window); the table is cleared again. 1 if it exists, 0 if not. */
static int pool_id_exists(DmRef probe, uint64_t length, unsigned pool_major, unsigned pool_minor, uint32_t id) {
        _cleanup_free_ char *table = NULL;
        int r;

        r = dm_thin_table(length, pool_major, pool_minor, id, &table);
        if (r < 0)
                return r;
        r = dm_device_load(probe, table);
        if (r == -ENODATA)
                return 0;
        if (r < 0)
                return r;
        (void) dm_device_clear(probe);
        return 1;
}

/* ---------------------------------------------------------------- state between phases */

typedef struct ThinSnapState {
        DmThinRecord rec;
        unsigned origin_major, origin_minor;
        unsigned pool_major, pool_minor;
        unsigned snap_major, snap_minor;
        char create_message[64];   /* "create_snap N ID", formatted before the window */
        bool origin_suspended;
        bool created;              /* create_snap N succeeded */
} ThinSnapState;

static void snap_state_free(ThinSnapState *s) {
        if (!s)
                return;
        dm_thin_record_done(&s->rec);
        free(s);
}

/* One udev cookie for the origins' resumes inside the window, made before it and waited on after
 * it (post_commit or abort): never a udev wait while an origin is suspended. Without a cookie,
 * udev takes the resume for one it need not handle, and the origin's /dev/mapper node is gone. */
typedef struct ThinSetState {
        uint32_t cookie;
        bool have_cookie;
        /* The window's suspends and resumes, all at once (window-crew.h): made at pre_commit. */
        WindowCrew *crew;
} ThinSetState;

static void set_cookie_wait(ProviderSet *ps) {
        ThinSetState *s = ps->state;

        if (s && s->have_cookie) {
                (void) dm_udev_cookie_wait(&s->cookie);
                s->have_cookie = false;
        }
}

static void share_state_free(ProviderSet *ps) {
        ThinSetState *s = ps->state;

        set_cookie_wait(ps);
        if (s)
                window_crew_free(s->crew);
        free(s);
        ps->state = NULL;
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                snap_state_free(ps->snapshots[i]->state);
                ps->snapshots[i]->state = NULL;
        }
}

static int record_store(Snapshot *model, const DmThinRecord *rec) {
        json_object *j;
        int r;

        r = dm_thin_record_to_json(rec, &j);
        if (r < 0)
                return r;
        provider_data_replace(model, j);
        return 0;
}

/* ---------------------------------------------------------------- teardown */

/* Removes whatever exists of the snapshot rec describes: its device, then its thin id, which the
 * kernel deletes only once nothing has it open. created: the id is known to be ours; otherwise
 * (recovery from a record written before the window) it is deleted only if it exists and is not
 * open, since create_snap may never have run. resume_origin: the origin may have been left
 * suspended by us. Idempotent. Returns 0 or the first failure, described in msg. */
static int teardown(const DmThinRecord *rec, bool resume_origin, uint32_t *cookie, char *msg, size_t msg_size) {
        DmInfo snap, origin, pool;
        char message[48];
        int r;

        msg[0] = 0;
        if (resume_origin && dm_thin_find_device(rec->origin_uuid, rec->origin_name, &origin) >= 0 &&
            origin.suspended) {
                r = dm_device_resume(DM_REF_DEVNUM(origin.major, origin.minor), DM_RULES_ALL, cookie);
                if (r < 0)
                        r = dm_device_resume(DM_REF_DEVNUM(origin.major, origin.minor), DM_RULES_ALL, NULL);
                if (r < 0) {
                        snprintf(msg, msg_size, "resuming %s: %s", origin.name, strerrordesc_np(-r));
                        return r;
                }
        }
        if (dm_device_info(DM_REF_NAME(rec->snapshot_name), &snap) >= 0) {
                if (snap.open_count > 0) {
                        snprintf(msg, msg_size, "%s is open (mounted, or used by another program)",
                                 rec->snapshot_name);
                        return -EBUSY;
                }
                r = dm_device_remove(DM_REF_NAME(rec->snapshot_name), cookie);
                if (r < 0) {
                        snprintf(msg, msg_size, "removing %s: %s", rec->snapshot_name, strerrordesc_np(-r));
                        return r;
                }
        }
        if (!rec->id_picked)
                return 0;   /* no id was ever chosen: nothing in the pool is ours */
        r = dm_thin_find_device(rec->pool_uuid, rec->pool_name, &pool);
        if (r < 0) {
                /* Without its pool there is no id to delete; the pool's owner decides. */
                if (rec->created)
                        snprintf(msg, msg_size, "thin pool %s is not there, so thin device %" PRIu32 " in it "
                                 "could not be deleted", rec->pool_name, rec->snapshot_id);
                return rec->created ? r : 0;
        }
        snprintf(message, sizeof message, "delete %" PRIu32, rec->snapshot_id);
        r = dm_device_message(DM_REF_DEVNUM(pool.major, pool.minor), 0, message);
        if (r == -ENODATA)
                return 0;   /* never created, or deleted already */
        if (r == -EBUSY && !rec->created)
                return 0;   /* someone else's device (an id taken meanwhile): not ours to delete */
        if (r < 0) {
                snprintf(msg, msg_size, "deleting thin device %" PRIu32 " of pool %s: %s", rec->snapshot_id,
                         pool.name, strerrordesc_np(-r));
                return r;
        }
        return 0;
}

/* ---------------------------------------------------------------- prepare */

/* The origin: one thin target, at sector 0, of a pool, without an external origin. */
static VssCode origin_check(const DmInfo *origin, size_t index, uint64_t *ret_length, unsigned *ret_pool_major,
                            unsigned *ret_pool_minor, uint32_t *ret_id, ProviderResult *res) {
        _cleanup_free_ char *external = NULL;
        int r;

        if (origin->suspended)
                return provider_fail(res, index, EBUSY, VSS_E_BAD_STATE, "%s is suspended (another device-mapper "
                                     "tool is working on it): retry when it has been resumed", origin->name);
        if (origin->inactive_table)
                return provider_fail(res, index, EBUSY, VSS_E_BAD_STATE, "%s has an inactive table loaded "
                                     "(another device-mapper tool is changing it): retry when that is done, "
                                     "or drop it with 'dmsetup clear %s'", origin->name, origin->name);
        r = dm_thin_read_table(DM_REF_DEVNUM(origin->major, origin->minor), ret_length, ret_pool_major, ret_pool_minor,
                            ret_id, &external);
        if (r == -EMEDIUMTYPE || r == -EBADMSG)
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER,
                                     "%s is not one thin volume (its table is not a single \"thin\" target)",
                                     origin->name);
        if (r < 0)
                return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_OBJECT_NOT_FOUND),
                                     "Cannot read the table of %s", origin->name);
        if (external)
                return provider_fail(res, index, 0, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER,
                                     "%s is a thin volume with an external origin (%s), which the dm-thin "
                                     "provider does not snapshot", origin->name, external);
        return S_OK;
}

static unsigned max_used_percent(const ProviderSet *ps) {
        unsigned p = ps->settings ? ps->settings->thin_pool_max_used_percent : 0;

        return p > 0 && p <= 100 ? p : THIN_POOL_DEFAULT_MAX_USED_PERCENT;
}

/* The pool: healthy, writable, with room. Also gives its name and UUID. */
static VssCode pool_check(const ProviderSet *ps, size_t index, unsigned major, unsigned minor, DmInfo *ret,
                          ProviderResult *res) {
        ThinPoolStatus status;
        uint64_t block_bytes;
        char msg[400];
        int r;

        r = dm_device_info(DM_REF_DEVNUM(major, minor), ret);
        if (r >= 0)
                r = read_pool(major, minor, &status, &block_bytes);
        if (r < 0)
                return provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_OBJECT_NOT_FOUND),
                                     "Cannot read the status of thin pool %u:%u", major, minor);
        r = thin_pool_check_space(&status, ret->name, block_bytes, max_used_percent(ps), msg, sizeof msg);
        if (r == -ENOSPC)
                return provider_fail(res, index, 0, VSS_E_INSUFFICIENT_STORAGE, "%s", msg);
        if (r < 0)
                return provider_fail(res, index, 0, VSS_E_BAD_STATE, "%s", msg);
        return S_OK;
}

static VssCode dm_thin_begin_prepare(ProviderSet *ps, ProviderSnapshot *snap, ProviderResult *res) {
        const BlockDevice *v = snap->volume;
        Snapshot *model = snap->snapshot;
        size_t index = provider_snapshot_index(ps, snap);
        ThinSnapState *st = NULL;
        DmInfo origin, pool, sinfo;
        json_object *j = NULL;
        VssCode code;
        int r;

        if (!v || v->type != BLOCK_DEVICE_DM || !model)
                return provider_fail(res, index, EINVAL, E_INVALIDARG, "not a device-mapper volume");
        if (snap->state)
                return provider_fail(res, index, EALREADY, VSS_E_BAD_STATE, "%s is already prepared", strna(v->path));

        st = calloc(1, sizeof(ThinSnapState));
        if (!st)
                return provider_fail(res, index, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        r = dm_device_info(DM_REF_DEVNUM(v->major, v->minor), &origin);
        if (r < 0) {
                code = provider_fail(res, index, r, provider_code_from_errno(r, VSS_E_OBJECT_NOT_FOUND),
                                     "Device-mapper device %u:%u (%s) is gone", v->major, v->minor, strna(v->path));
                goto fail;
        }
        code = origin_check(&origin, index, &st->rec.length_sectors, &st->pool_major, &st->pool_minor,
                            &st->rec.origin_id, res);
        if (code == S_OK)
                code = pool_check(ps, index, st->pool_major, st->pool_minor, &pool, res);
        if (code != S_OK)
                goto fail;

        st->origin_major = origin.major;
        st->origin_minor = origin.minor;
        if (snapshot_set_field(&st->rec.origin_name, origin.name) < 0 ||
            snapshot_set_field(&st->rec.origin_uuid, origin.uuid[0] ? origin.uuid : NULL) < 0 ||
            snapshot_set_field(&st->rec.pool_name, pool.name) < 0 ||
            snapshot_set_field(&st->rec.pool_uuid, pool.uuid[0] ? pool.uuid : NULL) < 0 ||
            asprintf(&st->rec.snapshot_name, SNAPSHOT_NAME_PREFIX "%s", model->id) < 0 ||
            asprintf(&st->rec.snapshot_uuid, SNAPSET_DM_UUID_PREFIX "%s", model->id) < 0) {
                code = provider_fail(res, index, ENOMEM, E_OUTOFMEMORY, "Out of memory");
                goto fail;
        }

        /* Recorded before the device is made: a crash from here on is undone by recover(). */
        r = dm_thin_record_to_json(&st->rec, &j);
        if (r >= 0)
                r = provider_record_intent(ps, model, j);
        if (r < 0) {
                code = provider_fail(res, index, r, r == -ENOMEM ? E_OUTOFMEMORY : VSS_E_UNEXPECTED,
                                     "Cannot record the snapshot of %s for crash recovery", origin.name);
                goto fail;
        }

        /* Without a table: the id it will map does not exist before the window. It is made now
         * so that nothing is looked up then, and it serves to check ids in pre_commit. */
        r = dm_device_create(st->rec.snapshot_name, st->rec.snapshot_uuid, NULL, DM_RULES_LOW_PRIORITY, NULL, &sinfo);
        if (r < 0) {
                code = provider_fail(res, index, r, r == -EEXIST ? VSS_E_BAD_STATE : provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Cannot create %s", st->rec.snapshot_name);
                goto fail;
        }
        st->snap_major = sinfo.major;
        st->snap_minor = sinfo.minor;
        if (snapshot_set_field(&model->kind, "thin") < 0 || snapshot_set_field(&model->pool, pool.name) < 0) {
                code = provider_fail(res, index, ENOMEM, E_OUTOFMEMORY, "Out of memory");
                goto undo;
        }
        snap->state = st;
        log_debug("dm-thin: prepared %s of %s (thin id %" PRIu32 " in pool %s).", st->rec.snapshot_name,
                  origin.name, st->rec.origin_id, pool.name);
        return S_OK;

undo:
        (void) dm_device_remove(DM_REF_NAME(st->rec.snapshot_name), NULL);
fail:
        /* Nothing of it is left (or the device of that name was not ours). */
        provider_data_replace(model, NULL);
        snap_state_free(st);
        return code;
}

/* Picks and verifies the thin id of every snapshot of the share, just before the window. */
static VssCode pick_ids(ProviderSet *ps, ProviderResult *res) {
        for (size_t i = 0; i < ps->n_snapshots; i++) {
                ThinSnapState *st = ps->snapshots[i]->state;
                _cleanup_free_ uint32_t *used = NULL;
                size_t n = 0;
                uint32_t id;
                int r;

                r = pool_ids_in_use(st->pool_major, st->pool_minor, &used, &n);
                if (r < 0)
                        return provider_fail(res, i, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Cannot list the thin devices of pool %s", st->rec.pool_name);
                /* The ids this share picked already for the same pool are taken too. */
                for (size_t j = 0; j < i; j++) {
                        ThinSnapState *o = ps->snapshots[j]->state;
                        uint32_t *grown;

                        if (o->pool_major != st->pool_major || o->pool_minor != st->pool_minor)
                                continue;
                        grown = reallocarray(used, n + 1, sizeof(uint32_t));
                        if (!grown)
                                return provider_fail(res, i, ENOMEM, E_OUTOFMEMORY, "Out of memory");
                        used = grown;
                        used[n++] = o->rec.snapshot_id;
                }
                r = thin_pick_device_id(used, n, &id);
                /* An id above every active one can still belong to an inactive thin device of
                 * the pool: try the next until the kernel says one does not exist. */
                for (unsigned tries = 0; r >= 0; tries++) {
                        r = pool_id_exists(DM_REF_DEVNUM(st->snap_major, st->snap_minor), st->rec.length_sectors,
                                           st->pool_major, st->pool_minor, id);
                        if (r == 0)
                                break;
                        if (r > 0 && tries + 1 >= ID_TRIES)
                                r = -ENOSPC;
                        else if (r > 0)
                                id = id < THIN_DEV_ID_MAX ? id + 1 : 0;
                }
                if (r < 0)
                        return provider_fail(res, i, r, VSS_E_PROVIDER_VETO, "Cannot find a free thin device id in "
                                             "pool %s (ids above %" PRIu32 " tried); delete unused thin devices "
                                             "of the pool", st->rec.pool_name, id);
                st->rec.snapshot_id = id;
                st->rec.id_picked = true;
                snprintf(st->create_message, sizeof st->create_message, "create_snap %" PRIu32 " %" PRIu32, id,
                         st->rec.origin_id);
                if (record_store(ps->snapshots[i]->snapshot, &st->rec) < 0)
                        return provider_fail(res, i, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        }
        return S_OK;
}

static VssCode dm_thin_pre_commit(ProviderSet *ps, ProviderResult *res) {
        VssCode code;

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                ThinSnapState *st = ps->snapshots[i]->state;
                DmInfo o;

                if (!st)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "A volume was not prepared");
                if (dm_device_info(DM_REF_DEVNUM(st->origin_major, st->origin_minor), &o) < 0 ||
                    !streq(o.name, st->rec.origin_name))
                        return provider_fail(res, i, ENXIO, VSS_E_OBJECT_NOT_FOUND, "%s is gone", st->rec.origin_name);
                if (o.suspended || o.inactive_table)
                        return provider_fail(res, i, ESTALE, VSS_E_BAD_STATE, "%s changed since it was prepared "
                                             "(suspended, or an inactive table was loaded by another tool)",
                                             st->rec.origin_name);
        }
        if (!ps->state) {
                ThinSetState *set = calloc(1, sizeof(ThinSetState));

                if (!set)
                        return provider_fail(res, SIZE_MAX, ENOMEM, E_OUTOFMEMORY, "Out of memory");
                ps->state = set;
                if (dm_udev_cookie_new(&set->cookie) < 0)
                        return provider_fail(res, SIZE_MAX, ENOMEM, E_OUTOFMEMORY, "Cannot create a udev cookie "
                                             "(SysV semaphore)");
                set->have_cookie = true;
        }
        code = provider_window_crew_new(&((ThinSetState *) ps->state)->crew, ps->n_snapshots, res);
        if (code != S_OK)
                return code;
        /* Last, right before the window: the less time between checking an id and using it,
         * the less chance that another tool takes it meanwhile. */
        return pick_ids(ps, res);
}

/* ---------------------------------------------------------------- the window
 *
 * From here to release_writes: no malloc of ours, no logging, no path lookups. */

static DmHeld held_of(ProviderSet *ps, size_t i) {
        ThinSnapState *st = ps->snapshots[i]->state;

        return st ? (DmHeld) { st->origin_major, st->origin_minor, &st->origin_suspended } : (DmHeld) {};
}

static WindowCrew *crew_of(const ProviderSet *ps) {
        const ThinSetState *s = ps->state;

        return s ? s->crew : NULL;
}

/* All at once (dm-hold.h). skip-lockfs: the filesystem is frozen with FIFREEZE already, and a
 * lockfs suspend on top fails with EBUSY before Linux 6.8. With a flush: every acknowledged write
 * is in the pool's mappings before the pool copies them for the snapshot. */
static VssCode dm_thin_hold_writes(ProviderSet *ps, ProviderResult *res) {
        size_t n = provider_test_fail_at(ps, "HoldWrites"), failed = 0;
        VssCode code;
        int r;

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                ThinSnapState *st = ps->snapshots[i]->state;

                if (!st || !st->rec.id_picked)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "A volume was not prepared");
        }
        r = dm_held_suspend(crew_of(ps), ps, n, held_of, &failed);
        if (r < 0)
                return provider_fail(res, failed, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Suspending %s failed",
                                     ((ThinSnapState *) ps->snapshots[failed]->state)->rec.origin_name);
        if (provider_test_fails(ps, "HoldWrites", n, res, &code))
                return code;
        return S_OK;
}

static VssCode dm_thin_commit(ProviderSet *ps, ProviderResult *res) {
        VssCode code;

        for (size_t i = 0; i < ps->n_snapshots; i++) {
                ThinSnapState *st = ps->snapshots[i]->state;
                int r;

                if (!st || !st->origin_suspended)
                        return provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "%s is not held",
                                             st ? st->rec.origin_name : "a volume");
                if (provider_test_fails(ps, "CommitSnapshots", i, res, &code))
                        return code;
                /* The point in time. The message commits the pool's metadata. */
                r = dm_device_message(DM_REF_DEVNUM(st->pool_major, st->pool_minor), 0, st->create_message);
                if (r == -EEXIST)
                        return provider_fail(res, i, r, VSS_E_BAD_STATE, "Thin device id %" PRIu32 " of pool %s was "
                                             "taken by another program while the snapshot of %s was being taken; "
                                             "nothing was kept: retry", st->rec.snapshot_id, st->rec.pool_name,
                                             st->rec.origin_name);
                if (r < 0)
                        return provider_fail(res, i, r, r == -EOPNOTSUPP || r == -ENOSPC ?
                                             VSS_E_INSUFFICIENT_STORAGE : VSS_E_PROVIDER_VETO,
                                             "Pool %s refused \"%s\" (see the kernel log; a pool out of metadata "
                                             "space or read-only refuses every message)", st->rec.pool_name,
                                             st->create_message);
                st->created = true;
        }
        return S_OK;
}

/* Every held origin is resumed, whatever fails on the way, all at once. Nothing else changed on
 * them: the snapshot lives in the pool. */
static VssCode dm_thin_release_writes(ProviderSet *ps, bool committed, ProviderResult *res) {
        ThinSetState *set = ps->state;
        size_t failed = 0;
        int r;

        r = dm_held_resume(crew_of(ps), ps, held_of, set && set->have_cookie ? &set->cookie : NULL, &failed);
        if (r < 0)
                return provider_fail(res, failed, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Resuming %s failed",
                                     ((ThinSnapState *) ps->snapshots[failed]->state)->rec.origin_name);
        return S_OK;
}

/* ---------------------------------------------------------------- after the window */

static int model_set_device(Snapshot *model, const char *dm_name) {
        char *p;

        if (asprintf(&p, "/dev/mapper/%s", dm_name) < 0)
                return -ENOMEM;
        free(model->device);
        model->device = p;
        return 0;
}

/* Pool usage into the model; invalid if the pool failed or the device lost its table. */
static void query_into(Snapshot *model, unsigned pool_major, unsigned pool_minor, const char *snapshot_name) {
        ThinPoolStatus s;
        DmInfo info;

        if (read_pool(pool_major, pool_minor, &s, NULL) >= 0) {
                model->pool_data_used_percent = s.data_total ? 100.0 * (double) s.data_used / (double) s.data_total : -1;
                model->pool_metadata_used_percent = s.meta_total ? 100.0 * (double) s.meta_used / (double) s.meta_total : -1;
                model->invalid = s.mode == THIN_POOL_FAIL;
        }
        if (dm_device_info(DM_REF_NAME(snapshot_name), &info) < 0 || !info.live_table)
                model->invalid = true;
}

/* Gives the snapshot device its table and activates it. */
int dm_thin_activate_device(const char *name, uint64_t length, unsigned pool_major, unsigned pool_minor,
                           uint32_t id, uint32_t *cookie) {
        _cleanup_free_ char *table = NULL;
        int r;

        r = dm_thin_table(length, pool_major, pool_minor, id, &table);
        if (r >= 0)
                r = dm_device_load(DM_REF_NAME(name), table);
        if (r >= 0)
                r = dm_device_resume(DM_REF_NAME(name), DM_RULES_LOW_PRIORITY, cookie);
        return r;
}

static VssCode dm_thin_post_commit(ProviderSet *ps, ProviderResult *res) {
        uint32_t cookie = 0;
        VssCode code = S_OK;

        /* Everything is resumed and thawed: now udev may be waited for. */
        set_cookie_wait(ps);
        (void) dm_udev_cookie_new(&cookie);
        for (size_t i = 0; i < ps->n_snapshots && code == S_OK; i++) {
                ThinSnapState *st = ps->snapshots[i]->state;
                Snapshot *model = ps->snapshots[i]->snapshot;
                int r;

                if (!st || !st->created) {
                        code = provider_fail(res, i, EINVAL, VSS_E_BAD_STATE, "A snapshot was not committed");
                        break;
                }
                r = dm_thin_activate_device(st->rec.snapshot_name, st->rec.length_sectors, st->pool_major, st->pool_minor,
                                    st->rec.snapshot_id, &cookie);
                if (r < 0) {
                        code = provider_fail(res, i, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                             "Activating %s (thin device %" PRIu32 " of pool %s) failed",
                                             st->rec.snapshot_name, st->rec.snapshot_id, st->rec.pool_name);
                        break;
                }
                st->rec.created = true;
                if (record_store(model, &st->rec) < 0 || model_set_device(model, st->rec.snapshot_name) < 0)
                        code = provider_fail(res, i, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        }
        (void) dm_udev_cookie_wait(&cookie);
        for (size_t i = 0; i < ps->n_snapshots && code == S_OK; i++) {
                ThinSnapState *st = ps->snapshots[i]->state;
                Snapshot *model = ps->snapshots[i]->snapshot;

                /* Resumed by name without udev, nobody made its node yet. */
                (void) dm_device_mknodes(DM_REF_NAME(st->rec.snapshot_name));
                if (access(model->device, F_OK) < 0)
                        code = provider_fail(res, i, errno, VSS_E_PROVIDER_VETO, "%s did not appear (udev rules "
                                             "for device-mapper missing?)", model->device);
                query_into(model, st->pool_major, st->pool_minor, st->rec.snapshot_name);
        }
        if (code == S_OK)
                share_state_free(ps);
        return code;
}

static VssCode dm_thin_abort(ProviderSet *ps, ProviderResult *res) {
        uint32_t cookie = 0;
        VssCode code = S_OK;

        (void) dm_udev_cookie_new(&cookie);
        /* The window's resumes first (the coordinator released and thawed before an abort). */
        set_cookie_wait(ps);
        for (size_t i = ps->n_snapshots; i-- > 0; ) {
                ProviderSnapshot *snap = ps->snapshots[i];
                ThinSnapState *st = snap->state;
                DmThinRecord parsed = {};
                const DmThinRecord *rec;
                char msg[256];
                int r;

                if (st) {
                        st->rec.created = st->created;
                        rec = &st->rec;
                } else if (snap->snapshot && dm_thin_record_from_json(snap->snapshot->provider_data, &parsed) >= 0)
                        rec = &parsed;   /* committed; post_commit freed the state */
                else
                        continue;        /* never prepared */
                r = teardown(rec, st && st->origin_suspended, &cookie, msg, sizeof msg);
                if (r < 0 && code == S_OK)
                        code = provider_fail(res, i, r, VSS_E_PROVIDER_VETO, "Could not remove everything of "
                                             "snapshot %s: %s. Once the cause is fixed (a process holding it: "
                                             "fuser -vm, lsof), run 'snapsetctl cleanup'; snapsetd also retries "
                                             "at every start", rec->snapshot_name, msg);
                dm_thin_record_done(&parsed);
        }
        (void) dm_udev_cookie_wait(&cookie);
        share_state_free(ps);
        return code;
}

/* ---------------------------------------------------------------- finished snapshots */

VssCode dm_thin_record_of(const Snapshot *snap, DmThinRecord *ret, ProviderResult *res) {
        int r;

        r = dm_thin_record_from_json(snap->provider_data, ret);
        if (r < 0)
                return provider_fail(res, 0, r, provider_code_from_errno(r, E_INVALIDARG), "Snapshot %s has no "
                                     "valid dm-thin record (provider data)", snap->id);
        return S_OK;
}

VssCode dm_thin_record_and_pool(const Snapshot *snap, DmThinRecord *rec, DmInfo *pool, ProviderResult *res) {
        VssCode code = dm_thin_record_of(snap, rec, res);
        int r;

        if (code != S_OK)
                return code;
        r = dm_thin_find_device(rec->pool_uuid, rec->pool_name, pool);
        if (r < 0)
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_OBJECT_NOT_FOUND), "Thin pool %s "
                                     "of snapshot %s is not there (is it set up yet?)", rec->pool_name, snap->id);
        return S_OK;
}

/* Undoes snap from its record; its udev events join *cookie, for the caller to wait on. */
static VssCode undo_from_record(Snapshot *snap, bool recovering, uint32_t *cookie, ProviderResult *res) {
        _cleanup_(dm_thin_record_done) DmThinRecord rec = {};
        char msg[256];
        VssCode code;
        int r;

        code = dm_thin_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        r = teardown(&rec, recovering, cookie, msg, sizeof msg);
        if (r < 0)
                return provider_fail(res, 0, 0, r == -EBUSY ? VSS_E_BAD_STATE : provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Removing snapshot %s failed: %s%s", rec.snapshot_name, msg,
                                     r == -EBUSY ? "; unmount it first" : "");
        return S_OK;
}

/* A whole set's snapshots, with one udev cookie (dm-undo.h). */
static void dm_thin_prepare_delete(Snapshot *const *snaps, size_t n, const ProviderSettings *settings) {
        _cleanup_free_ DmRemoval *items = calloc(n, sizeof(DmRemoval));
        uint32_t cookie = 0;
        size_t m = 0;

        /* The snapshot devices side by side (dm-undo.h); then each snapshot's delete, which finds
         * its device gone and deletes its thin id (the pool takes its messages one at a time). */
        for (size_t i = 0; items && i < n; i++) {
                _cleanup_(dm_thin_record_done) DmThinRecord rec = {};
                DmInfo s;

                if (dm_thin_record_from_json(snaps[i]->provider_data, &rec) < 0 || rec.reverting ||
                    dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) < 0 || s.open_count > 0 || s.inactive_table)
                        continue;
                items[m++] = (DmRemoval) { .major = { s.major }, .minor = { s.minor }, .n_devices = 1 };
        }
        if (m > 0) {
                (void) dm_udev_cookie_new(&cookie);
                dm_removals_run(items, m, &cookie);
                (void) dm_udev_cookie_wait(&cookie);
        }
        dm_undo_batch(undo_from_record, snaps, n);
}

/* Removes a finished snapshot: its device, then its thin id. Done already is success. */
static VssCode dm_thin_delete(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        return dm_undo_one(undo_from_record, snap, false, res);
}

/* After a crash during a set's creation: resume the origin if it was left suspended, remove the
 * snapshot device, delete the id if create_snap got to make it. No lockfs anywhere: the
 * filesystems may still be frozen. */
static VssCode dm_thin_recover(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        return dm_undo_one(undo_from_record, snap, true, res);
}

/* After a reboot: the thin id is still in the pool; only the device needs its table. Nothing
 * written to the origin since can reach the snapshot: thin snapshots share no live state with
 * their origin. */
static VssCode dm_thin_activate(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        _cleanup_(dm_thin_record_done) DmThinRecord rec = {};
        DmInfo pool, s;
        uint32_t cookie = 0;
        VssCode code;
        int r;

        code = dm_thin_record_and_pool(snap, &rec, &pool, res);
        if (code != S_OK)
                return code;
        /* Half reverted: revert_progress finishes it; N is not to be opened meanwhile. */
        if (rec.reverting)
                return S_OK;
        if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) >= 0 && s.live_table)
                return model_set_device(snap, rec.snapshot_name) < 0 ?
                        provider_fail(res, 0, ENOMEM, E_OUTOFMEMORY, "Out of memory") : S_OK;

        (void) dm_udev_cookie_new(&cookie);
        r = 0;
        if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) < 0)
                r = dm_device_create(rec.snapshot_name, rec.snapshot_uuid, NULL, DM_RULES_LOW_PRIORITY, NULL, &s);
        if (r >= 0)
                r = dm_thin_activate_device(rec.snapshot_name, rec.length_sectors, pool.major, pool.minor, rec.snapshot_id,
                                    &cookie);
        (void) dm_udev_cookie_wait(&cookie);
        if (r == -ENODATA) {
                /* The pool has no such id: the snapshot was deleted behind snapset's back. */
                (void) dm_device_remove(DM_REF_NAME(rec.snapshot_name), NULL);
                res->snapshot_gone = true;
                return provider_fail(res, 0, r, VSS_E_OBJECT_NOT_FOUND, "Thin device %" PRIu32 " of pool %s, "
                                     "snapshot %s, no longer exists", rec.snapshot_id, pool.name, snap->id);
        }
        if (r < 0) {
                if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) >= 0 && !s.live_table)
                        (void) dm_device_remove(DM_REF_NAME(rec.snapshot_name), NULL);
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Activating %s "
                                     "(thin device %" PRIu32 " of pool %s) failed", rec.snapshot_name,
                                     rec.snapshot_id, pool.name);
        }
        (void) dm_device_mknodes(DM_REF_NAME(rec.snapshot_name));
        if (model_set_device(snap, rec.snapshot_name) < 0)
                return provider_fail(res, 0, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        return S_OK;
}

static VssCode dm_thin_query(Snapshot *snap, ProviderResult *res) {
        _cleanup_(dm_thin_record_done) DmThinRecord rec = {};
        DmInfo pool;
        VssCode code;

        code = dm_thin_record_of(snap, &rec, res);
        if (code != S_OK || rec.reverting)
                return code;
        if (dm_thin_find_device(rec.pool_uuid, rec.pool_name, &pool) < 0) {
                snap->invalid = true;
                return S_OK;
        }
        query_into(snap, pool.major, pool.minor, rec.snapshot_name);
        return S_OK;
}

/* ---------------------------------------------------------------- probe, support */

static int dm_thin_probe(char **ret_reason) {
        static const char *const targets[] = { "thin-pool", "thin", NULL };
        int r;

        r = dm_probe(ret_reason);
        if (r <= 0)
                return r;
        /* Both targets live in one module, dm-thin-pool. */
        return dm_targets_available(targets, "dm-thin-pool", ret_reason);
}

static int dm_thin_is_volume_supported(const BlockDevice *d, char **ret_reason) {
        if (d->type != BLOCK_DEVICE_DM || blockdev_is_lvm(d) || provider_device_is_snapset_own(d))
                return VOLUME_NOT_HANDLED;
        /* Without the table there is no telling a thin volume from any other dm device. */
        if (!d->dm_targets)
                return VOLUME_NOT_HANDLED;
        if (blockdev_strv_contains(d->dm_targets, "thin-pool"))
                return provider_not_supported(ret_reason, "a thin pool, not a thin volume: snapshot "
                                              "the thin volumes in it");
        if (!blockdev_strv_contains(d->dm_targets, "thin"))
                return VOLUME_NOT_HANDLED;
        /* create_snap snapshots one thin device; a table that maps only part of the volume to
         * it would give a snapshot of that part. */
        if (blockdev_strv_length(d->dm_targets) != 1)
                return provider_not_supported(ret_reason, "its table mixes thin with other targets");
        return VOLUME_SUPPORTED;
}

static const ProviderOps dm_thin_ops = {
        .probe = dm_thin_probe,
        .is_volume_supported = dm_thin_is_volume_supported,
        .begin_prepare_snapshot = dm_thin_begin_prepare,
        .pre_commit_snapshots = dm_thin_pre_commit,
        .hold_writes = dm_thin_hold_writes,
        .commit_snapshots = dm_thin_commit,
        .release_writes = dm_thin_release_writes,
        .post_commit_snapshots = dm_thin_post_commit,
        .abort_snapshots = dm_thin_abort,
        .delete_snapshot = dm_thin_delete,
        .prepare_delete = dm_thin_prepare_delete,
        .activate_snapshot = dm_thin_activate,
        .recover = dm_thin_recover,
        .query = dm_thin_query,
        .revert_start = dm_thin_revert_start,
        .revert_progress = dm_thin_revert_progress,
        .break_snapshot = dm_thin_break,
};

const Provider provider_dm_thin = {
        .name = "dm-thin",
        .kind = "builtin",
        .priority = 20,
        .ops = &dm_thin_ops,
};
