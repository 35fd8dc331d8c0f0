/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A crew of threads, made before the freeze window, that runs one function over many items at
 * once inside it: the device-mapper suspends and resumes of a set (dm-snapshot, dm-thin, lvm's
 * held origins). Each suspend or resume waits in the kernel for RCU and SRCU grace periods (and a
 * suspend for the device's in-flight I/O); one after another, 64 devices took a second of held
 * writes under TCG. From threads, the waits overlap.
 *
 * libdevmapper from several threads at once: a task is the caller's own, the control device's
 * file descriptor is shared (the kernel serializes what must be), and libdm's only shared
 * list, of /dev/mapper node operations, is not touched by a suspend or a resume of a device named
 * by its device number (DM_REF_DEVNUM): only a task with a name stacks node operations. So the
 * functions run by a crew must name devices by number. (libdm also counts suspended devices in a
 * plain int, which nothing of ours reads.)
 *
 * Inside the window the crew only takes its mutex and waits on condition variables; threads are
 * made by window_crew_new(), before it. window_crew_run() waits until every call has returned:
 * each is one ioctl, which the loop it replaces waited for in the same way. A device that never
 * completes its suspend is the guardian's case (guardian.h): it resumes and thaws at the deadline,
 * from its own process. */

#include <stddef.h>

/* At most this many threads: larger sets take turns. Each has a small stack. */
#define WINDOW_CREW_MAX 32

typedef struct WindowCrew WindowCrew;

/* One item's work: 0 or a negative errno. Called from a crew thread (or the caller's), at the
 * same time as the other items' calls: it may touch only what belongs to item i (a provider
 * records there what it did, "origin suspended"). */
typedef int (*WindowCrewFn)(size_t i, void *userdata);

/* Threads for up to n items at once (at most WINDOW_CREW_MAX). Returns 0, or -ENOMEM. When no
 * thread can be started, the crew still works, one item after another on the caller's thread.
 * Before the window. */
int window_crew_new(size_t n, WindowCrew **ret);

/* Runs fn(i, userdata) for every i in [0, n) and returns once every call has returned: 0, or the
 * result of the failed item of the lowest index, whose index goes to *ret_failed (if not NULL).
 * Every item is tried, failed ones or not. A NULL crew runs the items on the caller's thread. */
int window_crew_run(WindowCrew *c, size_t n, WindowCrewFn fn, void *userdata, size_t *ret_failed);

/* Ends the threads (after the window) and frees the crew. NULL is fine. */
void window_crew_free(WindowCrew *c);
