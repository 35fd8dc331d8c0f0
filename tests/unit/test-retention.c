/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Retention on fabricated histories: exactly the sets the rule (schedule/retention.h) keeps, with
 * their reasons; the period arithmetic: ISO weeks, month ends, DST changes in a non-UTC zone,
 * and MinAge. */

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "schedule/retention.h"

static void use_zone(const char *tz) {
        setenv("TZ", tz, 1);
        tzset();
}

/* "YYYY-MM-DD HH:MM" in UTC, as microseconds since the epoch. */
static uint64_t utc(const char *s) {
        struct tm tm = {};

        ck_assert_ptr_nonnull(strptime(s, "%Y-%m-%d %H:%M", &tm));
        return (uint64_t) timegm(&tm) * USEC_PER_SEC;
}

static const char *key(const char *class, const char *when) {
        static char buf[32];

        ck_assert_int_eq(retention_period_key(class, utc(when), buf, sizeof buf), 0);
        return buf;
}

/* Items named by their creation times, applied with policy at now. */
typedef struct History {
        RetentionItem items[64];
        size_t n;
} History;

static void history_add(History *h, const char *when) {
        ck_assert_uint_lt(h->n, ELEMENTSOF(h->items));
        h->items[h->n++] = (RetentionItem) { .id = when, .created_usec = utc(when) };
}

static const RetentionItem *item(const History *h, const char *when) {
        for (size_t i = 0; i < h->n; i++)
                if (streq(h->items[i].id, when))
                        return &h->items[i];
        ck_abort_msg("no item %s", when);
        return NULL;
}

static void assert_decision(const History *h, const char *when, bool keep, const char *reason) {
        const RetentionItem *it = item(h, when);

        ck_assert_msg(it->keep == keep, "%s: keep=%d, expected %d (%s)", when, it->keep, keep, it->reason);
        ck_assert_str_eq(it->reason, reason);
}

START_TEST(test_period_keys_iso_weeks_and_month_ends) {
        use_zone("UTC");
        /* 2021-01-03 is a Sunday: the last day of ISO week 53 of 2020. */
        ck_assert_str_eq(key("weekly", "2021-01-03 12:00"), "2020-W53");
        ck_assert_str_eq(key("weekly", "2021-01-04 00:00"), "2021-W01");
        /* 2024-12-30 is a Monday in ISO week 1 of 2025. */
        ck_assert_str_eq(key("weekly", "2024-12-30 08:00"), "2025-W01");
        ck_assert_str_eq(key("yearly", "2024-12-30 08:00"), "2024");
        ck_assert_str_eq(key("monthly", "2024-02-29 23:59"), "2024-02");
        ck_assert_str_eq(key("monthly", "2024-03-01 00:00"), "2024-03");
        ck_assert_str_eq(key("daily", "2026-01-31 23:30"), "2026-01-31");
        ck_assert_str_eq(key("hourly", "2026-12-01 10:59"), "2026-12-01 10h");
        ck_assert_int_eq(retention_period_key("fortnightly", 0, (char[32]) {}, 32), -EINVAL);
}
END_TEST

START_TEST(test_period_keys_follow_local_time_across_dst) {
        use_zone("Europe/Berlin");
        /* 2026-10-25: clocks go back at 03:00 CEST (01:00 UTC) to 02:00 CET; 02:30 happens twice,
         * and both are one hourly period. */
        ck_assert_str_eq(key("hourly", "2026-10-25 00:30"), "2026-10-25 02h");
        ck_assert_str_eq(key("hourly", "2026-10-25 01:30"), "2026-10-25 02h");
        ck_assert_str_eq(key("hourly", "2026-10-25 02:30"), "2026-10-25 03h");
        /* 2026-03-29: clocks go forward at 02:00 CET (01:00 UTC); 02h is skipped. */
        ck_assert_str_eq(key("hourly", "2026-03-29 00:30"), "2026-03-29 01h");
        ck_assert_str_eq(key("hourly", "2026-03-29 01:30"), "2026-03-29 03h");
        /* A local day, not a UTC one: 23:30 UTC on the 28th is the 29th in Berlin. */
        ck_assert_str_eq(key("daily", "2026-03-28 23:30"), "2026-03-29");
        use_zone("UTC");
}
END_TEST

START_TEST(test_repeated_dst_hour_keeps_its_latest_set_only) {
        Retention p = { .keep_hourly = 2 };
        History h = {};

        use_zone("Europe/Berlin");
        history_add(&h, "2026-10-25 00:30");   /* 02:30 CEST */
        history_add(&h, "2026-10-25 01:30");   /* 02:30 CET, the same wall-clock hour */
        history_add(&h, "2026-10-25 02:30");   /* 03:30 CET */
        ck_assert_int_eq(retention_apply(&p, utc("2026-10-25 03:00"), h.items, h.n), 0);
        assert_decision(&h, "2026-10-25 02:30", true, "hourly 2026-10-25 03h (1/2)");
        assert_decision(&h, "2026-10-25 01:30", true, "hourly 2026-10-25 02h (2/2)");
        assert_decision(&h, "2026-10-25 00:30", false, "not the latest of hourly 2026-10-25 02h");
        use_zone("UTC");
}
END_TEST

