/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* A test driver for the dm-snapshot provider, for the VM tests (tests/vm/tests/40-*), until the
 * coordinator drives providers: it runs the provider's phases on real device-mapper devices in the
 * coordinator's order, with the real freeze module around the window, and can stop after any
 * phase to abort, or "crash" (exit without cleaning up) to test recovery.
 *
 *   provider-driver create [options] DEVICE...   one set of snapshots of the DEVICEs
 *       --cow-dir DIR          CowDirectory= (default /var/lib/snapset/cow)
 *       --cow-size BYTES       the call's cow size (default: none, so --default-cow-size)
 *       --default-cow-size B   DefaultCowSize= in bytes (default 64 MiB)
 *       --abort-after PHASE    call abort_snapshots after PHASE (in the window: after releasing
 *                              the writes uncommitted and thawing, as the coordinator would)
 *       --crash-after PHASE    exit(3) after PHASE, leaving everything as it is (devices
 *                              suspended, filesystems frozen, if PHASE is in the window)
 *       --state FILE           where the set's record goes (written after prepare, as the
 *                              coordinator writes /run/snapset, and again at the end)
 *   provider-driver delete|recover|activate|query --state FILE
 *                              that method for every snapshot of the recorded set
 *
 * PHASE: begin_prepare end_prepare pre_commit freeze hold commit release post_commit.
 * Prints one line per method with its code; for create, then "snapshot ID DEVICE ORIGIN" per
 * snapshot. Exit status: 0 all fine, 1 a method failed (and, for create, the set was aborted),
 * 2 usage or setup error, 3 crashed on purpose. */

#include <getopt.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "blockdev.h"
#include "freeze.h"
#include "log.h"
#include "provider.h"
#include "snapshot-set.h"
#include "vss-error.h"

static const char *const phases[] = {
        "begin_prepare", "end_prepare", "pre_commit", "freeze", "hold", "commit", "release", "post_commit",
};
enum { P_BEGIN, P_END, P_PRE, P_FREEZE, P_HOLD, P_COMMIT, P_RELEASE, P_POST, P_NONE };

static int phase_from(const char *s) {
        for (size_t i = 0; i < ELEMENTSOF(phases); i++)
                if (streq(s, phases[i]))
                        return (int) i;
        return -1;
}

static const Provider *provider = &provider_dm_snapshot;

static bool report(const char *method, size_t index, VssCode code, const ProviderResult *res) {
        if (index != SIZE_MAX)
                printf("%s[%zu]: %s", method, index, vss_code_name(code) ?: "?");
        else
                printf("%s: %s", method, vss_code_name(code) ?: "?");
        if (code != S_OK)
                printf(" (error %d, volume %zd): %s", res->error, res->failed == SIZE_MAX ? (ssize_t) -1 :
                       (ssize_t) res->failed, res->message);
        printf("\n");
        fflush(stdout);
        return code == S_OK;
}

static int save_state(const char *path, const SnapshotSet *set) {
        json_object *j;
        FILE *f;
        int r;

        if (!path)
                return 0;
        r = snapshot_set_to_json(set, true, &j);
        if (r < 0)
                return r;
        f = fopen(path, "we");
        if (!f) {
                json_object_put(j);
                return -errno;
        }
        fputs(json_object_to_json_string_ext(j, JSON_C_TO_STRING_PRETTY), f);
        fputc('\n', f);
        r = fflush(f) == 0 && fsync(fileno(f)) == 0 ? 0 : -errno;
        fclose(f);
        json_object_put(j);
        return r;
}

static int load_state(const char *path, SnapshotSet **ret) {
        json_object *j = json_object_from_file(path);
        int r;

        if (!j)
                return -EBADMSG;
        r = snapshot_set_from_json(j, ret);
        json_object_put(j);
        return r;
}

static const BlockDevice *device_find(const BlockDevice *devs, size_t n, dev_t d) {
        for (size_t i = 0; i < n; i++)
                if (makedev(devs[i].major, devs[i].minor) == d)
                        return devs + i;
        return NULL;
}

