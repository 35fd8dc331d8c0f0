/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The snapshot-set methods of io.snapset.Manager: Start/Add/Do/Abort/CreateSnapshotSet,
 * ListSnapshotSets, ListSnapshots, GetSnapshot, DeleteSnapshots. Each validates its input,
 * applies the ownership rules of sets.h, drives the coordinator, and translates its outcome into
 * the error table, once, here. */

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <strings.h>
#include <linux/magic.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <syslog.h>
#include <sys/sysmacros.h>

#include "device-graph.h"
#include "inventory.h"
#include "json-dispatch.h"
#include "log.h"
#include "method-util.h"
#include "methods-sets.h"
#include "ratelimit.h"
#include "set-events.h"
#include "sets.h"

/* ---------------------------------------------------------------- helpers */

static int reply_outcome(MethodCall *mc, const SetOutcome *out, const char *set_id) {
        return method_error_vss(mc, out->code,
                                &(VssErrorFields) {
                                        .volume = out->volume[0] ? out->volume : NULL,
                                        .snapshot_id = out->snapshot_id[0] ? out->snapshot_id : NULL,
                                        .set_id = set_id,
                                        .provider = out->provider[0] ? out->provider : NULL,
                                        .method = out->method[0] ? out->method : NULL,
                                        .error = out->error,
                                },
                                "%s", out->message[0] ? out->message : vss_code_message(out->code));
}

/* The set in creation named set_id, if the caller may use it. Replies the error otherwise and
 * returns NULL. */
static SetCreation *creation_of_caller(MethodCall *mc, const char *set_id) {
        SetRegistry *r = mc->manager->sets;

        if (method_check_id(mc, set_id, "snapshot set") != 0)
                return NULL;
        if (!r->creation || strcasecmp(set_creation_set(r->creation)->id, set_id) != 0) {
                if (sets_find_set(mc->manager, set_id, NULL))
                        (void) method_refuse(mc, VSS_E_BAD_STATE, &(VssErrorFields) { .set_id = set_id },
                                                "Snapshot set %s is already created; only a set in creation "
                                                "takes AddToSnapshotSet and DoSnapshotSet.", set_id);
                else
                        (void) method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .set_id = set_id },
                                                "No snapshot set %s is in creation.", set_id);
                return NULL;
        }
        if (r->creation_owner != mc->peer->connection_id) {
                (void) method_refuse(mc, VSS_E_BAD_STATE, &(VssErrorFields) { .set_id = set_id },
                                        "Snapshot set %s belongs to another connection (the one that "
                                        "started it).", set_id);
                return NULL;
        }
        r->creation_activity = now_monotonic_usec();
        return r->creation;
}

/* ---------------------------------------------------------------- resolving a volume */

typedef struct ResolvedVolume {
        BlockDevice device;
        const Provider *provider;
} ResolvedVolume;

static void resolved_volume_done(ResolvedVolume *v) {
        blockdev_done(&v->device);
}

/* btrfs spans devices and reports anonymous device numbers, so freezing "its" block device
 * would freeze nothing; it has its own snapshots. */
static int btrfs_refused(MethodCall *mc, const char *volume) {
        return method_refuse(mc, VSS_E_VOLUME_NOT_SUPPORTED, &(VssErrorFields) { .volume = volume },
                         "Volume '%s' holds a btrfs filesystem, which snapset cannot freeze through its "
                         "device: use btrfs's own snapshots (btrfs subvolume snapshot, or snapper).", volume) ?: 1;
}

/* Finds the block device a volume names: a block device node, or a mounted filesystem's
 * directory (then the device it is mounted from). Replies the error and returns 1 if it cannot. */
static int resolve_device(MethodCall *mc, const char *volume, dev_t *ret) {
        struct statfs sfs;
        struct stat st;

        if (!volume[0] || volume[0] != '/')
                return method_refuse(mc, E_INVALIDARG, &(VssErrorFields) { .volume = volume },
                                        "Volume '%s' is not an absolute path: name a block device "
                                        "(/dev/...) or a mounted filesystem.", volume) ?: 1;
        if (stat(volume, &st) < 0)
                return method_refuse(mc, errno == ENOENT || errno == ENOTDIR ? VSS_E_OBJECT_NOT_FOUND : E_INVALIDARG,
                                        &(VssErrorFields) { .volume = volume, .error = errno },
                                        "Volume '%s' does not exist: %s.", volume, strerror(errno)) ?: 1;
        if (S_ISBLK(st.st_mode)) {
                *ret = st.st_rdev;
                return 0;
        }
        if (S_ISDIR(st.st_mode) && major(st.st_dev) != 0) {
                *ret = st.st_dev;
                return 0;
        }
        if (S_ISDIR(st.st_mode) && statfs(volume, &sfs) >= 0 && sfs.f_type == BTRFS_SUPER_MAGIC)
                return btrfs_refused(mc, volume);
        return method_refuse(mc, E_INVALIDARG, &(VssErrorFields) { .volume = volume },
                                "Volume '%s' is neither a block device nor a directory on a "
                                "block-device filesystem.", volume) ?: 1;
}

