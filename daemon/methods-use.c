/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Using a snapshot: ExposeSnapshot, UnexposeSnapshot (sets-expose.h does the work),
 * RevertToSnapshot (sets-revert.h) and BreakSnapshotSet (sets-break.h). */

#include <stddef.h>

#include "json-util.h"
#include "method-util.h"
#include "methods-use.h"
#include "ratelimit.h"
#include "sets-break.h"
#include "sets-expose.h"
#include "sets-revert.h"
#include "sets.h"

/* The refusal, with the outcome's fields, in the journal too: an administrator wondering why a
 * backup found no files finds the reason there. */
static int refuse_outcome(MethodCall *mc, const SetOutcome *out, const char *set_id) {
        return method_refuse(mc, out->code,
                             &(VssErrorFields) {
                                     .volume = out->volume[0] ? out->volume : NULL,
                                     .snapshot_id = out->snapshot_id[0] ? out->snapshot_id : NULL,
                                     .set_id = set_id,
                                     .provider = out->provider[0] ? out->provider : NULL,
                                     .error = out->error,
                             },
                             "%s", out->message[0] ? out->message : vss_code_message(out->code)) ?: 1;
}

/* The finished snapshot of id, or the error replied (1): none, or its set still in creation. */
static int find(MethodCall *mc, const char *id, SnapshotSet **ret_set, Snapshot **ret) {
        SetCreation *c = mc->manager->sets->creation;
        int r;

        r = method_check_id(mc, id, "snapshot");
        if (r != 0)
                return r;
        *ret = sets_find_snapshot(mc->manager, id, ret_set);
        if (*ret)
                return 0;
        if (c && snapshot_set_find((SnapshotSet *) set_creation_set(c), id))
                return method_refuse(mc, VSS_E_BAD_STATE, &(VssErrorFields) { .snapshot_id = id },
                                     "Snapshot %s belongs to a set still in creation; expose it once the set is "
                                     "created.", id) ?: 1;
        return method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .snapshot_id = id },
                             "There is no snapshot %s.", id) ?: 1;
}

int vl_method_expose_snapshot(MethodCall *mc, json_object *parameters) {
        typedef struct { char *snapshot_id; char *path; bool mount; } Params;
        static const JsonDispatch table[] = {
                { "snapshotId", JSON_DISPATCH_STRING, offsetof(Params, snapshot_id), JSON_MANDATORY },
                { "path",       JSON_DISPATCH_STRING, offsetof(Params, path),        JSON_NULLABLE },
                { "mount",      JSON_DISPATCH_BOOL,   offsetof(Params, mount),       JSON_NULLABLE },
                {}
        };
        Params p = { .mount = true };
        _cleanup_(json_object_putp) json_object *reply = NULL;
        SnapshotSet *set = NULL;
        Snapshot *snap = NULL;
        SetOutcome out;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = find(mc, p.snapshot_id, &set, &snap);
        if (r == 0 && !p.mount && p.path)
                r = method_refuse(mc, E_INVALIDARG, &(VssErrorFields) { .snapshot_id = p.snapshot_id },
                                  "A path was given with mount false; give one or the other.") ?: 1;
        if (r == 0 && !p.mount && !snap->device)
                r = method_refuse(mc, VSS_E_BAD_STATE, &(VssErrorFields) { .snapshot_id = p.snapshot_id },
                                  "Snapshot %s has no block device of its own.", snap->id) ?: 1;
        if (r == 0 && p.mount && sets_expose(mc->manager, set, snap, p.path, &out) != S_OK)
                r = refuse_outcome(mc, &out, set->id);
        json_dispatch_done(table, &p);
        if (r != 0)
                return r < 0 ? r : 0;

        reply = json_object_new_object();
        if (!reply || json_add_string(reply, "device", snap->device) < 0 ||
            (snap->exposed_at && p.mount && json_add_string(reply, "path", snap->exposed_at) < 0))
                return -ENOMEM;
        return method_reply(mc, reply);   /* borrowed: freed here */
}

int vl_method_unexpose_snapshot(MethodCall *mc, json_object *parameters) {
        struct { char *snapshot_id; } p = {};
        static const JsonDispatch table[] = {
                { "snapshotId", JSON_DISPATCH_STRING, 0, JSON_MANDATORY },
                {}
        };
        SnapshotSet *set = NULL;
        Snapshot *snap = NULL;
        SetOutcome out;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = find(mc, p.snapshot_id, &set, &snap);
        if (r == 0 && sets_unexpose(mc->manager, set, snap, /* lazy= */ true, &out) != S_OK)
                r = refuse_outcome(mc, &out, set->id);
        json_dispatch_done(table, &p);
        if (r != 0)
                return r < 0 ? r : 0;
        return method_reply(mc, NULL);
}

int vl_method_revert_to_snapshot(MethodCall *mc, json_object *parameters) {
        typedef struct { char *snapshot_id; bool force_dismount; } Params;
        static const JsonDispatch table[] = {
                { "snapshotId",    JSON_DISPATCH_STRING, offsetof(Params, snapshot_id),    JSON_MANDATORY },
                { "forceDismount", JSON_DISPATCH_BOOL,   offsetof(Params, force_dismount), JSON_NULLABLE },
                {}
        };
        _cleanup_(json_object_putp) json_object *reply = NULL;
        const char *state = NULL;
        Params p = {};
        SnapshotSet *set = NULL;
        Snapshot *snap = NULL;
        SetOutcome out;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = find(mc, p.snapshot_id, &set, &snap);
        if (r == 0 && sets_revert(mc->manager, set, snap, p.force_dismount, &state, &out) != S_OK)
                r = refuse_outcome(mc, &out, set->id);
        json_dispatch_done(table, &p);
        if (r != 0)
                return r < 0 ? r : 0;
        sets_revert_schedule(mc->manager, now_monotonic_usec());
        reply = json_object_new_object();
        if (!reply || json_add_string(reply, "revert", state) < 0)
                return -ENOMEM;
        return method_reply(mc, reply);   /* borrowed: freed here */
}

int vl_method_break_snapshot_set(MethodCall *mc, json_object *parameters) {
        typedef struct { char *set_id; bool revert_identity; } Params;
        static const JsonDispatch table[] = {
                { "setId",          JSON_DISPATCH_STRING, offsetof(Params, set_id),          JSON_MANDATORY },
                { "revertIdentity", JSON_DISPATCH_BOOL,   offsetof(Params, revert_identity), JSON_NULLABLE },
                {}
        };
        _cleanup_(json_object_putp) json_object *volumes = NULL;
        char **devices = NULL;
        SnapshotSet *set = NULL;
        Params p = {};
        SetOutcome out;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = method_check_id(mc, p.set_id, "snapshot set");
        if (r == 0 && !(set = sets_find_set(mc->manager, p.set_id, NULL)))
                r = method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .set_id = p.set_id },
                                  "There is no snapshot set %s (a set still in creation cannot be broken).",
                                  p.set_id) ?: 1;
        if (r == 0 && sets_break(mc->manager, set, p.revert_identity, &devices, &out) != S_OK)
                r = refuse_outcome(mc, &out, p.set_id);
        json_dispatch_done(table, &p);
        if (r != 0)
                return r < 0 ? r : 0;

        volumes = json_object_new_array();
        for (size_t i = 0; devices[i]; i++) {
                if (volumes && json_object_array_add(volumes, json_object_new_string(devices[i])) < 0)
                        r = -ENOMEM;
                free(devices[i]);
        }
        free(devices);
        if (!volumes || r < 0)
                return -ENOMEM;
        return method_reply_with(mc, "volumes", TAKE_PTR(volumes));
}
