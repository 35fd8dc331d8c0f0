/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The clocks in microseconds. clock_gettime() of these clocks is a vDSO call: no system call, no
 * allocation, no page fault on locked memory, so they may be read inside the freeze window. */

#include <stdint.h>
#include <time.h>

#include "macro.h"

static inline uint64_t now_realtime_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}

static inline uint64_t now_monotonic_usec(void) {
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC;
}
