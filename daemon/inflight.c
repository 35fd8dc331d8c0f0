/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <dirent.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdio.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <syslog.h>

#include "inflight.h"
#include "set-events.h"
#include "store.h"
#include "varlink.h"

/* The undo list with each volume's mountpoint (the FreezeSet's target on the same device). */
static int add_undo(json_object *j, const WindowUndo *u, const FreezeSet *fs) {
        _cleanup_free_ char **mountpoints = calloc(u->n_volumes ?: 1, sizeof(char *));
        json_object *a = NULL;
        int r;

        if (!mountpoints)
                return -ENOMEM;
        for (size_t i = 0; i < u->n_volumes; i++)
                for (size_t k = 0; fs && k < fs->n_targets; k++)
                        if (fs->targets[k].device == u->volumes[i].device)
                                mountpoints[i] = fs->targets[k].mountpoint;
        r = window_undo_to_json(u, mountpoints, &a);
        if (r < 0)
                return r;
        if (json_object_object_add(j, "undoVolumes", a) < 0) {
                json_object_put(a);
                return -ENOMEM;
        }
        return 0;
}

int inflight_save(const char *dir, const SnapshotSet *set, const FreezeSet *fs, const WindowUndo *undo) {
        _cleanup_(json_object_putp) json_object *j = NULL;
        char name[NAME_MAX + 1];
        const char *text;
        size_t len;
        int r;

        if (!dir)
                return 0;
        if (mkdir(dir, 0700) < 0 && errno != EEXIST)
                return -errno;

        r = snapshot_set_to_json(set, /* private= */ true, &j);
        if (r < 0)
                return r;
        if (fs) {
                json_object *a = json_object_new_array();

                if (!a || json_object_object_add(j, "mountpoints", a) < 0) {
                        json_object_put(a);
                        return -ENOMEM;
                }
                for (size_t i = 0; i < fs->n_targets; i++)
                        if (json_object_array_add(a, json_object_new_string(fs->targets[i].mountpoint)) < 0)
                                return -ENOMEM;
        }
        if (undo) {
                r = add_undo(j, undo, fs);
                if (r < 0)
                        return r;
        }
        text = json_object_to_json_string_length(j, JSON_C_TO_STRING_PLAIN, &len);
        if (!text)
                return -ENOMEM;
        snprintf(name, sizeof name, "%s.json", set->id);
        return write_file_atomic(dir, name, text, len);
}

void inflight_remove(const char *dir, const char *set_id) {
        char p[PATH_MAX];

        if (!dir)
                return;
        snprintf(p, sizeof p, "%s/%s.json", dir, set_id);
        (void) unlink(p);
}

/* "set-recovered" for what could be undone, "recovery-failed" (LOG_ERR) for what could not. */
static void event(SetEventSink sink, void *userdata, int priority, const SnapshotSet *set,
                  const Snapshot *snap, const char *provider, const char *message) {
        SetEvent e;

        set_event_init(&e, priority, set ? set->id : NULL, snap ? snap->id : NULL,
                       snap ? snap->volume : NULL, provider, provider ? "Recover" : NULL);
        snprintf(e.type, sizeof e.type, "%s", priority <= LOG_ERR ? "recovery-failed" : "set-recovered");
        snprintf(e.message, sizeof e.message, "%s", message);
        set_events_emit(&e, sink, userdata);
}

/* A built-in provider records what it will make before it makes it (provider_record_intent()):
 * a snapshot recorded without provider data (the daemon stopped before or early in
 * begin_prepare_snapshot) has nothing of it to undo. An external provider is asked all the
 * same: what it keeps is its own business. */
static bool made_nothing(const Provider *p, const Snapshot *snap) {
        size_t n;
        const Provider *const *builtins = provider_builtins(&n);

        if (snap->provider_data)
                return false;
        for (size_t i = 0; i < n; i++)
                if (builtins[i] == p)
                        return true;
        return false;
}

/* Each snapshot's provider undoes its part: before the thaw (recover), or after it
 * (recover_after_thaw, for providers that need it). */
