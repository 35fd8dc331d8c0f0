/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The MESSAGE_ID of every kind of event snapsetd sends to the journal, for its catalog entry
 * (systemd/snapset.catalog: what happened, why, and what to do; 'journalctl -x' shows it). An
 * event is known by its type ("snapshot-invalid"), and an error by its code first: a hold
 * timeout is the same story whether it ended a set or refused a call. */

#include <stddef.h>

#include "coordinator.h"

typedef struct MessageId {
        const char *name;        /* the type, or the story of a code: "hold-timeout" */
        const char *id;          /* 32 hex digits */
} MessageId;

/* The MESSAGE_ID for e, or NULL for an event without a catalog entry (debug and plain info). */
const char *message_id_of(const SetEvent *e);

/* Every entry, for the test that holds the catalog to it. */
const MessageId *message_ids(size_t *ret_n);
