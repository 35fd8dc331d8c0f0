/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* How the built-in providers report: a VssCode for the coordinator, and the preallocated
 * ProviderResult filled with the errno, the volume concerned and a message an administrator can
 * act on. Shared by every built-in provider, so that they phrase and translate alike. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "macro.h"
#include "provider.h"

/* The VssCode for a negative errno from a system or library call: out of memory, no access, no
 * space; otherwise the caller's choice. */
VssCode provider_code_from_errno(int r, VssCode otherwise);

/* Fills res (the errno, which volume of the share failed, the formatted message followed by
 * ": <strerror>" when error is not 0) and returns code. Safe inside the freeze window: it formats
 * into the preallocated message, and strerrordesc_np() neither translates nor allocates. error
 * may be given positive or negative. */
VssCode provider_fail(ProviderResult *res, size_t index, int error, VssCode code, const char *format, ...)
        _printf_(5, 6);

/* Test hooks (SNAPSETD_TEST_HOOKS=fail-inside=PHASE:N, see ProviderSet.test_fail_method):
 * whether method must fail on the share's snapshot i, after the provider did its work on the
 * ones before; if so, res is filled and *ret_code set. Safe inside the window. */
bool provider_test_fails(const ProviderSet *ps, const char *method, size_t i, ProviderResult *res, VssCode *ret_code);

/* For the methods that work on all their snapshots at once (window-crew.h): how many of the
 * share's snapshots come before the one method must fail on, ps->n_snapshots if none. They are
 * done; then provider_test_fails() on that index. */
size_t provider_test_fail_at(const ProviderSet *ps, const char *method);

/* The crew of a provider's share (window-crew.h), made before the window for n volumes, once:
 * S_OK, or E_OUTOFMEMORY in res. */
typedef struct WindowCrew WindowCrew;
VssCode provider_window_crew_new(WindowCrew **crew, size_t n, ProviderResult *res);

/* "512 B", "1.5 GiB": sizes in messages. */
void provider_format_bytes(char *buf, size_t n, uint64_t bytes);
