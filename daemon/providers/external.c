/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "json-util.h"
#include "coordinator.h"
#include "config.h"
#include "external.h"
#include "ini.h"
#include "json-dispatch.h"
#include "log.h"
#include "set-events.h"
#include "snapshot-set.h"
#include "time-util.h"
#include "varlink.h"

static const char provider_idl[] =
#include "io.snapset.Provider.varlink.inc"
;

const char *external_interface_description(void) {
        return provider_idl;
}

/* ---------------------------------------------------------------- provider files */

bool external_provider_name_is_valid(const char *name) {
        size_t l = name ? strlen(name) : 0;

        if (l == 0 || l > 63 || name[0] == '.' || name[0] == '-')
                return false;
        for (size_t i = 0; i < l; i++)
                if (!(isalnum((unsigned char) name[i]) || strchr("-_.", name[i])))
                        return false;
        return true;
}

void external_provider_config_done(ExternalProviderConfig *c) {
        free(c->name);
        free(c->path);
        free(c->executable);
        for (size_t i = 0; i < c->n_settings; i++) {
                free(c->setting_keys[i]);
                free(c->setting_values[i]);
        }
        free(c->setting_keys);
        free(c->setting_values);
        *c = (ExternalProviderConfig) {};
}

/* Strict decimal in [min, max]. */
static int parse_bounded(const char *s, unsigned long min, unsigned long max, unsigned long *ret) {
        unsigned long v = 0;

        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        for (; *s; s++) {
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                v = v * 10 + (unsigned long) (*s - '0');
                if (v > max)
                        return -ERANGE;
        }
        if (v < min)
                return -ERANGE;
        *ret = v;
        return 0;
}

static bool setting_key_is_valid(const char *k) {
        if (!*k)
                return false;
        for (; *k; k++)
                if (!(isalnum((unsigned char) *k) || strchr("-_.", *k)))
                        return false;
        return true;
}

static int config_set_setting(ExternalProviderConfig *c, const char *k, const char *v) {
        char **keys, **values, *kk, *vv;

        for (size_t i = 0; i < c->n_settings; i++)
                if (streq(c->setting_keys[i], k)) {
                        if (!(vv = strdup(v)))
                                return -ENOMEM;
                        free(c->setting_values[i]);
                        c->setting_values[i] = vv;
                        return 0;
                }
        keys = reallocarray(c->setting_keys, c->n_settings + 1, sizeof(char *));
        if (!keys)
                return -ENOMEM;
        c->setting_keys = keys;
        values = reallocarray(c->setting_values, c->n_settings + 1, sizeof(char *));
        if (!values)
                return -ENOMEM;
        c->setting_values = values;
        kk = strdup(k);
        vv = strdup(v);
        if (!kk || !vv) {
                free(kk);
                free(vv);
                return -ENOMEM;
        }
        c->setting_keys[c->n_settings] = kk;
        c->setting_values[c->n_settings] = vv;
        c->n_settings++;
        return 0;
}

/* What a provider file's lines fill in, and where Executable= was set, to point at that line
 * when the program turns out not to be executable. */
typedef struct ProviderFileState {
        ExternalProviderConfig *config;
        unsigned executable_line, timeout_line;
} ProviderFileState;

static int provider_file_parse_line(const char *section, const char *k, const char *v, unsigned line,
                                    void *userdata, char **reterr_message) {
        ProviderFileState *s = userdata;
        ExternalProviderConfig *c = s->config;
        unsigned long n;

        if (!k) {
                if (streq(section, "Provider") || streq(section, "Settings"))
                        return 0;
                return ini_error(reterr_message, "unknown section [%s] (known: [Provider], [Settings])", section);
        }

        if (streq(section, "Settings")) {
                if (!setting_key_is_valid(k))
                        return ini_error(reterr_message, "%s=%s: not a valid setting name "
                                         "(letters, digits, '-', '_', '.')", k, v);
                return config_set_setting(c, k, v);
        }

        if (streq(k, "Executable")) {
                if (v[0] != '/' || strlen(v) >= PATH_MAX)
                        return ini_error(reterr_message, "Executable=%s: not an absolute path", v);
                free(c->executable);
                if (!(c->executable = strdup(v)))
                        return -ENOMEM;
                s->executable_line = line;
        } else if (streq(k, "Priority")) {
                if (parse_bounded(v, 0, EXTERNAL_PRIORITY_MAX, &n) < 0)
                        return ini_error(reterr_message, "Priority=%s: not a number between 0 and %d",
                                         v, EXTERNAL_PRIORITY_MAX);
                c->priority = (int) n;
        } else if (streq(k, "Timeout")) {
                if (parse_bounded(v, 1, EXTERNAL_TIMEOUT_SEC_MAX, &n) < 0)
                        return ini_error(reterr_message, "Timeout=%s: not a number of seconds "
                                         "between 1 and %u", v, EXTERNAL_TIMEOUT_SEC_MAX);
                c->timeout_sec = (unsigned) n;
                s->timeout_line = line;
        } else
                return ini_error(reterr_message, "%s=%s: unknown key in section [Provider] "
                                 "(known: Executable, Priority, Timeout)", k, v);
        return 0;
}

int external_provider_config_parse(FILE *f, const char *path, const char *name,
                                   ExternalProviderConfig *ret, char **reterr_message) {
        _cleanup_(external_provider_config_done) ExternalProviderConfig c = {
                .priority = -1,
                .timeout_sec = EXTERNAL_DEFAULT_TIMEOUT_SEC,
        };
        ProviderFileState s = { .config = &c };
        uint64_t watchdog;
        int r;

        if (!external_provider_name_is_valid(name))
                return ini_error(reterr_message, "%s: '%s' is not a valid provider name (letters, digits, "
                                 "'-', '_' and '.', at most 63)", path, name);
        c.name = strdup(name);
        c.path = strdup(path);
        if (!c.name || !c.path)
                return -ENOMEM;

        r = ini_parse(f, path, provider_file_parse_line, &s, reterr_message);
        if (r < 0)
                return r;

        if (!c.executable)
                return ini_error(reterr_message, "%s: Executable= is missing in [Provider]", path);
        if (c.priority < 0)
                return ini_error(reterr_message, "%s: Priority= is missing in [Provider]", path);
        if (access(c.executable, X_OK) < 0)
                return ini_error(reterr_message, "%s:%u: Executable=%s: cannot execute it: %s", path,
                                 s.executable_line, c.executable, strerror(errno));
        /* One call may keep the event loop busy for this long (config_check() in config.c). */
        watchdog = config_watchdog_usec();
        if (watchdog > 0 && (uint64_t) c.timeout_sec * USEC_PER_SEC * 2 >= watchdog)
                return ini_error(reterr_message, "%s:%u: Timeout=%u: must stay below half of snapsetd.service's "
                                 "WatchdogSec= (%llu s), or the watchdog kills snapsetd while it waits for the "
                                 "provider", path, s.timeout_line, c.timeout_sec,
                                 (unsigned long long) (watchdog / USEC_PER_SEC));

        *ret = c;
        c = (ExternalProviderConfig) {};
        return 0;
}

/* ---------------------------------------------------------------- methods and replies */

static const char *const method_names[_EXTERNAL_METHOD_MAX] = {
        [EXTERNAL_ON_LOAD] = "OnLoad",
        [EXTERNAL_ON_UNLOAD] = "OnUnload",
        [EXTERNAL_IS_VOLUME_SUPPORTED] = "IsVolumeSupported",
        [EXTERNAL_BEGIN_PREPARE_SNAPSHOT] = "BeginPrepareSnapshot",
        [EXTERNAL_END_PREPARE_SNAPSHOTS] = "EndPrepareSnapshots",
        [EXTERNAL_PRE_COMMIT_SNAPSHOTS] = "PreCommitSnapshots",
        [EXTERNAL_HOLD_WRITES] = "HoldWrites",
        [EXTERNAL_COMMIT_SNAPSHOTS] = "CommitSnapshots",
        [EXTERNAL_RELEASE_WRITES] = "ReleaseWrites",
        [EXTERNAL_POST_COMMIT_SNAPSHOTS] = "PostCommitSnapshots",
        [EXTERNAL_ABORT_SNAPSHOTS] = "AbortSnapshots",
        [EXTERNAL_DELETE_SNAPSHOT] = "DeleteSnapshot",
        [EXTERNAL_ACTIVATE_SNAPSHOT] = "ActivateSnapshot",
        [EXTERNAL_RECOVER] = "Recover",
        [EXTERNAL_QUERY] = "Query",
        [EXTERNAL_QUERY_SNAPSHOTS] = "QuerySnapshots",
        [EXTERNAL_REVERT_SNAPSHOT] = "RevertSnapshot",
        [EXTERNAL_REVERT_PROGRESS] = "RevertProgress",
        [EXTERNAL_BREAK_SNAPSHOT] = "BreakSnapshot",
};

