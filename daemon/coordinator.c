/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/sysmacros.h>
#include <syslog.h>
#include <time.h>

#include "coordinator.h"
#include "device-graph.h"
#include "freeze.h"
#include "guardian.h"
#include "inflight.h"
#include "log.h"
#include "set-events.h"
#include "time-util.h"

struct SetCreation {
        CoordinatorOptions options;
        SnapshotSet *set;
        uint64_t started_usec;

        /* Read by the event loop while a job runs the set (GetStatus, Monitor): the phase is
         * atomic, every phase entered is logged in order (never more than the phases there
         * are, so it never wraps), and the list of volumes changes under volumes_lock. None of
         * this takes a lock or allocates inside the window. */
        _Atomic SetPhase phase;
        SetPhase phase_log[SET_PHASE_LOG_SIZE];
        atomic_size_t n_phase_log;
        pthread_mutex_t volumes_lock;

        /* Parallel to set->snapshots: each snapshot's provider view and its origin (owned). */
        ProviderSnapshot **psnaps;
        BlockDevice *volumes;
        size_t n;

        /* One share per provider, in the order providers were first used. */
        ProviderSet **shares;
        size_t n_shares;
        dev_t *devices;            /* every volume's device number, for ProviderSet.set_devices */

        FreezeSet *freeze;
        /* What must be undone if the window ends in any way, and the process that undoes it if
         * we cannot (window-undo.h, guardian.h). Made before the window. */
        WindowUndo *undo;
        Guardian *guardian;
        UndoReport undo_report;    /* the last resort's, after our own release and thaw */
        bool needs_cleanup;        /* aborted, but not everything could be undone */
        char abort_failure[512];   /* the first provider's reason */
        bool memory_locked;
        ProviderResult result;     /* preallocated: providers report into it inside the window */
};

static const char *const phase_names[_SET_PHASE_MAX] = {
        [SET_PHASE_ADDING] = "adding",
        [SET_PHASE_PREPARING] = "preparing",
        [SET_PHASE_FLUSHING] = "flushing",
        [SET_PHASE_HOLDING] = "holding",
        [SET_PHASE_COMMITTING] = "committing",
        [SET_PHASE_RELEASING] = "releasing",
        [SET_PHASE_THAWING] = "thawing",
        [SET_PHASE_FINISHING] = "finishing",
        [SET_PHASE_DONE] = "done",
        [SET_PHASE_ABORTED] = "aborted",
};

const char *set_phase_to_string(SetPhase p) {
        return p >= 0 && p < _SET_PHASE_MAX ? phase_names[p] : NULL;
}

/* ---------------------------------------------------------------- events and outcomes */

static void emit(const SetCreation *c, const SetEvent *e) {
        set_events_emit(e, c->options.sink, c->options.sink_userdata);
}

static void outcome_set(SetOutcome *out, VssCode code, int error, const char *volume,
                        const char *snapshot_id, const char *provider, const char *method,
                        const char *format, ...) _printf_(8, 9);

static void outcome_set(SetOutcome *out, VssCode code, int error, const char *volume,
                        const char *snapshot_id, const char *provider, const char *method,
                        const char *format, ...) {
        va_list ap;

        if (!out)
                return;
        *out = (SetOutcome) { .code = code, .error = error };
        snprintf(out->volume, sizeof out->volume, "%s", strempty(volume));
        snprintf(out->snapshot_id, sizeof out->snapshot_id, "%s", strempty(snapshot_id));
        snprintf(out->provider, sizeof out->provider, "%s", strempty(provider));
        snprintf(out->method, sizeof out->method, "%s", strempty(method));
        va_start(ap, format);
        vsnprintf(out->message, sizeof out->message, format, ap);
        va_end(ap);
}

/* Logs the outcome as a set event (queued if inside the window). */
static void emit_outcome(const SetCreation *c, int priority, const SetOutcome *out) {
        SetEvent e;

        set_event_init(&e, priority, c->set->id, out->snapshot_id, out->volume, out->provider, out->method);
        e.code = out->code;
        e.error = out->error;
        snprintf(e.message, sizeof e.message, "Snapshot set %s failed: %s", c->set->id, out->message);
        emit(c, &e);
}

static const Snapshot *snapshot_of_result(const ProviderSet *ps, const ProviderResult *res) {
        if (!ps || !res || res->failed >= ps->n_snapshots)
                return NULL;
        return ps->snapshots[res->failed]->snapshot;
}

/* coordinator_check_code(), with the volume and snapshot the failure concerns for the event. */
static VssCode check_code_of(const char *provider, const char *method, VssCode code,
                             const ProviderResult *res, const SnapshotSet *set, const Snapshot *snap,
                             SetEventSink sink, void *userdata, SetOutcome *out) {
        const char *name = vss_code_name(code);
        uint32_t hresult = res && res->hresult ? res->hresult : vss_code_hresult(code);
        const char *detail = res && res->message[0] ? res->message : NULL;
        SetEvent e;

        if (code == S_OK)
                return S_OK;

        set_event_init(&e, LOG_ERR, set ? set->id : NULL, snap ? snap->id : NULL, snap ? snap->volume : NULL,
                       provider, method);
        e.code = code;
        e.hresult = hresult;
        e.error = res ? res->error : 0;

        if (code == VSS_E_UNEXPECTED_PROVIDER_ERROR && detail) {
                /* No code came back: the daemon's own verdict on an external provider that
                 * crashed, hung or broke the protocol. Name what happened instead of a code. */
                snprintf(e.message, sizeof e.message,
                         "Provider '%s' failed in %s: it %s; reporting VSS_E_UNEXPECTED_PROVIDER_ERROR.",
                         provider, method, detail);
                set_events_emit(&e, sink, userdata);
                outcome_set(out, VSS_E_UNEXPECTED_PROVIDER_ERROR, e.error, NULL, NULL, provider, method,
                            "Provider '%s' failed unexpectedly in %s: it %s.", provider, method, detail);
                return VSS_E_UNEXPECTED_PROVIDER_ERROR;
        }

        if (!vss_code_is_valid_provider_return(code)) {
                /* Architecture §1.4: log what the provider really said, report the one catch-all. */
                snprintf(e.message, sizeof e.message,
                         "Provider '%s' returned %s (0x%08X) from %s, which a provider may not return; "
                         "reporting VSS_E_UNEXPECTED_PROVIDER_ERROR%s%s",
                         provider, name ?: "an unknown code", hresult, method,
                         detail ? ": " : ".", strempty(detail));
                set_events_emit(&e, sink, userdata);
                outcome_set(out, VSS_E_UNEXPECTED_PROVIDER_ERROR, e.error, NULL, NULL, provider, method,
                            "Provider '%s' failed unexpectedly in %s (it returned %s, 0x%08X)%s%s",
                            provider, method, name ?: "an unknown code", hresult,
                            detail ? ": " : ".", strempty(detail));
                return VSS_E_UNEXPECTED_PROVIDER_ERROR;
        }

        snprintf(e.message, sizeof e.message, "Provider '%s' failed in %s with %s (0x%08X)%s%s",
                 provider, method, name, hresult, detail ? ": " : ".", strempty(detail));
        if (code == VSS_E_PROVIDER_VETO && !detail)
                /* A veto must explain itself (§1.5); one that does not is a provider bug. */
                strncat(e.message, " The provider gave no explanation of how to resolve this.",
                        sizeof e.message - strlen(e.message) - 1);
        set_events_emit(&e, sink, userdata);
        outcome_set(out, code, e.error, NULL, NULL, provider, method, "%s",
                    detail ?: vss_code_message(code));
        return code;
}

