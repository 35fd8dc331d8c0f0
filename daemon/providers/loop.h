/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Loop devices for copy-on-write files: attach through /dev/loop-control (LOOP_CTL_GET_FREE, then
 * LOOP_CONFIGURE, which sets the backing file and the flags in one ioctl, so that nobody sees a
 * half-configured device; Linux 5.8+), find by backing file, detach.
 *
 * Flags, and why:
 * - LO_FLAGS_AUTOCLEAR: the device detaches itself when its last user closes it. The user is the
 *   dm snapshot table, so removing the snapshot device frees the loop device too, even when the
 *   daemon crashed in between. The catch: the caller must keep the fd it gets open until a table
 *   that uses the device is loaded, or the device detaches at once.
 * - LO_FLAGS_DIRECT_IO: the copy-on-write data would otherwise sit twice in the page cache (the
 *   loop device's and the backing file's), and a snapshot under heavy origin writes would fill
 *   memory with it. Where the backing filesystem cannot do direct I/O (tmpfs, or a 4 KiB-sector
 *   disk under a 512-byte loop device) the kernel silently uses buffered I/O, which is correct,
 *   only slower.
 * - The logical block size stays 512: the snapshot device takes the largest block size of its
 *   origin and its COW device, and a 4096-byte loop device would make an XFS made with 512-byte
 *   sectors unmountable from the snapshot. */

#include <stdbool.h>
#include <sys/types.h>

/* Attaches the file at path (opened read-write) to a free loop device. Returns 0 with an open fd
 * of the device (O_RDWR|O_CLOEXEC; see AUTOCLEAR above), its path (/dev/loopN) and number. */
int loop_attach(const char *path, int *ret_fd, char **ret_devpath, dev_t *ret_devnum);

/* Clears LO_FLAGS_AUTOCLEAR on the loop device at fd: it stays attached when its users are gone,
 * for a volume of its own (a broken-off snapshot's image) rather than a COW store. */
int loop_keep(int fd);

/* Finds a loop device whose backing file is the file at path (same device and inode). Returns 1
 * and its path and number, 0 if there is none, negative errno on failure. */
int loop_find_by_backing(const char *path, char **ret_devpath, dev_t *ret_devnum);

/* Detaches loop device devpath, but only if its backing file is still the file at path: after a
 * reboot, the number recorded may belong to some other file. If the device is still in use (a dm
 * table holds it) the kernel only marks it for autoclear, and it goes when its user does. Returns
 * 0 if detached or marked, -ENXIO if it is not attached (or to another file). */
int loop_detach_if_backing(const char *devpath, const char *path);