/* The methods a provider may leave out: it answers MethodNotFound or MethodNotImplemented. */
static bool method_is_optional(ExternalMethod m) {
        return m == EXTERNAL_QUERY_SNAPSHOTS || m == EXTERNAL_REVERT_SNAPSHOT || m == EXTERNAL_REVERT_PROGRESS ||
               m == EXTERNAL_BREAK_SNAPSHOT;
}

const char *external_method_to_string(ExternalMethod m) {
        return m >= 0 && m < _EXTERNAL_METHOD_MAX ? method_names[m] : NULL;
}

_printf_(2, 3)
static VssCode malformed(ProviderResult *res, const char *format, ...) {
        char what[400];
        va_list ap;

        va_start(ap, format);
        vsnprintf(what, sizeof what, format, ap);
        va_end(ap);
        res->hresult = 0;
        res->error = EPROTO;
        snprintf(res->message, sizeof res->message, "sent a malformed reply: %s", what);
        return VSS_E_UNEXPECTED_PROVIDER_ERROR;
}

/* Explains a json_dispatch() failure. */
static VssCode malformed_dispatch(ProviderResult *res, const char *what, int r, const char *bad) {
        if (r == -EADDRNOTAVAIL)
                return malformed(res, "%s: '%s' is not in io.snapset.Provider", what, strna(bad));
        if (r == -ENXIO)
                return malformed(res, "%s: '%s' is missing", what, strna(bad));
        if (r == -ERANGE)
                return malformed(res, "%s: '%s' is out of range", what, strna(bad));
        return malformed(res, "%s: '%s' has the wrong type", what, strna(bad));
}

/* snapshots may be NULL with n > 0 (QuerySnapshots counts them, without a list). */
static size_t snapshot_index(ProviderSnapshot *const *snapshots, size_t n, const char *id) {
        for (size_t i = 0; snapshots && id && i < n; i++)
                if (snapshots[i]->snapshot && strcasecmp(snapshots[i]->snapshot->id, id) == 0)
                        return i;
        return SIZE_MAX;
}

static VssCode check_failed(json_object *parameters, ProviderSnapshot *const *snapshots, size_t n_snapshots,
                            ProviderResult *res) {
        struct { int64_t hresult; char *message; char *snapshot_id; } f = { .hresult = -1 };
        static const JsonDispatch table[] = {
                { "hresult",    JSON_DISPATCH_INT64,  offsetof(typeof(f), hresult),     JSON_MANDATORY },
                { "message",    JSON_DISPATCH_STRING, offsetof(typeof(f), message),     JSON_MANDATORY },
                { "snapshotId", JSON_DISPATCH_STRING, offsetof(typeof(f), snapshot_id), JSON_NULLABLE },
                {}
        };
        const char *bad = NULL;
        VssCode code;
        uint32_t hresult;
        int r;

        r = json_dispatch(parameters, table, &f, &bad);
        if (r < 0) {
                code = malformed_dispatch(res, "the error io.snapset.Provider.Failed", r, bad);
                json_dispatch_done(table, &f);
                return code;
        }
        /* HRESULTs are 32 bits; accept them as unsigned (2147754783) or signed (-2147212513), both 0x8004231F. */
        if (f.hresult < INT32_MIN || f.hresult > (int64_t) UINT32_MAX) {
                json_dispatch_done(table, &f);
                return malformed(res, "the error io.snapset.Provider.Failed: hresult %" PRIi64 " is not a 32-bit HRESULT",
                                 f.hresult);
        }
        hresult = (uint32_t) f.hresult;
        if (hresult == 0) {
                json_dispatch_done(table, &f);
                return malformed(res, "the error io.snapset.Provider.Failed carries S_OK");
        }

        code = vss_code_from_hresult(hresult);
        res->hresult = hresult;
        res->error = 0;
        if (code == VSS_E_UNEXPECTED_PROVIDER_ERROR)
                /* The one code that the daemon reports for what it finds wrong with a provider
                 * (coordinator_check_code()): say that it came from the provider itself. */
                snprintf(res->message, sizeof res->message,
                         "returned VSS_E_UNEXPECTED_PROVIDER_ERROR (0x%08X) itself, which a provider may not "
                         "return: %s", hresult, f.message);
        else
                snprintf(res->message, sizeof res->message, "%s", f.message);
        if (f.snapshot_id)
                res->failed = snapshot_index(snapshots, n_snapshots, f.snapshot_id);
        json_dispatch_done(table, &f);
        return code;
}

/* What each method's reply may carry. */
static VssCode check_parameters(ExternalMethod m, json_object *p, ProviderSnapshot *const *snapshots,
                                size_t n_snapshots, ProviderResult *res) {
        const char *bad = NULL;
        int r;

        switch (m) {
        case EXTERNAL_ON_LOAD: {
                struct { char *version; } v = {};
                static const JsonDispatch t[] = {
                        { "version", JSON_DISPATCH_STRING, 0, JSON_MANDATORY },
                        {}
                };
                r = json_dispatch(p, t, &v, &bad);
                json_dispatch_done(t, &v);
                break;
        }
        case EXTERNAL_IS_VOLUME_SUPPORTED: {
                struct { bool supported; char *reason; } v = {};
                static const JsonDispatch t[] = {
                        { "supported", JSON_DISPATCH_BOOL,   offsetof(typeof(v), supported), JSON_MANDATORY },
                        { "reason",    JSON_DISPATCH_STRING, offsetof(typeof(v), reason),    JSON_NULLABLE },
                        {}
                };
                r = json_dispatch(p, t, &v, &bad);
                json_dispatch_done(t, &v);
                break;
        }
        case EXTERNAL_BEGIN_PREPARE_SNAPSHOT: {
                json_object *data = NULL;
                static const JsonDispatch t[] = {
                        { "providerData", JSON_DISPATCH_OBJECT, 0, JSON_NULLABLE },
                        {}
                };
                r = json_dispatch(p, t, &data, &bad);
                break;
        }
        case EXTERNAL_ACTIVATE_SNAPSHOT: {
                char *device = NULL;
                static const JsonDispatch t[] = {
                        { "device", JSON_DISPATCH_STRING, 0, JSON_NULLABLE },
                        {}
                };
                r = json_dispatch(p, t, &device, &bad);
                free(device);
                break;
        }
        case EXTERNAL_QUERY: {
                char *status = NULL;
                static const JsonDispatch t[] = {
                        { "status", JSON_DISPATCH_STRING, 0, JSON_MANDATORY },
                        {}
                };
                r = json_dispatch(p, t, &status, &bad);
                if (r >= 0 && !streq(status, "valid") && !streq(status, "invalid")) {
                        VssCode code = malformed(res, "status '%s' is neither 'valid' nor 'invalid'", status);
                        free(status);
                        return code;
                }
                free(status);
                break;
        }
        case EXTERNAL_REVERT_SNAPSHOT:
        case EXTERNAL_REVERT_PROGRESS: {
                struct { char *state; double percent; } v = { .percent = -1 };
                static const JsonDispatch t[] = {
                        { "state",   JSON_DISPATCH_STRING, offsetof(typeof(v), state),   JSON_MANDATORY },
                        { "percent", JSON_DISPATCH_DOUBLE, offsetof(typeof(v), percent), JSON_NULLABLE },
                        {}
                };
                VssCode code = S_OK;

                r = json_dispatch(p, t, &v, &bad);
                if (r >= 0 && !streq(v.state, "done") && !streq(v.state, "merging") && !streq(v.state, "pending"))
                        code = malformed(res, "state '%s' is none of 'done', 'merging', 'pending'", v.state);
                else if (r >= 0 && !(v.percent >= 0 && v.percent <= 100) && json_object_object_get(p, "percent") &&
                         !json_object_is_type(json_object_object_get(p, "percent"), json_type_null))
                        /* Written so that NaN fails it too. */
                        code = malformed(res, "percent %g is not between 0 and 100", v.percent);
                json_dispatch_done(t, &v);
                if (code != S_OK)
                        return code;
                break;
        }
        case EXTERNAL_BREAK_SNAPSHOT: {
                char *device = NULL;
                static const JsonDispatch t[] = {
                        { "device", JSON_DISPATCH_STRING, 0, JSON_MANDATORY },
                        {}
                };
                r = json_dispatch(p, t, &device, &bad);
                if (r >= 0 && device[0] != '/') {
                        VssCode code = malformed(res, "device '%s' is not an absolute path", device);
                        free(device);
                        return code;
                }
                free(device);
                break;
        }
        case EXTERNAL_QUERY_SNAPSHOTS: {
                json_object *a = NULL;
                static const JsonDispatch t[] = {
                        { "statuses", JSON_DISPATCH_ARRAY, 0, JSON_MANDATORY },
                        {}
                };
                r = json_dispatch(p, t, &a, &bad);
                if (r < 0)
                        break;
                /* One status per snapshot asked about (n_snapshots is that count here). */
                if (json_object_array_length(a) != n_snapshots)
                        return malformed(res, "%zu statuses for %zu snapshots", json_object_array_length(a), n_snapshots);
                for (size_t i = 0; i < n_snapshots; i++) {
                        const char *st = json_object_get_string(json_object_array_get_idx(a, i));

                        if (!json_object_is_type(json_object_array_get_idx(a, i), json_type_string) ||
                            (!streq(st, "valid") && !streq(st, "invalid")))
                                return malformed(res, "status %zu is neither 'valid' nor 'invalid'", i);
                }
                return S_OK;
        }
        case EXTERNAL_POST_COMMIT_SNAPSHOTS: {
                json_object *a = NULL;
                static const JsonDispatch t[] = {
                        { "snapshots", JSON_DISPATCH_ARRAY, 0, JSON_MANDATORY },
                        {}
                };
                r = json_dispatch(p, t, &a, &bad);
                if (r < 0)
                        break;
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        struct { char *id; char *device; json_object *data; } s = {};
                        static const JsonDispatch st[] = {
                                { "snapshotId",   JSON_DISPATCH_STRING, offsetof(typeof(s), id),     JSON_MANDATORY },
                                { "device",       JSON_DISPATCH_STRING, offsetof(typeof(s), device), JSON_NULLABLE },
                                { "providerData", JSON_DISPATCH_OBJECT, offsetof(typeof(s), data),   JSON_NULLABLE },
                                {}
                        };
                        char what[64];
                        VssCode code = S_OK;

                        snprintf(what, sizeof what, "snapshots[%zu]", i);
                        r = json_dispatch(json_object_array_get_idx(a, i), st, &s, &bad);
                        if (r == -ENOMEM) {
                                json_dispatch_done(st, &s);
                                return malformed(res, "out of memory reading it");
                        }
                        if (r < 0)
                                code = malformed_dispatch(res, what, r, bad);
                        else if (snapshot_index(snapshots, n_snapshots, s.id) == SIZE_MAX)
                                code = malformed(res, "%s: snapshot %s is not one of this provider's in the set",
                                                 what, s.id);
                        else if (s.device && s.device[0] != '/')
                                code = malformed(res, "%s: device '%s' is not an absolute path", what, s.device);
                        json_dispatch_done(st, &s);
                        if (code != S_OK)
                                return code;
                }
                return S_OK;
        }
        default: {
                /* The methods that return nothing: nothing is what they may return. */
                static const JsonDispatch t[] = { {} };
                r = json_dispatch(p, t, &(char) {0}, &bad);
                break;
        }
        }
        if (r == -ENOMEM)
                return malformed(res, "out of memory reading it");
        if (r < 0)
                return malformed_dispatch(res, "the reply", r, bad);
        return S_OK;
}