VssCode coordinator_check_code(const char *provider, const char *method, VssCode code,
                               const ProviderResult *res, const SnapshotSet *set,
                               SetEventSink sink, void *userdata, SetOutcome *out) {
        return check_code_of(provider, method, code, res, set, NULL, sink, userdata, out);
}

/* Checks a provider's code and, on failure, names the volume it concerns in the event and the
 * outcome. */
static VssCode check(SetCreation *c, const ProviderSet *ps, const char *method, VssCode code, SetOutcome *out) {
        const Snapshot *snap = snapshot_of_result(ps, &c->result);

        code = check_code_of(ps->provider->name, method, code, &c->result, c->set, snap,
                             c->options.sink, c->options.sink_userdata, out);
        if (code != S_OK && out && snap) {
                snprintf(out->volume, sizeof out->volume, "%s", snap->volume);
                snprintf(out->snapshot_id, sizeof out->snapshot_id, "%s", snap->id);
        }
        return code;
}

static void result_reset(SetCreation *c) {
        c->result = (ProviderResult) { .failed = SIZE_MAX };
}

/* ---------------------------------------------------------------- test hooks */

/* Whether the test hooks make this phase fail for the share holding snapshot fail_index. */
static bool hook_fails(const SetCreation *c, SetPhase phase, const ProviderSet *ps) {
        const CoordinatorTestHooks *h = &c->options.hooks;

        if (h->fail_phase != phase || h->fail_index >= c->n)
                return false;
        if (!ps)
                return true;
        for (size_t i = 0; i < ps->n_snapshots; i++)
                if (ps->snapshots[i] == c->psnaps[h->fail_index])
                        return true;
        return false;
}

static VssCode hook_failure(SetCreation *c, const ProviderSet *ps) {
        for (size_t i = 0; ps && i < ps->n_snapshots; i++)
                if (ps->snapshots[i] == c->psnaps[c->options.hooks.fail_index])
                        c->result.failed = i;
        c->result.error = EIO;
        snprintf(c->result.message, sizeof c->result.message,
                 "failure injected by SNAPSETD_TEST_HOOKS in phase %s; nothing to resolve, this is a test",
                 set_phase_to_string(c->phase));
        return VSS_E_PROVIDER_VETO;
}

/* fail-inside: the share holding that snapshot is told to fail inside its own method, at that
 * snapshot's place in the share. */
static void hooks_arm_shares(SetCreation *c) {
        const CoordinatorTestHooks *h = &c->options.hooks;
        const char *method = h->fail_inside_phase == SET_PHASE_HOLDING ? "HoldWrites" :
                             h->fail_inside_phase == SET_PHASE_COMMITTING ? "CommitSnapshots" : NULL;

        if (!method || h->fail_inside_index >= c->n)
                return;
        for (size_t i = 0; i < c->n_shares; i++)
                for (size_t k = 0; k < c->shares[i]->n_snapshots; k++)
                        if (c->shares[i]->snapshots[k] == c->psnaps[h->fail_inside_index]) {
                                c->shares[i]->test_fail_method = method;
                                c->shares[i]->test_fail_index = k;
                        }
}

/* Safe inside the window: an atomic store, and the wake-up is one write(2) to an eventfd. */
static void set_phase(SetCreation *c, SetPhase phase) {
        size_t n = atomic_load(&c->n_phase_log);

        atomic_store(&c->phase, phase);
        if (n < SET_PHASE_LOG_SIZE) {
                c->phase_log[n] = phase;
                atomic_store(&c->n_phase_log, n + 1);
        }
        if (c->options.phase_changed)
                c->options.phase_changed(c->options.phase_userdata);
}

static void enter_phase(SetCreation *c, SetPhase phase) {
        set_phase(c, phase);
        if (c->options.hooks.kill_phase == phase) {
                /* The guardian is in our process group (it never leaves it). */
                if (c->options.hooks.kill_all)
                        (void) kill(0, SIGKILL);
                raise(SIGKILL);
        }
}

/* ---------------------------------------------------------------- life of the object */

int set_creation_new(SetContext context, const CoordinatorOptions *options, SetCreation **ret) {
        SetCreation *c;
        int r;

        assert(options);
        assert(ret);

        c = calloc(1, sizeof(SetCreation));
        if (!c)
                return -ENOMEM;
        c->options = *options;
        pthread_mutex_init(&c->volumes_lock, NULL);
        c->started_usec = now_realtime_usec();
        set_phase(c, SET_PHASE_ADDING);
        r = snapshot_set_new(context, &c->set);
        if (r < 0) {
                free(c);
                return r;
        }
        *ret = c;
        return 0;
}

