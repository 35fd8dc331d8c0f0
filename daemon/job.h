/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The long work of a call on a thread of its own, so that the event loop keeps serving other
 * clients, Monitor streams and the watchdog while a set is created (AddToSnapshotSet's provider
 * work, DoSnapshotSet's whole run, CreateSnapshotSet).
 *
 * One job at a time: set creation already is one at a time (VSS rule 1), and a job is always the
 * work of the set in creation. While a job runs, the loop leaves alone everything the job may
 * touch: the providers, the finished sets, the state directory (calls that need them wait, see
 * METHOD_CONCURRENT in methods.h). When the work returns, its done function runs on the loop,
 * where the results are taken into the daemon's state and the reply is sent.
 *
 * The runner's eventfd wakes the loop, for the job's end and whenever the job wants the loop to
 * look at it (a new phase of the set, an event for Monitor clients): job_runner_wake() is one
 * write(2) to an eventfd, never blocks and never allocates, so it may be called inside the
 * freeze window. */

#include <stdbool.h>

typedef struct JobRunner JobRunner;
typedef void (*JobFunc)(void *userdata);

int job_runner_new(JobRunner **ret);
/* Waits for a running job to end (its done function is not called), then ends the thread. */
JobRunner *job_runner_free(JobRunner *r);

/* Readable when the loop should call job_runner_dispatch(). */
int job_runner_fd(const JobRunner *r);

/* A job has started and its done function has not run yet. NULL: no runner, never busy. */
bool job_runner_busy(const JobRunner *r);

/* Runs work(userdata) on the job thread, then done(userdata) from job_runner_dispatch() on the
 * loop. -EBUSY if a job is running. */
int job_runner_start(JobRunner *r, JobFunc work, JobFunc done, void *userdata);

/* From any thread: makes the runner's fd readable. */
void job_runner_wake(JobRunner *r);

/* The loop, when the fd is readable: clears it, and if the job's work has returned, joins the
 * thread and runs done. Returns true when a job ended here. */
bool job_runner_dispatch(JobRunner *r);
