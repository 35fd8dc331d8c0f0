/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl: the command line client of snapsetd. This file holds the verb table, the global
 * options and the dispatcher; each verb lives in its own client/verb-NAME.c. */

#include <errno.h>
#include <inttypes.h>
#include <locale.h>
#include <stdarg.h>
#include <stdio.h>

#include "log.h"
#include "output.h"
#include "parse.h"
#include "snapsetctl.h"
#include "vss-error.h"

#define DEFAULT_SOCKET SNAPSET_RUNSTATEDIR "/snapset/io.snapset.Manager"

const char *arg_socket = DEFAULT_SOCKET;
JsonMode arg_json = JSON_OFF;
uint64_t arg_timeout_usec = USEC_INFINITY;

#define SNAPSETCTL_VERB_ENTRY(name) &verb_##name,
static const Verb *const verbs[] = {
        SNAPSETCTL_VERBS(SNAPSETCTL_VERB_ENTRY)
};
#undef SNAPSETCTL_VERB_ENTRY

/* The global options; accepted before the verb and after it. */
#define GLOBAL_OPTIONS                                                  \
        { "help",    no_argument,       NULL, 'h' },                    \
        { "version", no_argument,       NULL, ARG_VERSION },            \
        { "json",    optional_argument, NULL, ARG_JSON },               \
        { "socket",  required_argument, NULL, ARG_SOCKET },             \
        { "timeout", required_argument, NULL, ARG_TIMEOUT }

static const struct option global_options[] = {
        GLOBAL_OPTIONS,
        {}
};

#define MAX_OPTIONS 32

const Verb *verb_find(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                if (streq(verbs[i]->name, name))
                        return verbs[i];
        return NULL;
}

/* ---------------------------------------------------------------- help */

static void print_verb_synopsis(const Verb *v, FILE *f, int width) {
        _cleanup_free_ char *s = NULL;

        if (asprintf(&s, "%s%s%s", v->name, v->args ? " " : "", strempty(v->args)) < 0)
                s = NULL;
        fprintf(f, "  %-*s  %s\n", width, s ?: v->name, v->summary);
}

static void print_global_options(FILE *f) {
        fprintf(f,
                "Options:\n"
                "  -h --help                 Show this help\n"
                "     --version              Show the version of snapsetctl\n"
                "     --json[=short|pretty]  Print the reply as JSON, on one line (short, the\n"
                "                            default) or indented (pretty)\n"
                "     --socket=PATH          Talk to snapsetd at PATH (default: $SNAPSET_SOCKET,\n"
                "                            or %s)\n"
                "     --timeout=SEC          Wait at most SEC seconds for each reply of snapsetd\n"
                "                            (default: %" PRIu64 " for create and delete, and %" PRIu64 " more\n"
                "                            for each volume after the first; %" PRIu64 " for the rest;\n"
                "                            0: no limit)\n",
                DEFAULT_SOCKET, TIMEOUT_CREATE_USEC / USEC_PER_SEC, TIMEOUT_PER_VOLUME_USEC / USEC_PER_SEC,
                TIMEOUT_DEFAULT_USEC / USEC_PER_SEC);
}

void help_print(const Verb *verb, FILE *f) {
        int width = 0;

        if (verb) {
                fprintf(f, "snapsetctl [OPTIONS...] %s%s%s\n\n%s.\n",
                        verb->name, verb->args ? " " : "", strempty(verb->args), verb->summary);
                if (verb->help)
                        fprintf(f, "\n%s", verb->help);
                fputc('\n', f);
                print_global_options(f);
                fprintf(f, "\nSee snapsetctl(8) for more, including the exit statuses.\n");
                return;
        }

        for (size_t i = 0; i < ELEMENTSOF(verbs); i++) {
                int w = (int) (strlen(verbs[i]->name) + (verbs[i]->args ? 1 + strlen(verbs[i]->args) : 0));
                if (w > width)
                        width = w;
        }

        fprintf(f, "snapsetctl [OPTIONS...] COMMAND [ARGUMENTS...]\n\n"
                   "Query snapsetd, the snapshot set daemon, and call its varlink API.\n\n"
                   "Commands:\n");
        for (size_t i = 0; i < ELEMENTSOF(verbs); i++)
                print_verb_synopsis(verbs[i], f, width);
        fputc('\n', f);
        print_global_options(f);
        fprintf(f, "\n'snapsetctl help COMMAND' or 'snapsetctl COMMAND --help' describes a command;\n"
                   "snapsetctl(8) lists the exit statuses.\n");
}

