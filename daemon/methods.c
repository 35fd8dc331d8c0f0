/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#include "json-util.h"
#include "inventory.h"
#include "job.h"
#include "json-dispatch.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "methods.h"
#include "methods-schedule.h"
#include "methods-use.h"
#include "methods-sets.h"
#include "sets.h"
#include "time-util.h"

#define SNAPSET_URL "https://github.com/snapset/snapset"

static const char io_snapset_manager_idl[] =
#include "io.snapset.Manager.varlink.inc"
;

static const char org_varlink_service_idl[] =
#include "org.varlink.service.varlink.inc"
;

static const struct {
        const char *name;
        const char *description;
} interfaces[] = {
        /* In the order GetInfo lists them: the service interface first, as the reference
         * implementations do. */
        { "org.varlink.service", org_varlink_service_idl },
        { SNAPSET_VARLINK_INTERFACE, io_snapset_manager_idl },
};

static int vl_method_get_info(MethodCall *mc, json_object *parameters);
static int vl_method_get_interface_description(MethodCall *mc, json_object *parameters);
static int vl_method_get_status(MethodCall *mc, json_object *parameters);
static int vl_method_list_providers(MethodCall *mc, json_object *parameters);
static int vl_method_list_volumes(MethodCall *mc, json_object *parameters);
static int vl_method_monitor(MethodCall *mc, json_object *parameters);
static int vl_method_cleanup(MethodCall *mc, json_object *parameters);

#define SVC "org.varlink.service"
#define MGR SNAPSET_VARLINK_INTERFACE

/* Every method of every interface in the IDL files, and nothing else (a unit test compares the
 * two). Read-only means: it changes nothing on the machine and reveals only what
 * "snapsetctl status/list" shows, so the read group may call it. */
static const Method method_table_entries[] = {
        { SVC, "GetInfo",                 vl_method_get_info,                  METHOD_OPEN | METHOD_READ_ONLY | METHOD_CONCURRENT },
        { SVC, "GetInterfaceDescription", vl_method_get_interface_description, METHOD_OPEN | METHOD_READ_ONLY | METHOD_CONCURRENT },

        { MGR, "GetStatus",               vl_method_get_status,                METHOD_READ_ONLY | METHOD_CONCURRENT },
        { MGR, "ListProviders",           vl_method_list_providers,            METHOD_READ_ONLY },
        { MGR, "ListVolumes",             vl_method_list_volumes,              METHOD_READ_ONLY },
        { MGR, "ListSnapshotSets",        vl_method_list_snapshot_sets,        METHOD_READ_ONLY | METHOD_STREAMS | METHOD_CONCURRENT },
        { MGR, "ListSnapshots",           vl_method_list_snapshots,            METHOD_READ_ONLY | METHOD_STREAMS | METHOD_CONCURRENT },
        { MGR, "GetSnapshot",             vl_method_get_snapshot,              METHOD_READ_ONLY | METHOD_CONCURRENT },
        { MGR, "Monitor",                 vl_method_monitor,                   METHOD_READ_ONLY | METHOD_STREAMS | METHOD_CONCURRENT },

        /* Start and Create only look at the creation lock, which a running job always holds;
         * Add and Do from anyone but the set's owner are refused from the registry alone (the
         * owner's connection waits for its own job). */
        { MGR, "StartSnapshotSet",        vl_method_start_snapshot_set,        METHOD_CONCURRENT },
        { MGR, "AddToSnapshotSet",        vl_method_add_to_snapshot_set,       METHOD_CONCURRENT },
        { MGR, "DoSnapshotSet",           vl_method_do_snapshot_set,           METHOD_CONCURRENT },
        { MGR, "AbortSnapshotSet",        vl_method_abort_snapshot_set,        0 },
        { MGR, "CreateSnapshotSet",       vl_method_create_snapshot_set,       METHOD_CONCURRENT },
        { MGR, "DeleteSnapshots",         vl_method_delete_snapshots,          0 },
        { MGR, "Cleanup",                 vl_method_cleanup,                   0 },
        { MGR, "ExposeSnapshot",          vl_method_expose_snapshot,           0 },
        { MGR, "UnexposeSnapshot",        vl_method_unexpose_snapshot,         0 },
        { MGR, "RevertToSnapshot",        vl_method_revert_to_snapshot,        0 },
        { MGR, "BreakSnapshotSet",        vl_method_break_snapshot_set,        0 },
        /* Scheduled sets: ListDefinitions reads the definitions and the registry (fresh status
         * from the providers only when no job runs), so monitoring is answered during a set;
         * CreateDefinedSet waits for a running set instead of being refused (two timers firing
         * at once both get their set); PruneSets deletes, after the set in creation. */
        { MGR, "ListDefinitions",         vl_method_list_definitions,          METHOD_READ_ONLY | METHOD_CONCURRENT },
        { MGR, "CreateDefinedSet",        vl_method_create_defined_set,        0 },
        { MGR, "PruneSets",               vl_method_prune_sets,                0 },
};

