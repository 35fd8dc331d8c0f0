/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <inttypes.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <syslog.h>

#include "inflight.h"
#include "log.h"
#include "methods.h"
#include "providers/dm-leftovers.h"
#include "providers/dm.h"
#include "providers/external.h"
#include "providers/freeze-nesting.h"
#include "job.h"
#include "ratelimit.h"
#include "set-events.h"
#include "sets-expose.h"
#include "sets-revert.h"
#include "sets.h"
#include "store.h"
#include "varlink.h"

/* ---------------------------------------------------------------- events */

/* The daemon's event sink: the journal, with structured fields, and every Monitor client (from
 * the job thread, through the loop). */
static void daemon_sink(const SetEvent *e, void *userdata) {
        Manager *m = userdata;

        set_event_journal_sink(e, NULL);
        if (m)
                manager_post_event(m, e->type[0] ? e->type : e->priority <= LOG_WARNING ? "error" : "info",
                                   e->set_id[0] ? e->set_id : NULL, e->snapshot_id[0] ? e->snapshot_id : NULL,
                                   e->volume[0] ? e->volume : NULL, e->message);
}

void sets_event(Manager *m, int priority, const char *type, const SnapshotSet *set,
                      const Snapshot *snap, const char *format, ...) {
        SetEvent e;
        va_list ap;

        set_event_init(&e, priority, set ? set->id : NULL, snap ? snap->id : NULL,
                       snap ? snap->volume : NULL, snap ? snap->provider : NULL, NULL);
        snprintf(e.type, sizeof e.type, "%s", type);
        va_start(ap, format);
        vsnprintf(e.message, sizeof e.message, format, ap);
        va_end(ap);
        /* Queued while a job holds the events (inside its window): /var may be frozen. */
        set_events_emit(&e, daemon_sink, m);
}

/* ---------------------------------------------------------------- configuration */

/* SNAPSETD_TEST_HOOKS="fail=PHASE:INDEX", "fail-inside=holding|committing:INDEX",
 * "kill=PHASE", "kill-all=PHASE", "kill=first-freeze", "kill=half-thawed" or
 * "kill=revert-committed": lets the test suites make a phase fail on the nth volume (before its
 * provider is called, or inside the provider, after it did the volumes before), kill the daemon
 * inside the window (kill-all: with its thaw guardian, as "systemctl kill --signal=KILL" would),
 * or in the middle of a revert. Ignored (with a warning) when
 * malformed; never set in production units. */
static void parse_test_hooks_text(CoordinatorTestHooks *h, const char *e) {
        char phase[32];
        unsigned index = 0;

        *h = (CoordinatorTestHooks) { .fail_phase = _SET_PHASE_INVALID, .kill_phase = _SET_PHASE_INVALID,
                                      .fail_inside_phase = _SET_PHASE_INVALID };
        if (!e || !*e)
                return;
        for (SetPhase p = 0; p < _SET_PHASE_MAX; p++) {
                snprintf(phase, sizeof phase, "fail=%s:", set_phase_to_string(p));
                if (startswith(e, phase) && sscanf(e + strlen(phase), "%u", &index) == 1) {
                        h->fail_phase = p;
                        h->fail_index = index;
                }
                snprintf(phase, sizeof phase, "kill=%s", set_phase_to_string(p));
                if (streq(e, phase))
                        h->kill_phase = p;
                snprintf(phase, sizeof phase, "kill-all=%s", set_phase_to_string(p));
                if (streq(e, phase)) {
                        h->kill_phase = p;
                        h->kill_all = true;
                }
                snprintf(phase, sizeof phase, "fail-inside=%s:", set_phase_to_string(p));
                if ((p == SET_PHASE_HOLDING || p == SET_PHASE_COMMITTING) && startswith(e, phase) &&
                    sscanf(e + strlen(phase), "%u", &index) == 1) {
                        h->fail_inside_phase = p;
                        h->fail_inside_index = index;
                }
        }
        h->kill_after_first_freeze = streq(e, "kill=first-freeze");
        h->kill_after_first_thaw = streq(e, "kill=half-thawed");
        h->kill_after_revert_commit = streq(e, "kill=revert-committed");
        if (h->fail_phase < 0 && h->kill_phase < 0 && h->fail_inside_phase < 0 &&
            !h->kill_after_first_freeze && !h->kill_after_first_thaw && !h->kill_after_revert_commit)
                log_warning("SNAPSETD_TEST_HOOKS=%s not understood; ignoring it.", e);
        else
                log_warning("SNAPSETD_TEST_HOOKS=%s is set: snapshot sets will fail on purpose. "
                            "This is for the test suites only.", e);
}

/* SNAPSETD_TEST_HOOKS, or the first line of the file SNAPSETD_TEST_HOOKS_FILE names, re-read
 * at every set (so that a test suite changes the hooks without restarting the daemon; the file
 * is in /run, never frozen, and read before the window). */
