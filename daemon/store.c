/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <sys/stat.h>

#include "store.h"
#include "varlink.h"

#define SETS_SUBDIR "sets"
#define RECORD_MAX (4U * 1024U * 1024U)

static int sets_dir(const char *dir, char ret[static PATH_MAX]) {
        if ((size_t) snprintf(ret, PATH_MAX, "%s/" SETS_SUBDIR, dir) >= PATH_MAX)
                return -ENAMETOOLONG;
        return 0;
}

static int mkdir_if_missing(const char *path, mode_t mode) {
        if (mkdir(path, mode) < 0 && errno != EEXIST)
                return -errno;
        return 0;
}

int store_open(const char *dir) {
        char p[PATH_MAX];
        int r;

        r = mkdir_if_missing(dir, 0700);
        if (r < 0)
                return r;
        r = sets_dir(dir, p);
        if (r < 0)
                return r;
        return mkdir_if_missing(p, 0700);
}

static int write_all(int fd, const char *data, size_t size) {
        while (size > 0) {
                ssize_t n = write(fd, data, size);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                data += n;
                size -= (size_t) n;
        }
        return 0;
}

int write_file_atomic(const char *dir, const char *name, const char *data, size_t size) {
        _cleanup_close_ int dfd = -EBADF, fd = -EBADF;
        char tmp[NAME_MAX + 1];
        int r;

        if ((size_t) snprintf(tmp, sizeof tmp, ".#%s.tmp", name) >= sizeof tmp)
                return -ENAMETOOLONG;

        dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return -errno;

        r = write_all(fd, data, size);
        if (r >= 0 && fsync(fd) < 0)
                r = -errno;
        if (r >= 0 && renameat(dfd, tmp, dfd, name) < 0)
                r = -errno;
        if (r < 0) {
                (void) unlinkat(dfd, tmp, 0);
                return r;
        }
        /* The rename is durable only once the directory is. */
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

int store_save_set(const char *dir, const SnapshotSet *s) {
        _cleanup_(json_object_putp) json_object *j = NULL;
        char p[PATH_MAX], name[NAME_MAX + 1];
        const char *text;
        size_t len;
        int r;

        r = sets_dir(dir, p);
        if (r < 0)
                return r;
        r = snapshot_set_to_json(s, /* private= */ true, &j);
        if (r < 0)
                return r;
        text = json_object_to_json_string_length(j, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
        if (!text)
                return -ENOMEM;
        snprintf(name, sizeof name, "%s.json", s->id);
        return write_file_atomic(p, name, text, len);
}

int store_remove_set(const char *dir, const char *set_id) {
        _cleanup_close_ int dfd = -EBADF;
        char p[PATH_MAX], name[NAME_MAX + 1];
        int r;

        if (!snapset_id_is_valid(set_id))
                return -EINVAL;
        r = sets_dir(dir, p);
        if (r < 0)
                return r;
        dfd = open(p, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd < 0)
                return -errno;
        snprintf(name, sizeof name, "%s.json", set_id);
        if (unlinkat(dfd, name, 0) < 0)
                return -errno;
        if (fsync(dfd) < 0)
                return -errno;
        return 0;
}

static int read_record(int dfd, const char *name, json_object **ret) {
        _cleanup_close_ int fd = -EBADF;
        _cleanup_free_ char *buf = NULL;
        struct stat st;
        ssize_t n;
        json_object *j;

        fd = openat(dfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return -errno;
        if (fstat(fd, &st) < 0)
                return -errno;
        if (!S_ISREG(st.st_mode))
                return -EBADMSG;
        if ((uint64_t) st.st_size > RECORD_MAX)
                return -EFBIG;
        buf = malloc((size_t) st.st_size + 1);
        if (!buf)
                return -ENOMEM;
        n = read(fd, buf, (size_t) st.st_size);
        if (n < 0)
                return -errno;
        buf[n] = 0;
        j = json_tokener_parse(buf);
        if (!j)
                return -EBADMSG;
        *ret = j;
        return 0;
}

static bool is_record_name(const char *name) {
        const char *dot = strrchr(name, '.');

        return dot && streq(dot, ".json") && (size_t) (dot - name) == SNAPSET_ID_LENGTH;
}

int store_load_sets(const char *dir,
                    int (*found)(SnapshotSet *s, void *userdata),
                    void (*bad)(const char *path, int error, void *userdata),
                    void *userdata) {
        char p[PATH_MAX];
        DIR *d;
        struct dirent *de;
        int r, n = 0;

        r = sets_dir(dir, p);
        if (r < 0)
                return r;
        d = opendir(p);
        if (!d)
                return errno == ENOENT ? 0 : -errno;

        while ((de = readdir(d))) {
                _cleanup_(json_object_putp) json_object *j = NULL;
                SnapshotSet *s = NULL;
                char path[PATH_MAX + NAME_MAX + 2];

                if (!is_record_name(de->d_name))
                        continue;
                snprintf(path, sizeof path, "%s/%s", p, de->d_name);
                r = read_record(dirfd(d), de->d_name, &j);
                if (r >= 0)
                        r = snapshot_set_from_json(j, &s);
                /* The file name is the id: a record renamed by hand would confuse deletes. */
                if (r >= 0 && strncmp(de->d_name, s->id, SNAPSET_ID_LENGTH) != 0) {
                        s = snapshot_set_free(s);
                        r = -EBADMSG;
                }
                if (r < 0) {
                        if (bad)
                                bad(path, r, userdata);
                        continue;
                }
                r = found(s, userdata);
                if (r < 0) {
                        closedir(d);
                        return r;
                }
                n++;
        }
        closedir(d);
        return n;
}
