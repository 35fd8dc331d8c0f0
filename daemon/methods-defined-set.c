/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* CreateDefinedSet: the set of a set definition (snapset-sets(5)), with its application hooks
 * around the freeze and, with PruneOnLowSpace=yes, room made by deleting the definition's oldest
 * sets when the set does not fit. The work runs as the set's job (job.h); what only the loop may
 * touch (the finished sets, the set in creation) it asks the loop for (manager_run_on_loop()). */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "log.h"
#include "method-util.h"
#include "methods-schedule.h"
#include "methods-sets.h"
#include "schedule/definition.h"
#include "schedule/hooks.h"
#include "schedule/retention.h"
#include "sets.h"
#include "time-util.h"

typedef struct DefinedJob {
        SetDefinition *definition;
        char *hook_directory;
        SetCreation *c;
        HookRun *runs;
        size_t n_runs, n_prepare;
        bool prepared;               /* the volumes were all added: the set ran, or was vetoed */
        bool vetoed;
        bool failed_to_add;          /* a provider refused a volume: j->out is the reply */
        char hook_error[256];        /* the hooks could not be listed: why */
        size_t n_pruned;             /* sets deleted to make room (PruneOnLowSpace=yes) */
        char first_pruned[SNAPSET_ID_LENGTH + 1];
        SnapsetId skipped[16];       /* sets that could not be deleted for room: not tried again */
        size_t n_skipped;
        VssCode code;
        SetOutcome out;
} DefinedJob;

static void defined_job_free(void *userdata) {
        DefinedJob *j = userdata;

        definition_free(j->definition);
        free(j->hook_directory);
        hook_runs_free(j->runs, j->n_runs);
        free(j);
}

static const HookRun *first_failed(const DefinedJob *j) {
        for (size_t i = 0; i < j->n_prepare; i++)
                if (!hook_run_succeeded(&j->runs[i]))
                        return &j->runs[i];
        return NULL;
}

static bool still_running(const DefinedJob *j) {
        for (size_t i = 0; i < j->n_prepare; i++)
                if (j->runs[i].still_running)
                        return true;
        return false;
}

/* The set is not taken: aborted before anything was frozen, with why. */
_printf_(3, 4) static void veto(DefinedJob *j, VssCode code, const char *format, ...) {
        va_list ap;

        set_creation_abort(j->c);
        j->vetoed = true;
        j->code = code;
        j->out = (SetOutcome) { .code = code };
        va_start(ap, format);
        vsnprintf(j->out.message, sizeof j->out.message, format, ap);
        va_end(ap);
}

static bool prepare_succeeded(const DefinedJob *j) {
        return !first_failed(j);
}

/* ---------------------------------------------------------------- PruneOnLowSpace= */

typedef struct RoomRequest {
        MethodCall *mc;
        DefinedJob *job;
        bool pruned;                 /* a set was deleted and a new creation started */
        char why_not[256];           /* else why not */
} RoomRequest;

/* Whether set holds a snapshot of volume (as the definition names it): the sets that do are the
 * ones whose deletion can make room for it. */
static bool holds_volume(const SnapshotSet *set, const char *volume) {
        for (size_t i = 0; i < set->n_snapshots; i++)
                if (streq_ptr(set->snapshots[i]->volume, volume))
                        return true;
        return false;
}

static bool skipped(const DefinedJob *j, const char *id) {
        for (size_t i = 0; i < j->n_skipped; i++)
                if (streq(j->skipped[i], id))
                        return true;
        return false;
}

/* The definition's set to delete for room, or NULL (retention_pick_for_space()): one that holds
 * a snapshot of the volume that does not fit, and that could not be deleted before. */
static SnapshotSet *set_to_prune(Manager *m, const DefinedJob *j, int *ret_error) {
        const SetDefinition *d = j->definition;
        _cleanup_free_ SnapshotSet **sets = NULL;
        _cleanup_free_ RetentionItem *items = NULL;
        uint64_t now = now_realtime_usec();
        size_t n;
        long pick;

        *ret_error = schedule_sets_of(m, d->name, &sets, &n);
        if (*ret_error < 0)
                return NULL;
        items = calloc(n ?: 1, sizeof *items);
        if (!items) {
                *ret_error = -ENOMEM;
                return NULL;
        }
        for (size_t i = 0; i < n; i++)
                items[i] = (RetentionItem) {
                        .id = sets[i]->id,
                        .created_usec = sets[i]->created_usec,
                        .not_for_space = skipped(j, sets[i]->id) ||
                                         (j->out.volume[0] && !holds_volume(sets[i], j->out.volume)),
                };
        *ret_error = retention_apply(&d->retention, now, items, n);
        if (*ret_error < 0)
                return NULL;
        pick = retention_pick_for_space(&d->retention, now, items, n);
        return pick < 0 ? NULL : sets[pick];
}

