/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <time.h>

#include "connection.h"
#include "log.h"
#include "output.h"
#include "parse.h"
#include "snapsetctl.h"
#include "time-util.h"
#include "vss-error.h"

#define VARLINK_SERVICE_PREFIX "org.varlink.service."

void varlink_reply_donep(VarlinkReply *r) {
        varlink_reply_done(r);
}

int exit_status_from_varlink_error(const char *error) {
        VssCode code = vss_code_from_varlink_error(error);

        if (code >= 0)
                return vss_code_info(code)->exit_status;
        if (streq(error, VARLINK_ERROR_PERMISSION_DENIED))
                return vss_code_info(E_ACCESSDENIED)->exit_status;
        /* Too many connections open: a temporary failure, like a timeout; retry later. */
        if (streq(error, SNAPSET_MANAGER_INTERFACE ".TooManyConnections"))
                return SNAPSETCTL_EXIT_TIMEOUT;
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

int connection_report_error(const char *method, const VarlinkReply *reply) {
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

/* "30 s", "0.5 s" */
static void format_seconds(char *buf, size_t size, uint64_t usec) {
        snprintf(buf, size, "%g s", (double) usec / (double) USEC_PER_SEC);
}

/* The call itself failed: no reply, or one that is not varlink. */
static int report_exchange_failure(const char *method, int r, uint64_t timeout) {
        char seconds[32];

        switch (r) {
        case -ETIMEDOUT:
                /* The daemon got the call and may still carry it out: say so, and how to look. */
                format_seconds(seconds, sizeof seconds, timeout);
                log_error("snapsetd did not answer %s within %s.", method, seconds);
                log_error("It may be busy or hung, and may still complete the call: see 'snapsetctl status' "
                          "and 'journalctl -u snapsetd.service'. --timeout=SEC waits longer, 0 without limit.");
                return SNAPSETCTL_EXIT_TIMEOUT;
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

bool connection_reply_is(const VarlinkReply *reply, VssCode code) {
        return reply->error && streq_ptr(reply->error, vss_code_varlink_error(code));
}

bool connection_error_names(const VarlinkReply *reply, const char *text) {
        static const char *const keys[] = { "volume", "snapshotId", "setId" };
        const char *message = reply_get_string(reply->parameters, "message");

        if (message && strstr(message, text))
                return true;
        for (size_t i = 0; i < ELEMENTSOF(keys); i++)
                if (streq_ptr(reply_get_string(reply->parameters, keys[i]), text))
                        return true;
        return false;
}

json_object *parameters_new_string(const char *key, const char *value) {
        _cleanup_(json_object_putp) json_object *p = json_object_new_object();
        json_object *v = json_object_new_string(value);

        if (!p || !v || json_object_object_add(p, key, v) < 0) {
                json_object_put(v);
                return NULL;
        }
        return TAKE_PTR(p);
}

/* ---------------------------------------------------------------- the exchange, bounded in time */

/* The varlink client of common/ waits without limit; snapsetctl does its own waiting, with poll()
 * and a deadline, on a non-blocking socket, and uses only the framing and message layers. */

/* How many volumes the calls that follow concern (connection_expect_volumes()). */
static size_t expected_volumes = 1;

void connection_expect_volumes(size_t n) {
        expected_volumes = n;
}

static uint64_t timeout_for(const char *method) {
        return arg_timeout_usec != USEC_INFINITY ? arg_timeout_usec
                                                 : method_default_timeout_usec(method, expected_volumes);
}

/* 0 for no limit, else the monotonic time by which the next reply must have come. */
static uint64_t deadline_after(uint64_t timeout) {
        return timeout == 0 ? 0 : now_monotonic_usec() + timeout;
}

/* Waits until fd is ready for events (or has hung up: the read or write that follows says how),
 * or until deadline (0: none). Returns 0, -ETIMEDOUT, or a negative errno. */
static int fd_wait_until(int fd, short events, uint64_t deadline) {
        for (;;) {
                struct pollfd p = { .fd = fd, .events = events };
                int timeout_ms = -1, k;

                if (deadline > 0) {
                        uint64_t now = now_monotonic_usec(), left;

                        if (now >= deadline)
                                return -ETIMEDOUT;
                        left = (deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC;
                        timeout_ms = left > INT_MAX ? INT_MAX : (int) left;
                }
                k = poll(&p, 1, timeout_ms);
                if (k < 0 && errno != EINTR)
                        return -errno;
                if (k > 0)
                        return 0;
                /* Interrupted, or poll's timeout: look at the clock again. */
        }
}

static int exchange_send(VarlinkStream *s, const char *method, json_object *parameters,
                         bool oneway, bool more, uint64_t deadline) {
        _cleanup_(json_object_putp) json_object *msg = NULL;
        int r;

        if (parameters && !json_object_is_type(parameters, json_type_object))
                return -EINVAL;
        msg = varlink_message_call(method, parameters, oneway, more);
        if (!msg)
                return -ENOMEM;
        r = varlink_stream_enqueue(s, msg);
        if (r < 0)
                return r;

        for (;;) {
                r = varlink_stream_flush(s);
                if (r != 0)
                        return r < 0 ? r : 0;
                r = fd_wait_until(varlink_stream_fd(s), POLLOUT, deadline);
                if (r < 0)
                        return r;
        }
}

/* Waits for one reply. continues is accepted only in the replies of a "more" call. */
static int exchange_receive(VarlinkStream *s, bool more, uint64_t deadline, VarlinkReply *ret) {
        _cleanup_(json_object_putp) json_object *msg = NULL;
        VarlinkReply reply;
        int r;

        for (;;) {
                r = varlink_stream_next(s, &msg);
                if (r == -EBADMSG)
                        return -EPROTO;
                if (r < 0)
                        return r;
                if (r > 0)
                        break;

                r = fd_wait_until(varlink_stream_fd(s), POLLIN, deadline);
                if (r < 0)
                        return r;
                r = varlink_stream_read(s);
                if (r == 0)
                        return -ECONNRESET;
                if (r < 0 && r != -EAGAIN)
                        return r;
        }

        r = varlink_reply_parse(msg, &reply);
        if (r < 0)
                return r;
        if (reply.continues && !more) {
                varlink_reply_done(&reply);
                return -EPROTO;
        }
        *ret = reply;
        return 0;
}

/* ---------------------------------------------------------------- calls */

int connection_open(VarlinkStream **ret) {
        const VssCodeInfo *denied = vss_code_info(E_ACCESSDENIED);
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        int r, flags;

        r = varlink_client_connect(arg_socket, &s);
        switch (r) {
        case 0:
                break;
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

        /* Non-blocking, so that no read or write can outlast the timeout. */
        flags = fcntl(varlink_stream_fd(s), F_GETFL);
        if (flags < 0 || fcntl(varlink_stream_fd(s), F_SETFL, flags | O_NONBLOCK) < 0) {
                log_error_errno(errno, "Cannot make the connection to snapsetd non-blocking: %m");
                return SNAPSET_EXIT_FAILURE;
        }

        *ret = TAKE_PTR(s);
        return 0;
}

int connection_call_reply(VarlinkStream *s, const char *method, json_object *parameters,
                          VarlinkReply *ret_reply) {
        uint64_t timeout = timeout_for(method), deadline = deadline_after(timeout);
        int r;

        r = exchange_send(s, method, parameters, false, false, deadline);
        if (r >= 0)
                r = exchange_receive(s, false, deadline, ret_reply);
        if (r < 0)
                return report_exchange_failure(method, r, timeout);
        return 0;
}

int connection_call(VarlinkStream *s, const char *method, json_object *parameters,
                    json_object **ret_parameters) {
        _cleanup_reply_ VarlinkReply reply = {};
        int status;

        status = connection_call_reply(s, method, parameters, &reply);
        if (status != 0)
                return status;
        if (reply.error)
                return connection_report_error(method, &reply);

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
        uint64_t timeout = timeout_for(method);
        int r;

        r = exchange_send(s, method, parameters, false, true, deadline_after(timeout));
        if (r < 0)
                return report_exchange_failure(method, r, timeout);

        for (;;) {
                _cleanup_reply_ VarlinkReply reply = {};
                int status;

                /* The limit is for each reply: a long list keeps coming as long as replies do. */
                r = exchange_receive(s, true, deadline_after(timeout), &reply);
                if (r < 0)
                        return report_exchange_failure(method, r, timeout);
                if (reply.error)
                        return connection_report_error(method, &reply);

                status = on_reply(reply.parameters, reply.continues, userdata);
                if (status != 0 || !reply.continues)
                        return status;
        }
}

int connection_send_oneway(VarlinkStream *s, const char *method, json_object *parameters) {
        uint64_t timeout = timeout_for(method);
        int r;

        r = exchange_send(s, method, parameters, true, false, deadline_after(timeout));
        if (r < 0)
                return report_exchange_failure(method, r, timeout);
        return 0;
}
