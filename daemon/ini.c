/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ini.h"

int ini_error(char **reterr_message, const char *format, ...) {
        va_list ap;
        int r;

        if (!reterr_message)
                return -EINVAL;
        free(*reterr_message);
        *reterr_message = NULL;
        va_start(ap, format);
        r = vasprintf(reterr_message, format, ap);
        va_end(ap);
        if (r < 0) {
                *reterr_message = NULL;
                return -ENOMEM;
        }
        return -EINVAL;
}

static char *strip(char *s) {
        char *e;

        while (isspace((unsigned char) *s))
                s++;
        e = s + strlen(s);
        while (e > s && isspace((unsigned char) e[-1]))
                *--e = 0;
        return s;
}

/* Calls the handler and puts "NAME:LINE: " before the message it leaves, if any. */
static int ini_call(IniHandler handler, const char *section, const char *key, const char *value,
                    const char *name, unsigned line, void *userdata, char **reterr_message) {
        _cleanup_free_ char *message = NULL;
        int r;

        r = handler(section, key, value, line, userdata, &message);
        if (r >= 0)
                return r;
        if (message && ini_error(reterr_message, "%s:%u: %s", name, line, message) == -ENOMEM)
                return -ENOMEM;
        return r;
}

int ini_parse(FILE *f, const char *name, IniHandler handler, void *userdata, char **reterr_message) {
        /* A copy: the header's text in line is gone with the next getline(). */
        _cleanup_free_ char *line = NULL, *section = NULL;
        size_t allocated = 0;
        unsigned lineno = 0;
        int r;

        for (;;) {
                char *l, *eq, *k, *v;
                ssize_t n;

                errno = 0;
                n = getline(&line, &allocated, f);
                if (n < 0) {
                        if (errno != 0 && !feof(f)) {
                                r = -errno;
                                (void) ini_error(reterr_message, "%s: read failed: %s", name, strerror(-r));
                                return r;
                        }
                        break;
                }
                lineno++;

                if (strlen(line) != (size_t) n)
                        return ini_error(reterr_message, "%s:%u: line contains a NUL byte", name, lineno);

                l = strip(line);
                if (l[0] == 0 || l[0] == '#' || l[0] == ';')
                        continue;

                if (l[0] == '[') {
                        size_t ll = strlen(l);

                        if (ll < 3 || l[ll - 1] != ']')
                                return ini_error(reterr_message, "%s:%u: '%s': malformed section header",
                                                 name, lineno, l);
                        free(section);
                        section = strndup(l + 1, ll - 2);
                        if (!section)
                                return -ENOMEM;
                        r = ini_call(handler, section, NULL, NULL, name, lineno, userdata, reterr_message);
                        if (r < 0)
                                return r;
                        continue;
                }

                eq = strchr(l, '=');
                if (!eq)
                        return ini_error(reterr_message, "%s:%u: '%s': expected Key=value or [Section]",
                                         name, lineno, l);
                *eq = 0;
                k = strip(l);
                v = strip(eq + 1);

                if (k[0] == 0)
                        return ini_error(reterr_message, "%s:%u: '=%s': missing key name", name, lineno, v);
                if (!section)
                        return ini_error(reterr_message, "%s:%u: %s=%s: key outside of any section",
                                         name, lineno, k, v);

                r = ini_call(handler, section, k, v, name, lineno, userdata, reterr_message);
                if (r < 0)
                        return r;
        }

        return 0;
}
