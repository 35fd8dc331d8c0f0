/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>
#include <time.h>
#include <wchar.h>

#include "output.h"
#include "time-util.h"

/* ---------------------------------------------------------------- formatting */

char *format_bytes(char *buf, size_t size, uint64_t bytes) {
        static const char units[] = "KMGTPE";
        uint64_t unit = 1024, tenths;
        size_t i = 0;

        if (bytes < 1024) {
                snprintf(buf, size, "%" PRIu64 "B", bytes);
                return buf;
        }

        while (i + 1 < sizeof units - 1 && bytes / unit >= 1024) {
                unit *= 1024;
                i++;
        }
        /* Rounded to one decimal without overflowing: (bytes % unit) * 10 fits for unit <= 2^60. */
        tenths = bytes / unit * 10 + ((bytes % unit) * 10 + unit / 2) / unit;
        if (tenths >= 10240 && i + 1 < sizeof units - 1) {
                /* 1023.96K rounds to 1024.0K: say 1M. */
                unit *= 1024;
                i++;
                tenths = bytes / unit * 10 + ((bytes % unit) * 10 + unit / 2) / unit;
        }

        if (tenths % 10 == 0)
                snprintf(buf, size, "%" PRIu64 "%c", tenths / 10, units[i]);
        else
                snprintf(buf, size, "%" PRIu64 ".%" PRIu64 "%c", tenths / 10, tenths % 10, units[i]);
        return buf;
}

static char *format_seconds_with_fraction(char *buf, size_t size, uint64_t usec) {
        uint64_t ms = usec / USEC_PER_MSEC;
        int n;

        n = snprintf(buf, size, "%" PRIu64 ".%03" PRIu64, ms / 1000, ms % 1000);
        /* "1.500" -> "1.5", "10.000" -> "10". */
        while (n > 0 && (size_t) n < size && buf[n - 1] == '0')
                buf[--n] = 0;
        if (n > 0 && (size_t) n < size && buf[n - 1] == '.')
                buf[--n] = 0;
        if (n >= 0 && (size_t) n + 1 < size) {
                buf[n] = 's';
                buf[n + 1] = 0;
        }
        return buf;
}

char *format_duration(char *buf, size_t size, uint64_t usec) {
        static const struct {
                const char *suffix;
                uint64_t usec;
        } parts[] = {
                { "d",   24 * 60 * 60 * USEC_PER_SEC },
                { "h",   60 * 60 * USEC_PER_SEC },
                { "min", 60 * USEC_PER_SEC },
                { "s",   USEC_PER_SEC },
        };
        size_t used = 0;

        if (usec < USEC_PER_MSEC) {
                snprintf(buf, size, usec == 0 ? "0s" : "%" PRIu64 "us", usec);
                return buf;
        }
        if (usec < USEC_PER_SEC) {
                snprintf(buf, size, "%" PRIu64 "ms", usec / USEC_PER_MSEC);
                return buf;
        }
        if (usec < 60 * USEC_PER_SEC)
                return format_seconds_with_fraction(buf, size, usec);

        buf[0] = 0;
        for (size_t i = 0; i < ELEMENTSOF(parts); i++) {
                uint64_t n = usec / parts[i].usec;
                int k;

                usec %= parts[i].usec;
                if (n == 0)
                        continue;
                k = snprintf(buf + used, size - used, "%s%" PRIu64 "%s",
                             used > 0 ? " " : "", n, parts[i].suffix);
                if (k < 0 || (size_t) k >= size - used)
                        break;
                used += (size_t) k;
        }
        return buf;
}

char *format_timestamp(char *buf, size_t size, uint64_t usec) {
        time_t t = (time_t) (usec / USEC_PER_SEC);
        struct tm tm;

        if (usec / USEC_PER_SEC > (uint64_t) INT64_MAX / 2 || !localtime_r(&t, &tm))
                return NULL;
        if (strftime(buf, size, "%Y-%m-%d %H:%M:%S %Z", &tm) == 0)
                return NULL;
        return buf;
}

char *format_msec(char *buf, size_t size, uint64_t usec) {
        snprintf(buf, size, "%" PRIu64 ".%03" PRIu64 " ms", usec / USEC_PER_MSEC, usec % USEC_PER_MSEC);
        return buf;
}

