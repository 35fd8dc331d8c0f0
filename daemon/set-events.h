/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Structured set events and their queue. Outside the freeze window an event goes straight to the
 * sink (journald in the daemon). Between set_events_hold() and set_events_release() it is copied
 * into a static, preallocated queue instead — nothing may be written anywhere while filesystems
 * are frozen (architecture §1.3) — and the release hands every queued event to the sink, in
 * order, each with the time it happened. */

#include "coordinator.h"

/* Fills an event; every string may be NULL. Never allocates. */
void set_event_init(SetEvent *e, int priority, const char *set_id, const char *snapshot_id,
                    const char *volume, const char *provider, const char *method);

/* Emits e now, or queues it while held. When the queue is full the event is counted as dropped. */
void set_events_emit(const SetEvent *e, SetEventSink sink, void *userdata);

void set_events_hold(void);
bool set_events_held(void);
/* Hands the queued events to sink and stops holding. Returns the number dropped. */
unsigned set_events_release(SetEventSink sink, void *userdata);

/* The daemon's sink: sd_journal_send() with MESSAGE, PRIORITY and the SNAPSET_* fields
 * (SNAPSET_SET_ID, SNAPSET_SNAPSHOT_ID, SNAPSET_VOLUME, SNAPSET_PROVIDER, SNAPSET_METHOD,
 * SNAPSET_VSS_NAME, SNAPSET_HRESULT, SNAPSET_ERRNO, SNAPSET_EVENT_USEC: when it happened, which
 * for a queued event is earlier than the journal's own timestamp). Under no journal it writes a
 * log line instead. */
void set_event_journal_sink(const SetEvent *e, void *userdata);