/* Returns how many could not be undone; the first one's reason goes to failure. */
static unsigned recover_snapshots(SnapshotSet *set, const ProviderSettings *settings, bool thawed,
                                  SetEventSink sink, void *userdata, char *failure, size_t failure_size) {
        unsigned failed = 0;

        for (size_t i = 0; i < set->n_snapshots; i++) {
                Snapshot *snap = set->snapshots[i];
                const Provider *p = provider_by_name(snap->provider);
                ProviderResult res = { .failed = SIZE_MAX };
                char msg[768];
                VssCode code;

                if (p && made_nothing(p, snap))
                        continue;
                if (thawed) {
                        if (!p || !p->ops->recover_after_thaw)
                                continue;
                        code = p->ops->recover_after_thaw(snap, settings, &res);
                        if (code != S_OK) {
                                snprintf(msg, sizeof msg, "Could not remove snapshot %s of '%s' left by an "
                                         "interrupted run (%s): %s", snap->id, snap->volume,
                                         strna(vss_code_name(code)), res.message);
                                event(sink, userdata, LOG_ERR, set, snap, p->name, msg);
                                if (failed++ == 0)
                                        snprintf(failure, failure_size, "%s", msg);
                        }
                        continue;
                }
                if (!p || !p->ops->recover) {
                        snprintf(msg, sizeof msg, "Cannot undo snapshot %s of '%s' left by an interrupted run: "
                                 "provider '%s' is not available; install or fix it, or remove its devices by hand.",
                                 snap->id, snap->volume, snap->provider);
                        event(sink, userdata, LOG_ERR, set, snap, snap->provider, msg);
                        if (failed++ == 0)
                                snprintf(failure, failure_size, "%s", msg);
                        continue;
                }
                code = p->ops->recover(snap, settings, &res);
                if (code == S_OK)
                        snprintf(msg, sizeof msg, "Undid snapshot %s of '%s' left by an interrupted run.",
                                 snap->id, snap->volume);
                else
                        snprintf(msg, sizeof msg, "Could not fully undo snapshot %s of '%s' left by an "
                                 "interrupted run (%s): %s", snap->id, snap->volume,
                                 strna(vss_code_name(code)), res.message);
                event(sink, userdata, code == S_OK ? LOG_NOTICE : LOG_ERR, set, snap, p->name, msg);
                if (code != S_OK && failed++ == 0)
                        snprintf(failure, failure_size, "%s", msg);
        }
        return failed;
}

/* Thaws every recorded mountpoint. EINVAL from FITHAW means it was not frozen: fine. Opening a
 * path on a frozen filesystem is safe: lookups only read. */
static void thaw_mountpoints(json_object *record, const SnapshotSet *set, SetEventSink sink, void *userdata) {
        json_object *a;

        if (!json_object_object_get_ex(record, "mountpoints", &a) || !json_object_is_type(a, json_type_array))
                return;
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                const char *mp = json_object_get_string(json_object_array_get_idx(a, i));
                _cleanup_close_ int fd = -EBADF;
                char msg[600];

                if (!mp)
                        continue;
                fd = open(mp, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
                if (fd < 0)
                        continue;
                if (ioctl(fd, FITHAW, 0) >= 0) {
                        snprintf(msg, sizeof msg, "Thawed %s, left frozen by an interrupted run.", mp);
                        event(sink, userdata, LOG_WARNING, set, NULL, NULL, msg);
                } else if (errno != EINVAL) {
                        snprintf(msg, sizeof msg, "Could not thaw %s: %s (run 'fsfreeze --unfreeze %s').",
                                 mp, strerror(errno), mp);
                        event(sink, userdata, LOG_ERR, set, NULL, NULL, msg);
                }
        }
}

/* Marks a record as needing attention, with why: it stays, is retried at every start and by
 * Cleanup, and GetStatus lists it. */
static int mark_attention(const char *dir, const char *name, json_object *record, const char *why) {
        const char *text;
        size_t len;

        if (json_object_object_add(record, "attention", json_object_new_string(why)) < 0)
                return -ENOMEM;
        text = json_object_to_json_string_length(record, JSON_C_TO_STRING_PLAIN, &len);
        if (!text)
                return -ENOMEM;
        return write_file_atomic(dir, name, text, len);
}

int inflight_keep(const char *dir, const char *set_id, const char *why) {
        _cleanup_(json_object_putp) json_object *j = NULL;
        char p[PATH_MAX], name[NAME_MAX + 1];

        if (!dir)
                return 0;
        snprintf(name, sizeof name, "%s.json", set_id);
        snprintf(p, sizeof p, "%s/%s", dir, name);
        j = json_object_from_file(p);
        if (!j)
                return -ENOENT;
        return mark_attention(dir, name, j, why);
}