/* Chooses the provider: the named one (refusing → NOT_SUPPORTED_BY_PROVIDER), or the first
 * usable one that supports the volume (none → VOLUME_NOT_SUPPORTED). */
static int choose_provider(MethodCall *mc, const char *volume, const char *name, ResolvedVolume *v) {
        _cleanup_free_ char *reason = NULL;
        ProviderStatus *status = NULL;
        size_t n = 0;
        int r;

        r = provider_probe_all(&status, &n);
        if (r < 0)
                return r;
        if (name) {
                const Provider *p = provider_by_name(name);
                bool usable = false;

                for (size_t i = 0; i < n; i++)
                        if (status[i].provider == p) {
                                usable = status[i].usable;
                                if (!usable && status[i].reason)
                                        reason = strdup(status[i].reason);
                        }
                provider_status_free(status, n);
                if (!p)
                        return method_refuse(mc, VSS_E_PROVIDER_NOT_REGISTERED,
                                                &(VssErrorFields) { .volume = volume, .provider = name },
                                                "There is no provider '%s' ('snapsetctl providers' lists them).",
                                                name) ?: 1;
                if (usable) {
                        r = provider_is_volume_supported(p, &v->device, &reason);
                        if (r < 0)
                                return r;
                        if (r == VOLUME_PROVIDER_FAILED)
                                /* It could not answer (an external provider that crashed, hung or
                                 * broke the protocol): the event is logged, the caller gets the
                                 * catch-all. */
                                return method_refuse(mc, VSS_E_UNEXPECTED_PROVIDER_ERROR,
                                                        &(VssErrorFields) { .volume = volume, .provider = name,
                                                                            .method = "IsVolumeSupported" },
                                                        "%s", strna(reason)) ?: 1;
                        usable = r == VOLUME_SUPPORTED;
                }
                if (!usable)
                        return method_refuse(mc, VSS_E_VOLUME_NOT_SUPPORTED_BY_PROVIDER,
                                                &(VssErrorFields) { .volume = volume, .provider = name },
                                                "Provider '%s' cannot snapshot '%s': %s.", name, volume,
                                                reason ?: "it does not handle this kind of device") ?: 1;
                v->provider = p;
                return 0;
        }

        r = provider_select(status, n, &v->device, &v->provider, &reason);
        provider_status_free(status, n);
        if (r < 0)
                return r;
        if (r == 0)
                return method_refuse(mc, VSS_E_VOLUME_NOT_SUPPORTED, &(VssErrorFields) { .volume = volume },
                                        "No provider can snapshot '%s': %s.", volume, strna(reason)) ?: 1;
        return 0;
}

/* Everything AddToSnapshotSet checks before the provider sees the volume. */
static int resolve_volume(MethodCall *mc, SetCreation *c, const char *volume, const char *provider,
                          ResolvedVolume *v) {
        const Config *cfg = &mc->manager->config;
        const SnapshotSet *s = set_creation_set(c);
        dev_t dev;
        int r;

        if (set_creation_n_volumes(c) >= cfg->max_volumes_per_set)
                return method_refuse(mc, VSS_E_MAXIMUM_NUMBER_OF_VOLUMES_REACHED,
                                        &(VssErrorFields) { .volume = volume, .set_id = s->id },
                                        "Snapshot set %s already has %u volumes, the most allowed "
                                        "(MaxVolumesPerSet= in snapsetd.conf).", s->id, cfg->max_volumes_per_set) ?: 1;

        r = resolve_device(mc, volume, &dev);
        if (r != 0)
                return r;
        for (size_t i = 0; i < s->n_snapshots; i++) {
                const Snapshot *other = s->snapshots[i];

                if (other->volume_device == dev)
                        return method_refuse(mc, E_INVALIDARG, &(VssErrorFields) { .volume = volume, .set_id = s->id },
                                                "Volume '%s' is already in the set (as '%s').", volume,
                                                other->volume) ?: 1;
                /* Two layers of one stack: the lower one's snapshot already holds the upper one's
                 * data (and its filesystem is frozen through the stack), and suspending both
                 * could deadlock. Keeping the lower one also keeps a dm-crypt volume encrypted. */
                for (int up = 0; up < 2; up++) {
                        dev_t upper = up ? dev : other->volume_device, lower = up ? other->volume_device : dev;

                        if (device_graph_is_above("/sys", upper, lower) <= 0)
                                continue;
                        return method_refuse(mc, E_INVALIDARG, &(VssErrorFields) { .volume = volume, .set_id = s->id },
                                                "Volume '%s' is stacked %s '%s', which is already in the set: a set "
                                                "takes one layer of a stack, the lower one (its snapshot holds the "
                                                "upper one's data, and the filesystem on top is frozen through it). "
                                                "%s", volume, up ? "on" : "under", other->volume,
                                                up ? "Leave this one out." :
                                                "Start the set again with this one instead of the other.") ?: 1;
                }
        }
        if (sets_count_snapshots_of(mc->manager, dev) >= cfg->max_snapshots_per_volume)
                return method_refuse(mc, VSS_E_MAXIMUM_NUMBER_OF_SNAPSHOTS_REACHED,
                                        &(VssErrorFields) { .volume = volume },
                                        "Volume '%s' already has %u snapshots, the most allowed "
                                        "(MaxSnapshotsPerVolume=); delete old ones first ('snapsetctl delete --oldest %s').",
                                        volume, cfg->max_snapshots_per_volume, volume) ?: 1;

        r = inventory_find_device(dev, &v->device);
        if (r == -ENODEV)
                return method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .volume = volume },
                                        "Volume '%s' (device %u:%u) is not a block device of this machine.",
                                        volume, major(dev), minor(dev)) ?: 1;
        if (r < 0)
                return r;
        if (streq_ptr(v->device.fs_type, "btrfs"))
                return btrfs_refused(mc, volume);
        return choose_provider(mc, volume, provider, v);
}

