/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <inttypes.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "config.h"
#include "ini.h"
#include "log.h"
#include "macro.h"

/* A key's parser stores the value into the Config field at offset, or returns -EINVAL and sets
 * *reason to what was wrong with it (a static string, or one formatted into reason_buf). */
typedef struct ConfigKey ConfigKey;
typedef int (*ConfigParser)(const ConfigKey *k, const char *value, Config *c,
                            char *reason_buf, size_t reason_size);

struct ConfigKey {
        const char *section;
        const char *name;
        ConfigParser parse;
        size_t offset;
        uint64_t min, max;
};

static int parse_uint(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n);
static int parse_size_field(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n);
static int parse_group(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n);
static int parse_log_level(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n);
static int parse_path(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n);
static int parse_cow_size(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n);
static int parse_paths(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n);
static int parse_lvm_thin(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n);

#define F(field) offsetof(Config, field)

static const ConfigKey config_keys[] = {
        { "Daemon",  "ReadGroup",             parse_group,      F(read_group),      0, 0 },
        { "Daemon",  "LogLevel",              parse_log_level,  F(log_level),       0, 0 },
        { "Daemon",  "StateDirectory",        parse_path,       F(state_directory), 0, 0 },
        { "Daemon",  "ProviderDirectory",     parse_paths,      F(provider_directories), 0, 0 },
        { "Daemon",  "SetDefinitionDirectory", parse_path,      F(definition_directory), 0, 0 },
        { "Daemon",  "HookDirectory",         parse_path,       F(hook_directory),  0, 0 },

        { "Limits",  "MaxVolumesPerSet",      parse_uint,       F(max_volumes_per_set),      1, CONFIG_MAX_VOLUMES_PER_SET_MAX },
        { "Limits",  "MaxSnapshotsPerVolume", parse_uint,       F(max_snapshots_per_volume), 1, CONFIG_MAX_SNAPSHOTS_PER_VOLUME_MAX },
        { "Limits",  "MaxConnections",        parse_uint,       F(max_connections),          1, CONFIG_MAX_CONNECTIONS_MAX },
        { "Limits",  "MaxConnectionsPerUser", parse_uint,       F(max_connections_per_user), 1, CONFIG_MAX_CONNECTIONS_MAX },
        { "Limits",  "MaxMessageBytes",       parse_size_field, F(max_message_bytes),        CONFIG_MIN_MESSAGE_BYTES, CONFIG_DEFAULT_MAX_MESSAGE_BYTES },
        { "Limits",  "IdleTimeoutSec",        parse_uint,       F(idle_timeout_sec),         0, CONFIG_TIMEOUT_SEC_MAX },
        { "Limits",  "SetIdleTimeoutSec",     parse_uint,       F(set_idle_timeout_sec),     0, CONFIG_TIMEOUT_SEC_MAX },
        { "Limits",  "FlushTimeoutSec",       parse_uint,       F(flush_timeout_sec),        1, CONFIG_TIMEOUT_SEC_MAX },
        { "Limits",  "HoldTimeoutSec",        parse_uint,       F(hold_timeout_sec),         1, CONFIG_HOLD_TIMEOUT_SEC_MAX },

        { "Storage", "CowDirectory",          parse_path,       F(cow_directory),   0, 0 },
        { "Storage", "DefaultCowSize",        parse_cow_size,   0,                  1024U * 1024U, UINT64_MAX },
        { "Storage", "ThinPoolMaxUsedPercent", parse_uint,      F(thin_pool_max_used_percent), 50, 100 },
        { "Storage", "LvmThinSnapshots",      parse_lvm_thin,   F(lvm_thin_classic), 0, 0 },
};

static const char *const config_sections[] = { "Daemon", "Limits", "Storage" };

#define FIELD(c, k, type) ((type *) ((uint8_t *) (c) + (k)->offset))

