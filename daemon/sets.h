/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's snapshot sets: the finished ones (persistent and backup context), kept in memory
 * and in the state directory, and the one set in creation with its owner. This is where the VSS
 * rules about ownership live: one creation at a time (the lock), a set in creation is aborted
 * when its connection goes or it idles past SetIdleTimeoutSec, and a backup-context set is
 * deleted when the connection that created it closes. */

#include <stdbool.h>
#include <stdint.h>

#include "coordinator.h"
#include "manager.h"
#include "ratelimit.h"

/* A merge whose provider cannot tell how it goes is asked again at every poll (2 s): warned of at
 * most once in this long. */
#define REVERT_WARNING_INTERVAL_USEC (5 * 60 * USEC_PER_SEC)

typedef struct SetRegistry {
        SnapshotSet **sets;           /* finished sets, oldest first */
        uint64_t *owners;             /* parallel: the connection of a backup set, 0 for persistent */
        size_t n_sets;

        SetCreation *creation;        /* the set in creation, or NULL: the one lock */
        uint64_t creation_owner;      /* its connection */
        uint64_t creation_activity;   /* CLOCK_MONOTONIC of its last call, for SetIdleTimeoutSec */
        size_t phases_announced;      /* of its phase log, sent to Monitor clients */

        ProviderSettings settings;    /* from the configuration */
        char *inflight_directory;
        CoordinatorTestHooks hooks;   /* SNAPSETD_TEST_HOOKS, for the test suites only */
        uint64_t revert_next_usec;    /* CLOCK_MONOTONIC of the next look at the merges, 0: none */
        RateLimit revert_warnings;    /* a provider that cannot tell how a merge goes, every poll */
} SetRegistry;

/* An event outside the window: to the journal (structured fields) and every Monitor client,
 * with its own type ("snapshot-deleted"). Queued while a job holds the events. */
void sets_event(Manager *m, int priority, const char *type, const SnapshotSet *set, const Snapshot *snap,
                const char *format, ...) _printf_(6, 7);

/* At start, before anything else is done: undoes what an interrupted run left (in-flight
 * records), loads the state directory, deletes backup-context sets left by a previous run (their
 * connections are gone), and re-activates persistent snapshots (after a reboot). Logs what it
 * does. Returns negative errno only if the daemon cannot work at all. */
int sets_startup(Manager *m);
/* snapsetd --activate: re-arms, before the local filesystems are mounted, the persistent
 * snapshots that must be active before anything writes to their origins; writes nothing but
 * /run. Returns 0, or negative errno (reported). */
int sets_activate_early(Manager *m);

/* Records of sets that were interrupted or not fully undone ([{setId, message}]), for GetStatus:
 * they need an administrator's attention. */
int sets_attention_json(const Manager *m, json_object **ret);
/* Cleanup: tries again to undo every such record (inflight_recover()); *ret_undone counts those
 * now gone, *ret_remaining lists the rest. */
int sets_cleanup(Manager *m, unsigned *ret_undone, json_object **ret_remaining);

/* The very first step at start, before the state directory is touched and before anything is
 * logged: the undo lists of interrupted windows (inflight_rescue()), then one line about it. */
void sets_rescue(const Manager *m);
void sets_free(Manager *m);

/* The configuration changed (SIGHUP): providers get the new storage settings. */
int sets_apply_config(Manager *m);

void sets_connection_closed(Manager *m, uint64_t connection_id);
/* True if the connection owns the set in creation or a backup set (it must not idle out). */
bool sets_connection_owns(const Manager *m, uint64_t connection_id);
/* When the set in creation idles out (CLOCK_MONOTONIC), or UINT64_MAX. */
uint64_t sets_idle_deadline(const Manager *m);
void sets_check_idle(Manager *m, uint64_t now);

/* Ends the creation lock: announces the set's last phases and hands the set in creation over
 * (the caller frees it). */
SetCreation *sets_take_creation(Manager *m);

/* Sends Monitor clients the phases the set in creation entered since the last call. */
void sets_announce_phases(Manager *m);

/* Counts, for GetStatus. */
size_t sets_count(const Manager *m);
size_t sets_count_snapshots(const Manager *m);
/* The set in creation as the API's SetInProgress object, or NULL (JSON null) when there is none. */
int sets_in_progress_json(const Manager *m, json_object **ret);

/* Finding things. */
SnapshotSet *sets_find_set(const Manager *m, const char *set_id, size_t *ret_index);
Snapshot *sets_find_snapshot(const Manager *m, const char *snapshot_id, SnapshotSet **ret_set);
/* Snapshots of the volume with this device number, across all finished sets. */
size_t sets_count_snapshots_of(const Manager *m, dev_t device);

/* Takes a finished set into the registry and the state directory (backup sets are recorded too,
 * so that a daemon restart can clean them up). On failure to record it, the set's snapshots are
 * deleted again and the error returned: a snapshot nobody knows about must not exist. */
int sets_add(Manager *m, SnapshotSet *set, uint64_t owner);

/* Deletes one snapshot of a finished set through its provider; the set goes when its last
 * snapshot does. Fills out on failure. */
VssCode sets_delete_snapshot(Manager *m, SnapshotSet *set, Snapshot *snap, SetOutcome *out);

/* Before deleting a whole set one snapshot after another: lets each built-in provider remove its
 * snapshots of the set at once (prepare_delete). The deletions that follow still decide. */
void sets_prepare_delete(Manager *m, const SnapshotSet *set);

/* Fills out with code, the error and a message about snap (its volume, id and provider; snap may
 * be NULL), for an operation on a finished snapshot; returns code. */
VssCode sets_outcome(SetOutcome *out, VssCode code, int error, const Snapshot *snap, const char *format, ...)
        _printf_(5, 6);

/* Takes snap out of its set and the set's record, and the set with it when it was the last; for
 * a snapshot whose devices are gone already (deleted, or merged into its origin). */
void sets_forget_snapshot(Manager *m, SnapshotSet *set, Snapshot *snap);
/* The outcome of a provider's failed revert or break of snap (method: "RevertSnapshot", ...):
 * an external provider's code checked against the provider table, with its event. */
VssCode sets_provider_failure(Manager *m, const Snapshot *snap, const char *method, VssCode code,
                              const ProviderResult *res, SetOutcome *out);

/* Coordinator options for a new set in creation, from the configuration. */
void sets_coordinator_options(const Manager *m, CoordinatorOptions *ret);
/* SNAPSETD_TEST_HOOKS as they are now (the file is read again). */
const CoordinatorTestHooks *sets_test_hooks(const Manager *m);
