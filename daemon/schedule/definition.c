/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <dirent.h>
#include <inttypes.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>

#include "blockdev.h"
#include "config.h"
#include "ini.h"
#include "schedule/definition.h"

SetDefinition *definition_free(SetDefinition *d) {
        if (!d)
                return NULL;
        free(d->name);
        free(d->path);
        free(d->error);
        free(d->description);
        free(d->on_calendar);
        for (size_t i = 0; i < d->n_volumes; i++) {
                free(d->volumes[i].path);
                free(d->volumes[i].provider);
        }
        free(d->volumes);
        strv_free(d->hooks);
        free(d);
        return NULL;
}

bool definition_name_is_valid(const char *name) {
        size_t l = strlen(name);

        if (l == 0 || l > DEFINITION_NAME_MAX || name[0] == '.' || name[0] == '-')
                return false;
        for (const char *p = name; *p; p++)
                if (!isalnum((unsigned char) *p) && !strchr("_-.", *p))
                        return false;
        return true;
}

bool retention_is_set(const Retention *r) {
        return r->keep_last || r->keep_hourly || r->keep_daily || r->keep_weekly || r->keep_monthly ||
               r->keep_yearly;
}

int definition_parse_timespan(const char *s, uint64_t *ret_usec) {
        static const struct {
                const char *unit;
                uint64_t usec;
        } units[] = {
                { "",    USEC_PER_SEC },      { "s",    USEC_PER_SEC },      { "sec",   USEC_PER_SEC },
                { "m",   60 * USEC_PER_SEC }, { "min",  60 * USEC_PER_SEC },
                { "h",   3600 * USEC_PER_SEC }, { "hr", 3600 * USEC_PER_SEC }, { "hour", 3600 * USEC_PER_SEC },
                { "d",   86400 * USEC_PER_SEC }, { "day", 86400 * USEC_PER_SEC }, { "days", 86400 * USEC_PER_SEC },
                { "w",   7 * 86400 * USEC_PER_SEC }, { "week", 7 * 86400 * USEC_PER_SEC },
                { "weeks", 7 * 86400 * USEC_PER_SEC },
        };
        char *end;
        unsigned long long v;

        if (!isdigit((unsigned char) s[0]))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0)
                return -EINVAL;
        while (*end == ' ')
                end++;
        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (streq(end, units[i].unit)) {
                        if (v > UINT64_MAX / units[i].usec)
                                return -ERANGE;
                        *ret_usec = v * units[i].usec;
                        return 0;
                }
        return -EINVAL;
}

/* ---------------------------------------------------------------- one file */

static int parse_bool(const char *v, bool *ret) {
        if (streq(v, "yes") || streq(v, "true") || streq(v, "on") || streq(v, "1"))
                *ret = true;
        else if (streq(v, "no") || streq(v, "false") || streq(v, "off") || streq(v, "0"))
                *ret = false;
        else
                return -EINVAL;
        return 0;
}

static int parse_count(const char *v, unsigned *ret) {
        char *end;
        unsigned long n;

        if (!isdigit((unsigned char) v[0]))
                return -EINVAL;
        errno = 0;
        n = strtoul(v, &end, 10);
        if (errno != 0 || *end != 0 || n > 100000)
                return -EINVAL;
        *ret = (unsigned) n;
        return 0;
}

static int parse_ratio(const char *v, double *ret) {
        char *end;
        double d;

        errno = 0;
        d = strtod(v, &end);
        if (errno != 0 || *end != 0 || !isfinite(d) || d < 1.0 || d > 1000.0)
                return -EINVAL;
        *ret = d;
        return 0;
}

