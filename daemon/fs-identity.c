/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mount.h>
#include <unistd.h>
#include <string.h>

#include "blockdev.h"
#include "fs-identity.h"
#include "log.h"
#include "providers/command.h"

#define TOOL_TIMEOUT_USEC (300 * USEC_PER_SEC)

/* Runs the tool with its arguments; 0, or -EIO with the tool's own words in reason. ok_status:
 * the highest exit status that is success (e2fsck -p: 1, "errors corrected"). */
static int run(const char *tool, const char *const *args, int ok_status, char *reason, size_t size) {
        _cleanup_(command_freep) Command *c = NULL;
        _cleanup_free_ char *path = command_find_executable(tool);
        int r;

        if (!path) {
                snprintf(reason, size, "%s is not installed", tool);
                return -ENOENT;
        }
        r = command_new(path, false, 4096, &c);
        for (const char *const *a = args; r >= 0 && *a; a++)
                r = command_add(c, *a);
        if (r >= 0)
                r = command_run(c, TOOL_TIMEOUT_USEC);
        if (r >= 0 && (c->exit_status < 0 || c->exit_status > ok_status))
                r = -EIO;
        if (r < 0) {
                const char *words = c && c->err && c->err[0] ? c->err : c && c->out ? c->out : "";

                snprintf(reason, size, "%s failed (%s%d): %.*s", tool, r == -ETIMEDOUT ? "timed out, " : "exit status ",
                         c ? c->exit_status : -1, (int) strcspn(words, "\n"), words);
        } else {
                /* What it said, for when it says "success" but did nothing (xfs_admin). */
                const char *out = c->out ? c->out : "", *err = c->err ? c->err : "";

                snprintf(reason, size, "%s said: %s%s%s", tool, out, *out && *err ? " / " : "", err);
                for (char *p = reason; *p; p++)
                        if (*p == '\n')
                                *p = ' ';
        }
        return r;
}

/* Mounts and unmounts an xfs, so that the kernel replays its log, in a directory of its own in
 * /run (never frozen). */
static int xfs_replay_log(const char *device) {
        char dir[] = "/run/snapset-xfs-XXXXXX";
        int r = 0;

        if (!mkdtemp(dir))
                return -errno;
        if (mount(device, dir, "xfs", 0, "nouuid") < 0)
                r = -errno;
        else if (umount(dir) < 0)
                r = -errno;
        (void) rmdir(dir);
        return r;
}

/* The UUID on the device as it is now, not as the page cache remembers it (the tools write
 * around it). */
static int probe_uuid(const char *device, char **ret_type, char **ret_uuid) {
        int fd = open(device, O_RDONLY | O_CLOEXEC);

        if (fd >= 0) {
                (void) ioctl(fd, BLKFLSBUF, 0);
                (void) close(fd);
        }
        return blockdev_probe_filesystem(device, ret_type, ret_uuid);
}

static int uuid_changed(const char *device, const char *before, char *reason, size_t size) {
        _cleanup_free_ char *type = NULL, *after = NULL;
        int r;

        r = probe_uuid(device, &type, &after);
        if (r < 0)
                return r;
        if (!after || streq_ptr(after, before)) {
                char said[256];

                snprintf(said, sizeof said, "%s", reason);
                snprintf(reason, size, "the tool reported success, but the filesystem's UUID is still %s (%s)",
                         strna(before), said);
                return -EIO;
        }
        return 0;
}

int fs_identity_renew(const char *device, char *reason, size_t size) {
        _cleanup_free_ char *type = NULL, *uuid = NULL;
        int r;

        reason[0] = 0;
        r = probe_uuid(device, &type, &uuid);
        if (r < 0)
                return r;
        if (!type)
                return 0;   /* nothing with an identity of its own */
        if (streq(type, "ext2") || streq(type, "ext3") || streq(type, "ext4")) {
                /* The copy of a mounted filesystem still says it needs recovery, and tune2fs will
                 * not change the UUID of one that does: replay and check it first. */
                r = run("e2fsck", (const char *const[]) { "-f", "-p", device, NULL }, 1, reason, size);
                if (r >= 0)
                        r = run("tune2fs", (const char *const[]) { "-U", "random", device, NULL }, 0, reason, size);
                if (r >= 0)
                        r = uuid_changed(device, uuid, reason, size);
        } else if (streq(type, "xfs")) {
                /* xfs_admin will not touch a filesystem whose log needs replaying, and says so with
                 * exit status 0: replay it first by mounting (nouuid: the origin is mounted), and
                 * check afterwards that the UUID did change. */
                r = xfs_replay_log(device);
                if (r < 0)
                        snprintf(reason, size, "mounting it to replay its log failed: %s", strerror(-r));
                if (r >= 0)
                        r = run("xfs_admin", (const char *const[]) { "-U", "generate", device, NULL }, 0, reason, size);
                if (r >= 0)
                        r = uuid_changed(device, uuid, reason, size);
        }
        else {
                snprintf(reason, size, "snapset cannot give a %s filesystem a new UUID", type);
                r = -EOPNOTSUPP;
        }
        if (r >= 0)
                log_info("%s (%s) has a new filesystem UUID.", device, type);
        return r;
}
