/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl create: CreateSnapshotSet, a persistent set of the volumes given, at one point in
 * time. */

#include "json-util.h"
#include "connection.h"
#include "log.h"
#include "output.h"
#include "parse.h"
#include "set-print.h"
#include "snapsetctl.h"

enum {
        ARG_CONTEXT = ARG_VERB_FIRST,
        ARG_COW_SIZE,
        ARG_PROVIDER,
        ARG_DEFINITION,
};

/* The defaults for every volume that does not name its own. */
static uint64_t arg_cow_size = 0;
static const char *arg_provider = NULL;
static const char *arg_definition = NULL;

static const struct option create_options[] = {
        { "context",  required_argument, NULL, ARG_CONTEXT },
        { "cow-size", required_argument, NULL, ARG_COW_SIZE },
        { "provider", required_argument, NULL, ARG_PROVIDER },
        { "definition", required_argument, NULL, ARG_DEFINITION },
        {}
};

static int create_parse_option(const Verb *verb, int option, const char *arg) {
        int r;

        switch (option) {
        case ARG_CONTEXT:
                if (streq(arg, "persistent"))
                        return 0;
                /* A backup set lives as long as the connection that made it, and snapsetctl's
                 * connection ends when snapsetctl does: the set would be deleted before anyone
                 * could read it. Refuse rather than make a set that vanishes. */
                if (streq(arg, "backup")) {
                        log_error("--context=backup cannot work with snapsetctl: snapsetd deletes a backup set "
                                  "when the connection that created it closes, which is when snapsetctl exits.");
                        return usage_error(verb, "Create a persistent set (the default) and 'snapsetctl delete' it "
                                           "when done; backup sets are for programs that keep their connection "
                                           "to snapsetd open (see snapsetctl(8)).");
                }
                return usage_error(verb, "Unknown context '%s'; snapsetctl creates persistent sets.", arg);

        case ARG_COW_SIZE:
                r = parse_size(arg, &arg_cow_size);
                if (r == -ERANGE)
                        return usage_error(verb, "The COW size '%s' is too large.", arg);
                if (r < 0)
                        return usage_error(verb, "'%s' is not a size: give bytes, or a number with K, M, G or T "
                                           "(powers of 1024), like 512M or 1.5G.", arg);
                if (arg_cow_size == 0)
                        return usage_error(verb, "The COW size must be more than 0.");
                return 0;

        case ARG_PROVIDER:
                if (!*arg)
                        return usage_error(verb, "The provider name must not be empty.");
                arg_provider = arg;
                return 0;

        case ARG_DEFINITION:
                if (!*arg)
                        return usage_error(verb, "The set definition name must not be empty.");
                arg_definition = arg;
                return 0;

        default:
                return -EINVAL;
        }
}