int inflight_keep_snapshot(const char *dir, const SnapshotSet *set, const Snapshot *snap, const char *why) {
        _cleanup_(json_object_putp) json_object *j = NULL, *only = NULL;
        char name[NAME_MAX + 1];
        json_object *a;
        int r;

        if (!dir)
                return 0;
        r = snapshot_set_to_json(set, /* private= */ true, &j);
        if (r < 0)
                return r;
        only = json_object_new_array();
        if (!only)
                return -ENOMEM;
        if (json_object_object_get_ex(j, "snapshots", &a))
                for (size_t i = 0; i < json_object_array_length(a); i++) {
                        json_object *s = json_object_array_get_idx(a, i), *id;

                        if (json_object_object_get_ex(s, "id", &id) && streq_ptr(json_object_get_string(id), snap->id) &&
                            json_object_array_add(only, json_object_get(s)) < 0)
                                return -ENOMEM;
                }
        if (json_object_object_add(j, "snapshots", TAKE_PTR(only)) < 0)
                return -ENOMEM;
        snprintf(name, sizeof name, "%s.json", snap->id);
        return mark_attention(dir, name, j, why);
}

/* Returns 1 if the record is kept (something could not be undone), 0 if it is gone. */
static int recover_record(const char *dir, const char *name, const ProviderSettings *settings,
                          SetEventSink sink, void *userdata) {
        _cleanup_(json_object_putp) json_object *j = NULL;
        _cleanup_(snapshot_set_freep) SnapshotSet *set = NULL;
        char p[PATH_MAX + NAME_MAX + 2], msg[PATH_MAX + 200], failure[768] = "";
        unsigned failed;
        int r;

        snprintf(p, sizeof p, "%s/%s", dir, name);
        j = json_object_from_file(p);
        r = j ? snapshot_set_from_json(j, &set) : -EBADMSG;
        if (r < 0) {
                snprintf(msg, sizeof msg, "Cannot read the record of an interrupted run %s; "
                         "check for leftover snapset-* devices by hand ('dmsetup ls').", p);
                event(sink, userdata, LOG_ERR, NULL, NULL, NULL, msg);
                /* Thaw what it names, even if the rest is unreadable. */
                if (j)
                        thaw_mountpoints(j, NULL, sink, userdata);
                (void) unlink(p);
                return 0;
        }

        /* Providers first: a filesystem on a suspended device cannot be thawed (the thaw writes
         * the superblock), so the devices are resumed before the thaw. */
        failed = recover_snapshots(set, settings, false, sink, userdata, failure, sizeof failure);
        thaw_mountpoints(j, set, sink, userdata);
        /* What may only happen on thawed filesystems (lvm commands). */
        failed += recover_snapshots(set, settings, true, sink, userdata, failure, sizeof failure);
        if (failed > 0) {
                /* Kept until what it names is really gone: tried again at the next start and by
                 * "snapsetctl cleanup". */
                (void) mark_attention(dir, name, j, failure);
                snprintf(msg, sizeof msg, "Snapshot set %s could not be fully undone (%u snapshot(s) left); its "
                         "record is kept in %s: fix the cause, then run 'snapsetctl cleanup'.", set->id, failed, dir);
                event(sink, userdata, LOG_ERR, set, NULL, NULL, msg);
                return 1;
        }
        snprintf(msg, sizeof msg, "Snapshot set %s was interrupted or not fully undone; it was undone now and "
                 "nothing of it is kept.", set->id);
        event(sink, userdata, LOG_WARNING, set, NULL, NULL, msg);
        (void) unlink(p);
        return 0;
}

/* Calls f for every record (NAME.json) in dir; returns how many, or negative errno if dir cannot
 * be read (a missing one has none). */
static int for_each_record(const char *dir, const char *skip_set_id,
                           void (*f)(const char *dir, const char *name, void *userdata), void *userdata) {
        DIR *d;
        struct dirent *de;
        int n = 0;

        d = opendir(dir);
        if (!d)
                return errno == ENOENT ? 0 : -errno;
        while ((de = readdir(d))) {
                const char *dot = strrchr(de->d_name, '.');

                if (de->d_name[0] == '.' || !dot || !streq(dot, ".json"))
                        continue;
                if (skip_set_id && strlen(skip_set_id) == (size_t) (dot - de->d_name) &&
                    strncmp(de->d_name, skip_set_id, strlen(skip_set_id)) == 0)
                        continue;
                f(dir, de->d_name, userdata);
                n++;
        }
        closedir(d);
        return n;
}

static void rescue_record(const char *dir, const char *name, void *userdata) {
        _cleanup_(json_object_putp) json_object *j = NULL;
        _cleanup_(window_undo_freep) WindowUndo *u = NULL;
        char p[PATH_MAX + NAME_MAX + 2];
        json_object *a;

        snprintf(p, sizeof p, "%s/%s", dir, name);
        j = json_object_from_file(p);
        /* A record without a list (unreadable, or written before the window was prepared):
         * inflight_recover() reports it, and has nothing to resume or thaw. */
        /* One kept after a failed abort was thawed by the daemon that wrote it: nothing of its
         * window is left to resume (and a device suspended now is someone else's business). */
        if (j && !json_object_object_get_ex(j, "attention", NULL) &&
            json_object_object_get_ex(j, "undoVolumes", &a) && window_undo_from_json(a, &u) >= 0)
                window_undo_run(u, userdata);
}