static void provider_set_free(ProviderSet *ps) {
        if (!ps)
                return;
        free(ps->snapshots);
        free(ps);
}

SetCreation *set_creation_free(SetCreation *c) {
        if (!c)
                return NULL;
        for (size_t i = 0; i < c->n; i++) {
                free(c->psnaps[i]);
                blockdev_done(&c->volumes[i]);
        }
        free(c->psnaps);
        free(c->volumes);
        for (size_t i = 0; i < c->n_shares; i++)
                provider_set_free(c->shares[i]);
        free(c->shares);
        free(c->devices);
        /* Not disarmed yet (an error path): closing the channel makes it undo everything. */
        guardian_free(c->guardian);
        freeze_set_free(c->freeze);
        window_undo_free(c->undo);
        snapshot_set_free(c->set);
        pthread_mutex_destroy(&c->volumes_lock);
        free(c);
        return NULL;
}

const SnapshotSet *set_creation_set(const SetCreation *c) {
        return c->set;
}

SetPhase set_creation_phase(const SetCreation *c) {
        return atomic_load(&c->phase);
}

size_t set_creation_n_phases(const SetCreation *c) {
        return atomic_load(&((SetCreation *) c)->n_phase_log);
}

SetPhase set_creation_phase_at(const SetCreation *c, size_t i) {
        return i < set_creation_n_phases(c) ? c->phase_log[i] : _SET_PHASE_INVALID;
}

size_t set_creation_n_volumes(const SetCreation *c) {
        return c->n;
}

char **set_creation_volumes(SetCreation *c) {
        char **v;

        pthread_mutex_lock(&c->volumes_lock);
        v = calloc(c->n + 1, sizeof(char *));
        for (size_t i = 0; v && i < c->n; i++)
                if (!(v[i] = strdup(c->set->snapshots[i]->volume)))
                        v = strv_free(v);
        pthread_mutex_unlock(&c->volumes_lock);
        return v;
}

uint64_t set_creation_started_usec(const SetCreation *c) {
        return c->started_usec;
}

SnapshotSet *set_creation_take_set(SetCreation *c) {
        return TAKE_PTR(c->set);
}

/* ---------------------------------------------------------------- AddToSnapshotSet */

/* A failed AddToSnapshotSet whose provider could not undo its part: the snapshot gets a record
 * of its own, kept for "snapsetctl cleanup", while the set goes on without it. */
static void keep_failed_add(SetCreation *c, const Snapshot *snap, const char *provider) {
        char why[768];
        SetEvent e;

        snprintf(why, sizeof why, "AddToSnapshotSet of '%s' failed and provider '%s' could not undo what it "
                 "had made: %s", snap->volume, provider, c->result.message[0] ? c->result.message : "no reason given");
        if (inflight_keep_snapshot(c->options.inflight_directory, c->set, snap, why) < 0)
                snprintf(why + strlen(why), sizeof why - strlen(why), " (and it could not be recorded)");
        set_event_init(&e, LOG_ERR, c->set->id, snap->id, snap->volume, provider, "AbortSnapshots");
        snprintf(e.message, sizeof e.message, "%s; run 'snapsetctl cleanup' once the cause is fixed.", why);
        emit(c, &e);
}

/* ProviderSet.save_record: the record as the set is now. */
static int save_record(void *userdata) {
        SetCreation *c = userdata;

        return inflight_save(c->options.inflight_directory, c->set, NULL, NULL);
}

static int share_for(SetCreation *c, const Provider *provider, ProviderSet **ret) {
        ProviderSet *ps, **a;

        for (size_t i = 0; i < c->n_shares; i++)
                if (c->shares[i]->provider == provider) {
                        *ret = c->shares[i];
                        return 0;
                }
        ps = calloc(1, sizeof(ProviderSet));
        a = reallocarray(c->shares, c->n_shares + 1, sizeof(ProviderSet *));
        if (!ps || !a) {
                free(ps);
                if (a)
                        c->shares = a;
                return -ENOMEM;
        }
        c->shares = a;
        *ps = (ProviderSet) {
                .provider = provider,
                .set = c->set,
                .settings = c->options.settings,
                .save_record = c->options.inflight_directory ? save_record : NULL,
                .save_record_userdata = c,
        };
        c->shares[c->n_shares++] = ps;
        *ret = ps;
        return 0;
}

/* Makes room for one more snapshot in every parallel array. */
static int grow(SetCreation *c, ProviderSet *ps) {
        void *p;

        p = reallocarray(c->psnaps, c->n + 1, sizeof(ProviderSnapshot *));
        if (!p)
                return -ENOMEM;
        c->psnaps = p;
        p = reallocarray(c->volumes, c->n + 1, sizeof(BlockDevice));
        if (!p)
                return -ENOMEM;
        c->volumes = p;
        p = reallocarray(c->devices, c->n + 1, sizeof(dev_t));
        if (!p)
                return -ENOMEM;
        c->devices = p;
        p = reallocarray(ps->snapshots, ps->n_snapshots + 1, sizeof(ProviderSnapshot *));
        if (!p)
                return -ENOMEM;
        ps->snapshots = p;
        return 0;
}

