/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>
#include <stdio.h>

#include <json-c/json.h>

#include "log.h"
#include "provider.h"
#include "snapshot-set.h"

static const Provider *const builtins[] = {
        &provider_lvm,
        &provider_dm_thin,
        &provider_dm_snapshot,
};

const Provider *const *provider_builtins(size_t *ret_n) {
        *ret_n = ELEMENTSOF(builtins);
        return builtins;
}

void provider_orphans_free(ProviderOrphan *o, size_t n) {
        for (size_t i = 0; o && i < n; i++) {
                free(o[i].volume);
                json_object_put(o[i].provider_data);
        }
        free(o);
}

/* ---------------------------------------------------------------- probing */

ProviderStatus *provider_status_free(ProviderStatus *status, size_t n) {
        if (!status)
                return NULL;
        for (size_t i = 0; i < n; i++)
                free(status[i].reason);
        free(status);
        return NULL;
}

/* Providers added at run time (external providers, test fakes), looked up after the built-ins. */
static const Provider *registered[32];
static size_t n_registered;

int provider_register(const Provider *p) {
        if (provider_by_name(p->name))
                return -EEXIST;
        if (n_registered >= ELEMENTSOF(registered))
                return -ENOSPC;
        registered[n_registered++] = p;
        return 0;
}

void provider_unregister(const Provider *p) {
        for (size_t i = 0; i < n_registered; i++)
                if (registered[i] == p) {
                        registered[i] = registered[--n_registered];
                        return;
                }
}

const Provider *provider_by_name(const char *name) {
        size_t n;
        const Provider *const *all = provider_builtins(&n);

        for (size_t i = 0; name && i < n; i++)
                if (streq(all[i]->name, name))
                        return all[i];
        for (size_t i = 0; name && i < n_registered; i++)
                if (streq(registered[i]->name, name))
                        return registered[i];
        return NULL;
}

int provider_probe(const Provider *p, char **ret_reason) {
        if (p->ops->probe_instance)
                return p->ops->probe_instance(p, ret_reason);
        if (p->ops->probe)
                return p->ops->probe(ret_reason);
        return 1;
}

int provider_is_volume_supported(const Provider *p, const BlockDevice *d, char **ret_reason) {
        if (p->ops->is_volume_supported_instance)
                return p->ops->is_volume_supported_instance(p, d, ret_reason);
        if (p->ops->is_volume_supported)
                return p->ops->is_volume_supported(d, ret_reason);
        return VOLUME_NOT_HANDLED;
}

static int probe_one(const Provider *p, ProviderStatus *ret) {
        char *reason = NULL;
        int r;

        r = provider_probe(p, &reason);
        if (r > 0) {
                *ret = (ProviderStatus) { .provider = p, .usable = true };
                return 0;
        }
        if (r < 0) {
                log_debug_errno(r, "Probing provider %s failed: %m", p->name);
                if (asprintf(&reason, "probing it failed: %s", strerror(-r)) < 0)
                        return -ENOMEM;
        }
        /* An unusable provider always says why: the administrator has nothing else to go on. */
        if (!reason && !(reason = strdup("it gave no reason")))
                return -ENOMEM;
        *ret = (ProviderStatus) { .provider = p, .usable = false, .reason = reason };
        return 0;
}

int provider_probe_all(ProviderStatus **ret_status, size_t *ret_n) {
        const Provider *all[ELEMENTSOF(builtins) + ELEMENTSOF(registered)];
        size_t n = 0;
        ProviderStatus *status;
        int r;

        /* Insertion sort by priority; stable, so built-ins come first among equals. */
        for (size_t i = 0; i < ELEMENTSOF(builtins) + n_registered; i++) {
                const Provider *p = i < ELEMENTSOF(builtins) ? builtins[i] : registered[i - ELEMENTSOF(builtins)];
                size_t j = n++;

                for (; j > 0 && all[j - 1]->priority > p->priority; j--)
                        all[j] = all[j - 1];
                all[j] = p;
        }

        status = calloc(n, sizeof(ProviderStatus));
        if (!status)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                r = probe_one(all[i], status + i);
                if (r < 0) {
                        provider_status_free(status, i);
                        return r;
                }
        }
        *ret_status = status;
        *ret_n = n;
        return 0;
}

/* ---------------------------------------------------------------- selection */

