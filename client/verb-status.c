/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapsetctl status: GetStatus, as "Label: value" lines. */

#include "connection.h"
#include "log.h"
#include "output.h"
#include "snapsetctl.h"

static void print_int(unsigned indent, const char *label, json_object *o, const char *key) {
        int64_t v;

        if (reply_get_int(o, key, &v))
                output_field(indent, label, "%" PRIi64, v);
        else
                output_field(indent, label, "n/a");
}

/* A limit in seconds: 0 means the limit is off. */
static void print_seconds(unsigned indent, const char *label, json_object *o, const char *key) {
        char buf[FORMAT_DURATION_MAX];
        int64_t v;

        if (!reply_get_int(o, key, &v) || v < 0)
                output_field(indent, label, "n/a");
        else if (v == 0)
                output_field(indent, label, "none");
        else
                output_field(indent, label, "%s", format_duration(buf, sizeof buf, (uint64_t) v * USEC_PER_SEC));
}

static void print_bytes(unsigned indent, const char *label, json_object *o, const char *key) {
        char buf[FORMAT_BYTES_MAX];
        int64_t v;

        if (reply_get_int(o, key, &v) && v >= 0)
                output_field(indent, label, "%s", format_bytes(buf, sizeof buf, (uint64_t) v));
        else
                output_field(indent, label, "n/a");
}

/* "2024-05-01 12:00:01 CEST (12s ago)" */
static void print_start_time(unsigned indent, const char *label, json_object *o, const char *key) {
        char when[FORMAT_TIMESTAMP_AGO_MAX];
        int64_t v;

        if (!reply_get_int(o, key, &v) || v < 0 ||
            !format_timestamp_ago(when, sizeof when, (uint64_t) v, now_realtime_usec()))
                output_field(indent, label, "n/a");
        else
                output_field(indent, label, "%s", when);
}

static int print_set_in_progress(json_object *set) {
        _cleanup_free_ char *volumes = NULL;

        if (!set) {
                output_field(0, "Set in progress:", "none");
                return 0;
        }

        volumes = reply_join_strings(reply_get_array(set, "volumes"), ", ");
        if (!volumes)
                return -ENOMEM;

        output_field(0, "Set in progress:", "%s (%s)",
                     strna(reply_get_string(set, "id")), strna(reply_get_string(set, "context")));
        output_field(2, "Phase:", "%s", strna(reply_get_string(set, "phase")));
        output_field(2, "Volumes:", "%s", *volumes ? volumes : "none yet");
        print_start_time(2, "Started:", set, "startedUsec");
        return 0;
}

/* Sets left by an interrupted run or a failed abort: what an administrator must look at. */
void print_attention(json_object *list) {
        size_t n = list ? json_object_array_length(list) : 0;

        output_field(0, "Needs attention:", n == 0 ? "nothing" : "%zu snapshot set(s) not fully undone "
                     "(fix the cause, then 'snapsetctl cleanup')", n);
        for (size_t i = 0; i < n; i++) {
                json_object *a = json_object_array_get_idx(list, i);

                output_field(2, "Set:", "%s", strna(reply_get_string(a, "setId")));
                output_field(4, "Why:", "%s", strna(reply_get_string(a, "message")));
        }
}

static void print_limits(json_object *limits) {
        int64_t total, per_user;

        output_field(0, "Limits:", "%s", limits ? "" : "n/a");
        if (!limits)
                return;
        print_int(2, "Volumes per set:", limits, "maxVolumesPerSet");
        print_int(2, "Snapshots per volume:", limits, "maxSnapshotsPerVolume");
        if (reply_get_int(limits, "maxConnections", &total) &&
            reply_get_int(limits, "maxConnectionsPerUser", &per_user))
                output_field(2, "Connections:", "%" PRIi64 ", %" PRIi64 " per user", total, per_user);
        else
                output_field(2, "Connections:", "n/a");
        print_bytes(2, "Message size:", limits, "maxMessageBytes");
        print_seconds(2, "Idle timeout:", limits, "idleTimeoutSec");
        print_seconds(2, "Set idle timeout:", limits, "setIdleTimeoutSec");
        print_seconds(2, "Flush timeout:", limits, "flushTimeoutSec");
        print_seconds(2, "Hold timeout:", limits, "holdTimeoutSec");
}

static int status_print(json_object *p) {
        char buf[FORMAT_DURATION_MAX];
        int64_t uptime;

        output_field(0, "Version:", "%s", strna(reply_get_string(p, "version")));
        if (reply_get_int(p, "uptimeUsec", &uptime) && uptime >= 0)
                output_field(0, "Uptime:", "%s", format_duration(buf, sizeof buf, (uint64_t) uptime));
        else
                output_field(0, "Uptime:", "n/a");
        if (print_set_in_progress(reply_get_object(p, "setInProgress")) < 0)
                return -ENOMEM;
        print_attention(reply_get_array(p, "needsAttention"));
        print_int(0, "Snapshot sets:", p, "sets");
        print_int(0, "Snapshots:", p, "snapshots");
        print_int(0, "Connections:", p, "connections");
        output_field(0, "State directory:", "%s", strna(reply_get_string(p, "stateDirectory")));
        print_limits(reply_get_object(p, "limits"));
        return 0;
}

static int status_run(int argc, char *argv[]) {
        _cleanup_(json_object_putp) json_object *reply = NULL;
        int status;

        status = connection_call_once(SNAPSET_METHOD("GetStatus"), NULL, &reply);
        if (status != 0)
                return status;

        if (arg_json != JSON_OFF)
                return output_json(stdout, reply, arg_json) < 0 ? SNAPSET_EXIT_FAILURE : 0;
        if (status_print(reply) < 0) {
                log_oom();
                return SNAPSET_EXIT_FAILURE;
        }
        return 0;
}

const Verb verb_status = {
        .name = "status",
        .summary = "Show version, uptime, limits, the set in creation and what needs attention",
        .run = status_run,
};