START_TEST(test_keep_last_then_each_class_skips_periods_already_kept) {
        Retention p = { .keep_last = 2, .keep_hourly = 2, .keep_daily = 3 };
        History h = {};

        use_zone("UTC");
        /* Out of order on purpose: the rule sorts. */
        history_add(&h, "2026-11-28 09:00");
        history_add(&h, "2026-11-30 10:00");
        history_add(&h, "2026-11-30 10:30");
        history_add(&h, "2026-11-30 11:00");
        history_add(&h, "2026-11-30 12:00");
        history_add(&h, "2026-11-30 12:30");
        history_add(&h, "2026-11-29 23:00");
        history_add(&h, "2026-11-29 08:00");
        history_add(&h, "2026-11-27 10:00");
        ck_assert_int_eq(retention_apply(&p, utc("2026-11-30 13:00"), h.items, h.n), 0);

        assert_decision(&h, "2026-11-30 12:30", true, "keep-last (1/2)");
        assert_decision(&h, "2026-11-30 12:00", true, "keep-last (2/2)");
        /* Hour 12 is taken by keep-last: hourly starts at 11 and keeps 11 and 10:30. */
        assert_decision(&h, "2026-11-30 11:00", true, "hourly 2026-11-30 11h (1/2)");
        assert_decision(&h, "2026-11-30 10:30", true, "hourly 2026-11-30 10h (2/2)");
        assert_decision(&h, "2026-11-30 10:00", false, "not the latest of hourly 2026-11-30 10h");
        /* The 30th is taken: daily keeps the latest of the 29th, 28th, 27th. */
        assert_decision(&h, "2026-11-29 23:00", true, "daily 2026-11-29 (1/3)");
        assert_decision(&h, "2026-11-29 08:00", false, "not the latest of daily 2026-11-29");
        assert_decision(&h, "2026-11-28 09:00", true, "daily 2026-11-28 (2/3)");
        assert_decision(&h, "2026-11-27 10:00", true, "daily 2026-11-27 (3/3)");
}
END_TEST

START_TEST(test_weekly_monthly_yearly_keep_the_latest_of_each_period) {
        Retention p = { .keep_weekly = 2, .keep_monthly = 2, .keep_yearly = 5 };
        History h = {};

        use_zone("UTC");
        history_add(&h, "2026-11-30 01:00");   /* Monday, W49 */
        history_add(&h, "2026-11-29 01:00");   /* Sunday, W48 */
        history_add(&h, "2026-11-23 01:00");   /* Monday, W48 */
        history_add(&h, "2026-11-16 01:00");   /* W47 */
        history_add(&h, "2026-10-31 01:00");
        history_add(&h, "2026-10-01 01:00");
        history_add(&h, "2026-09-30 01:00");
        history_add(&h, "2025-12-31 01:00");
        ck_assert_int_eq(retention_apply(&p, utc("2026-12-01 00:00"), h.items, h.n), 0);
        assert_decision(&h, "2026-11-30 01:00", true, "weekly 2026-W49 (1/2)");
        assert_decision(&h, "2026-11-29 01:00", true, "weekly 2026-W48 (2/2)");
        assert_decision(&h, "2026-11-23 01:00", false, "not the latest of weekly 2026-W48");
        /* November is taken by the weekly sets; monthly keeps October and September. */
        assert_decision(&h, "2026-11-16 01:00", false, "not kept by any rule");
        assert_decision(&h, "2026-10-31 01:00", true, "monthly 2026-10 (1/2)");
        assert_decision(&h, "2026-10-01 01:00", false, "not the latest of monthly 2026-10");
        assert_decision(&h, "2026-09-30 01:00", true, "monthly 2026-09 (2/2)");
        /* 2026 is taken; yearly keeps 2025's latest. */
        assert_decision(&h, "2025-12-31 01:00", true, "yearly 2025 (1/5)");
}
END_TEST

START_TEST(test_min_age_protects_young_sets_without_using_a_rule) {
        Retention p = { .keep_last = 1, .min_age_usec = 3600 * USEC_PER_SEC };
        History h = {};

        use_zone("UTC");
        history_add(&h, "2026-12-01 11:50");
        history_add(&h, "2026-12-01 11:10");
        history_add(&h, "2026-12-01 10:00");
        history_add(&h, "2026-12-01 09:00");
        ck_assert_int_eq(retention_apply(&p, utc("2026-12-01 12:00"), h.items, h.n), 0);
        assert_decision(&h, "2026-12-01 11:50", true, "younger than MinAge (10 min old)");
        assert_decision(&h, "2026-12-01 11:10", true, "younger than MinAge (50 min old)");
        /* keep-last counts the sets old enough to be pruned. */
        assert_decision(&h, "2026-12-01 10:00", true, "keep-last (1/1)");
        assert_decision(&h, "2026-12-01 09:00", false, "not kept by any rule");
}
END_TEST

