/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The journal's MESSAGE_IDs (daemon/message-ids.c) against the catalog (systemd/snapset.catalog):
 * every id has exactly one entry with a subject, the catalog has no entry for an id snapsetd does
 * not send, and events get the id of their story. */

#include <check.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>

#include "macro.h"
#include "message-ids.h"
#include "set-events.h"

#define CATALOG "systemd/snapset.catalog"

START_TEST(test_every_message_id_has_one_catalog_entry_and_no_entry_is_stray) {
        size_t n;
        const MessageId *ids = message_ids(&n);
        unsigned found[64] = {}, entries = 0;
        char line[1024];
        bool subject = true;
        FILE *f = fopen(CATALOG, "re");

        ck_assert_msg(f, "cannot open %s (run from the top of the tree)", CATALOG);
        ck_assert_uint_le(n, ELEMENTSOF(found));
        while (fgets(line, sizeof line, f)) {
                size_t k;

                if (startswith(line, "Subject: "))
                        subject = true;
                if (!startswith(line, "-- "))
                        continue;
                ck_assert_msg(subject, "the entry before %s has no Subject:", line);
                subject = false;
                line[strcspn(line, "\n")] = 0;
                for (k = 0; k < n && !streq(ids[k].id, line + 3); k++)
                        ;
                ck_assert_msg(k < n, "%s: %s is not a MESSAGE_ID snapsetd sends", CATALOG, line + 3);
                found[k]++;
                entries++;
        }
        fclose(f);
        ck_assert(subject);
        for (size_t k = 0; k < n; k++) {
                ck_assert_uint_eq(strlen(ids[k].id), 32);
                ck_assert_msg(found[k] == 1, "%s (%s) has %u catalog entries", ids[k].name, ids[k].id, found[k]);
                for (size_t j = 0; j < k; j++)
                        ck_assert_str_ne(ids[j].id, ids[k].id);
        }
        ck_assert_uint_eq(entries, n);
}
END_TEST

static const char *id_named(const char *name) {
        size_t n;
        const MessageId *ids = message_ids(&n);

        for (size_t i = 0; i < n; i++)
                if (streq(ids[i].name, name))
                        return ids[i].id;
        return NULL;
}

START_TEST(test_events_get_the_id_of_their_story) {
        SetEvent e;

        /* An error by its code first, whoever emitted it. */
        set_event_init(&e, LOG_ERR, NULL, NULL, NULL, NULL, NULL);
        e.code = VSS_E_HOLD_WRITES_TIMEOUT;
        ck_assert_str_eq(message_id_of(&e), id_named("hold-timeout"));
        snprintf(e.type, sizeof e.type, "call-refused");
        e.priority = LOG_NOTICE;
        e.code = VSS_E_INSUFFICIENT_STORAGE;
        ck_assert_ptr_eq(message_id_of(&e), id_named("call-refused"));   /* a refusal is not a warning */
        e.priority = LOG_WARNING;
        ck_assert_str_eq(message_id_of(&e), id_named("insufficient-storage"));

        /* Then by type; then a failure without a story of its own. */
        set_event_init(&e, LOG_WARNING, NULL, NULL, NULL, NULL, NULL);
        snprintf(e.type, sizeof e.type, "snapshot-invalid");
        ck_assert_str_eq(message_id_of(&e), id_named("snapshot-invalid"));
        set_event_init(&e, LOG_ERR, NULL, NULL, NULL, NULL, NULL);
        e.code = VSS_E_UNEXPECTED;
        ck_assert_str_eq(message_id_of(&e), id_named("set-failed"));

        /* Plain information has none. */
        set_event_init(&e, LOG_INFO, NULL, NULL, NULL, NULL, NULL);
        ck_assert_ptr_null(message_id_of(&e));
}
END_TEST

Suite *suite_message_ids(void);
Suite *suite_message_ids(void) {
        Suite *s = suite_create("message-ids");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_every_message_id_has_one_catalog_entry_and_no_entry_is_stray);
        tcase_add_test(tc, test_events_get_the_id_of_their_story);
        suite_add_tcase(s, tc);
        return s;
}
