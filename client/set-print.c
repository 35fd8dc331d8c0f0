/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>

#include "set-print.h"

/* ---------------------------------------------------------------- fields */

static bool get_usec(json_object *o, const char *key, uint64_t *ret) {
        int64_t v;

        if (!reply_get_int(o, key, &v) || v < 0)
                return false;
        *ret = (uint64_t) v;
        return true;
}

char *set_freeze_window_text(json_object *set) {
        char window[FORMAT_MSEC_MAX], hold[FORMAT_MSEC_MAX];
        uint64_t w, h;
        char *s;
        int r;

        if (!get_usec(set, "freezeWindowUsec", &w))
                return NULL;
        if (get_usec(set, "holdUsec", &h))
                r = asprintf(&s, "%s (writes held %s)",
                             format_msec(window, sizeof window, w), format_msec(hold, sizeof hold, h));
        else
                r = asprintf(&s, "%s", format_msec(window, sizeof window, w));
        return r < 0 ? NULL : s;
}

/* "2G", or "" when the snapshot has no COW store of its own (thin snapshots). */
static char *cow_size_text(char *buf, size_t size, json_object *snapshot) {
        int64_t v;

        buf[0] = 0;
        if (reply_get_int(snapshot, "cowSizeBytes", &v) && v >= 0)
                format_bytes(buf, size, (uint64_t) v);
        return buf;
}

/* A percentage field, or false. Accepts an integer too: JSON does not tell 3 from 3.0. */
static bool get_percent(json_object *o, const char *key, double *ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return false;
        *ret = json_object_get_double(v);
        return true;
}

/* How full what the snapshot lives in is: "3.2%" of its COW store for a classic snapshot,
 * "21.5% pool" (data) for a thin one, or "". */
static char *used_text(char *buf, size_t size, json_object *snapshot) {
        double v;

        buf[0] = 0;
        if (get_percent(snapshot, "cowUsedPercent", &v))
                snprintf(buf, size, "%.1f%%", v);
        else if (get_percent(snapshot, "poolDataUsedPercent", &v))
                snprintf(buf, size, "%.1f%% pool", v);
        return buf;
}

static void print_time_field(const char *label, json_object *o, const char *key) {
        char when[FORMAT_TIMESTAMP_AGO_MAX];
        uint64_t usec;

        if (get_usec(o, key, &usec) && format_timestamp_ago(when, sizeof when, usec, now_realtime_usec()))
                output_field(0, label, "%s", when);
        else
                output_field(0, label, "n/a");
}

/* ---------------------------------------------------------------- one snapshot */

int print_snapshot(json_object *snapshot) {
        char size[FORMAT_BYTES_MAX], used[24];

        output_field(0, "Snapshot:", "%s", strna(reply_get_string(snapshot, "id")));
        output_field(0, "Set:", "%s", strna(reply_get_string(snapshot, "setId")));
        output_field(0, "Volume:", "%s", strna(reply_get_string(snapshot, "volume")));
        output_field(0, "Volume device:", "%s", strna(reply_get_string(snapshot, "volumeDevice")));
        output_field(0, "Provider:", "%s", strna(reply_get_string(snapshot, "provider")));
        output_field(0, "Device:", "%s", reply_get_string(snapshot, "device") ?: "none");
        output_field(0, "Exposed at:", "%s", reply_get_string(snapshot, "exposedAt") ?: "not exposed");
        print_time_field("Created:", snapshot, "createdUsec");
        cow_size_text(size, sizeof size, snapshot);
        output_field(0, "Kind:", "%s", reply_get_string(snapshot, "kind") ?: "n/a");
        if (reply_get_string(snapshot, "pool")) {
                double data = -1, meta = -1;

                output_field(0, "Thin pool:", "%s", reply_get_string(snapshot, "pool"));
                if (get_percent(snapshot, "poolDataUsedPercent", &data) &&
                    get_percent(snapshot, "poolMetadataUsedPercent", &meta))
                        output_field(0, "Pool used:", "%.1f%% of its data, %.1f%% of its metadata", data, meta);
        }
        if (!get_percent(snapshot, "cowUsedPercent", &(double) {0}) && !*size)
                ;   /* a thin snapshot: no store of its own */
        else {
                output_field(0, "COW size:", "%s", *size ? size : "n/a");
                used_text(used, sizeof used, snapshot);
                output_field(0, "COW used:", "%s", *used ? used : "n/a");
        }
        output_field(0, "Status:", "%s", strna(reply_get_string(snapshot, "status")));
        if (reply_get_string(snapshot, "note"))
                output_field(0, "Note:", "%s", reply_get_string(snapshot, "note"));
        if (reply_get_string(snapshot, "revert")) {
                double merged;

                output_field(0, "Revert:", "%s", streq(reply_get_string(snapshot, "revert"), "pending") ?
                             "pending (the merge starts at the volume's next activation)" : "merging into the volume");
                if (get_percent(snapshot, "mergePercent", &merged))
                        output_field(0, "Merged:", "%.0f%%", merged);
        }
        return 0;
}

/* ---------------------------------------------------------------- the snapshots of a set */

static int snapshots_print_table(json_object *snapshots, size_t indent) {
        _cleanup_(table_freep) Table *t = NULL;
        size_t n = snapshots ? json_object_array_length(snapshots) : 0;
        int r;

        t = table_new(7, "VOLUME", "DEVICE", "SNAPSHOT", "KIND", "COW SIZE", "USED", "STATUS");
        if (!t)
                return -ENOMEM;
        table_set_indent(t, indent);
        table_align_right(t, 4);
        table_align_right(t, 5);

        for (size_t i = 0; i < n; i++) {
                json_object *s = json_object_array_get_idx(snapshots, i);
                char size[FORMAT_BYTES_MAX], used[24];

                r = table_add_row(t,
                                  reply_get_string(s, "volume"),
                                  reply_get_string(s, "device"),
                                  reply_get_string(s, "id"),
                                  reply_get_string(s, "kind"),
                                  cow_size_text(size, sizeof size, s),
                                  used_text(used, sizeof used, s),
                                  reply_get_string(s, "status"));
                if (r < 0)
                        return r;
        }
        return table_print(t, stdout);
}

