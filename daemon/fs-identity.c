/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
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

int fs_identity_renew(const char *device, char *reason, size_t size) {
        _cleanup_free_ char *type = NULL;
        int r;

        reason[0] = 0;
        r = blockdev_probe_filesystem(device, &type, NULL);
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
        } else if (streq(type, "xfs")) {
                r = run("xfs_admin", (const char *const[]) { "-U", "generate", device, NULL }, 0, reason, size);
                /* A log to replay first: mounting does that (nouuid: the origin is mounted). */
                if (r == -EIO && strstr(reason, "log") && xfs_replay_log(device) >= 0)
                        r = run("xfs_admin", (const char *const[]) { "-U", "generate", device, NULL }, 0, reason, size);
        }
        else {
                snprintf(reason, size, "snapset cannot give a %s filesystem a new UUID", type);
                r = -EOPNOTSUPP;
        }
        if (r >= 0)
                log_info("%s (%s) has a new filesystem UUID.", device, type);
        return r;
}
