/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <libdevmapper.h>
#include <stdarg.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/utsname.h>

#include "blockdev.h"
#include "dm.h"
#include "log.h"
#include "macro.h"

DEFINE_TRIVIAL_CLEANUP_FUNC(struct dm_task *, dm_task_destroy);

static void fclosep(FILE **f) {
        if (*f)
                (void) fclose(*f);
}

/* ---------------------------------------------------------------- libdm's log */

/* libdm's level is a syslog level in the low bits, with flags (stderr, once) above them. */
#define LIBDM_LOG_LEVEL_MASK 0x7

/* Everything libdm says goes to our debug log: the caller decides what a failure means and logs
 * that. libdm's own debug level (one line per ioctl) and its "<backtrace>" markers are noise. */
_printf_(5, 6)
static void log_libdm(int level, const char *file, int line, int dm_errno_or_class, const char *f, ...) {
        va_list ap;

        if ((level & LIBDM_LOG_LEVEL_MASK) >= LOG_DEBUG || streq(f, "<backtrace>"))
                return;
        va_start(ap, f);
        (void) log_internalv(LOG_DEBUG, 0, file, line, "libdevmapper", f, ap);
        va_end(ap);
}

/* Checked before every call into libdm: without the node, libdm would create /dev/mapper and
 * mknod the node itself (as root), then fail on a kernel without device-mapper and print to
 * stderr. The node comes from devtmpfs or udev (modules.devname) even before dm_mod is loaded. */
static bool dm_control_present(void) {
        struct stat st;

        return stat(DM_CONTROL_PATH, &st) >= 0 && S_ISCHR(st.st_mode);
}

static void dm_init(void) {
        static bool initialized = false;

        if (initialized)
                return;
        dm_log_with_errno_init(log_libdm);
        initialized = true;
}

/* libdm reports failure as 0 and keeps the ioctl's errno in the task. */
static int dm_task_errno(struct dm_task *dmt) {
        int e = dm_task_get_errno(dmt);

        return e > 0 ? -e : -EIO;
}

/* ---------------------------------------------------------------- kernel modules */

static int modules_dir(char **ret) {
        static const char *const roots[] = { "/lib/modules", "/usr/lib/modules" };
        struct utsname u;

        if (uname(&u) < 0)
                return -errno;
        for (size_t i = 0; i < ELEMENTSOF(roots); i++) {
                char *p;

                if (asprintf(&p, "%s/%s", roots[i], u.release) < 0)
                        return -ENOMEM;
                if (access(p, F_OK) >= 0) {
                        *ret = p;
                        return 0;
                }
                free(p);
        }
        return -ENOENT;
}

/* Compares module names as modprobe does: '-' and '_' are the same. */
static bool module_name_matches(const char *a, const char *b, size_t len_b) {
        size_t i;

        for (i = 0; a[i] && i < len_b; i++) {
                char x = a[i] == '_' ? '-' : a[i], y = b[i] == '_' ? '-' : b[i];

                if (x != y)
                        return false;
        }
        return !a[i] && i == len_b;
}

/* A line of modules.dep ("kernel/drivers/md/dm-snapshot.ko.xz: deps") or modules.builtin
 * ("kernel/drivers/md/dm-mod.ko") names module if its file name is "<module>.ko[.*]". */
static bool modules_line_names(const char *line, const char *module) {
        const char *end = line + strcspn(line, ":\n"), *base = line, *ko;

        for (const char *c = line; c < end; c++)
                if (*c == '/')
                        base = c + 1;
        ko = strstr(base, ".ko");
        if (!ko || ko >= end)
                return false;
        return module_name_matches(module, base, (size_t) (ko - base));
}

static bool modules_file_lists(const char *dir, const char *file, const char *module) {
        _cleanup_(fclosep) FILE *f = NULL;
        _cleanup_free_ char *path = NULL, *line = NULL;
        size_t size = 0;

        if (asprintf(&path, "%s/%s", dir, file) < 0)
                return false;
        f = fopen(path, "re");
        if (!f)
                return false;
        while (getline(&line, &size, f) > 0)
                if (modules_line_names(line, module))
                        return true;
        return false;
}

