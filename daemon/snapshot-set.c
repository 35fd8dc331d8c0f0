/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdio.h>
#include <strings.h>
#include <sys/sysmacros.h>
#include <time.h>
#include <uuid/uuid.h>

#include "json-util.h"
#include "snapshot-set.h"
#include "time-util.h"
#include "varlink.h"

static const char *const context_names[_SET_CONTEXT_MAX] = {
        [SET_CONTEXT_BACKUP] = "backup",
        [SET_CONTEXT_PERSISTENT] = "persistent",
};

static const char *const state_names[_SET_STATE_MAX] = {
        [SET_STATE_PREPARING] = "preparing",
        [SET_STATE_CREATED] = "created",
        [SET_STATE_ABORTED] = "aborted",
        [SET_STATE_DELETING] = "deleting",
};

static int lookup(const char *const *names, int n, const char *s) {
        if (!s)
                return -EINVAL;
        for (int i = 0; i < n; i++)
                if (streq(names[i], s))
                        return i;
        return -EINVAL;
}

const char *set_context_to_string(SetContext c) {
        return c >= 0 && c < _SET_CONTEXT_MAX ? context_names[c] : NULL;
}

SetContext set_context_from_string(const char *s) {
        return lookup(context_names, _SET_CONTEXT_MAX, s);
}

const char *set_state_to_string(SetState s) {
        return s >= 0 && s < _SET_STATE_MAX ? state_names[s] : NULL;
}

SetState set_state_from_string(const char *s) {
        return lookup(state_names, _SET_STATE_MAX, s);
}

void snapset_id_generate(SnapsetId ret) {
        uuid_t u;

        uuid_generate_random(u);
        uuid_unparse_lower(u, ret);
}

bool snapset_id_is_valid(const char *s) {
        uuid_t u;

        return s && strlen(s) == SNAPSET_ID_LENGTH && uuid_parse(s, u) == 0;
}

int snapshot_set_new(SetContext context, SnapshotSet **ret) {
        SnapshotSet *s;

        assert(ret);

        s = calloc(1, sizeof(SnapshotSet));
        if (!s)
                return -ENOMEM;
        snapset_id_generate(s->id);
        s->context = context;
        s->state = SET_STATE_PREPARING;
        s->created_usec = now_realtime_usec();
        *ret = s;
        return 0;
}

static Snapshot *snapshot_free(Snapshot *snap) {
        if (!snap)
                return NULL;
        free(snap->volume);
        free(snap->volume_path);
        free(snap->provider);
        free(snap->device);
        free(snap->exposed_at);
        free(snap->revert);
        free(snap->kind);
        free(snap->pool);
        free(snap->note);
        json_object_put(snap->provider_data);
        free(snap);
        return NULL;
}
DEFINE_TRIVIAL_CLEANUP_FUNC(Snapshot *, snapshot_free);

SnapshotSet *snapshot_set_free(SnapshotSet *s) {
        if (!s)
                return NULL;
        for (size_t i = 0; i < s->n_snapshots; i++)
                snapshot_free(s->snapshots[i]);
        free(s->snapshots);
        free(s->definition);
        json_object_put(s->hooks);
        free(s);
        return NULL;
}

static int snapshot_set_append(SnapshotSet *s, Snapshot *snap) {
        Snapshot **a = reallocarray(s->snapshots, s->n_snapshots + 1, sizeof(Snapshot *));

        if (!a)
                return -ENOMEM;
        s->snapshots = a;
        s->snapshots[s->n_snapshots++] = snap;
        return 0;
}

int snapshot_set_add(SnapshotSet *s, const char *volume, const char *volume_path, dev_t device,
                     const char *provider, Snapshot **ret) {
        _cleanup_(snapshot_freep) Snapshot *snap = NULL;
        int r;

        assert(s);
        assert(volume);

        snap = calloc(1, sizeof(Snapshot));
        if (!snap)
                return -ENOMEM;
        snapset_id_generate(snap->id);
        memcpy(snap->set_id, s->id, sizeof(SnapsetId));
        snap->volume = strdup(volume);
        snap->volume_path = strdup(volume_path ?: volume);
        snap->provider = provider ? strdup(provider) : NULL;
        if (!snap->volume || !snap->volume_path || (provider && !snap->provider))
                return -ENOMEM;
        snap->volume_device = device;
        snap->created_usec = s->created_usec;
        snap->cow_used_percent = snap->pool_data_used_percent = snap->pool_metadata_used_percent = -1;
        snap->merge_percent = -1;

        r = snapshot_set_append(s, snap);
        if (r < 0)
                return r;
        if (ret)
                *ret = snap;
        TAKE_PTR(snap);
        return 0;
}

int snapshot_set_field(char **field, const char *value) {
        char *copy = NULL;

        if (value && !(copy = strdup(value)))
                return -ENOMEM;
        free(*field);
        *field = copy;
        return 0;
}

void snapshot_set_remove(SnapshotSet *s, size_t i) {
        assert(s);
        assert(i < s->n_snapshots);

        snapshot_free(s->snapshots[i]);
        memmove(s->snapshots + i, s->snapshots + i + 1, (s->n_snapshots - i - 1) * sizeof(Snapshot *));
        s->n_snapshots--;
}