/* On the loop: deletes the oldest set that may go (one that cannot be deleted is passed over,
 * and the next one tried), and gives the job a new creation to try again with. */
static void make_room(Manager *m, void *userdata) {
        RoomRequest *q = userdata;
        DefinedJob *j = q->job;
        const SetDefinition *d = j->definition;
        char failure[sizeof q->why_not] = "";
        SnapsetId id;
        SetOutcome out;
        SnapshotSet *set;
        SetCreation *spent;
        int r;

        for (;;) {
                set = set_to_prune(m, j, &r);
                if (!set) {
                        snprintf(q->why_not, sizeof q->why_not, r < 0 ? "out of memory choosing a set to prune" :
                                 "no other set of it that holds a snapshot of %s may go (the newest is always kept, "
                                 "and none younger than MinAge=)%s%s", j->out.volume[0] ? j->out.volume : "the volume",
                                 failure[0] ? "; " : "", failure);
                        return;
                }
                memcpy(id, set->id, sizeof id);
                log_notice("Snapshot set %s of definition '%s' does not fit (%s); PruneOnLowSpace=yes: deleting set %s, "
                           "the oldest it may prune, and trying again.", set_creation_set(j->c)->id, d->name,
                           j->out.message, id);
                if (sets_delete_whole(m, set, NULL, &out) == S_OK)
                        break;
                snprintf(failure, sizeof failure, "set %s could not be deleted: %s", id, out.message);
                log_warning("Set %s of definition '%s' could not be deleted to make room: %s", id, d->name, out.message);
                if (j->n_skipped == ELEMENTSOF(j->skipped)) {
                        snprintf(q->why_not, sizeof q->why_not, "%s", failure);
                        return;
                }
                memcpy(j->skipped[j->n_skipped++], id, sizeof id);
        }
        if (j->n_pruned++ == 0)
                memcpy(j->first_pruned, id, sizeof id);
        sets_event(m, LOG_WARNING, "sets-pruned", NULL, NULL,
                   "Set definition '%s': set %s deleted to make room for a new set (PruneOnLowSpace=yes).", d->name, id);
        /* A new creation takes the lock from the failed one at once, on the loop: nothing comes
         * between. It can only fail for memory (no other set can be in creation); then the failed
         * one stays the job's, and its failure is the reply. */
        spent = sets_take_creation(m);
        r = sets_method_start(q->mc, "persistent", &j->c);
        if (r != 0) {
                m->sets->creation = spent;
                m->sets->creation_owner = q->mc->peer->connection_id;
                j->c = spent;
                snprintf(q->why_not, sizeof q->why_not, "a new set could not be started (%s)",
                         r < 0 ? strerror(-r) : "refused");
                return;
        }
        set_creation_free(spent);
        q->pruned = true;
}

/* The definition's volumes into the set in creation: 0, 1 (refused and replied), SETS_ADD_FAILED
 * (a provider refused a volume: j->code and j->out say why, not replied yet), or -errno. */
static int add_volumes(MethodCall *mc, DefinedJob *j) {
        const SetDefinition *d = j->definition;
        int r = 0;

        for (size_t i = 0; r == 0 && i < d->n_volumes; i++)
                r = sets_method_add(mc, j->c, d->volumes[i].path, d->volumes[i].provider, d->volumes[i].cow_size,
                                    NULL, &j->out);
        if (r == SETS_ADD_FAILED)
                j->code = j->out.code;
        return r;
}

/* The message of a set that does not fit: what the provider said, and what was or could be done. */
static void explain_no_room(DefinedJob *j, const char *why_not) {
        const SetDefinition *d = j->definition;
        char *msg = j->out.message;
        size_t len = strlen(msg), left;
        char *p;

        if (len > 0 && msg[len - 1] != '.' && len + 1 < sizeof j->out.message) {
                msg[len++] = '.';
                msg[len] = 0;
        }
        p = msg + len;
        left = sizeof j->out.message - len;

        if (!d->prune_on_low_space)
                snprintf(p, left, " Free space, or set PruneOnLowSpace=yes in %s so that the definition's oldest "
                         "sets make room.", d->path);
        else if (j->n_pruned == 0)
                snprintf(p, left, " PruneOnLowSpace=yes could not make room: %s.", why_not);
        else
                snprintf(p, left, " PruneOnLowSpace=yes deleted %zu set(s) of '%s' (the first %s) and it still "
                         "does not fit: %s.", j->n_pruned, d->name, j->first_pruned, why_not);
}