VssCode external_reply_check(ExternalMethod m, json_object *msg, ProviderSnapshot *const *snapshots,
                             size_t n_snapshots, json_object **ret_parameters, ProviderResult *res) {
        VarlinkReply reply = {};
        VssCode code;

        if (varlink_reply_parse(msg, &reply) < 0)
                return malformed(res, "not a varlink reply (%s)",
                                 json_object_to_json_string_ext(msg, JSON_C_TO_STRING_PLAIN));
        if (reply.continues)
                code = malformed(res, "'continues' in the reply to a call that did not ask for more");
        else if (method_is_optional(m) && (streq_ptr(reply.error, "org.varlink.service.MethodNotFound") ||
                                           streq_ptr(reply.error, "org.varlink.service.MethodNotImplemented")))
                /* A provider without it (older, or declaring it without an implementation): no
                 * parameters, and the caller does without (Query instead of QuerySnapshots,
                 * VSS_E_NOT_SUPPORTED for a revert or a break). */
                code = S_OK;
        else if (reply.error && !streq(reply.error, EXTERNAL_INTERFACE ".Failed"))
                code = malformed(res, "the error %s, where only " EXTERNAL_INTERFACE ".Failed is allowed",
                                 reply.error);
        else if (reply.error)
                code = check_failed(reply.parameters, snapshots, n_snapshots, res);
        else
                code = check_parameters(m, reply.parameters, snapshots, n_snapshots, res);
        if (code == S_OK && !reply.error && ret_parameters)
                *ret_parameters = json_object_get(reply.parameters);
        varlink_reply_done(&reply);
        return code;
}

/* ---------------------------------------------------------------- the running providers */

typedef enum ExternalState {
        EXTERNAL_STATE_LOADED,     /* running, OnLoad answered */
        EXTERNAL_STATE_FAILED,     /* not running: started again at the next use */
        EXTERNAL_STATE_UNLOADED,   /* stopped: at daemon stop, or after EXTERNAL_MAX_FAILURES */
        _EXTERNAL_STATE_MAX,
} ExternalState;

static const char *const state_names[_EXTERNAL_STATE_MAX] = {
        [EXTERNAL_STATE_LOADED] = "loaded",
        [EXTERNAL_STATE_FAILED] = "failed",
        [EXTERNAL_STATE_UNLOADED] = "unloaded",
};

typedef struct ExternalProvider {
        Provider provider;            /* first: what provider_register() and ps->provider point at */
        ExternalProviderConfig config;
        ExternalState state;
        char last_failure[512];       /* what happened the last time it failed */
        unsigned failures;            /* crashes, hangs, protocol errors, failed OnLoads in a row */
        pid_t pid;
        VarlinkStream *stream;
        int stderr_fd;
        char stderr_buf[2048];        /* an incomplete line */
        size_t stderr_len;
        char *version;
        pid_t no_query_snapshots;     /* the process that answered QuerySnapshots with MethodNotFound
                                         (a new one may be a newer program) */
} ExternalProvider;

static ExternalProvider **providers;
static size_t n_providers;
static const ProviderSettings *provider_settings;
static int epoll_fd = -EBADF;

static const ProviderOps external_ops;

static ExternalProvider *external_of(const Provider *p) {
        if (!p || p->ops != &external_ops)
                return NULL;
        return (ExternalProvider *) p;   /* provider is the first member */
}

static ExternalProvider *external_by_name(const char *name) {
        return external_of(provider_by_name(name));
}

bool external_provider_info(const Provider *p, const char **ret_executable, const char **ret_state) {
        ExternalProvider *ep = external_of(p);

        if (!ep)
                return false;
        *ret_executable = ep->config.executable;
        *ret_state = state_names[ep->state];
        return true;
}

/* Inside the freeze window nothing may be written anywhere, and the log is held: a provider's
 * lines are queued by log_full() like every other message and written after the thaw. */
static void stderr_line(ExternalProvider *ep, char *line) {
        int level = LOG_INFO;
        size_t l = strlen(line);

        if (l > 0 && line[l - 1] == '\r')
                line[--l] = 0;
        /* sd-daemon(3) priority prefixes, as under systemd. */
        if (line[0] == '<' && line[1] >= '0' && line[1] <= '7' && line[2] == '>') {
                level = line[1] - '0';
                line += 3;
        }
        if (!*line)
                return;
        log_full(level, "Provider '%s': %s", ep->provider.name, line);
}

static void stderr_flush_partial(ExternalProvider *ep) {
        if (ep->stderr_len == 0)
                return;
        ep->stderr_buf[ep->stderr_len] = 0;
        stderr_line(ep, ep->stderr_buf);
        ep->stderr_len = 0;
}

static void stderr_close(ExternalProvider *ep) {
        if (ep->stderr_fd < 0)
                return;
        if (epoll_fd >= 0)
                (void) epoll_ctl(epoll_fd, EPOLL_CTL_DEL, ep->stderr_fd, NULL);
        ep->stderr_fd = safe_close(ep->stderr_fd);
}

/* Reads what is there (the pipe is non-blocking) and logs every complete line; a line longer than
 * the buffer is logged in pieces. final: the provider is gone, log an unfinished line too. */
static void stderr_drain(ExternalProvider *ep, bool final) {
        while (ep->stderr_fd >= 0) {
                ssize_t n;
                char *nl;

                n = read(ep->stderr_fd, ep->stderr_buf + ep->stderr_len, sizeof ep->stderr_buf - 1 - ep->stderr_len);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n > 0) {
                        ep->stderr_len += (size_t) n;
                        while ((nl = memchr(ep->stderr_buf, '\n', ep->stderr_len))) {
                                size_t used = (size_t) (nl - ep->stderr_buf) + 1;

                                *nl = 0;
                                stderr_line(ep, ep->stderr_buf);
                                memmove(ep->stderr_buf, ep->stderr_buf + used, ep->stderr_len - used);
                                ep->stderr_len -= used;
                        }
                        if (ep->stderr_len == sizeof ep->stderr_buf - 1)
                                stderr_flush_partial(ep);
                        continue;
                }
                if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
                        /* End of file: every writer (the provider and what it started) is gone. */
                        stderr_flush_partial(ep);
                        stderr_close(ep);
                } else if (final)
                        stderr_flush_partial(ep);
                return;
        }
}

static void describe_status(int status, char *buf, size_t n) {
        if (WIFSIGNALED(status))
                snprintf(buf, n, "crashed (killed by signal %i, %s%s)", WTERMSIG(status),
                         strsignal(WTERMSIG(status)), WCOREDUMP(status) ? ", core dumped" : "");
        else if (WIFEXITED(status))
                snprintf(buf, n, "exited with status %i", WEXITSTATUS(status));
        else
                snprintf(buf, n, "stopped");
}

