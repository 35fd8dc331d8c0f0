/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetd: the snapshot set daemon. This file is the program's lifecycle only: command line,
 * configuration, state directory, then the manager's loop between READY=1 and STOPPING=1. */

#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "sets.h"

#define DEFAULT_SOCKET_PATH SNAPSET_RUNSTATEDIR "/snapset/io.snapset.Manager"

/* Exit statuses (snapsetd(8)); sysexits(3) values, so that the unit can tell a configuration
 * problem, which a restart will not fix (RestartPreventExitStatus=), from a failure. */
enum {
        EXIT_USAGE = 64,   /* EX_USAGE: bad command line */
        EXIT_CONFIG = 78,  /* EX_CONFIG: bad or missing configuration file */
};

static const char *arg_config = NULL;
static const char *arg_socket = NULL;
static const char *arg_state_dir = NULL;
static int arg_log_level = -1;
static bool arg_rescue = false;
static bool arg_activate = false;

static void help(void) {
        printf("Usage: snapsetd [OPTION...]\n"
               "Serve io.snapset.Manager: crash-consistent snapshots of a set of block devices.\n"
               "\n"
               "  -c, --config=FILE      read FILE instead of %s\n"
               "  -s, --socket=PATH      listen on PATH instead of %s\n"
               "                         (ignored when the service manager passes a socket)\n"
               "  -d, --state-dir=DIR    keep state in DIR instead of StateDirectory= (%s)\n"
               "  -l, --log-level=LEVEL  err, warning, notice, info or debug (overrides LogLevel=)\n"
               "      --rescue           only resume and thaw what an interrupted set left, from\n"
               "                         the records in /run, then exit (snapset-rescue.service)\n"
               "      --activate         only re-arm the persistent snapshots that must be active\n"
               "                         before their origins are mounted, then exit\n"
               "                         (snapset-activate.service, early at boot)\n"
               "  -h, --help             show this help\n"
               "  -V, --version          show the version\n"
               "\n"
               "See snapsetd(8) and snapsetd.conf(5).\n",
               CONFIG_DEFAULT_PATH, DEFAULT_SOCKET_PATH, CONFIG_DEFAULT_STATE_DIRECTORY);
}

/* Returns 1 to run, 0 to exit successfully (--help), or -EINVAL (already reported). */
static int parse_argv(int argc, char *argv[]) {
        static const struct option options[] = {
                { "config",    required_argument, NULL, 'c' },
                { "socket",    required_argument, NULL, 's' },
                { "state-dir", required_argument, NULL, 'd' },
                { "log-level", required_argument, NULL, 'l' },
                { "rescue",    no_argument,       NULL, 'R' },
                { "activate",  no_argument,       NULL, 'A' },
                { "help",      no_argument,       NULL, 'h' },
                { "version",   no_argument,       NULL, 'V' },
                {}
        };
        int c;

        while ((c = getopt_long(argc, argv, "c:s:d:l:hV", options, NULL)) >= 0)
                switch (c) {
                case 'c':
                        arg_config = optarg;
                        break;
                case 's':
                        if (optarg[0] != '/') {
                                log_error("--socket=%s: not an absolute path.", optarg);
                                return -EINVAL;
                        }
                        arg_socket = optarg;
                        break;
                case 'd':
                        if (optarg[0] != '/') {
                                log_error("--state-dir=%s: not an absolute path.", optarg);
                                return -EINVAL;
                        }
                        arg_state_dir = optarg;
                        break;
                case 'l':
                        arg_log_level = log_level_from_string(optarg);
                        if (arg_log_level < 0) {
                                log_error("--log-level=%s: not a log level (err, warning, notice, info, debug or 0-7).",
                                          optarg);
                                return -EINVAL;
                        }
                        log_set_max_level(arg_log_level);
                        break;
                case 'R':
                        arg_rescue = true;
                        break;
                case 'A':
                        arg_activate = true;
                        break;
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("snapsetd %s\n", SNAPSET_VERSION);
                        return 0;
                default:
                        /* getopt has printed what was wrong. */
                        fprintf(stderr, "Try 'snapsetd --help'.\n");
                        return -EINVAL;
                }

        if (arg_rescue && arg_activate) {
                log_error("--rescue and --activate are two separate steps; give one.");
                return -EINVAL;
        }
        if (optind < argc) {
                log_error("Unexpected argument '%s'; snapsetd takes options only.", argv[optind]);
                return -EINVAL;
        }
        return 1;
}

