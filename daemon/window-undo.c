/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <json-c/json.h>
#include <linux/dm-ioctl.h>
#include <linux/fs.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>

#include "varlink.h"
#include "window-undo.h"

#define DM_CONTROL "/dev/mapper/control"

int window_undo_new(size_t n, WindowUndo **ret) {
        size_t size = sizeof(WindowUndo) + n * sizeof(UndoVolume);
        WindowUndo *u;

        assert(ret);

        /* Shared with the guardian, which is forked after this: its marks and ours are one. */
        u = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
        if (u == MAP_FAILED)
                return -errno;
        u->mapped_size = size;
        u->n_volumes = n;
        atomic_init(&u->deadline_usec, UINT64_MAX);
        atomic_init(&u->fired, false);
        for (size_t i = 0; i < n; i++) {
                u->volumes[i].fs_fd = -EBADF;
                atomic_init(&u->volumes[i].frozen, false);
        }
        u->control_fd = open(DM_CONTROL, O_RDWR | O_CLOEXEC);
        if (u->control_fd < 0)
                u->control_fd = -EBADF;   /* no device-mapper: nothing can be suspended */
        *ret = u;
        return 0;
}

WindowUndo *window_undo_free(WindowUndo *u) {
        if (!u)
                return NULL;
        safe_close(u->control_fd);
        for (size_t i = 0; u->owns_fds && i < u->n_volumes; i++)
                safe_close(u->volumes[i].fs_fd);
        (void) munmap(u, u->mapped_size);
        return NULL;
}

UndoVolume *window_undo_volume(WindowUndo *u, dev_t d) {
        for (size_t i = 0; u && i < u->n_volumes; i++)
                if (u->volumes[i].device == d)
                        return &u->volumes[i];
        return NULL;
}

/* ---------------------------------------------------------------- device-mapper, raw */

/* One ioctl on a device named by number. The struct is on the stack: nothing allocated. The
 * kernel's encoding of dev in struct dm_ioctl (huge_encode_dev) is glibc's for any dev_t that
 * fits in 32 bits, which is every device number Linux hands out. */
static int dm_raw(int control_fd, unsigned long cmd, dev_t d, uint32_t flags, struct dm_ioctl *ret) {
        struct dm_ioctl io = {
                .version = { DM_VERSION_MAJOR, 0, 0 },
                .data_size = sizeof(struct dm_ioctl),
                .data_start = sizeof(struct dm_ioctl),
                .flags = flags,
                .dev = (uint64_t) (minor(d) & 0xffu) | ((uint64_t) major(d) << 8) |
                       ((uint64_t) (minor(d) & ~0xffu) << 12),
        };

        if (control_fd < 0)
                return -ENXIO;
        if (ioctl(control_fd, cmd, &io) < 0)
                return -errno;
        if (ret)
                *ret = io;
        return 0;
}

int dm_raw_suspended(int control_fd, dev_t d, bool *ret_inactive_table) {
        struct dm_ioctl io;
        int r;

        r = dm_raw(control_fd, DM_DEV_STATUS, d, 0, &io);
        if (r < 0)
                return r;
        if (ret_inactive_table)
                *ret_inactive_table = io.flags & DM_INACTIVE_PRESENT_FLAG;
        return !!(io.flags & DM_SUSPEND_FLAG);
}

int dm_raw_resume(int control_fd, dev_t d) {
        /* DM_DEV_SUSPEND without DM_SUSPEND_FLAG is a resume (swapping in an inactive table if
         * there is one). No udev cookie: udev still gets the uevent and processes it as a
         * spontaneous one. */
        return dm_raw(control_fd, DM_DEV_SUSPEND, d, 0, NULL);
}

int dm_raw_clear(int control_fd, dev_t d) {
        return dm_raw(control_fd, DM_TABLE_CLEAR, d, 0, NULL);
}

/* ---------------------------------------------------------------- running the list */

static void note_failure(UndoReport *report, dev_t d, int error) {
        if (!report)
                return;
        if (report->failed++ == 0) {
                report->failed_device = d;
                report->failed_error = error;
        }
}