/* Children killed inside the freeze window, not waited for there: one asleep on a frozen
 * filesystem (uninterruptibly) cannot die before the thaw, and the thaw comes after this. They
 * are reaped, without waiting, whenever a provider is started or stopped later. */
static pid_t unreaped[64];

static void reap_unreaped(void) {
        for (size_t i = 0; i < ELEMENTSOF(unreaped); i++)
                if (unreaped[i] > 0 && waitpid(unreaped[i], NULL, WNOHANG) != 0)
                        unreaped[i] = 0;
}

/* Inside the window: no waiting. Returns false if there is no room to remember it (then the
 * caller waits after all: a zombie per provider crash is the lesser evil only up to a point). */
static bool reap_later(pid_t pid) {
        for (size_t i = 0; i < ELEMENTSOF(unreaped); i++)
                if (unreaped[i] <= 0) {
                        unreaped[i] = pid;
                        return true;
                }
        return false;
}

/* Stops the child: closes the connection, SIGKILL to its process group, reaped (inside the
 * freeze window: later, see reap_later()). grace: it is
 * expected to exit by itself (it closed its end, or was told OnUnload), so it gets half a second
 * first — never inside the window, where every millisecond holds writes. If it died of anything
 * but our SIGKILL, *how says how (for the event); else how is left as the caller put it. A
 * provider that crashed is already exiting when its socket reads end-of-file, and the kernel has
 * its exit status by then: the SIGKILL changes nothing for it. */
static void stop_child(ExternalProvider *ep, bool grace, char *how, size_t how_size) {
        reap_unreaped();
        ep->stream = varlink_stream_free(ep->stream);
        if (ep->pid > 0) {
                int status = 0;
                pid_t r = 0;

                if (grace && !log_is_held())
                        for (unsigned i = 0; i < 50 && (r = waitpid(ep->pid, &status, WNOHANG)) == 0; i++)
                                usleep(10000);
                if (r == 0) {
                        (void) kill(-ep->pid, SIGKILL);
                        (void) kill(ep->pid, SIGKILL);
                        /* A provider that crashed or exited is gone within a moment; one asleep
                         * on a frozen filesystem is not, and inside the window it is left to be
                         * reaped later after 50 ms at most. */
                        for (unsigned i = 0; (r = waitpid(ep->pid, &status, WNOHANG)) == 0 && log_is_held() && i < 50; i++)
                                usleep(1000);
                        if (r == 0 && log_is_held() && reap_later(ep->pid))
                                r = -1;   /* not reaped: no status to describe */
                        else
                                while (r == 0 || (r < 0 && errno == EINTR))
                                        r = waitpid(ep->pid, &status, 0);
                }
                if (r > 0 && how && !(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL))
                        describe_status(status, how, how_size);
                ep->pid = 0;
        }
        /* Whatever it wrote before it went. */
        stderr_drain(ep, true);
        stderr_close(ep);
}

/* A crash, a hang or a protocol error: the child is stopped, and started again at the next use,
 * unless this was one failure too many. Inside the window only the state changes: the log line
 * waits for the thaw like everything else (log_* queues). */
static void provider_failed(ExternalProvider *ep, const char *what) {
        snprintf(ep->last_failure, sizeof ep->last_failure, "%s", what);
        if (ep->state == EXTERNAL_STATE_UNLOADED)
                return;   /* being unloaded: nothing to restart */
        ep->failures++;
        if (ep->failures >= EXTERNAL_MAX_FAILURES) {
                ep->state = EXTERNAL_STATE_UNLOADED;
                log_error("Provider '%s' failed %u times in a row (last: it %s); unloading it. Fix it, then "
                          "reload snapsetd (SIGHUP) to try it again.", ep->provider.name, ep->failures, what);
        } else {
                ep->state = EXTERNAL_STATE_FAILED;
                log_warning("Provider '%s' %s; it is started again at its next use.", ep->provider.name, what);
        }
}

static bool window_open(void) {
        return log_is_held();
}

static char **child_environment(const ExternalProvider *ep) {
        char **env = calloc(5, sizeof(char *));

        if (!env)
                return NULL;
        if (asprintf(&env[0], "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin") < 0 ||
            asprintf(&env[1], "SNAPSET_PROVIDER_NAME=%s", ep->provider.name) < 0 ||
            asprintf(&env[2], "SNAPSET_PROVIDER_FD=3") < 0 ||
            asprintf(&env[3], "LANG=C.UTF-8") < 0) {
                for (size_t i = 0; i < 4; i++)
                        free(env[i]);
                free(env);
                return NULL;
        }
        return env;
}

static void environment_free(char **env) {
        for (size_t i = 0; env && env[i]; i++)
                free(env[i]);
        free(env);
}

/* In the child, between fork() and execve(): async-signal-safe calls only. */
_noreturn_ static void child_exec(const char *executable, char **env, int sock, int err) {
        char *argv[] = { (char *) executable, NULL };
        sigset_t none;
        int null, s, e;

        /* The daemon blocks the signals it reads through a signalfd and ignores SIGPIPE; neither
         * may leak into the provider. */
        sigemptyset(&none);
        (void) sigprocmask(SIG_SETMASK, &none, NULL);
        for (int sig = 1; sig < NSIG; sig++)
                if (sig != SIGKILL && sig != SIGSTOP)
                        (void) signal(sig, SIG_DFL);
        /* Its own process group, so that a hung provider is killed with its helpers; and it
         * goes when the daemon goes. */
        (void) setpgid(0, 0);
        (void) prctl(PR_SET_PDEATHSIG, SIGTERM);

        s = fcntl(sock, F_DUPFD_CLOEXEC, 10);
        e = fcntl(err, F_DUPFD_CLOEXEC, 10);
        null = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (s < 0 || e < 0 || null < 0 ||
            dup2(null, STDIN_FILENO) < 0 || dup2(e, STDOUT_FILENO) < 0 || dup2(e, STDERR_FILENO) < 0 ||
            dup2(s, 3) < 0)
                _exit(126);
        (void) close_range(4, ~0U, 0);
        if (chdir("/") < 0)
                _exit(126);
        execve(executable, argv, env);
        dprintf(STDERR_FILENO, "<3>Cannot execute %s: %s\n", executable, strerror(errno));
        _exit(127);
}

static int start_child(ExternalProvider *ep) {
        int sv[2] = { -EBADF, -EBADF }, pipefd[2] = { -EBADF, -EBADF };
        char **env;
        pid_t pid;
        int r;

        env = child_environment(ep);
        if (!env)
                return -ENOMEM;
        if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0 || pipe2(pipefd, O_CLOEXEC) < 0) {
                r = -errno;
                goto fail;
        }
        pid = fork();
        if (pid < 0) {
                r = -errno;
                goto fail;
        }
        if (pid == 0)
                child_exec(ep->config.executable, env, sv[1], pipefd[1]);
        environment_free(env);
        env = NULL;
        sv[1] = safe_close(sv[1]);
        pipefd[1] = safe_close(pipefd[1]);
        ep->pid = pid;

        if (fcntl(sv[0], F_SETFL, O_NONBLOCK) < 0 || fcntl(pipefd[0], F_SETFL, O_NONBLOCK) < 0) {
                r = -errno;
                goto fail_started;
        }
        /* A large pipe, so that a chatty provider does not block on a full pipe between calls. */
        (void) fcntl(pipefd[0], F_SETPIPE_SZ, 1024 * 1024);
        ep->stderr_fd = TAKE_FD(pipefd[0]);
        if (epoll_fd >= 0) {
                struct epoll_event ev = { .events = EPOLLIN, .data.ptr = ep };
                (void) epoll_ctl(epoll_fd, EPOLL_CTL_ADD, ep->stderr_fd, &ev);
        }
        r = varlink_stream_new(TAKE_FD(sv[0]), 0, &ep->stream);
        if (r < 0)
                goto fail_started;
        return 0;

fail_started:
        stop_child(ep, false, NULL, 0);
fail:
        environment_free(env);
        safe_close(sv[0]);
        safe_close(sv[1]);
        safe_close(pipefd[0]);
        safe_close(pipefd[1]);
        return r;
}

/* How a transport failure is put: the reason goes into res->message, completing "it ...". */
static VssCode transport_failure(ExternalProvider *ep, ProviderResult *res, int error, const char *format, ...)
        _printf_(4, 5);

static VssCode transport_failure(ExternalProvider *ep, ProviderResult *res, int error, const char *format, ...) {
        va_list ap;

        res->hresult = 0;
        res->error = error;
        va_start(ap, format);
        vsnprintf(res->message, sizeof res->message, format, ap);
        va_end(ap);
        provider_failed(ep, res->message);
        return VSS_E_UNEXPECTED_PROVIDER_ERROR;
}