char *format_timestamp_ago(char *buf, size_t size, uint64_t usec, uint64_t now) {
        char when[FORMAT_TIMESTAMP_MAX], ago[FORMAT_DURATION_MAX];

        if (!format_timestamp(when, sizeof when, usec))
                return NULL;
        if (usec <= now)
                snprintf(buf, size, "%s (%s ago)", when, format_duration(ago, sizeof ago, now - usec));
        else
                snprintf(buf, size, "%s", when);
        return buf;
}

char *escape_for_terminal(const char *s) {
        size_t n = 0;
        char *r, *p;

        for (const char *c = s; *c; c++)
                n += ((unsigned char) *c < ' ' || *c == 0x7f) ? 4 : 1;
        r = malloc(n + 1);
        if (!r)
                return NULL;

        p = r;
        for (const char *c = s; *c; c++) {
                if ((unsigned char) *c < ' ' || *c == 0x7f)
                        p += sprintf(p, "\\x%02x", (unsigned) (unsigned char) *c);
                else
                        *p++ = *c;
        }
        *p = 0;
        return r;
}

size_t text_width(const char *s) {
        mbstate_t state = {};
        size_t width = 0, left = strlen(s);

        while (left > 0) {
                wchar_t wc;
                size_t k = mbrtowc(&wc, s, left, &state);
                int w;

                if (k == (size_t) -1 || k == (size_t) -2 || k == 0) {
                        /* Not valid in this locale: one column per byte, and start afresh. */
                        memset(&state, 0, sizeof state);
                        width++;
                        s++;
                        left--;
                        continue;
                }
                w = wcwidth(wc);
                width += w > 0 ? (size_t) w : 0;
                s += k;
                left -= k;
        }
        return width;
}

/* ---------------------------------------------------------------- tables */

struct Table {
        size_t n_columns;
        size_t n_cells;       /* header included */
        size_t allocated;
        char **cells;
        bool *right;          /* per column */
        size_t indent;
};

Table *table_free(Table *t) {
        if (!t)
                return NULL;
        for (size_t i = 0; i < t->n_cells; i++)
                free(t->cells[i]);
        free(t->cells);
        free(t->right);
        free(t);
        return NULL;
}

static int table_add_cell(Table *t, const char *text) {
        char *copy;

        if (t->n_cells == t->allocated) {
                size_t n = t->allocated > 0 ? t->allocated * 2 : t->n_columns * 8;
                char **cells = reallocarray(t->cells, n, sizeof *cells);

                if (!cells)
                        return -ENOMEM;
                t->cells = cells;
                t->allocated = n;
        }

        copy = escape_for_terminal(text && *text ? text : "-");
        if (!copy)
                return -ENOMEM;
        t->cells[t->n_cells++] = copy;
        return 0;
}

static int table_add_cellsv(Table *t, va_list ap) {
        for (size_t i = 0; i < t->n_columns; i++) {
                int r = table_add_cell(t, va_arg(ap, const char *));
                if (r < 0)
                        return r;
        }
        return 0;
}

Table *table_new(size_t n_columns, ...) {
        _cleanup_(table_freep) Table *t = NULL;
        va_list ap;
        int r;

        t = calloc(1, sizeof *t);
        if (!t)
                return NULL;
        t->n_columns = n_columns;
        t->right = calloc(n_columns, sizeof *t->right);
        if (!t->right)
                return NULL;

        va_start(ap, n_columns);
        r = table_add_cellsv(t, ap);
        va_end(ap);
        if (r < 0)
                return NULL;
        return TAKE_PTR(t);
}

void table_set_indent(Table *t, size_t indent) {
        t->indent = indent;
}

void table_align_right(Table *t, size_t column) {
        if (column < t->n_columns)
                t->right[column] = true;
}

int table_add_row(Table *t, ...) {
        size_t before = t->n_cells;
        va_list ap;
        int r;

        va_start(ap, t);
        r = table_add_cellsv(t, ap);
        va_end(ap);
        if (r < 0) {
                /* Leave no half row behind. */
                while (t->n_cells > before)
                        free(t->cells[--t->n_cells]);
        }
        return r;
}

size_t table_rows(const Table *t) {
        return t->n_cells / t->n_columns - 1;
}

static void print_padding(FILE *f, size_t n) {
        for (size_t i = 0; i < n; i++)
                fputc(' ', f);
}

