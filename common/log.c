/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <pthread.h>
#include <stdio.h>
#include <sys/stat.h>
#include <time.h>

#include "log.h"
#include "time-util.h"

static int max_level = LOG_INFO;
static const char *program_name = NULL;
static int journal_stderr = -1; /* -1: not determined yet */

/* The hold queue: a static buffer, so that holding never allocates (the heap may need pages the
 * kernel would have to fault in from a frozen filesystem... or simply fail). Records are
 * "<level>\t<usec>\t<text>\0". */
static char queue[LOG_QUEUE_SIZE];
static size_t queue_used = 0;
static unsigned queue_dropped = 0;
static bool held = false;
/* The daemon logs from its loop while a job thread holds the log: queue and flag are shared.
 * Whoever takes the lock only copies bytes and never blocks while holding it, so taking it inside
 * the window is no wait without a deadline. */
static pthread_mutex_t queue_lock = PTHREAD_MUTEX_INITIALIZER;

void log_set_max_level(int level) {
        max_level = level;
}

int log_get_max_level(void) {
        return max_level;
}

void log_set_program_name(const char *name) {
        program_name = name;
}

int log_level_from_string(const char *s) {
        static const char *const names[] = {
                [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert", [LOG_CRIT] = "crit",
                [LOG_ERR] = "err", [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
                [LOG_INFO] = "info", [LOG_DEBUG] = "debug",
        };

        if (!s)
                return -EINVAL;
        for (size_t i = 0; i < ELEMENTSOF(names); i++)
                if (streq(s, names[i]))
                        return (int) i;
        if (streq(s, "error"))
                return LOG_ERR;
        if (s[0] >= '0' && s[0] <= '7' && s[1] == 0)
                return s[0] - '0';
        return -EINVAL;
}

/* stderr is the journal if JOURNAL_STREAM names its device and inode (systemd.exec(5)). */
static bool stderr_is_journal(void) {
        if (journal_stderr < 0) {
                const char *e = getenv("JOURNAL_STREAM");
                unsigned long dev, ino;
                struct stat st;

                journal_stderr = e && sscanf(e, "%lu:%lu", &dev, &ino) == 2 &&
                                 fstat(STDERR_FILENO, &st) >= 0 &&
                                 st.st_dev == (dev_t) dev && st.st_ino == (ino_t) ino;
        }
        return journal_stderr;
}

static void write_line(int level, const char *text) {
        if (stderr_is_journal())
                fprintf(stderr, "<%i>%s\n", level, text);
        else if (program_name)
                fprintf(stderr, "%s: %s\n", program_name, text);
        else
                fprintf(stderr, "%s\n", text);
}

static void queue_append(int level, const char *text) {
        char header[48];
        int n = snprintf(header, sizeof header, "%i\t%llu\t", level,
                         (unsigned long long) now_realtime_usec());
        size_t l = strlen(text);

        if (n < 0 || queue_used + (size_t) n + l + 1 > sizeof queue) {
                queue_dropped++;
                return;
        }
        memcpy(queue + queue_used, header, (size_t) n);
        memcpy(queue + queue_used + n, text, l + 1);
        queue_used += (size_t) n + l + 1;
}

int log_internalv(int level, int error, const char *file, int line, const char *func,
                  const char *format, va_list ap) {
        char text[2048];
        int saved = errno;

        if (error < 0)
                error = -error;
        if (level > max_level)
                return -error;

        /* %m expands from errno: let it show the error this message is about. */
        errno = error;
        (void) vsnprintf(text, sizeof text, format, ap);
        errno = saved;

        pthread_mutex_lock(&queue_lock);
        if (held) {
                queue_append(level, text);
                pthread_mutex_unlock(&queue_lock);
                return -error;
        }
        pthread_mutex_unlock(&queue_lock);
        write_line(level, text);
        return -error;
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...) {
        va_list ap;
        int r;

        va_start(ap, format);
        r = log_internalv(level, error, file, line, func, format, ap);
        va_end(ap);
        return r;
}

void log_hold(void) {
        pthread_mutex_lock(&queue_lock);
        held = true;
        pthread_mutex_unlock(&queue_lock);
}

bool log_is_held(void) {
        bool h;

        pthread_mutex_lock(&queue_lock);
        h = held;
        pthread_mutex_unlock(&queue_lock);
        return h;
}

unsigned log_release(void) {
        unsigned dropped;

        /* From here on nothing is appended (only the holder holds), so the queue is read
         * without the lock while other threads log directly again. */
        pthread_mutex_lock(&queue_lock);
        held = false;
        dropped = queue_dropped;
        pthread_mutex_unlock(&queue_lock);
        for (size_t p = 0; p < queue_used;) {
                char *rec = queue + p, *usec, *text;
                size_t l = strlen(rec);

                /* Records were written by queue_append() and always have both tabs. */
                usec = strchr(rec, '\t');
                text = usec ? strchr(usec + 1, '\t') : NULL;
                if (text) {
                        char line[2200];
                        snprintf(line, sizeof line, "%s (queued while frozen at %.*s)", text + 1,
                                 (int) (text - usec - 1), usec + 1);
                        write_line(atoi(rec), line);
                }
                p += l + 1;
        }
        queue_used = 0;
        queue_dropped = 0;
        if (dropped > 0)
                log_warning("%u log messages were dropped while the filesystems were frozen (queue full).", dropped);
        fflush(stderr);
        return dropped;
}
