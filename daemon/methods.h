/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The varlink methods of snapsetd: one table names every method of every interface served, with
 * its handler and what it needs (who may call it, whether it streams). methods_dispatch() takes a
 * received message through parsing, lookup, access control and parameter checks to the handler,
 * and sends replies through a callback, so that it works, and is tested, without a socket. */

#include <stdbool.h>
#include <json-c/json.h>

#include "access.h"
#include "varlink.h"
#include "vss-error.h"

typedef struct Manager Manager;
typedef struct MethodCall MethodCall;

typedef enum MethodFlags {
        METHOD_OPEN      = 1 << 0, /* anyone may call it (org.varlink.service) */
        METHOD_READ_ONLY = 1 << 1, /* changes nothing: root and the read group may call it */
        METHOD_STREAMS   = 1 << 2, /* replies with "continues": must be called with "more" */
        /* May run while a job does (job.h): it reads the daemon's state and touches no provider,
         * no block device and nothing in the state directory. Every other call waits for the job
         * to end (methods_dispatch() returns METHODS_WAIT). */
        METHOD_CONCURRENT = 1 << 3,
} MethodFlags;

/* A handler sends exactly one final reply or error through the method_reply*() and
 * method_error*() functions (and, for a streaming method, any number of method_notify() before),
 * and returns 0. If it returns a negative errno without having replied, the dispatcher replies
 * with the VSS code closest to the errno. */
typedef int (*MethodHandler)(MethodCall *mc, json_object *parameters);

typedef struct Method {
        const char *interface;
        const char *member;
        MethodHandler handler;     /* NULL: declared in the IDL, not implemented yet */
        MethodFlags flags;
} Method;

/* Sends one message to the caller; msg is not consumed. Returns 0 or negative errno (the
 * connection is then closed). */
typedef int (*MethodSendFunc)(void *userdata, json_object *msg);

struct MethodCall {
        Manager *manager;
        const Peer *peer;
        const Method *method;
        VarlinkCall call;
        MethodSendFunc send;
        void *userdata;
        bool replied;              /* the final reply (or error) has been sent or suppressed */
        bool subscribed;           /* the call stays open for events (Monitor) */
        bool deferred;             /* the handler handed the call to method_defer() */
};

/* What methods_dispatch() returns besides 0, 1 (Monitor) and negative errno. */
#define METHODS_DEFERRED 2         /* a job finishes the call; manager_deliver() sends its replies */
#define METHODS_WAIT     3         /* a job runs and the call must wait: msg was not consumed */

/* The long part of a call, for method_defer(): work runs on the job thread, finish on the loop.
 * Both may reply (through the usual method_reply*()/method_error*()); replies are kept and sent
 * when finish returns, so that the connection is only ever touched by the loop. work may use
 * only what a job may (job.h); finish takes the results into the daemon's state. */
typedef void (*MethodWork)(MethodCall *mc, void *userdata);

/* Defers the rest of the call to a job. userdata is freed with free_userdata after finish (also
 * when the job cannot start: then -errno is returned and the handler replies). Without a job
 * runner (the unit tests) work and finish run at once, here. */
int method_defer(MethodCall *mc, MethodWork work, MethodWork finish, void *userdata,
                 void (*free_userdata)(void *userdata));

/* Finds interface.member. Returns 0 and the entry, -EADDRNOTAVAIL if no such interface is
 * served, -ENXIO if the interface has no such method. */
int method_lookup(const char *interface, const char *member, const Method **ret);

/* Who may call m. */
AccessLevel method_access_level(const Method *m);

/* The exact text of a served interface (the .varlink file), or NULL. */
const char *method_interface_description(const char *interface);

/* The table, for tests that compare it with the IDL. */
const Method *method_table(size_t *ret_n);

/* Handles one received message: parses the call, looks the method up, checks access, "more",
 * and parameters, runs the handler, and sends its replies through send (none for a oneway call).
 * Returns 0 if the call was handled (whatever the reply); 1 if it stays open to receive events
 * (Monitor: the caller then sends manager_send_event()'s events on this connection);
 * METHODS_DEFERRED or METHODS_WAIT (above: the caller reads no further calls from the
 * connection until the call is answered); -EPROTO if the message is not a valid call (the caller
 * closes the connection without a reply); or another negative errno if a reply could not be
 * sent. */
int methods_dispatch(Manager *m, const Peer *peer, json_object *msg, MethodSendFunc send, void *userdata);

/* Replies. Each returns 0 or the negative errno of send. For a oneway call nothing is sent, not
 * even an error. params is not consumed; NULL sends an empty object. */
int method_reply(MethodCall *mc, json_object *params);
/* An intermediate reply ("continues": true) of a streaming call; -EINVAL without "more". */
int method_notify(MethodCall *mc, json_object *params);
int method_error(MethodCall *mc, const char *error, json_object *params);
int method_error_invalid_parameter(MethodCall *mc, const char *parameter);
/* A handler's negative errno, unless it already replied: the VSS code closest to it. */
int method_reply_errno(MethodCall *mc, int error);

/* The optional objects an io.snapset.Manager error names. Zero/NULL fields are left out. */
typedef struct VssErrorFields {
        const char *volume;
        const char *snapshot_id;
        const char *set_id;
        const char *provider;
        const char *method;
        int error;                 /* errno (either sign) behind the failure, or 0 */
} VssErrorFields;

/* Replies the error of code from the table: io.snapset.Manager.<Name> with hresult, vssName and
 * message: format (printf) if not NULL, else the table's message. fields may be NULL. */
int method_error_vss(MethodCall *mc, VssCode code, const VssErrorFields *fields, const char *format, ...)
        _printf_(4, 5);

/* Builds an io.snapset.Manager Event object, stamped now; NULL fields are left out. */
json_object *monitor_event_new(const char *type, const char *set_id, const char *snapshot_id,
                               const char *volume, const char *message);

/* Builds the parameters of such an error (for tests and for the error reply above). */
json_object *vss_error_parameters(VssCode code, const VssErrorFields *fields, const char *message);
