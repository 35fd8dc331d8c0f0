/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Reverts (RevertToSnapshot): the checks before a merge, the origin's filesystems unmounted when
 * asked to, the merge started through the provider, and its progress watched from the loop's
 * timer until the provider says it is done; then the snapshot, merged into its origin, is
 * forgotten. State that must survive a restart (snap->revert) is in the set's record; the merge
 * itself is the provider's (LVM keeps it in its own metadata). */

#include <libmount.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <syslog.h>

#include "log.h"
#include "providers/provider.h"
#include "sets-expose.h"
#include "sets-revert.h"
#include "store.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct libmnt_table *, mnt_unref_table);

/* How often a merge is asked where it stands. */
#define REVERT_POLL_USEC (2 * USEC_PER_SEC)

static Snapshot *reverting_of_volume(const Manager *m, dev_t volume) {
        for (size_t i = 0; i < sets_count(m); i++)
                for (size_t k = 0; k < m->sets->sets[i]->n_snapshots; k++) {
                        Snapshot *s = m->sets->sets[i]->snapshots[k];
                        if (s->revert && s->volume_device == volume)
                                return s;
                }
        return NULL;
}

/* Unmounts every filesystem of the origin (innermost first), none lazily: a busy one stops it,
 * naming who uses it. */
static VssCode dismount(const Snapshot *snap, SetOutcome *out) {
        _cleanup_(mnt_unref_tablep) struct libmnt_table *tb = mnt_new_table();
        struct libmnt_iter *it = mnt_new_iter(MNT_ITER_BACKWARD);
        struct libmnt_fs *fs;
        VssCode code = S_OK;

        if (!tb || !it || mnt_table_parse_mtab(tb, NULL) < 0) {
                mnt_free_iter(it);
                return sets_outcome(out, E_OUTOFMEMORY, ENOMEM, snap, "Cannot read the mount table");
        }
        while (code == S_OK && mnt_table_next_fs(tb, it, &fs) == 0) {
                const char *target = mnt_fs_get_target(fs);

                if (mnt_fs_get_devno(fs) != snap->volume_device || !target)
                        continue;
                if (umount2(target, 0) < 0)
                        code = sets_outcome(out, errno == EBUSY ? VSS_E_VOLUME_IN_USE : VSS_E_UNEXPECTED, errno, snap,
                                    "Cannot unmount %s from %s to revert it: %m%s", snap->volume, target,
                                    errno == EBUSY ? " (fuser -vm shows who uses it; stop them and retry)" : "");
                else
                        log_info("Unmounted %s from %s to revert it to snapshot %s.", snap->volume, target, snap->id);
        }
        mnt_free_iter(it);
        return code;
}

static void record(Manager *m, SnapshotSet *set, Snapshot *snap, const ProviderRevert *st) {
        int r;

        free(snap->revert);
        snap->revert = strdup(st->pending ? "pending" : "merging");
        snap->merge_percent = st->percent;
        r = store_save_set(m->state_directory, set);
        if (r < 0)
                log_warning_errno(r, "Failed to update the record of set %s: %m", set->id);
}

static void forget_revert(Manager *m, SnapshotSet *set, Snapshot *snap) {
        int r;

        free(snap->revert);
        snap->revert = NULL;
        snap->merge_percent = -1;
        r = store_save_set(m->state_directory, set);
        if (r < 0)
                log_warning_errno(r, "Failed to update the record of set %s: %m", set->id);
}

static bool revert_failed(const Snapshot *snap) {
        return streq_ptr(snap->revert, "failed");
}

/* The provider says the revert cannot go on (VSS_E_BAD_STATE from revert_progress): it stops
 * being asked, and the snapshot may be deleted, which is the way out. */
static void fail(Manager *m, SnapshotSet *set, Snapshot *snap, const char *why) {
        char *state = strdup("failed");
        int r;

        if (!state)
                return;
        free(snap->revert);
        snap->revert = state;
        r = store_save_set(m->state_directory, set);
        if (r < 0)
                log_warning_errno(r, "Failed to update the record of set %s: %m", set->id);
        sets_event(m, LOG_ERR, "snapshot-revert-failed", set, snap, "Reverting '%s' to snapshot %s cannot go on: %s. "
                   "snapsetd no longer tries; check the volume, and delete the snapshot (snapsetctl delete %s) "
                   "when it is no longer needed.", snap->volume, snap->id, why, snap->id);
}

