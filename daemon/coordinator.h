/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The coordinator: one snapshot set from StartSnapshotSet to the end of DoSnapshotSet, through
 * the phases of architecture §2. It knows phases, not devices: every device operation is a
 * provider method, every filesystem operation is the freeze module.
 *
 *   AddToSnapshotSet   select the provider, begin_prepare_snapshot (slow work, nothing frozen)
 *   DoSnapshotSet      end_prepare, pre_commit               nothing frozen
 *                      syncfs, open mountpoints, mlockall, hold the log
 *                      FIFREEZE ......................... the freeze window starts
 *                      hold_writes .................. the hold starts (hold timer)
 *                      commit
 *                      release_writes ............... the hold ends
 *                      FITHAW ........................... the freeze window ends
 *                      release the log, post_commit, verify
 *   any failure        release (uncommitted), thaw, abort_snapshots — in reverse, always
 *
 * Rules kept here: no partial commit (any failure undoes every provider's work); nothing is
 * logged, allocated or written to a filesystem between the first freeze and the last thaw
 * (events are queued in preallocated memory and emitted after the thaw); provider codes are
 * validated in one place (coordinator_check_code) and anything outside the provider table becomes
 * VSS_E_UNEXPECTED_PROVIDER_ERROR with an event naming the provider, the method and the original
 * code; returns of abort_snapshots are never translated and never turn success into failure. */

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "blockdev.h"
#include "providers/provider.h"
#include "snapshot-set.h"
#include "vss-error.h"

typedef enum SetPhase {
        SET_PHASE_ADDING,
        SET_PHASE_PREPARING,
        SET_PHASE_FLUSHING,
        SET_PHASE_HOLDING,
        SET_PHASE_COMMITTING,
        SET_PHASE_RELEASING,
        SET_PHASE_THAWING,
        SET_PHASE_FINISHING,
        SET_PHASE_DONE,
        SET_PHASE_ABORTED,
        _SET_PHASE_MAX,
        _SET_PHASE_INVALID = -EINVAL,
} SetPhase;

const char *set_phase_to_string(SetPhase p);

/* A structured event for the journal: fixed-size, so that it can be queued inside the window
 * without allocating. The sink (journald in the daemon, a recorder in tests) gets them after the
 * thaw, each with the time it happened. */
typedef struct SetEvent {
        int priority;                 /* LOG_ERR ... LOG_DEBUG */
        uint64_t realtime_usec;       /* when it happened */
        char message[512];
        char set_id[SNAPSET_ID_LENGTH + 1];
        char snapshot_id[SNAPSET_ID_LENGTH + 1];
        char volume[256];
        char provider[64];
        char method[40];
        VssCode code;                 /* the code concerned (the original one for a translation) */
        uint32_t hresult;             /* as the provider returned it */
        int error;                    /* errno behind it, 0 if none */
        char type[32];                /* Monitor's event type; empty: "error" or "info" by priority */
} SetEvent;

typedef void (*SetEventSink)(const SetEvent *e, void *userdata);

/* Test hooks (enabled only by the test suites; see snapsetd(8) for SNAPSETD_TEST_HOOKS): make
 * a phase fail on the nth volume of the set, or kill the daemon there. */
typedef struct CoordinatorTestHooks {
        SetPhase fail_phase;          /* _SET_PHASE_INVALID: none */
        size_t fail_index;            /* which snapshot of the set (0-based) */
        SetPhase kill_phase;          /* raise(SIGKILL) once this phase has started */
        SetPhase fail_inside_phase;   /* holding or committing: the provider itself fails on the */
        size_t fail_inside_index;     /* nth snapshot of the set, after doing the ones before it */
        bool kill_all;                /* kill=...: SIGKILL to the whole process group (the thaw
                                         guardian too), not only to the daemon */
        bool kill_after_first_freeze; /* raise(SIGKILL) once one filesystem of the set is frozen */
        bool kill_after_first_thaw;   /* ... once one is thawed again (the others still frozen) */
        bool kill_after_revert_commit; /* raise(SIGKILL) once a revert is recorded, before the
                                          provider's step that cannot be undone (sets-revert.c) */
} CoordinatorTestHooks;

typedef struct CoordinatorOptions {
        uint64_t flush_timeout_usec;  /* FIFREEZE of the whole set; 0: unbounded */
        uint64_t hold_timeout_usec;   /* first hold_writes to last release_writes */
        const ProviderSettings *settings;
        const char *mountinfo_path;   /* NULL: /proc/self/mountinfo */
        const char *inflight_directory; /* where the record for crash recovery goes; NULL: none */
        bool lock_memory;             /* mlockall() around the window */
        SetEventSink sink;
        void *sink_userdata;
        /* Called (from the thread running the set, inside the window too) each time the set
         * enters a phase: must not block, allocate or log (the daemon writes to an eventfd). */
        void (*phase_changed)(void *userdata);
        void *phase_userdata;
        CoordinatorTestHooks hooks;
} CoordinatorOptions;

/* What failed, for the reply: the code (from the error table), and what it concerns. */
typedef struct SetOutcome {
        VssCode code;
        int error;
        char message[768];
        char volume[256];
        char snapshot_id[SNAPSET_ID_LENGTH + 1];
        char provider[64];
        char method[40];
} SetOutcome;

typedef struct SetCreation SetCreation;

/* Starts a set (StartSnapshotSet). The caller holds the one creation lock while it exists. */
int set_creation_new(SetContext context, const CoordinatorOptions *options, SetCreation **ret);

/* Aborts whatever was prepared (abort_snapshots on every provider that began) and frees. Use
 * only for a set that is not done; a done set is freed with set_creation_free(). */
void set_creation_abort(SetCreation *c);
SetCreation *set_creation_free(SetCreation *c);
DEFINE_TRIVIAL_CLEANUP_FUNC(SetCreation *, set_creation_free);

/* After an abort (or a failed DoSnapshotSet): whether a provider could not undo everything, so
 * that the set's in-flight record was kept for "snapsetctl cleanup". */
bool set_creation_needs_cleanup(const SetCreation *c);

const SnapshotSet *set_creation_set(const SetCreation *c);

/* Safe to call from another thread than the one running the set (the daemon's loop while a job
 * runs it): the phase now, every phase entered so far in order (the first is "adding"), and a
 * copy of the volumes added so far, as given (NULL-terminated; NULL when out of memory). */
SetPhase set_creation_phase(const SetCreation *c);
#define SET_PHASE_LOG_SIZE 16
size_t set_creation_n_phases(const SetCreation *c);
SetPhase set_creation_phase_at(const SetCreation *c, size_t i);
char **set_creation_volumes(SetCreation *c);

/* The number of volumes added so far: from the thread running the set only. */
size_t set_creation_n_volumes(const SetCreation *c);
uint64_t set_creation_started_usec(const SetCreation *c);

/* AddToSnapshotSet: the volume (as the caller named it) and the block device it resolved to,
 * with the provider chosen for it, and the COW size asked for (0: the provider's default).
 * Calls the provider's begin_prepare_snapshot. On success returns S_OK and the new snapshot
 * through ret (owned by the set); otherwise the code, with out filled in. */
VssCode set_creation_add(SetCreation *c, const char *volume, const BlockDevice *device,
                         const Provider *provider, uint64_t cow_size, Snapshot **ret, SetOutcome *out);

/* DoSnapshotSet: every phase to the end, or the abort path. Returns S_OK with the set complete
 * (state created, freeze window and hold time measured, snapshot devices filled in), or the
 * failure's code with out filled in, after everything was undone. */
VssCode set_creation_do(SetCreation *c, SetOutcome *out);

/* Takes the finished set out of the creation (the caller keeps it). */
SnapshotSet *set_creation_take_set(SetCreation *c);

/* Validates a provider's return (architecture §1.4): valid codes pass; anything else is queued
 * as an event naming provider and method and becomes VSS_E_UNEXPECTED_PROVIDER_ERROR. Exposed
 * for the unit tests and for calls outside set creation (delete, activate). */
VssCode coordinator_check_code(const char *provider, const char *method, VssCode code,
                               const ProviderResult *res, const SnapshotSet *set,
                               SetEventSink sink, void *userdata, SetOutcome *out);

/* The preallocated event queue used while the log is held; exposed for tests. */
#define SET_EVENT_QUEUE_SIZE 128
