/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The dm-thin provider's revert and break (provider.h), for a thin volume X (thin id ID of pool P)
 * and its snapshot S (thin id N, device snapset-S).
 *
 * Revert gives X the snapshot's data under X's own id, so that whatever sets X up at boot ("thin
 * P ID" in a script or a unit) finds the reverted volume. A thin device is a tree of mappings in
 * the pool's metadata, and a snapshot of N taken as ID is exactly N. X must be closed (unmounted;
 * RevertToSnapshot's forceDismount unmounts it first):
 *   1. snapset-S is removed (it holds N open), and X gets an "error" table of its size while its
 *      id is replaced (X keeps its device number; ID is no longer open);
 *   2. "delete ID", "create_snap ID N", "delete N" to P;
 *   3. X gets its own table back, "thin P ID", and is resumed.
 * No data moves, so the revert is done when this returns. A failure before ID is deleted puts
 * everything back as it was; one after it gives X the snapshot's data as best it can, and the
 * message says what is left to do. The record says "reverting" right before "delete ID": a crash
 * from there on is finished by revert_progress at the next start, as long as X is still on its
 * error table (or not set up at all); an X set up anew on ID meanwhile is left alone, and the
 * revert reported failed.
 *
 * Break makes snapset-S an ordinary device, ORIGIN_snap_XXXXXXXX (the start of the snapshot's
 * id), over the same thin id N and without snapset's dm UUID, by which snapset would know it
 * again: a dm UUID cannot be changed on a device, so it is removed and made again. */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "dm-thin.h"
#include "dm.h"
#include "log.h"
#include "provider.h"
#include "result.h"
#include "snapshot-set.h"

/* A message to the pool, formatted. */
_printf_(2, 3) static int pool_message(const DmInfo *pool, const char *format, ...) {
        char message[64];
        va_list ap;

        va_start(ap, format);
        vsnprintf(message, sizeof message, format, ap);
        va_end(ap);
        return dm_device_message(DM_REF_DEVNUM(pool->major, pool->minor), 0, message);
}

/* X's live table becomes table (X is closed: nothing to freeze, nothing in flight). */
static int swap_table(const DmInfo *x, const char *table, uint32_t *cookie) {
        return dm_device_swap_table(DM_REF_DEVNUM(x->major, x->minor), table, cookie);
}

/* snapset-S again, as it was (after a failure that removed it). */
static void snapshot_device_again(const DmThinRecord *rec, const DmInfo *pool) {
        DmInfo s;
        int r = 0;

        if (dm_device_info(DM_REF_NAME(rec->snapshot_name), &s) < 0)
                r = dm_device_create(rec->snapshot_name, rec->snapshot_uuid, NULL, DM_RULES_LOW_PRIORITY, NULL, &s);
        if (r >= 0)
                r = dm_thin_activate_device(rec->snapshot_name, rec->length_sectors, pool->major, pool->minor,
                                            rec->snapshot_id, NULL);
        if (r < 0)
                log_warning_errno(r, "Cannot set up the snapshot device %s again: %m", rec->snapshot_name);
        else
                (void) dm_device_mknodes(DM_REF_NAME(rec->snapshot_name));
}

/* The record, its pool, and the origin X checked to be closed and still thin device ID of it. */
static VssCode revert_check(const Snapshot *snap, DmThinRecord *rec, DmInfo *pool, DmInfo *x, ProviderResult *res) {
        _cleanup_free_ char *external = NULL;
        unsigned major, minor;
        uint64_t length;
        uint32_t id;
        DmInfo s;
        VssCode code;
        int r;

        code = dm_thin_record_and_pool(snap, rec, pool, res);
        if (code != S_OK)
                return code;
        r = dm_thin_find_device(rec->origin_uuid, rec->origin_name, x);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_OBJECT_NOT_FOUND, "'%s' (thin device %" PRIu32 " of pool %s) "
                                     "is not there: set it up, then revert", rec->origin_name, rec->origin_id,
                                     rec->pool_name);
        if (x->open_count > 0)
                return provider_fail(res, 0, EBUSY, VSS_E_VOLUME_IN_USE, "'%s' is open (mounted, or used by another "
                                     "device): unmount it and revert again, or revert with forceDismount (snapsetctl "
                                     "revert --force-dismount)",
                                     x->name);
        r = dm_thin_read_table(DM_REF_DEVNUM(x->major, x->minor), &length, &major, &minor, &id, &external);
        if (r < 0 || external || id != rec->origin_id || major != pool->major || minor != pool->minor ||
            length != rec->length_sectors)
                return provider_fail(res, 0, r < 0 ? r : 0, VSS_E_BAD_STATE, "'%s' is no longer thin device %" PRIu32
                                     " of pool %s with %" PRIu64 " sectors (its table changed since the snapshot): "
                                     "nothing was reverted", x->name, rec->origin_id, pool->name, rec->length_sectors);
        if (dm_device_info(DM_REF_NAME(rec->snapshot_name), &s) >= 0 && s.open_count > 0)
                return provider_fail(res, 0, EBUSY, VSS_E_VOLUME_IN_USE, "The snapshot device %s is open (mounted, or "
                                     "used by a program): close it and revert again", rec->snapshot_name);
        return S_OK;
}

