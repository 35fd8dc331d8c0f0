/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Snapshot providers (architecture §3). A provider turns "snapshot this volume" into storage
 * operations; the coordinator talks to every provider through ProviderOps, which follows the
 * provider interface of VSS: OnLoad, OnUnload, IsVolumeSupported, BeginPrepareSnapshot,
 * EndPrepareSnapshots, PreCommitSnapshots, CommitSnapshots, PostCommitSnapshots,
 * AbortSnapshots, DeleteSnapshots, Query.
 *
 * Today only the first steps exist: probe() (the "can it work on this machine" part of OnLoad)
 * and is_volume_supported(). The snapshot methods are declared so that the shape is visible, and
 * are NULL in every provider until they are implemented: a NULL method means "not implemented",
 * never "succeeded".
 *
 * Providers are tried in ascending order of priority: 10 before 20. The built-ins use 10, 20,
 * 30, so that external providers can later be placed before, between or after them. */

#include <stdbool.h>
#include <stddef.h>

#include <sys/types.h>

#include "blockdev.h"
#include "macro.h"
#include "vss-error.h"

/* snapset names the dm devices it creates (snapshots, COW stores) with UUIDs that start with
 * this, so that they are recognised, never snapshotted, and found again after a restart. */
#define SNAPSET_DM_UUID_PREFIX "SNAPSET-"
/* Snapshot devices are "snapset-<snapshot id>" (dm-snapshot and dm-thin). */
#define SNAPSET_DM_NAME_PREFIX "snapset-"

/* What IsVolumeSupported answers. */
typedef enum VolumeSupport {
        /* The provider can snapshot the volume. */
        VOLUME_SUPPORTED,
        /* The volume is the provider's kind of device, but it cannot snapshot this one; the reason
         * says why (an LVM-internal layer, a thin pool, a snapshot, ...). */
        VOLUME_NOT_SUPPORTED,
        /* Not the provider's kind of device at all (another provider's, or nobody's). */
        VOLUME_NOT_HANDLED,
        /* The provider could not answer (an external provider that crashed, hung or sent a
         * malformed reply); the reason says what happened, and the event was logged. Selection
         * passes over it like VOLUME_NOT_HANDLED; a caller that named the provider gets
         * VSS_E_UNEXPECTED_PROVIDER_ERROR. */
        VOLUME_PROVIDER_FAILED,
        _VOLUME_SUPPORT_MAX,
        _VOLUME_SUPPORT_INVALID = -EINVAL,
} VolumeSupport;

/* ---------------------------------------------------------------- snapshot methods
 *
 * The coordinator drives every provider through the same phases (architecture §2):
 *
 *   begin_prepare_snapshot × N, end_prepare_snapshots     nothing frozen: all slow work here
 *   pre_commit_snapshots                                  nothing frozen: a last quick check
 *   -- FIFREEZE of every filesystem of the set (the coordinator) --
 *   hold_writes            suspend the provider's origins (dm: skip-lockfs, the fs is frozen)
 *   commit_snapshots       the point in time: every origin of every provider is held
 *   release_writes         resume the origins (committed: into the snapshot tables; not
 *                          committed: discard any table loaded for the snapshot first)
 *   -- FITHAW (the coordinator) --
 *   post_commit_snapshots  writes flow again: verify, wait for udev, fill in device paths
 *   abort_snapshots        from any phase: remove everything this set created, in reverse
 *
 * hold_writes/release_writes are not VSS methods: on Windows the kernel holds the writes; here
 * each provider knows which devices to suspend. Between the first hold_writes and the last
 * release_writes a method must not allocate, log, or touch any filesystem: it reports through
 * the preallocated ProviderResult, which the coordinator logs after the thaw.
 *
 * Every method returns a VssCode. Only the codes of the architecture's provider table are
 * valid; the coordinator translates anything else into VSS_E_UNEXPECTED_PROVIDER_ERROR and
 * logs the original (never for abort_snapshots). VSS_E_PROVIDER_VETO must come with a message
 * that tells the administrator how to resolve the problem. */

