/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Scheduled sets (snapset-sets(5)): ListDefinitions, PruneSets, and the health GetStatus shows
 * (CreateDefinedSet is methods-defined-set.c). Definitions are read from the directory at every call (a few small files), so
 * an edit takes effect at once, and a broken file never hides the others. */

#include <inttypes.h>
#include <stdio.h>
#include <sys/stat.h>
#include <syslog.h>

#include "json-util.h"
#include "log.h"
#include "method-util.h"
#include "methods-schedule.h"
#include "methods-sets.h"
#include "schedule/calendar.h"
#include "schedule/definition.h"
#include "schedule/health.h"
#include "schedule/hooks.h"
#include "schedule/retention.h"
#include "sets.h"
#include "time-util.h"

static int oldest_first(const void *a, const void *b) {
        const SnapshotSet *x = *(SnapshotSet *const *) a, *y = *(SnapshotSet *const *) b;

        if (x->created_usec != y->created_usec)
                return x->created_usec < y->created_usec ? -1 : 1;
        return strcmp(x->id, y->id);
}

/* Sorted: the registry is in the order the records were read from disk after a restart. */
int schedule_sets_of(const Manager *m, const char *name, SnapshotSet ***ret, size_t *ret_n) {
        const SetRegistry *r = m->sets;
        SnapshotSet **l = calloc(r->n_sets ?: 1, sizeof *l);
        size_t n = 0;

        if (!l)
                return -ENOMEM;
        for (size_t i = 0; i < r->n_sets; i++)
                if (r->sets[i]->state == SET_STATE_CREATED && streq_ptr(r->sets[i]->definition, name))
                        l[n++] = r->sets[i];
        qsort(l, n, sizeof *l, oldest_first);
        *ret = l;
        *ret_n = n;
        return 0;
}

/* ---------------------------------------------------------------- health */

static int definition_health(const Manager *m, const SetDefinition *d, SnapshotSet **sets, size_t n, Health *ret) {
        HealthInput in = { .definition = d, .sets = sets, .n_sets = n, .now_usec = now_realtime_usec() };
        struct stat st;

        if (stat(d->path, &st) == 0)
                in.definition_changed_usec = (uint64_t) st.st_mtim.tv_sec * USEC_PER_SEC;
        if (!d->error && d->on_calendar && calendar_period_usec(d->on_calendar, &in.period_usec, &in.period_error) == -ENOMEM)
                return -ENOMEM;
        return health_check(&in, ret);
}

int schedule_space_events(Manager *m, const SetDefinition *d, SnapshotSet *const *sets, size_t n) {
        HealthInput in = { .definition = d, .sets = sets, .n_sets = n, .now_usec = now_realtime_usec() };
        _cleanup_(health_done) Health h = {};
        int r = health_check_space(&in, &h);

        if (r < 0)
                return r;
        for (char **msg = h.messages; *msg; msg++)
                sets_event(m, LOG_WARNING, "space-low", n > 0 ? sets[n - 1] : NULL, NULL,
                           "Set definition '%s': %s.", d->name, *msg);
        return 0;
}

