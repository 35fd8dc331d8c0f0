/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <unistd.h>

#include "access.h"
#include "macro.h"

bool access_allowed(AccessLevel level, uid_t uid, bool read_group_member) {
        switch (level) {
        case ACCESS_ANYONE:
                return true;
        case ACCESS_READ:
                return uid == 0 || read_group_member;
        case ACCESS_ROOT:
                return uid == 0;
        default:
                return false; /* an unknown level never grants anything */
        }
}

const char *access_level_to_string(AccessLevel level) {
        switch (level) {
        case ACCESS_ANYONE:
                return "anyone";
        case ACCESS_READ:
                return "root or the read group";
        case ACCESS_ROOT:
                return "root";
        default:
                return NULL;
        }
}

/* getgrnam_r()/getpwuid_r() with a buffer that grows on ERANGE: group entries with many members
 * do not fit the sysconf() hint. */
static int lookup_group(const char *name, gid_t *ret_gid) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 4096;

        for (;;) {
                struct group grp, *result = NULL;
                char *nbuf;
                int r;

                nbuf = realloc(buf, size);
                if (!nbuf)
                        return -ENOMEM;
                buf = nbuf;
                r = getgrnam_r(name, &grp, buf, size, &result);
                if (r == ERANGE && size < 16U * 1024U * 1024U) {
                        size *= 2;
                        continue;
                }
                if (r != 0)
                        return -r;
                if (!result)
                        return -ENOENT;
                *ret_gid = result->gr_gid;
                return 0;
        }
}

static int lookup_user(uid_t uid, char **ret_name, gid_t *ret_gid) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 4096;

        for (;;) {
                struct passwd pw, *result = NULL;
                char *nbuf;
                int r;

                nbuf = realloc(buf, size);
                if (!nbuf)
                        return -ENOMEM;
                buf = nbuf;
                r = getpwuid_r(uid, &pw, buf, size, &result);
                if (r == ERANGE && size < 16U * 1024U * 1024U) {
                        size *= 2;
                        continue;
                }
                if (r != 0)
                        return -r;
                if (!result)
                        return -ENOENT;
                *ret_name = strdup(result->pw_name);
                if (!*ret_name)
                        return -ENOMEM;
                *ret_gid = result->pw_gid;
                return 0;
        }
}

int access_peer_in_group(const Peer *peer, const char *group) {
        _cleanup_free_ gid_t *groups = NULL;
        _cleanup_free_ char *user = NULL;
        gid_t gid = 0, user_gid = 0;
        int n = 64, r;

        if (!group)
                return 0;

        r = lookup_group(group, &gid);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;

        /* The groups the process runs with count (a service started with Group= or
         * SupplementaryGroups=, "sg", setpriv --groups), as well as what the user database says. */
        if (peer->gid == gid)
                return 1;
        for (size_t i = 0; i < peer->n_groups; i++)
                if (peer->groups[i] == gid)
                        return 1;

        r = lookup_user(peer->uid, &user, &user_gid);
        if (r == -ENOENT)
                return 0; /* a uid without a user entry has no supplementary groups */
        if (r < 0)
                return r;
        if (user_gid == gid)
                return 1;

        for (;;) {
                gid_t *ngroups = realloc(groups, sizeof(gid_t) * (size_t) n);
                int count = n;

                if (!ngroups)
                        return -ENOMEM;
                groups = ngroups;
                if (getgrouplist(user, user_gid, groups, &count) >= 0) {
                        for (int i = 0; i < count; i++)
                                if (groups[i] == gid)
                                        return 1;
                        return 0;
                }
                if (count <= n || count > 65536)
                        return -EIO;
                n = count;
        }
}
