/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The snapshot set model and the state directory: records round-trip exactly, the API form hides
 * provider data, writes are atomic, and one bad record never hides the others. */

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "snapshot-set.h"
#include "store.h"
#include "varlink.h"

static char dir[] = "/tmp/snapset-store-XXXXXX";

static void setup(void) {
        ck_assert_ptr_nonnull(mkdtemp(strcpy(dir, "/tmp/snapset-store-XXXXXX")));
        ck_assert_int_eq(store_open(dir), 0);
}

static void teardown(void) {
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        ck_assert_int_eq(system(cmd), 0);
}

static SnapshotSet *make_set(void) {
        SnapshotSet *s;
        Snapshot *a, *b;

        ck_assert_int_eq(snapshot_set_new(SET_CONTEXT_PERSISTENT, &s), 0);
        ck_assert_int_eq(snapshot_set_add(s, "/dev/mapper/data", "/dev/mapper/data", makedev(253, 1), "dm-snapshot", &a), 0);
        ck_assert_int_eq(snapshot_set_add(s, "/srv/log", "/dev/mapper/log", makedev(253, 2), "dm-snapshot", &b), 0);
        a->device = strdup("/dev/mapper/snapset-a");
        a->cow_size = 1 << 20;
        a->provider_data = json_tokener_parse("{\"cowFile\": \"/var/lib/snapset/cow/a\", \"loop\": 3}");
        b->invalid = true;
        s->state = SET_STATE_CREATED;
        s->freeze_window_usec = 1234;
        s->hold_usec = 567;
        return s;
}

/* Both callbacks get this: the one set expected, and the bad records seen. */
typedef struct Loaded {
        SnapshotSet *set;
        int bad;
} Loaded;

static int collect(SnapshotSet *s, void *userdata) {
        Loaded *l = userdata;
        ck_assert_ptr_null(l->set);
        l->set = s;
        return 0;
}

static void count_bad(const char *path, int error, void *userdata) {
        ck_assert_ptr_nonnull(path);
        ck_assert_int_eq(error, -EBADMSG);
        ((Loaded *) userdata)->bad++;
}

START_TEST(test_a_saved_set_loads_back_identical) {
        _cleanup_(snapshot_set_freep) SnapshotSet *s = make_set(), *t = NULL;
        _cleanup_(json_object_putp) json_object *js = NULL, *jt = NULL;
        Loaded l = {};

        ck_assert_int_eq(store_save_set(dir, s), 0);
        ck_assert_int_eq(store_load_sets(dir, collect, NULL, &l), 1);
        t = l.set;
        ck_assert_ptr_nonnull(t);
        ck_assert_int_eq(snapshot_set_to_json(s, true, &js), 0);
        ck_assert_int_eq(snapshot_set_to_json(t, true, &jt), 0);
        ck_assert_str_eq(json_object_to_json_string(js), json_object_to_json_string(jt));
        ck_assert(t->snapshots[1]->volume_device == makedev(253, 2));
        ck_assert_str_eq(t->snapshots[1]->volume_path, "/dev/mapper/log");
        ck_assert(t->snapshots[1]->invalid);
}
END_TEST

START_TEST(test_the_api_form_hides_provider_data_and_private_paths) {
        _cleanup_(snapshot_set_freep) SnapshotSet *s = make_set();
        _cleanup_(json_object_putp) json_object *j = NULL;
        json_object *snaps, *a, *v;

        ck_assert_int_eq(snapshot_set_to_json(s, false, &j), 0);
        ck_assert(json_object_object_get_ex(j, "snapshots", &snaps));
        a = json_object_array_get_idx(snaps, 0);
        ck_assert(!json_object_object_get_ex(a, "providerData", NULL));
        ck_assert(!json_object_object_get_ex(a, "volumePath", NULL));
        ck_assert(json_object_object_get_ex(a, "volumeDevice", &v));
        ck_assert_str_eq(json_object_get_string(v), "253:1");
        ck_assert(json_object_object_get_ex(j, "freezeWindowUsec", &v));
        ck_assert_int_eq(json_object_get_int64(v), 1234);
        ck_assert(json_object_object_get_ex(j, "context", &v));
        ck_assert_str_eq(json_object_get_string(v), "persistent");
}
END_TEST