VssCode set_creation_add(SetCreation *c, const char *volume, const BlockDevice *device,
                         const Provider *provider, uint64_t cow_size, Snapshot **ret, SetOutcome *out) {
        ProviderSnapshot *psnap = NULL;
        ProviderSet *ps;
        Snapshot *snap;
        VssCode code;
        int r;

        assert(c);
        assert(device);
        assert(provider);

        if (c->phase != SET_PHASE_ADDING) {
                outcome_set(out, VSS_E_BAD_STATE, 0, volume, NULL, NULL, NULL,
                            "Snapshot set %s is %s; volumes can only be added before DoSnapshotSet",
                            c->set->id, set_phase_to_string(c->phase));
                return VSS_E_BAD_STATE;
        }
        if (!provider->ops->begin_prepare_snapshot) {
                outcome_set(out, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER, 0, volume, NULL, provider->name, NULL,
                            "Provider '%s' cannot take snapshots yet", provider->name);
                return VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER;
        }

        /* The loop may be listing the volumes (GetStatus): the arrays move under the lock. */
        pthread_mutex_lock(&c->volumes_lock);
        r = share_for(c, provider, &ps);
        if (r >= 0)
                r = grow(c, ps);
        if (r >= 0 && !(psnap = calloc(1, sizeof(ProviderSnapshot))))
                r = -ENOMEM;
        if (r >= 0)
                r = snapshot_set_add(c->set, volume, device->path, makedev(device->major, device->minor),
                                     provider->name, &snap);
        if (r < 0) {
                pthread_mutex_unlock(&c->volumes_lock);
                free(psnap);
                outcome_set(out, E_OUTOFMEMORY, -r, volume, NULL, NULL, NULL, "Out of memory adding '%s'", volume);
                return E_OUTOFMEMORY;
        }
        snap->cow_size = cow_size;

        /* The BlockDevice is copied field by field: the set keeps its own strings. */
        c->volumes[c->n] = (BlockDevice) {};
        r = blockdev_copy(device, &c->volumes[c->n]);
        if (r < 0) {
                free(psnap);
                snapshot_set_remove(c->set, c->set->n_snapshots - 1);
                pthread_mutex_unlock(&c->volumes_lock);
                outcome_set(out, E_OUTOFMEMORY, -r, volume, NULL, NULL, NULL, "Out of memory adding '%s'", volume);
                return E_OUTOFMEMORY;
        }
        *psnap = (ProviderSnapshot) { .snapshot = snap, .volume = &c->volumes[c->n] };
        c->psnaps[c->n] = psnap;
        c->devices[c->n] = snap->volume_device;
        c->n++;
        ps->snapshots[ps->n_snapshots++] = psnap;
        /* Arrays moved: every share sees the current ones. */
        for (size_t i = 0; i < c->n; i++)
                c->psnaps[i]->volume = &c->volumes[i];
        for (size_t i = 0; i < c->n_shares; i++) {
                c->shares[i]->set_devices = c->devices;
                c->shares[i]->n_set_devices = c->n;
        }
        pthread_mutex_unlock(&c->volumes_lock);

        result_reset(c);
        c->result.failed = ps->n_snapshots - 1;   /* the provider may name another, but this is the one */
        /* Recorded before the provider makes anything: a crash inside begin_prepare_snapshot
         * leaves a record naming the snapshot (and what the provider recorded of its intent). */
        if ((r = inflight_save(c->options.inflight_directory, c->set, NULL, NULL)) < 0) {
                outcome_set(out, VSS_E_UNEXPECTED, -r, volume, snap->id, NULL, NULL,
                            "Could not record the set in %s for crash recovery: %s",
                            c->options.inflight_directory, strerror(-r));
                code = VSS_E_UNEXPECTED;
        } else {
                if (hook_fails(c, SET_PHASE_ADDING, ps))
                        code = hook_failure(c, ps);
                else
                        code = provider->ops->begin_prepare_snapshot(ps, psnap, &c->result);
                code = check(c, ps, "BeginPrepareSnapshot", code, out);
        }
        /* What the provider made is recorded at once, so that a crash from here on is undone. */
        if (code == S_OK && (r = inflight_save(c->options.inflight_directory, c->set, NULL, NULL)) < 0) {
                outcome_set(out, VSS_E_UNEXPECTED, -r, volume, snap->id, NULL, NULL,
                            "Could not record the set in %s for crash recovery: %s",
                            c->options.inflight_directory, strerror(-r));
                code = VSS_E_UNEXPECTED;
        }
        if (code != S_OK) {
                if (out) {
                        snprintf(out->volume, sizeof out->volume, "%s", volume);
                        snprintf(out->snapshot_id, sizeof out->snapshot_id, "%s", snap->id);
                }
                /* The provider undoes its part for this volume; the rest of the set stands,
                 * as in VSS: a failed AddToSnapshotSet leaves the set as it was. */
                {
                        ProviderSet single = *ps;
                        ProviderSnapshot *only[1] = { psnap };

                        single.snapshots = only;
                        single.n_snapshots = 1;
                        result_reset(c);
                        if (provider->ops->abort_snapshots(&single, &c->result) != S_OK)
                                keep_failed_add(c, snap, provider->name);
                }
                pthread_mutex_lock(&c->volumes_lock);
                ps->n_snapshots--;
                c->n--;
                free(c->psnaps[c->n]);
                blockdev_done(&c->volumes[c->n]);
                snapshot_set_remove(c->set, c->set->n_snapshots - 1);
                for (size_t i = 0; i < c->n_shares; i++)
                        c->shares[i]->n_set_devices = c->n;
                pthread_mutex_unlock(&c->volumes_lock);
                /* The set's record names only what is still in it. */
                (void) inflight_save(c->options.inflight_directory, c->set, NULL, NULL);
                return code;
        }
        if (ret)
                *ret = snap;
        return S_OK;
}

/* ---------------------------------------------------------------- DoSnapshotSet */

typedef VssCode (*ShareMethod)(ProviderSet *ps, ProviderResult *res);

/* Calls one method on every share, in order; the first failure stops. */
static VssCode call_all(SetCreation *c, SetPhase phase, const char *method, size_t offset, SetOutcome *out) {
        for (size_t i = 0; i < c->n_shares; i++) {
                ProviderSet *ps = c->shares[i];
                ShareMethod m = *(ShareMethod *) ((const char *) ps->provider->ops + offset);
                VssCode code;

                if (ps->n_snapshots == 0)   /* its only volume failed to be added */
                        continue;
                result_reset(c);
                if (hook_fails(c, phase, ps))
                        code = hook_failure(c, ps);
                else
                        code = m ? m(ps, &c->result) : S_OK;
                code = check(c, ps, method, code, out);
                if (code != S_OK)
                        return code;
        }
        return S_OK;
}

#define CALL_ALL(c, phase, method, field, out) \
        call_all((c), (phase), (method), offsetof(ProviderOps, field), (out))

/* Releases every share's hold. Inside the window: no allocation, no logging. A failure to
 * resume is reported but every share is still tried: writes must flow again. */
