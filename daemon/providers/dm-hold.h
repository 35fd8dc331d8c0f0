/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The origins a provider holds inside the window: suspended (skip-lockfs, after the
 * coordinator's FIFREEZE) before any commit, resumed after it, all at once from the share's crew
 * (window-crew.h). Shared by dm-snapshot and dm-thin, which differ only in their commit. Named by
 * device number, as the crew requires; nothing here allocates of its own or logs. */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "provider.h"
#include "window-crew.h"

/* Volume i's origin as the provider keeps it: its device number and where it records that the
 * origin is suspended. suspended is NULL for a volume whose origin the provider does not hold
 * (skipped). */
typedef struct DmHeld {
        unsigned major, minor;
        bool *suspended;
} DmHeld;

typedef DmHeld (*DmHeldOf)(ProviderSet *ps, size_t i);

/* Suspends the origins of volumes [0, n) with a flush (every acknowledged write is in what the
 * snapshot sees), each marked suspended once it is. Returns 0, or the first failure (by index,
 * in *ret_failed); every volume is tried. */
int dm_held_suspend(WindowCrew *crew, ProviderSet *ps, size_t n, DmHeldOf of, size_t *ret_failed);

/* Resumes every origin marked suspended (with cookie, and once more without it if that fails:
 * writers hang until it is resumed), and unmarks it. Returns 0 or the first failure. */
int dm_held_resume(WindowCrew *crew, ProviderSet *ps, DmHeldOf of, uint32_t *cookie, size_t *ret_failed);
