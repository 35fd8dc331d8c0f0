/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What snapsetctl prints: human sizes, durations and times, aligned tables, "Label: value" lines,
 * JSON documents, and typed access to the fields of a reply. Nothing here connects anywhere or
 * decides an exit status. */

#include <inttypes.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <json-c/json.h>

#include "macro.h"
#include "snapsetctl.h"
#include "time-util.h"

/* ---------------------------------------------------------------- formatting (pure) */

/* "0B", "512B", "4K", "1.5G", "931.5G": powers of 1024 with one decimal, as lsblk(8) prints. */
#define FORMAT_BYTES_MAX 16
char *format_bytes(char *buf, size_t size, uint64_t bytes);

/* "0s", "250us", "850ms", "1.5s", "10s", "3min 5s", "2d 4h 1min 7s". */
#define FORMAT_DURATION_MAX 64
char *format_duration(char *buf, size_t size, uint64_t usec);

/* Local time, "2024-05-01 12:00:01 CEST"; NULL if usec cannot be converted. */
#define FORMAT_TIMESTAMP_MAX 64
char *format_timestamp(char *buf, size_t size, uint64_t usec);

/* "12.345 ms": milliseconds with the microseconds, for the freeze window of a set. */
#define FORMAT_MSEC_MAX 32
char *format_msec(char *buf, size_t size, uint64_t usec);

/* "2024-05-01 12:00:01 CEST (3h 2min ago)" if usec is before now, else the time alone; NULL if
 * usec cannot be converted. */
#define FORMAT_TIMESTAMP_AGO_MAX (FORMAT_TIMESTAMP_MAX + FORMAT_DURATION_MAX + 8)
char *format_timestamp_ago(char *buf, size_t size, uint64_t usec, uint64_t now);

/* A copy of s that is safe to print on a terminal: control characters become \xNN. NULL on
 * allocation failure. */
char *escape_for_terminal(const char *s);

/* The number of terminal columns s takes (bytes that are not valid in the locale count one
 * each). */
size_t text_width(const char *s);

/* ---------------------------------------------------------------- tables */

typedef struct Table Table;

/* A table with n_columns columns and the given headers (exactly n_columns strings). */
Table *table_new(size_t n_columns, ...);
Table *table_free(Table *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(Table *, table_free);

/* Starts every line of the table with indent spaces (a table that belongs to the line above). */
void table_set_indent(Table *t, size_t indent);

/* Right-aligns a column (numbers, sizes). */
void table_align_right(Table *t, size_t column);

/* Adds a row of exactly n_columns strings, copied and escaped for the terminal; NULL or "" prints
 * as "-". Returns 0 or -ENOMEM. */
int table_add_row(Table *t, ...);

size_t table_rows(const Table *t);

/* Prints the header and the rows, columns separated by two spaces, no trailing blanks. */
int table_print(const Table *t, FILE *f);

/* ---------------------------------------------------------------- labelled values */

/* Prints "Label:" padded to a common width, then the value, escaped for the terminal:
 * indent 0 for top-level fields, 2 for fields that belong to the one above. */
void output_field(unsigned indent, const char *label, const char *format, ...) _printf_(3, 4);

/* Prints one line, escaped for the terminal. */
void output_line(const char *format, ...) _printf_(1, 2);

/* ---------------------------------------------------------------- JSON */

/* Prints one JSON document and a newline on f: one line for JSON_SHORT (and JSON_OFF), indented
 * for JSON_PRETTY. Returns 0 or a negative errno. */
int output_json(FILE *f, json_object *o, JsonMode mode);

/* "short" and "pretty"; "off". */
JsonMode json_mode_from_string(const char *s);

/* ---------------------------------------------------------------- reply fields */

/* Typed access to a field of a reply object. A field that is absent, null or of another type
 * reads as missing: NULL, or false with *ret untouched. */
const char *reply_get_string(json_object *o, const char *key);
bool reply_get_int(json_object *o, const char *key, int64_t *ret);
bool reply_get_bool(json_object *o, const char *key, bool *ret);
json_object *reply_get_array(json_object *o, const char *key);
json_object *reply_get_object(json_object *o, const char *key);

/* Joins the strings of a JSON array with sep; non-strings are skipped. Returns a new string
 * ("" for an empty or missing array) or NULL on allocation failure. */
char *reply_join_strings(json_object *array, const char *sep);