static void parse_test_hooks(CoordinatorTestHooks *h) {
        const char *path = getenv("SNAPSETD_TEST_HOOKS_FILE");
        char line[128] = "";
        FILE *f;

        if (!path) {
                parse_test_hooks_text(h, getenv("SNAPSETD_TEST_HOOKS"));
                return;
        }
        f = fopen(path, "re");
        if (f) {
                if (!fgets(line, sizeof line, f))
                        line[0] = 0;
                fclose(f);
        }
        line[strcspn(line, "\n")] = 0;
        parse_test_hooks_text(h, line);
}

int sets_apply_config(Manager *m) {
        SetRegistry *r = m->sets;

        r->settings = (ProviderSettings) {
                .cow_directory = m->config.cow_directory,
                .default_cow_size = m->config.default_cow_size_bytes,
                .default_cow_percent = m->config.default_cow_size_percent,
                .run_directory = m->runtime_directory,
                .hold_timeout_usec = (uint64_t) m->config.hold_timeout_sec * USEC_PER_SEC,
                .thin_pool_max_used_percent = m->config.thin_pool_max_used_percent,
                .lvm_thin_classic = m->config.lvm_thin_classic,
        };
        freeze_nesting_set_directory(m->runtime_directory);
        /* A reload gives external providers unloaded after repeated failures another chance. */
        external_providers_reset();
        return 0;
}

static void phase_changed(void *userdata) {
        job_runner_wake(userdata);
}

const CoordinatorTestHooks *sets_test_hooks(const Manager *m) {
        if (getenv("SNAPSETD_TEST_HOOKS_FILE"))
                parse_test_hooks(&m->sets->hooks);
        return &m->sets->hooks;
}

void sets_coordinator_options(const Manager *m, CoordinatorOptions *ret) {
        SetRegistry *r = m->sets;

        (void) sets_test_hooks(m);

        *ret = (CoordinatorOptions) {
                .flush_timeout_usec = (uint64_t) m->config.flush_timeout_sec * USEC_PER_SEC,
                .hold_timeout_usec = (uint64_t) m->config.hold_timeout_sec * USEC_PER_SEC,
                .settings = &r->settings,
                .inflight_directory = r->inflight_directory,
                .lock_memory = true,
                .sink = daemon_sink,
                .sink_userdata = (void *) m,
                .phase_changed = m->jobs ? phase_changed : NULL,
                .phase_userdata = m->jobs,
                .hooks = r->hooks,
        };
}

/* Monitor clients learn of every phase the set in creation enters ("set-phase"), in order; the
 * job thread only wakes the loop (phase_changed), and the loop sends them from the phase log. */
void sets_announce_phases(Manager *m) {
        SetRegistry *r = m->sets;
        const SnapshotSet *s;

        if (!r || !r->creation)
                return;
        s = set_creation_set(r->creation);
        for (size_t n = set_creation_n_phases(r->creation); r->phases_announced < n; r->phases_announced++) {
                const char *phase = set_phase_to_string(set_creation_phase_at(r->creation, r->phases_announced));
                char message[128];

                snprintf(message, sizeof message, "Snapshot set %s: %s.", s->id, phase);
                manager_send_phase_event(m, s->id, phase, message);
        }
}

/* ---------------------------------------------------------------- the registry */

static int registry_append(SetRegistry *r, SnapshotSet *set, uint64_t owner) {
        SnapshotSet **s = reallocarray(r->sets, r->n_sets + 1, sizeof(SnapshotSet *));
        uint64_t *o;

        if (!s)
                return -ENOMEM;
        r->sets = s;
        o = reallocarray(r->owners, r->n_sets + 1, sizeof(uint64_t));
        if (!o)
                return -ENOMEM;
        r->owners = o;
        r->sets[r->n_sets] = set;
        r->owners[r->n_sets] = owner;
        r->n_sets++;
        return 0;
}

static void registry_remove(SetRegistry *r, size_t i) {
        snapshot_set_free(r->sets[i]);
        memmove(r->sets + i, r->sets + i + 1, (r->n_sets - i - 1) * sizeof(SnapshotSet *));
        memmove(r->owners + i, r->owners + i + 1, (r->n_sets - i - 1) * sizeof(uint64_t));
        r->n_sets--;
}

SnapshotSet *sets_find_set(const Manager *m, const char *set_id, size_t *ret_index) {
        const SetRegistry *r = m->sets;

        for (size_t i = 0; set_id && i < r->n_sets; i++)
                if (strcasecmp(r->sets[i]->id, set_id) == 0) {
                        if (ret_index)
                                *ret_index = i;
                        return r->sets[i];
                }
        return NULL;
}

Snapshot *sets_find_snapshot(const Manager *m, const char *snapshot_id, SnapshotSet **ret_set) {
        const SetRegistry *r = m->sets;

        for (size_t i = 0; snapshot_id && i < r->n_sets; i++) {
                Snapshot *s = snapshot_set_find(r->sets[i], snapshot_id);
                if (s) {
                        if (ret_set)
                                *ret_set = r->sets[i];
                        return s;
                }
        }
        return NULL;
}

size_t sets_count(const Manager *m) {
        return m->sets ? m->sets->n_sets : 0;
}

