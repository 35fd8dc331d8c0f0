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

/* A group by name, or a user by uid, in the user database. */
typedef struct AccountLookup {
        const char *group_name;  /* the group to look up; NULL: the user uid */
        uid_t uid;
        gid_t gid;               /* found: the group's gid, or the user's primary group */
        char *user_name;         /* found: the user's name (owned by the caller) */
} AccountLookup;

/* One getgrnam_r() or getpwuid_r() call into buf, copying out what is needed before buf goes. */
static int account_lookup_into(AccountLookup *q, char *buf, size_t size) {
        struct group grp, *group = NULL;
        struct passwd pw, *user = NULL;
        int r;

        if (q->group_name)
                r = getgrnam_r(q->group_name, &grp, buf, size, &group);
        else
                r = getpwuid_r(q->uid, &pw, buf, size, &user);
        if (r != 0)
                return -r;
        if (group) {
                q->gid = group->gr_gid;
                return 0;
        }
        if (!user)
                return -ENOENT;
        q->user_name = strdup(user->pw_name);
        if (!q->user_name)
                return -ENOMEM;
        q->gid = user->pw_gid;
        return 0;
}

/* With a buffer that grows on ERANGE: group entries with many members do not fit the sysconf()
 * hint. */
static int account_lookup(AccountLookup *q) {
        _cleanup_free_ char *buf = NULL;
        size_t size = 4096;

        for (;;) {
                char *nbuf;
                int r;

                nbuf = realloc(buf, size);
                if (!nbuf)
                        return -ENOMEM;
                buf = nbuf;
                r = account_lookup_into(q, buf, size);
                if (r == -ERANGE && size < 16U * 1024U * 1024U) {
                        size *= 2;
                        continue;
                }
                return r;
        }
}

int access_peer_in_group(const Peer *peer, const char *group) {
        _cleanup_free_ gid_t *groups = NULL;
        _cleanup_free_ char *user = NULL;
        AccountLookup group_entry = { .group_name = group }, user_entry = { .uid = peer->uid };
        gid_t gid = 0, user_gid = 0;
        int n = 64, r;

        if (!group)
                return 0;

        r = account_lookup(&group_entry);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        gid = group_entry.gid;

        /* The groups the process runs with count (a service started with Group= or
         * SupplementaryGroups=, "sg", setpriv --groups), as well as what the user database says. */
        if (peer->gid == gid)
                return 1;
        for (size_t i = 0; i < peer->n_groups; i++)
                if (peer->groups[i] == gid)
                        return 1;

        r = account_lookup(&user_entry);
        if (r == -ENOENT)
                return 0; /* a uid without a user entry has no supplementary groups */
        if (r < 0)
                return r;
        user = user_entry.user_name;
        user_gid = user_entry.gid;
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