/* One call and its reply, with the timeout. The child must be running. */
static VssCode exchange(ExternalProvider *ep, ExternalMethod m, json_object *parameters, uint64_t timeout_usec,
                        ProviderSnapshot *const *snapshots, size_t n_snapshots, json_object **ret_parameters,
                        ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *call = NULL, *reply = NULL, *extra = NULL;
        char method[128], how[256];
        uint64_t deadline = now_monotonic_usec() + timeout_usec;
        VssCode code;
        int r;

        /* Nothing may be waiting: a message nobody asked for would be taken for this reply. */
        r = varlink_stream_read(ep->stream);
        if (r > 0 || varlink_stream_has_partial_input(ep->stream)) {
                stop_child(ep, false, NULL, 0);
                return transport_failure(ep, res, EPROTO, "sent a malformed reply: a message nobody asked for");
        }
        if (r == 0) {
                snprintf(how, sizeof how, "closed its connection");
                stop_child(ep, true, how, sizeof how);
                return transport_failure(ep, res, EPIPE, "%s", how);
        }

        snprintf(method, sizeof method, EXTERNAL_INTERFACE ".%s", external_method_to_string(m));
        call = varlink_message_call(method, parameters, false, false);
        if (!call)
                return E_OUTOFMEMORY;
        r = varlink_stream_enqueue(ep->stream, call);
        if (r < 0) {
                snprintf(res->message, sizeof res->message, "Could not send %s to provider '%s': %s",
                         external_method_to_string(m), ep->provider.name, strerror(-r));
                res->error = -r;
                return r == -ENOMEM ? E_OUTOFMEMORY : E_INVALIDARG;
        }

        for (;;) {
                struct pollfd p[2];
                uint64_t now;
                int timeout_ms;

                r = varlink_stream_flush(ep->stream);
                if (r < 0) {
                        snprintf(how, sizeof how, "closed its connection (%s)", strerror(-r));
                        stop_child(ep, true, how, sizeof how);
                        return transport_failure(ep, res, -r, "%s", how);
                }
                r = varlink_stream_next(ep->stream, &reply);
                if (r == -EBADMSG || r == -EMSGSIZE) {
                        stop_child(ep, false, NULL, 0);
                        return transport_failure(ep, res, EPROTO, "sent a malformed reply: %s",
                                                 r == -EBADMSG ? "not a JSON object" : "larger than 16 MiB");
                }
                if (r < 0)
                        return E_OUTOFMEMORY;
                if (r > 0)
                        break;

                now = now_monotonic_usec();
                if (now >= deadline) {
                        stop_child(ep, false, NULL, 0);
                        return transport_failure(ep, res, ETIMEDOUT, "did not answer within %" PRIu64 " s (killed)",
                                                 (timeout_usec + USEC_PER_SEC - 1) / USEC_PER_SEC);
                }
                timeout_ms = (int) ((deadline - now + USEC_PER_MSEC - 1) / USEC_PER_MSEC);
                p[0] = (struct pollfd) { .fd = varlink_stream_fd(ep->stream),
                                         .events = POLLIN | (varlink_stream_has_output(ep->stream) ? POLLOUT : 0) };
                p[1] = (struct pollfd) { .fd = ep->stderr_fd, .events = POLLIN };
                r = poll(p, ep->stderr_fd >= 0 ? 2 : 1, timeout_ms);
                if (r < 0 && errno != EINTR) {
                        r = -errno;
                        stop_child(ep, false, NULL, 0);
                        return transport_failure(ep, res, -r, "could not be waited for (%s; killed)", strerror(-r));
                }
                if (r <= 0)
                        continue;
                if (ep->stderr_fd >= 0 && p[1].revents)
                        stderr_drain(ep, false);
                if (p[0].revents & (POLLIN | POLLHUP | POLLERR)) {
                        r = varlink_stream_read(ep->stream);
                        if (r == 0 || (r < 0 && r != -EAGAIN && r != -EMSGSIZE)) {
                                snprintf(how, sizeof how, "closed its connection%s%s", r < 0 ? ": " : "",
                                         r < 0 ? strerror(-r) : "");
                                stop_child(ep, true, how, sizeof how);
                                return transport_failure(ep, res, r < 0 ? -r : EPIPE, "%s", how);
                        }
                        if (r == -EMSGSIZE) {
                                stop_child(ep, false, NULL, 0);
                                return transport_failure(ep, res, EPROTO, "sent a malformed reply: larger than 16 MiB");
                        }
                }
        }

        /* One reply per call: anything more would be taken as the reply to the next call. */
        if (varlink_stream_has_partial_input(ep->stream) || varlink_stream_next(ep->stream, &extra) != 0) {
                stop_child(ep, false, NULL, 0);
                return transport_failure(ep, res, EPROTO, "sent a malformed reply: more than one message");
        }
        stderr_drain(ep, false);

        code = external_reply_check(m, reply, snapshots, n_snapshots, ret_parameters, res);
        if (code == VSS_E_UNEXPECTED_PROVIDER_ERROR && res->hresult == 0) {
                /* Not following the interface: the stream may be out of step, start afresh. */
                char what[sizeof res->message];

                snprintf(what, sizeof what, "%s", res->message);
                stop_child(ep, false, NULL, 0);
                return transport_failure(ep, res, EPROTO, "%s", what);
        }
        /* An answer that follows the interface, success or Failed: the provider works. */
        ep->failures = 0;
        return code;
}

static json_object *settings_json(const ExternalProviderConfig *c) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        for (size_t i = 0; i < c->n_settings; i++)
                if (json_object_object_add(o, c->setting_keys[i], json_object_new_string(c->setting_values[i])) < 0)
                        return NULL;
        return TAKE_PTR(o);
}

static uint64_t method_timeout(const ExternalProvider *ep, ExternalMethod m) {
        uint64_t t = (uint64_t) ep->config.timeout_sec * USEC_PER_SEC;

        /* OnLoad's time includes starting the program (an interpreter on a slow or cold disk):
         * never less than the default. */
        if (m == EXTERNAL_ON_LOAD && t < EXTERNAL_DEFAULT_TIMEOUT_SEC * USEC_PER_SEC)
                t = EXTERNAL_DEFAULT_TIMEOUT_SEC * USEC_PER_SEC;

        /* Inside the hold every second counts against HoldTimeoutSec= for the whole set. */
        if ((m == EXTERNAL_HOLD_WRITES || m == EXTERNAL_COMMIT_SNAPSHOTS || m == EXTERNAL_RELEASE_WRITES) &&
            provider_settings && provider_settings->hold_timeout_usec > 0 && provider_settings->hold_timeout_usec < t)
                t = provider_settings->hold_timeout_usec;
        return t;
}

/* Starts the child and sends OnLoad. Returns S_OK, or the failure (the event is the caller's). */
static VssCode load(ExternalProvider *ep, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *params = json_object_new_object(), *reply = NULL;
        ProviderResult ignored = {};
        unsigned failures = ep->failures;
        VssCode code;
        int r;

        if (!res)
                res = &ignored;
        if (!params ||
            json_object_object_add(params, "name", json_object_new_string(ep->provider.name)) < 0 ||
            json_object_object_add(params, "snapsetVersion", json_object_new_string(SNAPSET_VERSION)) < 0 ||
            json_object_object_add(params, "settings", settings_json(&ep->config)) < 0)
                return E_OUTOFMEMORY;

        r = start_child(ep);
        if (r < 0) {
                snprintf(res->message, sizeof res->message, "could not be started: %s", strerror(-r));
                res->error = -r;
                provider_failed(ep, res->message);
                return VSS_E_UNEXPECTED_PROVIDER_ERROR;
        }
        code = exchange(ep, EXTERNAL_ON_LOAD, params, method_timeout(ep, EXTERNAL_ON_LOAD), NULL, 0, &reply, res);
        if (code != S_OK) {
                if (ep->stream) {
                        /* A valid refusal: the provider cannot work here. It counts as a failure
                         * all the same, or a provider that always refuses would be restarted on
                         * every use. */
                        char what[sizeof res->message + 64];

                        snprintf(what, sizeof what, "refused to load with %s (0x%08X): %s",
                                 vss_code_name(code) ?: "an unknown code", res->hresult, res->message);
                        snprintf(res->message, sizeof res->message, "%s", what);
                        res->hresult = 0;
                        stop_child(ep, false, NULL, 0);
                        ep->failures = failures;
                        provider_failed(ep, res->message);
                }
                return VSS_E_UNEXPECTED_PROVIDER_ERROR;
        }
        /* Loading is not using: failures in a row go on counting until a method succeeds. */
        ep->failures = failures;
        free(ep->version);
        ep->version = strdup(json_object_get_string(json_object_object_get(reply, "version")));
        ep->state = EXTERNAL_STATE_LOADED;
        log_info("Provider '%s' loaded: %s (version %s, pid %i).", ep->provider.name, ep->config.executable,
                 strna(ep->version), (int) ep->pid);
        return S_OK;
}

/* The provider running, or why not. Never starts anything inside the window: fork and exec
 * there could fault pages in from a frozen filesystem, and a provider that failed inside the
 * window is not to be trusted again before the thaw. */
