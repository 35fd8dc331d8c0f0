/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl providers: ListProviders, as a table. */

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

static int providers_add_row(Table *t, json_object *p) {
        char priority[24] = "";
        int64_t prio;
        bool usable;

        if (reply_get_int(p, "priority", &prio))
                snprintf(priority, sizeof priority, "%" PRIi64, prio);
        return table_add_row(t,
                             reply_get_string(p, "name"),
                             reply_get_string(p, "kind"),
                             priority,
                             reply_get_bool(p, "usable", &usable) ? (usable ? "yes" : "no") : NULL,
                             reply_get_string(p, "reason"));
}

static int providers_print(json_object *providers) {
        _cleanup_(table_freep) Table *t = NULL;
        size_t n = json_object_array_length(providers);
        int r;

        t = table_new(5, "NAME", "KIND", "PRIORITY", "USABLE", "REASON");
        if (!t)
                return -ENOMEM;
        table_align_right(t, 2);

        for (size_t i = 0; i < n; i++) {
                r = providers_add_row(t, json_object_array_get_idx(providers, i));
                if (r < 0)
                        return r;
        }
        r = table_print(t, stdout);
        if (r < 0)
                return r;
        /* The notes, under the table: a sentence each, too long for a column. */
        for (size_t i = 0; i < n; i++) {
                json_object *p = json_object_array_get_idx(providers, i), *notes = reply_get_array(p, "notes");

                for (size_t j = 0; notes && j < json_object_array_length(notes); j++) {
                        const char *note = json_object_get_string(json_object_array_get_idx(notes, j));

                        if (note)
                                printf("%s%s: %s\n", i + j == 0 ? "\n" : "", strna(reply_get_string(p, "name")), note);
                }
        }
        return 0;
}

static int providers_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        json_object *providers;
        int status;

        status = connection_call_once(SNAPSET_METHOD("ListProviders"), NULL, &reply);
        if (status != 0)
                return status;

        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;

        providers = reply_get_array(reply, "providers");
        if (!providers) {
                log_error("snapsetd's reply to ListProviders has no list of providers.");
                return SNAPSET_EXIT_PROTOCOL;
        }
        if (providers_print(providers) < 0) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

const Verb verb_providers = {
        .name = "providers",
        .summary = "List the snapshot providers and whether they work here",
        .help = "A provider that is not usable says why in the REASON column. Notes under the table\n"
                "say how a provider works on this machine (for lvm: how thin LVs are snapshotted on\n"
                "this kernel).\n",
        .run = providers_run,
};