const Method *method_table(size_t *ret_n) {
        *ret_n = ELEMENTSOF(method_table_entries);
        return method_table_entries;
}

const char *method_interface_description(const char *interface) {
        for (size_t i = 0; i < ELEMENTSOF(interfaces); i++)
                if (streq(interfaces[i].name, interface))
                        return interfaces[i].description;
        return NULL;
}

int method_lookup(const char *interface, const char *member, const Method **ret) {
        if (!method_interface_description(interface))
                return -EADDRNOTAVAIL;
        for (size_t i = 0; i < ELEMENTSOF(method_table_entries); i++) {
                const Method *m = &method_table_entries[i];
                if (streq(m->interface, interface) && streq(m->member, member)) {
                        *ret = m;
                        return 0;
                }
        }
        return -ENXIO;
}

AccessLevel method_access_level(const Method *m) {
        if (m->flags & METHOD_OPEN)
                return ACCESS_ANYONE;
        if (m->flags & METHOD_READ_ONLY)
                return ACCESS_READ;
        return ACCESS_ROOT;
}

/* ---------------------------------------------------------------- replies */

static int method_send(MethodCall *mc, json_object *msg) {
        if (!msg)
                return -ENOMEM;
        return mc->send(mc->userdata, msg);
}

int method_reply(MethodCall *mc, json_object *params) {
        _cleanup_(json_object_putp) json_object *msg = NULL;

        if (mc->replied)
                return -EALREADY;
        mc->replied = true;
        if (mc->call.oneway)
                return 0;
        msg = varlink_message_reply(params, false);
        return method_send(mc, msg);
}

int method_notify(MethodCall *mc, json_object *params) {
        _cleanup_(json_object_putp) json_object *msg = NULL;

        if (mc->replied)
                return -EALREADY;
        if (!mc->call.more)
                return -EINVAL;
        msg = varlink_message_reply(params, true);
        return method_send(mc, msg);
}

int method_error(MethodCall *mc, const char *error, json_object *params) {
        _cleanup_(json_object_putp) json_object *msg = NULL;

        if (mc->replied)
                return -EALREADY;
        mc->replied = true;
        if (mc->call.oneway)
                return 0; /* "The server must adhere to the instruction", errors included. */
        msg = varlink_message_error(error, params);
        return method_send(mc, msg);
}

/* An error of org.varlink.service with one string parameter. */
static int method_error_string(MethodCall *mc, const char *error, const char *key, const char *value) {
        _cleanup_(json_object_putp) json_object *p = json_object_new_object();

        if (!p || json_object_object_add(p, key, json_object_new_string(value)) < 0)
                return -ENOMEM;
        return method_error(mc, error, p);
}

int method_error_invalid_parameter(MethodCall *mc, const char *parameter) {
        return method_error_string(mc, VARLINK_ERROR_INVALID_PARAMETER, "parameter", parameter);
}

