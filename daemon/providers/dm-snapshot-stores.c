/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>

#include "blockdev.h"
#include "cow.h"
#include "dm-snapshot-stores.h"
#include "dm-snapshot.h"
#include "dm.h"
#include "macro.h"
#include "provider.h"

/* The file behind loop device ma:mi (sysfs loop/backing_file), or -ENXIO if it is no loop. */
static int loop_backing_file(unsigned ma, unsigned mi, char *buf, size_t size) {
        char path[96];
        FILE *f;
        bool ok;

        snprintf(path, sizeof path, "/sys/dev/block/%u:%u/loop/backing_file", ma, mi);
        f = fopen(path, "re");
        if (!f)
                return errno == ENOENT ? -ENXIO : -errno;
        ok = fgets(buf, (int) size, f) != NULL;
        fclose(f);
        if (!ok)
                return -EIO;
        buf[strcspn(buf, "\n")] = 0;
        return 0;
}

/* The COW device of a "snapshot" table on real: its second parameter. */
static int cow_device_of(const char *table, unsigned real_ma, unsigned real_mi, unsigned *ma, unsigned *mi) {
        unsigned rma, rmi;
        const char *p;

        if (!dm_snapshot_table_uses_real(table, real_ma, real_mi) || !(p = strstr(table, " snapshot ")))
                return -EINVAL;
        return sscanf(p, " snapshot %u:%u %u:%u", &rma, &rmi, ma, mi) == 4 ? 0 : -EINVAL;
}

int dm_snapshot_store_conflict(unsigned real_major, unsigned real_minor, const dev_t *set_devices, size_t n,
                               StoreConflict *ret) {
        char **names = NULL;
        int r, found = 0;

        r = dm_device_list(&names);
        if (r < 0)
                return r;
        for (char **name = names; *name && !found; name++) {
                _cleanup_free_ char *table = NULL;
                unsigned ma, mi;
                struct stat st;
                dev_t conflict;

                if (!startswith(*name, SNAPSET_DM_NAME_PREFIX) || dm_device_table(DM_REF_NAME(*name), false, &table) < 0 ||
                    cow_device_of(table, real_major, real_minor, &ma, &mi) < 0 ||
                    loop_backing_file(ma, mi, ret->store, sizeof ret->store) < 0 || stat(ret->store, &st) < 0)
                        continue;
                if (cow_device_conflicts("/sys", st.st_dev, set_devices, n, &conflict) > 0) {
                        snprintf(ret->snapshot, sizeof ret->snapshot, "%s", *name);
                        ret->volume = conflict;
                        found = 1;
                }
        }
        blockdev_strv_free(names);
        return found;
}