int config_init(Config *c) {
        *c = (Config) {
                .log_level = LOG_INFO,
                .max_volumes_per_set = CONFIG_DEFAULT_MAX_VOLUMES_PER_SET,
                .max_snapshots_per_volume = CONFIG_DEFAULT_MAX_SNAPSHOTS_PER_VOLUME,
                .max_connections = CONFIG_DEFAULT_MAX_CONNECTIONS,
                .max_connections_per_user = CONFIG_DEFAULT_MAX_CONNECTIONS_PER_USER,
                .max_message_bytes = CONFIG_DEFAULT_MAX_MESSAGE_BYTES,
                .idle_timeout_sec = CONFIG_DEFAULT_IDLE_TIMEOUT_SEC,
                .set_idle_timeout_sec = CONFIG_DEFAULT_SET_IDLE_TIMEOUT_SEC,
                .flush_timeout_sec = CONFIG_DEFAULT_FLUSH_TIMEOUT_SEC,
                .hold_timeout_sec = CONFIG_DEFAULT_HOLD_TIMEOUT_SEC,
                .default_cow_size_percent = CONFIG_DEFAULT_COW_SIZE_PERCENT,
                .thin_pool_max_used_percent = CONFIG_DEFAULT_THIN_POOL_MAX_USED_PERCENT,
        };
        c->state_directory = strdup(CONFIG_DEFAULT_STATE_DIRECTORY);
        c->cow_directory = strdup(CONFIG_DEFAULT_COW_DIRECTORY);
        c->provider_directories = strdup(CONFIG_DEFAULT_PROVIDER_DIRECTORIES);
        c->definition_directory = strdup(CONFIG_DEFAULT_DEFINITION_DIRECTORY);
        c->hook_directory = strdup(CONFIG_DEFAULT_HOOK_DIRECTORY);
        if (!c->state_directory || !c->cow_directory || !c->provider_directories || !c->definition_directory ||
            !c->hook_directory) {
                config_done(c);
                return -ENOMEM;
        }
        return 0;
}

void config_done(Config *c) {
        free(c->read_group);
        free(c->state_directory);
        free(c->cow_directory);
        free(c->provider_directories);
        free(c->definition_directory);
        free(c->hook_directory);
        *c = (Config) {};
}

/* Strict decimal: digits only, no sign, no blanks; -ERANGE past UINT64_MAX. *ret_end gets the
 * first character after the digits. */
static int parse_decimal(const char *s, uint64_t *ret, const char **ret_end) {
        uint64_t v = 0;
        const char *p = s;

        if (!isdigit((unsigned char) *p))
                return -EINVAL;
        for (; isdigit((unsigned char) *p); p++) {
                unsigned d = (unsigned) (*p - '0');
                if (v > (UINT64_MAX - d) / 10)
                        return -ERANGE;
                v = v * 10 + d;
        }
        *ret = v;
        *ret_end = p;
        return 0;
}

int config_parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char suffix;
                unsigned shift;
        } suffixes[] = { { 'K', 10 }, { 'M', 20 }, { 'G', 30 }, { 'T', 40 } };
        const char *end;
        uint64_t v;
        int r;

        r = parse_decimal(s, &v, &end);
        if (r < 0)
                return r;
        if (*end == 0) {
                *ret = v;
                return 0;
        }
        for (size_t i = 0; i < ELEMENTSOF(suffixes); i++) {
                if (toupper((unsigned char) *end) != suffixes[i].suffix)
                        continue;
                if (!(end[1] == 0 || streq(end + 1, "iB") || streq(end + 1, "B")))
                        return -EINVAL;
                if (v > (UINT64_MAX >> suffixes[i].shift))
                        return -ERANGE;
                *ret = v << suffixes[i].shift;
                return 0;
        }
        if (streq(end, "B")) {
                *ret = v;
                return 0;
        }
        return -EINVAL;
}

/* "16M" rather than "16777216" in messages, when the value is a whole number of a unit. */
static void format_size(uint64_t v, char *buf, size_t n) {
        static const char units[] = "KMGT";

        for (int i = 3; i >= 0; i--) {
                unsigned shift = 10U * (unsigned) (i + 1);
                if (v >= (UINT64_C(1) << shift) && v % (UINT64_C(1) << shift) == 0) {
                        snprintf(buf, n, "%" PRIu64 "%c", v >> shift, units[i]);
                        return;
                }
        }
        snprintf(buf, n, "%" PRIu64, v);
}

static int parse_uint(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n) {
        const char *end;
        uint64_t v;

        if (parse_decimal(value, &v, &end) < 0 || *end != 0 || v < k->min || v > k->max) {
                snprintf(reason, n, "not a number between %" PRIu64 " and %" PRIu64, k->min, k->max);
                return -EINVAL;
        }
        *FIELD(c, k, unsigned) = (unsigned) v;
        return 0;
}

static int parse_size_field(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n) {
        uint64_t v;

        if (config_parse_size(value, &v) < 0 || v < k->min || v > k->max) {
                char lo[32], hi[32];
                format_size(k->min, lo, sizeof lo);
                format_size(k->max, hi, sizeof hi);
                snprintf(reason, n, "not a size between %s and %s (bytes, or with a K, M or G suffix)", lo, hi);
                return -EINVAL;
        }
        *FIELD(c, k, uint64_t) = v;
        return 0;
}