/* Adds one volume to the set in creation; replies the error itself when it fails (returns 1). */
int sets_method_add(MethodCall *mc, SetCreation *c, const char *volume, const char *provider,
                      uint64_t cow_size, Snapshot **ret, SetOutcome *ret_failure) {
        _cleanup_(resolved_volume_done) ResolvedVolume v = {};
        SetOutcome out = {};
        VssCode code;
        int r;

        r = resolve_volume(mc, c, volume, provider, &v);
        if (r != 0)
                return r;
        code = set_creation_add(c, volume, &v.device, v.provider, cow_size, ret, &out);
        if (code != S_OK && ret_failure) {
                *ret_failure = out;
                return SETS_ADD_FAILED;
        }
        if (code != S_OK)
                return reply_outcome(mc, &out, set_creation_set(c)->id) ?: 1;
        return 0;
}

/* ---------------------------------------------------------------- Start, Add, Do, Abort */

int sets_method_start(MethodCall *mc, const char *context_name, SetCreation **ret) {
        SetRegistry *r = mc->manager->sets;
        CoordinatorOptions options;
        SetContext context = SET_CONTEXT_BACKUP;
        int k;

        /* VSS's default context is backup (auto-release); snapsetctl asks for persistent. */
        if (context_name) {
                context = set_context_from_string(context_name);
                if (context < 0)
                        return method_refuse(mc, VSS_E_UNSUPPORTED_CONTEXT, NULL,
                                                "Context '%s' is not supported; use 'backup' or 'persistent'.",
                                                context_name) ?: 1;
        }
        if (r->creation)
                return method_refuse(mc, VSS_E_SNAPSHOT_SET_IN_PROGRESS,
                                        &(VssErrorFields) { .set_id = set_creation_set(r->creation)->id },
                                        "Snapshot set %s is being created (phase %s); only one set is "
                                        "created at a time. Retry when it is done.",
                                        set_creation_set(r->creation)->id,
                                        set_phase_to_string(set_creation_phase(r->creation))) ?: 1;

        sets_coordinator_options(mc->manager, &options);
        k = set_creation_new(context, &options, &r->creation);
        if (k < 0)
                return k;
        r->creation_owner = mc->peer->connection_id;
        r->creation_activity = now_monotonic_usec();
        *ret = r->creation;
        return 0;
}

int vl_method_start_snapshot_set(MethodCall *mc, json_object *parameters) {
        struct { char *context; } p = {};
        static const JsonDispatch table[] = {
                { "context", JSON_DISPATCH_STRING, 0, JSON_NULLABLE },
                {}
        };
        SetCreation *c;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = sets_method_start(mc, p.context, &c);
        json_dispatch_done(table, &p);
        if (r != 0)
                return r < 0 ? r : 0;
        return method_reply_with(mc, "setId", json_object_new_string(set_creation_set(c)->id));
}

typedef struct AddParams {
        char *set_id;
        char *volume;
        char *provider;
        uint64_t cow_size;
} AddParams;

/* The jobs (job.h) of AddToSnapshotSet, DoSnapshotSet and CreateSnapshotSet: the provider work
 * and the window run on the job thread (the *_work functions), and the results are taken into
 * the registry on the loop (*_finish). The set in creation keeps the creation lock all along. */
