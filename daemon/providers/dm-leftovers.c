/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <strings.h>
#include <stdio.h>
#include <unistd.h>

#include "blockdev.h"
#include "dm-leftovers.h"
#include "dm-snapshot.h"
#include "dm.h"
#include "log.h"
#include "loop.h"
#include "provider.h"
#include "snapshot-set.h"

#define REAL_NAME_PREFIX DM_SNAPSHOT_REAL_NAME_PREFIX
#define REAL_UUID_PREFIX DM_SNAPSHOT_REAL_UUID_PREFIX
#define SNAPSHOT_NAME_PREFIX SNAPSET_DM_NAME_PREFIX

static bool known(char *const *ids, const char *id) {
        for (char *const *i = ids; i && *i; i++)
                if (strcasecmp(*i, id) == 0)
                        return true;
        return false;
}

/* The snapshot id of a snapset snapshot device: its uuid is SNAPSET-<id>. NULL if not ours. */
static const char *snapshot_id_of(const DmInfo *info) {
        const char *id = startswith(info->uuid, SNAPSET_DM_UUID_PREFIX);

        return id && snapset_id_is_valid(id) ? id : NULL;
}

static bool is_real(const DmInfo *info) {
        return startswith(info->name, REAL_NAME_PREFIX) && startswith(info->uuid, REAL_UUID_PREFIX);
}

/* An origin whose inactive table is a snapshot-origin of a snapset real device its live table
 * does not use: loaded by a creation that never reached its window. */
static int clear_stale_origin_table(const char *name) {
        _cleanup_free_ char *inactive = NULL, *live = NULL;
        unsigned ma, mi, lma, lmi;
        DmInfo info, real;
        int r;

        if (dm_device_info(DM_REF_NAME(name), &info) < 0 || !info.inactive_table ||
            dm_device_table(DM_REF_NAME(name), true, &inactive) < 0 ||
            dm_snapshot_origin_table_parse(inactive, &ma, &mi) <= 0 ||
            dm_device_info(DM_REF_DEVNUM(ma, mi), &real) < 0 || !is_real(&real))
                return 0;
        if (dm_device_table(DM_REF_NAME(name), false, &live) >= 0 &&
            dm_snapshot_origin_table_parse(live, &lma, &lmi) > 0 && lma == ma && lmi == mi)
                return 0;   /* the same table is live: a reload in progress, not ours to drop */
        r = dm_device_clear(DM_REF_NAME(name));
        if (r < 0)
                return log_warning_errno(r, "Leftover: %s has an inactive table onto %s that no record names, and "
                                         "dropping it failed: %m. Drop it with 'dmsetup clear %s'.",
                                         name, real.name, name);
        log_warning("Leftover: dropped the inactive snapshot-origin table of %s onto %s, loaded by an "
                    "interrupted snapshot set that no record names.", name, real.name);
        return 1;
}

static int remove_device(const char *name, const char *what) {
        int r = dm_device_remove(DM_REF_NAME(name), NULL);

        if (r < 0)
                return log_warning_errno(r, "Leftover: %s (%s, no record names it) could not be removed: %m. "
                                         "Remove it with 'dmsetup remove %s'.", name, what, name);
        log_warning("Leftover: removed %s (%s, left by an interrupted snapshot set that no record names).",
                    name, what);
        return 1;
}

/* A snapset device that no record names: a real device nothing uses, or a snapshot device
 * without a live table, is removed; a complete snapshot is kept and reported. */
static int sweep_device(const char *name, char *const *known_ids) {
        const char *id;
        DmInfo info;

        if (!startswith(name, SNAPSHOT_NAME_PREFIX) || dm_device_info(DM_REF_NAME(name), &info) < 0)
                return 0;
        if (is_real(&info))
                /* Tables that use a device hold it open: nothing maps onto it any more. */
                return info.open_count == 0 ? remove_device(name, "a real device nothing uses") : 0;
        id = snapshot_id_of(&info);
        if (!id || known(known_ids, id))
                return 0;
        if (!info.live_table)
                return info.open_count == 0 ? remove_device(name, "a snapshot device never made") : 0;
        log_warning("Snapshot device %s (snapshot %s) has no record: its state was lost, or the daemon stopped "
                    "right after making it. It is kept, since it may hold the only copy of a point in time; "
                    "remove it with 'dmsetup remove %s' (for a dm-thin snapshot also "
                    "'dmsetup message POOL 0 \"delete ID\"', ID from its table) once it is not needed.",
                    name, id, name);
        return 0;
}

/* A COW file no record names and no snapshot device uses, with its loop devices. */
static int sweep_cow_file(const char *dir, const char *file, char *const *known_ids) {
        char id[SNAPSET_ID_LENGTH + 1], path[PATH_MAX], name[DM_NAME_MAX + 1];
        _cleanup_free_ char *loop = NULL;
        dev_t devnum;
        DmInfo info;
        size_t l = strlen(file);

        if (l != SNAPSET_ID_LENGTH + 4 || !streq(file + SNAPSET_ID_LENGTH, ".cow"))
                return 0;
        memcpy(id, file, SNAPSET_ID_LENGTH);
        id[SNAPSET_ID_LENGTH] = 0;
        if (!snapset_id_is_valid(id) || known(known_ids, id))
                return 0;
        snprintf(name, sizeof name, SNAPSHOT_NAME_PREFIX "%s", id);
        if (dm_device_info(DM_REF_NAME(name), &info) >= 0 && info.live_table)
                return 0;   /* a complete snapshot: reported and kept with its device */
        snprintf(path, sizeof path, "%s/%s", dir, file);
        /* Normally none (they go with their last user); a few at most. A device still in use is
         * only marked for autoclear and found again: then the file stays in use too. */
        for (int i = 0; i < 8 && loop_find_by_backing(path, &loop, &devnum) > 0; i++) {
                if (loop_detach_if_backing(loop, path) >= 0)
                        log_warning("Leftover: detached %s from %s.", loop, path);
                free(loop);
                loop = NULL;
        }
        if (unlink(path) < 0)
                return log_warning_errno(errno, "Leftover: COW file %s (no record names it) could not be "
                                         "removed: %m.", path);
        log_warning("Leftover: removed the COW file %s of an interrupted snapshot set that no record names.", path);
        return 1;
}

int dm_leftovers_sweep(const char *cow_directory, char *const *known_ids) {
        char **names = NULL;
        int removed = 0, r;

        r = dm_device_list(&names);
        if (r < 0)
                return log_warning_errno(r, "Cannot list device-mapper devices to look for leftovers: %m");
        /* Inactive tables first: they hold the real devices open. */
        for (char **n = names; *n; n++)
                removed += clear_stale_origin_table(*n) > 0;
        for (char **n = names; *n; n++)
                if (!startswith(*n, REAL_NAME_PREFIX))
                        removed += sweep_device(*n, known_ids) > 0;
        for (char **n = names; *n; n++)
                if (startswith(*n, REAL_NAME_PREFIX))
                        removed += sweep_device(*n, known_ids) > 0;
        blockdev_strv_free(names);

        if (cow_directory) {
                DIR *d = opendir(cow_directory);
                struct dirent *de;

                while (d && (de = readdir(d)))
                        removed += sweep_cow_file(cow_directory, de->d_name, known_ids) > 0;
                if (d)
                        closedir(d);
        }
        return removed;
}
