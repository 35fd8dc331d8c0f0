/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Who may call what: the decision for every (caller, method kind), group membership, and the
 * method table against the interface definitions it claims to implement. */

#include <check.h>
#include <grp.h>
#include <pwd.h>
#include <stdio.h>
#include <unistd.h>

#include "access.h"
#include "macro.h"
#include "methods.h"

START_TEST(test_root_may_call_everything) {
        for (AccessLevel l = 0; l < _ACCESS_LEVEL_MAX; l++) {
                ck_assert(access_allowed(l, 0, false));
                ck_assert(access_allowed(l, 0, true));
        }
}
END_TEST

START_TEST(test_read_group_member_may_read_but_not_change) {
        ck_assert(access_allowed(ACCESS_ANYONE, 1000, true));
        ck_assert(access_allowed(ACCESS_READ, 1000, true));
        ck_assert(!access_allowed(ACCESS_ROOT, 1000, true));
}
END_TEST

START_TEST(test_other_users_may_only_introspect) {
        ck_assert(access_allowed(ACCESS_ANYONE, 65534, false));
        ck_assert(!access_allowed(ACCESS_READ, 65534, false));
        ck_assert(!access_allowed(ACCESS_ROOT, 65534, false));
}
END_TEST

START_TEST(test_unknown_access_level_grants_nothing) {
        ck_assert(!access_allowed(_ACCESS_LEVEL_MAX, 1000, true));
        ck_assert(!access_allowed(_ACCESS_LEVEL_INVALID, 1000, true));
        ck_assert_ptr_null(access_level_to_string(_ACCESS_LEVEL_MAX));
}
END_TEST

/* A uid and gids that no user database entry has. */
#define STRANGER_UID 4000000000U
#define STRANGER_GID 4000000001U

START_TEST(test_no_read_group_means_nobody_is_a_member) {
        ck_assert_int_eq(access_peer_in_group(&(Peer) { .uid = 0, .gid = 0 }, NULL), 0);
        ck_assert_int_eq(access_peer_in_group(&(Peer) { .uid = 1000, .gid = 1000 }, NULL), 0);
}
END_TEST

START_TEST(test_nonexistent_group_has_no_members) {
        ck_assert_int_eq(access_peer_in_group(&(Peer) { .uid = 0, .gid = 0 }, "snapset-no-such-group-xyz"), 0);
}
END_TEST

START_TEST(test_peer_gid_makes_a_member) {
        struct group *g = getgrgid(0);

        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(access_peer_in_group(&(Peer) { .uid = STRANGER_UID, .gid = 0 }, g->gr_name), 1);
        ck_assert_int_eq(access_peer_in_group(&(Peer) { .uid = STRANGER_UID, .gid = STRANGER_GID }, g->gr_name), 0);
}
END_TEST

START_TEST(test_peer_supplementary_group_makes_a_member) {
        const gid_t groups[] = { STRANGER_GID, 0 };
        struct group *g = getgrgid(0);

        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(access_peer_in_group(&(Peer) { .uid = STRANGER_UID, .gid = STRANGER_GID,
                                                        .groups = groups, .n_groups = 2 }, g->gr_name), 1);
        ck_assert_int_eq(access_peer_in_group(&(Peer) { .uid = STRANGER_UID, .gid = STRANGER_GID,
                                                        .groups = groups, .n_groups = 1 }, g->gr_name), 0);
}
END_TEST

START_TEST(test_primary_group_from_the_user_database_makes_a_member) {
        struct passwd *pw = getpwuid(0);
        struct group *g;

        ck_assert_ptr_nonnull(pw);
        g = getgrgid(pw->pw_gid);
        ck_assert_ptr_nonnull(g);
        /* The peer runs with some other gid; the user database still says root's group. */
        ck_assert_int_eq(access_peer_in_group(&(Peer) { .uid = 0, .gid = STRANGER_GID }, g->gr_name), 1);
}
END_TEST

START_TEST(test_method_lookup_finds_known_methods) {
        const Method *m = NULL;

        ck_assert_int_eq(method_lookup("io.snapset.Manager", "GetStatus", &m), 0);
        ck_assert_str_eq(m->member, "GetStatus");
        ck_assert_int_eq(method_lookup("org.varlink.service", "GetInfo", &m), 0);
        ck_assert_str_eq(m->interface, "org.varlink.service");
}
END_TEST

START_TEST(test_method_lookup_tells_unknown_interface_from_unknown_method) {
        const Method *m = NULL;

        ck_assert_int_eq(method_lookup("io.snapset.Managr", "GetStatus", &m), -EADDRNOTAVAIL);
        ck_assert_int_eq(method_lookup("io.snapset.Manager", "GetStatuss", &m), -ENXIO);
        ck_assert_int_eq(method_lookup("org.varlink.service", "GetStatus", &m), -ENXIO);
        ck_assert_ptr_null(m);
}
END_TEST

static AccessLevel level_of(const char *interface, const char *member) {
        const Method *m;

        ck_assert_int_eq(method_lookup(interface, member, &m), 0);
        return method_access_level(m);
}

