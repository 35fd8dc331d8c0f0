/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Exposed snapshots in the registry: mounting and unmounting (expose.h) with the snapshot's
 * record kept in step (exposedAt, saved with its set), and the mounts brought back after a
 * restart of the daemon or a reboot. */

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <syslog.h>

#include "expose.h"
#include "log.h"
#include "sets-expose.h"
#include "store.h"

static void save(Manager *m, const SnapshotSet *set) {
        int r = store_save_set(m->state_directory, set);

        if (r < 0)
                log_warning_errno(r, "Failed to update the record of set %s: %m", set->id);
}

/* The default place, unique within the set: two volumes whose names give the same directory
 * ("/srv/db" and "/dev/srv/db") get "-2", "-3"... */
static int default_path(Manager *m, const SnapshotSet *set, const Snapshot *snap, char **ret) {
        _cleanup_free_ char *base = NULL;
        int r;

        r = expose_default_path(m->runtime_directory, set->id, snap->volume, &base);
        if (r < 0)
                return r;
        for (unsigned k = 1; k < 1000; k++) {
                _cleanup_free_ char *p = NULL;
                bool taken = false;

                if (k == 1 ? !(p = strdup(base)) : asprintf(&p, "%s-%u", base, k) < 0)
                        return -ENOMEM;
                for (size_t i = 0; i < set->n_snapshots; i++)
                        taken = taken || (set->snapshots[i] != snap && streq_ptr(set->snapshots[i]->exposed_at, p));
                if (!taken) {
                        *ret = TAKE_PTR(p);
                        return 0;
                }
        }
        return -EEXIST;
}

static dev_t device_of(const Snapshot *snap) {
        struct stat st;

        return snap->device && stat(snap->device, &st) >= 0 && S_ISBLK(st.st_mode) ? st.st_rdev : 0;
}

VssCode sets_expose(Manager *m, SnapshotSet *set, Snapshot *snap, const char *path, SetOutcome *out) {
        _cleanup_free_ char *where = NULL, *fstype = NULL, *options = NULL;
        char reason[512] = "";
        int r;

        *out = (SetOutcome) {};
        if (snap->revert)
                return sets_outcome(out, VSS_E_REVERT_IN_PROGRESS, 0, snap, "Snapshot %s is being merged into '%s' "
                                    "(%s): it cannot be exposed", snap->id, snap->volume, snap->revert);
        if (snap->invalid)
                return sets_outcome(out, VSS_E_BAD_STATE, 0, snap, "Snapshot %s is invalid (its copy-on-write store "
                            "overflowed): there is nothing consistent to expose; delete it", snap->id);
        if (device_of(snap) == 0)
                return sets_outcome(out, VSS_E_BAD_STATE, ENODEV, snap, "Snapshot %s has no block device%s%s (is it "
                            "active? 'snapsetctl show %s')", snap->id, snap->device ? " at " : "",
                            strempty(snap->device), snap->id);
        if (snap->exposed_at) {
                if (!path || streq(path, snap->exposed_at))
                        return S_OK;   /* already there: the same answer again */
                return sets_outcome(out, VSS_E_BAD_STATE, EBUSY, snap, "Snapshot %s is exposed at %s already; unexpose it "
                            "first", snap->id, snap->exposed_at);
        }
        if (path) {
                r = expose_check_path(path, m->runtime_directory, reason, sizeof reason);
                if (r == -ENOMEM)
                        return sets_outcome(out, E_OUTOFMEMORY, r, snap, "Out of memory");
                if (r < 0)
                        return sets_outcome(out, E_INVALIDARG, r, snap, "Cannot expose snapshot %s at %s: %s", snap->id,
                                    path, reason);
                /* The directory itself, not a path that may lead elsewhere later (a symlink). */
                where = realpath(path, NULL);
        } else if (default_path(m, set, snap, &where) < 0)
                where = NULL;
        if (!where)
                return sets_outcome(out, E_OUTOFMEMORY, ENOMEM, snap, "Out of memory");

        r = expose_mount_options(snap->device, &fstype, &options, reason, sizeof reason);
        if (r == -ENOMEM)
                return sets_outcome(out, E_OUTOFMEMORY, r, snap, "Out of memory");
        if (r < 0)
                return sets_outcome(out, VSS_E_NOT_SUPPORTED, r, snap, "Cannot mount snapshot %s: %s", snap->id, reason);
        r = expose_mount(snap->device, where, fstype, options, !path, reason, sizeof reason);
        if (r < 0) {
                if (!path)
                        (void) expose_unmount(where, m->runtime_directory, true, NULL, 0);   /* the directories */
                return sets_outcome(out, r == -ENODEV ? VSS_E_NOT_SUPPORTED : VSS_E_UNEXPECTED, r, snap, "%s", reason);
        }

        snap->exposed_at = TAKE_PTR(where);
        save(m, set);
        sets_event(m, LOG_INFO, "snapshot-exposed", set, snap, "Snapshot %s of '%s' exposed read-only at %s (%s, %s).",
                   snap->id, snap->volume, snap->exposed_at, fstype, options);
        return S_OK;
}