typedef struct Snapshot Snapshot;
typedef struct SnapshotSet SnapshotSet;
typedef struct json_object json_object;
struct ProviderOrphan;

/* What a method reports besides its code. Preallocated by the coordinator; methods only fill
 * it, which is safe inside the window. */
typedef struct ProviderResult {
        uint32_t hresult;        /* the raw HRESULT, for codes outside the table (external providers) */
        int error;               /* the errno behind a failure, 0 if none */
        size_t failed;           /* index into ProviderSet.snapshots of the volume that failed, or SIZE_MAX */
        char message[512];       /* what went wrong and, for a veto, how to resolve it */
        /* activate_snapshot: the snapshot no longer exists (removed behind snapset's back), so
         * its record can go; not set when it is only not available yet (an origin or a pool
         * not set up at this point of the boot). */
        bool snapshot_gone;
} ProviderResult;

/* Where a revert stands (revert_start, revert_progress). */
typedef struct ProviderRevert {
        bool pending;            /* waits for the origin's next activation (it is in use) */
        bool done;               /* merged: the snapshot is gone */
        double percent;          /* merged so far; negative when unknown */
        /* Set by the caller of revert_start: writes the snapshot's record now, with its
         * provider_data as it is, as being reverted. A provider whose revert cannot be undone
         * from some step on calls it (through provider_revert_commit()) right before that step,
         * and stops if it fails: a crash past it is then finished by revert_progress after the
         * restart (or the reboot) instead of being forgotten half done. NULL: no record (tests). */
        int (*save_record)(void *userdata);
        void *save_record_userdata;
        /* Set by provider_revert_commit(): a failure from here on leaves the revert recorded, and
         * revert_progress is asked to finish it. */
        bool committed;
} ProviderRevert;

/* Settings the coordinator passes to providers (from snapsetd.conf). */
typedef struct ProviderSettings {
        const char *cow_directory;     /* where COW files are created */
        uint64_t default_cow_size;     /* bytes, when neither the call nor the config says */
        unsigned default_cow_percent;  /* if non-zero: percent of the origin's size instead */
        const char *run_directory;     /* /run/snapset: never frozen */
        uint64_t hold_timeout_usec;    /* HoldTimeoutSec=: bounds what an external provider may
                                          take for hold, commit and release */
        unsigned thin_pool_max_used_percent; /* ThinPoolMaxUsedPercent=: refuse a thin snapshot
                                                in a pool this full (0: the default) */
        bool lvm_thin_classic;         /* LvmThinSnapshots=classic: classic snapshots of LVM thin
                                          volumes in sets of several volumes, even where native
                                          ones could be taken at one instant */
} ProviderSettings;

/* One volume's snapshot in a set being created, as its provider sees it. */
typedef struct ProviderSnapshot {
        Snapshot *snapshot;            /* the model: ids, volume, device number, cow_size; the
                                          provider sets ->device and ->provider_data */
        const BlockDevice *volume;     /* the origin as found when it was added */
        void *state;                   /* the provider's, between phases; freed by abort or post-commit */
        /* Set by the provider before the window (at the latest in pre_commit_snapshots): the
         * coordinator does not FIFREEZE this volume's filesystems, because the provider's commit
         * freezes them itself (LVM's own lockfs suspend, for a thin LV alone in its set), and a
         * FIFREEZE on top would make that fail. */
        bool skip_freeze;
        /* Set by the provider before the window: the origin's inactive table is the provider's
         * own, and if the window must be undone in an emergency (window-undo.h: the daemon died
         * or overstayed), it is dropped before the origin is resumed. Otherwise the origin is
         * resumed with whatever tables it has. */
        bool undo_drop_inactive;
} ProviderSnapshot;

