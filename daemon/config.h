/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* snapsetd.conf: a systemd-style INI file with the sections [Daemon], [Limits] and [Storage].
 * Every key is documented in snapsetd.conf(5); the defaults below are the ones an absent key or
 * an absent file gives. An unknown section or key is an error, never a silent default: a typo in
 * "MaxVolumesPerSet" must not leave the limit at its default without anyone noticing. */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#define CONFIG_DEFAULT_PATH SNAPSET_SYSCONFDIR "/snapset/snapsetd.conf"
#define CONFIG_DEFAULT_STATE_DIRECTORY SNAPSET_LOCALSTATEDIR "/lib/snapset"
#define CONFIG_DEFAULT_COW_DIRECTORY SNAPSET_LOCALSTATEDIR "/lib/snapset/cow"
/* Where external provider files (NAME.provider) are looked for, earliest first: the
 * administrator's directory overrides the vendors' (snapset-provider(7)). */
/* Set definitions (snapset-sets(5)) and the hooks every defined set runs. */
#define CONFIG_DEFAULT_DEFINITION_DIRECTORY SNAPSET_SYSCONFDIR "/snapset/sets.d"
#define CONFIG_DEFAULT_HOOK_DIRECTORY SNAPSET_SYSCONFDIR "/snapset/hooks.d"
#define CONFIG_DEFAULT_PROVIDER_DIRECTORIES SNAPSET_SYSCONFDIR "/snapset/providers.d " SNAPSET_LIBDIR "/snapset/providers.d"

#define CONFIG_DEFAULT_MAX_VOLUMES_PER_SET      64U
#define CONFIG_DEFAULT_MAX_SNAPSHOTS_PER_VOLUME 64U
#define CONFIG_DEFAULT_MAX_CONNECTIONS          128U
#define CONFIG_DEFAULT_MAX_CONNECTIONS_PER_USER 32U
#define CONFIG_DEFAULT_MAX_MESSAGE_BYTES        (16U * 1024U * 1024U)
#define CONFIG_DEFAULT_IDLE_TIMEOUT_SEC         300U
#define CONFIG_DEFAULT_SET_IDLE_TIMEOUT_SEC     120U
#define CONFIG_DEFAULT_FLUSH_TIMEOUT_SEC        60U
#define CONFIG_DEFAULT_HOLD_TIMEOUT_SEC         10U
#define CONFIG_DEFAULT_COW_SIZE_PERCENT         10U
#define CONFIG_DEFAULT_THIN_POOL_MAX_USED_PERCENT 95U

/* The ranges each key accepts (inclusive). */
#define CONFIG_MAX_VOLUMES_PER_SET_MAX          4096U
#define CONFIG_MAX_SNAPSHOTS_PER_VOLUME_MAX     512U
#define CONFIG_MAX_CONNECTIONS_MAX              65536U
#define CONFIG_MIN_MESSAGE_BYTES                (64U * 1024U)
#define CONFIG_TIMEOUT_SEC_MAX                  86400U
#define CONFIG_HOLD_TIMEOUT_SEC_MAX             120U

typedef struct Config {
        /* [Daemon] */
        char *read_group;               /* NULL: only root may call anything */
        int log_level;                  /* LOG_* */
        char *state_directory;
        char *provider_directories;     /* absolute paths separated by blanks, earliest first */
        char *definition_directory;     /* sets.d */
        char *hook_directory;           /* hooks.d */

        /* [Limits] */
        unsigned max_volumes_per_set;
        unsigned max_snapshots_per_volume;
        unsigned max_connections;
        unsigned max_connections_per_user;
        uint64_t max_message_bytes;
        unsigned idle_timeout_sec;      /* 0: connections never time out */
        unsigned set_idle_timeout_sec;  /* 0: a set in creation never times out */
        unsigned flush_timeout_sec;
        unsigned hold_timeout_sec;
        unsigned flush_timeout_line, hold_timeout_line;  /* where they were set, 0: defaults */

        /* [Storage] */
        char *cow_directory;
        /* Exactly one of the two is non-zero: a fixed size, or a percentage of the origin. */
        uint64_t default_cow_size_bytes;
        unsigned default_cow_size_percent;
        /* Refuse thin snapshots in a pool whose data or metadata is this full (50-100). */
        unsigned thin_pool_max_used_percent;
        /* LvmThinSnapshots=classic: LVM thin volumes in sets of several volumes always get
         * classic snapshots (auto: native thin snapshots where the kernel allows one instant). */
        bool lvm_thin_classic;
} Config;

/* Fills c with the defaults. Returns 0 or -ENOMEM; on failure c holds nothing to free. */
int config_init(Config *c);
/* Frees what c owns and leaves it zeroed; safe on a zeroed or already freed Config. */
void config_done(Config *c);

/* Parses the text of f, named name in messages, on top of the defaults. On success returns 0 and
 * fills ret (release with config_done()). On failure returns -EINVAL (bad contents), -ENOMEM or
 * another negative errno (read error), leaves ret untouched, and sets *reterr_message (if not
 * NULL; owned by the caller) to one line naming the file, the line and the key:
 * "/etc/snapset/snapsetd.conf:7: MaxVolumesPerSet=abc: not a number between 1 and 4096". */
int config_parse(FILE *f, const char *name, Config *ret, char **reterr_message);

/* Like config_parse() on the file at path. If the file does not exist, returns the defaults when
 * missing_ok, else -ENOENT with a message. */
int config_load(const char *path, bool missing_ok, Config *ret, char **reterr_message);

/* Parses a size: a number of bytes with an optional K, M, G or T suffix (powers of 1024; "KiB"
 * etc. are accepted too). Returns 0 or -EINVAL/-ERANGE. */
int config_parse_size(const char *s, uint64_t *ret);

/* The service's watchdog interval (WatchdogSec=, from the service manager), 0 without one.
 * Whatever may keep the event loop busy in one go must stay below half of it. */
uint64_t config_watchdog_usec(void);