static int health_json(const Health *h, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *msgs = json_object_new_array();
        int r;

        if (!o || !msgs)
                return -ENOMEM;
        for (char **s = h->messages; *s; s++) {
                r = json_append(msgs, json_object_new_string(*s));
                if (r < 0)
                        return r;
        }
        r = json_add_string(o, "status", health_status_to_string(h->status)) ?:
            json_add(o, "messages", TAKE_PTR(msgs));
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

/* {name, health} of every definition, for GetStatus: from the statuses the snapshots had at
 * their last query (GetStatus asks no provider). */
int schedule_health_json(const Manager *m, json_object **ret) {
        _cleanup_(definitions_done) DefinitionList l = {};
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        if (!a)
                return -ENOMEM;
        r = definitions_load(m->config.definition_directory, &l);
        if (r < 0)
                log_warning_errno(-r, "Cannot read the set definitions in %s: %s", m->config.definition_directory,
                                  strerror(-r));
        for (size_t i = 0; i < l.n; i++) {
                _cleanup_free_ SnapshotSet **sets = NULL;
                _cleanup_(health_done) Health h = {};
                json_object *o = NULL, *hj = NULL;
                size_t n;

                r = schedule_sets_of(m, l.items[i]->name, &sets, &n) ?:
                    definition_health(m, l.items[i], sets, n, &h) ?:
                    health_json(&h, &hj);
                if (r < 0)
                        return r;
                o = json_object_new_object();
                if (!o) {
                        json_object_put(hj);
                        return -ENOMEM;
                }
                /* json_add() and json_append() take their value, also when they fail. */
                r = json_add(o, "health", hj) ?: json_add_string(o, "name", l.items[i]->name);
                if (r < 0) {
                        json_object_put(o);
                        return r;
                }
                r = json_append(a, o);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

/* ---------------------------------------------------------------- ListDefinitions */

static int volumes_json(const SetDefinition *d, json_object **ret) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < d->n_volumes; i++) {
                json_object *v = json_object_new_object();
                int r = v ? 0 : -ENOMEM;

                r = r ?: json_add_string(v, "volume", d->volumes[i].path) ?:
                    (d->volumes[i].provider ? json_add_string(v, "provider", d->volumes[i].provider) : 0) ?:
                    (d->volumes[i].cow_size ? json_add_int(v, "cowSizeBytes", (int64_t) d->volumes[i].cow_size) : 0);
                if (r < 0) {
                        json_object_put(v);
                        return r;
                }
                r = json_append(a, v);
                if (r < 0)
                        return r;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

static int retention_json(const SetDefinition *d, json_object **ret) {
        const Retention *p = &d->retention;
        json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        r = r ?: json_add_int(o, "keepLast", p->keep_last) ?:
            json_add_int(o, "keepHourly", p->keep_hourly) ?:
            json_add_int(o, "keepDaily", p->keep_daily) ?:
            json_add_int(o, "keepWeekly", p->keep_weekly) ?:
            json_add_int(o, "keepMonthly", p->keep_monthly) ?:
            json_add_int(o, "keepYearly", p->keep_yearly) ?:
            json_add_int(o, "minAgeSec", (int64_t) (p->min_age_usec / USEC_PER_SEC)) ?:
            json_add(o, "pruneOnLowSpace", json_object_new_boolean(d->prune_on_low_space));
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

static int strv_json(char *const *l, json_object **ret) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        for (char *const *s = l; s && *s; s++)
                if (json_append(a, json_object_new_string(*s)) < 0)
                        return -ENOMEM;
        *ret = TAKE_PTR(a);
        return 0;
}

static int definition_json(const Manager *m, const SetDefinition *d, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        _cleanup_free_ SnapshotSet **sets = NULL;
        _cleanup_(health_done) Health h = {};
        _cleanup_(strv_freep) char **hooks = NULL;
        json_object *vols = NULL, *ret_j = NULL, *hooks_j = NULL, *health = NULL;
        size_t n;
        int r;

        if (!o)
                return -ENOMEM;
        r = schedule_sets_of(m, d->name, &sets, &n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++)
                sets_refresh_statuses(m, sets[i]->snapshots, sets[i]->n_snapshots);
        r = definition_health(m, d, sets, n, &h) ?: health_json(&h, &health);
        if (r < 0)
                return r;
        r = json_add(o, "health", health) ?:   /* first: it takes health, also when it fails */
            json_add_string(o, "name", d->name) ?:
            json_add_string(o, "file", d->path) ?:
            json_add_int(o, "sets", (int64_t) n) ?:
            (n > 0 ? json_add_int(o, "newestSetUsec", (int64_t) sets[n - 1]->created_usec) : 0);
        if (r < 0)
                return r;
        if (d->error) {
                r = json_add_string(o, "error", d->error);
                *ret = TAKE_PTR(o);
                return r;
        }
        r = hooks_list(d, m->config.hook_directory, &hooks) ?:
            volumes_json(d, &vols) ?:
            json_add(o, "volumes", vols) ?:
            retention_json(d, &ret_j) ?:
            json_add(o, "retention", ret_j) ?:
            strv_json(hooks, &hooks_j) ?:
            json_add(o, "hooks", hooks_j) ?:
            json_add_string(o, "hookFailure", d->hook_failure == HOOK_FAILURE_VETO ? "veto" : "warn") ?:
            (d->on_calendar ? json_add_string(o, "schedule", d->on_calendar) : 0) ?:
            (d->description ? json_add_string(o, "description", d->description) : 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int vl_method_list_definitions(MethodCall *mc, json_object *parameters) {
        _cleanup_(definitions_done) DefinitionList l = {};
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        int r;

        static const JsonDispatch none[] = { {} };
        char dummy;

        r = method_dispatch(mc, parameters, none, &dummy);
        if (r != 0)
                return r < 0 ? r : 0;
        if (!a)
                return -ENOMEM;
        r = definitions_load(mc->manager->config.definition_directory, &l);
        if (r < 0)
                return method_refuse(mc, E_FAIL, &(VssErrorFields) { .error = -r }, "Cannot read the set definitions in %s: %s",
                                     mc->manager->config.definition_directory, strerror(-r));
        for (size_t i = 0; i < l.n; i++) {
                json_object *o = NULL;

                r = definition_json(mc->manager, l.items[i], &o) ?: json_append(a, o);
                if (r < 0)
                        return r;
        }
        return method_reply_with(mc, "definitions", TAKE_PTR(a));
}

/* The definition called name, or the refusal replied (1). */
int schedule_find_definition(MethodCall *mc, const char *name, SetDefinition **ret) {
        _cleanup_(definitions_done) DefinitionList l = {};
        _cleanup_free_ char *path = NULL;
        SetDefinition *d;
        const char *dir = mc->manager->config.definition_directory;
        int r;

        if (!definition_name_is_valid(name))
                return method_refuse(mc, E_INVALIDARG, NULL, "'%s' is not a set definition name.", name) ?: 1;
        if (asprintf(&path, "%s/%s.conf", dir, name) < 0)
                return -ENOMEM;
        if (access(path, F_OK) < 0)
                return method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, NULL,
                                     "There is no set definition '%s' (no %s; 'snapsetctl sets' lists them).", name,
                                     path) ?: 1;
        r = definition_load(path, &d);
        if (r < 0)
                return r;
        if (d->error) {
                r = method_refuse(mc, E_INVALIDARG, NULL, "Set definition '%s' cannot be used: %s", name, d->error);
                definition_free(d);
                return r ?: 1;
        }
        *ret = d;
        return 0;
}

/* ---------------------------------------------------------------- PruneSets */

static int decision_json(const SnapshotSet *set, const RetentionItem *it, bool dry_run, VssCode code,
                         const SetOutcome *out, json_object **ret) {
        json_object *o = json_object_new_object();
        int r = o ? 0 : -ENOMEM;

        r = r ?: json_add_string(o, "setId", set ? set->id : it->id) ?:
            json_add_int(o, "createdUsec", (int64_t) it->created_usec) ?:
            json_add(o, "keep", json_object_new_boolean(it->keep)) ?:
            json_add_string(o, "reason", it->reason) ?:
            (!it->keep && !dry_run ? json_add(o, "deleted", json_object_new_boolean(code == S_OK)) : 0) ?:
            (!it->keep && !dry_run && code != S_OK ? json_add_string(o, "error", out->message) : 0);
        if (r < 0) {
                json_object_put(o);
                return r;
        }
        *ret = o;
        return 0;
}

int vl_method_prune_sets(MethodCall *mc, json_object *parameters) {
        struct { char *name; bool dry_run; } p = {};
        static const JsonDispatch table[] = {
                { "definition", JSON_DISPATCH_STRING,  0,              JSON_MANDATORY },
                { "dryRun",     JSON_DISPATCH_BOOL, sizeof(char *), JSON_NULLABLE },
                {}
        };
        _cleanup_(definition_freep) SetDefinition *d = NULL;
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();
        _cleanup_free_ SnapshotSet **sets = NULL;
        _cleanup_free_ RetentionItem *items = NULL;
        _cleanup_free_ SnapsetId *ids = NULL;
        Manager *m = mc->manager;
        size_t n = 0, deleted = 0, failed = 0;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = schedule_find_definition(mc, p.name, &d);
        free(p.name);
        if (r != 0)
                return r < 0 ? r : 0;
        r = schedule_sets_of(m, d->name, &sets, &n);
        if (r < 0)
                return r;
        items = calloc(n ?: 1, sizeof *items);
        ids = calloc(n ?: 1, sizeof *ids);
        if (!a || !items || !ids)
                return -ENOMEM;
        /* Ids copied: a set is freed when it is deleted. */
        for (size_t i = 0; i < n; i++) {
                memcpy(ids[i], sets[i]->id, sizeof(SnapsetId));
                items[i] = (RetentionItem) { .id = ids[i], .created_usec = sets[i]->created_usec };
        }
        r = retention_apply(&d->retention, now_realtime_usec(), items, n);
        if (r < 0)
                return r;
        for (size_t i = 0; i < n; i++) {
                SnapshotSet *set = sets_find_set(m, ids[i], NULL);
                SetOutcome out = {};
                VssCode code = S_OK;
                json_object *o = NULL;

                if (!items[i].keep && !p.dry_run && set) {
                        code = sets_delete_whole(m, set, NULL, &out);
                        deleted += code == S_OK;
                        failed += code != S_OK;
                }
                r = decision_json(NULL, &items[i], p.dry_run, code, &out, &o) ?: json_append(a, o);
                if (r < 0)
                        return r;
        }
        if (failed > 0)
                sets_event(m, LOG_WARNING, "sets-pruned", NULL, NULL,
                           "Set definition '%s': %zu set(s) pruned by its retention policy; %zu could not be deleted "
                           "(snapsetctl prune %s --dry-run shows them).", d->name, deleted, failed, d->name);
        else if (deleted > 0)
                sets_event(m, LOG_INFO, "sets-pruned", NULL, NULL,
                           "Set definition '%s': %zu set(s) pruned by its retention policy.", d->name, deleted);
        return method_reply_with(mc, "decisions", TAKE_PTR(a));
}