static VssCode release_all(SetCreation *c, bool committed, SetOutcome *out) {
        VssCode first = S_OK;

        for (size_t i = c->n_shares; i-- > 0;) {
                ProviderSet *ps = c->shares[i];
                VssCode code;

                if (!ps->provider->ops->release_writes || ps->n_snapshots == 0)
                        continue;
                result_reset(c);
                code = ps->provider->ops->release_writes(ps, committed, &c->result);
                code = check(c, ps, "ReleaseWrites", code, first == S_OK ? out : NULL);
                if (first == S_OK)
                        first = code;
        }
        return first;
}

/* Returns false if a provider could not undo everything: then the set's record stays (see
 * forget_or_keep()). */
static bool abort_all(SetCreation *c) {
        bool clean = true;

        /* AbortSnapshots is never translated and never changes the outcome (§1.4); what it
         * reports is logged for the administrator. */
        for (size_t i = c->n_shares; i-- > 0;) {
                ProviderSet *ps = c->shares[i];
                VssCode code;
                SetEvent e;

                if (!ps->provider->ops->abort_snapshots || ps->n_snapshots == 0)
                        continue;
                result_reset(c);
                code = ps->provider->ops->abort_snapshots(ps, &c->result);
                if (code == S_OK)
                        continue;
                set_event_init(&e, LOG_WARNING, c->set->id, NULL, NULL, ps->provider->name, "AbortSnapshots");
                e.code = code;
                e.error = c->result.error;
                snprintf(e.message, sizeof e.message, "Provider '%s' could not undo everything of set %s: %s",
                         ps->provider->name, c->set->id, c->result.message[0] ? c->result.message : strna(vss_code_name(code)));
                emit(c, &e);
                if (clean)
                        snprintf(c->abort_failure, sizeof c->abort_failure, "%s", e.message);
                clean = false;
        }
        return clean;
}

/* The record goes once what it names is gone; after an abort that left something, it stays,
 * marked with why, to be tried again at the next start and by "snapsetctl cleanup". */
static void forget_or_keep(SetCreation *c, bool clean) {
        SetEvent e;

        if (clean) {
                inflight_remove(c->options.inflight_directory, c->set->id);
                return;
        }
        c->needs_cleanup = true;
        (void) inflight_keep(c->options.inflight_directory, c->set->id, c->abort_failure);
        set_event_init(&e, LOG_ERR, c->set->id, NULL, NULL, NULL, "AbortSnapshots");
        snprintf(e.message, sizeof e.message,
                 "Snapshot set %s was not fully undone; its record is kept in %s. Fix the cause (the "
                 "message before this one), then run 'snapsetctl cleanup'.", c->set->id,
                 strna(c->options.inflight_directory));
        emit(c, &e);
}

/* The snapshot of the volume with this device number, to name a filesystem's failure after the
 * volume the caller gave. */
static const Snapshot *snapshot_on_device(const SetCreation *c, dev_t device) {
        for (size_t i = 0; i < c->n; i++)
                if (c->set->snapshots[i]->volume_device == device)
                        return c->set->snapshots[i];
        return NULL;
}

/* The filesystem of the set that failed (freeze_set_*() record which), or NULL. */
static const FreezeTarget *failed_target(const SetCreation *c) {
        return c->freeze && c->freeze->failed_index < c->freeze->n_targets
               ? &c->freeze->targets[c->freeze->failed_index] : NULL;
}

static VssCode freeze_failure(SetCreation *c, int r, SetOutcome *out) {
        const FreezeTarget *t = failed_target(c);
        const Snapshot *snap = t ? snapshot_on_device(c, t->device) : NULL;
        const char *where = t ? t->mountpoint : "?";
        const char *volume = snap ? snap->volume : where;

        if (r == -ETIMEDOUT) {
                outcome_set(out, VSS_E_FLUSH_WRITES_TIMEOUT, -r, volume, snap ? snap->id : NULL, NULL, NULL,
                            "Freezing the filesystems took longer than %llu ms (stuck at %s); "
                            "heavy write activity? Retry later.",
                            (unsigned long long) (c->options.flush_timeout_usec / USEC_PER_MSEC), where);
                return VSS_E_FLUSH_WRITES_TIMEOUT;
        }
        if (r == -EBUSY) {
                outcome_set(out, VSS_E_BAD_STATE, -r, volume, snap ? snap->id : NULL, NULL, NULL,
                            "The filesystem at %s is already frozen by someone else; thaw it first "
                            "('fsfreeze --unfreeze %s')", where, where);
                return VSS_E_BAD_STATE;
        }
        if (r == -EOPNOTSUPP) {
                outcome_set(out, VSS_E_VOLUME_NOT_SUPPORTED, -r, volume, snap ? snap->id : NULL, NULL, NULL,
                            "The filesystem at %s cannot be frozen (no FIFREEZE support)", where);
                return VSS_E_VOLUME_NOT_SUPPORTED;
        }
        outcome_set(out, VSS_E_UNEXPECTED, -r, volume, snap ? snap->id : NULL, NULL, NULL,
                    "Could not freeze the filesystem at %s: %s", where, strerror(-r));
        return VSS_E_UNEXPECTED;
}

/* The filesystems to freeze: those on every volume of the set but the ones whose provider
 * freezes them itself (skip_freeze), and those on every device stacked on a volume (a partition,
 * a dm-crypt device, an LV on it): they write through the volume too. */
static int freeze_set_prepare_for(SetCreation *c) {
        _cleanup_free_ dev_t *devices = NULL;
        size_t n = 0;
        int r;

        for (size_t i = 0; i < c->n; i++) {
                _cleanup_free_ dev_t *above = NULL;
                size_t n_above = 0;
                dev_t *a;

                r = device_graph_above("/sys", c->devices[i], &above, &n_above);
                if (r < 0)
                        return r;
                a = reallocarray(devices, n + n_above + 1, sizeof(dev_t));
                if (!a)
                        return -ENOMEM;
                devices = a;
                if (!c->psnaps[i]->skip_freeze)
                        devices[n++] = c->devices[i];
                for (size_t k = 0; k < n_above; k++)
                        devices[n++] = above[k];
        }
        return freeze_set_prepare(devices, n, c->options.mountinfo_path, &c->freeze);
}