typedef struct SetJob {
        SetCreation *c;               /* the set in creation (the registry's) */
        AddParams add;                /* AddToSnapshotSet's volume */
        Snapshot *snap;               /* what it added */
        bool run;                     /* DoSnapshotSet's part was reached */
        VssCode code;
        SetOutcome out;
} SetJob;

static void add_params_done(AddParams *p) {
        free(p->set_id);
        free(p->volume);
        free(p->provider);
        *p = (AddParams) {};
}

static void set_job_free(void *userdata) {
        SetJob *j = userdata;

        add_params_done(&j->add);
        free(j);
}

static int defer_set_job(MethodCall *mc, SetCreation *c, AddParams *add, MethodWork work, MethodWork finish) {
        SetJob *j = calloc(1, sizeof *j);

        if (!j)
                return -ENOMEM;
        j->c = c;
        if (add) {
                j->add = *add;
                *add = (AddParams) {};
        }
        return method_defer(mc, work, finish, j, set_job_free);
}

static void add_work(MethodCall *mc, void *userdata) {
        SetJob *j = userdata;
        int r;

        r = sets_method_add(mc, j->c, j->add.volume, j->add.provider, j->add.cow_size, &j->snap, NULL);
        (void) method_reply_errno(mc, r);
}

static void add_finish(MethodCall *mc, void *userdata) {
        SetJob *j = userdata;

        /* The set idles from the end of its call, not from its start. */
        mc->manager->sets->creation_activity = now_monotonic_usec();
        if (!mc->replied)
                (void) method_reply_errno(mc, method_reply_with(mc, "snapshotId", json_object_new_string(j->snap->id)));
}

int vl_method_add_to_snapshot_set(MethodCall *mc, json_object *parameters) {
        AddParams p = {};
        static const JsonDispatch table[] = {
                { "setId",        JSON_DISPATCH_STRING, offsetof(AddParams, set_id),   JSON_MANDATORY },
                { "volume",       JSON_DISPATCH_STRING, offsetof(AddParams, volume),   JSON_MANDATORY },
                { "provider",     JSON_DISPATCH_STRING, offsetof(AddParams, provider), JSON_NULLABLE },
                { "cowSizeBytes", JSON_DISPATCH_UINT64, offsetof(AddParams, cow_size), JSON_NULLABLE },
                {}
        };
        SetCreation *c;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = (c = creation_of_caller(mc, p.set_id)) ? defer_set_job(mc, c, &p, add_work, add_finish) : 1;
        json_dispatch_done(table, &p);
        return r < 0 ? r : 0;
}

/* DoSnapshotSet's part of a job: every phase to the end, or the abort path. */
static void run_set(SetJob *j) {
        j->run = true;
        j->code = set_creation_do(j->c, &j->out);
}

/* Records the set that run_set() ran and replies. The creation lock is released either way. */
int sets_method_finish(MethodCall *mc, VssCode code, const SetOutcome *out, SetDecorator decorate, void *userdata) {
        Manager *m = mc->manager;
        _cleanup_(set_creation_freep) SetCreation *c = sets_take_creation(m);
        _cleanup_(snapshot_set_freep) SnapshotSet *set = NULL;
        json_object *js = NULL;
        int k;

        if (code != S_OK) {
                log_error("Snapshot set %s failed (%s): %s", set_creation_set(c)->id, vss_code_name(code),
                          out->message);
                return reply_outcome(mc, out, set_creation_set(c)->id);
        }

        set = set_creation_take_set(c);
        /* The snapshots exist: a set that cannot be decorated is recorded all the same (without
         * its definition's name, retention never prunes it), never lost with them on disk. */
        if (decorate) {
                k = decorate(set, userdata);
                if (k < 0)
                        log_error_errno(k, "Cannot record the definition and hooks of set %s: %m; it is kept "
                                        "as a set of its own.", set->id);
        }
        k = sets_add(m, set, mc->peer->connection_id);
        if (k < 0)   /* sets_add deleted its snapshots again; the set object is freed here */
                return method_refuse(mc, VSS_E_UNEXPECTED, &(VssErrorFields) { .error = k },
                                        "The snapshot set was created but could not be recorded in %s (%s); "
                                        "its snapshots were deleted again.", m->state_directory, strerror(-k));
        log_info("Snapshot set %s created (%s): %zu volume(s), freeze window %" PRIu64 " us, writes held %" PRIu64 " us.",
                 set->id, set_context_to_string(set->context), set->n_snapshots, set->freeze_window_usec, set->hold_usec);
        k = snapshot_set_to_json(set, /* private= */ false, &js);
        TAKE_PTR(set);   /* owned by the registry now */
        if (k < 0)
                return k;
        return method_reply_with(mc, "set", js);
}

static int finish_set(MethodCall *mc, SetJob *j) {
        return sets_method_finish(mc, j->code, &j->out, NULL, NULL);
}

static void do_work(MethodCall *mc, void *userdata) {
        run_set(userdata);
}