static int set_string(char **field, const char *value) {
        char *copy = strdup(value);

        if (!copy)
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

static int parse_set_key(SetDefinition *d, const char *key, const char *value, char **err) {
        if (streq(key, "OnCalendar")) {
                if (!value[0] || strchr(value, '\n'))
                        return ini_error(err, "OnCalendar=%s: give a calendar event, e.g. hourly or *-*-* 02:00", value);
                return set_string(&d->on_calendar, value);
        }
        if (streq(key, "Description"))
                return set_string(&d->description, value);
        if (streq(key, "Context")) {
                if (!streq(value, "persistent"))
                        return ini_error(err, "Context=%s: a defined set is kept until retention deletes it, so "
                                         "its context can only be 'persistent'", value);
                return 0;
        }
        return ini_error(err, "%s=%s: unknown key in section [Set] (known: OnCalendar=, Context=, Description=)",
                         key, value);
}

static int parse_volume_key(SetDefinition *d, const char *key, const char *value, char **err) {
        DefinedVolume *v = &d->volumes[d->n_volumes - 1];

        if (streq(key, "Path")) {
                if (value[0] != '/' || strlen(value) >= PATH_MAX)
                        return ini_error(err, "Path=%s: not an absolute path (a block device or a mountpoint)", value);
                return set_string(&v->path, value);
        }
        if (streq(key, "Provider")) {
                if (!value[0] || strlen(value) > 63)
                        return ini_error(err, "Provider=%s: not a provider name (snapsetctl providers lists them)", value);
                return set_string(&v->provider, value);
        }
        if (streq(key, "CowSize")) {
                if (config_parse_size(value, &v->cow_size) < 0 || v->cow_size < 1024U * 1024U)
                        return ini_error(err, "CowSize=%s: not a size of at least 1M (bytes, or with a K, M, G or T suffix)",
                                         value);
                return 0;
        }
        return ini_error(err, "%s=%s: unknown key in section [Volume] (known: Path=, Provider=, CowSize=)", key, value);
}

static int parse_retention_key(SetDefinition *d, const char *key, const char *value, char **err) {
        static const struct {
                const char *key;
                size_t offset;
        } keeps[] = {
                { "KeepLast",    offsetof(Retention, keep_last) },
                { "KeepHourly",  offsetof(Retention, keep_hourly) },
                { "KeepDaily",   offsetof(Retention, keep_daily) },
                { "KeepWeekly",  offsetof(Retention, keep_weekly) },
                { "KeepMonthly", offsetof(Retention, keep_monthly) },
                { "KeepYearly",  offsetof(Retention, keep_yearly) },
        };

        for (size_t i = 0; i < ELEMENTSOF(keeps); i++)
                if (streq(key, keeps[i].key)) {
                        if (parse_count(value, (unsigned *) ((uint8_t *) &d->retention + keeps[i].offset)) < 0)
                                return ini_error(err, "%s=%s: not a number of sets between 0 and 100000", key, value);
                        return 0;
                }
        if (streq(key, "MinAge")) {
                if (definition_parse_timespan(value, &d->retention.min_age_usec) < 0)
                        return ini_error(err, "MinAge=%s: not a time span (e.g. 90min, 12h, 2d, 1w)", value);
                return 0;
        }
        if (streq(key, "PruneOnLowSpace")) {
                if (parse_bool(value, &d->prune_on_low_space) < 0)
                        return ini_error(err, "PruneOnLowSpace=%s: not yes or no", value);
                return 0;
        }
        return ini_error(err, "%s=%s: unknown key in section [Retention] (known: KeepLast=, KeepHourly=, "
                         "KeepDaily=, KeepWeekly=, KeepMonthly=, KeepYearly=, MinAge=, PruneOnLowSpace=)", key, value);
}

static int parse_hooks_key(SetDefinition *d, const char *key, const char *value, char **err) {
        unsigned sec;

        if (streq(key, "Hook")) {
                if (value[0] != '/' || strlen(value) >= PATH_MAX)
                        return ini_error(err, "Hook=%s: not an absolute path to an executable", value);
                return blockdev_strv_push(&d->hooks, value);
        }
        if (streq(key, "HookTimeoutSec")) {
                if (parse_count(value, &sec) < 0 || sec < 1 || sec > 600)
                        return ini_error(err, "HookTimeoutSec=%s: not a number of seconds between 1 and 600", value);
                d->hook_timeout_usec = sec * USEC_PER_SEC;
                return 0;
        }
        if (streq(key, "HookFailure")) {
                if (streq(value, "warn"))
                        d->hook_failure = HOOK_FAILURE_WARN;
                else if (streq(value, "veto"))
                        d->hook_failure = HOOK_FAILURE_VETO;
                else
                        return ini_error(err, "HookFailure=%s: not 'warn' (take the set anyway) or 'veto' (do not)", value);
                return 0;
        }
        if (streq(key, "GlobalHooks")) {
                if (parse_bool(value, &d->global_hooks) < 0)
                        return ini_error(err, "GlobalHooks=%s: not yes or no", value);
                return 0;
        }
        return ini_error(err, "%s=%s: unknown key in section [Hooks] (known: Hook=, HookTimeoutSec=, HookFailure=, "
                         "GlobalHooks=)", key, value);
}

static int parse_health_key(SetDefinition *d, const char *key, const char *value, char **err) {
        if (streq(key, "WarnUsedPercent")) {
                if (parse_count(value, &d->warn_used_percent) < 0 || d->warn_used_percent < 1 || d->warn_used_percent > 100)
                        return ini_error(err, "WarnUsedPercent=%s: not a percentage between 1 and 100", value);
                return 0;
        }
        if (streq(key, "WarnAfterPeriods") || streq(key, "CriticalAfterPeriods")) {
                if (parse_ratio(value, streq(key, "WarnAfterPeriods") ? &d->warn_after_periods : &d->critical_after_periods) < 0)
                        return ini_error(err, "%s=%s: not a number of schedule periods between 1 and 1000 (e.g. 1.5)",
                                         key, value);
                return 0;
        }
        return ini_error(err, "%s=%s: unknown key in section [Health] (known: WarnUsedPercent=, WarnAfterPeriods=, "
                         "CriticalAfterPeriods=)", key, value);
}

static int start_section(SetDefinition *d, const char *section, char **err) {
        static const char *const known[] = { "Set", "Retention", "Hooks", "Health" };
        DefinedVolume *v;

        if (streq(section, "Volume")) {
                /* One section per volume, as systemd's .network files have one [Address] each. */
                v = reallocarray(d->volumes, d->n_volumes + 1, sizeof *v);
                if (!v)
                        return -ENOMEM;
                d->volumes = v;
                d->volumes[d->n_volumes++] = (DefinedVolume) {};
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(known); i++)
                if (streq(section, known[i]))
                        return 0;
        return ini_error(err, "unknown section [%s] (known: [Set], [Volume], [Retention], [Hooks], [Health])", section);
}

static int definition_parse_line(const char *section, const char *key, const char *value, unsigned line,
                                 void *userdata, char **err) {
        SetDefinition *d = userdata;

        if (!key)
                return start_section(d, section, err);
        if (streq(section, "Set"))
                return parse_set_key(d, key, value, err);
        if (streq(section, "Volume"))
                return parse_volume_key(d, key, value, err);
        if (streq(section, "Retention"))
                return parse_retention_key(d, key, value, err);
        if (streq(section, "Hooks"))
                return parse_hooks_key(d, key, value, err);
        return parse_health_key(d, key, value, err);
}

/* What only the whole file can tell: every volume has a path, there is one, the thresholds are
 * in order. */
static int definition_check(const SetDefinition *d, char **err) {
        if (d->n_volumes == 0)
                return ini_error(err, "%s: no [Volume] section: name at least one volume (Path=)", d->path);
        for (size_t i = 0; i < d->n_volumes; i++) {
                if (!d->volumes[i].path)
                        return ini_error(err, "%s: [Volume] section %zu has no Path=", d->path, i + 1);
                for (size_t j = 0; j < i; j++)
                        if (streq(d->volumes[i].path, d->volumes[j].path))
                                return ini_error(err, "%s: Path=%s: the volume is named twice", d->path,
                                                 d->volumes[i].path);
        }
        if (d->critical_after_periods < d->warn_after_periods)
                return ini_error(err, "%s: CriticalAfterPeriods=%g is below WarnAfterPeriods=%g", d->path,
                                 d->critical_after_periods, d->warn_after_periods);
        return 0;
}

static void definition_defaults(SetDefinition *d) {
        d->global_hooks = true;
        d->hook_timeout_usec = DEFINITION_DEFAULT_HOOK_TIMEOUT_SEC * USEC_PER_SEC;
        d->hook_failure = HOOK_FAILURE_WARN;
        d->warn_used_percent = DEFINITION_DEFAULT_WARN_USED_PERCENT;
        d->warn_after_periods = 1.5;
        d->critical_after_periods = 3.0;
}

/* The definition reduced to its name, path and error. */
static int definition_new_broken(const char *name, const char *path, char *error, SetDefinition **ret) {
        SetDefinition *d = calloc(1, sizeof *d);

        if (!d || !(d->name = strdup(name)) || !(d->path = strdup(path))) {
                definition_free(d);
                free(error);
                return -ENOMEM;
        }
        d->error = error;
        *ret = d;
        return 0;
}

static char *name_of(const char *path) {
        const char *base = strrchr(path, '/') ? strrchr(path, '/') + 1 : path;
        size_t l = strlen(base);

        if (l > 5 && streq(base + l - 5, ".conf"))
                l -= 5;
        return strndup(base, l);
}

int definition_load(const char *path, SetDefinition **ret) {
        _cleanup_(definition_freep) SetDefinition *d = calloc(1, sizeof *d);
        _cleanup_free_ char *name = name_of(path), *err = NULL;
        FILE *f;
        int r;

        if (!d || !name)
                return -ENOMEM;
        if (!definition_name_is_valid(name) &&
            asprintf(&err, "%s: '%s' is not a valid set name (letters, digits, '_', '-' and '.', at most %d)",
                     path, name, DEFINITION_NAME_MAX) < 0)
                return -ENOMEM;
        if (err)
                return definition_new_broken(name, path, TAKE_PTR(err), ret);

        d->name = TAKE_PTR(name);
        if (!(d->path = strdup(path)))
                return -ENOMEM;
        definition_defaults(d);

        f = fopen(path, "re");
        if (!f) {
                if (asprintf(&err, "%s: cannot read the set definition: %s", path, strerror(errno)) < 0)
                        return -ENOMEM;
                return definition_new_broken(d->name, path, TAKE_PTR(err), ret);
        }
        r = ini_parse(f, path, definition_parse_line, d, &err);
        fclose(f);
        if (r == 0)
                r = definition_check(d, &err);
        if (r == -ENOMEM)
                return r;
        if (r < 0) {
                if (!err && asprintf(&err, "%s: %s", path, strerror(-r)) < 0)
                        return -ENOMEM;
                return definition_new_broken(d->name, path, TAKE_PTR(err), ret);
        }
        *ret = TAKE_PTR(d);
        return 0;
}

/* ---------------------------------------------------------------- the directory */

static int conf_filter(const struct dirent *e) {
        size_t l = strlen(e->d_name);

        return e->d_name[0] != '.' && l > 5 && streq(e->d_name + l - 5, ".conf");
}

int definitions_load(const char *dir, DefinitionList *ret) {
        DefinitionList l = {};
        struct dirent **entries = NULL;
        int n, r = 0;

        n = scandir(dir, &entries, conf_filter, alphasort);
        if (n < 0) {
                *ret = l;
                return errno == ENOENT ? 0 : -errno;
        }
        l.items = calloc((size_t) n + 1, sizeof *l.items);
        for (int i = 0; i < n; i++) {
                _cleanup_free_ char *path = NULL;

                if (r == 0 && !l.items)
                        r = -ENOMEM;
                if (r == 0 && asprintf(&path, "%s/%s", dir, entries[i]->d_name) < 0)
                        r = -ENOMEM;
                if (r == 0 && (r = definition_load(path, &l.items[l.n])) == 0)
                        l.n++;
                free(entries[i]);
        }
        free(entries);
        if (r < 0) {
                definitions_done(&l);
                return r;
        }
        *ret = l;
        return 0;
}

void definitions_done(DefinitionList *l) {
        for (size_t i = 0; i < l->n; i++)
                definition_free(l->items[i]);
        free(l->items);
        *l = (DefinitionList) {};
}

SetDefinition *definitions_find(const DefinitionList *l, const char *name) {
        for (size_t i = 0; i < l->n; i++)
                if (streq(l->items[i]->name, name))
                        return l->items[i];
        return NULL;
}