static VssCode ensure_running(ExternalProvider *ep, ExternalMethod m, ProviderResult *res) {
        if (ep->stream)
                return S_OK;
        if (ep->state == EXTERNAL_STATE_UNLOADED) {
                res->hresult = 0;
                res->error = ESRCH;
                snprintf(res->message, sizeof res->message, "is unloaded after %u failures in a row (last: it %s)",
                         ep->failures, ep->last_failure[0] ? ep->last_failure : "?");
                return VSS_E_UNEXPECTED_PROVIDER_ERROR;
        }
        if (window_open()) {
                res->hresult = 0;
                res->error = ESRCH;
                snprintf(res->message, sizeof res->message, "is not running (it %s; not restarted while the "
                         "filesystems are frozen)", ep->last_failure[0] ? ep->last_failure : "failed");
                return VSS_E_UNEXPECTED_PROVIDER_ERROR;
        }
        if (load(ep, res) == S_OK)
                return S_OK;
        {
                char what[sizeof res->message];

                snprintf(what, sizeof what, "%s", res->message);
                snprintf(res->message, sizeof res->message, "could not be started again (OnLoad: it %s)", what);
        }
        res->hresult = 0;
        return VSS_E_UNEXPECTED_PROVIDER_ERROR;
}

static VssCode call(ExternalProvider *ep, ExternalMethod m, json_object *parameters,
                    ProviderSnapshot *const *snapshots, size_t n_snapshots, json_object **ret_parameters,
                    ProviderResult *res) {
        VssCode code;

        code = ensure_running(ep, m, res);
        if (code != S_OK)
                return code;
        return exchange(ep, m, parameters, method_timeout(ep, m), snapshots, n_snapshots, ret_parameters, res);
}

/* ---------------------------------------------------------------- JSON for the calls */

static json_object *volume_json(const BlockDevice *d) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *mps = json_object_new_array();
        _cleanup_free_ char *devnum = NULL;

        if (!o || !mps || blockdev_devnum_string(d, &devnum) < 0)
                return NULL;
        for (char **m = d->mountpoints; m && *m; m++)
                if (json_object_array_add(mps, json_object_new_string(*m)) < 0)
                        return NULL;
        if (json_add_string(o, "path", d->path) < 0 || json_add_string(o, "device", devnum) < 0 ||
            json_add_string(o, "type", block_device_type_to_string(d->type)) < 0 ||
            json_add(o, "sizeBytes", json_object_new_int64((int64_t) d->size_bytes)) < 0 ||
            json_add(o, "readOnly", json_object_new_boolean(d->read_only)) < 0 ||
            json_add_string(o, "dmName", d->dm_name) < 0 || json_add_string(o, "dmUuid", d->dm_uuid) < 0 ||
            json_add_string(o, "filesystem", d->fs_type) < 0 || json_add(o, "mountpoints", TAKE_PTR(mps)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_object *snapshot_json(const Snapshot *s) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        char devnum[32];

        if (!o)
                return NULL;
        snprintf(devnum, sizeof devnum, "%u:%u", major(s->volume_device), minor(s->volume_device));
        if (json_add_string(o, "snapshotId", s->id) < 0 || json_add_string(o, "setId", s->set_id) < 0 ||
            json_add_string(o, "volume", s->volume_path ?: s->volume) < 0 || json_add_string(o, "volumeDevice", devnum) < 0 ||
            json_add_string(o, "device", s->device) < 0 ||
            (s->provider_data && json_add(o, "providerData", json_object_get(s->provider_data)) < 0))
                return NULL;
        return TAKE_PTR(o);
}

static json_object *snapshots_json(ProviderSnapshot *const *snapshots, size_t n) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++) {
                json_object *s = snapshot_json(snapshots[i]->snapshot);
                if (!s || json_object_array_add(a, s) < 0) {
                        json_object_put(s);
                        return NULL;
                }
        }
        return TAKE_PTR(a);
}