static void do_finish(MethodCall *mc, void *userdata) {
        (void) method_reply_errno(mc, finish_set(mc, userdata));
}

int vl_method_do_snapshot_set(MethodCall *mc, json_object *parameters) {
        struct { char *set_id; } p = {};
        static const JsonDispatch table[] = {
                { "setId", JSON_DISPATCH_STRING, 0, JSON_MANDATORY },
                {}
        };
        SetCreation *c;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = (c = creation_of_caller(mc, p.set_id)) ? defer_set_job(mc, c, NULL, do_work, do_finish) : 1;
        json_dispatch_done(table, &p);
        return r < 0 ? r : 0;
}

int vl_method_abort_snapshot_set(MethodCall *mc, json_object *parameters) {
        struct { char *set_id; } p = {};
        static const JsonDispatch table[] = {
                { "setId", JSON_DISPATCH_STRING, 0, JSON_MANDATORY },
                {}
        };
        SetRegistry *reg = mc->manager->sets;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = method_check_id(mc, p.set_id, "snapshot set");
        if (r == 0 && (!reg->creation || strcasecmp(set_creation_set(reg->creation)->id, p.set_id) != 0))
                r = method_refuse(mc, sets_find_set(mc->manager, p.set_id, NULL) ? VSS_E_BAD_STATE : VSS_E_OBJECT_NOT_FOUND,
                                     &(VssErrorFields) { .set_id = p.set_id },
                                     sets_find_set(mc->manager, p.set_id, NULL)
                                     ? "Snapshot set %s is already created; delete it with DeleteSnapshots."
                                     : "No snapshot set %s is in creation.", p.set_id) ?: 1;
        if (r == 0) {
                /* Any root caller may abort: it is how an administrator frees a stuck lock. */
                set_creation_abort(reg->creation);
                set_creation_free(sets_take_creation(mc->manager));
                log_notice("Snapshot set %s aborted by %s.", p.set_id,
                           manager_peer_to_string(mc->peer->pid, mc->peer->uid, (char[64]) {}, 64));
        }
        json_dispatch_done(table, &p);
        if (r != 0)
                return r < 0 ? r : 0;
        return method_reply(mc, NULL);
}

/* ---------------------------------------------------------------- CreateSnapshotSet */

static int dispatch_volume_request(json_object *v, AddParams *ret, const char **bad) {
        static const JsonDispatch table[] = {
                { "volume",       JSON_DISPATCH_STRING, offsetof(AddParams, volume),   JSON_MANDATORY },
                { "provider",     JSON_DISPATCH_STRING, offsetof(AddParams, provider), JSON_NULLABLE },
                { "cowSizeBytes", JSON_DISPATCH_UINT64, offsetof(AddParams, cow_size), JSON_NULLABLE },
                {}
        };
        return json_dispatch(v, table, ret, bad);
}

/* Every volume, then the set; a volume that cannot be added aborts the whole call (no partial
 * set), with its error already replied. */
static void create_work(MethodCall *mc, void *userdata) {
        json_object *volumes = json_object_object_get(mc->call.parameters, "volumes");
        SetJob *j = userdata;
        const char *bad = NULL;
        int r = 0;

        for (size_t i = 0; r == 0 && i < json_object_array_length(volumes); i++) {
                AddParams a = {};

                (void) dispatch_volume_request(json_object_array_get_idx(volumes, i), &a, &bad);
                r = sets_method_add(mc, j->c, a.volume, a.provider, a.cow_size, NULL, NULL);
                add_params_done(&a);
        }
        if (r != 0) {
                (void) method_reply_errno(mc, r);
                set_creation_abort(j->c);
                return;
        }
        run_set(j);
}

static void create_finish(MethodCall *mc, void *userdata) {
        SetJob *j = userdata;

        if (!j->run) {
                set_creation_free(sets_take_creation(mc->manager));
                return;
        }
        (void) method_reply_errno(mc, finish_set(mc, j));
}

int vl_method_create_snapshot_set(MethodCall *mc, json_object *parameters) {
        struct { json_object *volumes; char *context; } p = {};
        static const JsonDispatch table[] = {
                { "volumes", JSON_DISPATCH_ARRAY,  0,                          JSON_MANDATORY },
                { "context", JSON_DISPATCH_STRING, sizeof(json_object *),      JSON_NULLABLE },
                {}
        };
        SetCreation *c = NULL;
        const char *bad = NULL;
        size_t n;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r != 0)
                goto finish;
        n = json_object_array_length(p.volumes);
        if (n == 0) {
                r = method_refuse(mc, E_INVALIDARG, NULL, "No volumes given: name at least one.") ?: 1;
                goto finish;
        }
        /* Every request is checked before anything starts, so a typo costs nothing. */
        for (size_t i = 0; i < n; i++) {
                AddParams a = {};

                r = dispatch_volume_request(json_object_array_get_idx(p.volumes, i), &a, &bad);
                add_params_done(&a);
                if (r < 0) {
                        r = method_error_invalid_parameter(mc, "volumes") ?: 1;
                        goto finish;
                }
        }

        r = sets_method_start(mc, p.context, &c);
        if (r == 0) {
                r = defer_set_job(mc, c, NULL, create_work, create_finish);
                if (r < 0)   /* the job could not start: nothing was made yet */
                        set_creation_free(sets_take_creation(mc->manager));
        }