static int parse_cow_size(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n) {
        size_t l = strlen(value);
        uint64_t v;

        if (l > 1 && value[l - 1] == '%') {
                _cleanup_free_ char *digits = strndup(value, l - 1);
                const char *end;

                if (!digits)
                        return -ENOMEM;
                if (parse_decimal(digits, &v, &end) < 0 || *end != 0 || v < 1 || v > 100) {
                        snprintf(reason, n, "not a percentage between 1%% and 100%%");
                        return -EINVAL;
                }
                c->default_cow_size_percent = (unsigned) v;
                c->default_cow_size_bytes = 0;
                return 0;
        }

        if (config_parse_size(value, &v) < 0 || v < k->min) {
                snprintf(reason, n, "not a percentage of the origin (1%%-100%%) or a size of at least 1M");
                return -EINVAL;
        }
        c->default_cow_size_bytes = v;
        c->default_cow_size_percent = 0;
        return 0;
}

/* The portable user and group name set (POSIX, plus what shadow's useradd accepts by default). */
static bool group_name_is_valid(const char *s) {
        size_t l = strlen(s);

        if (l == 0 || l > 32)
                return false;
        if (!(isalpha((unsigned char) s[0]) || s[0] == '_'))
                return false;
        for (size_t i = 1; i < l; i++)
                if (!(isalnum((unsigned char) s[i]) || strchr("_.-", s[i]) ||
                      (s[i] == '$' && i == l - 1)))
                        return false;
        return true;
}

static int parse_group(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n) {
        char *copy;

        if (!group_name_is_valid(value)) {
                snprintf(reason, n, "not a valid group name");
                return -EINVAL;
        }
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = copy;
        return 0;
}

static int parse_lvm_thin(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n) {
        if (!streq(value, "auto") && !streq(value, "classic")) {
                snprintf(reason, n, "neither auto nor classic");
                return -EINVAL;
        }
        *FIELD(c, k, bool) = streq(value, "classic");
        return 0;
}

static int parse_log_level(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n) {
        int level = log_level_from_string(value);

        if (level < 0) {
                snprintf(reason, n, "not a log level (emerg, alert, crit, err, warning, notice, info, debug or 0-7)");
                return -EINVAL;
        }
        *FIELD(c, k, int) = level;
        return 0;
}

static int parse_path(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n) {
        char *copy;

        if (value[0] != '/' || strlen(value) >= PATH_MAX) {
                snprintf(reason, n, "not an absolute path");
                return -EINVAL;
        }
        copy = strdup(value);
        if (!copy)
                return -ENOMEM;
        /* "/var/lib/snapset/" and "/var/lib/snapset" are the same directory; keep one form. */
        for (size_t l = strlen(copy); l > 1 && copy[l - 1] == '/'; l--)
                copy[l - 1] = 0;
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = copy;
        return 0;
}

/* A list of absolute paths separated by blanks, kept as written (blanks normalised). */
static int parse_paths(const ConfigKey *k, const char *value, Config *c, char *reason, size_t n) {
        _cleanup_free_ char *copy = strdup(value), *out = NULL;
        size_t used = 0;
        char *save = NULL;

        if (!copy || !(out = calloc(1, strlen(value) + 1)))
                return -ENOMEM;
        for (char *w = strtok_r(copy, " \t", &save); w; w = strtok_r(NULL, " \t", &save)) {
                if (w[0] != '/' || strlen(w) >= PATH_MAX) {
                        snprintf(reason, n, "'%s' is not an absolute path", w);
                        return -EINVAL;
                }
                used += (size_t) sprintf(out + used, "%s%s", used > 0 ? " " : "", w);
        }
        free(*FIELD(c, k, char *));
        *FIELD(c, k, char *) = TAKE_PTR(out);
        return 0;
}

/* An empty value ("Key=") resets the key to its default, as in systemd's unit files. */
static int config_reset_key(const ConfigKey *k, Config *c) {
        _cleanup_(config_done) Config defaults = {};
        int r;

        r = config_init(&defaults);
        if (r < 0)
                return r;

        if (k->parse == parse_cow_size) {
                c->default_cow_size_bytes = defaults.default_cow_size_bytes;
                c->default_cow_size_percent = defaults.default_cow_size_percent;
        } else if (k->parse == parse_group || k->parse == parse_path || k->parse == parse_paths) {
                free(*FIELD(c, k, char *));
                *FIELD(c, k, char *) = TAKE_PTR(*FIELD(&defaults, k, char *));
        } else if (k->parse == parse_size_field)
                *FIELD(c, k, uint64_t) = *FIELD(&defaults, k, uint64_t);
        else if (k->parse == parse_log_level)
                *FIELD(c, k, int) = *FIELD(&defaults, k, int);
        else
                *FIELD(c, k, unsigned) = *FIELD(&defaults, k, unsigned);
        return 0;
}

