/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How block devices stack, from sysfs: what is built on a device (device-mapper and md devices
 * list it in holders/, a disk's partitions are its subdirectories). Snapshot sets use it to
 * freeze every filesystem that writes through a volume of the set, wherever it is mounted in
 * the stack above it, and to refuse a set that names a device and one stacked on it. */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Every device stacked on d, directly or not (d itself not included), each once. sysfs_root:
 * "/sys" (tests pass a fake tree). A device that vanishes while being read is left out. */
int device_graph_above(const char *sysfs_root, dev_t d, dev_t **ret, size_t *ret_n);

/* 1 if upper is stacked on lower (directly or not), 0 if not, negative errno. */
int device_graph_is_above(const char *sysfs_root, dev_t upper, dev_t lower);

/* The devices directly on d that hold it: its holders/ in sysfs (for a device-mapper device's
 * underlying devices, every device whose live or inactive table uses it). */
int device_graph_holders(const char *sysfs_root, dev_t d, dev_t **ret, size_t *ret_n);