finish:
        free(p.context);
        return r < 0 ? r : 0;
}

/* ---------------------------------------------------------------- queries */

/* A provider call's outcome, validated like every provider call (logged if it failed); the
 * listing goes on with the status as it was. */
static void query_check(const Provider *p, const char *method, VssCode code, ProviderResult *res) {
        SetOutcome out = {};

        (void) coordinator_check_code(p->name, method, code, res, NULL, set_event_journal_sink, NULL, &out);
}

static void query_one(const Provider *p, Snapshot *snap) {
        ProviderResult res = { .failed = SIZE_MAX };

        if (p && p->ops->query)
                query_check(p, "Query", p->ops->query(snap, &res), &res);
}

/* Fresh status (COW use, invalidated) where the providers can tell, for the n snapshots about to
 * be listed: all of one provider in one call where it can (query_snapshots: an external
 * provider's QuerySnapshots), one query per snapshot otherwise. While a set is being created
 * the providers are the job's (and an lvm query could wait on its locks or its suspended
 * devices), so the status is the one from the last query. */
void sets_refresh_statuses(const Manager *m, Snapshot **snaps, size_t n) {
        _cleanup_free_ Snapshot **batch = NULL;
        _cleanup_free_ bool *done = NULL;

        if (manager_job_busy(m) || n == 0)
                return;
        batch = calloc(n, sizeof(Snapshot *));
        done = calloc(n, sizeof(bool));
        for (size_t i = 0; i < n; i++) {
                const Provider *p = provider_by_name(snaps[i]->provider);
                ProviderResult res = { .failed = SIZE_MAX };
                bool unsupported = false;
                size_t k = 0;
                VssCode code;

                if ((done && done[i]) || !p)
                        continue;
                if (!p->ops->query_snapshots || !batch || !done) {
                        query_one(p, snaps[i]);
                        continue;
                }
                for (size_t j = i; j < n; j++)
                        if (!done[j] && streq_ptr(snaps[j]->provider, snaps[i]->provider)) {
                                batch[k++] = snaps[j];
                                done[j] = true;
                        }
                code = p->ops->query_snapshots(batch, k, &unsupported, &res);
                if (code != S_OK)
                        query_check(p, "QuerySnapshots", code, &res);
                else if (unsupported)
                        for (size_t j = 0; j < k; j++)
                                query_one(p, batch[j]);
        }
}

static int snapshot_json(const Manager *m, Snapshot *snap, json_object **ret) {
        sets_refresh_statuses(m, &snap, 1);
        return snapshot_to_json(snap, /* private= */ false, ret);
}

int vl_method_list_snapshot_sets(MethodCall *mc, json_object *parameters) {
        Manager *m = mc->manager;
        size_t n = sets_count(m);
        int r;

        r = method_dispatch(mc, parameters, (const JsonDispatch[]) { {} }, &(char) {0});
        if (r != 0)
                return r < 0 ? r : 0;
        if (n == 0)
                return method_reply(mc, NULL);
        for (size_t i = 0; i < n; i++) {
                _cleanup_(json_object_putp) json_object *reply = json_object_new_object();
                SnapshotSet *set = m->sets->sets[i];
                json_object *j;

                /* Fresh status and COW use, one provider call per set (and provider). */
                sets_refresh_statuses(m, set->snapshots, set->n_snapshots);
                r = snapshot_set_to_json(set, false, &j);
                if (r < 0)
                        return r;
                if (!reply || json_object_object_add(reply, "set", j) < 0)
                        return -ENOMEM;
                r = i + 1 < n ? method_notify(mc, reply) : method_reply(mc, reply);
                if (r < 0)
                        return r;
        }
        return 0;
}

static bool snapshot_matches_volume(const Snapshot *s, const char *volume, dev_t dev) {
        return streq(s->volume, volume) || streq_ptr(s->volume_path, volume) || (dev && s->volume_device == dev);
}