static int cmd_create(int argc, char **argv, const ProviderSettings *settings, const char *state_path,
                      uint64_t cow_size, int abort_after, int crash_after) {
        SnapshotSet *set = NULL;
        BlockDevice *devs = NULL;
        size_t n_devs = 0, n = (size_t) argc;
        ProviderSnapshot *ps_snaps = calloc(n, sizeof(ProviderSnapshot));
        ProviderSnapshot **ps_ptrs = calloc(n, sizeof(ProviderSnapshot *));
        dev_t *devnums = calloc(n, sizeof(dev_t));
        ProviderResult res = { .failed = SIZE_MAX };
        FreezeSet *fs = NULL;
        bool ok = true, frozen = false, held = false, committed = false;
        int phase = P_NONE, r;
        VssCode code;

        if (!ps_snaps || !ps_ptrs || !devnums)
                return 2;
        r = blockdev_enumerate("/sys", &devs, &n_devs);
        if (r < 0 || snapshot_set_new(SET_CONTEXT_PERSISTENT, &set) < 0) {
                fprintf(stderr, "setup failed: %s\n", strerror(-r));
                return 2;
        }
        for (size_t i = 0; i < n; i++) {
                struct stat st;
                Snapshot *s;

                if (stat(argv[i], &st) < 0 || !S_ISBLK(st.st_mode)) {
                        fprintf(stderr, "%s: not a block device\n", argv[i]);
                        return 2;
                }
                devnums[i] = st.st_rdev;
                ps_snaps[i].volume = device_find(devs, n_devs, st.st_rdev);
                if (!ps_snaps[i].volume || snapshot_set_add(set, argv[i], argv[i], st.st_rdev, provider->name, &s) < 0) {
                        fprintf(stderr, "%s: not found in /sys\n", argv[i]);
                        return 2;
                }
                s->cow_size = cow_size;
                ps_snaps[i].snapshot = s;
                ps_ptrs[i] = ps_snaps + i;
        }
        ProviderSet ps = {
                .provider = provider,
                .set = set,
                .snapshots = ps_ptrs,
                .n_snapshots = n,
                .settings = settings,
                .set_devices = devnums,
                .n_set_devices = n,
        };

#define STOP_AFTER(p)                                                   \
        do {                                                            \
                phase = (p);                                            \
                if (crash_after == (p)) {                               \
                        printf("crash after %s\n", phases[p]);          \
                        fflush(stdout);                                 \
                        _exit(3);                                       \
                }                                                       \
                if (abort_after == (p))                                 \
                        goto abort;                                     \
        } while (0)

        for (size_t i = 0; i < n; i++) {
                res = (ProviderResult) { .failed = SIZE_MAX };
                code = provider->ops->begin_prepare_snapshot(&ps, ps_ptrs[i], &res);
                if (!report("begin_prepare_snapshot", i, code, &res))
                        goto fail;
        }
        STOP_AFTER(P_BEGIN);
        res = (ProviderResult) { .failed = SIZE_MAX };
        if (!report("end_prepare_snapshots", SIZE_MAX, provider->ops->end_prepare_snapshots(&ps, &res), &res))
                goto fail;
        /* What the coordinator records in /run/snapset before the window. */
        if (save_state(state_path, set) < 0)
                goto fail;
        STOP_AFTER(P_END);
        res = (ProviderResult) { .failed = SIZE_MAX };
        if (!report("pre_commit_snapshots", SIZE_MAX, provider->ops->pre_commit_snapshots(&ps, &res), &res))
                goto fail;
        STOP_AFTER(P_PRE);

        r = freeze_set_prepare(devnums, n, NULL, &fs);
        if (r >= 0)
                r = freeze_set_sync(fs, 60 * USEC_PER_SEC);
        if (r < 0) {
                fprintf(stderr, "freeze preparation failed: %s\n", strerror(-r));
                goto fail;
        }
        /* The window: no output until the thaw (the coordinator holds its log too). */
        log_hold();
        r = freeze_set_freeze(fs, 0);
        if (r < 0)
                goto fail_window;
        frozen = true;
        STOP_AFTER(P_FREEZE);
        res = (ProviderResult) { .failed = SIZE_MAX };
        code = provider->ops->hold_writes(&ps, &res);
        held = true;   /* also on failure: release_writes resumes what was suspended */
        if (code != S_OK)
                goto fail_window_code;
        STOP_AFTER(P_HOLD);
        res = (ProviderResult) { .failed = SIZE_MAX };
        code = provider->ops->commit_snapshots(&ps, &res);
        if (code != S_OK)
                goto fail_window_code;
        committed = true;
        STOP_AFTER(P_COMMIT);
        res = (ProviderResult) { .failed = SIZE_MAX };
        code = provider->ops->release_writes(&ps, true, &res);
        held = false;
        if (code != S_OK)
                goto fail_window_code;
        STOP_AFTER(P_RELEASE);
        (void) freeze_set_thaw(fs);
        frozen = false;
        log_release();
        printf("freeze window: frozen %zu filesystem(s); hold, commit, release: S_OK\n", fs->n_targets);

        res = (ProviderResult) { .failed = SIZE_MAX };
        if (!report("post_commit_snapshots", SIZE_MAX, provider->ops->post_commit_snapshots(&ps, &res), &res))
                goto fail;
        if (save_state(state_path, set) < 0)
                goto fail;
        STOP_AFTER(P_POST);
        for (size_t i = 0; i < n; i++)
                printf("snapshot %s %s %s\n", set->snapshots[i]->id, strna(set->snapshots[i]->device), argv[i]);
        freeze_set_free(fs);
        return 0;

fail_window_code:
        report(phase + 1 < P_NONE ? phases[phase + 1] : "window", SIZE_MAX, code, &res);
fail_window:
        ok = false;
abort:
        /* Undo as the coordinator does: uncommitted release, thaw, then abort. */
        if (held) {
                ProviderResult rr = { .failed = SIZE_MAX };
                report("release_writes(committed=false)", SIZE_MAX, provider->ops->release_writes(&ps, false, &rr), &rr);
        }
        if (frozen)
                (void) freeze_set_thaw(fs);
        if (log_is_held())
                log_release();
        if (ok)
                printf("aborting after %s\n", phases[phase]);
        goto do_abort;
fail:
        ok = false;
do_abort:
        (void) committed;
        res = (ProviderResult) { .failed = SIZE_MAX };
        report("abort_snapshots", SIZE_MAX, provider->ops->abort_snapshots(&ps, &res), &res);
        freeze_set_free(fs);
        return ok ? 0 : 1;
}

