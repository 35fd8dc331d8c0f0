/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The values snapsetctl reads from its command line: sizes, seconds, and the volumes of
 * 'snapsetctl create' with their per-volume options. Pure functions: nothing here logs, and each
 * returns a negative errno that the verb turns into a usage error. */

#include <stdint.h>

#include "macro.h"

#define USEC_INFINITY UINT64_MAX

/* A size in bytes: "4096", "512B", "4K", "1.5G", "2GiB", "1t": a number, with an optional fraction
 * when a unit follows, and K, M, G or T (powers of 1024, either case, "iB" allowed after them).
 * Fractions of a byte are dropped. Returns 0, -EINVAL if s is not a size ("2GB" is not: decimal or
 * binary would be a guess), or -ERANGE if it does not fit a JSON integer (2^63 - 1). */
int parse_size(const char *s, uint64_t *ret);

/* Seconds, "30", "0.5", "120s": returns 0 and microseconds, -EINVAL, or -ERANGE past a year. */
int parse_seconds(const char *s, uint64_t *ret_usec);

/* How long snapsetctl waits for a reply to method (qualified or not) unless --timeout says
 * otherwise: none for Monitor (events come when they come), 30 s for most calls, and for the calls
 * that create or delete a set (they hold the freeze window, wait for udev, run lvm once per
 * volume) 120 s plus 10 s for each volume after the first, n_volumes being how many the call
 * concerns (0 counts as 1). A set of 64 LVs took up to 290 s to create in a slow VM; a fixed limit
 * would end a legitimate create of a large set in exit 75. 0 means no limit. */
#define TIMEOUT_CREATE_USEC     (120 * USEC_PER_SEC)
#define TIMEOUT_SCHEDULED_USEC  (30 * 60 * USEC_PER_SEC)
#define TIMEOUT_PER_VOLUME_USEC (10 * USEC_PER_SEC)
#define TIMEOUT_DEFAULT_USEC    (30 * USEC_PER_SEC)
uint64_t method_default_timeout_usec(const char *method, size_t n_volumes);

/* One VOLUME argument of 'snapsetctl create': "VOLUME[:KEY=VALUE[,KEY=VALUE...]]" with the keys
 * cow-size and provider. A volume path may itself hold colons (/dev/disk/by-path/pci-0000:00:1f.2-
 * ata-1), so only a last colon that is followed by KEY=VALUE (an '=' and no '/') starts the
 * options. */
typedef struct VolumeSpec {
        char *volume;
        char *provider;       /* NULL: the --provider of the command, or the daemon's choice */
        uint64_t cow_size;    /* 0: the --cow-size of the command, or the daemon's default */
} VolumeSpec;

void volume_spec_done(VolumeSpec *v);

/* Returns 0 and fills *ret (release with volume_spec_done()). On failure returns -ENOMEM, or -EINVAL
 * or -ERANGE (a size out of range) with a phrase for the user in reason: "unknown option 'foo'
 * (use cow-size= or provider=)". */
#define VOLUME_SPEC_REASON_MAX 128
int volume_spec_parse(const char *arg, VolumeSpec *ret, char reason[static VOLUME_SPEC_REASON_MAX]);