Snapshot *snapshot_set_find(const SnapshotSet *s, const char *snapshot_id) {
        for (size_t i = 0; i < s->n_snapshots; i++)
                if (strcasecmp(s->snapshots[i]->id, snapshot_id) == 0)
                        return s->snapshots[i];
        return NULL;
}

/* ---------------------------------------------------------------- JSON */


/* A percentage, written with two decimals ("9.58", not "9.5800000000000001"); left out when
 * unknown (negative). */
static int add_percent(json_object *o, const char *key, double v) {
        char text[32];

        if (v < 0)
                return 0;
        snprintf(text, sizeof text, "%.2f", v);
        return json_add(o, key, json_object_new_double_s(strtod(text, NULL), text));
}

int snapshot_to_json(const Snapshot *snap, bool private, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();
        char dev[32];
        int r = 0;

        if (!o)
                return -ENOMEM;
        snprintf(dev, sizeof dev, "%u:%u", major(snap->volume_device), minor(snap->volume_device));

        r = json_add_string(o, "id", snap->id) ?:
            json_add_string(o, "setId", snap->set_id) ?:
            json_add_string(o, "volume", snap->volume) ?:
            json_add_string(o, "volumeDevice", dev) ?:
            json_add_string(o, "provider", snap->provider ?: "") ?:
            json_add_string(o, "device", snap->device) ?:
            json_add_string(o, "exposedAt", snap->exposed_at) ?:
            json_add_int(o, "createdUsec", (int64_t) snap->created_usec) ?:
            (snap->cow_size > 0 ? json_add_int(o, "cowSizeBytes", (int64_t) snap->cow_size) : 0) ?:
            add_percent(o, "cowUsedPercent", snap->cow_used_percent) ?:
            json_add_string(o, "status", snap->invalid ? "invalid" : "valid") ?:
            json_add_string(o, "kind", snap->kind) ?:
            json_add_string(o, "pool", snap->pool) ?:
            add_percent(o, "poolDataUsedPercent", snap->pool_data_used_percent) ?:
            add_percent(o, "poolMetadataUsedPercent", snap->pool_metadata_used_percent) ?:
            json_add_string(o, "note", snap->note) ?:
            json_add_string(o, "revert", snap->revert) ?:
            add_percent(o, "mergePercent", snap->merge_percent);
        if (r == 0 && private) {
                r = json_add_string(o, "volumePath", snap->volume_path);
                if (r == 0 && snap->provider_data)
                        r = json_add(o, "providerData", json_object_get(snap->provider_data));
        }
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

int snapshot_set_to_json(const SnapshotSet *s, bool private, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object(), *a = json_object_new_array();
        int r;

        if (!o || !a)
                return -ENOMEM;
        for (size_t i = 0; i < s->n_snapshots; i++) {
                json_object *j;

                r = snapshot_to_json(s->snapshots[i], private, &j);
                if (r < 0)
                        return r;
                if (json_object_array_add(a, j) < 0) {
                        json_object_put(j);
                        return -ENOMEM;
                }
        }

        r = json_add_string(o, "id", s->id) ?:
            json_add_string(o, "context", set_context_to_string(s->context)) ?:
            json_add_string(o, "state", set_state_to_string(s->state)) ?:
            json_add_int(o, "createdUsec", (int64_t) s->created_usec) ?:
            json_add(o, "snapshots", TAKE_PTR(a)) ?:
            (s->state == SET_STATE_CREATED ? json_add_int(o, "freezeWindowUsec", (int64_t) s->freeze_window_usec) : 0) ?:
            (s->state == SET_STATE_CREATED ? json_add_int(o, "holdUsec", (int64_t) s->hold_usec) : 0) ?:
            (s->frozen_usec ? json_add_int(o, "frozenUsec", (int64_t) s->frozen_usec) : 0) ?:
            json_add_string(o, "consistency", s->application_consistent ? "application-consistent" : "crash-consistent") ?:
            (s->definition ? json_add_string(o, "definition", s->definition) : 0) ?:
            (s->hooks ? json_add(o, "hooks", json_object_get(s->hooks)) : 0);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(o);
        return 0;
}

/* Typed getters for records: a missing or mistyped field is -EBADMSG. */
static int get_string(json_object *o, const char *key, bool optional, const char **ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) || json_object_is_type(v, json_type_null)) {
                if (!optional)
                        return -EBADMSG;
                *ret = NULL;
                return 0;
        }
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        *ret = json_object_get_string(v);
        return 0;
}

static int get_u64(json_object *o, const char *key, bool optional, uint64_t *ret) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v)) {
                if (!optional)
                        return -EBADMSG;
                *ret = 0;
                return 0;
        }
        if (!json_object_is_type(v, json_type_int) || json_object_get_int64(v) < 0)
                return -EBADMSG;
        *ret = (uint64_t) json_object_get_int64(v);
        return 0;
}

