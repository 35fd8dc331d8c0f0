/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Who may call what. Every connection records its peer's credentials (SO_PEERCRED) when it is
 * accepted, and every call is checked against them, so a client cannot gain rights by passing its
 * connection on. The rules (snapsetd(8), "ACCESS CONTROL"):
 *   - root (uid 0) may call every method;
 *   - members of the configured read group (ReadGroup= in snapsetd.conf) may call the read-only
 *     methods (GetStatus, List*, GetSnapshot, Monitor);
 *   - everyone may call org.varlink.service (GetInfo, GetInterfaceDescription): the interface
 *     text is public, and it tells a client nothing about the machine;
 *   - everything else gets io.snapset.Manager.AccessDenied. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A connected process, as the kernel saw it when it connected (SO_PEERCRED, SO_PEERGROUPS). */
typedef struct Peer {
        pid_t pid;
        uid_t uid;
        gid_t gid;
        const gid_t *groups;     /* its supplementary groups; owned by whoever owns the Peer */
        size_t n_groups;
        uint64_t connection_id;  /* which connection: sets in creation and backup sets belong to one */
} Peer;

typedef enum AccessLevel {
        ACCESS_ANYONE,   /* introspection */
        ACCESS_READ,     /* root and the read group */
        ACCESS_ROOT,     /* root only: everything that changes something */
        _ACCESS_LEVEL_MAX,
        _ACCESS_LEVEL_INVALID = -EINVAL,
} AccessLevel;

/* The decision itself, without any lookup: may a caller with uid, who is (or is not) a member of
 * the read group, call a method that needs level? */
bool access_allowed(AccessLevel level, uid_t uid, bool read_group_member);

/* Is the peer a member of the group named group? It is if the process runs with that group (as
 * its gid or one of its supplementary groups, as the kernel reported them), or if the user
 * database makes the peer's uid a member (primary group or member list). Returns 1 or 0; 0 as
 * well when group is NULL or no such group exists; negative errno if the lookup failed. The user
 * database is asked on every call, so that a change of membership takes effect without a
 * restart. */
int access_peer_in_group(const Peer *peer, const char *group);

/* "root", "the read group or root", "anyone": for messages. */
const char *access_level_to_string(AccessLevel level);