json_object *vss_error_parameters(VssCode code, const VssErrorFields *f, const char *message) {
        _cleanup_(json_object_putp) json_object *p = json_object_new_object();
        const VssErrorFields none = {};

        if (!p)
                return NULL;
        if (!f)
                f = &none;
        /* The HRESULT as the unsigned 32-bit value (0x80042316 = 2147754774), as VSS prints it. */
        if (json_add_int(p, "hresult", (int64_t) vss_code_hresult(code)) < 0 ||
            json_add_string(p, "vssName", vss_code_name(code)) < 0 ||
            json_add_string(p, "message", message ?: vss_code_message(code)) < 0 ||
            json_add_string(p, "volume", f->volume) < 0 ||
            json_add_string(p, "snapshotId", f->snapshot_id) < 0 ||
            json_add_string(p, "setId", f->set_id) < 0 ||
            json_add_string(p, "provider", f->provider) < 0 ||
            json_add_string(p, "method", f->method) < 0)
                return NULL;
        if (f->error != 0 && json_add_int(p, "errno", f->error < 0 ? -f->error : f->error) < 0)
                return NULL;
        return TAKE_PTR(p);
}

int method_error_vss(MethodCall *mc, VssCode code, const VssErrorFields *fields, const char *format, ...) {
        _cleanup_(json_object_putp) json_object *p = NULL;
        _cleanup_free_ char *message = NULL;

        /* Only failures have a varlink error name; anything else here is a bug of ours. */
        if (!vss_code_varlink_error(code))
                code = VSS_E_UNEXPECTED;

        if (format) {
                va_list ap;
                int r;

                va_start(ap, format);
                r = vasprintf(&message, format, ap);
                va_end(ap);
                if (r < 0)
                        return -ENOMEM;
        }

        p = vss_error_parameters(code, fields, message);
        if (!p)
                return -ENOMEM;
        return method_error(mc, vss_code_varlink_error(code), p);
}

/* ---------------------------------------------------------------- parameters */

/* Dispatches parameters strictly into target through table (NULL: the method takes none). Returns
 * 0 if they are fine; 1 if they are not and InvalidParameter {parameter} was replied; negative
 * errno on failure. Release target with json_dispatch_done() either way. */
static int method_dispatch_parameters(MethodCall *mc, json_object *parameters, const JsonDispatch *table,
                                      void *target) {
        static const JsonDispatch none[] = { {} };
        const char *bad = NULL;
        char dummy;
        int r;

        r = json_dispatch(parameters, table ?: none, target ?: &dummy, &bad);
        if (r == -ENOMEM || (r < 0 && !bad))
                return r;
        if (r < 0) {
                r = method_error_invalid_parameter(mc, bad ?: "parameters");
                return r < 0 ? r : 1;
        }
        return 0;
}

/* ---------------------------------------------------------------- handlers */

static int vl_method_get_info(MethodCall *mc, json_object *parameters) {
        _cleanup_(json_object_putp) json_object *reply = NULL, *list = NULL;
        int r;

        r = method_dispatch_parameters(mc, parameters, NULL, NULL);
        if (r != 0)
                return r < 0 ? r : 0;

        list = json_object_new_array();
        if (!list)
                return -ENOMEM;
        for (size_t i = 0; i < ELEMENTSOF(interfaces); i++)
                if (json_object_array_add(list, json_object_new_string(interfaces[i].name)) < 0)
                        return -ENOMEM;

        reply = json_object_new_object();
        if (!reply ||
            json_add_string(reply, "vendor", "snapset") < 0 ||
            json_add_string(reply, "product", "snapsetd") < 0 ||
            json_add_string(reply, "version", SNAPSET_VERSION) < 0 ||
            json_add_string(reply, "url", SNAPSET_URL) < 0 ||
            json_object_object_add(reply, "interfaces", TAKE_PTR(list)) < 0)
                return -ENOMEM;

        return method_reply(mc, reply);
}

