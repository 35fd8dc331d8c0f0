/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The health of a set definition, for monitoring (snapsetctl check, GetStatus), with the
 * statuses and exit codes of a Nagios plugin. Worst status wins; each finding is one message.
 *
 *   CRITICAL  the definition cannot be used (its error); the newest set is older than
 *             CriticalAfterPeriods= periods of its schedule; a snapshot of it is invalid
 *   WARNING   older than WarnAfterPeriods= periods; no set yet once a warning age has passed
 *             since the file changed; pruning overdue (sets the policy deletes are still there
 *             10 minutes after the newest set); a thin pool or COW store of its snapshots at or
 *             past WarnUsedPercent=
 *   UNKNOWN   the schedule's period cannot be computed (systemd-analyze missing)
 *   OK        none of these */

#include <stdint.h>

#include "schedule/definition.h"
#include "snapshot-set.h"

typedef enum HealthStatus {
        HEALTH_OK = 0,
        HEALTH_WARNING = 1,
        HEALTH_CRITICAL = 2,
        HEALTH_UNKNOWN = 3,
        _HEALTH_STATUS_MAX,
} HealthStatus;

const char *health_status_to_string(HealthStatus s);   /* "ok", "warning", "critical", "unknown" */

typedef struct Health {
        HealthStatus status;
        char **messages;          /* NULL-terminated, never NULL after health_check() */
} Health;

typedef struct HealthInput {
        const SetDefinition *definition;
        SnapshotSet *const *sets;  /* the definition's own, created */
        size_t n_sets;
        uint64_t now_usec;
        uint64_t definition_changed_usec;   /* the file's mtime */
        uint64_t period_usec;      /* of the schedule; 0: none or unknown */
        const char *period_error;  /* why it is unknown, or NULL (no schedule) */
} HealthInput;

/* Seconds after the newest set during which sets past the policy are not yet "overdue". */
#define HEALTH_PRUNE_GRACE_USEC (10 * 60 * USEC_PER_SEC)

int health_check(const HealthInput *in, Health *ret);
/* Only the space findings of health_check() (stores and pools at WarnUsedPercent=, invalid
 * snapshots), for the event after a scheduled set. */
int health_check_space(const HealthInput *in, Health *ret);
void health_done(Health *h);

/* "3h 5min", "12min", "40s": a duration for messages. */
void health_format_duration(uint64_t usec, char *buf, size_t n);