/* The undo list: every volume of the set, with its filesystem's mountpoint fd if the set freezes
 * it (the FreezeSet's, borrowed), and whether its inactive table is the provider's own. */
static int undo_prepare(SetCreation *c) {
        size_t n = c->n, extra = 0;
        int r;

        /* Filesystems on devices stacked above the volumes get entries of their own. */
        for (size_t i = 0; i < c->freeze->n_targets; i++)
                if (!snapshot_on_device(c, c->freeze->targets[i].device))
                        extra++;
        r = window_undo_new(n + extra, &c->undo);
        if (r < 0)
                return r;
        for (size_t i = 0; i < c->n; i++) {
                c->undo->volumes[i].device = c->devices[i];
                c->undo->volumes[i].drop_inactive = c->psnaps[i]->undo_drop_inactive;
        }
        for (size_t i = 0; i < c->freeze->n_targets; i++) {
                FreezeTarget *t = &c->freeze->targets[i];
                UndoVolume *v = window_undo_volume(c->undo, t->device);

                if (!v) {
                        v = &c->undo->volumes[n++];
                        v->device = t->device;
                }
                v->fs_fd = t->fd;
                t->undo = v;
        }
        return 0;
}

/* Everything slow, before the window: the providers' last preparations, the mountpoints opened
 * and synced, the undo list, the record for crash recovery, the guardian, memory locked. */
static VssCode prepare_window(SetCreation *c, SetOutcome *out) {
        VssCode code;
        int r;

        enter_phase(c, SET_PHASE_PREPARING);
        hooks_arm_shares(c);
        if (freeze_lingering()) {
                outcome_set(out, VSS_E_BAD_STATE, EBUSY, NULL, NULL, NULL, NULL,
                            "An earlier set's flush (syncfs or FIFREEZE) of %s has not returned yet (the device under it is "
                            "not completing writes); retry when it has. Nothing was frozen.", freeze_lingering());
                return VSS_E_BAD_STATE;
        }
        code = CALL_ALL(c, SET_PHASE_PREPARING, "EndPrepareSnapshots", end_prepare_snapshots, out);
        if (code == S_OK)
                code = CALL_ALL(c, SET_PHASE_PREPARING, "PreCommitSnapshots", pre_commit_snapshots, out);
        if (code != S_OK)
                return code;

        /* The flush before the window is bounded like the freeze: a device that does not complete
         * writes must not hold the daemon (and its watchdog) for ever, even with nothing frozen. */
        r = freeze_set_prepare_for(c);
        if (r == -EXDEV) {
                const Snapshot *snap = snapshot_on_device(c, c->freeze->covered_device);

                outcome_set(out, VSS_E_BAD_STATE, EXDEV, snap ? snap->volume : NULL, snap ? snap->id : NULL,
                            NULL, NULL, "The filesystem on %s is mounted at %s, but that path now leads to another "
                            "filesystem (mounted over it, or unmounted since): freezing through it would freeze "
                            "the wrong one. Nothing was frozen; unmount what covers it, or retry.",
                            snap ? snap->volume : "a volume of the set", c->freeze->covered_mountpoint);
                return VSS_E_BAD_STATE;
        }
        if (r >= 0)
                r = freeze_set_sync(c->freeze, c->options.flush_timeout_usec);
        if (r < 0) {
                const FreezeTarget *t = failed_target(c);
                const Snapshot *snap = t ? snapshot_on_device(c, t->device) : NULL;

                if (r == -ETIMEDOUT) {
                        outcome_set(out, VSS_E_FLUSH_WRITES_TIMEOUT, -r, snap ? snap->volume : t ? t->mountpoint : NULL,
                                    snap ? snap->id : NULL, NULL, NULL,
                                    "Flushing the filesystem at %s (syncfs, before anything was frozen) took longer "
                                    "than %llu ms; is its device completing writes? Retry later.",
                                    t ? t->mountpoint : "?",
                                    (unsigned long long) (c->options.flush_timeout_usec / USEC_PER_MSEC));
                        return VSS_E_FLUSH_WRITES_TIMEOUT;
                }
                outcome_set(out, vss_code_from_errno(r), -r, snap ? snap->volume : t ? t->mountpoint : NULL,
                            snap ? snap->id : NULL, NULL, NULL,
                            "Could not prepare the filesystem%s%s for freezing (syncfs): %s",
                            t ? " at " : "s of the set", t ? t->mountpoint : "", strerror(-r));
                return out ? out->code : VSS_E_UNEXPECTED;
        }

        r = undo_prepare(c);
        if (r < 0) {
                outcome_set(out, VSS_E_UNEXPECTED, -r, NULL, NULL, NULL, NULL,
                            "Could not prepare the undo list of the freeze window: %s", strerror(-r));
                return VSS_E_UNEXPECTED;
        }

        /* The record names every mountpoint that may end up frozen and every device that may
         * end up suspended, so that a daemon killed inside the window can be undone at start. */
        r = inflight_save(c->options.inflight_directory, c->set, c->freeze, c->undo);
        if (r < 0) {
                outcome_set(out, VSS_E_UNEXPECTED, -r, NULL, NULL, NULL, NULL,
                            "Could not record the set in %s for crash recovery: %s",
                            c->options.inflight_directory, strerror(-r));
                return VSS_E_UNEXPECTED;
        }

        /* No window without someone to end it if we cannot. */
        r = guardian_start(c->undo, &c->guardian);
        if (r < 0) {
                outcome_set(out, VSS_E_UNEXPECTED, -r, NULL, NULL, NULL, NULL,
                            "Could not start the thaw guardian (the process that thaws the set if snapsetd "
                            "dies inside the freeze window): %s; nothing was frozen", strerror(-r));
                return VSS_E_UNEXPECTED;
        }

        /* Locked memory: a page fault inside the window could need a page from a frozen
         * filesystem (our own binary, mapped files) and never be served. */
        if (c->options.lock_memory) {
                if (mlockall(MCL_CURRENT | MCL_FUTURE) < 0) {
                        SetEvent e;

                        set_event_init(&e, LOG_WARNING, c->set->id, NULL, NULL, NULL, NULL);
                        e.error = errno;
                        snprintf(e.message, sizeof e.message,
                                 "Could not lock memory (%s); going on. Give snapsetd LimitMEMLOCK=infinity.",
                                 strerror(errno));
                        emit(c, &e);
                } else
                        c->memory_locked = true;
        }
        return S_OK;
}