static int vl_method_get_interface_description(MethodCall *mc, json_object *parameters) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        struct Params {
                char *interface;
        } p = {};
        static const JsonDispatch table[] = {
                { .name = "interface", .type = JSON_DISPATCH_STRING,
                  .offset = offsetof(struct Params, interface), .flags = JSON_MANDATORY },
                {}
        };
        const char *description;
        int r;

        r = method_dispatch_parameters(mc, parameters, table, &p);
        if (r != 0) {
                json_dispatch_done(table, &p);
                return r < 0 ? r : 0;
        }

        description = method_interface_description(p.interface);
        if (!description) {
                r = method_error_string(mc, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", p.interface);
                json_dispatch_done(table, &p);
                return r;
        }
        json_dispatch_done(table, &p);

        reply = json_object_new_object();
        if (!reply || json_add_string(reply, "description", description) < 0)
                return -ENOMEM;
        return method_reply(mc, reply);
}

static int vl_method_get_status(MethodCall *mc, json_object *parameters) {
        _cleanup_(json_object_putp) json_object *reply = NULL, *limits = NULL, *in_progress = NULL, *attention = NULL,
                                                *health = NULL;
        const Manager *m = mc->manager;
        const Config *c = &m->config;
        int r;

        r = method_dispatch_parameters(mc, parameters, NULL, NULL);
        if (r != 0)
                return r < 0 ? r : 0;

        r = sets_in_progress_json(m, &in_progress);
        if (r >= 0)
                r = sets_attention_json(m, &attention);
        if (r >= 0)
                r = schedule_health_json(m, &health);
        if (r < 0)
                return r;
        limits = json_object_new_object();
        if (!limits ||
            json_add_int(limits, "maxVolumesPerSet", c->max_volumes_per_set) < 0 ||
            json_add_int(limits, "maxSnapshotsPerVolume", c->max_snapshots_per_volume) < 0 ||
            json_add_int(limits, "maxConnections", c->max_connections) < 0 ||
            json_add_int(limits, "maxConnectionsPerUser", c->max_connections_per_user) < 0 ||
            json_add_int(limits, "maxMessageBytes", (int64_t) manager_max_message(m)) < 0 ||
            json_add_int(limits, "idleTimeoutSec", c->idle_timeout_sec) < 0 ||
            json_add_int(limits, "setIdleTimeoutSec", c->set_idle_timeout_sec) < 0 ||
            json_add_int(limits, "flushTimeoutSec", c->flush_timeout_sec) < 0 ||
            json_add_int(limits, "holdTimeoutSec", c->hold_timeout_sec) < 0)
                return -ENOMEM;

        reply = json_object_new_object();
        if (!reply ||
            json_add_string(reply, "version", SNAPSET_VERSION) < 0 ||
            json_add_int(reply, "uptimeUsec", (int64_t) (now_monotonic_usec() - m->start_usec)) < 0 ||
            json_object_object_add(reply, "setInProgress", TAKE_PTR(in_progress)) < 0 ||
            json_object_object_add(reply, "needsAttention", TAKE_PTR(attention)) < 0 ||
            json_add_int(reply, "sets", (int64_t) sets_count(m)) < 0 ||
            json_add_int(reply, "snapshots", (int64_t) sets_count_snapshots(m)) < 0 ||
            json_add_int(reply, "connections", m->n_connections) < 0 ||
            json_add_string(reply, "stateDirectory", m->state_directory) < 0 ||
            json_object_object_add(reply, "limits", TAKE_PTR(limits)) < 0 ||
            json_object_object_add(reply, "health", TAKE_PTR(health)) < 0)
                return -ENOMEM;

        return method_reply(mc, reply);
}