static void finish(Manager *m, SnapshotSet *set, Snapshot *snap) {
        sets_event(m, LOG_NOTICE, "snapshot-reverted", set, snap, "Snapshot %s was merged into '%s': the volume "
                   "holds its data again, and the snapshot is gone.", snap->id, snap->volume);
        sets_forget_snapshot(m, set, snap);
}

typedef struct RevertCommit {
        Manager *m;
        SnapshotSet *set;
        Snapshot *snap;
} RevertCommit;

/* ProviderRevert.save_record: the revert is recorded before the provider's first step that
 * cannot be undone, so that the poll finishes it after a restart. */
static int revert_commit(void *userdata) {
        RevertCommit *c = userdata;
        char *state = strdup("merging");
        int r;

        if (!state)
                return -ENOMEM;
        free(c->snap->revert);
        c->snap->revert = state;
        c->snap->merge_percent = -1;
        r = store_save_set(c->m->state_directory, c->set);
        if (r >= 0 && sets_test_hooks(c->m)->kill_after_revert_commit)
                (void) raise(SIGKILL);
        if (r < 0) {
                free(c->snap->revert);
                c->snap->revert = NULL;
                log_warning_errno(r, "Failed to record the revert of '%s' in set %s: %m", c->snap->volume, c->set->id);
        }
        return r;
}

VssCode sets_revert(Manager *m, SnapshotSet *set, Snapshot *snap, bool force_dismount, const char **ret_state,
                    SetOutcome *out) {
        const Provider *p = provider_by_name(snap->provider);
        ProviderResult res = { .failed = SIZE_MAX };
        RevertCommit commit = { m, set, snap };
        ProviderRevert st = { .percent = -1, .save_record = revert_commit, .save_record_userdata = &commit };
        Snapshot *other;
        VssCode code;

        *out = (SetOutcome) {};
        if (snap->revert)
                return sets_outcome(out, VSS_E_REVERT_IN_PROGRESS, 0, snap, revert_failed(snap) ?
                            "Reverting '%s' to snapshot %s failed before; delete the snapshot" :
                            "Snapshot %2$s is being merged into '%1$s' already; 'snapsetctl show %2$s' follows it",
                            snap->volume, snap->id);
        other = reverting_of_volume(m, snap->volume_device);
        if (other)
                return sets_outcome(out, VSS_E_REVERT_IN_PROGRESS, 0, snap, revert_failed(other) ?
                            "Reverting '%s' to snapshot %s failed; delete that snapshot first" :
                            "'%s' is being reverted to snapshot %s; wait until it is done", snap->volume, other->id);
        if (snap->invalid)
                return sets_outcome(out, VSS_E_BAD_STATE, 0, snap, "Snapshot %s is invalid (its copy-on-write store "
                            "overflowed): reverting to it would destroy '%s'", snap->id, snap->volume);
        if (!p || !p->ops->revert_start || !p->ops->revert_progress)
                return sets_outcome(out, VSS_E_NOT_SUPPORTED, 0, snap, "Provider '%s' cannot revert a volume to a snapshot "
                            "(it does not implement RevertSnapshot)", snap->provider);
        /* The snapshot's own mount goes first: it is about to disappear. */
        code = sets_unexpose(m, set, snap, /* lazy= */ false, out);
        if (code != S_OK)
                return code;
        if (force_dismount) {
                code = dismount(snap, out);
                if (code != S_OK)
                        return code;
        }

        code = p->ops->revert_start(snap, &m->sets->settings, &st, &res);
        if (code != S_OK) {
                code = sets_provider_failure(m, snap, "RevertSnapshot", code, &res, out);
                if (st.committed) {
                        /* Past the point of no return: recorded as merging, and the poll finishes it. */
                        sets_revert_schedule(m, now_monotonic_usec());
                        snprintf(out->message + strlen(out->message), sizeof out->message - strlen(out->message),
                                 "; the revert is recorded, and snapsetd tries to finish it every few seconds "
                                 "('snapsetctl show %s' follows it)", snap->id);
                } else if (snap->revert)
                        /* Recorded, then put back by the provider (provider_revert_uncommit()). */
                        forget_revert(m, set, snap);
                return code;
        }
        if (st.done) {
                *ret_state = "done";
                finish(m, set, snap);
                return S_OK;
        }
        record(m, set, snap, &st);
        *ret_state = snap->revert;
        sets_event(m, LOG_NOTICE, "snapshot-revert-started", set, snap, st.pending ?
                   "Reverting '%s' to snapshot %s is pending: '%s' is in use, and the merge starts at its next "
                   "activation (unmount it and deactivate and activate it, or reboot; or revert with "
                   "forceDismount)." : "Reverting '%s' to snapshot %s: merging into '%s'.",
                   snap->volume, snap->id, snap->volume);
        return S_OK;
}

