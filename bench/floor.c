/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The floor of a freeze window, for the benchmark (bench/README.md): what any tool that takes one
 * instant across these device-mapper devices must do at least, and nothing more. Before the
 * clock: the filesystems on the devices found and opened, and synced, as snapsetd does before its
 * window. Timed: FIFREEZE every filesystem (deepest mountpoint first), suspend every device with
 * skip-lockfs, resume every device, FITHAW every filesystem. No table is loaded or swapped. After
 * the clock: the wait for udev to see the resumes.
 *
 *   bench-floor DEVICE...
 *
 * Prints one JSON object: n (devices), filesystems, windowUsec (first FIFREEZE to last FITHAW)
 * and the four steps' durations. Exit status 0, or 1 with the reason on stderr (whatever was
 * frozen or suspended is undone first). */

#include <errno.h>
#include <linux/fs.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "dm.h"
#include "freeze.h"
#include "ratelimit.h"

#define DEVICES_MAX 256

static int undo(FreezeSet *fs, size_t n_frozen, const dev_t *devs, size_t n_suspended, uint32_t *cookie) {
        for (size_t i = 0; i < n_suspended; i++)
                (void) dm_device_resume(DM_REF_DEVNUM(major(devs[i]), minor(devs[i])), DM_RULES_ALL, cookie);
        for (size_t i = n_frozen; i-- > 0;)
                (void) ioctl(fs->targets[i].fd, FITHAW, 0);
        (void) dm_udev_cookie_wait(cookie);
        return 1;
}

int main(int argc, char *argv[]) {
        _cleanup_(freeze_set_freep) FreezeSet *fs = NULL;
        dev_t devs[DEVICES_MAX];
        size_t n = (size_t) argc - 1, frozen = 0, suspended = 0;
        uint64_t t[5];
        /* The resumes join one udev cookie, waited on after the thaw, as snapsetd does: without
         * one, udev drops the devices' /dev/mapper nodes. */
        uint32_t cookie = 0;
        int r;

        if (argc < 2 || n > DEVICES_MAX) {
                fprintf(stderr, "Usage: bench-floor DEVICE... (at most %d device-mapper devices)\n", DEVICES_MAX);
                return 2;
        }
        for (size_t i = 0; i < n; i++) {
                struct stat st;

                if (stat(argv[i + 1], &st) < 0 || !S_ISBLK(st.st_mode)) {
                        fprintf(stderr, "bench-floor: %s: not a block device\n", argv[i + 1]);
                        return 2;
                }
                devs[i] = st.st_rdev;
        }
        r = freeze_set_prepare(devs, n, NULL, &fs);
        if (r >= 0)
                r = freeze_set_sync(fs, 0);
        if (r >= 0)
                r = dm_udev_cookie_new(&cookie);
        if (r < 0) {
                fprintf(stderr, "bench-floor: finding or syncing the filesystems failed: %s\n", strerror(-r));
                return 1;
        }

        t[0] = now_monotonic_usec();
        for (; frozen < fs->n_targets; frozen++)
                if (ioctl(fs->targets[frozen].fd, FIFREEZE, 0) < 0) {
                        fprintf(stderr, "bench-floor: FIFREEZE %s: %m\n", fs->targets[frozen].mountpoint);
                        return undo(fs, frozen, devs, 0, &cookie);
                }
        t[1] = now_monotonic_usec();
        for (; suspended < n; suspended++) {
                r = dm_device_suspend(DM_REF_DEVNUM(major(devs[suspended]), minor(devs[suspended])), true);
                if (r < 0) {
                        fprintf(stderr, "bench-floor: suspending %s: %s\n", argv[suspended + 1], strerror(-r));
                        return undo(fs, frozen, devs, suspended, &cookie);
                }
        }
        t[2] = now_monotonic_usec();
        for (size_t i = 0; i < n; i++)
                (void) dm_device_resume(DM_REF_DEVNUM(major(devs[i]), minor(devs[i])), DM_RULES_ALL, &cookie);
        t[3] = now_monotonic_usec();
        for (size_t i = fs->n_targets; i-- > 0;)
                (void) ioctl(fs->targets[i].fd, FITHAW, 0);
        t[4] = now_monotonic_usec();
        (void) dm_udev_cookie_wait(&cookie);

        printf("{\"n\":%zu,\"filesystems\":%zu,\"windowUsec\":%llu,\"freezeUsec\":%llu,\"suspendUsec\":%llu,"
               "\"resumeUsec\":%llu,\"thawUsec\":%llu}\n", n, fs->n_targets,
               (unsigned long long) (t[4] - t[0]), (unsigned long long) (t[1] - t[0]),
               (unsigned long long) (t[2] - t[1]), (unsigned long long) (t[3] - t[2]),
               (unsigned long long) (t[4] - t[3]));
        return 0;
}