/* A percentage as add_percent() wrote it, or -1 when absent or not a number. */
static double get_percent(json_object *o, const char *key) {
        json_object *v;

        if (!json_object_object_get_ex(o, key, &v) ||
            !(json_object_is_type(v, json_type_double) || json_object_is_type(v, json_type_int)))
                return -1;
        return json_object_get_double(v);
}

static int copy_id(SnapsetId dst, const char *src) {
        if (!snapset_id_is_valid(src))
                return -EBADMSG;
        memcpy(dst, src, sizeof(SnapsetId));
        return 0;
}

static int snapshot_from_json(SnapshotSet *s, json_object *j) {
        const char *id, *volume, *path, *dev, *provider, *device, *exposed, *status, *kind, *pool, *note, *revert;
        unsigned maj, min;
        Snapshot *snap;
        json_object *pd;
        int r;

        r = get_string(j, "id", false, &id) ?:
            get_string(j, "volume", false, &volume) ?:
            get_string(j, "volumePath", true, &path) ?:
            get_string(j, "volumeDevice", false, &dev) ?:
            get_string(j, "provider", false, &provider) ?:
            get_string(j, "device", true, &device) ?:
            get_string(j, "exposedAt", true, &exposed) ?:
            get_string(j, "status", false, &status) ?:
            get_string(j, "kind", true, &kind) ?:
            get_string(j, "pool", true, &pool) ?:
            get_string(j, "note", true, &note) ?:
            get_string(j, "revert", true, &revert);
        if (r < 0)
                return r;
        if (sscanf(dev, "%u:%u", &maj, &min) != 2)
                return -EBADMSG;

        r = snapshot_set_add(s, volume, path, makedev(maj, min), provider, &snap);
        if (r < 0)
                return r;
        r = copy_id(snap->id, id) ?:
            get_u64(j, "createdUsec", false, &snap->created_usec) ?:
            get_u64(j, "cowSizeBytes", true, &snap->cow_size);
        if (r < 0)
                return r;
        snap->invalid = streq(status, "invalid");
        if (snapshot_set_field(&snap->device, device) < 0 || snapshot_set_field(&snap->exposed_at, exposed) < 0 ||
            snapshot_set_field(&snap->kind, kind) < 0 || snapshot_set_field(&snap->pool, pool) < 0 ||
            snapshot_set_field(&snap->note, note) < 0 || snapshot_set_field(&snap->revert, revert) < 0)
                return -ENOMEM;
        snap->cow_used_percent = get_percent(j, "cowUsedPercent");
        snap->pool_data_used_percent = get_percent(j, "poolDataUsedPercent");
        snap->pool_metadata_used_percent = get_percent(j, "poolMetadataUsedPercent");
        snap->merge_percent = get_percent(j, "mergePercent");
        if (json_object_object_get_ex(j, "providerData", &pd))
                snap->provider_data = json_object_get(pd);
        return 0;
}

int snapshot_set_from_json(json_object *j, SnapshotSet **ret) {
        _cleanup_(snapshot_set_freep) SnapshotSet *s = NULL;
        const char *id, *context, *state, *definition = NULL, *consistency = NULL;
        json_object *snaps, *hooks;
        int r;

        if (!json_object_is_type(j, json_type_object))
                return -EBADMSG;
        r = get_string(j, "id", false, &id) ?:
            get_string(j, "context", false, &context) ?:
            get_string(j, "state", false, &state);
        if (r < 0)
                return r;
        if (!json_object_object_get_ex(j, "snapshots", &snaps) || !json_object_is_type(snaps, json_type_array))
                return -EBADMSG;

        s = calloc(1, sizeof(SnapshotSet));
        if (!s)
                return -ENOMEM;
        r = copy_id(s->id, id);
        if (r < 0)
                return r;
        s->context = set_context_from_string(context);
        s->state = set_state_from_string(state);
        if (s->context < 0 || s->state < 0)
                return -EBADMSG;
        r = get_u64(j, "createdUsec", false, &s->created_usec) ?:
            get_u64(j, "freezeWindowUsec", true, &s->freeze_window_usec) ?:
            get_u64(j, "holdUsec", true, &s->hold_usec) ?:
            get_u64(j, "frozenUsec", true, &s->frozen_usec) ?:
            get_string(j, "definition", true, &definition) ?:
            get_string(j, "consistency", true, &consistency);
        if (r < 0)
                return r;
        if (definition && !(s->definition = strdup(definition)))
                return -ENOMEM;
        s->application_consistent = streq_ptr(consistency, "application-consistent");
        if (json_object_object_get_ex(j, "hooks", &hooks) && json_object_is_type(hooks, json_type_array))
                s->hooks = json_object_get(hooks);

        for (size_t i = 0; i < json_object_array_length(snaps); i++) {
                r = snapshot_from_json(s, json_object_array_get_idx(snaps, i));
                if (r < 0)
                        return r;
                /* The record names the set the snapshot belongs to; it must be this one. */
                memcpy(s->snapshots[s->n_snapshots - 1]->set_id, s->id, sizeof(SnapsetId));
        }

        *ret = TAKE_PTR(s);
        return 0;
}