static int vl_method_cleanup(MethodCall *mc, json_object *parameters) {
        _cleanup_(json_object_putp) json_object *reply = NULL, *remaining = NULL;
        unsigned undone = 0;
        int r;

        r = method_dispatch_parameters(mc, parameters, NULL, NULL);
        if (r != 0)
                return r < 0 ? r : 0;
        r = sets_cleanup(mc->manager, &undone, &remaining);
        if (r < 0)
                return r;
        reply = json_object_new_object();
        if (!reply || json_add_int(reply, "undone", undone) < 0 ||
            json_object_object_add(reply, "remaining", TAKE_PTR(remaining)) < 0)
                return -ENOMEM;
        return method_reply(mc, reply);
}

/* ListProviders and ListVolumes: the inventory builds the array, we wrap it. */
static int reply_inventory(MethodCall *mc, json_object *parameters, const char *key, const char *what,
                           int (*list)(json_object **ret_array)) {
        _cleanup_(json_object_putp) json_object *reply = NULL, *array = NULL;
        int r;

        r = method_dispatch_parameters(mc, parameters, NULL, NULL);
        if (r != 0)
                return r < 0 ? r : 0;

        r = list(&array);
        if (r < 0) {
                log_warning_errno(r, "Failed to list the %s: %m", what);
                return method_error_vss(mc, vss_code_from_errno(r),
                                        &(VssErrorFields) { .method = mc->call.method, .error = r },
                                        "Failed to list the %s: %s", what, strerror(-r));
        }

        reply = json_object_new_object();
        if (!reply || json_object_object_add(reply, key, TAKE_PTR(array)) < 0)
                return -ENOMEM;
        return method_reply(mc, reply);
}

static int vl_method_list_providers(MethodCall *mc, json_object *parameters) {
        return reply_inventory(mc, parameters, "providers", "providers", inventory_list_providers);
}

static int vl_method_list_volumes(MethodCall *mc, json_object *parameters) {
        return reply_inventory(mc, parameters, "volumes", "volumes", inventory_list_volumes);
}

json_object *monitor_event_new(const char *type, const char *set_id, const char *snapshot_id,
                               const char *volume, const char *message) {
        _cleanup_(json_object_putp) json_object *e = json_object_new_object();

        if (!e ||
            json_add_int(e, "timestampUsec", (int64_t) now_realtime_usec()) < 0 ||
            json_add_string(e, "type", type) < 0 ||
            json_add_string(e, "setId", set_id) < 0 ||
            json_add_string(e, "snapshotId", snapshot_id) < 0 ||
            json_add_string(e, "volume", volume) < 0 ||
            json_add_string(e, "message", message) < 0)
                return NULL;
        return TAKE_PTR(e);
}

/* Monitor: the current state first (one "status" event), then every event as it happens, until
 * the client closes the connection (the varlink FAQ's pattern for subscriptions). */
static int vl_method_monitor(MethodCall *mc, json_object *parameters) {
        _cleanup_(json_object_putp) json_object *reply = NULL, *event = NULL;
        _cleanup_free_ char *message = NULL;
        const Manager *m = mc->manager;
        int r;

        r = method_dispatch_parameters(mc, parameters, NULL, NULL);
        if (r != 0)
                return r < 0 ? r : 0;

        if (asprintf(&message, "snapsetd %s: %u connection(s), no snapshot set in creation.",
                     SNAPSET_VERSION, m ? m->n_connections : 0) < 0)
                return -ENOMEM;
        event = monitor_event_new("status", NULL, NULL, NULL, message);
        reply = event ? json_object_new_object() : NULL;
        if (!reply || json_object_object_add(reply, "event", TAKE_PTR(event)) < 0)
                return -ENOMEM;

        r = method_notify(mc, reply);
        if (r < 0)
                return r;
        mc->subscribed = true;
        return 0;
}

/* ---------------------------------------------------------------- dispatch */

int method_reply_errno(MethodCall *mc, int error) {
        if (error >= 0 || mc->replied)
                return 0;
        /* The handler failed before it could reply: translate the errno once, here. */
        log_debug_errno(error, "%s failed: %m", mc->call.method);
        return method_error_vss(mc, vss_code_from_errno(error),
                                &(VssErrorFields) { .method = mc->call.method, .error = error },
                                "%s failed: %s", mc->call.method, strerror(-error));
}