size_t sets_count_snapshots(const Manager *m) {
        size_t n = 0;

        for (size_t i = 0; i < sets_count(m); i++)
                n += m->sets->sets[i]->n_snapshots;
        return n;
}

size_t sets_count_snapshots_of(const Manager *m, dev_t device) {
        size_t n = 0;

        for (size_t i = 0; i < sets_count(m); i++)
                for (size_t j = 0; j < m->sets->sets[i]->n_snapshots; j++)
                        n += m->sets->sets[i]->snapshots[j]->volume_device == device;
        return n;
}

int sets_in_progress_json(const Manager *m, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL, *vols = NULL;
        _cleanup_(strv_freep) char **volumes = NULL;
        SetCreation *c = m->sets ? m->sets->creation : NULL;
        const SnapshotSet *s;

        if (!c) {
                *ret = NULL;
                return 0;
        }
        /* A job may be running the set: what is read here is safe from another thread. */
        s = set_creation_set(c);
        volumes = set_creation_volumes(c);
        o = json_object_new_object();
        vols = json_object_new_array();
        if (!o || !vols || !volumes)
                return -ENOMEM;
        for (char **v = volumes; *v; v++)
                if (json_object_array_add(vols, json_object_new_string(*v)) < 0)
                        return -ENOMEM;
        if (json_object_object_add(o, "id", json_object_new_string(s->id)) < 0 ||
            json_object_object_add(o, "context", json_object_new_string(set_context_to_string(s->context))) < 0 ||
            json_object_object_add(o, "volumes", TAKE_PTR(vols)) < 0 ||
            json_object_object_add(o, "phase", json_object_new_string(set_phase_to_string(set_creation_phase(c)))) < 0 ||
            json_object_object_add(o, "startedUsec", json_object_new_int64((int64_t) set_creation_started_usec(c))) < 0)
                return -ENOMEM;
        *ret = TAKE_PTR(o);
        return 0;
}

static const char *creation_id(const Manager *m) {
        return m->sets && m->sets->creation ? set_creation_set(m->sets->creation)->id : NULL;
}

/* What a list of records looks like in GetStatus and Cleanup: [{setId, message}]. */
static int attention_json(const InflightEntry *e, size_t n, json_object **ret) {
        _cleanup_(json_object_putp) json_object *a = json_object_new_array();

        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *o = json_object_new_object();

                if (!o || json_object_array_add(a, o) < 0) {
                        json_object_put(o);
                        return -ENOMEM;
                }
                if (json_object_object_add(o, "setId", json_object_new_string(e[i].set_id)) < 0 ||
                    json_object_object_add(o, "message", json_object_new_string(e[i].attention)) < 0)
                        return -ENOMEM;
        }
        *ret = TAKE_PTR(a);
        return 0;
}

int sets_attention_json(const Manager *m, json_object **ret) {
        InflightEntry *e = NULL;
        size_t n = 0;
        int r;

        r = inflight_list(m->sets ? m->sets->inflight_directory : NULL, creation_id(m), &e, &n);
        if (r < 0)
                return r;
        r = attention_json(e, n, ret);
        inflight_entries_free(e, n);
        return r;
}

int sets_cleanup(Manager *m, unsigned *ret_undone, json_object **ret_remaining) {
        SetRegistry *r = m->sets;
        unsigned kept = 0;
        int k;

        /* The set in creation has a record too: it is not a leftover. */
        k = inflight_recover(r->inflight_directory, creation_id(m), &r->settings, daemon_sink, NULL, &kept);
        if (k < 0)
                return k;
        *ret_undone = (unsigned) k - kept;
        if (*ret_undone > 0)
                log_notice("Cleanup undid %u snapshot set(s) left by an interrupted run or a failed abort.", *ret_undone);
        return sets_attention_json(m, ret_remaining);
}

/* ---------------------------------------------------------------- deleting */

static VssCode delete_through_provider(Manager *m, Snapshot *snap, SetOutcome *out) {
        const Provider *p = provider_by_name(snap->provider);
        ProviderResult res = { .failed = SIZE_MAX };
        VssCode code;

        if (!p || !p->ops->delete_snapshot) {
                snprintf(out->message, sizeof out->message,
                         "Provider '%s' of snapshot %s is not available here; its devices stay.",
                         snap->provider, snap->id);
                out->code = VSS_E_PROVIDER_NOT_REGISTERED;
                return out->code;
        }
        code = p->ops->delete_snapshot(snap, &m->sets->settings, &res);
        return coordinator_check_code(p->name, "DeleteSnapshots", code, &res, NULL, daemon_sink, m, out);
}

