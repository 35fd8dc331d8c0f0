/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "parse.h"

/* Digits of a fraction that count: more would overflow fraction × 2^40 in 64 bits, and a
 * millionth of a unit is below a byte for every unit up to T anyway. */
#define FRACTION_DIGITS_MAX 6

/* Reads "DIGITS[.DIGITS]" from *p: the whole part, and the fraction as numerator over a power of
 * ten. Returns 0 with *p after the number, -EINVAL if there is no digit before the point, or
 * -ERANGE if the whole part overflows. */
static int parse_decimal(const char **p, uint64_t *ret_whole, uint64_t *ret_num, uint64_t *ret_den,
                         bool *ret_fraction) {
        const char *s = *p;
        uint64_t whole = 0, num = 0, den = 1;
        bool fraction = false;

        if (!isdigit((unsigned char) *s))
                return -EINVAL;
        for (; isdigit((unsigned char) *s); s++) {
                if (whole > (UINT64_MAX - 9) / 10)
                        return -ERANGE;
                whole = whole * 10 + (uint64_t) (*s - '0');
        }
        if (*s == '.') {
                unsigned digits = 0;

                fraction = true;
                s++;
                if (!isdigit((unsigned char) *s))
                        return -EINVAL;
                for (; isdigit((unsigned char) *s); s++, digits++)
                        if (digits < FRACTION_DIGITS_MAX) {
                                num = num * 10 + (uint64_t) (*s - '0');
                                den *= 10;
                        }
        }

        *p = s;
        *ret_whole = whole;
        *ret_num = num;
        *ret_den = den;
        *ret_fraction = fraction;
        return 0;
}

int parse_size(const char *s, uint64_t *ret) {
        static const struct {
                char letter;
                uint64_t factor;
        } units[] = {
                { 'K', UINT64_C(1) << 10 },
                { 'M', UINT64_C(1) << 20 },
                { 'G', UINT64_C(1) << 30 },
                { 'T', UINT64_C(1) << 40 },
        };
        uint64_t whole, num, den, factor = 1, total;
        bool fraction, unit = false;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_decimal(&s, &whole, &num, &den, &fraction);
        if (r < 0)
                return r;

        for (size_t i = 0; i < ELEMENTSOF(units); i++)
                if (toupper((unsigned char) *s) == units[i].letter) {
                        factor = units[i].factor;
                        unit = true;
                        s++;
                        /* "2GiB" is 2G; "2GB" is refused, since it might mean 2 × 10^9. */
                        if (strcasecmp(s, "iB") == 0)
                                s += 2;
                        break;
                }
        if (!unit && (*s == 'B' || *s == 'b'))
                s++;
        if (*s != 0)
                return -EINVAL;
        /* "1.5" bytes means nothing. */
        if (fraction && !unit)
                return -EINVAL;

        if (whole > (uint64_t) INT64_MAX / factor)
                return -ERANGE;
        total = whole * factor;
        /* num < 10^6 and factor <= 2^40: the product fits. */
        if (num * factor / den > (uint64_t) INT64_MAX - total)
                return -ERANGE;
        total += num * factor / den;

        *ret = total;
        return 0;
}

#define SECONDS_MAX (UINT64_C(365) * 24 * 60 * 60)

int parse_seconds(const char *s, uint64_t *ret_usec) {
        uint64_t whole, num, den;
        bool fraction;
        int r;

        if (!s)
                return -EINVAL;
        r = parse_decimal(&s, &whole, &num, &den, &fraction);
        if (r < 0)
                return r;
        if (*s == 's')
                s++;
        if (*s != 0)
                return -EINVAL;
        if (whole > SECONDS_MAX || (whole == SECONDS_MAX && num > 0))
                return -ERANGE;

        /* den <= 10^6: the fraction in microseconds is exact down to a microsecond. */
        *ret_usec = whole * USEC_PER_SEC + num * USEC_PER_SEC / den;
        return 0;
}