START_TEST(test_no_rule_keeps_everything_and_empty_history_is_fine) {
        Retention none = { .min_age_usec = 60 * USEC_PER_SEC };
        Retention some = { .keep_daily = 1 };
        History h = {};

        use_zone("UTC");
        ck_assert_int_eq(retention_apply(&some, utc("2026-12-01 12:00"), h.items, 0), 0);
        history_add(&h, "2020-01-01 00:00");
        ck_assert_int_eq(retention_apply(&none, utc("2026-12-01 12:00"), h.items, h.n), 0);
        assert_decision(&h, "2020-01-01 00:00", true, "no Keep*= rule: every set is kept");
}
END_TEST

START_TEST(test_low_space_picks_what_goes_anyway_then_the_oldest_never_the_newest_nor_young) {
        Retention p = { .keep_daily = 3, .min_age_usec = 3600 * USEC_PER_SEC };
        uint64_t now = utc("2026-12-03 12:00");
        History h = {};

        use_zone("UTC");
        history_add(&h, "2026-12-03 11:30");   /* the newest, and young */
        history_add(&h, "2026-12-03 09:00");   /* daily (1/3) */
        history_add(&h, "2026-12-02 10:00");   /* daily (2/3) */
        history_add(&h, "2026-12-02 08:00");   /* not the latest of its day: deleted anyway */
        history_add(&h, "2026-12-01 10:00");   /* daily (3/3), the oldest */
        ck_assert_int_eq(retention_apply(&p, now, h.items, h.n), 0);
        ck_assert_int_eq(retention_pick_for_space(&p, now, h.items, h.n), 3);
        h.n--;  /* gone: the oldest kept one is next, not a younger kept one */
        memmove(&h.items[3], &h.items[4], sizeof h.items[0]);
        ck_assert_int_eq(retention_apply(&p, now, h.items, h.n), 0);
        ck_assert_int_eq(retention_pick_for_space(&p, now, h.items, h.n), 3);

        /* One passed over (it holds nothing of the volume short of space): the next oldest goes. */
        h.items[3].not_for_space = true;
        ck_assert_int_eq(retention_pick_for_space(&p, now, h.items, h.n), 2);

        /* Only the newest and young sets: nothing may go. */
        History young = {};
        history_add(&young, "2026-12-03 11:30");
        history_add(&young, "2026-12-03 11:40");
        ck_assert_int_eq(retention_apply(&p, now, young.items, young.n), 0);
        ck_assert_int_eq(retention_pick_for_space(&p, now, young.items, young.n), -1);
        History one = {};
        history_add(&one, "2026-11-01 00:00");
        ck_assert_int_eq(retention_apply(&p, now, one.items, one.n), 0);
        ck_assert_int_eq(retention_pick_for_space(&p, now, one.items, one.n), -1);
}
END_TEST

START_TEST(test_equal_times_are_ordered_by_id) {
        Retention p = { .keep_last = 1 };
        RetentionItem items[2] = {
                { .id = "b", .created_usec = 1000 * USEC_PER_SEC },
                { .id = "a", .created_usec = 1000 * USEC_PER_SEC },
        };

        ck_assert_int_eq(retention_apply(&p, 2000 * USEC_PER_SEC, items, 2), 0);
        ck_assert(items[1].keep);
        ck_assert(!items[0].keep);
}
END_TEST

Suite *suite_retention(void);
Suite *suite_retention(void) {
        Suite *s = suite_create("retention");
        TCase *tc = tcase_create("core");

        tcase_add_test(tc, test_period_keys_iso_weeks_and_month_ends);
        tcase_add_test(tc, test_period_keys_follow_local_time_across_dst);
        tcase_add_test(tc, test_repeated_dst_hour_keeps_its_latest_set_only);
        tcase_add_test(tc, test_keep_last_then_each_class_skips_periods_already_kept);
        tcase_add_test(tc, test_weekly_monthly_yearly_keep_the_latest_of_each_period);
        tcase_add_test(tc, test_min_age_protects_young_sets_without_using_a_rule);
        tcase_add_test(tc, test_no_rule_keeps_everything_and_empty_history_is_fine);
        tcase_add_test(tc, test_equal_times_are_ordered_by_id);
        tcase_add_test(tc, test_low_space_picks_what_goes_anyway_then_the_oldest_never_the_newest_nor_young);
        suite_add_tcase(s, tc);
        return s;
}