static bool kernel_module_loaded(const char *module) {
        _cleanup_free_ char *path = NULL;

        /* /sys/module uses '_' ("dm_mod"); built-in modules with parameters show there too. */
        if (asprintf(&path, "/sys/module/%s", module) < 0)
                return false;
        for (char *c = path; *c; c++)
                if (*c == '-')
                        *c = '_';
        return access(path, F_OK) >= 0;
}

/* Not cached: this runs only when something is missing, and modules may be installed meanwhile. */
static bool kernel_module_available(const char *module) {
        _cleanup_free_ char *dir = NULL;

        if (kernel_module_loaded(module))
                return true;
        if (modules_dir(&dir) < 0)
                return false;
        return modules_file_lists(dir, "modules.builtin", module) ||
               modules_file_lists(dir, "modules.dep", module);
}

/* ---------------------------------------------------------------- probing */

static int reason_no_control(char **ret_reason) {
        struct utsname u;
        char *s;
        int r;

        if (uname(&u) < 0)
                return -errno;
        if (kernel_module_loaded("dm_mod") || access("/sys/class/misc/device-mapper", F_OK) >= 0)
                r = asprintf(&s, "device-mapper is in the kernel, but " DM_CONTROL_PATH " is missing "
                             "(create it with 'dmsetup mknodes', or let udev create it)");
        else if (kernel_module_available("dm_mod"))
                r = asprintf(&s, "the kernel has no device-mapper loaded (" DM_CONTROL_PATH " is missing; "
                             "load the dm_mod module: 'modprobe dm_mod')");
        else
                r = asprintf(&s, "the kernel has no device-mapper (" DM_CONTROL_PATH " is missing, and "
                             "kernel %s has no dm_mod module: it needs CONFIG_BLK_DEV_DM)", u.release);
        if (r < 0)
                return -ENOMEM;
        *ret_reason = s;
        return 0;
}

static int reason_errno(int error, const char *what, char **ret_reason) {
        bool privileged = error == -EACCES || error == -EPERM;
        char *s;

        if (asprintf(&s, "%s: %s%s", what, strerror(-error),
                     privileged ? " (device-mapper needs root: run snapsetd as root)" : "") < 0)
                return -ENOMEM;
        *ret_reason = s;
        return 0;
}

/* Our own open first, because libdm's failure carries no errno we could give the user. */
static int dm_control_open_check(void) {
        int fd;

        fd = open(DM_CONTROL_PATH, O_RDWR | O_CLOEXEC | O_NOCTTY);
        if (fd < 0)
                return -errno;
        safe_close(fd);
        return 0;
}

int dm_probe(char **ret_reason) {
        char version[64];
        int r;

        if (!dm_control_present()) {
                r = reason_no_control(ret_reason);
                return r < 0 ? r : 0;
        }
        r = dm_control_open_check();
        if (r < 0) {
                r = reason_errno(r, "cannot open " DM_CONTROL_PATH, ret_reason);
                return r < 0 ? r : 0;
        }

        dm_init();
        if (!dm_driver_version(version, sizeof(version))) {
                char *s = strdup("the device-mapper driver does not answer its version request "
                                 "(see the kernel log)");
                if (!s)
                        return -ENOMEM;
                *ret_reason = s;
                return 0;
        }
        log_debug("device-mapper driver version %s.", version);
        return 1;
}

static int dm_list_targets(char ***ret) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        struct dm_versions *v, *last;
        char **names = NULL;
        int r;

        if (!dm_control_present())
                return -ENODEV;
        dm_init();
        dmt = dm_task_create(DM_DEVICE_LIST_VERSIONS);
        if (!dmt)
                return -ENOMEM;
        if (!dm_task_run(dmt))
                return dm_task_errno(dmt);

        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        v = dm_task_get_versions(dmt);
        /* The list is packed: each entry gives the offset of the next; the last points at itself. */
        do {
                last = v;
                r = blockdev_strv_push(&names, v->name);
                if (r < 0) {
                        blockdev_strv_free(names);
                        return r;
                }
                v = (struct dm_versions *) ((char *) v + v->next);
        } while (v != last);

        *ret = names;
        return 0;
}

