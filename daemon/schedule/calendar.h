/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The period of an OnCalendar= schedule, for health checks ("the newest set is 1.5 periods
 * old"): the time between its next two elapses, as systemd itself computes them
 * (systemd-analyze calendar --iterations=2), so that snapset never parses calendar events
 * differently from the timer that fires them. An irregular schedule ("Mon..Fri 08:00") gets the
 * gap that comes next. Results are cached per expression for the daemon's life (the first call
 * for an expression runs the tool, a few milliseconds). */

#include <stdint.h>

/* Returns 0 with *ret set; -EINVAL when systemd rejects the expression, -EDOM when it does not
 * repeat, -ENOENT without systemd-analyze: then *ret_error (owned by the cache) says why. */
int calendar_period_usec(const char *expr, uint64_t *ret, const char **ret_error);

void calendar_cache_clear(void);