int table_print(const Table *t, FILE *f) {
        _cleanup_free_ size_t *widths = NULL;

        widths = calloc(t->n_columns, sizeof *widths);
        if (!widths)
                return -ENOMEM;
        for (size_t i = 0; i < t->n_cells; i++) {
                size_t w = text_width(t->cells[i]);
                size_t c = i % t->n_columns;

                if (w > widths[c])
                        widths[c] = w;
        }

        for (size_t i = 0; i < t->n_cells; i++) {
                size_t c = i % t->n_columns;
                size_t pad = widths[c] - text_width(t->cells[i]);
                bool last = c + 1 == t->n_columns;

                if (c == 0)
                        print_padding(f, t->indent);
                else
                        fputs("  ", f);
                if (t->right[c])
                        print_padding(f, pad);
                fputs(t->cells[i], f);
                if (!t->right[c] && !last)
                        print_padding(f, pad);
                if (last)
                        fputc('\n', f);
        }
        return 0;
}

/* ---------------------------------------------------------------- labelled values */

#define LABEL_WIDTH 24

void output_field(unsigned indent, const char *label, const char *format, ...) {
        _cleanup_free_ char *value = NULL, *escaped = NULL;
        unsigned width = indent < LABEL_WIDTH ? LABEL_WIDTH - indent : 0;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&value, format, ap);
        va_end(ap);
        if (r < 0) {
                value = NULL;
                return;
        }
        escaped = escape_for_terminal(value);
        if (*value == 0)
                printf("%*s%s\n", (int) indent, "", label);
        else
                printf("%*s%-*s%s\n", (int) indent, "", (int) width, label, escaped ?: value);
}

void output_line(const char *format, ...) {
        _cleanup_free_ char *text = NULL, *escaped = NULL;
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&text, format, ap);
        va_end(ap);
        if (r < 0) {
                text = NULL;
                return;
        }
        escaped = escape_for_terminal(text);
        puts(escaped ?: text);
}

/* ---------------------------------------------------------------- JSON */

int output_json(FILE *f, json_object *o, JsonMode mode) {
        int flags = JSON_C_TO_STRING_NOSLASHESCAPE;
        const char *s;

        flags |= mode == JSON_PRETTY ? JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_SPACED
                                     : JSON_C_TO_STRING_PLAIN;
        s = json_object_to_json_string_ext(o, flags);
        if (!s)
                return -ENOMEM;
        if (fputs(s, f) == EOF || fputc('\n', f) == EOF)
                return -EIO;
        return 0;
}

JsonMode json_mode_from_string(const char *s) {
        if (!s || streq(s, "short"))
                return JSON_SHORT;
        if (streq(s, "pretty"))
                return JSON_PRETTY;
        if (streq(s, "off"))
                return JSON_OFF;
        return _JSON_MODE_INVALID;
}

/* ---------------------------------------------------------------- reply fields */

static json_object *reply_get_typed(json_object *o, const char *key, json_type type) {
        json_object *v;

        if (!o || !json_object_is_type(o, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, type))
                return NULL;
        return v;
}

const char *reply_get_string(json_object *o, const char *key) {
        json_object *v = reply_get_typed(o, key, json_type_string);
        return v ? json_object_get_string(v) : NULL;
}

bool reply_get_int(json_object *o, const char *key, int64_t *ret) {
        json_object *v = reply_get_typed(o, key, json_type_int);

        if (!v)
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

bool reply_get_bool(json_object *o, const char *key, bool *ret) {
        json_object *v = reply_get_typed(o, key, json_type_boolean);

        if (!v)
                return false;
        *ret = json_object_get_boolean(v);
        return true;
}

json_object *reply_get_array(json_object *o, const char *key) {
        return reply_get_typed(o, key, json_type_array);
}

json_object *reply_get_object(json_object *o, const char *key) {
        return reply_get_typed(o, key, json_type_object);
}

char *reply_join_strings(json_object *array, const char *sep) {
        size_t n = array ? json_object_array_length(array) : 0, len = 0, seplen = strlen(sep);
        char *r, *p;

        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(array, i);
                if (json_object_is_type(e, json_type_string))
                        len += json_object_get_string_len(e) + seplen;
        }
        r = malloc(len + 1);
        if (!r)
                return NULL;

        p = r;
        for (size_t i = 0, joined = 0; i < n; i++) {
                json_object *e = json_object_array_get_idx(array, i);
                if (!json_object_is_type(e, json_type_string))
                        continue;
                if (joined++ > 0)
                        p = stpcpy(p, sep);
                p = stpcpy(p, json_object_get_string(e));
        }
        *p = 0;
        return r;
}