int dm_targets_available(const char *const *targets, const char *module, char **ret_reason) {
        char **loaded = NULL;
        const char *missing = NULL;
        char *s;
        int r;

        r = dm_list_targets(&loaded);
        if (r < 0)
                return log_debug_errno(r, "Failed to list device-mapper targets: %m");
        for (const char *const *t = targets; *t && !missing; t++)
                if (!blockdev_strv_contains(loaded, *t))
                        missing = *t;
        blockdev_strv_free(loaded);

        /* A target that is not loaded yet is fine if its module exists: the kernel loads it
         * ("dm-<target>") the first time a table uses the target. */
        if (!missing || kernel_module_available(module))
                return 1;
        if (asprintf(&s, "the kernel lacks the device-mapper target \"%s\" (module %s is neither "
                     "loaded nor installed for the running kernel)", missing, module) < 0)
                return -ENOMEM;
        *ret_reason = s;
        return 0;
}

/* ---------------------------------------------------------------- devices */

static int targets_of_table(struct dm_task *dmt, char ***ret) {
        char **names, *type, *params;
        uint64_t start, length;
        void *next = NULL;
        int r;

        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        do {
                next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
                if (!type || blockdev_strv_contains(names, type))
                        continue;
                r = blockdev_strv_push(&names, type);
                if (r < 0) {
                        blockdev_strv_free(names);
                        return r;
                }
        } while (next);

        *ret = names;
        return 0;
}

int dm_device_get_targets(unsigned major, unsigned minor, char ***ret_targets) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        struct dm_info info;

        if (!dm_control_present())
                return -ENODEV;
        dm_init();
        dmt = dm_task_create(DM_DEVICE_TABLE);
        if (!dmt)
                return -ENOMEM;
        if (!dm_task_set_major(dmt, (int) major) || !dm_task_set_minor(dmt, (int) minor))
                return -EINVAL;
        /* The open count is not needed, and asking for it costs the kernel a lookup. */
        if (!dm_task_no_open_count(dmt))
                return -ENOMEM;
        if (!dm_task_run(dmt))
                return dm_task_errno(dmt);
        if (!dm_task_get_info(dmt, &info) || !info.exists)
                return -ENXIO;
        if (!info.live_table) {
                char **none = calloc(1, sizeof(char *));

                if (!none)
                        return -ENOMEM;
                *ret_targets = none;
                return 0;
        }
        return targets_of_table(dmt, ret_targets);
}

int dm_device_thin_pool_name(unsigned major, unsigned minor, char *buf, size_t n) {
        _cleanup_free_ char *table = NULL, *type = NULL, *params = NULL;
        unsigned pma, pmi;
        uint64_t start, length;
        DmInfo pool;
        int r;

        r = dm_device_table(DM_REF_DEVNUM(major, minor), false, &table);
        if (r < 0)
                return r;
        r = dm_table_line_parse(table, strcspn(table, "\n"), &start, &length, &type, &params);
        if (r < 0)
                return r;
        if (!streq(type, "thin") || sscanf(params, "%u:%u", &pma, &pmi) != 2)
                return -EMEDIUMTYPE;
        r = dm_device_info(DM_REF_DEVNUM(pma, pmi), &pool);
        if (r < 0)
                return r;
        snprintf(buf, n, "%s", pool.name);
        return 0;
}

int dm_lvm_name_split(const char *name, char **ret_vg, char **ret_lv, char **ret_layer) {
        _cleanup_free_ char *buf = NULL, *vg = NULL, *lv = NULL, *layer = NULL;
        char *vgp, *lvp = NULL, *layerp = NULL;

        dm_init();
        buf = strdup(name);
        if (!buf)
                return -ENOMEM;
        /* Without a pool, libdm splits the string in place: vgp must point at a writable copy. */
        vgp = buf;
        if (!dm_split_lvm_name(NULL, NULL, &vgp, &lvp, &layerp))
                return -EINVAL;
        if (!vgp[0] || !lvp || !lvp[0])
                return -EINVAL;

        vg = strdup(vgp);
        lv = strdup(lvp);
        if (!vg || !lv)
                return -ENOMEM;
        if (layerp && layerp[0]) {
                layer = strdup(layerp);
                if (!layer)
                        return -ENOMEM;
        }
        *ret_vg = TAKE_PTR(vg);
        *ret_lv = TAKE_PTR(lv);
        *ret_layer = TAKE_PTR(layer);
        return 0;
}