static bool guardian_fired(const SetCreation *c) {
        return c->undo && atomic_load(&c->undo->fired);
}

static bool hold_expired(const SetCreation *c, uint64_t hold_start) {
        return guardian_fired(c) || (c->options.hold_timeout_usec > 0 &&
                                     now_monotonic_usec() - hold_start > c->options.hold_timeout_usec);
}

/* Tells the guardian when it must act by itself: the end of what the limits allow from start
 * (both limits 0: never), plus its grace. One atomic store and one non-blocking send. */
static void guardian_deadline(SetCreation *c, uint64_t start, uint64_t allowed) {
        atomic_store(&c->undo->deadline_usec, allowed == 0 ? UINT64_MAX : start + allowed + GUARDIAN_GRACE_USEC);
        guardian_wake(c->guardian);
}

static VssCode hold_timeout(SetCreation *c, SetOutcome *out) {
        outcome_set(out, VSS_E_HOLD_WRITES_TIMEOUT, ETIMEDOUT, NULL, NULL, NULL, NULL,
                    "Holding writes took longer than %llu ms; %severything was undone. Retry later.",
                    (unsigned long long) (c->options.hold_timeout_usec / USEC_PER_MSEC),
                    guardian_fired(c) ? "the thaw guardian resumed and thawed the set at the deadline, and " : "");
        return VSS_E_HOLD_WRITES_TIMEOUT;
}

static void guardian_disarm_cb(void *userdata) {
        guardian_disarm(userdata);
}

/* After our own thaw: the guardian goes, unless a FIFREEZE is still stuck (flush timeout), in
 * which case it stays armed until that one has returned and been thawed. */
static void guardian_end(SetCreation *c) {
        if (c->freeze && freeze_set_linger(c->freeze, guardian_disarm_cb, c->guardian))
                c->guardian = NULL;
        else
                guardian_disarm(TAKE_PTR(c->guardian));
}

static void emit_undo_report(const SetCreation *c) {
        const UndoReport *r = &c->undo_report;
        SetEvent e;

        if (guardian_fired(c)) {
                set_event_init(&e, LOG_ERR, c->set->id, NULL, NULL, NULL, NULL);
                snprintf(e.message, sizeof e.message,
                         "The thaw guardian ended the freeze window of set %s at its deadline (HoldTimeoutSec= "
                         "plus %llu ms): a provider or a device did not return in time.", c->set->id,
                         (unsigned long long) (GUARDIAN_GRACE_USEC / USEC_PER_MSEC));
                emit(c, &e);
        }
        if (r->resumed + r->thawed + r->failed == 0)
                return;
        set_event_init(&e, r->failed ? LOG_ERR : LOG_WARNING, c->set->id, NULL, NULL, NULL, NULL);
        e.error = -r->failed_error;
        snprintf(e.message, sizeof e.message,
                 "After the window of set %s, %u device(s) were still suspended and %u filesystem(s) frozen; "
                 "they were resumed and thawed%s%s.", c->set->id, r->resumed, r->thawed,
                 r->failed ? ", but not all: " : "", r->failed ? strerror(-r->failed_error) : "");
        emit(c, &e);
}

/* Hold: every origin of every provider suspended before any commit, so that the point in time is
 * one even for writers below the filesystems; then the commit. Inside the window. */
static VssCode hold_and_commit(SetCreation *c, uint64_t hold_start, SetOutcome *out) {
        VssCode code;

        enter_phase(c, SET_PHASE_HOLDING);
        guardian_deadline(c, hold_start, c->options.hold_timeout_usec);
        code = CALL_ALL(c, SET_PHASE_HOLDING, "HoldWrites", hold_writes, out);
        if (code == S_OK && hold_expired(c, hold_start))
                code = hold_timeout(c, out);
        if (code != S_OK)
                return code;

        enter_phase(c, SET_PHASE_COMMITTING);
        code = CALL_ALL(c, SET_PHASE_COMMITTING, "CommitSnapshots", commit_snapshots, out);
        /* Past the hold timeout the answer is HOLD_WRITES_TIMEOUT, even when a provider gave up on
         * its own first (a command it killed at the deadline): that is what the caller can act on
         * ("retry later"). The provider's own report is logged. */
        if (hold_expired(c, hold_start))
                code = hold_timeout(c, out);
        return code;
}

/* Writes flow again: what happened inside may now be written out (what did not fit in the
 * queues is at least counted), the guardian goes, and the set's code is final. */
static VssCode after_window(SetCreation *c, VssCode code, SetOutcome *out) {
        unsigned dropped_log, dropped_events;

        dropped_log = log_release();
        dropped_events = set_events_release(c->options.sink, c->options.sink_userdata);
        if (dropped_log + dropped_events > 0) {
                SetEvent e;

                set_event_init(&e, LOG_WARNING, c->set->id, NULL, NULL, NULL, NULL);
                snprintf(e.message, sizeof e.message,
                         "%u event(s) and %u log message(s) of set %s's freeze window did not fit in the "
                         "queues held for it and were lost.", dropped_events, dropped_log, c->set->id);
                emit(c, &e);
        }

        guardian_end(c);
        emit_undo_report(c);
        /* Past the deadline the set cannot be trusted, whatever the providers said. */
        if (guardian_fired(c))
                code = hold_timeout(c, out);
        return code;
}

/* The window itself. Nothing here allocates, logs or writes to a filesystem: events are queued
 * (set_events_hold), outcomes go into preallocated structures. Returns with everything
 * released and thawed, whatever happened. */
