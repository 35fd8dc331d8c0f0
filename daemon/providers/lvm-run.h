/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Running lvm for the lvm provider: commands built with the options every one of them needs,
 * queries parsed from their JSON reports, and failures turned into a VSS code with lvm's own
 * message (and, for a volume group that is locked, the process holding the lock). Only the lvm
 * provider uses this, and it never touches LVM's metadata or tables any other way. */

#include "command.h"
#include "lvm-report.h"
#include "provider.h"

/* Queries and changes outside the freeze window: long enough for a busy machine and a VG lock
 * held by an administrator's command for a while; a stuck lvm is killed. */
#define LVM_TIMEOUT_USEC (120 * USEC_PER_SEC)
/* How long a command outside the window is tried again while another lvm holds the volume
 * group's lock; then the set fails with VSS_E_BAD_STATE naming the holder. */
#define LVM_LOCK_RETRY_USEC (10 * USEC_PER_SEC)
/* Output kept of a command run inside the window (preallocated). */
#define LVM_WINDOW_BUFFER_BYTES 8192

/* "lvm SUBCOMMAND" (window: fixed buffers, and options so that it fails at once on a VG lock
 * held by someone else and never waits on a suspended device). -ENOENT if lvm is not installed. */
int lvm_new(const char *subcommand, bool window, Command **ret);

/* Runs a report command (lvs/vgs/pvs) built by lvm_new() with the given columns and names
 * (NULL-terminated; "VG/LV", "VG", or a "@tag"), and parses it. On failure returns negative and
 * fills res (index: the volume concerned) with the code and lvm's message. */
VssCode lvm_query_lvs(char *const *names, LvmLv **ret, size_t *ret_n, size_t index, ProviderResult *res);
/* The same with the LVs lvm hides (lvs -a): a classic snapshot that is being merged is one. */
VssCode lvm_query_lvs_all(char *const *names, LvmLv **ret, size_t *ret_n, size_t index, ProviderResult *res);
VssCode lvm_query_vg(const char *vg, LvmVg *ret, size_t index, ProviderResult *res);

/* Runs a command built by lvm_new() to its end (LVM_TIMEOUT_USEC), again while the VG's lock is
 * held by someone else (LVM_LOCK_RETRY_USEC). S_OK, or the code for its failure with what:
 * "Removing the snapshot LVs of vg: <lvm's message>" in res. */
VssCode lvm_run(Command *c, const char *what, size_t index, ProviderResult *res);

/* Runs n commands built by lvm_new() side by side (each on its own volume group, whose locks do
 * not collide), to their end, then those that found their VG locked again as lvm_run does. S_OK,
 * or the first failure's code, with the last failure's message in res. */
VssCode lvm_run_all(Command *const *cmds, size_t n, const char *what, ProviderResult *res);

/* Fills res for a command that failed (exit status, or timed out), after it ran. Safe inside
 * the window: formats into res only. */
VssCode lvm_fail(const Command *c, const char *what, size_t index, ProviderResult *res);

/* The process holding VG's lock (from /proc/locks and /run/lock/lvm/V_<vg>), as "pid N
 * (command line)", or "" if none is found. */
void lvm_lock_holder(const char *vg, char *buf, size_t n);