static char *append_doubling_dashes(char *p, const char *s) {
        for (; *s; s++) {
                *p++ = *s;
                if (*s == '-')
                        *p++ = '-';
        }
        return p;
}

int dm_lvm_name_join(const char *vg, const char *lv, const char *layer, char **ret) {
        size_t len = 2 * (strlen(vg) + strlen(lv) + strlen(strempty(layer))) + 3;
        char *s, *p;

        s = malloc(len);
        if (!s)
                return -ENOMEM;
        p = append_doubling_dashes(s, vg);
        *p++ = '-';
        p = append_doubling_dashes(p, lv);
        if (layer) {
                *p++ = '-';
                p = append_doubling_dashes(p, layer);
        }
        *p = 0;
        *ret = s;
        return 0;
}

/* ---------------------------------------------------------------- devices: create, load, swap */

static int dm_task_new(int type, DmRef ref, struct dm_task **ret) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;

        if (!dm_control_present())
                return -ENODEV;
        dm_init();
        dmt = dm_task_create(type);
        if (!dmt)
                return -ENOMEM;
        if (ref.name) {
                if (!dm_task_set_name(dmt, ref.name))
                        return -EINVAL;
        } else if (ref.uuid) {
                if (!dm_task_set_uuid(dmt, ref.uuid))
                        return -EINVAL;
        } else if (type != DM_DEVICE_LIST) {
                if (!dm_task_set_major(dmt, (int) ref.major) || !dm_task_set_minor(dmt, (int) ref.minor))
                        return -EINVAL;
        }
        *ret = TAKE_PTR(dmt);
        return 0;
}

static uint16_t udev_flags_of(DmUdevRules rules) {
        switch (rules) {
        case DM_RULES_LOW_PRIORITY:
                return DM_UDEV_LOW_PRIORITY_FLAG;
        case DM_RULES_HIDDEN:
                /* What LVM does for its private layers: 10-dm.rules still makes the node, but no
                 * blkid (which would find the origin's filesystem twice), no by-* links, no
                 * systemd device units. */
                return DM_UDEV_DISABLE_SUBSYSTEM_RULES_FLAG | DM_UDEV_DISABLE_DISK_RULES_FLAG |
                       DM_UDEV_DISABLE_OTHER_RULES_FLAG;
        default:
                return 0;
        }
}

static int task_set_cookie(struct dm_task *dmt, DmUdevRules rules, uint32_t *cookie) {
        if (!cookie)
                return 0;
        if (!dm_task_set_cookie(dmt, cookie, udev_flags_of(rules)))
                return -ENOMEM;   /* a semaphore could not be created or incremented */
        return 0;
}

static void info_copy(struct dm_task *dmt, const struct dm_info *i, DmInfo *ret) {
        const char *name = dm_task_get_name(dmt), *uuid = dm_task_get_uuid(dmt);

        *ret = (DmInfo) {
                .suspended = i->suspended,
                .live_table = i->live_table,
                .inactive_table = i->inactive_table,
                .major = i->major,
                .minor = i->minor,
                .open_count = i->open_count,
        };
        if (name)
                snprintf(ret->name, sizeof(ret->name), "%s", name);
        if (uuid)
                snprintf(ret->uuid, sizeof(ret->uuid), "%s", uuid);
}

int dm_device_info(DmRef ref, DmInfo *ret) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        struct dm_info info;
        int r;

        r = dm_task_new(DM_DEVICE_INFO, ref, &dmt);
        if (r < 0)
                return r;
        if (!dm_task_run(dmt))
                return dm_task_errno(dmt);
        if (!dm_task_get_info(dmt, &info))
                return -EIO;
        if (!info.exists)
                return -ENXIO;
        info_copy(dmt, &info, ret);
        return 0;
}

int dm_device_swap_table(DmRef ref, const char *table, uint32_t *cookie) {
        int r;

        r = dm_device_load(ref, table);
        if (r < 0)
                return r;
        r = dm_device_suspend(ref, true);
        if (r < 0) {
                (void) dm_device_clear(ref);
                return r;
        }
        r = dm_device_resume(ref, DM_RULES_ALL, cookie);
        if (r < 0)
                /* Never leave it suspended: once more, without udev. */
                r = dm_device_resume(ref, DM_RULES_ALL, NULL);
        return r;
}