START_TEST(test_introspection_is_open_to_everyone) {
        ck_assert_int_eq(level_of("org.varlink.service", "GetInfo"), ACCESS_ANYONE);
        ck_assert_int_eq(level_of("org.varlink.service", "GetInterfaceDescription"), ACCESS_ANYONE);
}
END_TEST

START_TEST(test_read_only_methods_need_the_read_group) {
        static const char *const readers[] = {
                "GetStatus", "ListProviders", "ListVolumes", "ListSnapshotSets", "ListSnapshots",
                "GetSnapshot", "Monitor",
        };

        for (size_t i = 0; i < ELEMENTSOF(readers); i++)
                ck_assert_msg(level_of("io.snapset.Manager", readers[i]) == ACCESS_READ, "%s", readers[i]);
}
END_TEST

START_TEST(test_every_other_manager_method_needs_root) {
        static const char *const writers[] = {
                "StartSnapshotSet", "AddToSnapshotSet", "DoSnapshotSet", "AbortSnapshotSet",
                "CreateSnapshotSet", "DeleteSnapshots", "ExposeSnapshot", "UnexposeSnapshot",
                "RevertToSnapshot", "BreakSnapshotSet",
        };

        for (size_t i = 0; i < ELEMENTSOF(writers); i++)
                ck_assert_msg(level_of("io.snapset.Manager", writers[i]) == ACCESS_ROOT, "%s", writers[i]);
}
END_TEST

START_TEST(test_streaming_methods_are_marked) {
        size_t n;
        const Method *t = method_table(&n);

        for (size_t i = 0; i < n; i++) {
                bool streams = streq(t[i].member, "ListSnapshotSets") || streq(t[i].member, "ListSnapshots") ||
                               streq(t[i].member, "Monitor");
                ck_assert_msg(!!(t[i].flags & METHOD_STREAMS) == streams, "%s", t[i].member);
        }
}
END_TEST

/* Every "method Name(" of the interface text. */
static unsigned idl_methods(const char *idl, char names[][64], unsigned max) {
        unsigned n = 0;

        for (const char *p = idl; (p = strstr(p, "\nmethod ")); p++) {
                const char *name = p + strlen("\nmethod ");
                size_t l = strcspn(name, "( ");

                ck_assert_uint_lt(n, max);
                ck_assert_uint_lt(l, 64);
                memcpy(names[n], name, l);
                names[n][l] = 0;
                n++;
        }
        return n;
}

START_TEST(test_table_has_exactly_the_methods_of_the_interfaces) {
        static const char *const interfaces[] = { "org.varlink.service", "io.snapset.Manager" };
        size_t n_table;
        (void) method_table(&n_table);
        unsigned total = 0;

        for (size_t i = 0; i < ELEMENTSOF(interfaces); i++) {
                const char *idl = method_interface_description(interfaces[i]);
                char names[64][64];
                unsigned n;

                ck_assert_ptr_nonnull(idl);
                ck_assert_ptr_nonnull(strstr(idl, interfaces[i]));
                n = idl_methods(idl, names, ELEMENTSOF(names));
                ck_assert_uint_gt(n, 0);
                for (unsigned j = 0; j < n; j++) {
                        const Method *m;
                        ck_assert_msg(method_lookup(interfaces[i], names[j], &m) == 0,
                                      "%s.%s is in the IDL but not in the table", interfaces[i], names[j]);
                }
                total += n;
        }
        ck_assert_uint_eq(total, n_table);
        ck_assert_ptr_null(method_interface_description("org.example.nothing"));
}
END_TEST

Suite *suite_daemon_access(void);
Suite *suite_daemon_access(void) {
        Suite *s = suite_create("daemon-access");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_root_may_call_everything);
        tcase_add_test(tc, test_read_group_member_may_read_but_not_change);
        tcase_add_test(tc, test_other_users_may_only_introspect);
        tcase_add_test(tc, test_unknown_access_level_grants_nothing);
        tcase_add_test(tc, test_no_read_group_means_nobody_is_a_member);
        tcase_add_test(tc, test_nonexistent_group_has_no_members);
        tcase_add_test(tc, test_peer_gid_makes_a_member);
        tcase_add_test(tc, test_peer_supplementary_group_makes_a_member);
        tcase_add_test(tc, test_primary_group_from_the_user_database_makes_a_member);
        tcase_add_test(tc, test_method_lookup_finds_known_methods);
        tcase_add_test(tc, test_method_lookup_tells_unknown_interface_from_unknown_method);
        tcase_add_test(tc, test_introspection_is_open_to_everyone);
        tcase_add_test(tc, test_read_only_methods_need_the_read_group);
        tcase_add_test(tc, test_every_other_manager_method_needs_root);
        tcase_add_test(tc, test_streaming_methods_are_marked);
        tcase_add_test(tc, test_table_has_exactly_the_methods_of_the_interfaces);
        suite_add_tcase(s, tc);
        return s;
}
