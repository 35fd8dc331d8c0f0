/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The one reader of systemd-style INI files (snapsetd.conf, NAME.provider): "[Section]" headers,
 * "Key=value" lines, blank lines and comments starting with '#' or ';'. Blanks around keys,
 * values and whole lines are dropped. The reader knows the syntax, not the sections or keys: it
 * hands each header and each assignment to its caller's handler, and words the syntax errors
 * itself, so that every file a user writes is read and explained the same way. */

#include <stdio.h>

#include "macro.h"

/* Called with key and value NULL when a "[section]" header starts a section (to reject an
 * unknown one at its own line), then with each Key=value of that section; value may be "".
 * Returns 0, or a negative errno. A handler that explains a failure puts the explanation into
 * *reterr_message (with ini_error()) without file and line: the reader prefixes "NAME:LINE: ". */
typedef int (*IniHandler)(const char *section, const char *key, const char *value, unsigned line,
                          void *userdata, char **reterr_message);

/* Reads f to its end, calling handler for each header and assignment. Errors in the syntax, and
 * those the handler explains, return -EINVAL with *reterr_message set to "NAME:LINE: ..."; a
 * failed read returns its errno with "NAME: read failed: ...". Other errors (-ENOMEM) leave
 * *reterr_message as it was. reterr_message may be NULL. */
int ini_parse(FILE *f, const char *name, IniHandler handler, void *userdata, char **reterr_message);

/* Replaces *reterr_message with the formatted message and returns -EINVAL, or -ENOMEM if the
 * message could not be formatted. Does nothing but return -EINVAL if reterr_message is NULL. */
_printf_(2, 3)
int ini_error(char **reterr_message, const char *format, ...);