/* {"setId": ..., "snapshots": [...]} for the set-level methods. */
static json_object *set_parameters(const ProviderSet *ps) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o || json_add_string(o, "setId", ps->set->id) < 0 ||
            json_add(o, "snapshots", snapshots_json(ps->snapshots, ps->n_snapshots)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static json_object *snapshot_parameters(const Snapshot *s) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o || json_add(o, "snapshot", snapshot_json(s)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

static VssCode out_of_memory(ProviderResult *res) {
        res->error = ENOMEM;
        snprintf(res->message, sizeof res->message, "Out of memory building the call to the provider.");
        return E_OUTOFMEMORY;
}

/* ---------------------------------------------------------------- the ops */

static int external_probe(const Provider *p, char **ret_reason) {
        ExternalProvider *ep = external_of(p);
        ProviderResult res = {};

        if (!ep)
                return -EINVAL;
        if (ep->stream)
                return 1;
        if (ensure_running(ep, EXTERNAL_ON_LOAD, &res) == S_OK)
                return 1;
        /* "is unloaded after ..." or "could not be started again (OnLoad: it ...)". */
        if (asprintf(ret_reason, "provider '%s' (%s) %s", p->name, ep->config.executable, res.message) < 0)
                return -ENOMEM;
        return 0;
}

static int external_is_volume_supported(const Provider *p, const BlockDevice *d, char **ret_reason) {
        _cleanup_(json_object_putp) json_object *params = json_object_new_object(), *reply = NULL;
        ExternalProvider *ep = external_of(p);
        ProviderResult res = { .failed = SIZE_MAX };
        json_object *reason;
        VssCode code;

        if (!ep)
                return -EINVAL;
        if (!params || json_add(params, "volume", volume_json(d)) < 0)
                return -ENOMEM;
        /* An unloaded provider takes nothing, quietly: its unloading was logged. */
        if (!ep->stream && ep->state == EXTERNAL_STATE_UNLOADED)
                return VOLUME_NOT_HANDLED;

        code = call(ep, EXTERNAL_IS_VOLUME_SUPPORTED, params, NULL, 0, &reply, &res);
        if (code != S_OK) {
                SetOutcome out = {};

                /* IsVolumeSupported answers with supported true or false; any failure at all is
                 * one it may not return. Validated and logged like every other method's, by
                 * coordinator_check_code(); selection then passes over the provider. */
                if (code != VSS_E_UNEXPECTED_PROVIDER_ERROR && vss_code_is_valid_provider_return(code)) {
                        char what[sizeof res.message];

                        snprintf(what, sizeof what, "returned %s (0x%08X), which IsVolumeSupported may not return: %s",
                                 vss_code_name(code), res.hresult, res.message);
                        snprintf(res.message, sizeof res.message, "%s", what);
                        res.hresult = 0;
                        code = VSS_E_UNEXPECTED_PROVIDER_ERROR;
                }
                (void) coordinator_check_code(p->name, "IsVolumeSupported", code, &res, NULL,
                                              set_event_journal_sink, NULL, &out);
                *ret_reason = strdup(out.message);
                return *ret_reason ? VOLUME_PROVIDER_FAILED : -ENOMEM;
        }
        if (json_object_get_boolean(json_object_object_get(reply, "supported")))
                return VOLUME_SUPPORTED;
        reason = json_object_object_get(reply, "reason");
        if (!reason || json_object_is_type(reason, json_type_null))
                return VOLUME_NOT_HANDLED;
        return provider_not_supported(ret_reason, "%s", json_object_get_string(reason));
}

static ExternalProvider *share_provider(const ProviderSet *ps) {
        ExternalProvider *ep = external_of(ps->provider);

        assert(ep);
        if (ps->settings)
                provider_settings = ps->settings;
        return ep;
}

static VssCode external_begin_prepare_snapshot(ProviderSet *ps, ProviderSnapshot *snap, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *params = json_object_new_object(), *reply = NULL;
        ExternalProvider *ep = share_provider(ps);
        ProviderSnapshot *only[1] = { snap };
        json_object *data;
        VssCode code;

        if (!params || json_add_string(params, "setId", ps->set->id) < 0 ||
            json_add_string(params, "snapshotId", snap->snapshot->id) < 0 ||
            json_add(params, "volume", volume_json(snap->volume)) < 0 ||
            (snap->snapshot->cow_size > 0 &&
             json_add(params, "cowSizeBytes", json_object_new_int64((int64_t) snap->snapshot->cow_size)) < 0))
                return out_of_memory(res);

        code = call(ep, EXTERNAL_BEGIN_PREPARE_SNAPSHOT, params, only, 1, &reply, res);
        if (code != S_OK) {
                res->failed = provider_snapshot_index(ps, snap);
                if (res->failed == SIZE_MAX)
                        res->failed = 0;
                return code;
        }
        data = json_object_object_get(reply, "providerData");
        if (data && json_object_is_type(data, json_type_object)) {
                json_object_put(snap->snapshot->provider_data);
                snap->snapshot->provider_data = json_object_get(data);
        }
        return S_OK;
}

static VssCode set_call(ProviderSet *ps, ExternalMethod m, bool with_committed, bool committed,
                        json_object **ret_parameters, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *params = NULL;
        ExternalProvider *ep = share_provider(ps);

        params = set_parameters(ps);
        if (!params || (with_committed && json_add(params, "committed", json_object_new_boolean(committed)) < 0))
                return out_of_memory(res);
        return call(ep, m, params, ps->snapshots, ps->n_snapshots, ret_parameters, res);
}

static VssCode external_end_prepare_snapshots(ProviderSet *ps, ProviderResult *res) {
        return set_call(ps, EXTERNAL_END_PREPARE_SNAPSHOTS, false, false, NULL, res);
}

static VssCode external_pre_commit_snapshots(ProviderSet *ps, ProviderResult *res) {
        return set_call(ps, EXTERNAL_PRE_COMMIT_SNAPSHOTS, false, false, NULL, res);
}

/* Hold, commit and release run inside the window. The call's JSON is built with json-c, whose
 * memory is anonymous and, with the coordinator's mlockall(MCL_FUTURE), locked: nothing there
 * touches a filesystem. The provider's stderr is read and queued (log_* is held), never written. */
static VssCode external_hold_writes(ProviderSet *ps, ProviderResult *res) {
        return set_call(ps, EXTERNAL_HOLD_WRITES, false, false, NULL, res);
}

static VssCode external_commit_snapshots(ProviderSet *ps, ProviderResult *res) {
        return set_call(ps, EXTERNAL_COMMIT_SNAPSHOTS, false, false, NULL, res);
}

static VssCode external_release_writes(ProviderSet *ps, bool committed, ProviderResult *res) {
        return set_call(ps, EXTERNAL_RELEASE_WRITES, true, committed, NULL, res);
}

static VssCode external_post_commit_snapshots(ProviderSet *ps, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *a;
        VssCode code;

        code = set_call(ps, EXTERNAL_POST_COMMIT_SNAPSHOTS, false, false, &reply, res);
        if (code != S_OK)
                return code;
        a = json_object_object_get(reply, "snapshots");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *o = json_object_array_get_idx(a, i), *v;
                size_t k = snapshot_index(ps->snapshots, ps->n_snapshots,
                                          json_object_get_string(json_object_object_get(o, "snapshotId")));
                Snapshot *s;

                if (k == SIZE_MAX)
                        continue;   /* external_reply_check() made sure it does not happen */
                s = ps->snapshots[k]->snapshot;
                v = json_object_object_get(o, "device");
                if (v && json_object_is_type(v, json_type_string)) {
                        char *d = strdup(json_object_get_string(v));
                        if (!d)
                                return out_of_memory(res);
                        free(s->device);
                        s->device = d;
                }
                v = json_object_object_get(o, "providerData");
                if (v && json_object_is_type(v, json_type_object)) {
                        json_object_put(s->provider_data);
                        s->provider_data = json_object_get(v);
                }
        }
        return S_OK;
}

static VssCode external_abort_snapshots(ProviderSet *ps, ProviderResult *res) {
        return set_call(ps, EXTERNAL_ABORT_SNAPSHOTS, false, false, NULL, res);
}

static VssCode snapshot_call(Snapshot *snap, ExternalMethod m, json_object **ret_parameters, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *params = NULL;
        ExternalProvider *ep = external_by_name(snap->provider);

        if (!ep) {
                snprintf(res->message, sizeof res->message, "Provider '%s' is not an external provider.", snap->provider);
                return VSS_E_BAD_STATE;
        }
        params = snapshot_parameters(snap);
        if (!params)
                return out_of_memory(res);
        return call(ep, m, params, NULL, 0, ret_parameters, res);
}

static VssCode external_delete_snapshot(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        return snapshot_call(snap, EXTERNAL_DELETE_SNAPSHOT, NULL, res);
}

static VssCode external_activate_snapshot(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *v;
        VssCode code;

        code = snapshot_call(snap, EXTERNAL_ACTIVATE_SNAPSHOT, &reply, res);
        if (code != S_OK)
                return code;
        v = json_object_object_get(reply, "device");
        if (v && json_object_is_type(v, json_type_string)) {
                char *d = strdup(json_object_get_string(v));
                if (!d)
                        return out_of_memory(res);
                free(snap->device);
                snap->device = d;
        }
        return S_OK;
}

static VssCode external_recover(Snapshot *snap, const ProviderSettings *settings, ProviderResult *res) {
        return snapshot_call(snap, EXTERNAL_RECOVER, NULL, res);
}

static VssCode external_query(Snapshot *snap, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        VssCode code;

        code = snapshot_call(snap, EXTERNAL_QUERY, &reply, res);
        if (code == S_OK)
                snap->invalid = streq(json_object_get_string(json_object_object_get(reply, "status")), "invalid");
        return code;
}

/* Statuses in batches: a reply for 10 000 snapshots would still fit a message, but a call with
 * their provider data might not. */
#define QUERY_BATCH 512

static VssCode query_batch(ExternalProvider *ep, Snapshot *const *snaps, size_t n, bool *ret_unsupported,
                           ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *params = json_object_new_object(), *a = json_object_new_array(),
                                                *reply = NULL;
        json_object *statuses;
        VssCode code;

        if (!params || !a)
                return out_of_memory(res);
        for (size_t i = 0; i < n; i++) {
                json_object *s = snapshot_json(snaps[i]);

                if (!s || json_object_array_add(a, s) < 0) {
                        json_object_put(s);
                        return out_of_memory(res);
                }
        }
        if (json_add(params, "snapshots", TAKE_PTR(a)) < 0)
                return out_of_memory(res);
        /* n_snapshots is only counted by the reply's check: no ProviderSnapshot list here. */
        code = call(ep, EXTERNAL_QUERY_SNAPSHOTS, params, NULL, n, &reply, res);
        if (code != S_OK)
                return code;
        if (!reply) {
                ep->no_query_snapshots = ep->pid;
                *ret_unsupported = true;
                return S_OK;
        }
        statuses = json_object_object_get(reply, "statuses");
        for (size_t i = 0; i < n; i++)
                snaps[i]->invalid = streq(json_object_get_string(json_object_array_get_idx(statuses, i)), "invalid");
        return S_OK;
}

/* The n snapshots, all of this provider: QuerySnapshots in batches, or *ret_unsupported if the
 * provider does not have it (then the caller asks with query, one by one). */
static VssCode external_query_snapshots(Snapshot *const *snaps, size_t n, bool *ret_unsupported, ProviderResult *res) {
        ExternalProvider *ep = n > 0 ? external_by_name(snaps[0]->provider) : NULL;

        *ret_unsupported = false;
        if (!ep)
                return n > 0 ? VSS_E_BAD_STATE : S_OK;
        if (ep->stream && ep->pid > 0 && ep->no_query_snapshots == ep->pid) {
                *ret_unsupported = true;
                return S_OK;
        }
        for (size_t i = 0; i < n && !*ret_unsupported; i += QUERY_BATCH) {
                VssCode code = query_batch(ep, snaps + i, n - i < QUERY_BATCH ? n - i : QUERY_BATCH,
                                           ret_unsupported, res);
                if (code != S_OK)
                        return code;
        }
        return S_OK;
}

/* RevertSnapshot's and RevertProgress's answer. Without the method: VSS_E_NOT_SUPPORTED. */
static VssCode revert_call(Snapshot *snap, ExternalMethod m, ProviderRevert *ret, ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        const char *state;
        json_object *v;
        VssCode code;

        code = snapshot_call(snap, m, &reply, res);
        if (code != S_OK)
                return code;
        if (!reply && m == EXTERNAL_REVERT_PROGRESS) {
                /* It started a merge it cannot tell anything about: nothing to wait for. */
                snprintf(res->message, sizeof res->message, "provider '%s' answered RevertSnapshot, but does not "
                         "implement RevertProgress", snap->provider);
                return VSS_E_BAD_STATE;
        }
        if (!reply) {
                snprintf(res->message, sizeof res->message, "Provider '%s' cannot revert a volume to a snapshot (it "
                         "does not implement %s)", snap->provider, external_method_to_string(m));
                return VSS_E_NOT_SUPPORTED;
        }
        state = json_object_get_string(json_object_object_get(reply, "state"));
        v = json_object_object_get(reply, "percent");
        ret->done = streq(state, "done");
        ret->pending = streq(state, "pending");
        ret->percent = ret->done ? 100 : v && !json_object_is_type(v, json_type_null) ? json_object_get_double(v) : -1;
        return S_OK;
}

/* The provider keeps its own revert across a crash of snapsetd's; snapsetd records it once the
 * provider has answered (snapset-provider(7)). */
static VssCode external_revert_start(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                     ProviderResult *res) {
        return revert_call(snap, EXTERNAL_REVERT_SNAPSHOT, ret, res);
}

static VssCode external_revert_progress(Snapshot *snap, const ProviderSettings *settings, ProviderRevert *ret,
                                        ProviderResult *res) {
        return revert_call(snap, EXTERNAL_REVERT_PROGRESS, ret, res);
}

static VssCode external_break(Snapshot *snap, const ProviderSettings *settings, char **ret_device,
                              ProviderResult *res) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        VssCode code;

        code = snapshot_call(snap, EXTERNAL_BREAK_SNAPSHOT, &reply, res);
        if (code != S_OK)
                return code;
        if (!reply) {
                snprintf(res->message, sizeof res->message, "Provider '%s' cannot break snapshot %s off into a "
                         "volume of its own (it does not implement BreakSnapshot); nothing was changed",
                         snap->provider, snap->id);
                return VSS_E_NOT_SUPPORTED;
        }
        *ret_device = strdup(json_object_get_string(json_object_object_get(reply, "device")));
        return *ret_device ? S_OK : out_of_memory(res);
}

