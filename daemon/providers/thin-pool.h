/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Thin pools as the kernel shows them (Documentation/admin-guide/device-mapper/thin-provisioning.rst),
 * for both providers that snapshot thin volumes: dm-thin (pools LVM does not manage) and lvm
 * (LVM thin pools, whose dm status it reads but never changes). Pure functions of the text the
 * kernel gives, so that every case can be unit-tested. */

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Thin device ids are 24 bits (MAX_DEV_ID in dm-thin-metadata.h). */
#define THIN_DEV_ID_MAX 0xFFFFFFU
/* Metadata blocks are always 4 KiB (THIN_METADATA_BLOCK_SIZE). */
#define THIN_METADATA_BLOCK_BYTES 4096U
/* A snapshot is refused when the pool's data or metadata is this full or fuller, unless
 * configured otherwise: the snapshot itself is free, but every later first write to a shared
 * block of the origin needs a new block, and a pool that runs out stops every volume in it. */
#define THIN_POOL_DEFAULT_MAX_USED_PERCENT 95U

typedef enum ThinPoolMode {
        THIN_POOL_RW,
        THIN_POOL_RO,                   /* metadata problems: the kernel switched it read-only */
        THIN_POOL_OUT_OF_DATA_SPACE,
        THIN_POOL_FAIL,                 /* "Fail" (or "Error"): the pool is unusable */
        _THIN_POOL_MODE_MAX,
        _THIN_POOL_MODE_INVALID = -EINVAL,
} ThinPoolMode;

/* "rw", "ro", "out_of_data_space", "Fail". */
const char *thin_pool_mode_to_string(ThinPoolMode m);

typedef struct ThinPoolStatus {
        uint64_t transaction_id;
        uint64_t meta_used, meta_total;   /* metadata blocks (4 KiB) */
        uint64_t data_used, data_total;   /* data blocks (the pool's block size) */
        ThinPoolMode mode;
        bool needs_check;                 /* the metadata must be checked (thin_check) before use */
        bool error_if_no_space;           /* writes fail rather than queue when data is full */
        uint64_t meta_low_watermark;      /* blocks; 0 if not reported */
} ThinPoolStatus;

/* Parses the parameters of a thin-pool status line ("3 114/1024 618/6400 - rw discard_passdown
 * queue_if_no_space - 256"), or "Fail"/"Error" (then only mode is set). -EBADMSG if it is
 * neither. */
int thin_pool_status_parse(const char *params, ThinPoolStatus *ret);

/* From the parameters of a thin-pool table line ("253:1 253:2 128 0 1 skip_block_zeroing"): the
 * metadata and data devices (MAJ:MIN) and the data block size in sectors. -EBADMSG otherwise. */
int thin_pool_table_parse(const char *params, unsigned *ret_meta_major, unsigned *ret_meta_minor,
                          unsigned *ret_data_major, unsigned *ret_data_minor, uint64_t *ret_block_sectors);

/* From the parameters of a thin table line ("253:3 7" or "253:3 7 253:9"): the pool device, the
 * thin device id and, if there is one, the external origin (else *ret_external is NULL).
 * -EBADMSG otherwise (including ids above THIN_DEV_ID_MAX). */
int thin_table_parse(const char *params, unsigned *ret_pool_major, unsigned *ret_pool_minor, uint32_t *ret_id,
                     char **ret_external);

/* Whether a snapshot may be taken in a pool in this state: 0 if so; otherwise -EROFS (read-only,
 * failed or needs_check: the pool must be repaired), or -ENOSPC (data or metadata max_used_percent
 * full or fuller, or out of data space), with msg saying which, with the numbers, and what to do.
 * pool names the pool in the message; data_block_bytes converts blocks for it. */
int thin_pool_check_space(const ThinPoolStatus *s, const char *pool, uint64_t data_block_bytes,
                          unsigned max_used_percent, char *msg, size_t msg_size);

/* The thin device id to use for a new snapshot: the smallest id above every id in used (n of
 * them, any order), wrapping to the smallest id that is not in used when that would pass
 * THIN_DEV_ID_MAX. -ENOSPC if every id is taken. */
int thin_pick_device_id(const uint32_t *used, size_t n, uint32_t *ret);