static int cmd_each(const char *verb, const char *state_path, const ProviderSettings *settings) {
        SnapshotSet *set = NULL;
        int r, ret = 0;

        if (!state_path) {
                fprintf(stderr, "%s needs --state\n", verb);
                return 2;
        }
        r = load_state(state_path, &set);
        if (r < 0) {
                fprintf(stderr, "cannot load %s: %s\n", state_path, strerror(-r));
                return 2;
        }
        for (size_t i = 0; i < set->n_snapshots; i++) {
                Snapshot *s = set->snapshots[i];
                ProviderResult res = { .failed = SIZE_MAX };
                VssCode code;

                if (streq(verb, "delete"))
                        code = provider->ops->delete_snapshot(s, settings, &res);
                else if (streq(verb, "recover"))
                        code = provider->ops->recover(s, settings, &res);
                else if (streq(verb, "activate"))
                        code = provider->ops->activate_snapshot(s, settings, &res);
                else
                        code = provider->ops->query(s, &res);
                if (!report(verb, i, code, &res))
                        ret = 1;
                else if (streq(verb, "query")) {
                        json_object *pd = s->provider_data, *u = NULL, *t = NULL;

                        json_object_object_get_ex(pd, "cowUsedSectors", &u);
                        json_object_object_get_ex(pd, "cowTotalSectors", &t);
                        printf("query %s invalid=%s cow=%" PRId64 "/%" PRId64 "\n", s->id, s->invalid ? "yes" : "no",
                               u ? json_object_get_int64(u) : -1, t ? json_object_get_int64(t) : -1);
                } else if (streq(verb, "activate"))
                        printf("activated %s %s\n", s->id, strna(s->device));
        }
        if (ret == 0 && (streq(verb, "activate") || streq(verb, "query")))
                (void) save_state(state_path, set);
        snapshot_set_free(set);
        return ret;
}

int main(int argc, char **argv) {
        static const struct option options[] = {
                { "cow-dir", required_argument, NULL, 'd' },
                { "cow-size", required_argument, NULL, 's' },
                { "default-cow-size", required_argument, NULL, 'D' },
                { "abort-after", required_argument, NULL, 'a' },
                { "crash-after", required_argument, NULL, 'c' },
                { "state", required_argument, NULL, 'S' },
                { "debug", no_argument, NULL, 'v' },
                {}
        };
        ProviderSettings settings = {
                .cow_directory = "/var/lib/snapset/cow",
                .default_cow_size = 64U << 20,
                .run_directory = "/run/snapset",
        };
        const char *state_path = NULL, *verb;
        uint64_t cow_size = 0;
        int abort_after = -1, crash_after = -1, c;

        log_set_program_name("provider-driver");
        log_set_max_level(LOG_INFO);
        if (argc < 2) {
                fprintf(stderr, "usage: see the top of provider-driver.c\n");
                return 2;
        }
        verb = argv[1];
        optind = 2;
        while ((c = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (c) {
                case 'd': settings.cow_directory = optarg; break;
                case 's': cow_size = strtoull(optarg, NULL, 0); break;
                case 'D': settings.default_cow_size = strtoull(optarg, NULL, 0); break;
                case 'a': abort_after = phase_from(optarg); if (abort_after < 0) return 2; break;
                case 'c': crash_after = phase_from(optarg); if (crash_after < 0) return 2; break;
                case 'S': state_path = optarg; break;
                case 'v': log_set_max_level(LOG_DEBUG); break;
                default: return 2;
                }
        if (streq(verb, "create")) {
                if (optind >= argc)
                        return 2;
                return cmd_create(argc - optind, argv + optind, &settings, state_path, cow_size, abort_after,
                                  crash_after);
        }
        if (streq(verb, "delete") || streq(verb, "recover") || streq(verb, "activate") || streq(verb, "query"))
                return cmd_each(verb, state_path, &settings);
        fprintf(stderr, "unknown command %s\n", verb);
        return 2;
}
