/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* snapset-generator: a systemd generator (systemd.generator(7)) that hands each set definition's
 * OnCalendar= to its timer. For every /etc/snapset/sets.d/NAME.conf that can be used and has a
 * schedule, it writes NORMAL-DIR/snapset-create@NAME.timer.d/50-schedule.conf:
 *
 *     [Timer]
 *     OnCalendar=...
 *
 * at every boot and every "systemctl daemon-reload". A definition with an error gets no
 * schedule, so its timer refuses to start ("lacks value setting") rather than firing a set that
 * the daemon would refuse; the error goes to the generator's stderr (the journal). The same
 * reader as snapsetd's (schedule/definition.c) decides, so the two never disagree. */

#include <stdio.h>
#include <sys/stat.h>

#include "config.h"
#include "schedule/definition.h"

/* '%' starts a specifier in unit files. */
static void write_escaped(FILE *f, const char *s) {
        for (; *s; s++)
                fputs(*s == '%' ? "%%" : (char[2]) { *s, 0 }, f);
}

static int write_schedule(const char *dir, const SetDefinition *d) {
        _cleanup_free_ char *unit_dir = NULL, *path = NULL;
        FILE *f;

        if (asprintf(&unit_dir, "%s/snapset-create@%s.timer.d", dir, d->name) < 0 ||
            asprintf(&path, "%s/50-schedule.conf", unit_dir) < 0)
                return -ENOMEM;
        if (mkdir(unit_dir, 0755) < 0 && errno != EEXIST)
                return -errno;
        f = fopen(path, "we");
        if (!f)
                return -errno;
        fprintf(f, "# Written by snapset-generator from %s\n[Timer]\nOnCalendar=", d->path);
        write_escaped(f, d->on_calendar);
        fputc('\n', f);
        return fclose(f) == 0 ? 0 : -errno;
}

int main(int argc, char *argv[]) {
        _cleanup_(config_done) Config config = {};
        _cleanup_(definitions_done) DefinitionList l = {};
        _cleanup_free_ char *message = NULL;
        int r, failed = 0;

        if (argc != 2 && argc != 4) {
                fprintf(stderr, "snapset-generator: run by systemd as a generator: NORMAL-DIR [EARLY-DIR LATE-DIR]\n");
                return 1;
        }
        /* snapsetd.conf may name another definition directory; a bad file leaves the default. */
        r = config_load(getenv("SNAPSET_CONFIG") ?: CONFIG_DEFAULT_PATH, true, &config, &message);
        if (r < 0) {
                fprintf(stderr, "snapset-generator: %s; reading %s\n", message ? message : strerror(-r),
                        CONFIG_DEFAULT_DEFINITION_DIRECTORY);
                if (config_init(&config) < 0)
                        return 1;
        }
        r = definitions_load(config.definition_directory, &l);
        if (r < 0) {
                fprintf(stderr, "snapset-generator: cannot read %s: %s\n", config.definition_directory, strerror(-r));
                return 1;
        }
        for (size_t i = 0; i < l.n; i++) {
                const SetDefinition *d = l.items[i];

                if (d->error) {
                        fprintf(stderr, "snapset-generator: no schedule for snapset-create@%s.timer: %s\n", d->name, d->error);
                        continue;
                }
                if (!d->on_calendar)
                        continue;
                r = write_schedule(argv[1], d);
                if (r < 0) {
                        fprintf(stderr, "snapset-generator: cannot write the schedule of %s: %s\n", d->name, strerror(-r));
                        failed = 1;
                }
        }
        return failed;
}