int usage_error(const Verb *verb, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&message, format, ap);
        va_end(ap);
        if (r < 0)
                message = NULL;

        log_error("%s", message ?: format);
        if (verb)
                fprintf(stderr, "Try 'snapsetctl %s --help'.\n", verb->name);
        else
                fprintf(stderr, "Try 'snapsetctl --help'.\n");
        return -EINVAL;
}

static int verb_help_run(int argc, char *argv[]) {
        const Verb *verb = NULL;

        if (argc > 0) {
                verb = verb_find(argv[0]);
                if (!verb)
                        return usage_error(NULL, "Unknown command '%s'.", argv[0]), SNAPSET_EXIT_USAGE;
        }
        help_print(verb, stdout);
        return SNAPSET_EXIT_SUCCESS;
}

const Verb verb_help = {
        .name = "help",
        .args = "[COMMAND]",
        .summary = "Show the help of snapsetctl or of a command",
        .max_args = 1,
        .run = verb_help_run,
};

/* ---------------------------------------------------------------- options */

static int parse_global_option(const Verb *verb, int c, const char *arg) {
        switch (c) {
        case 'h':
                help_print(verb, stdout);
                return -ECANCELED;
        case ARG_VERSION:
                printf("snapsetctl %s\n", SNAPSET_VERSION);
                return -ECANCELED;
        case ARG_JSON:
                arg_json = json_mode_from_string(arg);
                if (arg_json < 0)
                        return usage_error(verb, "Unknown JSON mode '%s' (use short or pretty).", arg);
                return 0;
        case ARG_SOCKET:
                if (!*arg)
                        return usage_error(verb, "The socket path must not be empty.");
                arg_socket = arg;
                return 0;
        case ARG_TIMEOUT: {
                int r = parse_seconds(arg, &arg_timeout_usec);
                if (r == -ERANGE)
                        return usage_error(verb, "The timeout '%s' is too long (at most a year; 0 for no limit).", arg);
                if (r < 0)
                        return usage_error(verb, "The timeout '%s' is not a number of seconds (0 for no limit).", arg);
                return 0;
        }
        default:
                return -ENOENT;
        }
}

/* The options getopt_long() sees: the global ones, then the verb's own. */
static int build_options(const Verb *verb, struct option ret[static MAX_OPTIONS]) {
        size_t n = 0;

        for (const struct option *o = global_options; o->name; o++)
                ret[n++] = *o;
        for (const struct option *o = verb ? verb->options : NULL; o && o->name; o++) {
                if (n + 1 >= MAX_OPTIONS)
                        return -E2BIG;
                ret[n++] = *o;
        }
        ret[n] = (struct option) {};
        return 0;
}

static bool option_is_known(const struct option *options, const char *name, size_t len) {
        for (const struct option *o = options; o->name; o++)
                if (strlen(o->name) == len && strncmp(o->name, name, len) == 0)
                        return true;
        return false;
}

