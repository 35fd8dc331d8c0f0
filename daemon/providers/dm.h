/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one file that talks to libdevmapper (in the manner of cryptsetup's lib/libdevmapper.c):
 * every function here turns libdm's 1/0 into negative errno, and libdm's own messages go to
 * log_debug, never to stderr. No other file includes <libdevmapper.h>.
 *
 * libdevmapper, run as root on a machine without /dev/mapper/control, creates /dev/mapper and
 * the control node by itself (and then fails, and says so on stderr). So every entry point here
 * first checks that the control node exists, and leaves libdm alone if it does not: on a kernel
 * without device-mapper, probing is a stat() and a readable reason, nothing more. */

#include <stdbool.h>

#define DM_CONTROL_PATH "/dev/mapper/control"

/* Whether the kernel's device-mapper can be used here. Returns 1 if it can, 0 if not (then
 * *ret_reason says why and what to do, for an administrator), negative errno if the check
 * itself failed. Opening the control node may autoload dm_mod: that is how every dm tool works,
 * and the daemon needs it loaded anyway. */
int dm_probe(char **ret_reason);

/* Whether every target in the NULL-terminated list can be used: either the kernel lists it as
 * loaded, or module (e.g. "dm-snapshot") is built in or installed under /lib/modules/$(uname -r),
 * since the kernel loads a target's module on first use. Same returns as dm_probe(); call it only
 * after dm_probe() returned 1. */
int dm_targets_available(const char *const *targets, const char *module, char **ret_reason);

/* The target types of the live table of device major:minor, each once, in table order, as a
 * NULL-terminated array (empty if there is no live table). -ENODEV if there is no device-mapper,
 * -ENXIO if there is no such device. */
int dm_device_get_targets(unsigned major, unsigned minor, char ***ret_targets);

/* Splits the dm name of an LVM volume, "VG-LV[-LAYER]" with '-' inside names doubled, into its
 * parts (libdm's dm_split_lvm_name(); a pure string function, no kernel involved). *ret_layer is
 * NULL when there is no layer. -EINVAL if name is not of that form. */
int dm_lvm_name_split(const char *name, char **ret_vg, char **ret_lv, char **ret_layer);
