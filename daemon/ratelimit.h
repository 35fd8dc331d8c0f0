/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A token bucket for log messages that a client can trigger at will (refused connections, denied
 * calls): at most burst messages per interval, and the number suppressed is reported with the
 * next one that gets through, so the journal cannot be flooded and nothing is silently lost. */

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "macro.h"
#include "time-util.h"

typedef struct RateLimit {
        uint64_t interval_usec;
        unsigned burst;
        uint64_t begin_usec;
        unsigned count;
        unsigned suppressed;
} RateLimit;

#define RATELIMIT_INIT(interval, b) ((RateLimit) { .interval_usec = (interval), .burst = (b) })

/* True if a message may be logged now. *ret_suppressed gets the number of messages suppressed
 * since the last one that was allowed (only when true is returned). */
static inline bool ratelimit_below(RateLimit *rl, unsigned *ret_suppressed) {
        uint64_t now = now_monotonic_usec();

        if (rl->begin_usec == 0 || now - rl->begin_usec >= rl->interval_usec) {
                rl->begin_usec = now;
                rl->count = 0;
        }
        if (rl->count >= rl->burst) {
                rl->suppressed++;
                return false;
        }
        rl->count++;
        *ret_suppressed = rl->suppressed;
        rl->suppressed = 0;
        return true;
}