int dm_table_append(char **table, uint64_t start, uint64_t length, const char *type, const char *params) {
        char *s;

        if (asprintf(&s, "%s%" PRIu64 " %" PRIu64 " %s%s%s\n", strempty(*table), start, length, type,
                     params && params[0] ? " " : "", strempty(params)) < 0)
                return -ENOMEM;
        free(*table);
        *table = s;
        return 0;
}

static int table_of_task(struct dm_task *dmt, char **ret) {
        _cleanup_free_ char *table = NULL;
        char *type, *params;
        uint64_t start, length;
        void *next = NULL;
        int r;

        table = strdup("");
        if (!table)
                return -ENOMEM;
        do {
                next = dm_get_next_target(dmt, next, &start, &length, &type, &params);
                if (!type)
                        continue;
                r = dm_table_append(&table, start, length, type, params);
                if (r < 0)
                        return r;
        } while (next);
        *ret = TAKE_PTR(table);
        return 0;
}

int dm_device_table(DmRef ref, bool inactive, char **ret_table) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        struct dm_info info;
        int r;

        r = dm_task_new(DM_DEVICE_TABLE, ref, &dmt);
        if (r < 0)
                return r;
        if (!dm_task_no_open_count(dmt))
                return -ENOMEM;
        if (inactive && !dm_task_query_inactive_table(dmt))
                return -EOPNOTSUPP;
        if (!dm_task_run(dmt))
                return dm_task_errno(dmt);
        if (!dm_task_get_info(dmt, &info) || !info.exists)
                return -ENXIO;
        if (!(inactive ? info.inactive_table : info.live_table)) {
                char *empty = strdup("");

                if (!empty)
                        return -ENOMEM;
                *ret_table = empty;
                return 0;
        }
        return table_of_task(dmt, ret_table);
}

int dm_device_status(DmRef ref, char **ret_type, char **ret_params) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        _cleanup_free_ char *t = NULL, *p = NULL;
        struct dm_info info;
        char *type = NULL, *params = NULL;
        uint64_t start, length;
        int r;

        r = dm_task_new(DM_DEVICE_STATUS, ref, &dmt);
        if (r < 0)
                return r;
        if (!dm_task_no_open_count(dmt))
                return -ENOMEM;
        if (!dm_task_run(dmt))
                return dm_task_errno(dmt);
        if (!dm_task_get_info(dmt, &info) || !info.exists)
                return -ENXIO;
        if (!info.live_table)
                return -ENODATA;
        (void) dm_get_next_target(dmt, NULL, &start, &length, &type, &params);
        if (!type)
                return -ENODATA;
        t = strdup(type);
        p = strdup(strempty(params));
        if (!t || !p)
                return -ENOMEM;
        *ret_type = TAKE_PTR(t);
        *ret_params = TAKE_PTR(p);
        return 0;
}

int dm_table_line_parse(const char *line, size_t len, uint64_t *ret_start, uint64_t *ret_length,
                        char **ret_type, char **ret_params) {
        _cleanup_free_ char *buf = NULL, *type = NULL, *params = NULL;
        unsigned long long start, length;
        char *p, *end;

        buf = strndup(line, len);
        if (!buf)
                return -ENOMEM;
        p = buf + strspn(buf, " \t");
        /* strtoull accepts a sign and leading blanks; a table does not. */
        if (!(*p >= '0' && *p <= '9'))
                return -EINVAL;
        errno = 0;
        start = strtoull(p, &end, 10);
        if (errno != 0 || end == p || (*end != ' ' && *end != '\t'))
                return -EINVAL;
        p = end + strspn(end, " \t");
        if (!(*p >= '0' && *p <= '9'))
                return -EINVAL;
        length = strtoull(p, &end, 10);
        if (errno != 0 || end == p || (*end != ' ' && *end != '\t') || length == 0)
                return -EINVAL;
        p = end + strspn(end, " \t");
        end = p + strcspn(p, " \t");
        if (end == p)
                return -EINVAL;
        type = strndup(p, (size_t) (end - p));
        if (!type)
                return -ENOMEM;
        p = end + strspn(end, " \t");
        /* Trailing blanks (and a '\r') are not part of the parameters. */
        end = p + strlen(p);
        while (end > p && (end[-1] == ' ' || end[-1] == '\t' || end[-1] == '\r'))
                end--;
        params = strndup(p, (size_t) (end - p));
        if (!params)
                return -ENOMEM;

        *ret_start = start;
        *ret_length = length;
        *ret_type = TAKE_PTR(type);
        *ret_params = TAKE_PTR(params);
        return 0;
}

