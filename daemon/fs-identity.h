/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A new identity for the filesystem on a block device (BreakSnapshotSet without revertIdentity),
 * so that the copy mounts beside its origin: ext2/3/4 are checked (e2fsck -f -p: a copy of a
 * mounted filesystem still says it needs recovery) and given a random UUID (tune2fs -U random),
 * xfs gets its log replayed (a mount with nouuid) and xfs_admin -U generate; either way the UUID
 * is read back, since the tools may report success without changing it. A device without a
 * filesystem has nothing to change.
 * Returns 0, or a negative errno with what went wrong, the tool's own words included, in reason
 * (-EOPNOTSUPP for a filesystem this cannot change). */

#include <stddef.h>

int fs_identity_renew(const char *device, char *reason, size_t size);
