/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The thaw guardian: a small process, set up before the first FIFREEZE of a set, that undoes the
 * window by itself (window-undo.h) when snapsetd cannot:
 *
 *   snapsetd dies             (SIGKILL, OOM, a crash, the watchdog's SIGABRT): its end of the
 *                             channel closes, and the guardian acts at once, with no service
 *                             restart involved;
 *   the deadline passes       (a suspend or a provider that does not return): it acts, tells the
 *                             daemon (WindowUndo.fired; the set then fails), and stays until the
 *                             daemon disarms it or dies, acting once more then;
 *   it is told to terminate   (SIGTERM, SIGINT, SIGHUP: someone stops everything): it acts first.
 *
 * It is forked twice (so that it belongs to nobody who must reap it, and keeps running when the
 * daemon is gone: snapsetd.service has KillMode=process), keeps only the file descriptors it
 * needs, locks its memory, and then only waits. Acting resumes and thaws every volume at once,
 * one thread per volume, so that a device whose suspend does not return holds up only itself.
 * Nothing it does allocates from a filesystem, looks up a path or logs. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"
#include "window-undo.h"

/* How long past the hold deadline the guardian gives the daemon to end the window itself. */
#define GUARDIAN_GRACE_USEC (500 * USEC_PER_MSEC)

typedef struct Guardian Guardian;

/* Forks the guardian for u, and returns once it is ready (it has dropped what it does not need
 * and locked its memory). u->deadline_usec may be changed later, followed by guardian_wake(). */
int guardian_start(WindowUndo *u, Guardian **ret);

/* The deadline changed: one non-blocking send, safe inside the window. */
void guardian_wake(Guardian *g);

/* The window is over and undone by the daemon: the guardian exits without acting. Waits (a
 * bounded moment) for it to be gone, and frees g. Accepts NULL. */
void guardian_disarm(Guardian *g);

/* Frees g without disarming: the guardian sees the channel close and acts, as if the daemon had
 * died. Accepts NULL. */
Guardian *guardian_free(Guardian *g);
DEFINE_TRIVIAL_CLEANUP_FUNC(Guardian *, guardian_free);

/* ---------------------------------------------------------------- the decision (pure) */

typedef enum GuardianEvent {
        GUARDIAN_EVENT_NONE,      /* woke because the wait timed out */
        GUARDIAN_EVENT_WAKE,      /* the daemon moved the deadline */
        GUARDIAN_EVENT_DISARM,    /* the daemon ended the window itself */
        GUARDIAN_EVENT_HANGUP,    /* the daemon's end closed: it is gone */
        GUARDIAN_EVENT_SIGNAL,    /* SIGTERM, SIGINT or SIGHUP */
} GuardianEvent;

typedef enum GuardianAction {
        GUARDIAN_WAIT,            /* for *ret_timeout_usec (UINT64_MAX: no timeout) */
        GUARDIAN_FIRE,            /* undo everything, then wait for the daemon */
        GUARDIAN_FIRE_AND_EXIT,
        GUARDIAN_EXIT,
} GuardianAction;

/* What to do after ev, at now (CLOCK_MONOTONIC µs), with this deadline, having fired already or
 * not. */
GuardianAction guardian_decide(GuardianEvent ev, uint64_t now, uint64_t deadline, bool fired,
                               uint64_t *ret_timeout_usec);