static const ProviderOps external_ops = {
        .probe_instance = external_probe,
        .is_volume_supported_instance = external_is_volume_supported,
        .begin_prepare_snapshot = external_begin_prepare_snapshot,
        .end_prepare_snapshots = external_end_prepare_snapshots,
        .pre_commit_snapshots = external_pre_commit_snapshots,
        .hold_writes = external_hold_writes,
        .commit_snapshots = external_commit_snapshots,
        .release_writes = external_release_writes,
        .post_commit_snapshots = external_post_commit_snapshots,
        .abort_snapshots = external_abort_snapshots,
        .delete_snapshot = external_delete_snapshot,
        .activate_snapshot = external_activate_snapshot,
        .recover = external_recover,
        .query = external_query,
        .query_snapshots = external_query_snapshots,
        .revert_start = external_revert_start,
        .revert_progress = external_revert_progress,
        .break_snapshot = external_break,
};

/* ---------------------------------------------------------------- loading */

static ExternalProvider *external_free(ExternalProvider *ep) {
        if (!ep)
                return NULL;
        stop_child(ep, false, NULL, 0);
        external_provider_config_done(&ep->config);
        free(ep->version);
        free(ep);
        return NULL;
}

static bool name_taken(const char *name) {
        for (size_t i = 0; i < n_providers; i++)
                if (streq(providers[i]->provider.name, name))
                        return true;
        return false;
}

static int load_file(const char *dir, const char *file) {
        _cleanup_(external_provider_config_done) ExternalProviderConfig c = {};
        _cleanup_free_ char *path = NULL, *name = NULL, *message = NULL;
        ExternalProvider *ep, **a;
        FILE *f;
        int r;

        name = strndup(file, strlen(file) - strlen(".provider"));
        if (!name || asprintf(&path, "%s/%s", dir, file) < 0)
                return -ENOMEM;
        /* An earlier directory already had this name: the administrator's file overrides the
         * vendor's. */
        if (name_taken(name)) {
                log_debug("Provider file %s is overridden by an earlier one of the same name.", path);
                return 0;
        }
        f = fopen(path, "re");
        if (!f) {
                log_error_errno(errno, "Cannot read provider file %s, skipping it: %m", path);
                return 0;
        }
        r = external_provider_config_parse(f, path, name, &c, &message);
        fclose(f);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                log_error("Skipping provider '%s': %s", name, message ?: strerror(-r));
                return 0;
        }
        if (provider_by_name(name)) {
                log_error("Skipping provider file %s: '%s' is the name of a built-in provider.", path, name);
                return 0;
        }

        ep = calloc(1, sizeof(ExternalProvider));
        if (!ep)
                return -ENOMEM;
        ep->config = c;
        c = (ExternalProviderConfig) {};
        ep->provider = (Provider) {
                .name = ep->config.name,
                .kind = "external",
                .priority = ep->config.priority,
                .ops = &external_ops,
        };
        ep->state = EXTERNAL_STATE_FAILED;   /* not started yet: started at the first use */
        ep->stderr_fd = -EBADF;
        a = reallocarray(providers, n_providers + 1, sizeof(ExternalProvider *));
        if (!a) {
                external_free(ep);
                return -ENOMEM;
        }
        providers = a;
        r = provider_register(&ep->provider);
        if (r < 0) {
                log_error_errno(r, "Cannot register provider '%s' from %s, skipping it: %m", name, path);
                external_free(ep);
                return 0;
        }
        providers[n_providers++] = ep;
        log_debug("Provider '%s' from %s: %s, priority %i, timeout %u s.", name, path, ep->config.executable,
                  ep->config.priority, ep->config.timeout_sec);
        return 1;
}

static int filter_provider_files(const struct dirent *de) {
        const char *dot = strrchr(de->d_name, '.');

        return de->d_name[0] != '.' && dot && streq(dot, ".provider");
}

static int load_directory(const char *dir) {
        struct dirent **entries = NULL;
        int n, r = 0, loaded = 0;

        n = scandir(dir, &entries, filter_provider_files, alphasort);
        if (n < 0) {
                if (errno != ENOENT)
                        log_warning_errno(errno, "Cannot read the provider directory %s: %m", dir);
                return 0;
        }
        for (int i = 0; i < n; i++) {
                if (r >= 0) {
                        r = load_file(dir, entries[i]->d_name);
                        if (r > 0)
                                loaded++;
                }
                free(entries[i]);
        }
        free(entries);
        return r < 0 ? r : loaded;
}

int external_providers_load(const char *directories, const ProviderSettings *settings) {
        _cleanup_free_ char *copy = NULL;
        char *save = NULL;
        int r, total = 0;

        provider_settings = settings;
        if (!directories)
                return 0;
        copy = strdup(directories);
        if (!copy)
                return -ENOMEM;
        if (epoll_fd < 0) {
                epoll_fd = epoll_create1(EPOLL_CLOEXEC);
                if (epoll_fd < 0)
                        return log_error_errno(errno, "Failed to create an epoll set for providers: %m");
        }
        for (char *d = strtok_r(copy, " \t", &save); d; d = strtok_r(NULL, " \t", &save)) {
                r = load_directory(d);
                if (r < 0)
                        return r;
                total += r;
        }

        /* OnLoad at daemon start: a provider that cannot start is reported now, and tried again
         * at its next use. */
        for (size_t i = 0; i < n_providers; i++) {
                ProviderResult res = {};

                if (providers[i]->stream)
                        continue;
                if (load(providers[i], &res) != S_OK)
                        log_error("Provider '%s' (%s) could not be loaded: %s%s", providers[i]->provider.name,
                                  providers[i]->config.executable, res.hresult == 0 ? "it " : "", res.message);
        }
        return total;
}

void external_providers_reset(void) {
        for (size_t i = 0; i < n_providers; i++)
                if (providers[i]->state == EXTERNAL_STATE_UNLOADED && !providers[i]->stream) {
                        providers[i]->state = EXTERNAL_STATE_FAILED;
                        providers[i]->failures = 0;
                        log_info("Provider '%s' is tried again at its next use.", providers[i]->provider.name);
                }
}

void external_providers_unload(void) {
        for (size_t i = 0; i < n_providers; i++) {
                ExternalProvider *ep = providers[i];

                ep->state = EXTERNAL_STATE_UNLOADED;
                if (ep->stream) {
                        _cleanup_(json_object_putp) json_object *params = json_object_new_object();
                        ProviderResult res = {};
                        VssCode code = E_OUTOFMEMORY;

                        /* OnUnload is never translated and changes nothing: only logged. */
                        if (params && json_add(params, "force", json_object_new_boolean(false)) >= 0)
                                code = exchange(ep, EXTERNAL_ON_UNLOAD, params, method_timeout(ep, EXTERNAL_ON_UNLOAD),
                                                NULL, 0, NULL, &res);
                        if (code != S_OK)
                                log_warning("Provider '%s' reported a problem in OnUnload (%s): %s",
                                            ep->provider.name, vss_code_name(code) ?: "an unknown code", res.message);
                        else
                                log_debug("Provider '%s' unloaded.", ep->provider.name);
                        /* Its last word said, it has a moment to exit by itself. */
                        if (ep->stream)
                                stop_child(ep, true, NULL, 0);
                }
                provider_unregister(&ep->provider);
                external_free(ep);
        }
        free(providers);
        providers = NULL;
        n_providers = 0;
        epoll_fd = safe_close(epoll_fd);
}

int external_providers_event_fd(void) {
        return n_providers > 0 ? epoll_fd : -EBADF;
}

void external_providers_dispatch(void) {
        struct epoll_event events[16];
        int n;

        n = epoll_wait(epoll_fd, events, ELEMENTSOF(events), 0);
        for (int i = 0; i < n; i++) {
                ExternalProvider *ep = events[i].data.ptr;
                char how[256];
                int status;

                stderr_drain(ep, false);
                /* Its output ended: if the provider died between calls, say so now rather than
                 * at its next use. */
                if (ep->stderr_fd < 0 && ep->pid > 0 && waitpid(ep->pid, &status, WNOHANG) == ep->pid) {
                        ep->pid = 0;
                        describe_status(status, how, sizeof how);
                        stop_child(ep, false, NULL, 0);
                        provider_failed(ep, how);
                }
        }
}