static int report_getopt_error(const Verb *verb, int c, char *argv[], const struct option *options) {
        const char *what = argv[optind - 1], *name = startswith(what, "--");

        if (c == ':')
                return usage_error(verb, "Option '%s' needs an argument.", what);
        if (name && strchr(name, '=') && option_is_known(options, name, strcspn(name, "=")))
                return usage_error(verb, "Option '--%.*s' takes no argument.", (int) strcspn(name, "="), name);
        if (!name && optopt > 0 && optopt < 0x100)
                return usage_error(verb, "Unknown option '-%c'.", optopt);
        return usage_error(verb, "Unknown option '%s'.", what);
}

/* Parses the options of argv: the global ones only when verb is NULL (stopping at the verb), else
 * the global and the verb's. Returns 0, -ECANCELED after printing help or the version, or -EINVAL
 * after a usage error. On return, optind is the index of the first positional argument. */
static int parse_options(const Verb *verb, int argc, char *argv[]) {
        struct option options[MAX_OPTIONS];
        int c, r;

        r = build_options(verb, options);
        if (r < 0)
                return log_error_errno(r, "Too many options for '%s'.", verb->name);

        /* '+' stops at the verb (and, for a verb whose options come first, at its first
         * argument); other verbs' options may come between their arguments. ':' lets us word the
         * errors ourselves. */
        optind = 0;
        opterr = 0;
        while ((c = getopt_long(argc, argv, verb && !verb->options_first ? ":h" : "+:h", options, NULL)) >= 0) {
                if (c == '?' || c == ':')
                        return report_getopt_error(verb, c, argv, options);

                r = parse_global_option(verb, c, optarg);
                if (r != -ENOENT) {
                        if (r < 0)
                                return r;
                        continue;
                }
                if (!verb || !verb->parse_option)
                        return usage_error(verb, "Unexpected option '%s'.", argv[optind - 1]);
                r = verb->parse_option(verb, c, optarg);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int exit_status_of_parse(int r) {
        return r == -ECANCELED ? SNAPSET_EXIT_SUCCESS : SNAPSET_EXIT_USAGE;
}

static int verb_dispatch(const Verb *verb, int argc, char *argv[]) {
        unsigned n;
        int r;

        r = parse_options(verb, argc, argv);
        if (r < 0)
                return exit_status_of_parse(r);

        n = (unsigned) (argc - optind);
        if (n < verb->min_args)
                return usage_error(verb, "Missing arguments; usage: snapsetctl %s %s",
                                   verb->name, strempty(verb->args)), SNAPSET_EXIT_USAGE;
        if (n > verb->max_args)
                return usage_error(verb, "Too many arguments for '%s': '%s'.",
                                   verb->name, argv[optind + (int) verb->max_args]),
                       SNAPSET_EXIT_USAGE;

        return verb->run((int) n, argv + optind);
}

/* Writing to a full disk or a closed pipe must not look like success to a script. */
static int check_stdout(int status) {
        if (fflush(stdout) == 0 && !ferror(stdout))
                return status;
        if (status == SNAPSET_EXIT_SUCCESS) {
                log_error_errno(errno ?: EIO, "Cannot write to standard output: %m");
                return SNAPSET_EXIT_FAILURE;
        }
        return status;
}

int main(int argc, char *argv[]) {
        const char *e;
        const Verb *verb;
        int r;

        /* Only the character type: column widths of names in UTF-8. Numbers stay in C format, so
         * that the JSON stays JSON. */
        (void) setlocale(LC_CTYPE, "");
        log_set_program_name("snapsetctl");

        e = getenv("SNAPSET_SOCKET");
        if (e && *e)
                arg_socket = e;

        r = parse_options(NULL, argc, argv);
        if (r < 0)
                return check_stdout(exit_status_of_parse(r));
        if (optind >= argc)
                return usage_error(NULL, "Missing command."), SNAPSET_EXIT_USAGE;

        verb = verb_find(argv[optind]);
        if (!verb)
                return usage_error(NULL, "Unknown command '%s'.", argv[optind]), SNAPSET_EXIT_USAGE;

        return check_stdout(verb_dispatch(verb, argc - optind, argv + optind));
}