static int method_check_access(MethodCall *mc) {
        AccessLevel level = method_access_level(mc->method);
        const char *group = mc->manager ? mc->manager->config.read_group : NULL;
        bool member = false;
        char peer[64];
        unsigned suppressed;

        if (level == ACCESS_READ && mc->peer->uid != 0) {
                int r = access_peer_in_group(mc->peer, group);
                if (r < 0)
                        log_warning_errno(r, "Failed to check whether uid %u is in group '%s', denying: %m",
                                          (unsigned) mc->peer->uid, group);
                member = r > 0;
        }

        if (access_allowed(level, mc->peer->uid, member))
                return 0;

        if (mc->manager && ratelimit_below(&mc->manager->deny_ratelimit, &suppressed))
                log_notice("Denied %s to %s: it needs %s.%s", mc->call.method,
                           manager_peer_to_string(mc->peer->pid, mc->peer->uid, peer, sizeof peer),
                           level == ACCESS_READ && group ? "root or group membership" : "root",
                           suppressed > 0 ? " (more denials were not logged)" : "");

        if (level == ACCESS_READ && group)
                return method_error_vss(mc, E_ACCESSDENIED, &(VssErrorFields) { .method = mc->call.method },
                                        "Permission denied: %s needs root or membership of the group '%s'.",
                                        mc->call.method, group);
        if (level == ACCESS_READ)
                return method_error_vss(mc, E_ACCESSDENIED, &(VssErrorFields) { .method = mc->call.method },
                                        "Permission denied: %s needs root (no ReadGroup= is configured in snapsetd.conf).",
                                        mc->call.method);
        return method_error_vss(mc, E_ACCESSDENIED, &(VssErrorFields) { .method = mc->call.method },
                                "Permission denied: %s needs root.", mc->call.method);
}

static int methods_dispatch_call(MethodCall *mc) {
        int r;

        r = method_lookup(mc->call.interface, mc->call.member, &mc->method);
        if (r == -EADDRNOTAVAIL)
                return method_error_string(mc, VARLINK_ERROR_INTERFACE_NOT_FOUND, "interface", mc->call.interface);
        if (r == -ENXIO)
                return method_error_string(mc, VARLINK_ERROR_METHOD_NOT_FOUND, "method", mc->call.method);
        if (r < 0)
                return r;

        /* Access first: a caller who may not call a method learns nothing more about it. */
        if (!(mc->method->flags & METHOD_OPEN)) {
                r = method_check_access(mc);
                if (r != 0 || mc->replied)
                        return r;
        }

        /* No method of ours hands the connection over to another protocol. */
        if (mc->call.upgrade)
                return method_error_invalid_parameter(mc, "upgrade");

        if ((mc->method->flags & METHOD_STREAMS) && !mc->call.more)
                return method_error(mc, VARLINK_ERROR_EXPECTED_MORE, NULL);

        if (!mc->method->handler)
                return method_error_string(mc, VARLINK_ERROR_METHOD_NOT_IMPLEMENTED, "method", mc->call.method);

        if (mc->manager && job_runner_busy(mc->manager->jobs) && !(mc->method->flags & METHOD_CONCURRENT))
                return METHODS_WAIT;

        r = mc->method->handler(mc, mc->call.parameters);
        if (mc->deferred)
                return r < 0 ? r : METHODS_DEFERRED;
        if (r < 0 && !mc->replied)
                return method_reply_errno(mc, r);
        if (r >= 0 && !mc->replied && !mc->subscribed) {
                log_error("%s returned without a reply; this is a bug.", mc->call.method);
                return method_error_vss(mc, VSS_E_UNEXPECTED, &(VssErrorFields) { .method = mc->call.method }, NULL);
        }
        return r;
}

