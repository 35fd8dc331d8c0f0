/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Retention: which sets of a definition are kept, and why (snapset-sets(5), "RETENTION"). The
 * rule is Proxmox Backup Server's, on whole sets:
 *
 *   1. Sets younger than MinAge= are kept, and set aside: the rules below run on the others as
 *      if the young ones did not exist, so MinAge= only ever keeps more.
 *   2. KeepLast=N keeps the N newest.
 *   3. Then for each period class in turn (hourly, daily, weekly, monthly, yearly), going from
 *      the newest set to the oldest: a set not kept yet, in a period that no set kept so far
 *      lies in, is kept for that period, until the class has kept its number of periods. The
 *      latest set of each period is the one kept. A set in a period already taken by this
 *      class is given up for good (no later class keeps it).
 *   4. Everything else is deleted.
 *
 * Periods are local-time calendar periods (the daemon's time zone): hours of the wall clock,
 * days, ISO 8601 weeks (Monday to Sunday; week 1 holds the year's first Thursday), months and
 * years. When the clocks go back, the repeated wall-clock hour is one hourly period for both
 * hours; when they go forward, the skipped hour holds no set; a day is a calendar date however
 * many hours it has. A definition without any Keep*= keeps everything. */

#include <stdbool.h>
#include <stdint.h>

#include "schedule/definition.h"

typedef struct RetentionItem {
        const char *id;          /* the caller's: set id */
        uint64_t created_usec;   /* realtime */
        bool not_for_space;      /* retention_pick_for_space() passes it over */
        /* Filled in by retention_apply(): */
        bool keep;
        char reason[96];         /* "keep-last 1/3", "daily 2026-12-01 (2/7)", "younger than MinAge (2h)",
                                    or why it goes: "not kept by any rule" */
} RetentionItem;

/* Decides every item at once (any order; ties in created_usec are broken by id). now_usec is
 * the realtime the ages are counted from. Returns 0 or -ENOMEM. */
int retention_apply(const Retention *policy, uint64_t now_usec, RetentionItem *items, size_t n);

/* PruneOnLowSpace=: the index of the set to delete next to make room for a new one, or -1 when
 * none may go. items as retention_apply() decided them. The oldest set the policy deletes anyway
 * goes first, then the oldest one it keeps; never one younger than MinAge=, one marked
 * not_for_space, or the newest set, so that a set that still does not fit has not cost the last
 * point to go back to. */
long retention_pick_for_space(const Retention *policy, uint64_t now_usec, const RetentionItem *items, size_t n);

/* The period key of t in a class ("hourly", "daily", "weekly", "monthly", "yearly"), local
 * time: "2026-12-01 10h", "2026-12-01", "2026-W49", "2026-12", "2026". Exposed for the tests. */
int retention_period_key(const char *class, uint64_t usec, char *buf, size_t n);