static VssCode run_window(SetCreation *c, SetOutcome *out) {
        uint64_t freeze_start, hold_start = 0, hold_end = 0, thaw_end;
        bool held = false, committed = false;
        VssCode code, released;
        dev_t suspended = 0;
        int r;

        set_events_hold();
        log_hold();

        enter_phase(c, SET_PHASE_FLUSHING);
        freeze_start = now_monotonic_usec();
        c->set->frozen_usec = now_realtime_usec();   /* vDSO: no system call, no fault */
        guardian_deadline(c, freeze_start, c->options.flush_timeout_usec == 0 || c->options.hold_timeout_usec == 0 ? 0 :
                          c->options.flush_timeout_usec + c->options.hold_timeout_usec);
        if (hook_fails(c, SET_PHASE_FLUSHING, NULL)) {
                const Snapshot *snap = c->set->snapshots[c->options.hooks.fail_index];

                outcome_set(out, VSS_E_PROVIDER_VETO, EIO, snap->volume, snap->id, NULL, NULL,
                            "failure injected by SNAPSETD_TEST_HOOKS in phase flushing; nothing to resolve, "
                            "this is a test");
                code = VSS_E_PROVIDER_VETO;
                goto thawed;
        }
        c->freeze->kill_after_first_freeze = c->options.hooks.kill_after_first_freeze;
        c->freeze->kill_after_first_thaw = c->options.hooks.kill_after_first_thaw;
        r = freeze_set_freeze(c->freeze, c->options.flush_timeout_usec);
        if (r < 0) {
                code = freeze_failure(c, r, out);
                goto thawed;
        }

        hold_start = now_monotonic_usec();
        held = true;
        code = hold_and_commit(c, hold_start, out);
        committed = code == S_OK;

        enter_phase(c, SET_PHASE_RELEASING);
        released = release_all(c, committed, committed ? out : NULL);
        hold_end = now_monotonic_usec();
        if (code == S_OK)
                code = released;
        /* Never thaw over a suspended device (the thaw would wait on it for ever): whatever a
         * provider left suspended is resumed first, and then the set cannot be trusted. */
        if (window_undo_resume(c->undo, &c->undo_report, &suspended) > 0 && code == S_OK) {
                outcome_set(out, VSS_E_UNEXPECTED, 0, NULL, NULL, NULL, "ReleaseWrites",
                            "Device %u:%u was still suspended after every provider released the writes; "
                            "it was resumed before the thaw, and the set is undone",
                            major(suspended), minor(suspended));
                code = VSS_E_UNEXPECTED;
        }

        enter_phase(c, SET_PHASE_THAWING);
        r = freeze_set_thaw(c->freeze);
        if (r < 0 && code == S_OK) {
                const FreezeTarget *t = &c->freeze->targets[c->freeze->failed_index];
                outcome_set(out, VSS_E_UNEXPECTED, -r, t->mountpoint, NULL, NULL, NULL,
                            "Could not thaw %s: %s (run 'fsfreeze --unfreeze %s')",
                            t->mountpoint, strerror(-r), t->mountpoint);
                code = VSS_E_UNEXPECTED;
        }
        /* The last resort, on every way out past the freeze: whatever a provider left suspended
         * is resumed, and whatever is still frozen thawed (normally nothing). Not after a failed
         * freeze: nothing was suspended, freeze_set_freeze() thawed what it froze, and a FITHAW
         * of a filesystem whose FIFREEZE is stuck would wait for it. */
        window_undo_run(c->undo, &c->undo_report);
thawed:
        thaw_end = now_monotonic_usec();
        if (c->memory_locked) {
                munlockall();
                c->memory_locked = false;
        }
        c->set->freeze_window_usec = thaw_end - freeze_start;
        c->set->hold_usec = held ? hold_end - hold_start : 0;
        return after_window(c, code, out);
}

static void emit_created(const SetCreation *c) {
        SetEvent e;

        set_event_init(&e, LOG_INFO, c->set->id, NULL, NULL, NULL, NULL);
        snprintf(e.message, sizeof e.message,
                 "Snapshot set %s created: %zu volume(s), freeze window %llu us, writes held %llu us.",
                 c->set->id, c->n, (unsigned long long) c->set->freeze_window_usec,
                 (unsigned long long) c->set->hold_usec);
        emit(c, &e);
}

VssCode set_creation_do(SetCreation *c, SetOutcome *out) {
        VssCode code;

        assert(c);

        if (c->phase != SET_PHASE_ADDING) {
                outcome_set(out, VSS_E_BAD_STATE, 0, NULL, NULL, NULL, NULL,
                            "Snapshot set %s is %s; DoSnapshotSet runs once", c->set->id,
                            set_phase_to_string(c->phase));
                return VSS_E_BAD_STATE;
        }
        if (c->n == 0) {
                outcome_set(out, E_INVALIDARG, 0, NULL, NULL, NULL, NULL,
                            "Snapshot set %s has no volumes; add them with AddToSnapshotSet first", c->set->id);
                return E_INVALIDARG;
        }

        code = prepare_window(c, out);
        if (code == S_OK)
                code = run_window(c, out);
        if (code == S_OK) {
                enter_phase(c, SET_PHASE_FINISHING);
                code = CALL_ALL(c, SET_PHASE_FINISHING, "PostCommitSnapshots", post_commit_snapshots, out);
        }

        if (code != S_OK) {
                /* No partial commit: whatever any provider made, committed or not, goes. */
                if (out)
                        emit_outcome(c, LOG_ERR, out);
                forget_or_keep(c, abort_all(c));
                c->set->state = SET_STATE_ABORTED;
                set_phase(c, SET_PHASE_ABORTED);
                return code;
        }

        c->set->state = SET_STATE_CREATED;
        set_phase(c, SET_PHASE_DONE);
        /* The in-flight record stays until the set is in the state directory (sets_add()): a
         * crash before that undoes it at the next start, as the client never heard of it. */
        emit_created(c);
        return S_OK;
}

void set_creation_abort(SetCreation *c) {
        if (!c || c->phase == SET_PHASE_DONE || c->phase == SET_PHASE_ABORTED)
                return;
        forget_or_keep(c, abort_all(c));
        c->set->state = SET_STATE_ABORTED;
        set_phase(c, SET_PHASE_ABORTED);
}

bool set_creation_needs_cleanup(const SetCreation *c) {
        return c->needs_cleanup;
}
