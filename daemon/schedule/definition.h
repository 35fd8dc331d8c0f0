/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* Set definitions: /etc/snapset/sets.d/NAME.conf, "snapshot these volumes together on this
 * schedule, keep so many" (snapset-sets(5)). A systemd-style INI file read by ini.c:
 *
 *   [Set]        OnCalendar=, Context=persistent, Description=
 *   [Volume]     Path=, Provider=, CowSize=        (one section per volume, at least one)
 *   [Retention]  KeepLast=, KeepHourly=, KeepDaily=, KeepWeekly=, KeepMonthly=, KeepYearly=,
 *                MinAge=, PruneOnLowSpace=
 *   [Hooks]      Hook= (repeatable), HookTimeoutSec=, HookFailure=warn|veto, GlobalHooks=
 *   [Health]     WarnUsedPercent=, WarnAfterPeriods=, CriticalAfterPeriods=
 *
 * A file with an error gives a definition that carries the error ("FILE:LINE: Key=value: why")
 * and nothing else: it is never half-applied, and every other file still works. The same reader
 * serves snapsetd and snapset-generator, so that the timer and the daemon never disagree on what
 * a file says. */

#include <stdbool.h>
#include <stdint.h>

#include "macro.h"

#define DEFINITION_NAME_MAX 64
#define DEFINITION_DEFAULT_HOOK_TIMEOUT_SEC 30U
#define DEFINITION_DEFAULT_WARN_USED_PERCENT 80U

typedef struct DefinedVolume {
        char *path;
        char *provider;          /* NULL: the provider snapsetd chooses */
        uint64_t cow_size;       /* 0: the default */
} DefinedVolume;

typedef struct Retention {
        unsigned keep_last, keep_hourly, keep_daily, keep_weekly, keep_monthly, keep_yearly;
        uint64_t min_age_usec;
} Retention;

typedef enum HookFailure {
        HOOK_FAILURE_WARN,       /* a failed prepare hook is logged; the set is taken */
        HOOK_FAILURE_VETO,       /* ... and the set is not taken */
} HookFailure;

typedef struct SetDefinition {
        char *name;              /* the file's name without ".conf" */
        char *path;
        /* Why the file cannot be used, "FILE:LINE: Key=value: why"; when set, only name and
         * path are meaningful. */
        char *error;

        char *description;
        char *on_calendar;       /* as written; systemd parses it (snapset-generator) */
        DefinedVolume *volumes;
        size_t n_volumes;

        Retention retention;
        bool prune_on_low_space;

        char **hooks;            /* NULL-terminated, absolute paths; may be NULL */
        bool global_hooks;       /* also run the executables of the hook directory */
        uint64_t hook_timeout_usec;
        HookFailure hook_failure;

        unsigned warn_used_percent;
        double warn_after_periods, critical_after_periods;
} SetDefinition;

SetDefinition *definition_free(SetDefinition *d);
DEFINE_TRIVIAL_CLEANUP_FUNC(SetDefinition *, definition_free);

/* True for a name a definition file may have: letters, digits, '_', '-', '.', at most
 * DEFINITION_NAME_MAX, not starting with '.' or '-' (it becomes a systemd unit instance). */
bool definition_name_is_valid(const char *name);

/* Reads the definition in path (named after its file). Returns 0 with *ret set, the definition
 * carrying its error if the file has one; -ENOMEM otherwise. */
int definition_load(const char *path, SetDefinition **ret);

/* Every *.conf file of dir, sorted by name (a missing directory has none). Files whose names are
 * not valid definition names give definitions with an error saying so. */
typedef struct DefinitionList {
        SetDefinition **items;
        size_t n;
} DefinitionList;

int definitions_load(const char *dir, DefinitionList *ret);
void definitions_done(DefinitionList *l);
SetDefinition *definitions_find(const DefinitionList *l, const char *name);

/* Whether the definition has any Keep*= rule: without one, retention keeps everything. */
bool retention_is_set(const Retention *r);

/* "1h", "30min", "2d", "1w", "90s" or plain seconds, as systemd's time spans (single unit). */
int definition_parse_timespan(const char *s, uint64_t *ret_usec);
