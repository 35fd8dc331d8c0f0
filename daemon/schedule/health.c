/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>
#include <stdio.h>

#include "blockdev.h"
#include "schedule/health.h"
#include "schedule/retention.h"

static const char *const status_names[_HEALTH_STATUS_MAX] = {
        [HEALTH_OK] = "ok",
        [HEALTH_WARNING] = "warning",
        [HEALTH_CRITICAL] = "critical",
        [HEALTH_UNKNOWN] = "unknown",
};

const char *health_status_to_string(HealthStatus s) {
        return s >= 0 && s < _HEALTH_STATUS_MAX ? status_names[s] : NULL;
}

void health_format_duration(uint64_t usec, char *buf, size_t n) {
        uint64_t s = usec / USEC_PER_SEC;

        if (s >= 86400)
                snprintf(buf, n, "%llud %lluh", (unsigned long long) (s / 86400), (unsigned long long) (s % 86400 / 3600));
        else if (s >= 3600)
                snprintf(buf, n, "%lluh %llumin", (unsigned long long) (s / 3600), (unsigned long long) (s % 3600 / 60));
        else if (s >= 60)
                snprintf(buf, n, "%llumin", (unsigned long long) (s / 60));
        else
                snprintf(buf, n, "%llus", (unsigned long long) s);
}

/* Worse (a higher Nagios code, UNKNOWN below CRITICAL) wins. */
static int rank(HealthStatus s) {
        return s == HEALTH_UNKNOWN ? 1 : s == HEALTH_OK ? 0 : (int) s * 2;
}

_printf_(3, 4)
static int finding(Health *h, HealthStatus s, const char *format, ...) {
        _cleanup_free_ char *m = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&m, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (rank(s) > rank(h->status))
                h->status = s;
        return blockdev_strv_push(&h->messages, m);
}

static const SnapshotSet *newest_set(const HealthInput *in) {
        const SnapshotSet *newest = NULL;

        for (size_t i = 0; i < in->n_sets; i++)
                if (!newest || in->sets[i]->created_usec > newest->created_usec)
                        newest = in->sets[i];
        return newest;
}

static int check_age(const HealthInput *in, Health *h) {
        const SetDefinition *d = in->definition;
        const SnapshotSet *newest = newest_set(in);
        uint64_t since, warn, crit;
        char age[32], period[32];

        if (!d->on_calendar)
                return 0;   /* taken by hand only: no age to expect */
        if (in->period_usec == 0)
                return finding(h, HEALTH_UNKNOWN, "cannot tell whether sets are taken on time: %s",
                               in->period_error ?: "the schedule's period is unknown");
        warn = (uint64_t) (d->warn_after_periods * (double) in->period_usec);
        crit = (uint64_t) (d->critical_after_periods * (double) in->period_usec);
        health_format_duration(in->period_usec, period, sizeof period);
        if (!newest) {
                since = in->now_usec > in->definition_changed_usec ? in->now_usec - in->definition_changed_usec : 0;
                if (since < warn)
                        return 0;
                health_format_duration(since, age, sizeof age);
                return finding(h, HEALTH_WARNING, "no set taken yet, %s after the definition changed (schedule: every "
                               "%s); is snapset-create@%s.timer enabled?", age, period, d->name);
        }
        since = in->now_usec > newest->created_usec ? in->now_usec - newest->created_usec : 0;
        health_format_duration(since, age, sizeof age);
        if (since >= crit)
                return finding(h, HEALTH_CRITICAL, "newest set is %s old, over %g periods of its schedule (every %s); "
                               "see 'systemctl status snapset-create@%s'", age, d->critical_after_periods, period, d->name);
        if (since >= warn)
                return finding(h, HEALTH_WARNING, "newest set is %s old, over %g periods of its schedule (every %s); "
                               "see 'systemctl status snapset-create@%s'", age, d->warn_after_periods, period, d->name);
        return 0;
}