int vl_method_list_snapshots(MethodCall *mc, json_object *parameters) {
        struct { char *set_id; char *volume; } p = {};
        static const JsonDispatch table[] = {
                { "setId",  JSON_DISPATCH_STRING, 0,              JSON_NULLABLE },
                { "volume", JSON_DISPATCH_STRING, sizeof(char *), JSON_NULLABLE },
                {}
        };
        Manager *m = mc->manager;
        _cleanup_free_ Snapshot **listed = NULL;
        size_t n_all = 0, n_listed = 0;
        json_object *pending = NULL;
        struct stat st;
        dev_t dev = 0;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0 && p.set_id && (r = method_check_id(mc, p.set_id, "snapshot set")) == 0 && !sets_find_set(m, p.set_id, NULL))
                r = method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .set_id = p.set_id },
                                     "There is no snapshot set %s.", p.set_id) ?: 1;
        if (r != 0)
                goto finish;
        if (p.volume && stat(p.volume, &st) >= 0)
                dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;

        /* The snapshots to list, their status refreshed together. */
        for (size_t i = 0; i < sets_count(m); i++)
                n_all += m->sets->sets[i]->n_snapshots;
        listed = calloc(n_all + 1, sizeof(Snapshot *));
        if (!listed) {
                r = -ENOMEM;
                goto finish;
        }
        for (size_t i = 0; i < sets_count(m); i++) {
                SnapshotSet *set = m->sets->sets[i];

                if (p.set_id && strcasecmp(set->id, p.set_id) != 0)
                        continue;
                for (size_t k = 0; k < set->n_snapshots; k++)
                        if (!p.volume || snapshot_matches_volume(set->snapshots[k], p.volume, dev))
                                listed[n_listed++] = set->snapshots[k];
        }
        sets_refresh_statuses(m, listed, n_listed);

        /* One reply per snapshot; the last one is the final reply, so each is sent one step late. */
        for (size_t i = 0; r >= 0 && i < n_listed; i++) {
                json_object *j;

                r = snapshot_to_json(listed[i], /* private= */ false, &j);
                if (r < 0)
                        break;
                if (pending) {
                        r = method_notify(mc, pending);
                        json_object_put(pending);
                }
                pending = json_object_new_object();
                if (!pending || json_object_object_add(pending, "snapshot", j) < 0)
                        r = -ENOMEM;
        }
        if (r >= 0)
                r = method_reply(mc, pending);
        json_object_put(pending);
finish:
        json_dispatch_done(table, &p);
        return r < 0 ? r : 0;
}

int vl_method_get_snapshot(MethodCall *mc, json_object *parameters) {
        struct { char *snapshot_id; } p = {};
        static const JsonDispatch table[] = {
                { "snapshotId", JSON_DISPATCH_STRING, 0, JSON_MANDATORY },
                {}
        };
        Snapshot *snap = NULL;
        json_object *j;
        int r;

        r = method_dispatch(mc, parameters, table, &p);
        if (r == 0)
                r = method_check_id(mc, p.snapshot_id, "snapshot");
        if (r == 0 && !(snap = sets_find_snapshot(mc->manager, p.snapshot_id, NULL)))
                r = method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .snapshot_id = p.snapshot_id },
                                     "There is no snapshot %s.", p.snapshot_id) ?: 1;
        json_dispatch_done(table, &p);
        if (r != 0)
                return r < 0 ? r : 0;
        r = snapshot_json(mc->manager, snap, &j);
        if (r < 0)
                return r;
        return method_reply_with(mc, "snapshot", j);
}

/* ---------------------------------------------------------------- DeleteSnapshots */

/* The oldest snapshot of a volume (by path as given, resolved path or device). */
static Snapshot *oldest_of(Manager *m, const char *volume, SnapshotSet **ret_set) {
        Snapshot *best = NULL;
        struct stat st;
        dev_t dev = 0;

        if (stat(volume, &st) >= 0)
                dev = S_ISBLK(st.st_mode) ? st.st_rdev : st.st_dev;
        for (size_t i = 0; i < sets_count(m); i++)
                for (size_t k = 0; k < m->sets->sets[i]->n_snapshots; k++) {
                        Snapshot *s = m->sets->sets[i]->snapshots[k];
                        if (snapshot_matches_volume(s, volume, dev) && (!best || s->created_usec < best->created_usec)) {
                                best = s;
                                *ret_set = m->sets->sets[i];
                        }
                }
        return best;
}

static int delete_and_collect(MethodCall *mc, SnapshotSet *set, Snapshot *snap, json_object *deleted) {
        char id[SNAPSET_ID_LENGTH + 1];
        SetOutcome out;

        memcpy(id, snap->id, sizeof id);
        if (sets_delete_snapshot(mc->manager, set, snap, &out) != S_OK)
                return reply_outcome(mc, &out, NULL) ?: 1;
        return json_object_array_add(deleted, json_object_new_string(id)) < 0 ? -ENOMEM : 0;
}