/* The volumes, before any hook: space is the providers' to judge, when they prepare a volume.
 * A volume that does not fit, with PruneOnLowSpace=yes: the set so far is aborted, the loop
 * deletes the definition's oldest prunable set and starts a new set, and the volumes are added
 * again, until they fit or nothing may go. Returns what add_volumes() does. */
static int take_volumes(MethodCall *mc, DefinedJob *j) {
        char why_not[256] = "";
        int r = add_volumes(mc, j);

        while (r == SETS_ADD_FAILED && j->code == VSS_E_INSUFFICIENT_STORAGE && j->definition->prune_on_low_space) {
                RoomRequest q = { .mc = mc, .job = j };
                int k;

                set_creation_abort(j->c);
                k = manager_run_on_loop(mc->manager, make_room, &q);
                if (k < 0 || !q.pruned) {
                        snprintf(why_not, sizeof why_not, "%s", k < 0 ? "snapsetd is stopping" : q.why_not);
                        break;
                }
                r = add_volumes(mc, j);
        }
        if (r == SETS_ADD_FAILED && j->code == VSS_E_INSUFFICIENT_STORAGE)
                explain_no_room(j, why_not);
        return r;
}

/* The job thread: volumes, prepare hooks, the set (unless vetoed), thaw and abort hooks. */
static void defined_work(MethodCall *mc, void *userdata) {
        DefinedJob *j = userdata;
        const SetDefinition *d = j->definition;
        _cleanup_(strv_freep) char **hooks = NULL;
        HookContext ctx = { .definition = d };
        int r;

        r = take_volumes(mc, j);
        if (r != 0) {
                if (r < 0)
                        (void) method_reply_errno(mc, r);
                set_creation_abort(j->c);
                j->failed_to_add = r == SETS_ADD_FAILED;
                return;
        }
        j->prepared = true;
        ctx.set = set_creation_set(j->c);   /* after take_volumes(): a new one if room was made */
        j->out = (SetOutcome) {};
        r = hooks_list(d, j->hook_directory, &hooks);
        if (r < 0 && r != -ENOMEM) {
                /* No hook can be known to have run: crash-consistent at best. */
                log_warning_errno(r, "Cannot list the hooks of set definition '%s' in %s: %m.", d->name, j->hook_directory);
                snprintf(j->hook_error, sizeof j->hook_error, "the hook directory %s cannot be read (%s)",
                         j->hook_directory, strerror(-r));
                r = 0;
        }
        if (r == 0)
                r = hooks_run(hooks, HOOK_PHASE_PREPARE, &ctx, &j->runs, &j->n_runs);
        j->n_prepare = j->n_runs;
        if (r < 0) {
                veto(j, E_OUTOFMEMORY, "Out of memory running the prepare hooks of set definition '%s': the set was "
                     "not taken.", d->name);
        } else if (still_running(j)) {
                veto(j, E_ABORT, "The prepare hook %s of set definition '%s' timed out and could not be confirmed "
                     "gone: no filesystem is frozen while a hook may run, so the set was not taken.",
                     first_failed(j)->path, d->name);
        } else if ((!prepare_succeeded(j) || j->hook_error[0]) && d->hook_failure == HOOK_FAILURE_VETO) {
                const HookRun *failed = first_failed(j);

                if (failed)
                        veto(j, E_ABORT, "The prepare hook %s of set definition '%s' %s and HookFailure=veto: the set was "
                             "not taken. Its output is in the journal (journalctl -u snapsetd).", failed->path, d->name,
                             failed->error ? "could not run" : failed->timed_out ? "timed out" : "failed");
                else
                        veto(j, E_ABORT, "Set definition '%s': %s, and HookFailure=veto: the set was not taken.", d->name,
                             j->hook_error);
        } else
                j->code = set_creation_do(j->c, &j->out);

        /* thaw always, abort on failure: no filesystem is frozen any more. */
        ctx.result = j->code == S_OK ? "created" : "failed";
        (void) hooks_run(hooks, HOOK_PHASE_THAW, &ctx, &j->runs, &j->n_runs);
        if (j->code != S_OK) {
                ctx.error = vss_code_name(j->code);
                (void) hooks_run(hooks, HOOK_PHASE_ABORT, &ctx, &j->runs, &j->n_runs);
        }
}