/* One line per hook run: "prepare 10-db-flush: succeeded (exit status 0, 120 ms)". */
static void print_hook_runs(json_object *hooks) {
        size_t n = hooks ? json_object_array_length(hooks) : 0;

        for (size_t i = 0; i < n; i++) {
                json_object *h = json_object_array_get_idx(hooks, i);
                const char *path = strna(reply_get_string(h, "hook")), *base = strrchr(path, '/');
                int64_t status = 0, started = 0, finished = 0;

                (void) reply_get_int(h, "exitStatus", &status);
                (void) reply_get_int(h, "startedUsec", &started);
                (void) reply_get_int(h, "finishedUsec", &finished);
                output_field(0, i == 0 ? "Hooks:" : "", "%s %s: %s (exit status %lld, %lld ms)",
                             strna(reply_get_string(h, "phase")), base ? base + 1 : path,
                             strna(reply_get_string(h, "result")), (long long) status,
                             (long long) (finished > started ? (finished - started) / 1000 : 0));
        }
}

int print_set(json_object *set) {
        _cleanup_free_ char *window = set_freeze_window_text(set);
        json_object *snapshots = reply_get_array(set, "snapshots");
        size_t n = snapshots ? json_object_array_length(snapshots) : 0;

        output_field(0, "Snapshot set:", "%s", strna(reply_get_string(set, "id")));
        output_field(0, "Context:", "%s", strna(reply_get_string(set, "context")));
        output_field(0, "State:", "%s", strna(reply_get_string(set, "state")));
        print_time_field("Created:", set, "createdUsec");
        output_field(0, "Freeze window:", "%s", window ?: "n/a");
        output_field(0, "Consistency:", "%s", strna(reply_get_string(set, "consistency")));
        if (reply_get_string(set, "definition"))
                output_field(0, "Definition:", "%s", reply_get_string(set, "definition"));
        print_hook_runs(reply_get_array(set, "hooks"));
        output_field(0, "Snapshots:", "%zu", n);
        if (n == 0)
                return 0;
        putchar('\n');
        return snapshots_print_table(snapshots, 0);
}

/* "Set 3f2a… (persistent), created 2024-05-01 12:00:01 CEST, freeze window 12.345 ms (writes held
 * 3.210 ms)"; the state only when the set is not simply created. */
static char *group_header_text(json_object *set, json_object *snapshots) {
        json_object *first = snapshots && json_object_array_length(snapshots) > 0 ?
                json_object_array_get_idx(snapshots, 0) : NULL;
        const char *id = set ? reply_get_string(set, "id") : reply_get_string(first, "setId");
        const char *context = reply_get_string(set, "context"), *state = reply_get_string(set, "state");
        _cleanup_free_ char *window = set ? set_freeze_window_text(set) : NULL;
        char when[FORMAT_TIMESTAMP_MAX];
        _cleanup_free_ char *buf = NULL;
        size_t size = 0;
        uint64_t created;
        FILE *f;

        f = open_memstream(&buf, &size);
        if (!f)
                return NULL;
        fprintf(f, "Set %s", strna(id));
        if (context || (state && !streq(state, "created")))
                fprintf(f, " (%s%s%s)", strempty(context),
                        context && state && !streq(state, "created") ? ", " : "",
                        state && !streq(state, "created") ? state : "");
        if ((get_usec(set, "createdUsec", &created) || get_usec(first, "createdUsec", &created)) &&
            format_timestamp(when, sizeof when, created))
                fprintf(f, ", created %s", when);
        if (window)
                fprintf(f, ", freeze window %s", window);
        if (fclose(f) != 0)
                return NULL;
        return TAKE_PTR(buf);
}

int print_set_group(json_object *set, json_object *snapshots) {
        _cleanup_free_ char *header = NULL;

        header = group_header_text(set, snapshots);
        if (!header)
                return -ENOMEM;
        output_line("%s", header);
        if (!snapshots || json_object_array_length(snapshots) == 0) {
                puts("  (no snapshots)");
                return 0;
        }
        return snapshots_print_table(snapshots, 2);
}

/* ---------------------------------------------------------------- list --sets */

Table *sets_table_new(void) {
        Table *t = table_new(6, "SET", "CONTEXT", "STATE", "CREATED", "VOLUMES", "FREEZE WINDOW");

        if (!t)
                return NULL;
        table_align_right(t, 4);
        table_align_right(t, 5);
        return t;
}

int sets_table_add(Table *t, json_object *set) {
        json_object *snapshots = reply_get_array(set, "snapshots");
        char when[FORMAT_TIMESTAMP_MAX] = "", volumes[24] = "", window[FORMAT_MSEC_MAX] = "";
        uint64_t usec;

        if (get_usec(set, "createdUsec", &usec) && !format_timestamp(when, sizeof when, usec))
                when[0] = 0;
        if (snapshots)
                snprintf(volumes, sizeof volumes, "%zu", json_object_array_length(snapshots));
        if (get_usec(set, "freezeWindowUsec", &usec))
                format_msec(window, sizeof window, usec);

        return table_add_row(t,
                             reply_get_string(set, "id"),
                             reply_get_string(set, "context"),
                             reply_get_string(set, "state"),
                             when,
                             volumes,
                             window);
}
