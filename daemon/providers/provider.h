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

#include "blockdev.h"
#include "macro.h"

/* snapset names the dm devices it creates (snapshots, COW stores) with UUIDs that start with
 * this, so that they are recognised, never snapshotted, and found again after a restart. */
#define SNAPSET_DM_UUID_PREFIX "SNAPSET-"

/* What IsVolumeSupported answers. */
typedef enum VolumeSupport {
        /* The provider can snapshot the volume. */
        VOLUME_SUPPORTED,
        /* The volume is the provider's kind of device, but it cannot snapshot this one; the reason
         * says why (an LVM-internal layer, a thin pool, a snapshot, ...). */
        VOLUME_NOT_SUPPORTED,
        /* Not the provider's kind of device at all (another provider's, or nobody's). */
        VOLUME_NOT_HANDLED,
        _VOLUME_SUPPORT_MAX,
        _VOLUME_SUPPORT_INVALID = -EINVAL,
} VolumeSupport;

/* Defined with the snapshot work: one volume's snapshot within a set in creation, the provider's
 * share of a set, and a query. Opaque here on purpose. */
typedef struct ProviderSnapshot ProviderSnapshot;
typedef struct ProviderSnapshotSet ProviderSnapshotSet;
typedef struct ProviderQuery ProviderQuery;

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

        /* The rest of the VSS provider interface, for the snapshot work; NULL until then. Their
         * signatures are a sketch that the snapshot work settles. Each returns 0 or a negative
         * errno, which the coordinator maps to a code of the provider table (architecture §1). */
        int (*on_unload)(void);
        int (*begin_prepare_snapshot)(ProviderSnapshotSet *set, ProviderSnapshot *snapshot);
        int (*end_prepare_snapshots)(ProviderSnapshotSet *set);
        int (*pre_commit_snapshots)(ProviderSnapshotSet *set);
        int (*commit_snapshots)(ProviderSnapshotSet *set);
        int (*post_commit_snapshots)(ProviderSnapshotSet *set);
        int (*abort_snapshots)(ProviderSnapshotSet *set);
        int (*delete_snapshots)(ProviderSnapshot *snapshot);
        int (*query)(ProviderQuery *query);
} ProviderOps;

typedef struct Provider {
        const char *name;       /* "lvm", "dm-thin", "dm-snapshot" */
        const char *kind;       /* "builtin"; "external" comes with external providers */
        int priority;           /* ascending: lower is tried first */
        const ProviderOps *ops;
} Provider;

extern const Provider provider_lvm;
extern const Provider provider_dm_thin;
extern const Provider provider_dm_snapshot;

/* The built-in providers, in priority order. */
const Provider *const *provider_builtins(size_t *ret_n);

/* ---------------------------------------------------------------- probing and selection */

/* A provider and the answer of its probe. */
typedef struct ProviderStatus {
        const Provider *provider;
        bool usable;
        char *reason;           /* why it is not usable; NULL when usable */
} ProviderStatus;

/* Probes every built-in provider, in priority order. A probe that fails (negative errno) makes
 * its provider unusable with the error as reason, rather than failing the whole list. */
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
/* Sets *ret_reason to the formatted reason and returns VOLUME_NOT_SUPPORTED, or -ENOMEM. */
int provider_not_supported(char **ret_reason, const char *format, ...) _printf_(2, 3);
