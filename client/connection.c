/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdio.h>

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"
#include "vss-error.h"

#define VARLINK_SERVICE_PREFIX "org.varlink.service."

static void varlink_reply_donep(VarlinkReply *r) {
        varlink_reply_done(r);
}
#define _cleanup_reply_ _cleanup_(varlink_reply_donep)

int exit_status_from_varlink_error(const char *error) {
        VssCode code = vss_code_from_varlink_error(error);

        if (code >= 0)
                return vss_code_info(code)->exit_status;
        if (streq(error, VARLINK_ERROR_PERMISSION_DENIED))
                return vss_code_info(E_ACCESSDENIED)->exit_status;
        if (startswith(error, VARLINK_SERVICE_PREFIX))
                return SNAPSET_EXIT_PROTOCOL;
        return SNAPSET_EXIT_FAILURE;
}

/* The table entry an error reply stands for: its own, or E_ACCESSDENIED for the generic
 * PermissionDenied of org.varlink.service, which means the same to an administrator. */
static const VssCodeInfo *code_info_of_error(const char *error) {
        if (streq(error, VARLINK_ERROR_PERMISSION_DENIED))
                return vss_code_info(E_ACCESSDENIED);
        return vss_code_info(vss_code_from_varlink_error(error));
}

/* ---------------------------------------------------------------- what went wrong, in words */

/* One sentence for an org.varlink.service error: the method or parameter it names, and what to
 * do. Returns a new string, or NULL on allocation failure. */
static char *describe_service_error(const char *method, const char *error, json_object *p) {
        const char *name = startswith(error, VARLINK_SERVICE_PREFIX);
        char *s = NULL;
        int r;

        if (streq(name, "InvalidParameter"))
                r = asprintf(&s, "snapsetd rejected the parameter '%s' of %s: it is missing, unknown, "
                             "or of the wrong type or value.",
                             strna(reply_get_string(p, "parameter")), method);
        else if (streq(name, "MethodNotImplemented"))
                r = asprintf(&s, "snapsetd does not implement %s yet; a newer snapsetd may.",
                             reply_get_string(p, "method") ?: method);
        else if (streq(name, "MethodNotFound"))
                r = asprintf(&s, "snapsetd has no method %s; check the spelling, or update snapsetd.",
                             reply_get_string(p, "method") ?: method);
        else if (streq(name, "InterfaceNotFound"))
                r = asprintf(&s, "snapsetd does not implement the interface %s.",
                             strna(reply_get_string(p, "interface")));
        else if (streq(name, "ExpectedMore"))
                r = asprintf(&s, "%s sends a stream of replies; call it with 'snapsetctl call --more'.",
                             method);
        else if (streq(name, "PermissionDenied"))
                r = asprintf(&s, "snapsetd does not allow this user to call %s.", method);
        else
                r = asprintf(&s, "snapsetd answered %s with the error %s.", method, error);
        return r < 0 ? NULL : s;
}

/* "Concerning volume /dev/vg0/root, provider lvm, method CommitSnapshots: No space left on device
 * (errno 28)"
 * from the optional fields of an io.snapset.Manager error; NULL if it has none. */
static char *describe_error_objects(json_object *p) {
        static const struct {
                const char *key, *label;
        } fields[] = {
                { "volume",     "volume" },
                { "snapshotId", "snapshot" },
                { "setId",      "set" },
                { "provider",   "provider" },
                { "method",     "method" },
        };
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        bool any = false;
        int64_t error;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        for (size_t i = 0; i < ELEMENTSOF(fields); i++) {
                const char *v = reply_get_string(p, fields[i].key);

                if (!v)
                        continue;
                fprintf(f, "%s%s %s", any ? ", " : "Concerning ", fields[i].label, v);
                any = true;
        }
        if (reply_get_int(p, "errno", &error) && error > 0 && error < INT32_MAX) {
                fprintf(f, "%s%s (errno %" PRIi64 ")", any ? ": " : "", strerror((int) error), error);
                any = true;
        }
        if (fclose(f) != 0 || !any)
                return NULL;
        return TAKE_PTR(buf);
}

/* Logs text escaped for the terminal: the daemon's strings may carry names that users chose. */
static void log_error_escaped(const char *text) {
        _cleanup_free_ char *e = escape_for_terminal(text);
        log_error("%s", e ?: text);
}

static void log_code_line(const VssCodeInfo *info) {
        log_error("%s (0x%08" PRIX32 "): %s", info->name, info->hresult, info->message);
}

/* ---------------------------------------------------------------- reporting */

/* With --json, the error as one object on stdout: its varlink name, every parameter the daemon
 * sent, vssName and hresult from the table, a message and the exit status. */
static void print_error_json(const char *error, json_object *p, const char *message, int status) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const VssCodeInfo *info = code_info_of_error(error);

        if (!o) {
                log_oom();
                return;
        }

        json_object_object_add(o, "error", json_object_new_string(error));
        json_object_object_foreach(p, key, value)
                if (!streq(key, "error"))
                        json_object_object_add(o, key, json_object_get(value));
        if (info) {
                json_object_object_add(o, "vssName", json_object_new_string(info->name));
                json_object_object_add(o, "hresult", json_object_new_int64(info->hresult));
        }
        if (message && !reply_get_string(p, "message"))
                json_object_object_add(o, "message", json_object_new_string(message));
        json_object_object_add(o, "exitStatus", json_object_new_int(status));

        (void) output_json(stdout, o, arg_json);
        fflush(stdout);
}

/* An io.snapset.Manager error: the code line from the table, then the daemon's own message if it
 * says more, then the objects concerned. */