/* One VolumeRequest: the volume, and its provider and COW size, its own or the command's. */
static int volume_request_new(const VolumeSpec *spec, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        const char *provider = spec->provider ?: arg_provider;
        uint64_t cow_size = spec->cow_size > 0 ? spec->cow_size : arg_cow_size;

        if (!o || json_add_string(o, "volume", spec->volume) < 0 ||
            (provider && json_add_string(o, "provider", provider) < 0) ||
            (cow_size > 0 && json_add_int(o, "cowSizeBytes", (int64_t) cow_size) < 0))
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

int create_parameters(const Verb *verb, int argc, char *argv[], const char *context, json_object **ret) {
        _cleanup_(json_object_putp) json_object *p = json_object_new_object(), *volumes = json_object_new_array();
        int r;

        if (!p || !volumes)
                return -ENOMEM;

        for (int i = 0; i < argc; i++) {
                _cleanup_(volume_spec_done) VolumeSpec spec = {};
                char reason[VOLUME_SPEC_REASON_MAX];
                json_object *request;

                r = volume_spec_parse(argv[i], &spec, reason);
                if (r == -ENOMEM)
                        return r;
                if (r < 0)
                        return usage_error(verb, "Invalid volume '%s': %s.", argv[i], reason);

                r = volume_request_new(&spec, &request);
                if (r < 0)
                        return r;
                if (json_object_array_add(volumes, request) < 0) {
                        json_object_put(request);
                        return -ENOMEM;
                }
        }

        if (json_object_object_add(p, "volumes", TAKE_PTR(volumes)) < 0 ||
            json_add_string(p, "context", context) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(p);
        return 0;
}

/* A timer's set waits for a set that another client is making (StartSnapshotSet and its
 * AddToSnapshotSet calls hold the creation lock between calls): it asks again every few seconds,
 * for as long as the lock may legitimately be held, instead of losing its run. */
#define DEFINED_RETRY_USEC (5 * USEC_PER_SEC)
#define DEFINED_RETRY_FOR_USEC (15 * 60 * USEC_PER_SEC)

static int create_defined(json_object *parameters, json_object **reply) {
        int in_progress = vss_code_info(VSS_E_SNAPSHOT_SET_IN_PROGRESS)->exit_status;
        uint64_t give_up = now_monotonic_usec() + DEFINED_RETRY_FOR_USEC;
        int status;

        for (;;) {
                status = connection_call_once(SNAPSET_METHOD("CreateDefinedSet"), parameters, reply);
                if (status != in_progress || now_monotonic_usec() >= give_up)
                        return status;
                log_info("Another snapshot set is being created; asking again in %llu s.",
                         (unsigned long long) (DEFINED_RETRY_USEC / USEC_PER_SEC));
                json_object_put(*reply);
                *reply = NULL;
                (void) usleep(DEFINED_RETRY_USEC);
        }
}

static int create_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *parameters = NULL, *reply = NULL;
        json_object *set;
        int r, status;

        if (arg_definition && (argc > 0 || arg_provider || arg_cow_size))
                return usage_error(&verb_create, "--definition takes the volumes, providers and COW sizes from the "
                                   "definition: give no volumes and no --provider or --cow-size."), SNAPSET_EXIT_USAGE;
        if (!arg_definition && argc == 0)
                return usage_error(&verb_create, "Name the volumes to snapshot, or a set definition with "
                                   "--definition=NAME."), SNAPSET_EXIT_USAGE;
        if (arg_definition)
                r = (parameters = parameters_new_string("definition", arg_definition)) ? 0 : -ENOMEM;
        else
                r = create_parameters(&verb_create, argc, argv, "persistent", &parameters);
        if (r == -EINVAL)
                return SNAPSET_EXIT_USAGE;
        if (r < 0) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }

        connection_expect_volumes((size_t) argc);
        status = arg_definition ? create_defined(parameters, &reply) :
                 connection_call_once(SNAPSET_METHOD("CreateSnapshotSet"), parameters, &reply);
        if (status != 0)
                return status;

        set = reply_get_object(reply, "set");
        if (!set) {
                log_error("snapsetd's reply to CreateSnapshotSet has no set.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        if (arg_json != JSON_OFF)
                return output_json(stdout, set, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        if (print_set(set) < 0) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

const Verb verb_create = {
        .name = "create",
        .args = "VOLUME[:OPTIONS]...|--definition=NAME",
        .summary = "Snapshot volumes at one point in time, as a persistent set",
        .help = "VOLUME is a block device (/dev/vg0/root) or a mounted filesystem (/home). OPTIONS\n"
                "after a colon, KEY=VALUE separated by commas, apply to that volume alone and\n"
                "take precedence over --cow-size and --provider: cow-size=SIZE, provider=NAME,\n"
                "as in /dev/vg0/db:cow-size=4G,provider=lvm.\n"
                "Prints the set id, each volume's snapshot device and snapshot id, and how long\n"
                "writes were blocked (the freeze window). With --json, prints the set as JSON.\n"
                "The set is persistent: it survives snapsetctl, snapsetd restarts and reboots,\n"
                "until 'snapsetctl delete SET-ID'.\n"
                "With --definition=NAME, the set of /etc/snapset/sets.d/NAME.conf is taken as its\n"
                "timer takes it: its volumes, its application hooks around the freeze, tagged\n"
                "with its name so that its retention policy prunes it (snapset-sets(5)).\n"
                "\n"
                "Options of create:\n"
                "     --definition=NAME      Take the set of a set definition\n"
                "     --cow-size=SIZE        Size of the copy-on-write store of each classic\n"
                "                            snapshot: bytes, or with K, M, G, T (powers of 1024)\n"
                "     --provider=NAME        Use this provider for every volume ('snapsetctl\n"
                "                            providers' lists them); default: the first that can\n"
                "     --context=persistent   The only context snapsetctl creates; a backup set,\n"
                "                            deleted when its connection closes, would vanish as\n"
                "                            snapsetctl exits: use it from programs that hold their\n"
                "                            connection (see snapsetctl(8))\n",
        .min_args = 0,
        .max_args = UINT32_MAX,
        .options = create_options,
        .parse_option = create_parse_option,
        .run = create_run,
};
