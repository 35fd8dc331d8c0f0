/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* A tiny logging API in the systemd style. Each message is one line on stderr; when stderr is
 * the journal (JOURNAL_STREAM matches it), the line carries the "<N>" priority prefix of
 * sd-daemon(3), so journald records the right priority without any extra API.
 *
 * The log can be held: between the first freeze and the last thaw nothing may be written to any
 * filesystem, stderr included (architecture §1.3). log_hold() switches every log call to a
 * preallocated in-memory queue; log_release() writes the queue out, in order, with the time each
 * message was queued. */

#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <syslog.h>

#include "macro.h"

void log_set_max_level(int level);
int log_get_max_level(void);
/* Parses "err", "warning", "info", "debug" or a number 0-7; negative errno if invalid. */
int log_level_from_string(const char *s);

/* The program name printed before messages when not writing to the journal. */
void log_set_program_name(const char *name);

/* Logs at level; if error is non-zero, %m expands to strerror(|error|). Returns -|error|, so
 * "return log_error_errno(r, ...)" logs and returns in one line. */
int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) _printf_(6, 7);
int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *format, va_list ap) _printf_(6, 0);

#define log_full_errno(level, error, ...) \
        log_internal((level), (error), __FILE__, __LINE__, __func__, __VA_ARGS__)
#define log_full(level, ...) (void) log_full_errno((level), 0, __VA_ARGS__)

#define log_debug(...)   log_full(LOG_DEBUG, __VA_ARGS__)
#define log_info(...)    log_full(LOG_INFO, __VA_ARGS__)
#define log_notice(...)  log_full(LOG_NOTICE, __VA_ARGS__)
#define log_warning(...) log_full(LOG_WARNING, __VA_ARGS__)
#define log_error(...)   log_full(LOG_ERR, __VA_ARGS__)

#define log_debug_errno(error, ...)   log_full_errno(LOG_DEBUG, (error), __VA_ARGS__)
#define log_info_errno(error, ...)    log_full_errno(LOG_INFO, (error), __VA_ARGS__)
#define log_notice_errno(error, ...)  log_full_errno(LOG_NOTICE, (error), __VA_ARGS__)
#define log_warning_errno(error, ...) log_full_errno(LOG_WARNING, (error), __VA_ARGS__)
#define log_error_errno(error, ...)   log_full_errno(LOG_ERR, (error), __VA_ARGS__)

#define log_oom() log_error_errno(ENOMEM, "Out of memory.")

/* Holds the log: messages go to the preallocated queue until log_release(). The queue holds
 * LOG_QUEUE_SIZE bytes of text; past that, messages are counted as dropped and the count is
 * reported at release. Safe to call when already held (no-op). */
#define LOG_QUEUE_SIZE (256U * 1024U)
void log_hold(void);
bool log_is_held(void);
/* Writes out the queued messages and stops holding. Returns the number of messages dropped
 * because the queue was full. */
unsigned log_release(void);