VssCode sets_delete_whole(Manager *m, SnapshotSet *set, json_object *deleted, SetOutcome *first) {
        _cleanup_free_ SnapsetId *ids = NULL;
        SnapsetId set_id;
        size_t n = set->n_snapshots;

        *first = (SetOutcome) {};
        ids = calloc(n ?: 1, sizeof(SnapsetId));
        if (!ids)
                return sets_outcome(first, E_OUTOFMEMORY, ENOMEM, NULL, "Out of memory deleting set %s.", set->id);
        for (size_t i = 0; i < n; i++)
                memcpy(ids[i], set->snapshots[i]->id, sizeof(SnapsetId));
        memcpy(set_id, set->id, sizeof set_id);
        sets_prepare_delete(m, set);
        /* The set is freed with its last snapshot: look it up again each time. */
        for (size_t i = 0; i < n; i++) {
                SnapshotSet *s = sets_find_set(m, set_id, NULL);
                Snapshot *snap = s ? snapshot_set_find(s, ids[i]) : NULL;
                SetOutcome out;

                if (!snap)
                        continue;
                if (sets_delete_snapshot(m, s, snap, &out) != S_OK) {
                        if (first->code == S_OK)
                                *first = out;
                        continue;
                }
                if (deleted && json_object_array_add(deleted, json_object_new_string(ids[i])) < 0)
                        return sets_outcome(first, E_OUTOFMEMORY, ENOMEM, NULL, "Out of memory deleting set %s.", set_id);
        }
        return first->code;
}

/* Every snapshot of the set, the ones that can be deleted even when one cannot (it is mounted,
 * say): then the first failure is the reply, and what could go is gone. */
static int delete_set(MethodCall *mc, SnapshotSet *set, json_object *deleted) {
        SnapsetId set_id;
        SetOutcome first;

        memcpy(set_id, set->id, sizeof set_id);
        if (sets_delete_whole(mc->manager, set, deleted, &first) != S_OK)
                return reply_outcome(mc, &first, set_id) ?: 1;
        return 0;
}

int vl_method_delete_snapshots(MethodCall *mc, json_object *parameters) {
        struct { char *snapshot_id; char *set_id; char *oldest; } p = {};
        static const JsonDispatch table[] = {
                { "snapshotId",     JSON_DISPATCH_STRING, 0,                  JSON_NULLABLE },
                { "setId",          JSON_DISPATCH_STRING, sizeof(char *),     JSON_NULLABLE },
                { "oldestOfVolume", JSON_DISPATCH_STRING, 2 * sizeof(char *), JSON_NULLABLE },
                {}
        };
        _cleanup_(json_object_putp) json_object *deleted = json_object_new_array();
        Manager *m = mc->manager;
        SnapshotSet *set = NULL;
        Snapshot *snap = NULL;
        int r;

        if (!deleted)
                return -ENOMEM;
        r = method_dispatch(mc, parameters, table, &p);
        if (r != 0)
                goto finish;
        if (!!p.snapshot_id + !!p.set_id + !!p.oldest != 1) {
                r = method_refuse(mc, E_INVALIDARG, NULL, "Name exactly one of snapshotId, setId and "
                                     "oldestOfVolume.") ?: 1;
                goto finish;
        }

        if (p.snapshot_id) {
                r = method_check_id(mc, p.snapshot_id, "snapshot");
                if (r == 0 && !(snap = sets_find_snapshot(m, p.snapshot_id, &set)))
                        r = method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .snapshot_id = p.snapshot_id },
                                             "There is no snapshot %s.", p.snapshot_id) ?: 1;
                if (r == 0)
                        r = delete_and_collect(mc, set, snap, deleted);
        } else if (p.set_id) {
                r = method_check_id(mc, p.set_id, "snapshot set");
                if (r == 0 && m->sets->creation && strcasecmp(set_creation_set(m->sets->creation)->id, p.set_id) == 0)
                        r = method_refuse(mc, VSS_E_BAD_STATE, &(VssErrorFields) { .set_id = p.set_id },
                                             "Snapshot set %s is still in creation; abort it with AbortSnapshotSet.",
                                             p.set_id) ?: 1;
                if (r == 0 && !(set = sets_find_set(m, p.set_id, NULL)))
                        r = method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .set_id = p.set_id },
                                             "There is no snapshot set %s.", p.set_id) ?: 1;
                if (r == 0)
                        r = delete_set(mc, set, deleted);
        } else {
                snap = oldest_of(m, p.oldest, &set);
                if (!snap)
                        r = method_refuse(mc, VSS_E_OBJECT_NOT_FOUND, &(VssErrorFields) { .volume = p.oldest },
                                             "Volume '%s' has no snapshots.", p.oldest) ?: 1;
                else
                        r = delete_and_collect(mc, set, snap, deleted);
        }
        if (r == 0)
                r = method_reply_with(mc, "deleted", TAKE_PTR(deleted));
finish:
        json_dispatch_done(table, &p);
        return r < 0 ? r : 0;
}