/* One provider's share of a set in creation. */
typedef struct ProviderSet {
        const struct Provider *provider;
        const SnapshotSet *set;
        ProviderSnapshot **snapshots;
        size_t n_snapshots;
        const ProviderSettings *settings;
        /* Device numbers of every volume in the whole set (all providers), so that a provider
         * can refuse a COW store on a filesystem of the set. */
        const dev_t *set_devices;
        size_t n_set_devices;
        /* The provider's, for the whole set: made at end_prepare_snapshots at the earliest. A
         * failed begin_prepare_snapshot is aborted alone, on a copy of this share, whose
         * abort_snapshots would free a state made during the adds under the real share. */
        void *state;
        /* Test hooks (SNAPSETD_TEST_HOOKS=fail-inside=holding:N or committing:N): the provider
         * fails "HoldWrites" or "CommitSnapshots" on its share's snapshot test_fail_index, after
         * doing its work on the ones before (provider_test_fails()), so that the undo of a
         * partial hold or commit is exercised for real. NULL: never. */
        const char *test_fail_method;
        size_t test_fail_index;
        /* Writes the set's in-flight record now, with every snapshot's provider_data as it is
         * (inflight.h); set by the coordinator. A provider that makes several things in
         * begin_prepare_snapshot puts their names in provider_data and calls it (through
         * provider_record_intent()) before it makes the first: a crash in the middle is then
         * undone by recover() like any other. NULL: no record is kept (tests). */
        int (*save_record)(void *userdata);
        void *save_record_userdata;
} ProviderSet;

struct Provider;