VssCode sets_unexpose(Manager *m, SnapshotSet *set, Snapshot *snap, bool lazy, SetOutcome *out) {
        char holders[300] = "";
        int r;

        *out = (SetOutcome) {};
        if (!snap->exposed_at)
                return S_OK;
        r = expose_unmount(snap->exposed_at, m->runtime_directory, lazy, holders, sizeof holders);
        if (r == -EBUSY)
                return sets_outcome(out, VSS_E_VOLUME_IN_USE, r, snap, "Snapshot %s is exposed at %s and in use%s%s: end "
                            "or move those processes away (fuser -vm %s shows them), or unexpose it, which "
                            "detaches the mount and lets them finish", snap->id, snap->exposed_at,
                            holders[0] ? " by " : "", holders, snap->exposed_at);
        if (r < 0)
                return sets_outcome(out, VSS_E_UNEXPECTED, r, snap, "Cannot unmount snapshot %s from %s: %s", snap->id,
                            snap->exposed_at, strerror(-r));
        sets_event(m, LOG_INFO, "snapshot-unexposed", set, snap, "Snapshot %s of '%s' is no longer exposed at %s%s.",
                   snap->id, snap->volume, snap->exposed_at, lazy ? " (detached; it goes when its last user does)" : "");
        free(snap->exposed_at);
        snap->exposed_at = NULL;
        save(m, set);
        return S_OK;
}

/* One exposed snapshot after a start: mounted still (a restart), mounted again (a reboot), or
 * no longer exposed, said why. */
static void restore_one(Manager *m, SnapshotSet *set, Snapshot *snap) {
        _cleanup_free_ char *fstype = NULL, *options = NULL, *mine = NULL;
        char reason[512] = "";
        bool ours;
        dev_t dev = device_of(snap);
        int r;

        if (dev != 0 && expose_is_mounted(snap->exposed_at, dev))
                return;
        if (asprintf(&mine, "%s/" EXPOSE_DIR "/", m->runtime_directory) < 0)
                return;
        ours = startswith(snap->exposed_at, mine) != NULL;
        r = dev == 0 ? -ENODEV : 0;
        if (r >= 0 && !ours)
                r = expose_check_path(snap->exposed_at, m->runtime_directory, reason, sizeof reason);
        if (r >= 0)
                r = expose_mount_options(snap->device, &fstype, &options, reason, sizeof reason);
        if (r >= 0)
                r = expose_mount(snap->device, snap->exposed_at, fstype, options, ours, reason, sizeof reason);
        if (r >= 0) {
                sets_event(m, LOG_INFO, "snapshot-exposed", set, snap, "Snapshot %s of '%s' exposed again at %s after "
                           "the restart.", snap->id, snap->volume, snap->exposed_at);
                return;
        }
        sets_event(m, LOG_WARNING, "snapshot-unexposed", set, snap, "Snapshot %s of '%s' was exposed at %s and "
                   "could not be exposed there again: %s. Expose it again with 'snapsetctl expose %s'.", snap->id,
                   snap->volume, snap->exposed_at, reason[0] ? reason : "its device is not there", snap->id);
        free(snap->exposed_at);
        snap->exposed_at = NULL;
        save(m, set);
}

void sets_restore_exposed(Manager *m) {
        for (size_t i = 0; i < sets_count(m); i++) {
                SnapshotSet *set = m->sets->sets[i];

                for (size_t k = 0; k < set->n_snapshots; k++)
                        if (set->snapshots[k]->exposed_at)
                                restore_one(m, set, set->snapshots[k]);
        }
}
