/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stddef.h>

#include "macro.h"
#include "vss-error.h"

#define ERR(code, value, error, exit, msg)                                      \
        [code] = {                                                              \
                .name = #code,                                                  \
                .hresult = value,                                               \
                .varlink_error = SNAPSET_VARLINK_INTERFACE "." error,           \
                .message = msg,                                                 \
                .exit_status = exit,                                            \
        }

/* Successes are never sent as errors: no varlink error name. */
#define OK(code, value, msg)                                                    \
        [code] = {                                                              \
                .name = #code,                                                  \
                .hresult = value,                                               \
                .message = msg,                                                 \
        }

/* Exit statuses: 0 success; 10-15 the generic COM codes; 20-42 the VSS codes, one each, so that a
 * script can tell every failure apart (see snapsetctl(8)). The HRESULT values are the Windows
 * SDK's (vsserror.h, winerror.h). */
static const VssCodeInfo table[_VSS_CODE_MAX] = {
        OK(S_OK, 0x00000000, "The operation succeeded."),
        OK(S_FALSE, 0x00000001, "The operation succeeded with a qualified result."),
        ERR(E_UNEXPECTED, 0x8000FFFF, "UnexpectedFailure", 10,
            "An unexpected failure occurred; see the journal of snapsetd.service for details."),
        ERR(E_ABORT, 0x80004004, "Aborted", 11,
            "The operation was aborted."),
        ERR(E_FAIL, 0x80004005, "Failed", 12,
            "The operation failed; see the journal of snapsetd.service for details."),
        ERR(E_ACCESSDENIED, 0x80070005, "AccessDenied", 13,
            "Permission denied: this operation needs root, or membership of the configured read group for read-only calls."),
        ERR(E_OUTOFMEMORY, 0x8007000E, "OutOfMemory", 14,
            "Out of memory or other system resources (memory, file descriptors, loop devices)."),
        ERR(E_INVALIDARG, 0x80070057, "InvalidArgument", 15,
            "A parameter value is not valid."),
        ERR(VSS_E_BAD_STATE, 0x80042301, "BadState", 20,
            "The object is not in the right state for this operation (for example AddToSnapshotSet without StartSnapshotSet)."),
        ERR(VSS_E_UNEXPECTED, 0x80042302, "Unexpected", 21,
            "snapsetd hit an unexpected error; see the journal of snapsetd.service for details."),
        ERR(VSS_E_PROVIDER_ALREADY_REGISTERED, 0x80042303, "ProviderAlreadyRegistered", 22,
            "A provider with this name is already registered."),
        ERR(VSS_E_PROVIDER_NOT_REGISTERED, 0x80042304, "ProviderNotRegistered", 23,
            "No provider with this name is registered; 'snapsetctl providers' lists them."),
        ERR(VSS_E_PROVIDER_VETO, 0x80042306, "ProviderVeto", 24,
            "The provider refused the operation; its explanation of how to resolve it is in the message and the journal."),
        ERR(VSS_E_PROVIDER_IN_USE, 0x80042307, "ProviderInUse", 25,
            "The provider is in use and cannot be unloaded."),
        ERR(VSS_E_OBJECT_NOT_FOUND, 0x80042308, "ObjectNotFound", 26,
            "The volume, snapshot or snapshot set was not found."),
        ERR(VSS_E_VOLUME_NOT_SUPPORTED, 0x8004230C, "VolumeNotSupported", 27,
            "No provider on this machine can snapshot the volume; 'snapsetctl volumes' says why."),
        ERR(VSS_E_OBJECT_ALREADY_EXISTS, 0x8004230D, "ObjectAlreadyExists", 28,
            "The object already exists."),
        ERR(VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, 0x8004230E, "VolumeNotSupportedByProvider", 29,
            "The requested provider cannot snapshot the volume; choose another provider or let snapsetd pick one."),
        ERR(VSS_E_UNEXPECTED_PROVIDER_ERROR, 0x8004230F, "UnexpectedProviderError", 30,
            "A provider failed in an unexpected way; the journal names the provider, the method and its original code."),
        ERR(VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED, 0x80042312, "MaximumNumberOfVolumesReached", 31,
            "The snapshot set already holds the maximum number of volumes (MaxVolumesPerSet= in snapsetd.conf)."),
        ERR(VSS_E_FLUSH_WRITES_TIMEOUT, 0x80042313, "FlushWritesTimeout", 32,
            "Timed out flushing and freezing the filesystems, probably because of heavy write activity; retry later."),
        ERR(VSS_E_HOLD_WRITES_TIMEOUT, 0x80042314, "HoldWritesTimeout", 33,
            "Timed out while holding writes to the volumes; nothing was kept; retry later."),
        ERR(VSS_E_SNAPSHOT_SET_IN_PROGRESS, 0x80042316, "SnapshotSetInProgress", 34,
            "Another snapshot set is being created; wait a few moments and try again."),
        ERR(VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED, 0x80042317, "MaximumNumberOfSnapshotsReached", 35,
            "The volume already has the maximum number of snapshots; delete old ones first."),
        ERR(VSS_E_UNSUPPORTED_CONTEXT, 0x8004231B, "UnsupportedContext", 36,
            "The snapshot context is not supported (valid contexts: backup, persistent)."),
        ERR(VSS_E_VOLUME_IN_USE, 0x8004231D, "VolumeInUse", 37,
            "The storage is in use and cannot be deleted."),
        ERR(VSS_E_INSUFFICIENT_STORAGE, 0x8004231F, "InsufficientStorage", 38,
            "Not enough space for the snapshot (COW store, thin pool or volume group); free space or lower the COW size."),
        ERR(VSS_E_REVERT_IN_PROGRESS, 0x80042325, "RevertInProgress", 39,
            "A revert is in progress for the volume; wait for it to finish."),
        ERR(VSS_E_NOT_SUPPORTED, 0x8004232F, "NotSupported", 40,
            "The operation is not supported."),
        ERR(VSS_E_BREAK_REVERT_ID_FAILED, 0x800423F6, "BreakRevertIdFailed", 41,
            "Reverting the identity of a volume while breaking the snapshot set failed."),
        ERR(VSS_E_CANNOT_REVERT_DISKID, 0x800423FE, "CannotRevertDiskId", 42,
            "The filesystem or PV identity (UUID) could not be set to the requested value."),
};