typedef struct ProviderOps {
        /* Whether the provider can work on this machine (the checks of OnLoad). Returns 1 if it
         * can, 0 if not and then *ret_reason (allocated) tells an administrator why and what to
         * do, negative errno if the check itself failed. Runs on every ListProviders and
         * ListVolumes, so that loading dm_mod or installing lvm2 shows without a restart: it
         * must be cheap, and must not change the system. */
        int (*probe)(char **ret_reason);

        /* IsVolumeSupported. Returns a VolumeSupport, or negative errno. *ret_reason (allocated)
         * is set exactly when VOLUME_NOT_SUPPORTED is returned. Decides from the BlockDevice
         * alone, without I/O, so it can be called for every volume of every listing. Does not
         * consider whether the provider is usable here: that is probe()'s answer. */
        int (*is_volume_supported)(const BlockDevice *d, char **ret_reason);

        /* The same two for providers with per-instance state (external providers: one set of ops
         * for every provider file), given the provider itself. Used instead of the two above when
         * set; call them through provider_probe() and provider_is_volume_supported(). */
        int (*probe_instance)(const struct Provider *p, char **ret_reason);
        int (*is_volume_supported_instance)(const struct Provider *p, const BlockDevice *d, char **ret_reason);

        /* Optional: what an administrator should know about how the provider works on this
         * machine (for ListProviders), as a NULL-terminated array of sentences. May take a
         * moment the first time (lvm probes the kernel once per boot). */
        int (*notes)(char ***ret_notes);

        /* The snapshot methods, in the order the coordinator calls them (see above). A provider
         * that cannot take snapshots leaves them NULL, and is never selected for a set. */
        VssCode (*begin_prepare_snapshot)(ProviderSet *ps, ProviderSnapshot *snap, ProviderResult *res);
        VssCode (*end_prepare_snapshots)(ProviderSet *ps, ProviderResult *res);
        VssCode (*pre_commit_snapshots)(ProviderSet *ps, ProviderResult *res);
        VssCode (*hold_writes)(ProviderSet *ps, ProviderResult *res);
        VssCode (*commit_snapshots)(ProviderSet *ps, ProviderResult *res);
        VssCode (*release_writes)(ProviderSet *ps, bool committed, ProviderResult *res);
        VssCode (*post_commit_snapshots)(ProviderSet *ps, ProviderResult *res);
        VssCode (*abort_snapshots)(ProviderSet *ps, ProviderResult *res);

        /* Outside set creation. delete_snapshot removes one finished snapshot (its devices and
         * storage) using its provider_data. activate_snapshot brings a persistent snapshot back
         * after a reboot (idempotent: nothing to do if it is active). recover undoes whatever an
         * interrupted set creation left, from the provider_data recorded in /run/snapset before
         * the window (idempotent: anything already gone is fine); it runs before the coordinator
         * thaws the set's filesystems, which may still be frozen, so any suspend it does must
         * skip lockfs. query refreshes the snapshot's status (COW usage, invalid). */
        VssCode (*delete_snapshot)(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res);
        /* Optional: the n snapshots of this provider that are about to be deleted one by one
         * (a whole set), together, so that the provider can remove them in one go (lvm: one
         * lvremove per volume group, not one per snapshot). Its result is advisory: each
         * snapshot is then deleted with delete_snapshot, which finds it gone, or fails with
         * the precise reason. */
        void (*prepare_delete)(Snapshot *const *snaps, size_t n, const ProviderSettings *settings);
        VssCode (*activate_snapshot)(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res);
        /* Set when activate_snapshot must run before anything writes to the snapshot's origin
         * (snapshots that copy the origin's old data on write: dm-snapshot). snapsetd
         * --activate (snapset-activate.service) then runs it before the local filesystems are
         * mounted, when it must write nowhere but /run and /dev. */
        bool activate_before_mounts;
        VssCode (*recover)(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res);
        /* Optional second step of recovery, once every filesystem of the interrupted set is
         * thawed again: what cannot be done while they may be frozen (lvm commands, which
         * suspend with lockfs and may write to /etc/lvm). */
        VssCode (*recover_after_thaw)(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res);
        VssCode (*query)(Snapshot *snap, ProviderResult *res);
        /* Optional: RevertToSnapshot. revert_start begins merging snap into its origin (whose
         * filesystems the caller has unmounted, if it could) and returns at once with where it
         * stands; revert_progress is then asked every few seconds until it says done, after
         * which the snapshot no longer exists. Both are called with the origin possibly still
         * open: a provider that cannot merge then either defers (pending) or refuses. */
        VssCode (*revert_start)(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                ProviderResult *res);
        VssCode (*revert_progress)(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                   ProviderResult *res);
        /* Optional: BreakSnapshotSet. Makes snap an ordinary volume that no longer carries any
         * mark of snapset's (an LVM LV renamed and untagged), and returns its device path in
         * *ret_device (owned by the caller). The registry forgets the snapshot afterwards. */
        VssCode (*break_snapshot)(Snapshot *snap, const ProviderSettings *settings, char **ret_device,
                                  ProviderResult *res);
        /* Optional: query for n snapshots of this provider at once (an external provider's
         * QuerySnapshots: one round trip for a listing). *ret_unsupported: this provider cannot,
         * ask with query instead. */
        VssCode (*query_snapshots)(Snapshot *const *snaps, size_t n, bool *ret_unsupported, ProviderResult *res);

        /* Optional, at start: snapshots this provider made that no record names (the state
         * directory was lost, or the daemon died between the window and writing the record),
         * found by the provider's own marks (LVM tags). known lists every snapshot the records
         * name. Each orphan is described for the registry, which adopts it (persistent) or
         * deletes it (backup: its client is gone). */
        int (*find_orphans)(Snapshot *const *known, size_t n_known, struct ProviderOrphan **ret, size_t *ret_n);
} ProviderOps;

typedef struct ProviderOrphan {
        char set_id[37], snapshot_id[37];
        /* Delete it rather than adopt it: made for a backup-context set (whose client is gone),
         * or never finished (the COW LV of a classic snapshot that was never combined). */
        bool discard;
        char *volume;                  /* the origin, as a path */
        uint64_t created_usec;         /* 0 if unknown */
        json_object *provider_data;    /* owned: the record the provider would have written */
} ProviderOrphan;

void provider_orphans_free(ProviderOrphan *o, size_t n);


