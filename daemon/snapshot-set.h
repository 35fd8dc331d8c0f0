/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The data model of snapshot sets: what a set and its snapshots are, and their JSON form, which is
 * both the API's SnapshotSet/Snapshot types and the record kept in the state directory (the
 * record adds each snapshot's provider-private data, which the API never shows). */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "macro.h"

/* A UUID in its 36-character text form. */
#define SNAPSET_ID_LENGTH 36
typedef char SnapsetId[SNAPSET_ID_LENGTH + 1];

typedef enum SetContext {
        SET_CONTEXT_BACKUP,      /* deleted when the creating connection closes */
        SET_CONTEXT_PERSISTENT,  /* kept until deleted, across restarts and reboots */
        _SET_CONTEXT_MAX,
        _SET_CONTEXT_INVALID = -EINVAL,
} SetContext;

typedef enum SetState {
        SET_STATE_PREPARING,     /* between StartSnapshotSet and the end of DoSnapshotSet */
        SET_STATE_CREATED,
        SET_STATE_ABORTED,
        SET_STATE_DELETING,
        _SET_STATE_MAX,
        _SET_STATE_INVALID = -EINVAL,
} SetState;

const char *set_context_to_string(SetContext c);
SetContext set_context_from_string(const char *s);
const char *set_state_to_string(SetState s);
SetState set_state_from_string(const char *s);

typedef struct Snapshot {
        SnapsetId id;
        SnapsetId set_id;
        char *volume;            /* as the caller named it */
        char *volume_path;       /* the block device it resolved to */
        dev_t volume_device;
        char *provider;
        char *device;            /* the snapshot's block device, once created */
        char *exposed_at;
        uint64_t created_usec;
        uint64_t cow_size;       /* 0: not applicable */
        bool invalid;            /* the copy-on-write store overflowed */
        /* What the provider made, for the API: "classic" (copy-on-write store) or "thin" (in a
         * thin pool); NULL when the provider does not say (external providers). */
        char *kind;
        char *pool;              /* the thin pool a thin snapshot lives in ("VG/POOL" for LVM) */
        /* Usage from the provider's last query, percent; negative when unknown. */
        double cow_used_percent;
        double pool_data_used_percent, pool_metadata_used_percent;
        char *note;              /* what the user should know about how it was made, or NULL */
        /* RevertToSnapshot: NULL, or "merging" (the merge into the origin runs; the snapshot goes
         * when it is done) or "pending" (it starts at the origin's next activation). */
        char *revert;
        double merge_percent;    /* of a merge, how much is merged; negative when unknown */
        json_object *provider_data; /* owned; the provider's own record, persisted as is */
} Snapshot;

typedef struct SnapshotSet {
        SnapsetId id;
        SetContext context;
        SetState state;
        uint64_t created_usec;
        Snapshot **snapshots;
        size_t n_snapshots;
        uint64_t freeze_window_usec;
        uint64_t hold_usec;
        uint64_t frozen_usec;    /* realtime of the first freeze; 0: unknown (older records) */
        /* Taken from a set definition (sets.d/NAME.conf): its name. Retention deletes only the
         * sets that carry its own name; NULL for every other set. */
        char *definition;
        /* Whether application hooks quiesced the applications first: the prepare hooks ran and
         * all succeeded. Otherwise the set is crash-consistent (a freeze's point in time). */
        bool application_consistent;
        json_object *hooks;      /* owned, NULL: none ran; the API's []HookRun, persisted as is */
} SnapshotSet;

/* Generates a new random id (libuuid). */
void snapset_id_generate(SnapsetId ret);
/* True if s is a UUID in canonical text form (any case). */
bool snapset_id_is_valid(const char *s);

/* A new, empty set with a fresh id. */
int snapshot_set_new(SetContext context, SnapshotSet **ret);
SnapshotSet *snapshot_set_free(SnapshotSet *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(SnapshotSet *, snapshot_set_free);

/* Appends a new snapshot of volume (the path as given, and the device it resolved to) to the set,
 * with a fresh id. Returns it through ret (owned by the set). */
int snapshot_set_add(SnapshotSet *s, const char *volume, const char *volume_path, dev_t device,
                     const char *provider, Snapshot **ret);

/* Replaces *field with a copy of value (NULL clears it). -ENOMEM on failure. */
int snapshot_set_field(char **field, const char *value);

/* Removes and frees the snapshot at index i. */
void snapshot_set_remove(SnapshotSet *s, size_t i);

Snapshot *snapshot_set_find(const SnapshotSet *s, const char *snapshot_id);

/* The snapshot's JSON: the API's Snapshot type; with private=true also provider data, for the
 * state directory. */
int snapshot_to_json(const Snapshot *snap, bool private, json_object **ret);
/* The set's JSON: the API's SnapshotSet type; with private=true, the state directory's record. */
int snapshot_set_to_json(const SnapshotSet *s, bool private, json_object **ret);
/* Reads a record written by snapshot_set_to_json(private=true). -EBADMSG if malformed. */
int snapshot_set_from_json(json_object *j, SnapshotSet **ret);