/* After "delete ID" the origin's data is gone: X is given N itself, which holds what was asked. */
static VssCode revert_onto_snapshot_id(const DmThinRecord *rec, const DmInfo *pool, const DmInfo *x, int why,
                                       ProviderRevert *ret, ProviderResult *res) {
        _cleanup_free_ char *table = NULL;
        uint32_t cookie = 0;
        int r;

        r = dm_thin_table(rec->length_sectors, pool->major, pool->minor, rec->snapshot_id, &table);
        if (r >= 0)
                r = swap_table(x, table, &cookie);
        (void) dm_udev_cookie_wait(&cookie);
        if (r < 0)
                return provider_fail(res, 0, why, VSS_E_UNEXPECTED, "Thin pool %s deleted thin device %" PRIu32 " of "
                                     "'%s' but could not snapshot %" PRIu32 " as it; '%s' is left with an error "
                                     "table: load \"%s\" into it (dmsetup load, dmsetup resume) to get the snapshot's "
                                     "data", pool->name, rec->origin_id, x->name, rec->snapshot_id, x->name,
                                     strempty(table));
        log_warning("'%s' was reverted, but now uses thin device %" PRIu32 " of pool %s instead of %" PRIu32
                    " (creating %" PRIu32 " again failed: %s): change what sets it up.", x->name, rec->snapshot_id,
                    pool->name, rec->origin_id, rec->origin_id, strerrordesc_np(-why));
        return provider_revert_done(ret);
}

VssCode dm_thin_revert_start(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                             ProviderResult *res) {
        _cleanup_(dm_thin_record_done) DmThinRecord rec = {};
        _cleanup_free_ char *own = NULL, *error = NULL;
        DmInfo pool, x;
        json_object *j;
        uint32_t cookie = 0;
        VssCode code;
        int r;

        code = revert_check(snap, &rec, &pool, &x, res);
        if (code != S_OK)
                return code;
        if (dm_thin_table(rec.length_sectors, pool.major, pool.minor, rec.origin_id, &own) < 0 ||
            dm_table_append(&error, 0, rec.length_sectors, "error", NULL) < 0)
                return provider_fail(res, 0, ENOMEM, E_OUTOFMEMORY, "Out of memory");

        r = dm_device_remove(DM_REF_NAME(rec.snapshot_name), NULL);
        if (r < 0 && r != -ENXIO)
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Removing the snapshot device %s failed: nothing was reverted", rec.snapshot_name);
        r = swap_table(&x, error, NULL);
        if (r < 0) {
                snapshot_device_again(&rec, &pool);
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot take '%s' "
                                     "off thin device %" PRIu32 ": nothing was reverted", x.name, rec.origin_id);
        }
        /* From "delete ID" on there is no way back: recorded first, so that a crash from here on is
         * finished by revert_progress rather than leaving X on the error table. */
        rec.reverting = true;
        r = dm_thin_record_to_json(&rec, &j);
        if (r >= 0)
                r = provider_revert_commit(ret, snap, j);
        if (r < 0) {
                (void) swap_table(&x, own, NULL);
                snapshot_device_again(&rec, &pool);
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_UNEXPECTED), "Cannot record that "
                                     "'%s' is being reverted: nothing was reverted", x.name);
        }
        r = pool_message(&pool, "delete %" PRIu32, rec.origin_id);
        if (r < 0) {
                (void) swap_table(&x, own, NULL);
                snapshot_device_again(&rec, &pool);
                rec.reverting = false;
                if (dm_thin_record_to_json(&rec, &j) >= 0)
                        provider_revert_uncommit(ret, snap, j);
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Thin pool %s "
                                     "refused to delete thin device %" PRIu32 " of '%s': nothing was reverted",
                                     pool.name, rec.origin_id, x.name);
        }
        r = pool_message(&pool, "create_snap %" PRIu32 " %" PRIu32, rec.origin_id, rec.snapshot_id);
        if (r < 0)
                return revert_onto_snapshot_id(&rec, &pool, &x, r, ret, res);
        r = pool_message(&pool, "delete %" PRIu32, rec.snapshot_id);
        if (r < 0)
                log_warning_errno(r, "Thin device %" PRIu32 " of pool %s (snapshot %s) could not be deleted after the "
                                  "revert: %m; delete it with: dmsetup message %s 0 \"delete %" PRIu32 "\"",
                                  rec.snapshot_id, pool.name, snap->id, pool.name, rec.snapshot_id);
        r = swap_table(&x, own, &cookie);
        (void) dm_udev_cookie_wait(&cookie);
        if (r < 0)
                return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "'%s' was reverted, but its own table could not be "
                                     "loaded back: load \"%s\" into it (dmsetup load, dmsetup resume)", x.name, own);
        return provider_revert_done(ret);
}