typedef struct Provider {
        const char *name;       /* "lvm", "dm-thin", "dm-snapshot" */
        const char *kind;       /* "builtin" or "external" */
        int priority;           /* ascending: lower is tried first */
        const ProviderOps *ops;
} Provider;

extern const Provider provider_lvm;
extern const Provider provider_dm_thin;
extern const Provider provider_dm_snapshot;

/* The built-in providers, in priority order. */
const Provider *const *provider_builtins(size_t *ret_n);
/* The provider called name (built-in or registered), or NULL. */
const Provider *provider_by_name(const char *name);
/* Adds a provider that provider_by_name() finds (-EEXIST if the name is taken). */
int provider_register(const Provider *p);
void provider_unregister(const Provider *p);

/* ---------------------------------------------------------------- probing and selection */

/* A provider and the answer of its probe. */
typedef struct ProviderStatus {
        const Provider *provider;
        bool usable;
        char *reason;           /* why it is not usable; NULL when usable */
} ProviderStatus;

/* The probe and IsVolumeSupported of one provider, whichever form its ops have. A provider
 * without a probe is usable; one without is_volume_supported handles nothing. */
int provider_probe(const Provider *p, char **ret_reason);
int provider_is_volume_supported(const Provider *p, const BlockDevice *d, char **ret_reason);

/* Probes every provider, built-in and registered, in priority order (built-ins first among
 * equals). A probe that fails (negative errno) makes its provider unusable with the error as
 * reason, rather than failing the whole list. */
int provider_probe_all(ProviderStatus **ret_status, size_t *ret_n);
/* Accepts NULL; returns NULL. */
ProviderStatus *provider_status_free(ProviderStatus *status, size_t n);

/* Chooses the provider for volume d from status (in priority order): the first one that is
 * usable and supports d. Returns 1 and *ret_provider if there is one; otherwise 0 and
 * *ret_reason (allocated), the most useful explanation, in this order: a provider would take
 * the volume but cannot work here (and its probe's reason); the first provider that knows the
 * kind of device but cannot snapshot this one; or, when no provider recognises it, what to do
 * (e.g. "not a device-mapper device: ..."). Negative errno on failure. A pure function of its
 * arguments, so that selection can be tested with any combination of usable providers. */
int provider_select(const ProviderStatus *status, size_t n, const BlockDevice *d,
                    const Provider **ret_provider, char **ret_reason);

/* Helpers shared by the built-in providers. */
bool provider_device_is_snapset_own(const BlockDevice *d);
/* Where snap is in its share (ps->snapshots), or SIZE_MAX. */
size_t provider_snapshot_index(const ProviderSet *ps, const ProviderSnapshot *snap);
/* Makes j (owned) the snapshot's provider_data, dropping what was there. */
void provider_data_replace(Snapshot *model, json_object *j);
/* Makes j (owned) the snapshot's provider_data and has the in-flight record written
 * (ProviderSet.save_record), before the provider makes what j names. */
int provider_record_intent(ProviderSet *ps, Snapshot *model, json_object *j);
/* Makes j (owned) the snapshot's provider_data and has the snapshot recorded as being reverted
 * (ProviderRevert.save_record), before the first step of a revert that cannot be undone. On
 * failure the provider_data is what it was, and the revert must not go on. */
int provider_revert_commit(ProviderRevert *rv, Snapshot *model, json_object *j);
/* After provider_revert_commit(), a revert that the provider put back entirely after all: j
 * (owned) is the provider_data again, and the revert is no longer recorded (by the caller). */
void provider_revert_uncommit(ProviderRevert *rv, Snapshot *model, json_object *j);
/* The revert is finished: the origin holds the snapshot's data, the snapshot is gone. S_OK. */
VssCode provider_revert_done(ProviderRevert *rv);
/* Sets *ret_reason to the formatted reason and returns VOLUME_NOT_SUPPORTED, or -ENOMEM. */
int provider_not_supported(char **ret_reason, const char *format, ...) _printf_(2, 3);
