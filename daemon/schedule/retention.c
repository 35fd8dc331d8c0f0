/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stddef.h>
#include <stdio.h>
#include <time.h>

#include "schedule/retention.h"

typedef struct PeriodClass {
        const char *name;
        const char *format;      /* strftime(3) of the local time: equal keys, same period */
        size_t keep_offset;      /* in Retention */
} PeriodClass;

static const PeriodClass period_classes[] = {
        { "hourly",  "%Y-%m-%d %Hh", offsetof(Retention, keep_hourly) },
        { "daily",   "%Y-%m-%d",     offsetof(Retention, keep_daily) },
        { "weekly",  "%G-W%V",       offsetof(Retention, keep_weekly) },
        { "monthly", "%Y-%m",        offsetof(Retention, keep_monthly) },
        { "yearly",  "%Y",           offsetof(Retention, keep_yearly) },
};

static const PeriodClass *class_by_name(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(period_classes); i++)
                if (streq(period_classes[i].name, name))
                        return &period_classes[i];
        return NULL;
}

static int period_key(const PeriodClass *c, uint64_t usec, char *buf, size_t n) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (!localtime_r(&t, &tm))
                return -EINVAL;
        /* The formats are the table's own constants. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        if (strftime(buf, n, c->format, &tm) == 0)
                return -EINVAL;
#pragma GCC diagnostic pop
        return 0;
}

int retention_period_key(const char *class, uint64_t usec, char *buf, size_t n) {
        const PeriodClass *c = class_by_name(class);

        return c ? period_key(c, usec, buf, n) : -EINVAL;
}

static int newest_first(const void *a, const void *b) {
        const RetentionItem *x = *(RetentionItem *const *) a, *y = *(RetentionItem *const *) b;

        if (x->created_usec != y->created_usec)
                return x->created_usec > y->created_usec ? -1 : 1;
        return strcmp(x->id, y->id);
}

/* What an item is in the run: undecided, kept, or given up (for a period taken already). */
typedef enum Mark { MARK_NONE, MARK_KEEP, MARK_GIVEN_UP } Mark;

typedef struct Run {
        RetentionItem **order;   /* newest first, the young ones left out */
        Mark *marks;
        char (*keys)[32];        /* the current class's key of each item */
        size_t n;
} Run;

/* Whether an item other than skip, flagged in flags, has the same key as item i. */
static bool key_flagged(const Run *run, const bool *flags, size_t i) {
        for (size_t j = 0; j < run->n; j++)
                if (j != i && flags[j] && streq(run->keys[j], run->keys[i]))
                        return true;
        return false;
}

/* Step 3 for one class. Periods of the sets kept before this class are skipped (their sets stay
 * undecided); the newest set of each other period is kept, the rest of its period given up,
 * until the class has kept limit periods and meets a new one. */
static int apply_class(Run *run, const PeriodClass *c, unsigned limit) {
        _cleanup_free_ bool *kept_before = NULL, *kept_here = NULL;
        unsigned kept = 0;

        if (limit == 0)
                return 0;
        kept_before = calloc(run->n ?: 1, sizeof *kept_before);
        kept_here = calloc(run->n ?: 1, sizeof *kept_here);
        if (!kept_before || !kept_here)
                return -ENOMEM;
        for (size_t i = 0; i < run->n; i++) {
                if (period_key(c, run->order[i]->created_usec, run->keys[i], sizeof run->keys[i]) < 0)
                        return -EINVAL;
                kept_before[i] = run->marks[i] == MARK_KEEP;
        }

        for (size_t i = 0; i < run->n; i++) {
                RetentionItem *it = run->order[i];

                if (run->marks[i] != MARK_NONE || key_flagged(run, kept_before, i))
                        continue;
                if (key_flagged(run, kept_here, i)) {
                        run->marks[i] = MARK_GIVEN_UP;
                        snprintf(it->reason, sizeof it->reason, "not the latest of %s %s", c->name, run->keys[i]);
                        continue;
                }
                if (kept == limit)
                        break;
                run->marks[i] = MARK_KEEP;
                kept_here[i] = true;
                kept++;
                snprintf(it->reason, sizeof it->reason, "%s %s (%u/%u)", c->name, run->keys[i], kept, limit);
        }
        return 0;
}

int retention_apply(const Retention *policy, uint64_t now_usec, RetentionItem *items, size_t n) {
        _cleanup_free_ RetentionItem **order = calloc(n ?: 1, sizeof *order);
        _cleanup_free_ Mark *marks = calloc(n ?: 1, sizeof *marks);
        _cleanup_free_ char (*keys)[32] = calloc(n ?: 1, sizeof *keys);
        Run run = { .order = order, .marks = marks, .keys = keys };
        unsigned last = 0;
        int r;

        if (!order || !marks || !keys)
                return -ENOMEM;

        for (size_t i = 0; i < n; i++) {
                RetentionItem *it = &items[i];
                uint64_t age = now_usec > it->created_usec ? now_usec - it->created_usec : 0;

                it->keep = false;
                snprintf(it->reason, sizeof it->reason, "not kept by any rule");
                if (!retention_is_set(policy)) {
                        it->keep = true;
                        snprintf(it->reason, sizeof it->reason, "no Keep*= rule: every set is kept");
                } else if (policy->min_age_usec > 0 && age < policy->min_age_usec) {
                        it->keep = true;
                        snprintf(it->reason, sizeof it->reason, "younger than MinAge (%llu min old)",
                                 (unsigned long long) (age / (60 * USEC_PER_SEC)));
                } else
                        order[run.n++] = it;
        }
        if (!retention_is_set(policy))
                return 0;
        qsort(order, run.n, sizeof *order, newest_first);

        for (size_t i = 0; i < run.n && last < policy->keep_last; i++) {
                marks[i] = MARK_KEEP;
                last++;
                snprintf(order[i]->reason, sizeof order[i]->reason, "keep-last (%u/%u)", last, policy->keep_last);
        }
        for (size_t c = 0; c < ELEMENTSOF(period_classes); c++) {
                r = apply_class(&run, &period_classes[c],
                                *(const unsigned *) ((const uint8_t *) policy + period_classes[c].keep_offset));
                if (r < 0)
                        return r;
        }
        for (size_t i = 0; i < run.n; i++)
                order[i]->keep = marks[i] == MARK_KEEP;
        return 0;
}

long retention_pick_for_space(const Retention *policy, uint64_t now_usec, const RetentionItem *items, size_t n) {
        const RetentionItem *newest = NULL;
        long pick = -1;

        for (size_t i = 0; i < n; i++)
                if (!newest || newest_first(&(const RetentionItem *) { &items[i] }, &newest) < 0)
                        newest = &items[i];
        for (size_t i = 0; i < n; i++) {
                const RetentionItem *it = &items[i];
                uint64_t age = now_usec > it->created_usec ? now_usec - it->created_usec : 0;

                if (it == newest || it->not_for_space || age < policy->min_age_usec)
                        continue;
                /* A set the policy deletes beats one it keeps; then the older one. */
                if (pick < 0 || (!it->keep && items[pick].keep) ||
                    (it->keep == items[pick].keep &&
                     newest_first(&(const RetentionItem *) { &items[pick] }, &(const RetentionItem *) { it }) < 0))
                        pick = (long) i;
        }
        return pick;
}
