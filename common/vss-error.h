/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one error table of snapset: every VSS-equivalent code with its HRESULT, its varlink error
 * name, a message for people and the snapsetctl exit status. Everything that reports an error to a
 * caller translates through this table, once, at the operation boundary; inside the programs
 * errors are negative errno values. */

#include <errno.h>
#include <stdbool.h>
#include <stdint.h>

/* The constants carry the VSS names unchanged, so that code reads like the VSS documentation. */
typedef enum VssCode {
        S_OK,
        S_FALSE,
        E_UNEXPECTED,
        E_ABORT,
        E_FAIL,
        E_ACCESSDENIED,
        E_OUTOFMEMORY,
        E_INVALIDARG,
        VSS_E_BAD_STATE,
        VSS_E_UNEXPECTED,
        VSS_E_PROVIDER_ALREADY_REGISTERED,
        VSS_E_PROVIDER_NOT_REGISTERED,
        VSS_E_PROVIDER_VETO,
        VSS_E_PROVIDER_IN_USE,
        VSS_E_OBJECT_NOT_FOUND,
        VSS_E_VOLUME_NOT_SUPPORTED,
        VSS_E_OBJECT_ALREADY_EXISTS,
        VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER,
        VSS_E_UNEXPECTED_PROVIDER_ERROR,
        VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED,
        VSS_E_FLUSH_WRITES_TIMEOUT,
        VSS_E_HOLD_WRITES_TIMEOUT,
        VSS_E_SNAPSHOT_SET_IN_PROGRESS,
        VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED,
        VSS_E_UNSUPPORTED_CONTEXT,
        VSS_E_VOLUME_IN_USE,
        VSS_E_INSUFFICIENT_STORAGE,
        VSS_E_REVERT_IN_PROGRESS,
        VSS_E_NOT_SUPPORTED,
        VSS_E_BREAK_REVERT_ID_FAILED,
        VSS_E_CANNOT_REVERT_DISKID,
        _VSS_CODE_MAX,
        _VSS_CODE_INVALID = -EINVAL,
} VssCode;

/* The varlink interface every snapset error belongs to. */
#define SNAPSET_VARLINK_INTERFACE "io.snapset.Manager"

typedef struct VssCodeInfo {
        const char *name;           /* "VSS_E_SNAPSHOT_SET_IN_PROGRESS" */
        uint32_t hresult;           /* 0x80042316 */
        const char *varlink_error;  /* "io.snapset.Manager.SnapshotSetInProgress"; NULL for successes */
        const char *message;        /* one sentence for an administrator, with what to do */
        int exit_status;            /* snapsetctl's exit status, documented in snapsetctl(8) */
} VssCodeInfo;

/* snapsetctl exit statuses that do not come from a VSS code. */
enum {
        SNAPSET_EXIT_SUCCESS = 0,
        SNAPSET_EXIT_FAILURE = 1,        /* an error the table does not know */
        SNAPSET_EXIT_USAGE = 2,          /* bad command line */
        SNAPSET_EXIT_UNAVAILABLE = 69,   /* the daemon could not be reached (EX_UNAVAILABLE) */
        SNAPSET_EXIT_PROTOCOL = 76,      /* the daemon answered with a protocol error (EX_PROTOCOL) */
};

/* Returns the table entry for code, or NULL if code is out of range. */
const VssCodeInfo *vss_code_info(VssCode code);

/* Shortcuts for the fields; return NULL (name) or 0 for an invalid code. */
const char *vss_code_name(VssCode code);
uint32_t vss_code_hresult(VssCode code);
const char *vss_code_varlink_error(VssCode code);
const char *vss_code_message(VssCode code);

/* Lookups; each returns _VSS_CODE_INVALID when nothing matches. */
VssCode vss_code_from_name(const char *name);
VssCode vss_code_from_hresult(uint32_t hresult);
VssCode vss_code_from_varlink_error(const char *error);

/* True for S_OK and S_FALSE (the "success" kind). */
bool vss_code_is_success(VssCode code);

/* True if a provider method may return this code (architecture §1.4); anything else is
 * translated to VSS_E_UNEXPECTED_PROVIDER_ERROR. */
bool vss_code_is_valid_provider_return(VssCode code);

/* Maps a negative errno to the closest code, for failures that have no better one:
 * -ENOMEM → E_OUTOFMEMORY, -EINVAL → E_INVALIDARG, -EACCES/-EPERM → E_ACCESSDENIED,
 * -ENOENT/-ENODEV/-ENXIO → VSS_E_OBJECT_NOT_FOUND, -ENOSPC/-EDQUOT → VSS_E_INSUFFICIENT_STORAGE,
 * -EOPNOTSUPP → VSS_E_NOT_SUPPORTED, -EBUSY → VSS_E_VOLUME_IN_USE, else VSS_E_UNEXPECTED. */
VssCode vss_code_from_errno(int negative_errno);
