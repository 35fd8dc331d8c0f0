/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <pthread.h>
#include <stdio.h>
#include <systemd/sd-journal.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "message-ids.h"
#include "set-events.h"

static SetEvent queue[SET_EVENT_QUEUE_SIZE];
static size_t n_queued;
static unsigned n_dropped;
static bool held;
/* The loop emits events while the job thread holds them (log.c says why a lock is fine here).
 * Sinks are called without it: a sink may emit again. */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;

static void copy_field(char *dst, size_t size, const char *src) {
        if (!src) {
                dst[0] = 0;
                return;
        }
        snprintf(dst, size, "%s", src);
}

void set_event_init(SetEvent *e, int priority, const char *set_id, const char *snapshot_id,
                    const char *volume, const char *provider, const char *method) {
        struct timespec ts;

        clock_gettime(CLOCK_REALTIME, &ts);
        *e = (SetEvent) {
                .priority = priority,
                .realtime_usec = (uint64_t) ts.tv_sec * USEC_PER_SEC + (uint64_t) ts.tv_nsec / NSEC_PER_USEC,
                .code = S_OK,
        };
        copy_field(e->set_id, sizeof e->set_id, set_id);
        copy_field(e->snapshot_id, sizeof e->snapshot_id, snapshot_id);
        copy_field(e->volume, sizeof e->volume, volume);
        copy_field(e->provider, sizeof e->provider, provider);
        copy_field(e->method, sizeof e->method, method);
}

void set_events_emit(const SetEvent *e, SetEventSink sink, void *userdata) {
        pthread_mutex_lock(&queue_lock);
        if (held) {
                if (n_queued < ELEMENTSOF(queue))
                        queue[n_queued++] = *e;
                else
                        n_dropped++;
                pthread_mutex_unlock(&queue_lock);
                return;
        }
        pthread_mutex_unlock(&queue_lock);
        if (sink)
                sink(e, userdata);
}

void set_events_hold(void) {
        pthread_mutex_lock(&queue_lock);
        held = true;
        pthread_mutex_unlock(&queue_lock);
}

bool set_events_held(void) {
        bool h;

        pthread_mutex_lock(&queue_lock);
        h = held;
        pthread_mutex_unlock(&queue_lock);
        return h;
}

unsigned set_events_release(SetEventSink sink, void *userdata) {
        unsigned dropped;

        pthread_mutex_lock(&queue_lock);
        held = false;
        dropped = n_dropped;
        n_dropped = 0;
        pthread_mutex_unlock(&queue_lock);
        /* Nothing is queued any more (only the holder holds): one at a time, each copied out
         * under the lock, so that the sink runs without it. */
        for (size_t i = 0;; i++) {
                SetEvent e;

                pthread_mutex_lock(&queue_lock);
                if (i >= n_queued) {
                        n_queued = 0;
                        pthread_mutex_unlock(&queue_lock);
                        break;
                }
                e = queue[i];
                pthread_mutex_unlock(&queue_lock);
                if (sink)
                        sink(&e, userdata);
        }
        return dropped;
}

/* The fields of every event, and the caller's after them (the MESSAGE_ID, when there is one). */
#define JOURNAL_SEND(e, vss, ...)                                                                      \
        sd_journal_send("MESSAGE=%s", (e)->message,                                                  \
                        "PRIORITY=%i", (e)->priority,                                                \
                        "SYSLOG_IDENTIFIER=snapsetd",                                                \
                        "SNAPSET_EVENT_TYPE=%s", (e)->type,                                          \
                        "SNAPSET_SET_ID=%s", (e)->set_id,                                            \
                        "SNAPSET_SNAPSHOT_ID=%s", (e)->snapshot_id,                                  \
                        "SNAPSET_VOLUME=%s", (e)->volume,                                            \
                        "SNAPSET_PROVIDER=%s", (e)->provider,                                        \
                        "SNAPSET_METHOD=%s", (e)->method,                                            \
                        "SNAPSET_VSS_NAME=%s", (vss) ?: "",                                          \
                        "SNAPSET_HRESULT=0x%08X", (e)->hresult ? (e)->hresult : vss_code_hresult((e)->code), \
                        "SNAPSET_ERRNO=%i", (e)->error,                                              \
                        "SNAPSET_EVENT_USEC=%llu", (unsigned long long) (e)->realtime_usec,          \
                        __VA_ARGS__)

void set_event_journal_sink(const SetEvent *e, void *userdata) {
        const char *vss = vss_code_name(e->code), *id = message_id_of(e);
        int r = -ENOENT;

        /* sd_journal_send() reports success when there is no journald at all (its socket is
         * missing: a container, the host test tier): look for the socket ourselves. /run is never
         * frozen, and events reach the sink only outside the window anyway. */
        if (access("/run/systemd/journal/socket", F_OK) >= 0)
                r = id ? JOURNAL_SEND(e, vss, "MESSAGE_ID=%s", id, NULL) : JOURNAL_SEND(e, vss, NULL);
        /* No journal (a test run by hand, a container): the message still goes somewhere. */
        if (r < 0)
                log_full(e->priority, "%s", e->message);
}