/* Whether the pool has thin device id: a table for it loads only if it does (ENODATA otherwise).
 * Tried on a device of its own, made without a table and removed at once. */
static int thin_id_exists(const DmInfo *pool, uint32_t id, uint64_t length) {
        _cleanup_free_ char *name = NULL, *table = NULL;
        int r;

        if (asprintf(&name, SNAPSET_DM_NAME_PREFIX "probe-%u-%" PRIu32, pool->minor, id) < 0 ||
            dm_thin_table(length, pool->major, pool->minor, id, &table) < 0)
                return -ENOMEM;
        /* One left by a crash in the middle holds id open: it goes first. */
        (void) dm_device_remove(DM_REF_NAME(name), NULL);
        r = dm_device_create(name, NULL, NULL, DM_RULES_HIDDEN, NULL, NULL);
        if (r < 0)
                return r;
        r = dm_device_load(DM_REF_NAME(name), table);
        (void) dm_device_remove(DM_REF_NAME(name), NULL);
        if (r == -ENODATA)
                return 0;
        return r < 0 ? r : 1;
}

/* Whether X runs the "error" table the revert gives it while its id is replaced. */
static bool on_error_table(const DmInfo *x) {
        _cleanup_free_ char *table = NULL, *type = NULL, *params = NULL;
        uint64_t start, length;

        return dm_device_table(DM_REF_DEVNUM(x->major, x->minor), false, &table) >= 0 &&
               dm_table_line_parse(table, strcspn(table, "\n"), &start, &length, &type, &params) >= 0 &&
               streq(type, "error");
}

/* A revert that got past "delete ID" and was cut short (a crash, a reboot, a failure), finished:
 * while N exists, X is taken off ID and "delete ID" (gone already is fine), "create_snap ID N",
 * "delete N" are sent again; once N is gone, ID holds the snapshot's data and X only needs its
 * own table. Idempotent. Pending while the pool is not set up, or X is open. */
static VssCode revert_finish(const Snapshot *snap, const DmThinRecord *rec, ProviderRevert *ret,
                             ProviderResult *res) {
        _cleanup_free_ char *own = NULL, *error = NULL;
        uint32_t cookie = 0;
        DmInfo pool, x;
        bool have_x;
        int exists, r;

        if (dm_thin_find_device(rec->pool_uuid, rec->pool_name, &pool) < 0) {
                ret->pending = true;
                return S_OK;
        }
        have_x = dm_thin_find_device(rec->origin_uuid, rec->origin_name, &x) >= 0;
        if (dm_thin_table(rec->length_sectors, pool.major, pool.minor, rec->origin_id, &own) < 0 ||
            dm_table_append(&error, 0, rec->length_sectors, "error", NULL) < 0)
                return provider_fail(res, 0, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        exists = thin_id_exists(&pool, rec->snapshot_id, rec->length_sectors);
        if (exists < 0)
                return provider_fail(res, 0, exists, VSS_E_UNEXPECTED, "Cannot tell whether thin device %" PRIu32
                                     " of pool %s (snapshot %s) exists", rec->snapshot_id, pool.name, snap->id);
        if (exists) {
                if (have_x && x.open_count > 0) {
                        ret->pending = true;
                        return S_OK;
                }
                if (have_x && !on_error_table(&x))
                        return provider_fail(res, 0, EEXIST, VSS_E_BAD_STATE, "'%s' runs thin device %" PRIu32
                                             " again (it was set up anew after the revert was cut short): it may hold "
                                             "its own data or the snapshot's, with writes made since, which finishing "
                                             "the revert would destroy", x.name, rec->origin_id);
                (void) dm_device_remove(DM_REF_NAME(rec->snapshot_name), NULL);
                r = have_x ? swap_table(&x, error, NULL) : 0;
                if (r >= 0) {
                        r = pool_message(&pool, "delete %" PRIu32, rec->origin_id);
                        if (r == -ENODATA)
                                r = 0;
                }
                if (r >= 0)
                        r = pool_message(&pool, "create_snap %" PRIu32 " %" PRIu32, rec->origin_id, rec->snapshot_id);
                if (r < 0)
                        return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "Cannot finish reverting '%s' to snapshot "
                                             "%s (thin device %" PRIu32 " of pool %s as %" PRIu32 "; see the kernel "
                                             "log)", rec->origin_name, snap->id, rec->snapshot_id, pool.name,
                                             rec->origin_id);
                r = pool_message(&pool, "delete %" PRIu32, rec->snapshot_id);
                if (r < 0)
                        log_warning_errno(r, "Thin device %" PRIu32 " of pool %s (snapshot %s) could not be deleted "
                                          "after the revert: %m", rec->snapshot_id, pool.name, snap->id);
        }
        if (have_x) {
                r = swap_table(&x, own, &cookie);
                (void) dm_udev_cookie_wait(&cookie);
                if (r < 0)
                        return provider_fail(res, 0, r, VSS_E_UNEXPECTED, "'%s' was reverted, but its own table could "
                                             "not be loaded back: load \"%s\" into it (dmsetup load, dmsetup "
                                             "resume)", x.name, own);
        } else
                log_notice("Thin device %" PRIu32 " of pool %s holds the data of snapshot %s now; '%s' is not set up: "
                           "set it up as before.", rec->origin_id, pool.name, snap->id, rec->origin_name);
        log_info("The interrupted revert of '%s' to snapshot %s is finished.", rec->origin_name, snap->id);
        return provider_revert_done(ret);
}