static int check_pruning(const HealthInput *in, Health *h) {
        const SnapshotSet *newest = newest_set(in);
        _cleanup_free_ RetentionItem *items = NULL;
        size_t doomed = 0;
        int r;

        if (!newest || !retention_is_set(&in->definition->retention))
                return 0;
        items = calloc(in->n_sets, sizeof *items);
        if (!items)
                return -ENOMEM;
        for (size_t i = 0; i < in->n_sets; i++)
                items[i] = (RetentionItem) { .id = in->sets[i]->id, .created_usec = in->sets[i]->created_usec };
        r = retention_apply(&in->definition->retention, in->now_usec, items, in->n_sets);
        if (r < 0)
                return r;
        for (size_t i = 0; i < in->n_sets; i++)
                doomed += !items[i].keep;
        if (doomed == 0 || in->now_usec < newest->created_usec + HEALTH_PRUNE_GRACE_USEC)
                return 0;
        return finding(h, HEALTH_WARNING, "pruning is overdue: %zu of %zu sets are past the retention policy; run "
                       "'snapsetctl prune %s' and check that snapset-prune.timer is enabled", doomed, in->n_sets,
                       in->definition->name);
}

/* One message per pool or store, the first snapshot that shows it. */
static bool seen_pool(const HealthInput *in, size_t set, size_t snap) {
        const char *pool = in->sets[set]->snapshots[snap]->pool;

        for (size_t i = 0; i <= set; i++)
                for (size_t j = 0; j < in->sets[i]->n_snapshots && (i < set || j < snap); j++)
                        if (streq_ptr(in->sets[i]->snapshots[j]->pool, pool))
                                return true;
        return false;
}

static int check_space(const HealthInput *in, Health *h) {
        double limit = in->definition->warn_used_percent;
        int r = 0;

        for (size_t i = 0; r == 0 && i < in->n_sets; i++)
                for (size_t j = 0; r == 0 && j < in->sets[i]->n_snapshots; j++) {
                        const Snapshot *s = in->sets[i]->snapshots[j];

                        if (s->invalid)
                                r = finding(h, HEALTH_CRITICAL, "snapshot %s of %s (set %s) is invalid: its copy-on-write "
                                            "store overflowed; delete the set", s->id, s->volume, s->set_id);
                        else if (s->cow_used_percent >= limit)
                                r = finding(h, HEALTH_WARNING, "the copy-on-write store of snapshot %s of %s is %.0f%% full "
                                            "(WarnUsedPercent=%.0f); it becomes invalid when full", s->id, s->volume,
                                            s->cow_used_percent, limit);
                        else if (s->pool && !seen_pool(in, i, j) &&
                                 (s->pool_data_used_percent >= limit || s->pool_metadata_used_percent >= limit))
                                r = finding(h, HEALTH_WARNING, "thin pool %s is %.0f%% full (data) and %.0f%% (metadata), "
                                            "WarnUsedPercent=%.0f; extend it or prune", s->pool,
                                            s->pool_data_used_percent, s->pool_metadata_used_percent, limit);
                }
        return r;
}

int health_check(const HealthInput *in, Health *ret) {
        Health h = { .status = HEALTH_OK, .messages = calloc(1, sizeof(char *)) };
        int r;

        if (!h.messages)
                return -ENOMEM;
        if (in->definition->error)
                r = finding(&h, HEALTH_CRITICAL, "the definition cannot be used: %s", in->definition->error);
        else
                r = check_age(in, &h) ?: check_pruning(in, &h) ?: check_space(in, &h);
        if (r < 0) {
                health_done(&h);
                return r;
        }
        *ret = h;
        return 0;
}

int health_check_space(const HealthInput *in, Health *ret) {
        Health h = { .status = HEALTH_OK, .messages = calloc(1, sizeof(char *)) };
        int r;

        if (!h.messages)
                return -ENOMEM;
        r = check_space(in, &h);
        if (r < 0) {
                health_done(&h);
                return r;
        }
        *ret = h;
        return 0;
}

void health_done(Health *h) {
        strv_free(h->messages);
        *h = (Health) {};
}