static char *dirname_of(const char *path) {
        const char *slash = strrchr(path, '/');

        if (!slash || slash == path)
                return strdup("/");
        return strndup(path, (size_t) (slash - path));
}

/* The state directory must exist and be ours alone before anything is recorded there. */
static int state_directory_prepare(const char *path) {
        struct stat st;

        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return log_error_errno(errno, "Failed to create the state directory %s: %m "
                                       "(use --state-dir= or StateDirectory= to choose another).", path);
        if (stat(path, &st) < 0)
                return log_error_errno(errno, "Failed to access the state directory %s: %m", path);
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(ENOTDIR, "The state directory %s is not a directory.", path);
        if (st.st_uid != geteuid())
                log_warning("The state directory %s is owned by uid %lu, not by us.", path,
                            (unsigned long) st.st_uid);
        return 0;
}

int main(int argc, char *argv[]) {
        _cleanup_(manager_freep) Manager *m = NULL;
        _cleanup_(config_done) Config config = {};
        _cleanup_free_ char *message = NULL;
        const char *config_path;
        int r;

        log_set_program_name("snapsetd");

        r = parse_argv(argc, argv);
        if (r <= 0)
                return r < 0 ? EXIT_USAGE : EXIT_SUCCESS;

        /* The default file is optional (every key has a default); a file named with --config
         * must exist. */
        config_path = arg_config ?: CONFIG_DEFAULT_PATH;
        r = config_load(config_path, !arg_config, &config, &message);
        if (r < 0) {
                if (message)
                        log_error("%s", message);
                else
                        log_error_errno(r, "Failed to read %s: %m", config_path);
                return EXIT_CONFIG;
        }
        if (arg_log_level < 0)
                log_set_max_level(config.log_level);

        r = manager_new(&config, &m);
        if (r < 0) {
                log_oom();
                return EXIT_FAILURE;
        }
        m->log_level_override = arg_log_level;
        m->config_path_explicit = arg_config != NULL;
        m->config_path = strdup(config_path);
        m->socket_path = strdup(arg_socket ?: DEFAULT_SOCKET_PATH);
        m->state_directory = strdup(arg_state_dir ?: m->config.state_directory);
        if (!m->config_path || !m->socket_path || !m->state_directory) {
                log_oom();
                return EXIT_FAILURE;
        }

        /* Runtime state (in-flight records) lives next to the socket: /run/snapset, or a test's
         * private directory with --socket. */
        m->runtime_directory = dirname_of(m->socket_path);
        if (!m->runtime_directory) {
                log_oom();
                return EXIT_FAILURE;
        }

        /* Early at boot: only what must be active before the local filesystems are mounted.
         * Nothing can be frozen yet (/run is new), and nothing may be written but /run. */
        if (arg_activate)
                return sets_activate_early(m) < 0 ? EXIT_FAILURE : EXIT_SUCCESS;

        /* Before anything may write to a filesystem (the state directory, the journal): resume
         * and thaw what a killed predecessor left, if its guardian could not. */
        sets_rescue(m);
        if (arg_rescue)
                return EXIT_SUCCESS;

        r = state_directory_prepare(m->state_directory);
        if (r < 0)
                return EXIT_FAILURE;

        /* Then what the rescue could not do alone (providers remove what an interrupted set
         * made), and the recorded sets. */
        r = sets_startup(m);
        if (r < 0)
                return EXIT_FAILURE;

        r = manager_startup(m);
        if (r < 0)
                return EXIT_FAILURE;

        log_info("snapsetd %s started, serving io.snapset.Manager on %s", SNAPSET_VERSION,
                 manager_serving_on(m));
        (void) sd_notify(false, "READY=1\nSTATUS=Processing requests...");

        r = manager_run(m);
        /* A set in creation is aborted and backup sets are deleted: their clients go with us. */
        sets_free(m);

        if (!m->exiting)
                (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down...");
        log_debug("snapsetd stopped.");
        return r < 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