/* One reverting snapshot: progress, done, or a failure (logged; asked again next time). */
static bool poll_one(Manager *m, SnapshotSet *set, Snapshot *snap) {
        const Provider *p = provider_by_name(snap->provider);
        ProviderResult res = { .failed = SIZE_MAX };
        ProviderRevert st = { .percent = -1 };
        bool was_pending = streq_ptr(snap->revert, "pending");
        unsigned suppressed;
        char text[64];
        VssCode code;

        if (!p || !p->ops->revert_progress)
                return false;
        code = p->ops->revert_progress(snap, &m->sets->settings, &st, &res);
        if (code == VSS_E_BAD_STATE) {
                fail(m, set, snap, res.message[0] ? res.message : vss_code_message(code));
                return false;
        }
        if (code != S_OK) {
                SetOutcome out;

                (void) sets_provider_failure(m, snap, "RevertProgress", code, &res, &out);
                /* Asked again at the next poll, which may well succeed: one line per interval. */
                if (ratelimit_below(&m->sets->revert_warnings, &suppressed))
                        log_warning("Cannot tell how the revert of '%s' to snapshot %s goes: %s%s", snap->volume,
                                    snap->id, out.message, suppressed > 0 ? " (similar messages were suppressed)" : "");
                return false;
        }
        if (st.done) {
                finish(m, set, snap);
                return true;
        }
        if (was_pending != st.pending || (int) st.percent != (int) snap->merge_percent) {
                if (was_pending && !st.pending)
                        sets_event(m, LOG_NOTICE, "snapshot-revert-started", set, snap, "Reverting '%s' to snapshot "
                                   "%s: the merge has started.", snap->volume, snap->id);
                snprintf(text, sizeof text, "%s %.0f%%", st.pending ? "pending" : "merging", st.percent < 0 ? 0 : st.percent);
                /* Progress goes to Monitor, not to the journal: one line per percent would drown it. */
                manager_post_event(m, "snapshot-revert-progress", set->id, snap->id, snap->volume, text);
                record(m, set, snap, &st);
        }
        return false;
}

void sets_revert_poll(Manager *m, uint64_t now) {
        SetRegistry *r = m->sets;

        if (!r || r->revert_next_usec == 0 || r->revert_next_usec > now)
                return;
        /* Never while a set is being made: lvs would take VG locks the window needs, and the
         * record's write could meet a frozen /var. Next time. */
        if (manager_job_busy(m)) {
                r->revert_next_usec = now + REVERT_POLL_USEC;
                return;
        }
        r->revert_next_usec = 0;
        for (size_t i = 0; i < sets_count(m); i++) {
                SnapshotSet *set = r->sets[i];

                for (size_t k = 0; k < set->n_snapshots; k++) {
                        if (!set->snapshots[k]->revert || revert_failed(set->snapshots[k]))
                                continue;
                        /* Done: the set may be gone with it; the others are asked next time. */
                        if (poll_one(m, set, set->snapshots[k])) {
                                sets_revert_schedule(m, now);
                                return;
                        }
                }
        }
        sets_revert_schedule(m, now);
}

void sets_revert_schedule(Manager *m, uint64_t now) {
        SetRegistry *r = m->sets;

        r->revert_next_usec = 0;
        for (size_t i = 0; i < sets_count(m); i++)
                for (size_t k = 0; k < r->sets[i]->n_snapshots; k++)
                        if (r->sets[i]->snapshots[k]->revert && !revert_failed(r->sets[i]->snapshots[k]))
                                r->revert_next_usec = now + REVERT_POLL_USEC;
}

uint64_t sets_revert_deadline(const Manager *m) {
        return m->sets && m->sets->revert_next_usec ? m->sets->revert_next_usec : UINT64_MAX;
}