VssCode sets_delete_snapshot(Manager *m, SnapshotSet *set, Snapshot *snap, SetOutcome *out) {
        VssCode code;

        /* A failed revert (sets-revert.c) may be deleted: that is the way out of it. */
        if (snap->revert && !streq(snap->revert, "failed"))
                return sets_outcome(out, VSS_E_REVERT_IN_PROGRESS, 0, snap, "Snapshot %s is being merged into '%s' "
                                    "(%s); it goes by itself when the merge is done", snap->id, snap->volume,
                                    snap->revert);
        /* Exposed: unmounted first, unless something uses it (then nothing is deleted). */
        code = sets_unexpose(m, set, snap, /* lazy= */ false, out);
        if (code != S_OK)
                return code;
        *out = (SetOutcome) {};
        code = delete_through_provider(m, snap, out);
        if (code != S_OK) {
                snprintf(out->volume, sizeof out->volume, "%s", snap->volume);
                snprintf(out->snapshot_id, sizeof out->snapshot_id, "%s", snap->id);
                return code;
        }
        sets_event(m, LOG_INFO, "snapshot-deleted", set, snap, "Snapshot %s of '%s' (set %s) deleted.",
                   snap->id, snap->volume, set->id);
        sets_forget_snapshot(m, set, snap);
        return S_OK;
}

VssCode sets_outcome(SetOutcome *out, VssCode code, int error, const Snapshot *snap, const char *format, ...) {
        va_list ap;

        *out = (SetOutcome) { .code = code, .error = error < 0 ? -error : error };
        if (snap) {   /* NULL: the failure concerns no one snapshot (out of memory, say) */
                snprintf(out->volume, sizeof out->volume, "%s", snap->volume);
                snprintf(out->snapshot_id, sizeof out->snapshot_id, "%s", snap->id);
                snprintf(out->provider, sizeof out->provider, "%s", strempty(snap->provider));
        }
        va_start(ap, format);
        vsnprintf(out->message, sizeof out->message, format, ap);
        va_end(ap);
        return code;
}

VssCode sets_provider_failure(Manager *m, const Snapshot *snap, const char *method, VssCode code,
                              const ProviderResult *res, SetOutcome *out) {
        const Provider *p = provider_by_name(snap->provider);
        const char *detail = res->message[0] ? res->message : vss_code_message(code);

        /* An external provider's code is checked like in a set (architecture §1.4): outside the
         * provider table it becomes VSS_E_UNEXPECTED_PROVIDER_ERROR, and the event names the
         * provider and the method. VSS_E_NOT_SUPPORTED without an HRESULT is the daemon's own
         * verdict on a provider without the method. The built-ins' codes are the daemon's. */
        if (!p || !streq(p->kind, "external") || (code == VSS_E_NOT_SUPPORTED && !res->hresult))
                return sets_outcome(out, code, res->error, snap, "%s", detail);
        code = coordinator_check_code(p->name, method, code, res, NULL, daemon_sink, m, out);
        snprintf(out->volume, sizeof out->volume, "%s", snap->volume);
        snprintf(out->snapshot_id, sizeof out->snapshot_id, "%s", snap->id);
        return code;
}

void sets_forget_snapshot(Manager *m, SnapshotSet *set, Snapshot *snap) {
        SetRegistry *r = m->sets;
        size_t set_index, snap_index = SIZE_MAX;
        int k;

        for (size_t i = 0; i < set->n_snapshots; i++)
                if (set->snapshots[i] == snap)
                        snap_index = i;
        snapshot_set_remove(set, snap_index);
        (void) sets_find_set(m, set->id, &set_index);

        if (set->n_snapshots > 0) {
                k = store_save_set(m->state_directory, set);
                if (k < 0)
                        log_warning_errno(k, "Failed to update the record of set %s: %m", set->id);
                return;
        }
        k = store_remove_set(m->state_directory, set->id);
        if (k < 0 && k != -ENOENT)
                log_warning_errno(k, "Failed to remove the record of set %s: %m", set->id);
        registry_remove(r, set_index);
}

void sets_prepare_delete(Manager *m, const SnapshotSet *set) {
        size_t n;
        const Provider *const *builtins = provider_builtins(&n);

        /* Built-in providers only: an external one is asked about each snapshot on its own. */
        for (size_t k = 0; k < n; k++) {
                const Provider *p = builtins[k];
                _cleanup_free_ Snapshot **mine = NULL;
                size_t n_mine = 0;

                if (!p->ops->prepare_delete)
                        continue;
                mine = calloc(set->n_snapshots + 1, sizeof(Snapshot *));
                if (!mine)
                        return;
                /* Not a snapshot being reverted: its delete refuses, or, for a failed revert,
                 * takes the careful way, one by one. */
                for (size_t i = 0; i < set->n_snapshots; i++)
                        if (streq_ptr(set->snapshots[i]->provider, p->name) && !set->snapshots[i]->revert)
                                mine[n_mine++] = set->snapshots[i];
                if (n_mine > 1)
                        p->ops->prepare_delete(mine, n_mine, &m->sets->settings);
        }
}

/* Deletes every snapshot of the set at index i (used for backup sets going with their client). */
static void delete_whole_set(Manager *m, size_t i, const char *why) {
        SnapshotSet *set = m->sets->sets[i];
        char id[SNAPSET_ID_LENGTH + 1];

        memcpy(id, set->id, sizeof id);
        log_info("Deleting backup set %s: %s.", id, why);
        sets_prepare_delete(m, set);
        while (set->n_snapshots > 0) {
                SetOutcome out;
                size_t n = set->n_snapshots;

                if (sets_delete_snapshot(m, set, set->snapshots[0], &out) != S_OK) {
                        log_error("Could not delete snapshot %s of backup set %s: %s", set->snapshots[0]->id,
                                  id, out.message);
                        break;
                }
                if (n == 1)
                        return;   /* the set is gone with its last snapshot */
        }
}

