/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>

#include "lvm-report.h"
#include "varlink.h"

/* ---------------------------------------------------------------- freeing */

void lvm_lv_done(LvmLv *lv) {
        free(lv->vg);
        free(lv->name);
        free(lv->uuid);
        free(lv->attr);
        free(lv->segtype);
        free(lv->pool);
        free(lv->origin);
        free(lv->tags);
        *lv = (LvmLv) {};
}

void lvm_vg_done(LvmVg *vg) {
        free(vg->name);
        free(vg->uuid);
        free(vg->attr);
        *vg = (LvmVg) {};
}

void lvm_pv_done(LvmPv *pv) {
        free(pv->name);
        free(pv->vg);
        *pv = (LvmPv) {};
}

#define DEFINE_ARRAY_FREE(type, name, done)                     \
        type *name(type *a, size_t n) {                         \
                for (size_t i = 0; a && i < n; i++)             \
                        done(a + i);                            \
                free(a);                                        \
                return NULL;                                    \
        }
DEFINE_ARRAY_FREE(LvmLv, lvm_lvs_free, lvm_lv_done)
DEFINE_ARRAY_FREE(LvmVg, lvm_vgs_free, lvm_vg_done)
DEFINE_ARRAY_FREE(LvmPv, lvm_pvs_free, lvm_pv_done)

/* ---------------------------------------------------------------- rows */

/* The rows of a report: {"report": [ {"<key>": [ {...}, ... ]} ]}. lvm puts one element in
 * "report" per report type; the one with key is taken. */
static int report_rows(json_object *root, const char *key, json_object **ret) {
        json_object *report;

        if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "report", &report) ||
            !json_object_is_type(report, json_type_array))
                return -EBADMSG;
        for (size_t i = 0; i < json_object_array_length(report); i++) {
                json_object *e = json_object_array_get_idx(report, i), *rows;

                if (json_object_is_type(e, json_type_object) && json_object_object_get_ex(e, key, &rows) &&
                    json_object_is_type(rows, json_type_array)) {
                        *ret = rows;
                        return 0;
                }
        }
        return -EBADMSG;
}

/* A column as a string; "" (lvm's "not applicable") gives NULL. */
static int column_string(json_object *row, const char *column, char **ret) {
        json_object *v;
        const char *s;

        *ret = NULL;
        if (!json_object_object_get_ex(row, column, &v))
                return 0;
        if (!json_object_is_type(v, json_type_string))
                return -EBADMSG;
        s = json_object_get_string(v);
        if (!s[0])
                return 0;
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

static int column_u64(json_object *row, const char *column, uint64_t *ret) {
        _cleanup_free_ char *s = NULL;
        char *end;
        int r;

        *ret = 0;
        r = column_string(row, column, &s);
        if (r < 0 || !s)
                return r;
        errno = 0;
        *ret = strtoull(s, &end, 10);
        return errno != 0 || *end || s[0] == '-' ? -EBADMSG : 0;
}

static int column_percent(json_object *row, const char *column, double *ret) {
        _cleanup_free_ char *s = NULL;
        char *end;
        int r;

        *ret = -1;
        r = column_string(row, column, &s);
        if (r < 0 || !s)
                return r;
        *ret = strtod(s, &end);
        return *end || *ret < 0 ? -EBADMSG : 0;
}

/* lv_time: seconds since the epoch with report/time_format="%s", else a date lvm formats for
 * people, which is left as unknown (0). */
static int column_time(json_object *row, const char *column, uint64_t *ret) {
        if (column_u64(row, column, ret) < 0)
                *ret = 0;
        return 0;
}

typedef int (*RowParser)(json_object *row, void *element);

static int parse_report(const char *json, const char *key, size_t element_size, RowParser parse,
                        void (*done)(void *), void **ret, size_t *ret_n) {
        _cleanup_(json_object_putp) json_object *root = NULL;
        json_object *rows;
        char *a;
        size_t n;
        int r;

        root = json_tokener_parse(json);
        if (!root)
                return -EBADMSG;
        r = report_rows(root, key, &rows);
        if (r < 0)
                return r;
        n = json_object_array_length(rows);
        a = calloc(n ?: 1, element_size);
        if (!a)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                json_object *row = json_object_array_get_idx(rows, i);

                r = json_object_is_type(row, json_type_object) ? parse(row, a + i * element_size) : -EBADMSG;
                if (r < 0) {
                        for (size_t j = 0; j <= i; j++)
                                done(a + j * element_size);
                        free(a);
                        return r;
                }
        }
        *ret = a;
        *ret_n = n;
        return 0;
}

static int parse_lv(json_object *row, void *element) {
        LvmLv *lv = element;

        return column_string(row, "vg_name", &lv->vg) ?:
               column_string(row, "lv_name", &lv->name) ?:
               column_string(row, "lv_uuid", &lv->uuid) ?:
               column_string(row, "lv_attr", &lv->attr) ?:
               column_string(row, "segtype", &lv->segtype) ?:
               column_string(row, "pool_lv", &lv->pool) ?:
               column_string(row, "origin", &lv->origin) ?:
               column_string(row, "lv_tags", &lv->tags) ?:
               column_u64(row, "lv_size", &lv->size) ?:
               column_percent(row, "data_percent", &lv->data_percent) ?:
               column_percent(row, "metadata_percent", &lv->metadata_percent) ?:
               column_percent(row, "snap_percent", &lv->snap_percent) ?:
               column_time(row, "lv_time", &lv->time);
}