const VssCodeInfo *vss_code_info(VssCode code) {
        if (code < 0 || code >= _VSS_CODE_MAX)
                return NULL;
        return &table[code];
}

const char *vss_code_name(VssCode code) {
        const VssCodeInfo *i = vss_code_info(code);
        return i ? i->name : NULL;
}

uint32_t vss_code_hresult(VssCode code) {
        const VssCodeInfo *i = vss_code_info(code);
        return i ? i->hresult : 0;
}

const char *vss_code_varlink_error(VssCode code) {
        const VssCodeInfo *i = vss_code_info(code);
        return i ? i->varlink_error : NULL;
}

const char *vss_code_message(VssCode code) {
        const VssCodeInfo *i = vss_code_info(code);
        return i ? i->message : NULL;
}

VssCode vss_code_from_name(const char *name) {
        if (!name)
                return _VSS_CODE_INVALID;
        for (VssCode c = 0; c < _VSS_CODE_MAX; c++)
                if (streq(table[c].name, name))
                        return c;
        return _VSS_CODE_INVALID;
}

VssCode vss_code_from_hresult(uint32_t hresult) {
        for (VssCode c = 0; c < _VSS_CODE_MAX; c++)
                if (table[c].hresult == hresult)
                        return c;
        return _VSS_CODE_INVALID;
}

VssCode vss_code_from_varlink_error(const char *error) {
        if (!error)
                return _VSS_CODE_INVALID;
        for (VssCode c = 0; c < _VSS_CODE_MAX; c++)
                if (streq_ptr(table[c].varlink_error, error))
                        return c;
        return _VSS_CODE_INVALID;
}

bool vss_code_is_success(VssCode code) {
        return code == S_OK || code == S_FALSE;
}

bool vss_code_is_valid_provider_return(VssCode code) {
        switch (code) {
        case S_OK:
        case E_OUTOFMEMORY:
        case E_INVALIDARG:
        case E_ACCESSDENIED:
        case VSS_E_BAD_STATE:
        case VSS_E_OBJECT_NOT_FOUND:
        case VSS_E_INSUFFICIENT_STORAGE:
        case VSS_E_VOLUME_NOT_SUPPORTED:
        case VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER:
        case VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED:
        case VSS_E_PROVIDER_VETO:
        case VSS_E_CANNOT_REVERT_DISKID:
                return true;
        default:
                return false;
        }
}

VssCode vss_code_from_errno(int negative_errno) {
        switch (-negative_errno) {
        case 0:
                return S_OK;
        case ENOMEM:
        case EMFILE:
        case ENFILE:
                return E_OUTOFMEMORY;
        case EINVAL:
                return E_INVALIDARG;
        case EACCES:
        case EPERM:
                return E_ACCESSDENIED;
        case ENOENT:
        case ENODEV:
        case ENXIO:
                return VSS_E_OBJECT_NOT_FOUND;
        case ENOSPC:
        case EDQUOT:
                return VSS_E_INSUFFICIENT_STORAGE;
        case EOPNOTSUPP:
                return VSS_E_NOT_SUPPORTED;
        case EBUSY:
                return VSS_E_VOLUME_IN_USE;
        default:
                return VSS_E_UNEXPECTED;
        }
}