/* ---------------------------------------------------------------- ownership */

SetCreation *sets_take_creation(Manager *m) {
        SetRegistry *r = m->sets;

        sets_announce_phases(m);
        r->creation_owner = 0;
        r->phases_announced = 0;
        return TAKE_PTR(r->creation);
}

static void abort_creation(Manager *m, const char *why) {
        SetRegistry *r = m->sets;
        const SnapshotSet *s = set_creation_set(r->creation);

        log_notice("Aborting snapshot set %s in creation: %s.", s->id, why);
        sets_event(m, LOG_NOTICE, "set-aborted", s, NULL, "Snapshot set %s aborted: %s.", s->id, why);
        set_creation_abort(r->creation);
        set_creation_free(sets_take_creation(m));
}

void sets_connection_closed(Manager *m, uint64_t connection_id) {
        SetRegistry *r = m->sets;

        if (!r || connection_id == 0)
                return;
        if (r->creation && r->creation_owner == connection_id)
                abort_creation(m, "its client disconnected before DoSnapshotSet");
        for (size_t i = r->n_sets; i-- > 0;)
                if (r->owners[i] == connection_id)
                        delete_whole_set(m, i, "the client that created it (backup context) disconnected");
}

bool sets_connection_owns(const Manager *m, uint64_t connection_id) {
        const SetRegistry *r = m->sets;

        if (!r)
                return false;
        if (r->creation && r->creation_owner == connection_id)
                return true;
        for (size_t i = 0; i < r->n_sets; i++)
                if (r->owners[i] == connection_id)
                        return true;
        return false;
}

uint64_t sets_idle_deadline(const Manager *m) {
        const SetRegistry *r = m->sets;

        /* A set whose job runs is not idle: the clock starts again when the job is done. */
        if (!r || !r->creation || m->config.set_idle_timeout_sec == 0 || manager_job_busy(m))
                return UINT64_MAX;
        return r->creation_activity + (uint64_t) m->config.set_idle_timeout_sec * USEC_PER_SEC;
}

void sets_check_idle(Manager *m, uint64_t now) {
        char why[128];

        if (sets_idle_deadline(m) > now)
                return;
        snprintf(why, sizeof why, "no call for %u s (SetIdleTimeoutSec=)", m->config.set_idle_timeout_sec);
        abort_creation(m, why);
}

/* ---------------------------------------------------------------- adding */

int sets_add(Manager *m, SnapshotSet *set, uint64_t owner) {
        int r;

        r = store_save_set(m->state_directory, set);
        if (r >= 0)
                r = registry_append(m->sets, set, set->context == SET_CONTEXT_BACKUP ? owner : 0);
        /* Recorded now (or deleted again below): its in-flight record, kept until here so that a
         * crash before the set reached the state directory is undone at the next start, goes. */
        inflight_remove(m->sets->inflight_directory, set->id);
        if (r < 0) {
                /* Unrecorded snapshots would be invisible to every later call: undo them. */
                log_error_errno(r, "Failed to record snapshot set %s in %s, deleting its snapshots: %m",
                                set->id, m->state_directory);
                for (size_t i = 0; i < set->n_snapshots; i++) {
                        SetOutcome out = {};
                        (void) delete_through_provider(m, set->snapshots[i], &out);
                }
                (void) store_remove_set(m->state_directory, set->id);
                return r;
        }
        sets_event(m, LOG_INFO, "set-created", set, NULL, "Snapshot set %s recorded (%s, %zu snapshots).",
                  set->id, set_context_to_string(set->context), set->n_snapshots);
        return 0;
}

/* ---------------------------------------------------------------- startup */

static int load_one(SnapshotSet *set, void *userdata) {
        Manager *m = userdata;
        int r;

        r = registry_append(m->sets, set, 0);
        if (r < 0)
                snapshot_set_free(set);
        return r;
}

static void load_bad(const char *path, int error, void *userdata) {
        log_error_errno(error, "Ignoring the unreadable record %s: %m. Its snapshots, if any, are not "
                        "managed until it is repaired or removed.", path);
}

/* Drops snapshot j of the set at index i from the registry and its record (the set too, with
 * its last snapshot), without touching any device: for a snapshot that no longer exists. */
static void forget_snapshot(Manager *m, size_t i, size_t j) {
        SnapshotSet *set = m->sets->sets[i];
        int k;

        snapshot_set_remove(set, j);
        if (set->n_snapshots > 0) {
                k = store_save_set(m->state_directory, set);
                if (k < 0)
                        log_warning_errno(k, "Failed to update the record of set %s: %m", set->id);
                return;
        }
        k = store_remove_set(m->state_directory, set->id);
        if (k < 0 && k != -ENOENT)
                log_warning_errno(k, "Failed to remove the record of set %s: %m", set->id);
        registry_remove(m->sets, i);
}

