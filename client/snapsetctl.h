/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* snapsetctl: the verb table and what every verb shares.
 *
 * Adding a verb is one line in SNAPSETCTL_VERBS below and one file, client/verb-NAME.c, that
 * defines "const Verb verb_NAME". The dispatcher (snapsetctl.c) parses the verb's options, checks
 * the number of arguments and handles --help, so that a verb's run() sees only its positional
 * arguments.
 *
 * Return conventions: run() returns the exit status of the program (documented in
 * snapsetctl(8)), after having told the user what went wrong. Helpers that do not talk to the
 * user return a negative errno, as everywhere else in snapset. */

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "macro.h"
#include "vss-error.h"

typedef struct json_object json_object;

typedef struct Verb {
        const char *name;
        const char *args;            /* synopsis of the arguments, "METHOD [PARAMETERS|-]"; NULL if none */
        const char *summary;         /* one line in the list of 'snapsetctl --help' */
        const char *help;            /* more text for 'snapsetctl help VERB'; NULL if none */
        unsigned min_args, max_args;
        const struct option *options; /* the verb's own long options, {} terminated; NULL if none */
        /* Called for each of the verb's own options. Returns 0, or -EINVAL after usage_error(). */
        int (*parse_option)(const struct Verb *verb, int option, const char *arg);
        /* The verb's options come before its first argument, and everything from there on is
         * its arguments, "--" included (exec: VOLUME... -- COMMAND [ARG...]). */
        bool options_first;
        /* Runs the verb with its positional arguments; returns an exit status. */
        int (*run)(int argc, char *argv[]);
} Verb;

/* The verbs, in the order 'snapsetctl --help' lists them. */
#define SNAPSETCTL_VERBS(X) \
        X(status)           \
        X(providers)        \
        X(volumes)          \
        X(create)           \
        X(list)             \
        X(show)             \
        X(delete)           \
        X(exec)             \
        X(expose)           \
        X(unexpose)         \
        X(revert)           \
        X(break)            \
        X(sets)             \
        X(prune)            \
        X(check)            \
        X(abort)            \
        X(cleanup)          \
        X(call)             \
        X(help)

#define SNAPSETCTL_DECLARE_VERB(name) extern const Verb verb_##name;
SNAPSETCTL_VERBS(SNAPSETCTL_DECLARE_VERB)
#undef SNAPSETCTL_DECLARE_VERB

/* Option values of getopt_long(): short options use their letter; the global long options come
 * next; each verb numbers its own options from ARG_VERB_FIRST. */
enum {
        ARG_VERSION = 0x100,
        ARG_JSON,
        ARG_SOCKET,
        ARG_TIMEOUT,
        ARG_VERB_FIRST = 0x200,
};

typedef enum JsonMode {
        JSON_OFF,
        JSON_SHORT,   /* one line per document */
        JSON_PRETTY,  /* indented */
        _JSON_MODE_MAX,
        _JSON_MODE_INVALID = -EINVAL,
} JsonMode;

/* snapsetctl's own exit status for a call that got no reply in time (EX_TEMPFAIL of sysexits.h):
 * unlike 69, the daemon was reached, and it may still carry the call out. The other statuses are
 * in vss-error.h. */
#define SNAPSETCTL_EXIT_TIMEOUT 75

/* The global options. */
extern const char *arg_socket;
extern JsonMode arg_json;
extern uint64_t arg_timeout_usec;   /* USEC_INFINITY (parse.h): each method's default */

const Verb *verb_find(const char *name);

typedef struct json_object json_object;

/* The "Needs attention:" lines of status, also printed by cleanup for what remains. */
void print_attention(json_object *list);

/* Prints the help of the program (verb == NULL) or of one verb. */
void help_print(const Verb *verb, FILE *f);

/* Reports a usage error: the message, then a hint at the right --help. Returns -EINVAL. */
int usage_error(const Verb *verb, const char *format, ...) _printf_(2, 3);

/* The parameters of CreateSnapshotSet for the VOLUME[:OPTIONS] arguments of create and exec, in
 * context ("persistent", "backup"). Returns 0, -EINVAL after a usage error of verb, or -ENOMEM. */
int create_parameters(const Verb *verb, int argc, char *argv[], const char *context, json_object **ret);