int inflight_rescue(const char *dir, UndoReport *report) {
        return for_each_record(dir, NULL, rescue_record, report);
}

typedef struct RecoverContext {
        const ProviderSettings *settings;
        SetEventSink sink;
        void *userdata;
        unsigned kept;
} RecoverContext;

static void recover_one(const char *dir, const char *name, void *userdata) {
        RecoverContext *ctx = userdata;

        if (recover_record(dir, name, ctx->settings, ctx->sink, ctx->userdata) > 0)
                ctx->kept++;
}

int inflight_recover(const char *dir, const char *skip_set_id, const ProviderSettings *settings,
                     SetEventSink sink, void *userdata, unsigned *ret_kept) {
        RecoverContext ctx = { .settings = settings, .sink = sink, .userdata = userdata };
        int n;

        n = for_each_record(dir, skip_set_id, recover_one, &ctx);
        if (ret_kept)
                *ret_kept = ctx.kept;
        return n;
}

typedef struct IdsContext {
        char ***ids;
        int error;
} IdsContext;

static void ids_one(const char *dir, const char *name, void *userdata) {
        _cleanup_(json_object_putp) json_object *j = NULL;
        char p[PATH_MAX + NAME_MAX + 2];
        IdsContext *ctx = userdata;
        json_object *a, *id;

        snprintf(p, sizeof p, "%s/%s", dir, name);
        j = json_object_from_file(p);
        if (!j || !json_object_object_get_ex(j, "snapshots", &a))
                return;
        for (size_t i = 0; i < json_object_array_length(a); i++)
                if (json_object_object_get_ex(json_object_array_get_idx(a, i), "id", &id) &&
                    json_object_get_string(id) && blockdev_strv_push(ctx->ids, json_object_get_string(id)) < 0)
                        ctx->error = -ENOMEM;
}

int inflight_snapshot_ids(const char *dir, char ***ids) {
        IdsContext ctx = { .ids = ids };
        int r;

        r = dir ? for_each_record(dir, NULL, ids_one, &ctx) : 0;
        return r < 0 ? r : ctx.error;
}

typedef struct ListContext {
        InflightEntry *entries;
        size_t n;
        int error;
} ListContext;

static void list_one(const char *dir, const char *name, void *userdata) {
        _cleanup_(json_object_putp) json_object *j = NULL;
        ListContext *ctx = userdata;
        InflightEntry *a, *e;
        char p[PATH_MAX + NAME_MAX + 2];
        json_object *v;

        snprintf(p, sizeof p, "%s/%s", dir, name);
        j = json_object_from_file(p);
        a = reallocarray(ctx->entries, ctx->n + 1, sizeof(InflightEntry));
        if (!a) {
                ctx->error = -ENOMEM;
                return;
        }
        ctx->entries = a;
        e = &a[ctx->n];
        *e = (InflightEntry) {};
        /* The set's id from the record (a failed AddToSnapshotSet's is named by its snapshot). */
        e->set_id = j && json_object_object_get_ex(j, "id", &v) && json_object_get_string(v) ?
                    strdup(json_object_get_string(v)) : strndup(name, strlen(name) - strlen(".json"));
        e->attention = strdup(j && json_object_object_get_ex(j, "attention", &v) ? json_object_get_string(v) :
                              "interrupted by a stop of snapsetd; undone at its next start or by 'snapsetctl cleanup'");
        if (!e->set_id || !e->attention) {
                free(e->set_id);
                free(e->attention);
                ctx->error = -ENOMEM;
                return;
        }
        ctx->n++;
}

int inflight_list(const char *dir, const char *skip_set_id, InflightEntry **ret, size_t *ret_n) {
        ListContext ctx = {};
        int r;

        r = dir ? for_each_record(dir, skip_set_id, list_one, &ctx) : 0;
        if (r >= 0 && ctx.error < 0)
                r = ctx.error;
        if (r < 0) {
                inflight_entries_free(ctx.entries, ctx.n);
                return r;
        }
        *ret = ctx.entries;
        *ret_n = ctx.n;
        return 0;
}

void inflight_entries_free(InflightEntry *e, size_t n) {
        for (size_t i = 0; i < n; i++) {
                free(e[i].set_id);
                free(e[i].attention);
        }
        free(e);
}