/* After the thaw: every run in the journal, its output with it; failures as events. */
static void log_hook_runs(Manager *m, const DefinedJob *j, const SnapshotSet *set) {
        for (size_t i = 0; i < j->n_runs; i++) {
                const HookRun *h = &j->runs[i];
                const char *phase = hook_phase_to_string(h->phase);
                bool ok = hook_run_succeeded(h);
                int prio = ok ? LOG_INFO : h->phase == HOOK_PHASE_PREPARE && j->vetoed ? LOG_ERR : LOG_WARNING;

                char what[96];

                if (h->error)
                        snprintf(what, sizeof what, "%s", h->error);
                else if (h->timed_out)
                        snprintf(what, sizeof what, "timed out after %" PRIu64 " s and was killed",
                                 j->definition->hook_timeout_usec / USEC_PER_SEC);
                else
                        snprintf(what, sizeof what, "failed with exit status %d", h->exit_status);
                if (!ok)
                        sets_event(m, prio, "hook-failed", set, NULL, "The %s hook %s of set definition '%s' %s.",
                                   phase, h->path, j->definition->name, what);
                log_full(prio, "Hook %s %s (set %s, definition '%s'): %s after %" PRIu64 " ms, exit status %d%s%s",
                         h->path, phase, set->id, j->definition->name, ok ? "succeeded" : "failed",
                         (h->finished_usec - h->started_usec) / USEC_PER_MSEC, h->exit_status,
                         h->output && h->output[0] ? "; output:\n" : "", h->output ? h->output : "");
        }
}

static int decorate_defined(SnapshotSet *set, void *userdata) {
        DefinedJob *j = userdata;

        if (!(set->definition = strdup(j->definition->name)))
                return -ENOMEM;
        set->application_consistent = j->n_prepare > 0 && prepare_succeeded(j) && !j->hook_error[0];
        return j->n_runs > 0 ? hook_runs_to_json(j->runs, j->n_runs, &set->hooks) : 0;
}

/* After a set that was taken: a pool or store of the definition past WarnUsedPercent= is an
 * event, not only a health finding, so that it reaches whoever watches the journal. */
static int space_events(Manager *m, const SetDefinition *d) {
        _cleanup_free_ SnapshotSet **sets = NULL;
        size_t n;
        int r = schedule_sets_of(m, d->name, &sets, &n);

        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                sets_refresh_statuses(m, sets[i]->snapshots, sets[i]->n_snapshots);
        return schedule_space_events(m, d, sets, n);
}

static void defined_finish(MethodCall *mc, void *userdata) {
        DefinedJob *j = userdata;

        if (!j->prepared) {   /* no hook ran; refused, and replied unless failed_to_add */
                if (j->failed_to_add)
                        (void) method_reply_errno(mc, sets_method_finish(mc, j->code, &j->out, NULL, NULL));
                else
                        set_creation_free(sets_take_creation(mc->manager));
                return;
        }
        log_hook_runs(mc->manager, j, set_creation_set(j->c));
        (void) method_reply_errno(mc, sets_method_finish(mc, j->code, &j->out, decorate_defined, j));
        if (j->code == S_OK)
                (void) space_events(mc->manager, j->definition);
}

int vl_method_create_defined_set(MethodCall *mc, json_object *parameters) {
        struct { char *name; } p = {};
        static const JsonDispatch table[] = {
                { "definition", JSON_DISPATCH_STRING, 0, JSON_MANDATORY },
                {}
        };
        DefinedJob *j = NULL;
        SetDefinition *d = NULL;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = schedule_find_definition(mc, p.name, &d);
        json_dispatch_done(table, &p);
        if (r != 0)
                return r < 0 ? r : 0;
        j = calloc(1, sizeof *j);
        if (!j || !(j->hook_directory = strdup(mc->manager->config.hook_directory))) {
                definition_free(d);
                free(j);
                return -ENOMEM;
        }
        j->definition = d;
        r = sets_method_start(mc, "persistent", &j->c);
        if (r == 0) {
                r = method_defer(mc, defined_work, defined_finish, j, defined_job_free);
                if (r < 0)   /* the job could not start: nothing was made yet */
                        set_creation_free(sets_take_creation(mc->manager));
                return r < 0 ? r : 0;
        }
        defined_job_free(j);
        return r < 0 ? r : 0;
}

