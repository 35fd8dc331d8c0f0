/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <time.h>

#include "providers/command.h"
#include "schedule/calendar.h"
#include "time-util.h"

#define CALENDAR_TIMEOUT_USEC (5 * USEC_PER_SEC)
#define CALENDAR_CACHE_SIZE 32

/* "    Next elapse: Wed 2026-12-02 10:00:00 UTC", "       Iter. #2: ..." (the tool runs in UTC). */
static int read_elapse(const char *out, const char *label, uint64_t *ret) {
        const char *p = strstr(out, label);
        struct tm tm = {};

        if (!p)
                return -EBADMSG;
        p += strlen(label);
        while (*p == ' ')
                p++;
        if (!strptime(p, "%a %Y-%m-%d %H:%M:%S", &tm))
                return -EBADMSG;
        *ret = (uint64_t) timegm(&tm) * USEC_PER_SEC;
        return 0;
}

static int analyze(const char *expr, uint64_t *ret, char **ret_error) {
        _cleanup_free_ char *tool = command_find_executable("systemd-analyze");
        _cleanup_(command_freep) Command *c = NULL;
        uint64_t first, second;
        int r;

        if (!tool)
                return asprintf(ret_error, "systemd-analyze is not installed") < 0 ? -ENOMEM : -ENOENT;
        r = command_new(tool, false, 4096, &c) ?:
            command_add(c, "calendar") ?:
            command_add(c, "--iterations=2") ?:
            command_add(c, "--") ?:
            command_add(c, expr);
        if (r < 0)
                return r;
        /* Periods are differences: UTC gives them without "(in UTC):" lines to tell apart. */
        c->envp = calloc(4, sizeof(char *));
        if (!c->envp || !(c->envp[0] = strdup("TZ=UTC")) || !(c->envp[1] = strdup("LC_ALL=C")))
                return -ENOMEM;
        r = command_run(c, CALENDAR_TIMEOUT_USEC);
        if (r < 0)
                return asprintf(ret_error, "systemd-analyze calendar could not run: %s", strerror(-r)) < 0 ? -ENOMEM : r;
        if (c->exit_status != 0) {
                size_t l = strcspn(c->err, "\n");
                return asprintf(ret_error, "%.*s", (int) l, c->err) < 0 ? -ENOMEM : -EINVAL;
        }
        r = read_elapse(c->out, "Next elapse:", &first);
        if (r == 0)
                r = read_elapse(c->out, "Iter. #2:", &second);
        if (r < 0 || second <= first)
                /* An event that happens once ("2027-01-01") has no period. */
                return asprintf(ret_error, "'%s' does not repeat", expr) < 0 ? -ENOMEM : -EDOM;
        *ret = second - first;
        return 0;
}

typedef struct CacheEntry {
        char *expr;
        uint64_t period;
        char *error;
        int code;
        uint64_t asked_usec;     /* monotonic */
} CacheEntry;

/* A period, a bad expression and one that does not repeat are answers for good; anything else
 * (systemd-analyze missing, timed out, killed) is asked again after a minute. */
#define CALENDAR_RETRY_USEC (60 * USEC_PER_SEC)

static bool stale(const CacheEntry *e) {
        return e->code != 0 && e->code != -EINVAL && e->code != -EDOM &&
               now_monotonic_usec() - e->asked_usec >= CALENDAR_RETRY_USEC;
}

static CacheEntry cache[CALENDAR_CACHE_SIZE];
static size_t cache_next;

int calendar_period_usec(const char *expr, uint64_t *ret, const char **ret_error) {
        CacheEntry *e = NULL;

        for (size_t i = 0; i < CALENDAR_CACHE_SIZE; i++)
                if (cache[i].expr && streq(cache[i].expr, expr))
                        e = &cache[i];
        if (e && stale(e)) {
                free(e->error);
                e->error = NULL;
                e->code = analyze(expr, &e->period, &e->error);
                e->asked_usec = now_monotonic_usec();
        }
        if (!e) {
                e = &cache[cache_next];
                cache_next = (cache_next + 1) % CALENDAR_CACHE_SIZE;
                free(e->expr);
                free(e->error);
                *e = (CacheEntry) { .expr = strdup(expr) };
                if (!e->expr)
                        return -ENOMEM;
                e->code = analyze(expr, &e->period, &e->error);
                e->asked_usec = now_monotonic_usec();
                if (e->code == -ENOMEM) {
                        free(e->expr);
                        *e = (CacheEntry) {};
                        return -ENOMEM;
                }
        }
        *ret = e->period;
        if (ret_error)
                *ret_error = e->error;
        return e->code;
}

void calendar_cache_clear(void) {
        for (size_t i = 0; i < CALENDAR_CACHE_SIZE; i++) {
                free(cache[i].expr);
                free(cache[i].error);
                cache[i] = (CacheEntry) {};
        }
}