uint64_t method_default_timeout_usec(const char *method, size_t n_volumes) {
        const char *member = method, *dot = strrchr(method, '.');

        if (dot) {
                /* Only io.snapset.Manager has slow methods; org.varlink.service answers at once. */
                if ((size_t) (dot - method) != strlen("io.snapset.Manager") ||
                    strncmp(method, "io.snapset.Manager", (size_t) (dot - method)) != 0)
                        return TIMEOUT_DEFAULT_USEC;
                member = dot + 1;
        }

        /* A delete does the same kind of device work as a create (devices removed, udev waited
         * for, lvremove), one snapshot after another: a set of many takes as long. */
        if (streq(member, "CreateSnapshotSet") || streq(member, "DoSnapshotSet") ||
            streq(member, "DeleteSnapshots")) {
                size_t extra = n_volumes > 1 ? n_volumes - 1 : 0;

                /* Past what any set holds (the daemon caps volumes far below), no limit. */
                if (extra > (UINT64_MAX - TIMEOUT_CREATE_USEC) / TIMEOUT_PER_VOLUME_USEC)
                        return 0;
                return TIMEOUT_CREATE_USEC + extra * TIMEOUT_PER_VOLUME_USEC;
        }
        if (streq(member, "Monitor"))
                return 0;
        /* A defined set runs its hooks (each up to its HookTimeoutSec=) besides the set itself;
         * a prune deletes any number of sets. Their units' own timeouts bound them too. */
        if (streq(member, "CreateDefinedSet") || streq(member, "PruneSets"))
                return TIMEOUT_SCHEDULED_USEC;
        return TIMEOUT_DEFAULT_USEC;
}

/* ---------------------------------------------------------------- volumes of create */

void volume_spec_done(VolumeSpec *v) {
        free(v->volume);
        free(v->provider);
        *v = (VolumeSpec) {};
}

static int volume_spec_apply_option(VolumeSpec *v, const char *item, size_t len,
                                    char reason[static VOLUME_SPEC_REASON_MAX]) {
        _cleanup_free_ char *copy = strndup(item, len);
        const char *value;
        char *eq;
        int r;

        if (!copy)
                return -ENOMEM;
        eq = strchr(copy, '=');
        if (!eq) {
                snprintf(reason, VOLUME_SPEC_REASON_MAX, "'%.64s' is not KEY=VALUE", copy);
                return -EINVAL;
        }
        *eq = 0;
        value = eq + 1;
        if (!*value) {
                snprintf(reason, VOLUME_SPEC_REASON_MAX, "the option '%.64s' has no value", copy);
                return -EINVAL;
        }

        if (streq(copy, "cow-size")) {
                if (v->cow_size > 0) {
                        snprintf(reason, VOLUME_SPEC_REASON_MAX, "cow-size is given twice");
                        return -EINVAL;
                }
                r = parse_size(value, &v->cow_size);
                if (r == -ERANGE) {
                        snprintf(reason, VOLUME_SPEC_REASON_MAX, "the COW size '%.64s' is too large", value);
                        return r;
                }
                if (r < 0) {
                        snprintf(reason, VOLUME_SPEC_REASON_MAX,
                                 "'%.64s' is not a size (bytes, or a number with K, M, G or T)", value);
                        return r;
                }
                if (v->cow_size == 0) {
                        snprintf(reason, VOLUME_SPEC_REASON_MAX, "the COW size must be more than 0");
                        return -EINVAL;
                }
                return 0;
        }

        if (streq(copy, "provider")) {
                if (v->provider) {
                        snprintf(reason, VOLUME_SPEC_REASON_MAX, "provider is given twice");
                        return -EINVAL;
                }
                v->provider = strdup(value);
                return v->provider ? 0 : -ENOMEM;
        }

        snprintf(reason, VOLUME_SPEC_REASON_MAX, "unknown option '%.64s' (use cow-size= or provider=)", copy);
        return -EINVAL;
}

int volume_spec_parse(const char *arg, VolumeSpec *ret, char reason[static VOLUME_SPEC_REASON_MAX]) {
        _cleanup_(volume_spec_done) VolumeSpec v = {};
        const char *colon = strrchr(arg, ':'), *options = NULL;
        int r;

        reason[0] = 0;
        if (colon && strchr(colon + 1, '=') && !strchr(colon + 1, '/')) {
                v.volume = strndup(arg, (size_t) (colon - arg));
                options = colon + 1;
        } else
                v.volume = strdup(arg);
        if (!v.volume)
                return -ENOMEM;
        if (!*v.volume) {
                snprintf(reason, VOLUME_SPEC_REASON_MAX, "the volume is empty");
                return -EINVAL;
        }

        for (const char *p = options; p && *p; ) {
                size_t len = strcspn(p, ",");

                if (len == 0) {
                        snprintf(reason, VOLUME_SPEC_REASON_MAX, "an option is empty");
                        return -EINVAL;
                }
                r = volume_spec_apply_option(&v, p, len, reason);
                if (r < 0)
                        return r;
                p += len;
                if (*p == ',' && *++p == 0) {
                        snprintf(reason, VOLUME_SPEC_REASON_MAX, "an option is empty");
                        return -EINVAL;
                }
        }

        *ret = v;
        v = (VolumeSpec) {};
        return 0;
}