/* Resumes v's device if it is a suspended dm device. Returns 1 if it was suspended. */
static int resume_volume(const WindowUndo *u, UndoVolume *v, UndoReport *report) {
        bool inactive = false;
        int r;

        r = dm_raw_suspended(u->control_fd, v->device, &inactive);
        /* -ENXIO: not a dm device (a loop device, a partition), nothing to resume. */
        if (r <= 0)
                return 0;
        if (inactive && v->drop_inactive)
                (void) dm_raw_clear(u->control_fd, v->device);
        r = dm_raw_resume(u->control_fd, v->device);
        if (r < 0)
                note_failure(report, v->device, r);
        else if (report)
                report->resumed++;
        return 1;
}

size_t window_undo_resume(WindowUndo *u, UndoReport *report, dev_t *ret_first) {
        size_t n = 0;

        for (size_t i = 0; u && i < u->n_volumes; i++)
                if (resume_volume(u, &u->volumes[i], report) > 0 && n++ == 0 && ret_first)
                        *ret_first = u->volumes[i].device;
        return n;
}

void window_undo_volume_run(const WindowUndo *u, UndoVolume *v, UndoReport *report) {
        (void) resume_volume(u, v, report);

        if (v->fs_fd >= 0 && atomic_load(&v->frozen)) {
                /* EINVAL: not frozen (any more): the state we want. */
                if (ioctl(v->fs_fd, FITHAW, 0) >= 0) {
                        if (report)
                                report->thawed++;
                } else if (errno != EINVAL) {
                        note_failure(report, v->device, -errno);
                        return;
                }
                atomic_store(&v->frozen, false);
        }
}

void window_undo_run(WindowUndo *u, UndoReport *report) {
        if (!u)
                return;
        for (size_t i = 0; i < u->n_volumes; i++)
                window_undo_volume_run(u, &u->volumes[i], report);
}

/* ---------------------------------------------------------------- the in-flight record */

int window_undo_to_json(const WindowUndo *u, char *const *mountpoints, json_object **ret) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < u->n_volumes; i++) {
                json_object *o = json_object_new_object();

                if (!o || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                if (json_object_object_add(o, "major", json_object_new_int64(major(u->volumes[i].device))) < 0 ||
                    json_object_object_add(o, "minor", json_object_new_int64(minor(u->volumes[i].device))) < 0 ||
                    json_object_object_add(o, "dropInactive", json_object_new_boolean(u->volumes[i].drop_inactive)) < 0 ||
                    json_object_object_add(o, "mountpoint",
                                           mountpoints && mountpoints[i] ? json_object_new_string(mountpoints[i]) : NULL) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

int window_undo_from_json(json_object *j, WindowUndo **ret) {
        _cleanup_(window_undo_freep) WindowUndo *u = NULL;
        size_t n;
        int r;

        if (!json_object_is_type(j, json_type_array))
                return -EBADMSG;
        n = json_object_array_length(j);
        r = window_undo_new(n, &u);
        if (r < 0)
                return r;
        u->owns_fds = true;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_array_get_idx(j, i), *v;
                UndoVolume *uv = &u->volumes[i];
                unsigned ma = 0, mi = 0;

                if (json_object_object_get_ex(o, "major", &v))
                        ma = (unsigned) json_object_get_int64(v);
                if (json_object_object_get_ex(o, "minor", &v))
                        mi = (unsigned) json_object_get_int64(v);
                uv->device = makedev(ma, mi);
                uv->drop_inactive = json_object_object_get_ex(o, "dropInactive", &v) && json_object_get_boolean(v);
                if (json_object_object_get_ex(o, "mountpoint", &v) && json_object_is_type(v, json_type_string)) {
                        /* Opening a directory on a frozen filesystem is safe: a lookup only reads
                         * (and atime is not updated on a frozen superblock). */
                        uv->fs_fd = open(json_object_get_string(v), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                        if (uv->fs_fd < 0)
                                uv->fs_fd = -EBADF;
                        atomic_store(&uv->frozen, uv->fs_fd >= 0);
                }
        }
        *ret = TAKE_PTR(u);
        return 0;
}
