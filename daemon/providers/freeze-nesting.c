/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "command.h"
#include "dm.h"
#include "freeze-nesting.h"
#include "log.h"
#include "loop.h"

#define CACHE_FILE "kernel-freeze-nesting"
/* The scratch filesystem: ext4 needs a few MiB; sparse in tmpfs, it costs what mkfs writes. */
#define SCRATCH_BYTES (16U * 1024U * 1024U)
#define MKFS_TIMEOUT_USEC (60 * USEC_PER_SEC)

static FreezeNesting known = FREEZE_NESTING_UNKNOWN;
static char default_directory[4096] = SNAPSET_RUNSTATEDIR "/snapset";

void freeze_nesting_set_directory(const char *run_directory) {
        if (run_directory)
                snprintf(default_directory, sizeof default_directory, "%s", run_directory);
}

const char *freeze_nesting_to_string(FreezeNesting n) {
        switch (n) {
        case FREEZE_NESTING_YES:
                return "yes: device-mapper's freeze nests inside FIFREEZE (Linux 6.8 or later, or a backport)";
        case FREEZE_NESTING_NO:
                return "no: a device-mapper lockfs suspend fails with EBUSY on a filesystem frozen with "
                       "FIFREEZE (Linux before 6.8)";
        default:
                return "unknown: the kernel could not be asked";
        }
}

/* "<release> <boot id>": what the cached answer is valid for. */
static int boot_key(char *buf, size_t n) {
        struct utsname u;
        char boot_id[64] = "";
        FILE *f;

        if (uname(&u) < 0)
                return -errno;
        f = fopen("/proc/sys/kernel/random/boot_id", "re");
        if (f) {
                if (!fgets(boot_id, sizeof boot_id, f))
                        boot_id[0] = 0;
                fclose(f);
        }
        boot_id[strcspn(boot_id, "\n")] = 0;
        snprintf(buf, n, "%s %s", u.release, boot_id);
        return 0;
}

static FreezeNesting cache_read(const char *run_directory) {
        char path[4096], key[256], line[512];
        FreezeNesting answer = FREEZE_NESTING_UNKNOWN;
        FILE *f;

        if (!run_directory || boot_key(key, sizeof key) < 0)
                return FREEZE_NESTING_UNKNOWN;
        snprintf(path, sizeof path, "%s/" CACHE_FILE, run_directory);
        f = fopen(path, "re");
        if (!f)
                return FREEZE_NESTING_UNKNOWN;
        if (fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = 0;
                if (startswith(line, "yes ") && streq(line + 4, key))
                        answer = FREEZE_NESTING_YES;
                else if (startswith(line, "no ") && streq(line + 3, key))
                        answer = FREEZE_NESTING_NO;
        }
        fclose(f);
        return answer;
}

static void cache_write(const char *run_directory, FreezeNesting answer) {
        char path[4096], key[256];
        FILE *f;

        if (!run_directory || boot_key(key, sizeof key) < 0)
                return;
        snprintf(path, sizeof path, "%s/" CACHE_FILE, run_directory);
        f = fopen(path, "we");
        if (!f)
                return;
        fprintf(f, "%s %s\n", answer == FREEZE_NESTING_YES ? "yes" : "no", key);
        fclose(f);
}

FreezeNesting freeze_nesting_cached(const char *run_directory) {
        run_directory = run_directory ?: default_directory;
        if (known == FREEZE_NESTING_UNKNOWN)
                known = cache_read(run_directory);
        return known;
}

/* ---------------------------------------------------------------- the probe */

typedef struct Scratch {
        char image[4096], mountpoint[4096], dm_name[64];
        char *loop;
        int loop_fd, dir_fd;
        DmInfo dm;
        bool have_dm, mounted, frozen;
} Scratch;

static void scratch_remove(Scratch *s) {
        if (s->frozen)
                (void) ioctl(s->dir_fd, FITHAW, 0);
        s->dir_fd = safe_close(s->dir_fd);
        if (s->mounted)
                (void) umount2(s->mountpoint, MNT_DETACH);
        (void) rmdir(s->mountpoint);
        if (s->have_dm) {
                DmInfo i;

                if (dm_device_info(DM_REF_NAME(s->dm_name), &i) >= 0 && i.suspended)
                        (void) dm_device_resume(DM_REF_NAME(s->dm_name), DM_RULES_HIDDEN, NULL);
                (void) dm_device_remove(DM_REF_NAME(s->dm_name), NULL);
        }
        s->loop_fd = safe_close(s->loop_fd);
        if (s->loop)
                (void) loop_detach_if_backing(s->loop, s->image);
        free(s->loop);
        (void) unlink(s->image);
}

static int make_filesystem(const char *device, char **ret_reason) {
        _cleanup_(command_freep) Command *c = NULL;
        _cleanup_free_ char *mkfs = command_find_executable("mkfs.ext4");
        int r;

        if (!mkfs)
                return asprintf(ret_reason, "mkfs.ext4 is not installed (install e2fsprogs)") < 0 ? -ENOMEM : -ENOENT;
        r = command_new(mkfs, false, 0, &c);
        if (r >= 0)
                r = command_add(c, "-q") ?: command_add(c, "-F") ?: command_add(c, "-E") ?:
                    command_add(c, "nodiscard,lazy_itable_init=1") ?: command_add(c, device);
        if (r >= 0)
                r = command_run(c, MKFS_TIMEOUT_USEC);
        if (r >= 0 && c->exit_status != 0)
                r = -EIO;
        if (r < 0 && asprintf(ret_reason, "mkfs.ext4 on a scratch device failed: %s", c && c->err[0] ? c->err :
                              strerror(-r)) < 0)
                return -ENOMEM;
        return r;
}