static int config_parse_line(const char *section, const char *key, const char *value, unsigned line,
                             void *userdata, char **reterr_message) {
        Config *c = userdata;
        const ConfigKey *k = NULL;
        char reason[256];
        int r;

        if (!key) {
                for (size_t i = 0; i < ELEMENTSOF(config_sections); i++)
                        if (streq(section, config_sections[i]))
                                return 0;
                return ini_error(reterr_message, "unknown section [%s] (known: [Daemon], [Limits], [Storage])",
                                 section);
        }

        for (size_t i = 0; i < ELEMENTSOF(config_keys); i++)
                if (streq(config_keys[i].section, section) && streq(config_keys[i].name, key))
                        k = &config_keys[i];
        if (!k)
                return ini_error(reterr_message, "%s=%s: unknown key in section [%s]", key, value, section);

        if (value[0] == 0)
                return config_reset_key(k, c);

        reason[0] = 0;
        r = k->parse(k, value, c, reason, sizeof reason);
        if (r == -EINVAL)
                return ini_error(reterr_message, "%s=%s: %s", key, value, reason);
        if (k->offset == F(flush_timeout_sec))
                c->flush_timeout_line = line;
        else if (k->offset == F(hold_timeout_sec))
                c->hold_timeout_line = line;
        return r;
}

uint64_t config_watchdog_usec(void) {
        uint64_t usec = 0;

        return sd_watchdog_enabled(false, &usec) > 0 ? usec : 0;
}

/* Limits checked against each other and against the watchdog. Until DoSnapshotSet runs beside
 * the event loop, the loop does not ping the watchdog during a set, and the freeze window alone
 * may last FlushTimeoutSec= + HoldTimeoutSec=; the loop pings at half the interval, so that must
 * stay below half of it, or a legal configuration gets snapsetd killed (SIGABRT) in the middle
 * of a set. */
static int config_check(const Config *c, const char *name, char **reterr_message) {
        uint64_t watchdog = config_watchdog_usec();
        unsigned window = c->flush_timeout_sec + c->hold_timeout_sec;
        unsigned line = c->flush_timeout_line > c->hold_timeout_line ? c->flush_timeout_line : c->hold_timeout_line;

        if (watchdog > 0 && (uint64_t) window * USEC_PER_SEC * 2 >= watchdog)
                return ini_error(reterr_message,
                                 "%s:%u: FlushTimeoutSec=%u + HoldTimeoutSec=%u = %u s: must stay below half of "
                                 "snapsetd.service's WatchdogSec= (%llu s), or the watchdog kills snapsetd in "
                                 "the middle of a set; lower them, or raise WatchdogSec= in a drop-in",
                                 name, line, c->flush_timeout_sec, c->hold_timeout_sec, window,
                                 (unsigned long long) (watchdog / USEC_PER_SEC));
        return 0;
}

int config_parse(FILE *f, const char *name, Config *ret, char **reterr_message) {
        _cleanup_(config_done) Config c = {};
        int r;

        r = config_init(&c);
        if (r < 0)
                return r;

        r = ini_parse(f, name, config_parse_line, &c, reterr_message);
        if (r < 0)
                return r;

        r = config_check(&c, name, reterr_message);
        if (r < 0)
                return r;

        if (c.max_connections_per_user > c.max_connections)
                /* Not an error: the total cap simply applies first. */
                c.max_connections_per_user = c.max_connections;

        *ret = c;
        c = (Config) {};
        return 0;
}

int config_load(const char *path, bool missing_ok, Config *ret, char **reterr_message) {
        _cleanup_(config_done) Config c = {};
        FILE *f;
        int r;

        f = fopen(path, "re");
        if (!f) {
                r = -errno;
                if (r == -ENOENT && missing_ok) {
                        r = config_init(&c);
                        if (r < 0)
                                return r;
                        *ret = c;
                        c = (Config) {};
                        return 0;
                }
                (void) ini_error(reterr_message, "%s: cannot read the configuration file: %s", path, strerror(-r));
                return r;
        }

        r = config_parse(f, path, &c, reterr_message);
        fclose(f);
        if (r < 0)
                return r;

        *ret = c;
        c = (Config) {};
        return 0;
}