static void report_snapset_error(const char *error, json_object *p) {
        const VssCodeInfo *info = code_info_of_error(error);
        const char *message = reply_get_string(p, "message");
        _cleanup_free_ char *objects = NULL;

        if (info)
                log_code_line(info);
        else {
                /* A code this snapsetctl does not know yet: trust what the daemon says of it. */
                const char *name = reply_get_string(p, "vssName");
                int64_t hresult;

                if (name && reply_get_int(p, "hresult", &hresult))
                        log_error("%s (0x%08" PRIX32 "): snapsetd failed with %s.",
                                  name, (uint32_t) hresult, error);
                else
                        log_error("snapsetd failed with %s.", error);
        }
        if (message && (!info || !streq(message, info->message)))
                log_error_escaped(message);

        objects = describe_error_objects(p);
        if (objects)
                log_error_escaped(objects);
}

static int report_error_reply(const char *method, const VarlinkReply *reply) {
        int status = exit_status_from_varlink_error(reply->error);
        _cleanup_free_ char *description = NULL;

        if (startswith(reply->error, SNAPSET_MANAGER_INTERFACE ".")) {
                if (arg_json != JSON_OFF) {
                        const VssCodeInfo *info = code_info_of_error(reply->error);
                        print_error_json(reply->error, reply->parameters, info ? info->message : NULL, status);
                }
                report_snapset_error(reply->error, reply->parameters);
                return status;
        }

        if (startswith(reply->error, VARLINK_SERVICE_PREFIX))
                description = describe_service_error(method, reply->error, reply->parameters);
        else {
                const char *s = json_object_to_json_string_ext(reply->parameters, JSON_C_TO_STRING_PLAIN);
                if (asprintf(&description, "snapsetd answered %s with an error this snapsetctl does not know: %s %s",
                             method, reply->error, strempty(s)) < 0)
                        description = NULL;
        }
        if (!description) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }

        if (arg_json != JSON_OFF)
                print_error_json(reply->error, reply->parameters, description, status);
        if (streq(reply->error, VARLINK_ERROR_PERMISSION_DENIED))
                log_code_line(code_info_of_error(reply->error));
        log_error_escaped(description);
        return status;
}

/* The call itself failed: no reply, or one that is not varlink. */
static int report_exchange_failure(const char *method, int r) {
        switch (r) {
        case -ECONNRESET:
        case -EPIPE:
                log_error("snapsetd closed the connection without answering %s: it may have been "
                          "restarted, crashed, or refused the connection (see 'journalctl -u snapsetd.service').",
                          method);
                return SNAPSET_EXIT_PROTOCOL;
        case -EPROTO:
        case -EBADMSG:
                log_error("snapsetd sent a reply to %s that is not valid varlink; "
                          "is %s the socket of snapsetd?", method, arg_socket);
                return SNAPSET_EXIT_PROTOCOL;
        case -EMSGSIZE:
                log_error("The reply to %s is larger than the limit of %u MiB.",
                          method, VARLINK_MESSAGE_MAX / 1024 / 1024);
                return SNAPSET_EXIT_PROTOCOL;
        case -ENOMEM:
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        default:
                log_error_errno(r, "Calling %s failed: %m", method);
                return SNAPSET_EXIT_FAILURE;
        }
}

/* ---------------------------------------------------------------- calls */

int connection_open(VarlinkStream **ret) {
        const VssCodeInfo *denied = vss_code_info(E_ACCESSDENIED);
        int r;

        r = varlink_client_connect(arg_socket, ret);
        if (r >= 0)
                return 0;

        switch (r) {
        case -EACCES:
        case -EPERM:
                log_code_line(denied);
                log_error_errno(r, "cannot open the socket of snapsetd at %s: %m", arg_socket);
                return denied->exit_status;
        case -ENOENT:
        case -ECONNREFUSED:
                log_error_errno(r, "cannot reach snapsetd at %s: %m (is snapsetd.socket running? "
                                "try 'systemctl start snapsetd.socket')", arg_socket);
                return SNAPSET_EXIT_UNAVAILABLE;
        case -ENOMEM:
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        default:
                log_error_errno(r, "cannot reach snapsetd at %s: %m", arg_socket);
                return SNAPSET_EXIT_UNAVAILABLE;
        }
}

int connection_call(VarlinkStream *s, const char *method, json_object *parameters,
                    json_object **ret_parameters) {
        _cleanup_reply_ VarlinkReply reply = {};
        int r;

        r = varlink_client_call(s, method, parameters, false, &reply);
        if (r < 0)
                return report_exchange_failure(method, r);
        if (reply.error)
                return report_error_reply(method, &reply);

        *ret_parameters = json_object_get(reply.parameters);
        return 0;
}

int connection_call_once(const char *method, json_object *parameters, json_object **ret_parameters) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        int status;

        status = connection_open(&s);
        if (status != 0)
                return status;
        return connection_call(s, method, parameters, ret_parameters);
}

int connection_call_more(VarlinkStream *s, const char *method, json_object *parameters,
                         ReplyHandler on_reply, void *userdata) {
        _cleanup_reply_ VarlinkReply reply = {};
        int r;

        r = varlink_client_call(s, method, parameters, true, &reply);
        for (;;) {
                int status;

                if (r < 0)
                        return report_exchange_failure(method, r);
                if (reply.error)
                        return report_error_reply(method, &reply);

                status = on_reply(reply.parameters, userdata);
                if (status != 0 || !reply.continues)
                        return status;

                varlink_reply_done(&reply);
                reply = (VarlinkReply) {};
                r = varlink_client_next(s, &reply);
        }
}

int connection_send_oneway(VarlinkStream *s, const char *method, json_object *parameters) {
        int r;

        r = varlink_client_send_oneway(s, method, parameters);
        if (r < 0)
                return report_exchange_failure(method, r);
        return 0;
}