int provider_not_supported(char **ret_reason, const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(ret_reason, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        return VOLUME_NOT_SUPPORTED;
}

bool provider_device_is_snapset_own(const BlockDevice *d) {
        return d->type == BLOCK_DEVICE_DM && d->dm_uuid && startswith(d->dm_uuid, SNAPSET_DM_UUID_PREFIX);
}

/* When no provider recognises the device at all. */
static int reason_unhandled(const BlockDevice *d, char **ret_reason) {
        int r;

        if (d->type == BLOCK_DEVICE_DM)
                r = asprintf(ret_reason, "no provider handles this device-mapper device");
        else if (d->n_holders > 0)
                /* An LVM physical volume, a LUKS container, an md member: the data that matters
                 * is on the devices stacked on top, and those are what can be snapshotted. */
                r = asprintf(ret_reason, "not a device-mapper device; %zu device%s stacked on it: "
                             "snapshot %s instead", d->n_holders, d->n_holders == 1 ? " is" : "s are",
                             d->n_holders == 1 ? "that one" : "those");
        else
                r = asprintf(ret_reason, "not a device-mapper device: put it under device-mapper "
                             "(e.g. make it an LVM logical volume) to snapshot it");
        return r < 0 ? -ENOMEM : 0;
}

/* The reasons gathered while going through the providers, best first. */
typedef struct SelectReasons {
        const ProviderStatus *unusable;  /* the first provider that supports d but is not usable */
        char *not_supported;             /* the first VOLUME_NOT_SUPPORTED reason */
} SelectReasons;

static int reason_from(const SelectReasons *s, const BlockDevice *d, char **ret_reason) {
        if (s->unusable) {
                if (asprintf(ret_reason, "the %s provider would take it, but %s",
                             s->unusable->provider->name, strna(s->unusable->reason)) < 0)
                        return -ENOMEM;
                return 0;
        }
        if (s->not_supported) {
                *ret_reason = strdup(s->not_supported);
                return *ret_reason ? 0 : -ENOMEM;
        }
        return reason_unhandled(d, ret_reason);
}

int provider_select(const ProviderStatus *status, size_t n, const BlockDevice *d,
                    const Provider **ret_provider, char **ret_reason) {
        SelectReasons reasons = {};
        int r = 0;

        for (size_t i = 0; i < n; i++) {
                const Provider *p = status[i].provider;
                char *why = NULL;

                r = provider_is_volume_supported(p, d, &why);
                if (r < 0)
                        break;
                if (r == VOLUME_SUPPORTED && status[i].usable) {
                        free(reasons.not_supported);
                        *ret_provider = p;
                        return 1;
                }
                if (r == VOLUME_SUPPORTED && !reasons.unusable)
                        reasons.unusable = status + i;
                /* A provider that could not answer explains as well as one that refused. */
                if ((r == VOLUME_NOT_SUPPORTED || r == VOLUME_PROVIDER_FAILED) && !reasons.not_supported)
                        reasons.not_supported = TAKE_PTR(why);
                free(why);
        }
        if (r >= 0)
                r = reason_from(&reasons, d, ret_reason);
        free(reasons.not_supported);
        return r < 0 ? r : 0;
}

size_t provider_snapshot_index(const ProviderSet *ps, const ProviderSnapshot *snap) {
        for (size_t i = 0; i < ps->n_snapshots; i++)
                if (ps->snapshots[i] == snap)
                        return i;
        return SIZE_MAX;
}

void provider_data_replace(Snapshot *model, json_object *j) {
        json_object_put(model->provider_data);
        model->provider_data = j;
}

int provider_record_intent(ProviderSet *ps, Snapshot *model, json_object *j) {
        provider_data_replace(model, j);
        return ps->save_record ? ps->save_record(ps->save_record_userdata) : 0;
}

int provider_revert_commit(ProviderRevert *rv, Snapshot *model, json_object *j) {
        json_object *old = model->provider_data;
        int r;

        model->provider_data = j;
        r = rv->save_record ? rv->save_record(rv->save_record_userdata) : 0;
        if (r < 0) {
                model->provider_data = old;
                json_object_put(j);
                return r;
        }
        json_object_put(old);
        rv->committed = true;
        return 0;
}

void provider_revert_uncommit(ProviderRevert *rv, Snapshot *model, json_object *j) {
        provider_data_replace(model, j);
        rv->committed = false;
}

VssCode provider_revert_done(ProviderRevert *rv) {
        rv->done = true;
        rv->percent = 100;
        return S_OK;
}