/* The scratch filesystem, mounted, with its mountpoint open. */
static int scratch_make(const char *run_directory, Scratch *s, char **ret_reason) {
        _cleanup_free_ char *table = NULL;
        char devpath[256];
        dev_t loop_devnum;
        uint64_t sectors = SCRATCH_BYTES / 512;
        int fd, r;

        snprintf(s->image, sizeof s->image, "%s/freeze-probe.img", run_directory);
        snprintf(s->mountpoint, sizeof s->mountpoint, "%s/freeze-probe.mnt", run_directory);
        snprintf(s->dm_name, sizeof s->dm_name, "snapset-freeze-probe-%d", (int) getpid());

        (void) unlink(s->image);
        fd = open(s->image, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd < 0 || ftruncate(fd, SCRATCH_BYTES) < 0) {
                r = -errno;
                safe_close(fd);
                return asprintf(ret_reason, "cannot make a scratch image in %s: %s", run_directory,
                                strerror(-r)) < 0 ? -ENOMEM : r;
        }
        safe_close(fd);
        r = loop_attach(s->image, &s->loop_fd, &s->loop, &loop_devnum);
        if (r < 0)
                return asprintf(ret_reason, "cannot attach a loop device: %s", strerror(-r)) < 0 ? -ENOMEM : r;
        /* mkfs on the loop device, then device-mapper on top: the lockfs under test is dm's. */
        r = make_filesystem(s->loop, ret_reason);
        if (r < 0)
                return r;
        snprintf(devpath, sizeof devpath, "%u:%u 0", major(loop_devnum), minor(loop_devnum));
        r = dm_table_append(&table, 0, sectors, "linear", devpath);
        if (r >= 0)
                r = dm_device_create(s->dm_name, NULL, table, DM_RULES_HIDDEN, NULL, &s->dm);
        if (r < 0)
                return asprintf(ret_reason, "cannot create a scratch device-mapper device: %s",
                                strerror(-r)) < 0 ? -ENOMEM : r;
        s->have_dm = true;
        s->loop_fd = safe_close(s->loop_fd);   /* the dm table holds the loop device now */
        (void) dm_device_mknodes(DM_REF_NAME(s->dm_name));

        snprintf(devpath, sizeof devpath, "/dev/mapper/%s", s->dm_name);
        if (mkdir(s->mountpoint, 0700) < 0 && errno != EEXIST)
                return asprintf(ret_reason, "cannot make %s: %m", s->mountpoint) < 0 ? -ENOMEM : -errno;
        if (mount(devpath, s->mountpoint, "ext4", MS_NOSUID | MS_NODEV | MS_NOEXEC, NULL) < 0)
                return asprintf(ret_reason, "cannot mount the scratch filesystem: %m") < 0 ? -ENOMEM : -errno;
        s->mounted = true;
        s->dir_fd = open(s->mountpoint, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dir_fd < 0)
                return -errno;
        return 0;
}

FreezeNesting freeze_nesting_probe(const char *run_directory, char **ret_reason) {
        Scratch s = { .loop_fd = -EBADF, .dir_fd = -EBADF };
        _cleanup_free_ char *reason = NULL;
        FreezeNesting answer = FREEZE_NESTING_UNKNOWN;
        int r;

        run_directory = run_directory ?: default_directory;
        if (freeze_nesting_cached(run_directory) != FREEZE_NESTING_UNKNOWN)
                return known;

        r = scratch_make(run_directory, &s, &reason);
        if (r >= 0 && ioctl(s.dir_fd, FIFREEZE, 0) < 0) {
                r = -errno;
                if (!reason && asprintf(&reason, "FIFREEZE of the scratch filesystem failed: %m") < 0)
                        reason = NULL;
        }
        if (r >= 0) {
                s.frozen = true;
                /* The question itself: a suspend WITH lockfs on top of FIFREEZE. */
                r = dm_device_suspend(DM_REF_DEVNUM(s.dm.major, s.dm.minor), false);
                if (r >= 0)
                        answer = FREEZE_NESTING_YES;
                else if (r == -EBUSY)
                        answer = FREEZE_NESTING_NO;
                else if (asprintf(&reason, "a lockfs suspend of the scratch device failed: %s", strerror(-r)) < 0)
                        reason = NULL;
                /* Resume before FITHAW: dm thaws only what dm froze, and FITHAW of a filesystem
                 * dm holds frozen would wait for the resume. */
                (void) dm_device_resume(DM_REF_DEVNUM(s.dm.major, s.dm.minor), DM_RULES_HIDDEN, NULL);
        }
        scratch_remove(&s);

        if (answer != FREEZE_NESTING_UNKNOWN) {
                known = answer;
                cache_write(run_directory, answer);
                log_debug("Kernel freeze nesting: %s.", freeze_nesting_to_string(answer));
        } else
                log_debug("Kernel freeze nesting could not be probed: %s.", strna(reason));
        if (ret_reason)
                *ret_reason = TAKE_PTR(reason);
        return answer;
}