/* Snapshot j of set i brought back (after a reboot its devices are gone). One that no longer
 * exists at all (its provider says so: an LV removed with lvremove, a thin id deleted) is
 * reported and forgotten; one that is only not available yet stays recorded. Returns whether
 * set i went with it (it was its last snapshot). */
static bool activate_one(Manager *m, size_t i, size_t j) {
        SetRegistry *r = m->sets;
        SnapshotSet *set = r->sets[i];
        Snapshot *snap = set->snapshots[j];
        const Provider *p = provider_by_name(snap->provider);
        ProviderResult res = { .failed = SIZE_MAX };
        bool was_invalid = snap->invalid, last = set->n_snapshots == 1;
        SetOutcome out = {};
        VssCode code;

        if (!p || !p->ops->activate_snapshot)
                return false;
        code = p->ops->activate_snapshot(snap, &r->settings, &res);
        if (code == S_OK && snap->invalid && !was_invalid) {
                /* Never re-armed silently: it says why, and stays invalid. */
                sets_event(m, LOG_WARNING, "snapshot-invalid", set, snap, "Snapshot %s of '%s' (set %s) "
                          "is invalid: %s.", snap->id, snap->volume, set->id, res.message);
                if (store_save_set(m->state_directory, set) < 0)
                        log_warning("Could not record that snapshot %s is invalid; it is found "
                                    "again at the next start.", snap->id);
                return false;
        }
        if (code != S_OK && res.snapshot_gone) {
                sets_event(m, LOG_WARNING, "snapshot-gone", set, snap, "Snapshot %s of '%s' (set %s) "
                          "no longer exists and is forgotten: %s", snap->id, snap->volume, set->id,
                          res.message);
                forget_snapshot(m, i, j);
                return last;
        }
        code = coordinator_check_code(p->name, "ActivateSnapshot", code, &res, set, daemon_sink, m, &out);
        if (code != S_OK)
                log_error("Snapshot %s of '%s' could not be activated: %s", snap->id, snap->volume,
                          out.message);
        return false;
}

/* Snapshots being reverted are activated last (pass 1): a merge writes into its origin, and a
 * snapshot of the same origin must copy those writes, so it must be armed first. */
static bool activation_pass_is(const Snapshot *snap, int pass) {
        return (snap->revert != NULL) == (pass == 1);
}

/* Every persistent snapshot's devices back, newest sets first. */
static void activate_all(Manager *m) {
        SetRegistry *r = m->sets;

        for (int pass = 0; pass < 2; pass++)
                for (size_t i = r->n_sets; i-- > 0;)
                        for (size_t j = r->sets[i]->n_snapshots; j-- > 0;)
                                if (activation_pass_is(r->sets[i]->snapshots[j], pass) && activate_one(m, i, j))
                                        break;
}

/* Adopts an orphan into its set (made anew if the registry does not have it), recorded. */
static int adopt_orphan(Manager *m, const Provider *p, ProviderOrphan *o) {
        _cleanup_(snapshot_set_freep) SnapshotSet *fresh = NULL;
        SnapshotSet *set = sets_find_set(m, o->set_id, NULL);
        Snapshot *snap;
        struct stat st;
        int r;

        if (!set) {
                r = snapshot_set_new(SET_CONTEXT_PERSISTENT, &fresh);
                if (r < 0)
                        return r;
                memcpy(fresh->id, o->set_id, sizeof fresh->id);
                fresh->state = SET_STATE_CREATED;
                fresh->created_usec = o->created_usec;
                set = fresh;
        }
        r = snapshot_set_add(set, o->volume, o->volume, stat(o->volume, &st) >= 0 ? st.st_rdev : 0, p->name, &snap);
        if (r < 0)
                return r;
        memcpy(snap->id, o->snapshot_id, sizeof snap->id);
        if (o->created_usec)
                snap->created_usec = o->created_usec;
        snap->provider_data = TAKE_PTR(o->provider_data);
        r = store_save_set(m->state_directory, set);
        if (r < 0)
                return r;
        if (fresh) {
                r = registry_append(m->sets, fresh, 0);
                if (r < 0)
                        return r;
                TAKE_PTR(fresh);
        }
        return 0;
}

/* Deletes an orphan through its provider. */
static void delete_orphan(Manager *m, const Provider *p, ProviderOrphan *o) {
        _cleanup_(snapshot_set_freep) SnapshotSet *tmp = NULL;
        ProviderResult res = { .failed = SIZE_MAX };
        Snapshot *snap;

        if (snapshot_set_new(SET_CONTEXT_BACKUP, &tmp) < 0 ||
            snapshot_set_add(tmp, o->volume, o->volume, 0, p->name, &snap) < 0)
                return;
        memcpy(snap->id, o->snapshot_id, sizeof snap->id);
        snap->provider_data = TAKE_PTR(o->provider_data);
        if (p->ops->delete_snapshot(snap, &m->sets->settings, &res) != S_OK)
                log_error("Could not delete snapshot %s of '%s', left without a record: %s", snap->id, o->volume,
                          res.message);
}