START_TEST(test_saving_leaves_no_temporary_file_and_replaces_the_record) {
        _cleanup_(snapshot_set_freep) SnapshotSet *s = make_set(), *t = NULL;
        char p[400];
        DIR *d;
        struct dirent *de;
        int files = 0;

        ck_assert_int_eq(store_save_set(dir, s), 0);
        s->state = SET_STATE_DELETING;
        ck_assert_int_eq(store_save_set(dir, s), 0);
        snprintf(p, sizeof p, "%s/sets", dir);
        d = opendir(p);
        while ((de = readdir(d)))
                if (de->d_name[0] != '.')
                        files++;
                else
                        ck_assert_msg(streq(de->d_name, ".") || streq(de->d_name, ".."), "left %s", de->d_name);
        closedir(d);
        ck_assert_int_eq(files, 1);
        Loaded l = {};
        ck_assert_int_eq(store_load_sets(dir, collect, NULL, &l), 1);
        t = l.set;
        ck_assert_int_eq(t->state, SET_STATE_DELETING);
}
END_TEST

START_TEST(test_a_malformed_record_is_reported_and_the_others_still_load) {
        _cleanup_(snapshot_set_freep) SnapshotSet *s = make_set(), *t = NULL;
        char p[400];
        FILE *f;
        Loaded l = {};

        ck_assert_int_eq(store_save_set(dir, s), 0);
        snprintf(p, sizeof p, "%s/sets/00000000-0000-0000-0000-000000000001.json", dir);
        f = fopen(p, "we");
        fputs("{\"id\": \"truncated", f);
        fclose(f);
        snprintf(p, sizeof p, "%s/sets/00000000-0000-0000-0000-000000000002.json", dir);
        f = fopen(p, "we");
        fprintf(f, "{\"id\": \"%s\", \"context\": \"persistent\", \"state\": \"created\", \"createdUsec\": 1, \"snapshots\": []}", s->id);
        fclose(f);

        ck_assert_int_eq(store_load_sets(dir, collect, count_bad, &l), 1);
        ck_assert_int_eq(l.bad, 2);
        t = l.set;
        ck_assert_str_eq(t->id, s->id);
}
END_TEST

START_TEST(test_removing_a_set_deletes_its_record) {
        _cleanup_(snapshot_set_freep) SnapshotSet *s = make_set();

        ck_assert_int_eq(store_save_set(dir, s), 0);
        ck_assert_int_eq(store_remove_set(dir, s->id), 0);
        ck_assert_int_eq(store_remove_set(dir, s->id), -ENOENT);
        ck_assert_int_eq(store_remove_set(dir, "../../etc/passwd"), -EINVAL);
        ck_assert_int_eq(store_load_sets(dir, collect, NULL, &(Loaded) {}), 0);
}
END_TEST

START_TEST(test_ids_are_fresh_uuids_and_validated) {
        SnapsetId a, b;

        snapset_id_generate(a);
        snapset_id_generate(b);
        ck_assert(snapset_id_is_valid(a));
        ck_assert_str_ne(a, b);
        ck_assert(!snapset_id_is_valid("not-a-uuid"));
        ck_assert(!snapset_id_is_valid(""));
        ck_assert(!snapset_id_is_valid(NULL));
        ck_assert_int_eq(set_context_from_string("backup"), SET_CONTEXT_BACKUP);
        ck_assert_int_eq(set_context_from_string("Backup"), _SET_CONTEXT_INVALID);
}
END_TEST

Suite *suite_store(void) {
        Suite *s = suite_create("store");
        TCase *tc = tcase_create("records");

        tcase_add_checked_fixture(tc, setup, teardown);
        tcase_add_test(tc, test_a_saved_set_loads_back_identical);
        tcase_add_test(tc, test_the_api_form_hides_provider_data_and_private_paths);
        tcase_add_test(tc, test_saving_leaves_no_temporary_file_and_replaces_the_record);
        tcase_add_test(tc, test_a_malformed_record_is_reported_and_the_others_still_load);
        tcase_add_test(tc, test_removing_a_set_deletes_its_record);
        tcase_add_test(tc, test_ids_are_fresh_uuids_and_validated);
        suite_add_tcase(s, tc);
        return s;
}
