/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Application hooks: the Linux counterpart of VSS writers, as qemu-ga's fsfreeze-hook.d. Every
 * executable of the hook directory (hooks.d, in name order, unless GlobalHooks=no), then the
 * definition's own Hook= paths, is called as "HOOK PHASE" with the set in its environment:
 *
 *   prepare   after the set's volumes are prepared, just before the freeze: quiesce
 *   thaw      after the thaw, whatever happened (also after a failed freeze or a veto)
 *   abort     after thaw, when the set failed
 *
 * thaw and abort run the hooks in reverse order. No hook ever runs while a filesystem of the set
 * is frozen: the prepare hooks have all ended (or were killed at their timeout, with their
 * process group) before the first freeze, and thaw starts after the last thaw.
 *
 * Under systemd each hook runs as a transient service of its own (systemd-run --wait --pipe,
 * RuntimeMaxSec= its timeout), outside snapsetd's sandbox: a hook may need the network, another
 * user (runuser -u postgres) or capabilities snapsetd does not have. Elsewhere (tests, a daemon
 * started by hand) it is a child of snapsetd.
 *
 * Environment: SNAPSET_HOOK_PHASE, SNAPSET_DEFINITION, SNAPSET_SET_ID, SNAPSET_COUNT,
 * SNAPSET_VOLUMES and SNAPSET_MOUNTS (space-separated), per volume N from 1 SNAPSET_VOLUME_N,
 * SNAPSET_DEVICE_N (the origin's block device) and SNAPSET_MOUNT_N (its first mountpoint, or
 * empty); in thaw and abort SNAPSET_RESULT (created or failed) and, on failure, SNAPSET_ERROR
 * (the VSS name). PATH is /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>

#include "schedule/definition.h"
#include "snapshot-set.h"

typedef enum HookPhase {
        HOOK_PHASE_PREPARE,
        HOOK_PHASE_THAW,
        HOOK_PHASE_ABORT,
        _HOOK_PHASE_MAX,
} HookPhase;

const char *hook_phase_to_string(HookPhase p);

typedef struct HookRun {
        char *path;
        HookPhase phase;
        uint64_t started_usec, finished_usec;   /* realtime */
        int exit_status;         /* 0-255, 128+signal, -1: did not run */
        bool timed_out;
        /* Its unit could not be confirmed gone after it was killed: something of it may still
         * run, so no filesystem may be frozen after this prepare hook (the set is vetoed). */
        bool still_running;
        char *error;             /* why it could not be started, or NULL */
        char *output;            /* stdout and stderr, as captured (at most HOOK_OUTPUT_MAX) */
} HookRun;

#define HOOK_OUTPUT_MAX 8192

static inline bool hook_run_succeeded(const HookRun *r) {
        return r->exit_status == 0 && !r->timed_out && !r->error;
}

/* The hooks a set of definition d runs, in prepare order: hook_directory's executables (when
 * d->global_hooks) then d->hooks. NULL-terminated, possibly empty. */
int hooks_list(const SetDefinition *d, const char *hook_directory, char ***ret);

typedef struct HookContext {
        const SetDefinition *definition;
        const SnapshotSet *set;  /* its snapshots give the volumes and devices */
        const char *result;      /* thaw and abort: "created" or "failed" */
        const char *error;       /* abort: the VSS name */
} HookContext;

/* Runs every hook of hooks for the phase, one after another, each with the definition's timeout,
 * appending a HookRun each to *runs (growing *n). Returns 0, or -ENOMEM; a hook that fails is
 * a run that failed, not an error. */
int hooks_run(char *const *hooks, HookPhase phase, const HookContext *ctx, HookRun **runs, size_t *n);

void hook_runs_free(HookRun *runs, size_t n);

/* The API's []HookRun for the set's record. */
int hook_runs_to_json(const HookRun *runs, size_t n, json_object **ret);