/* Snapshots a provider made that no record names: adopted (persistent), or deleted (backup, or
 * never finished). */
static void reconcile_orphans(Manager *m) {
        _cleanup_free_ Snapshot **known = NULL;
        size_t n_known = 0, n_providers;
        const Provider *const *providers = provider_builtins(&n_providers);

        known = calloc(sets_count_snapshots(m) + 1, sizeof(Snapshot *));
        if (!known) {
                log_oom();
                return;
        }
        for (size_t i = 0; i < m->sets->n_sets; i++)
                for (size_t j = 0; j < m->sets->sets[i]->n_snapshots; j++)
                        known[n_known++] = m->sets->sets[i]->snapshots[j];

        for (size_t k = 0; k < n_providers; k++) {
                const Provider *p = providers[k];
                _cleanup_free_ char *reason = NULL;
                ProviderOrphan *orphans = NULL;
                size_t n = 0;

                /* Only where the provider works: without device-mapper there is nothing to find. */
                if (!p->ops->find_orphans || provider_probe(p, &reason) <= 0 ||
                    p->ops->find_orphans(known, n_known, &orphans, &n) < 0)
                        continue;
                for (size_t i = 0; i < n; i++) {
                        ProviderOrphan *o = orphans + i;

                        if (o->discard) {
                                log_warning("Snapshot %s of '%s' (%s, set %s) has no record and is deleted: it was "
                                            "made for a backup set, whose client is gone, or never finished.",
                                            o->snapshot_id, o->volume, p->name, o->set_id);
                                delete_orphan(m, p, o);
                        } else if (adopt_orphan(m, p, o) < 0)
                                log_error("Snapshot %s of '%s' (%s) has no record, and recording it failed; it stays "
                                          "as it is.", o->snapshot_id, o->volume, p->name);
                        else
                                log_warning("Snapshot %s of '%s' (%s, set %s) had no record (lost state directory, or "
                                            "a crash right after it was made): adopted, 'snapsetctl list' shows it.",
                                            o->snapshot_id, o->volume, p->name, o->set_id);
                }
                provider_orphans_free(orphans, n);
        }
}

/* What interrupted creations of the device-mapper providers left and no record names
 * (dm-leftovers.h): removed where provably unfinished, reported otherwise. */
static void sweep_leftovers(Manager *m) {
        _cleanup_free_ char *reason = NULL;
        char **ids = NULL;
        int r = 0;

        if (dm_probe(&reason) <= 0)
                return;   /* no device-mapper: nothing can be left */
        for (size_t i = 0; r >= 0 && i < m->sets->n_sets; i++)
                for (size_t j = 0; r >= 0 && j < m->sets->sets[i]->n_snapshots; j++)
                        r = blockdev_strv_push(&ids, m->sets->sets[i]->snapshots[j]->id);
        if (r >= 0)
                r = inflight_snapshot_ids(m->sets->inflight_directory, &ids);
        if (r < 0)
                log_warning_errno(r, "Not looking for leftover snapshot devices: %m");
        else if ((r = dm_leftovers_sweep(m->config.cow_directory, ids)) > 0)
                log_warning("Removed %d leftover(s) of interrupted snapshot sets that no record named.", r);
        blockdev_strv_free(ids);
}

/* Records of sets in creation live in the runtime directory: /run, never frozen. */
static char *inflight_directory_of(const Manager *m) {
        char *dir = NULL;

        return asprintf(&dir, "%s/inflight", m->runtime_directory) < 0 ? NULL : dir;
}

void sets_rescue(const Manager *m) {
        _cleanup_free_ char *dir = inflight_directory_of(m);
        UndoReport report = {};
        int k;

        if (!dir)
                return;
        k = inflight_rescue(dir, &report);
        /* Everything is thawed now (or cannot be): the journal may be written to. */
        if (k < 0)
                log_warning_errno(k, "Failed to look for interrupted snapshot sets in %s: %m", dir);
        else if (report.resumed + report.thawed + report.failed > 0)
                log_warning("An interrupted snapshot set had left %u device(s) suspended and %u filesystem(s) "
                            "frozen; resumed and thawed them%s%s.", report.resumed, report.thawed,
                            report.failed ? ", but not all: " : "",
                            report.failed ? strerror(-report.failed_error) : "");
}

/* The registry, empty, with the configuration's settings. */
static int registry_create(Manager *m) {
        SetRegistry *r = calloc(1, sizeof(SetRegistry));

        if (!r)
                return log_oom();
        m->sets = r;
        r->revert_warnings = RATELIMIT_INIT(REVERT_WARNING_INTERVAL_USEC, 1);
        r->inflight_directory = inflight_directory_of(m);
        if (!r->inflight_directory)
                return log_oom();
        (void) sets_apply_config(m);
        parse_test_hooks(&r->hooks);
        return 0;
}

/* The registry and what it holds, without touching any snapshot. */
static void registry_free(Manager *m) {
        SetRegistry *r = m->sets;

        for (size_t i = 0; i < r->n_sets; i++)
                snapshot_set_free(r->sets[i]);
        free(r->sets);
        free(r->owners);
        free(r->inflight_directory);
        free(r);
        m->sets = NULL;
}