/* Calls f for each non-empty line of table; stops at the first error. */
static int table_for_each(const char *table, int (*f)(void *userdata, uint64_t start, uint64_t length,
                                                      const char *type, const char *params),
                          void *userdata) {
        size_t n_targets = 0;

        for (const char *l = table; *l; ) {
                size_t len = strcspn(l, "\n");
                _cleanup_free_ char *type = NULL, *params = NULL;
                uint64_t start, length;
                int r;

                if (strspn(l, " \t\r") < len) {
                        r = dm_table_line_parse(l, len, &start, &length, &type, &params);
                        if (r < 0)
                                return r;
                        r = f(userdata, start, length, type, params);
                        if (r < 0)
                                return r;
                        n_targets++;
                }
                l += len;
                if (*l == '\n')
                        l++;
        }
        return n_targets > 0 ? 0 : -EINVAL;
}

static int add_target(void *userdata, uint64_t start, uint64_t length, const char *type, const char *params) {
        return dm_task_add_target(userdata, start, length, type, params) ? 0 : -ENOMEM;
}

static int sum_length(void *userdata, uint64_t start, uint64_t length, const char *type, const char *params) {
        uint64_t *end = userdata;

        if (start + length > *end)
                *end = start + length;
        return 0;
}

int dm_table_length(const char *table, uint64_t *ret_sectors) {
        uint64_t end = 0;
        int r;

        r = table_for_each(table, sum_length, &end);
        if (r < 0)
                return r;
        *ret_sectors = end;
        return 0;
}

int dm_device_create(const char *name, const char *uuid, const char *table, DmUdevRules rules,
                     uint32_t *cookie, DmInfo *ret_info) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        struct dm_info info;
        int r;

        r = dm_task_new(DM_DEVICE_CREATE, DM_REF_NAME(name), &dmt);
        if (r < 0)
                return r;
        if (uuid && !dm_task_set_uuid(dmt, uuid))
                return -EINVAL;
        if (table) {
                r = table_for_each(table, add_target, dmt);
                if (r < 0)
                        return r;
        }
        /* Only with a table: libdm then resumes the device, and the resume's uevent releases the
         * cookie. A device created without a table sends no uevent that carries the cookie, and
         * a wait on it would never end. Its node comes with its first resume. */
        if (table) {
                r = task_set_cookie(dmt, rules, cookie);
                if (r < 0)
                        return r;
        }
        if (!dm_task_run(dmt))
                return dm_task_errno(dmt);
        if (ret_info) {
                if (!dm_task_get_info(dmt, &info) || !info.exists)
                        return -EIO;
                info_copy(dmt, &info, ret_info);
        }
        return 0;
}

/* What one of the simple tasks below needs besides its type and device. */
typedef struct TaskOptions {
        const char *table;        /* targets to add (load) */
        bool no_open_count;       /* the kernel need not count the openers */
        bool skip_lockfs;         /* suspend without freezing the filesystem on the device */
        bool retry_remove;
        bool with_cookie;         /* join *cookie (may be NULL: no udev synchronisation) */
        DmUdevRules rules;
        uint32_t *cookie;
        const char *message;      /* a target message, sent to the target at sector */
        uint64_t sector;
} TaskOptions;

/* Creates a task of type for ref, applies o, runs it: 0 or the kernel's -errno. The one place
 * where the simple device operations meet libdm. */