static int parse_vg(json_object *row, void *element) {
        LvmVg *vg = element;

        return column_string(row, "vg_name", &vg->name) ?:
               column_string(row, "vg_uuid", &vg->uuid) ?:
               column_string(row, "vg_attr", &vg->attr) ?:
               column_u64(row, "vg_extent_size", &vg->extent_size) ?:
               column_u64(row, "vg_free", &vg->free);
}

static int parse_pv(json_object *row, void *element) {
        LvmPv *pv = element;

        return column_string(row, "pv_name", &pv->name) ?:
               column_string(row, "vg_name", &pv->vg);
}

static void lv_done(void *p) { lvm_lv_done(p); }
static void vg_done(void *p) { lvm_vg_done(p); }
static void pv_done(void *p) { lvm_pv_done(p); }

int lvm_report_parse_lvs(const char *json, LvmLv **ret, size_t *ret_n) {
        return parse_report(json, "lv", sizeof(LvmLv), parse_lv, lv_done, (void **) ret, ret_n);
}

int lvm_report_parse_vgs(const char *json, LvmVg **ret, size_t *ret_n) {
        return parse_report(json, "vg", sizeof(LvmVg), parse_vg, vg_done, (void **) ret, ret_n);
}

int lvm_report_parse_pvs(const char *json, LvmPv **ret, size_t *ret_n) {
        return parse_report(json, "pv", sizeof(LvmPv), parse_pv, pv_done, (void **) ret, ret_n);
}

/* ---------------------------------------------------------------- attributes */

bool lvm_lv_is_active(const LvmLv *lv) {
        return lv->attr && strlen(lv->attr) >= 5 && lv->attr[4] == 'a';
}

bool lvm_lv_is_thin_volume(const LvmLv *lv) {
        return streq_ptr(lv->segtype, "thin");
}

bool lvm_lv_has_tag(const LvmLv *lv, const char *tag) {
        size_t len = strlen(tag);

        for (const char *t = lv->tags; t && *t; ) {
                size_t l = strcspn(t, ",");

                if (l == len && strncmp(t, tag, len) == 0)
                        return true;
                t += l;
                if (*t == ',')
                        t++;
        }
        return false;
}

/* ---------------------------------------------------------------- errors */

/* Case-sensitive substring search over lvm's (LC_ALL=C) messages. */
static bool says(const char *text, const char *const *phrases, size_t n) {
        for (size_t i = 0; i < n; i++)
                if (strstr(text, phrases[i]))
                        return true;
        return false;
}

VssCode lvm_error_code(int exit_status, const char *stderr_text) {
        static const char *const not_found[] = {
                "Failed to find logical volume", "not found", "Cannot process volume group",
                "does not exist",
        };
        static const char *const no_space[] = {
                "Insufficient free space", "insufficient free space", "Insufficient suitable allocatable",
                "Not enough free space", "reached threshold", "out of space",
        };
        static const char *const busy[] = {
                "lock", "in use", "is used by another device", "Device or resource busy", "already exists",
                "is active", "suspended",
        };
        const char *t = strempty(stderr_text);

        if (exit_status == 0)
                return S_OK;
        /* Space first: "Volume group "vg" has insufficient free space" names a VG that exists. */
        if (says(t, no_space, ELEMENTSOF(no_space)))
                return VSS_E_INSUFFICIENT_STORAGE;
        if (says(t, busy, ELEMENTSOF(busy)))
                return VSS_E_BAD_STATE;
        if (says(t, not_found, ELEMENTSOF(not_found)))
                return VSS_E_OBJECT_NOT_FOUND;
        return VSS_E_PROVIDER_VETO;
}

void lvm_error_summary(const char *stderr_text, char *buf, size_t n) {
        size_t used = 0;

        buf[0] = 0;
        for (const char *l = strempty(stderr_text); *l && used + 1 < n; ) {
                size_t len = strcspn(l, "\n");
                const char *s = l;

                while (s < l + len && (*s == ' ' || *s == '\t'))
                        s++;
                /* lvm's own noise: warnings about leaked descriptors, and WARNING lines that do
                 * not say why the command failed, are kept only when nothing else is there. */
                if (s < l + len && !startswith(s, "File descriptor")) {
                        int k = snprintf(buf + used, n - used, "%s%.*s", used ? "; " : "", (int) (l + len - s), s);

                        if (k < 0)
                                break;
                        used += (size_t) k < n - used ? (size_t) k : n - used - 1;
                }
                l += len;
                if (*l == '\n')
                        l++;
        }
}

bool lvm_name_is_valid(const char *name) {
        if (!name || !name[0] || name[0] == '-' || strlen(name) > 127 || streq(name, ".") || streq(name, ".."))
                return false;
        for (const char *c = name; *c; c++)
                if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') ||
                      *c == '+' || *c == '_' || *c == '.' || *c == '-'))
                        return false;
        return true;
}
