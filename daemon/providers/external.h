/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* External providers (architecture §3, snapset-provider(7)): an executable named by a provider
 * file, NAME.provider, in one of the provider directories (ProviderDirectory= of snapsetd.conf;
 * the first directory that has NAME.provider wins, so /etc overrides the vendor's file):
 *
 *         [Provider]
 *         Executable=/usr/lib/acme/snapset-acme-provider
 *         Priority=5
 *         Timeout=30
 *         [Settings]
 *         Pool=fast
 *
 * snapsetd starts the executable at its first use (OnLoad: at daemon start, or again after a
 * failure), with a connected Unix socket as fd 3, /dev/null as stdin, and stdout and stderr on a
 * pipe that snapsetd reads and logs line by line under the provider's name (held while the
 * filesystems are frozen). It talks io.snapset.Provider to it, one call at a time, each with a
 * timeout. Every ProviderOps method forwards to the child; what comes back is validated here
 * (external_reply_check) and then, like every provider's code, by coordinator_check_code():
 * a crash, a hang past the timeout, or a reply that does not follow the interface becomes
 * VSS_E_UNEXPECTED_PROVIDER_ERROR with the event naming what happened. The child is then killed
 * and started again at the next use; after EXTERNAL_MAX_FAILURES such failures in a row (OnLoad
 * failures included), the provider is unloaded until the configuration is reloaded. */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdio.h>

#include "provider.h"

#define EXTERNAL_DEFAULT_TIMEOUT_SEC 30U
#define EXTERNAL_TIMEOUT_SEC_MAX     3600U
#define EXTERNAL_PRIORITY_MAX        1000
#define EXTERNAL_MAX_FAILURES        3U
#define EXTERNAL_INTERFACE           "io.snapset.Provider"

/* ---------------------------------------------------------------- provider files */

typedef struct ExternalProviderConfig {
        char *name;             /* from the file name, without .provider */
        char *path;             /* the file */
        char *executable;       /* absolute */
        int priority;
        unsigned timeout_sec;
        char **setting_keys;    /* [Settings], in file order; a later key replaces an earlier one */
        char **setting_values;
        size_t n_settings;
} ExternalProviderConfig;

/* A provider name: what may precede ".provider": letters, digits, '-', '_', '.', at most 63
 * characters, not starting with '.' or '-'. */
bool external_provider_name_is_valid(const char *name);

/* Parses a provider file's text. On failure returns -EINVAL (bad contents) and sets
 * *reterr_message to one line naming file, line and key ("acme.provider:3: Priority=x: not a
 * number between 0 and 1000"), or another negative errno. */
int external_provider_config_parse(FILE *f, const char *path, const char *name,
                                   ExternalProviderConfig *ret, char **reterr_message);
void external_provider_config_done(ExternalProviderConfig *c);

/* ---------------------------------------------------------------- the protocol */

typedef enum ExternalMethod {
        EXTERNAL_ON_LOAD,
        EXTERNAL_ON_UNLOAD,
        EXTERNAL_IS_VOLUME_SUPPORTED,
        EXTERNAL_BEGIN_PREPARE_SNAPSHOT,
        EXTERNAL_END_PREPARE_SNAPSHOTS,
        EXTERNAL_PRE_COMMIT_SNAPSHOTS,
        EXTERNAL_HOLD_WRITES,
        EXTERNAL_COMMIT_SNAPSHOTS,
        EXTERNAL_RELEASE_WRITES,
        EXTERNAL_POST_COMMIT_SNAPSHOTS,
        EXTERNAL_ABORT_SNAPSHOTS,
        EXTERNAL_DELETE_SNAPSHOT,
        EXTERNAL_ACTIVATE_SNAPSHOT,
        EXTERNAL_RECOVER,
        EXTERNAL_QUERY,
        EXTERNAL_QUERY_SNAPSHOTS,
        EXTERNAL_REVERT_SNAPSHOT,
        EXTERNAL_REVERT_PROGRESS,
        EXTERNAL_BREAK_SNAPSHOT,
        _EXTERNAL_METHOD_MAX,
        _EXTERNAL_METHOD_INVALID = -EINVAL,
} ExternalMethod;

/* "CommitSnapshots"; the member name in io.snapset.Provider. */
const char *external_method_to_string(ExternalMethod m);

/* The text of io.snapset.Provider, as built into snapsetd. */
const char *external_interface_description(void);

/* Validates one reply message to method m (any JSON object read from the provider):
 *   - a reply whose parameters match the method's return type: S_OK, *ret_parameters set
 *     (a new reference) when not NULL;
 *   - the error io.snapset.Provider.Failed with a valid hresult and message: the code of
 *     vss_code_from_hresult() (_VSS_CODE_INVALID for an HRESULT outside the table), res->hresult
 *     the raw value, res->message the provider's message (res->failed set from snapshotId when
 *     snapshots, n_snapshots name it);
 *   - anything else (not a varlink reply, continues, another error, missing or mistyped or
 *     unknown fields, a Failed error carrying a success code): VSS_E_UNEXPECTED_PROVIDER_ERROR
 *     with res->message "sent a malformed reply: ...".
 * Pure: no I/O, no logging. */
VssCode external_reply_check(ExternalMethod m, json_object *msg, ProviderSnapshot *const *snapshots,
                             size_t n_snapshots, json_object **ret_parameters, ProviderResult *res);

/* ---------------------------------------------------------------- the providers */

/* Reads the provider files of the directories (blank-separated absolute paths, earliest wins),
 * registers one provider per valid file (a bad file is logged, naming file:line:key, and
 * skipped), and starts each (OnLoad; a provider that fails to start is kept and retried at its
 * next use). Returns the number registered, or negative errno (only -ENOMEM). */
int external_providers_load(const char *directories, const ProviderSettings *settings);
/* OnUnload, then stops and unregisters every external provider. */
void external_providers_unload(void);
/* Gives providers unloaded after repeated failures another chance (SIGHUP). */
void external_providers_reset(void);

/* An fd that becomes readable when a provider wrote to its stderr (an epoll fd over every
 * provider's pipe), for the daemon's event loop; -EBADF if there are no external providers. */
int external_providers_event_fd(void);
/* Reads and logs what providers wrote; call when the event fd is readable. */
void external_providers_dispatch(void);

/* What ListProviders shows for p: its executable and "loaded", "failed" or "unloaded". False if
 * p is not an external provider. */
bool external_provider_info(const Provider *p, const char **ret_executable, const char **ret_state);