/* snapset-activate.service, before the local filesystems are mounted: re-arms the persistent
 * snapshots whose provider copies an origin's old data on write (dm-snapshot), so that the
 * writes of mounting (journal replay, the superblock's mount time) and of the services that
 * follow are copied into their stores. Reads the state directory and writes nothing there
 * (/var may not be mounted yet: then there is nothing to read, and snapsetd does it all
 * later). What cannot be done now (an origin not set up yet, one already written: it must
 * be marked invalid, a write) is left to snapsetd's own activation at its start. */
int sets_activate_early(Manager *m) {
        SetRegistry *r;
        unsigned armed = 0, left = 0;
        int k;

        k = registry_create(m);
        if (k < 0)
                return k;
        r = m->sets;
        k = store_load_sets(m->state_directory, load_one, load_bad, m);
        if (k < 0) {
                log_error_errno(k, "Failed to read the snapshot sets in %s: %m", m->state_directory);
                registry_free(m);
                return k;
        }
        for (int pass = 0; pass < 2; pass++)
        for (size_t i = 0; i < r->n_sets; i++)
                for (size_t j = 0; j < r->sets[i]->n_snapshots; j++) {
                        Snapshot *snap = r->sets[i]->snapshots[j];
                        const Provider *p = provider_by_name(snap->provider);
                        ProviderResult res = { .failed = SIZE_MAX };
                        bool was_invalid = snap->invalid;

                        if (!p || !p->ops->activate_before_mounts || was_invalid || !activation_pass_is(snap, pass))
                                continue;
                        if (p->ops->activate_snapshot(snap, &r->settings, &res) == S_OK && !snap->invalid) {
                                armed++;
                                continue;
                        }
                        left++;
                        log_notice("Snapshot %s of '%s' is left to snapsetd: %s", snap->id, snap->volume,
                                   res.message[0] ? res.message : "not available yet");
                }
        if (armed + left > 0)
                log_info("Early activation: %u snapshot(s) re-armed before the local filesystems are mounted, "
                         "%u left to snapsetd.", armed, left);
        registry_free(m);
        return 0;
}

int sets_startup(Manager *m) {
        SetRegistry *r;
        unsigned kept = 0;
        int k;

        k = registry_create(m);
        if (k < 0)
                return k;
        r = m->sets;

        /* External providers before anything that may need one: recovery, activation. */
        k = external_providers_load(m->config.provider_directories, &r->settings);
        if (k < 0)
                return log_error_errno(k, "Failed to load the external providers: %m");

        k = store_open(m->state_directory);
        if (k < 0)
                return log_error_errno(k, "Failed to open the state directory %s: %m", m->state_directory);
        k = store_load_sets(m->state_directory, load_one, load_bad, m);
        if (k < 0)
                return log_error_errno(k, "Failed to read the snapshot sets in %s: %m", m->state_directory);
        /* A set that reached the state directory is done: an in-flight record of it is only left
         * when the daemon stopped between the two writes, and must not undo it. */
        for (size_t i = 0; i < r->n_sets; i++)
                inflight_remove(r->inflight_directory, r->sets[i]->id);

        /* Then whatever a killed daemon left, or an abort could not undo (the windows were
         * already undone by the rescue, before anything else). */
        k = inflight_recover(r->inflight_directory, NULL, &r->settings, daemon_sink, NULL, &kept);
        if (k < 0)
                log_warning_errno(k, "Failed to look for interrupted snapshot sets in %s: %m", r->inflight_directory);
        else if (k > (int) kept)
                log_warning("Undid %u snapshot set(s) interrupted by a previous run.", (unsigned) k - kept);
        if (kept > 0)
                log_error("%u snapshot set(s) could not be fully undone and need attention "
                          "('snapsetctl status'; then 'snapsetctl cleanup').", kept);

        /* Backup sets outlive nobody: their clients' connections died with the previous run. */
        for (size_t i = r->n_sets; i-- > 0;)
                if (r->sets[i]->context == SET_CONTEXT_BACKUP)
                        delete_whole_set(m, i, "its client's connection ended with the previous run of snapsetd");

        reconcile_orphans(m);
        sweep_leftovers(m);
        activate_all(m);
        sets_restore_exposed(m);
        sets_revert_schedule(m, now_monotonic_usec());
        if (r->n_sets > 0)
                log_info("%zu snapshot set(s) with %zu snapshot(s) loaded from %s.", r->n_sets,
                         sets_count_snapshots(m), m->state_directory);
        return 0;
}

void sets_free(Manager *m) {
        SetRegistry *r = m->sets;

        if (!r)
                return;
        if (r->creation)
                abort_creation(m, "snapsetd is stopping");
        /* Backup sets go with their clients, whose connections end now. */
        for (size_t i = r->n_sets; i-- > 0;)
                if (r->sets[i]->context == SET_CONTEXT_BACKUP)
                        delete_whole_set(m, i, "snapsetd is stopping");
        /* Last: deleting the backup sets above may have needed them. */
        external_providers_unload();
        registry_free(m);
}