static int task_run_on(int type, DmRef ref, const TaskOptions *o) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        int r;

        r = dm_task_new(type, ref, &dmt);
        if (r < 0)
                return r;
        if (o->table) {
                r = table_for_each(o->table, add_target, dmt);
                if (r < 0)
                        return r;
        }
        if ((o->no_open_count && !dm_task_no_open_count(dmt)) ||
            (o->skip_lockfs && !dm_task_skip_lockfs(dmt)) ||
            (o->retry_remove && !dm_task_retry_remove(dmt)))
                return -ENOMEM;
        if (o->message && (!dm_task_set_sector(dmt, o->sector) || !dm_task_set_message(dmt, o->message)))
                return -ENOMEM;
        if (o->with_cookie) {
                r = task_set_cookie(dmt, o->rules, o->cookie);
                if (r < 0)
                        return r;
        }
        if (!dm_task_run(dmt))
                return dm_task_errno(dmt);
        return 0;
}

int dm_device_load(DmRef ref, const char *table) {
        return task_run_on(DM_DEVICE_RELOAD, ref, &(TaskOptions) { .table = table });
}

int dm_device_clear(DmRef ref) {
        return task_run_on(DM_DEVICE_CLEAR, ref, &(TaskOptions) {});
}

int dm_device_suspend(DmRef ref, bool skip_lockfs) {
        return task_run_on(DM_DEVICE_SUSPEND, ref, &(TaskOptions) { .no_open_count = true, .skip_lockfs = skip_lockfs });
}

int dm_device_resume(DmRef ref, DmUdevRules rules, uint32_t *cookie) {
        return task_run_on(DM_DEVICE_RESUME, ref, &(TaskOptions) {
                .no_open_count = true, .with_cookie = true, .rules = rules, .cookie = cookie });
}

int dm_device_remove(DmRef ref, uint32_t *cookie) {
        /* retry_remove: udev's blkid may hold a new or changed device open for a moment; libdm
         * then retries for a few seconds instead of failing with EBUSY. */
        return task_run_on(DM_DEVICE_REMOVE, ref, &(TaskOptions) {
                .no_open_count = true, .retry_remove = true, .with_cookie = true, .rules = DM_RULES_ALL,
                .cookie = cookie });
}

int dm_device_message(DmRef ref, uint64_t sector, const char *message) {
        return task_run_on(DM_DEVICE_TARGET_MSG, ref, &(TaskOptions) { .message = message, .sector = sector });
}

int dm_device_mknodes(DmRef ref) {
        int r;

        r = task_run_on(DM_DEVICE_MKNODES, ref, &(TaskOptions) {});
        if (r < 0)
                return r;
        /* libdm stacks node operations; do them now. */
        dm_task_update_nodes();
        return 0;
}

int dm_device_list(char ***ret_names) {
        _cleanup_(dm_task_destroyp) struct dm_task *dmt = NULL;
        struct dm_names *n;
        char **names;
        int r;

        r = dm_task_new(DM_DEVICE_LIST, (DmRef) {}, &dmt);
        if (r < 0)
                return r;
        if (!dm_task_run(dmt))
                return dm_task_errno(dmt);
        names = calloc(1, sizeof(char *));
        if (!names)
                return -ENOMEM;
        n = dm_task_get_names(dmt);
        /* Packed like the versions: each entry gives the offset of the next, 0 for the last; an
         * empty list has dev 0. */
        if (n && n->dev)
                for (;;) {
                        r = blockdev_strv_push(&names, n->name);
                        if (r < 0) {
                                blockdev_strv_free(names);
                                return r;
                        }
                        if (!n->next)
                                break;
                        n = (struct dm_names *) ((char *) n + n->next);
                }
        *ret_names = names;
        return 0;
}

int dm_udev_cookie_new(uint32_t *ret_cookie) {
        uint32_t cookie = 0;

        if (!dm_control_present())
                return -ENODEV;
        dm_init();
        if (!dm_udev_create_cookie(&cookie))
                return -ENOMEM;   /* no semaphore: SysV IPC limits */
        *ret_cookie = cookie;
        return 0;
}

int dm_udev_cookie_wait(uint32_t *cookie) {
        uint32_t c = *cookie;

        *cookie = 0;
        if (!dm_control_present())
                return 0;
        dm_init();
        /* Also for cookie 0: that is when libdm makes or removes the nodes itself. */
        return dm_udev_wait(c) ? 0 : -EIO;
}
