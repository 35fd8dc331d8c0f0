/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "result.h"
#include "thin-pool.h"

static const char *const mode_names[_THIN_POOL_MODE_MAX] = {
        [THIN_POOL_RW] = "rw",
        [THIN_POOL_RO] = "ro",
        [THIN_POOL_OUT_OF_DATA_SPACE] = "out_of_data_space",
        [THIN_POOL_FAIL] = "Fail",
};

const char *thin_pool_mode_to_string(ThinPoolMode m) {
        return m >= 0 && m < _THIN_POOL_MODE_MAX ? mode_names[m] : NULL;
}

/* Splits s at blanks into at most max words (pointers into buf, a copy). */
static size_t split_words(const char *s, char *buf, size_t buf_size, char **words, size_t max) {
        size_t n = 0;
        char *save = NULL;

        snprintf(buf, buf_size, "%s", s);
        for (char *w = strtok_r(buf, " \t\n", &save); w && n < max; w = strtok_r(NULL, " \t\n", &save))
                words[n++] = w;
        return n;
}

static int parse_u64(const char *s, uint64_t *ret) {
        char *end;
        unsigned long long v;

        if (!s || !(*s >= '0' && *s <= '9'))
                return -EBADMSG;
        errno = 0;
        v = strtoull(s, &end, 10);
        if (errno != 0 || *end)
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* "USED/TOTAL" */
static int parse_fraction(const char *s, uint64_t *ret_used, uint64_t *ret_total) {
        char buf[64], *slash;

        snprintf(buf, sizeof buf, "%s", s);
        slash = strchr(buf, '/');
        if (!slash)
                return -EBADMSG;
        *slash = 0;
        if (parse_u64(buf, ret_used) < 0 || parse_u64(slash + 1, ret_total) < 0 || *ret_used > *ret_total)
                return -EBADMSG;
        return 0;
}

static int parse_devnum(const char *s, unsigned *ret_major, unsigned *ret_minor) {
        unsigned ma, mi;
        char tail;

        if (!s || sscanf(s, "%u:%u%c", &ma, &mi, &tail) != 2)
                return -EBADMSG;
        *ret_major = ma;
        *ret_minor = mi;
        return 0;
}

int thin_pool_status_parse(const char *params, ThinPoolStatus *ret) {
        char buf[512], *w[16];
        ThinPoolStatus s = {};
        size_t n;

        n = split_words(params, buf, sizeof buf, w, ELEMENTSOF(w));
        if (n == 1 && (streq(w[0], "Fail") || streq(w[0], "Error"))) {
                *ret = (ThinPoolStatus) { .mode = THIN_POOL_FAIL };
                return 0;
        }
        /* tid meta data held_root mode discard no_space needs_check [low_watermark] */
        if (n < 8)
                return -EBADMSG;
        if (parse_u64(w[0], &s.transaction_id) < 0 || parse_fraction(w[1], &s.meta_used, &s.meta_total) < 0 ||
            parse_fraction(w[2], &s.data_used, &s.data_total) < 0)
                return -EBADMSG;
        if (streq(w[4], "rw"))
                s.mode = THIN_POOL_RW;
        else if (streq(w[4], "ro"))
                s.mode = THIN_POOL_RO;
        else if (streq(w[4], "out_of_data_space"))
                s.mode = THIN_POOL_OUT_OF_DATA_SPACE;
        else
                return -EBADMSG;
        s.error_if_no_space = streq(w[6], "error_if_no_space");
        if (!s.error_if_no_space && !streq(w[6], "queue_if_no_space"))
                return -EBADMSG;
        s.needs_check = streq(w[7], "needs_check");
        if (!s.needs_check && !streq(w[7], "-"))
                return -EBADMSG;
        if (n > 8 && parse_u64(w[8], &s.meta_low_watermark) < 0)
                return -EBADMSG;
        *ret = s;
        return 0;
}

int thin_pool_table_parse(const char *params, unsigned *ret_meta_major, unsigned *ret_meta_minor,
                          unsigned *ret_data_major, unsigned *ret_data_minor, uint64_t *ret_block_sectors) {
        char buf[512], *w[4];
        uint64_t block;

        if (split_words(params, buf, sizeof buf, w, ELEMENTSOF(w)) < 4)
                return -EBADMSG;
        if (parse_devnum(w[0], ret_meta_major, ret_meta_minor) < 0 ||
            parse_devnum(w[1], ret_data_major, ret_data_minor) < 0 || parse_u64(w[2], &block) < 0 || block == 0)
                return -EBADMSG;
        *ret_block_sectors = block;
        return 0;
}

int thin_table_parse(const char *params, unsigned *ret_pool_major, unsigned *ret_pool_minor, uint32_t *ret_id,
                     char **ret_external) {
        char buf[256], *w[4];
        unsigned ma, mi;
        uint64_t id;
        size_t n;

        n = split_words(params, buf, sizeof buf, w, ELEMENTSOF(w));
        if (n < 2 || n > 3)
                return -EBADMSG;
        if (parse_devnum(w[0], ret_pool_major, ret_pool_minor) < 0 || parse_u64(w[1], &id) < 0 ||
            id > THIN_DEV_ID_MAX)
                return -EBADMSG;
        if (n == 3 && parse_devnum(w[2], &ma, &mi) < 0)
                return -EBADMSG;
        *ret_external = NULL;
        if (n == 3 && !(*ret_external = strdup(w[2])))
                return -ENOMEM;
        *ret_id = (uint32_t) id;
        return 0;
}

static unsigned percent_of(uint64_t used, uint64_t total) {
        return total == 0 ? 100 : (unsigned) (used * 100 / total);
}

int thin_pool_check_space(const ThinPoolStatus *s, const char *pool, uint64_t data_block_bytes,
                          unsigned max_used_percent, char *msg, size_t msg_size) {
        char used[32], total[32];

        if (s->mode == THIN_POOL_FAIL) {
                snprintf(msg, msg_size, "Thin pool %s has failed (status \"Fail\"): its volumes cannot be "
                         "used; see the kernel log, and repair the pool's metadata (thin_check, thin_repair)",
                         pool);
                return -EROFS;
        }
        if (s->needs_check) {
                snprintf(msg, msg_size, "Thin pool %s needs a metadata check (needs_check is set): "
                         "deactivate it and run thin_check (or lvconvert --repair for LVM), then retry",
                         pool);
                return -EROFS;
        }
        if (s->mode == THIN_POOL_RO && s->meta_total > 0 && s->meta_used >= s->meta_total) {
                provider_format_bytes(total, sizeof total, s->meta_total * THIN_METADATA_BLOCK_BYTES);
                snprintf(msg, msg_size, "Thin pool %s is out of metadata space (%" PRIu64 " of %" PRIu64 " blocks, "
                         "%s, in use) and the kernel switched it read-only: extend its metadata (lvextend "
                         "--poolmetadatasize for LVM), then repair it if it stays read-only", pool, s->meta_used,
                         s->meta_total, total);
                return -ENOSPC;
        }
        if (s->mode == THIN_POOL_RO) {
                snprintf(msg, msg_size, "Thin pool %s is read-only (the kernel switched it after a metadata "
                         "error or when its metadata filled up): extend or repair its metadata, then retry",
                         pool);
                return -EROFS;
        }
        if (s->mode == THIN_POOL_OUT_OF_DATA_SPACE || percent_of(s->data_used, s->data_total) >= max_used_percent) {
                provider_format_bytes(used, sizeof used, s->data_used * data_block_bytes);
                provider_format_bytes(total, sizeof total, s->data_total * data_block_bytes);
                snprintf(msg, msg_size, "Thin pool %s has %u%% of its data space in use (%" PRIu64 " of %" PRIu64
                         " blocks, %s of %s%s), and a snapshot needs room for its origin's changes (refused from "
                         "%u%% on, ThinPoolMaxUsedPercent=): extend the pool or delete old snapshots", pool,
                         percent_of(s->data_used, s->data_total), s->data_used, s->data_total, used, total,
                         s->mode == THIN_POOL_OUT_OF_DATA_SPACE ? "; it is out of data space" : "",
                         max_used_percent);
                return -ENOSPC;
        }
        if (percent_of(s->meta_used, s->meta_total) >= max_used_percent ||
            s->meta_total - s->meta_used <= s->meta_low_watermark) {
                provider_format_bytes(used, sizeof used, s->meta_used * THIN_METADATA_BLOCK_BYTES);
                provider_format_bytes(total, sizeof total, s->meta_total * THIN_METADATA_BLOCK_BYTES);
                snprintf(msg, msg_size, "Thin pool %s has %u%% of its metadata space in use (%" PRIu64 " of %" PRIu64
                         " blocks, %s of %s; low-water mark %" PRIu64 " blocks free), and every snapshot and every "
                         "later change needs metadata (refused from %u%% on, ThinPoolMaxUsedPercent=): extend the "
                         "pool's metadata or delete old snapshots", pool, percent_of(s->meta_used, s->meta_total),
                         s->meta_used, s->meta_total, used, total, s->meta_low_watermark, max_used_percent);
                return -ENOSPC;
        }
        return 0;
}

static int compare_u32(const void *a, const void *b) {
        uint32_t x = *(const uint32_t *) a, y = *(const uint32_t *) b;

        return x < y ? -1 : x > y;
}

int thin_pick_device_id(const uint32_t *used, size_t n, uint32_t *ret) {
        _cleanup_free_ uint32_t *sorted = NULL;
        uint32_t next = 0;

        if (n == 0) {
                *ret = 0;
                return 0;
        }
        sorted = malloc(n * sizeof(uint32_t));
        if (!sorted)
                return -ENOMEM;
        memcpy(sorted, used, n * sizeof(uint32_t));
        qsort(sorted, n, sizeof(uint32_t), compare_u32);
        /* Above every id in use: an id freed a moment ago is not handed out again at once, which
         * keeps a stale record from ever naming a newer device. */
        if (sorted[n - 1] < THIN_DEV_ID_MAX) {
                *ret = sorted[n - 1] + 1;
                return 0;
        }
        for (size_t i = 0; i < n; i++) {
                if (sorted[i] > next)
                        break;
                if (sorted[i] == next)
                        next++;
        }
        if (next > THIN_DEV_ID_MAX)
                return -ENOSPC;
        *ret = next;
        return 0;
}
