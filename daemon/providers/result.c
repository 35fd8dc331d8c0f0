/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>

#include "result.h"
#include "window-crew.h"

VssCode provider_code_from_errno(int r, VssCode otherwise) {
        switch (r < 0 ? -r : r) {
        case ENOMEM:
                return E_OUTOFMEMORY;
        case EACCES:
        case EPERM:
                return E_ACCESSDENIED;
        case ENOSPC:
        case EDQUOT:
                return VSS_E_INSUFFICIENT_STORAGE;
        default:
                return otherwise;
        }
}

VssCode provider_fail(ProviderResult *res, size_t index, int error, VssCode code, const char *format, ...) {
        va_list ap;
        int n;

        res->error = error < 0 ? -error : error;
        res->failed = index;
        va_start(ap, format);
        n = vsnprintf(res->message, sizeof(res->message), format, ap);
        va_end(ap);
        if (error != 0 && n >= 0 && (size_t) n < sizeof(res->message)) {
                const char *e = strerrordesc_np(res->error);
                snprintf(res->message + n, sizeof(res->message) - (size_t) n, ": %s", e ?: "unknown error");
        }
        return code;
}

void provider_format_bytes(char *buf, size_t n, uint64_t bytes) {
        static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB", "PiB" };
        double v = (double) bytes;
        size_t u = 0;

        while (v >= 1024 && u + 1 < ELEMENTSOF(units)) {
                v /= 1024;
                u++;
        }
        if (u == 0)
                snprintf(buf, n, "%" PRIu64 " B", bytes);
        else
                snprintf(buf, n, "%.1f %s", v, units[u]);
}

bool provider_test_fails(const ProviderSet *ps, const char *method, size_t i, ProviderResult *res, VssCode *ret_code) {
        if (!ps->test_fail_method || !streq(ps->test_fail_method, method) || ps->test_fail_index != i)
                return false;
        *ret_code = provider_fail(res, i, EIO, VSS_E_PROVIDER_VETO,
                                  "failure injected by SNAPSETD_TEST_HOOKS inside %s, after %zu volume(s) of the "
                                  "provider's share; nothing to resolve, this is a test", method, i);
        return true;
}

size_t provider_test_fail_at(const ProviderSet *ps, const char *method) {
        if (!ps->test_fail_method || !streq(ps->test_fail_method, method) || ps->test_fail_index >= ps->n_snapshots)
                return ps->n_snapshots;
        return ps->test_fail_index;
}

VssCode provider_window_crew_new(WindowCrew **crew, size_t n, ProviderResult *res) {
        if (*crew)
                return S_OK;
        if (window_crew_new(n, crew) < 0)
                return provider_fail(res, SIZE_MAX, ENOMEM, E_OUTOFMEMORY,
                                     "No memory for the threads that suspend and resume the volumes");
        return S_OK;
}