int methods_dispatch(Manager *m, const Peer *peer, json_object *msg, MethodSendFunc send, void *userdata) {
        MethodCall mc = {
                .manager = m,
                .peer = peer,
                .send = send,
                .userdata = userdata,
        };
        int r;

        r = varlink_call_parse(msg, &mc.call);
        if (r < 0)
                return r == -ENOMEM ? r : -EPROTO;

        r = methods_dispatch_call(&mc);
        varlink_call_done(&mc.call);
        if (r >= 0 && mc.subscribed && !mc.replied)
                return 1;
        return r;
}

/* ---------------------------------------------------------------- deferred calls */

typedef struct DeferredCall {
        MethodCall mc;                /* its own copy: call, peer, and replies kept in replies */
        Peer peer;
        json_object *replies;         /* array: what work and finish sent, in order */
        MethodWork work, finish;
        void *userdata;
        void (*free_userdata)(void *userdata);
} DeferredCall;

static int deferred_keep_reply(void *userdata, json_object *msg) {
        DeferredCall *dc = userdata;

        return json_object_array_add(dc->replies, json_object_get(msg)) < 0 ? -ENOMEM : 0;
}

static void deferred_call_free(DeferredCall *dc) {
        if (dc->free_userdata)
                dc->free_userdata(dc->userdata);
        varlink_call_done(&dc->mc.call);
        json_object_put(dc->replies);
        free(dc);
}

static void deferred_work(void *userdata) {
        DeferredCall *dc = userdata;

        dc->work(&dc->mc, dc->userdata);
}

static void deferred_done(void *userdata) {
        DeferredCall *dc = userdata;
        MethodCall *mc = &dc->mc;

        if (dc->finish)
                dc->finish(mc, dc->userdata);
        if (!mc->replied) {
                log_error("%s returned without a reply; this is a bug.", mc->call.method);
                (void) method_error_vss(mc, VSS_E_UNEXPECTED, &(VssErrorFields) { .method = mc->call.method }, NULL);
        }
        manager_deliver(mc->manager, dc->peer.connection_id, dc->replies);
        deferred_call_free(dc);
}

int method_defer(MethodCall *mc, MethodWork work, MethodWork finish, void *userdata,
                 void (*free_userdata)(void *userdata)) {
        json_object *parameters = NULL;
        DeferredCall *dc;
        int r;

        if (!mc->manager || !mc->manager->jobs) {
                work(mc, userdata);
                if (finish)
                        finish(mc, userdata);
                if (free_userdata)
                        free_userdata(userdata);
                return 0;
        }

        dc = calloc(1, sizeof *dc);
        /* The job gets a tree of its own: json-c's reference counts are not atomic, and the
         * loop frees the message the parameters came from. */
        if (dc && json_object_deep_copy(mc->call.parameters, &parameters, NULL) < 0)
                parameters = NULL;
        if (!dc || !parameters || !(dc->replies = json_object_new_array())) {
                json_object_put(parameters);
                free(dc);
                if (free_userdata)
                        free_userdata(userdata);
                return -ENOMEM;
        }
        dc->peer = *mc->peer;
        dc->peer.groups = NULL;       /* access was checked; the connection owns them */
        dc->peer.n_groups = 0;
        dc->mc = (MethodCall) {
                .manager = mc->manager,
                .peer = &dc->peer,
                .method = mc->method,
                .call = mc->call,
                .send = deferred_keep_reply,
                .userdata = dc,
        };
        dc->mc.call.parameters = parameters;
        dc->work = work;
        dc->finish = finish;
        dc->userdata = userdata;
        dc->free_userdata = free_userdata;

        r = job_runner_start(mc->manager->jobs, deferred_work, deferred_done, dc);
        if (r < 0) {
                dc->mc.call = (VarlinkCall) {};
                json_object_put(parameters);
                deferred_call_free(dc);
                return r;
        }
        /* The call's strings now belong to the deferred copy. */
        json_object_put(mc->call.parameters);
        mc->call = (VarlinkCall) {};
        mc->deferred = true;
        return 0;
}
