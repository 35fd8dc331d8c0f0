/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl call: any varlink method with any parameters, the reply printed as JSON. For scripts,
 * and for methods that have no verb of their own yet. */

#include <ctype.h>

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

enum {
        ARG_MORE = ARG_VERB_FIRST,
        ARG_ONEWAY,
};

static bool arg_more = false;
static bool arg_oneway = false;

static const struct option call_options[] = {
        { "more",   no_argument, NULL, ARG_MORE },
        { "oneway", no_argument, NULL, ARG_ONEWAY },
        {}
};

static int call_parse_option(const Verb *verb, int option, const char *arg) {
        switch (option) {
        case ARG_MORE:
                arg_more = true;
                break;
        case ARG_ONEWAY:
                arg_oneway = true;
                break;
        default:
                return -EINVAL;
        }
        if (arg_more && arg_oneway)
                return usage_error(verb, "--more and --oneway exclude each other: a oneway call gets no reply.");
        return 0;
}

/* "GetStatus" means io.snapset.Manager.GetStatus; a name with a dot is taken as it is. */
static int method_from_argument(const char *arg, char **ret) {
        char *m;

        if (strchr(arg, '.'))
                m = strdup(arg);
        else if (asprintf(&m, "%s.%s", SNAPSET_MANAGER_INTERFACE, arg) < 0)
                m = NULL;
        if (!m)
                return log_oom();
        if (!varlink_qualified_name_is_valid(m)) {
                free(m);
                return usage_error(&verb_call, "'%s' is not a method name: use a name like GetStatus "
                                   "or org.varlink.service.GetInfo.", arg);
        }
        *ret = m;
        return 0;
}

/* All of standard input, up to the largest message varlink carries. */
static int read_stdin(char **ret, size_t *ret_size) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 0, allocated = 0;

        for (;;) {
                ssize_t k;

                if (size + 1 >= allocated) {
                        size_t n = allocated > 0 ? allocated * 2 : 4096;
                        char *p;

                        if (n > VARLINK_MESSAGE_MAX)
                                return usage_error(&verb_call, "The parameters on standard input exceed %u MiB.",
                                                   VARLINK_MESSAGE_MAX / 1024 / 1024);
                        p = realloc(buf, n);
                        if (!p)
                                return log_oom();
                        buf = p;
                        allocated = n;
                }
                k = read(STDIN_FILENO, buf + size, allocated - size - 1);
                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0)
                        return log_error_errno(errno, "Cannot read the parameters from standard input: %m");
                if (k == 0)
                        break;
                size += (size_t) k;
        }
        buf[size] = 0;
        *ret = TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

static bool only_whitespace(const char *s, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (!isspace((unsigned char) s[i]))
                        return false;
        return true;
}

/* Parses text as call parameters: exactly one JSON object, in strict JSON. */
static int parameters_from_text(const char *text, size_t size, const char *source, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        struct json_tokener *tok;
        enum json_tokener_error e;
        size_t end;

        if (only_whitespace(text, size))
                return usage_error(&verb_call, "The parameters %s are empty: give a JSON object such as {}, "
                                   "or leave them out.", source);

        tok = json_tokener_new();
        if (!tok)
                return log_oom();
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT);
        o = json_tokener_parse_ex(tok, text, (int) size);
        e = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        json_tokener_free(tok);

        if (e == json_tokener_continue)
                return usage_error(&verb_call, "The parameters %s are not complete JSON: the text ends too early.", source);
        if (e != json_tokener_success)
                return usage_error(&verb_call, "The parameters %s are not valid JSON: %s at byte %zu.",
                                   source, json_tokener_error_desc(e), end + 1);
        if (!only_whitespace(text + end, size - end))
                return usage_error(&verb_call, "The parameters %s have text after the JSON object, at byte %zu.",
                                   source, end + 1);
        if (!json_object_is_type(o, json_type_object))
                return usage_error(&verb_call, "The parameters %s must be a JSON object, like {\"setId\": \"...\"}.",
                                   source);
        *ret = TAKE_PTR(o);
        return 0;
}

static int parameters_from_argument(const char *arg, json_object **ret) {
        _cleanup_free_ char *text = NULL;
        size_t size = 0;
        int r;

        if (!streq(arg, "-"))
                return parameters_from_text(arg, strlen(arg), "on the command line", ret);

        r = read_stdin(&text, &size);
        if (r < 0)
                return r;
        return parameters_from_text(text, size, "on standard input", ret);
}

static int print_reply(json_object *parameters, bool continues, void *userdata) {
        /* Flushed at once: a stream (Monitor) may run for hours, and a pipe reader wants each event
         * as it happens. */
        if (output_json(stdout, parameters, arg_json) < 0 || fflush(stdout) != 0) {
                log_error_errno(errno ?: EIO, "Cannot write to standard output: %m");
                return SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

static int call_send(const char *method, json_object *parameters) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        _cleanup_(json_object_putp) json_object *reply = NULL;
        int status;

        status = connection_open(&s);
        if (status != 0)
                return status;

        if (arg_oneway)
                return connection_send_oneway(s, method, parameters);
        if (arg_more)
                return connection_call_more(s, method, parameters, print_reply, NULL);

        status = connection_call(s, method, parameters, &reply);
        if (status != 0)
                return status;
        return print_reply(reply, false, NULL);
}

static int call_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *parameters = NULL;
        _cleanup_free_ char *method = NULL;
        int r;

        /* The output of call is always JSON, errors included. */
        if (arg_json == JSON_OFF)
                arg_json = JSON_SHORT;

        r = method_from_argument(argv[0], &method);
        if (r < 0)
                return r == -EINVAL ? SNAPSET_EXIT_USAGE : SNAPSET_EXIT_FAILURE;
        if (argc > 1) {
                r = parameters_from_argument(argv[1], &parameters);
                if (r < 0)
                        return r == -EINVAL ? SNAPSET_EXIT_USAGE : SNAPSET_EXIT_FAILURE;
        }

        return call_send(method, parameters);
}

const Verb verb_call = {
        .name = "call",
        .args = "METHOD [PARAMETERS|-]",
        .summary = "Call a varlink method, print the reply as JSON",
        .help = "METHOD is a method of io.snapset.Manager (GetStatus), or a fully qualified name\n"
                "(org.varlink.service.GetInfo). PARAMETERS is a JSON object; '-' reads it from\n"
                "standard input; without it the method is called with no parameters.\n"
                "The reply's parameters are printed as JSON, one document per line; an error\n"
                "is printed as a JSON object with an \"error\" key as well, and sets the exit status.\n"
                "\n"
                "Options of call:\n"
                "     --more                 Ask for a stream of replies and print each as it\n"
                "                            arrives (ListSnapshots, ListSnapshotSets, Monitor)\n"
                "     --oneway               Send the call and do not wait for a reply\n",
        .min_args = 1,
        .max_args = 2,
        .options = call_options,
        .parse_option = call_parse_option,
        .run = call_run,
};
