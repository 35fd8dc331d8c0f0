/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include "id-lookup.h"

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

void id_lookup_done(IdLookup *l) {
        json_object_put(l->snapshot);
        json_object_put(l->set);
        *l = (IdLookup) {};
}

typedef struct FindSet {
        const char *id;
        json_object *set;   /* a reference of ours once found */
} FindSet;

static int find_set_on_reply(json_object *parameters, bool continues, void *userdata) {
        FindSet *f = userdata;
        json_object *set = reply_get_object(parameters, "set");

        if (!f->set && set && streq_ptr(reply_get_string(set, "id"), f->id))
                f->set = json_object_get(set);
        /* Read the stream to its end: the connection is unusable in the middle of one. */
        return 0;
}

static int lookup_set(VarlinkStream *s, const char *id, const VarlinkReply *not_found, IdLookup *ret) {
        FindSet f = { .id = id };
        int status;

        status = connection_call_more(s, SNAPSET_METHOD("ListSnapshotSets"), NULL, find_set_on_reply, &f);
        if (status != 0) {
                json_object_put(f.set);
                return status;
        }
        if (f.set) {
                ret->set = f.set;
                return 0;
        }

        /* Neither: the daemon's answer to GetSnapshot, and that no set has the id either. */
        status = connection_report_error(SNAPSET_METHOD("GetSnapshot"), not_found);
        log_error("No snapshot and no snapshot set has the id '%s'; 'snapsetctl list' shows them.", id);
        return status;
}

int id_lookup(VarlinkStream *s, const char *id, IdLookup *ret) {
        _cleanup_(json_object_putp) json_object *parameters = parameters_new_string("snapshotId", id);
        _cleanup_reply_ VarlinkReply reply = {};
        json_object *snapshot;
        int status;

        *ret = (IdLookup) {};
        if (!parameters)
                return log_oom(), SNAPSET_EXIT_FAILURE;
        status = connection_call_reply(s, SNAPSET_METHOD("GetSnapshot"), parameters, &reply);
        if (status != 0)
                return status;
        if (connection_reply_is(&reply, VSS_E_OBJECT_NOT_FOUND))
                return lookup_set(s, id, &reply, ret);
        if (reply.error)
                return connection_report_error(SNAPSET_METHOD("GetSnapshot"), &reply);

        snapshot = reply_get_object(reply.parameters, "snapshot");
        if (!snapshot) {
                log_error("snapsetd's reply to GetSnapshot has no snapshot.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        ret->snapshot = json_object_get(snapshot);
        return 0;
}