/* A revert is done when revert_start returns, unless it was cut short past its point of no
 * return (the record says reverting): then it is finished here. */
VssCode dm_thin_revert_progress(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                ProviderResult *res) {
        _cleanup_(dm_thin_record_done) DmThinRecord rec = {};
        VssCode code;

        code = dm_thin_record_of(snap, &rec, res);
        if (code != S_OK)
                return code;
        if (rec.reverting)
                return revert_finish(snap, &rec, ret, res);
        return provider_revert_done(ret);
}

VssCode dm_thin_break(Snapshot *snap, const ProviderSettings *settings, char **ret_device, ProviderResult *res) {
        _cleanup_(dm_thin_record_done) DmThinRecord rec = {};
        _cleanup_free_ char *name = NULL, *table = NULL, *device = NULL;
        DmInfo pool, s;
        uint32_t cookie = 0;
        VssCode code;
        int r;

        code = dm_thin_record_and_pool(snap, &rec, &pool, res);
        if (code != S_OK)
                return code;
        if (asprintf(&name, "%s_snap_%.8s", rec.origin_name, snap->id) < 0 ||
            asprintf(&device, "/dev/mapper/%s", name) < 0 ||
            dm_thin_table(rec.length_sectors, pool.major, pool.minor, rec.snapshot_id, &table) < 0)
                return provider_fail(res, 0, ENOMEM, E_OUTOFMEMORY, "Out of memory");
        if (strlen(name) > DM_NAME_MAX)
                return provider_fail(res, 0, ENAMETOOLONG, E_INVALIDARG, "The name %s is too long for a device-mapper "
                                     "device; nothing was changed", name);
        if (dm_device_info(DM_REF_NAME(name), &s) >= 0)
                return provider_fail(res, 0, EEXIST, VSS_E_OBJECT_ALREADY_EXISTS, "A device %s exists already: "
                                     "nothing was changed", name);
        if (dm_device_info(DM_REF_NAME(rec.snapshot_name), &s) >= 0 && s.open_count > 0)
                return provider_fail(res, 0, EBUSY, VSS_E_VOLUME_IN_USE, "The snapshot device %s is open (mounted, or "
                                     "used by a program): nothing was changed", rec.snapshot_name);

        r = dm_device_remove(DM_REF_NAME(rec.snapshot_name), NULL);
        if (r < 0 && r != -ENXIO)
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO),
                                     "Removing the snapshot device %s failed: nothing was changed", rec.snapshot_name);
        r = dm_device_create(name, NULL, table, DM_RULES_ALL, &cookie, NULL);
        (void) dm_udev_cookie_wait(&cookie);
        if (r < 0) {
                snapshot_device_again(&rec, &pool);
                return provider_fail(res, 0, r, provider_code_from_errno(r, VSS_E_PROVIDER_VETO), "Cannot make the "
                                     "device %s over thin device %" PRIu32 " of pool %s: the snapshot was left as it "
                                     "was", name, rec.snapshot_id, pool.name);
        }
        (void) dm_device_mknodes(DM_REF_NAME(name));
        *ret_device = TAKE_PTR(device);
        return S_OK;
}
