/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The varlink wire protocol on json-c; see varlink.h for the contract of each function.
 *
 * Input: the buffer holds the unconsumed bytes [in.start, in.end). in_scanned remembers how far
 * the search for the NUL that ends the first unconsumed message got, so no byte is searched
 * twice however a message is split over reads. Taking a message out only advances in.start; the
 * rest moves to the front only when the consumed part is at least as large as what remains (or
 * the buffer would pass its limit), so a pipelined burst costs linear time. The output buffer
 * works the same way. */

#include <limits.h>
#include <poll.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "json-util.h"
#include "varlink.h"

/* Bytes asked of read() at a time, as systemd does. */
#define VARLINK_READ_SIZE (64U * 1024U)
/* Buffers larger than this are released once they run empty, so that one large message does not
 * pin megabytes for the life of an idle connection. */
#define VARLINK_BUFFER_KEEP (4U * VARLINK_READ_SIZE)

typedef struct Buffer {
        char *data;
        size_t allocated;
        size_t start;   /* first byte not yet consumed */
        size_t end;     /* one past the last byte filled */
} Buffer;

struct VarlinkStream {
        int fd;
        size_t max_message;
        bool is_socket;         /* cleared when send() says ENOTSOCK; then write() is used */

        Buffer in;
        size_t in_scanned;      /* [in.start, in_scanned) holds no NUL */
        size_t in_tail;         /* start of the bytes after the last NUL read; for partial input */
        int in_error;           /* sticky: after a framing error the stream stays broken */

        Buffer out;

        json_tokener *tokener;

        /* Client side: the call in progress asked for more replies; the last reply said more
         * are coming. */
        bool client_more;
        bool client_continues;
};

/* ---------------------------------------------------------------- buffers */

static size_t buffer_used(const Buffer *b) {
        return b->end - b->start;
}

static void buffer_release_if_empty(Buffer *b) {
        if (b->start != b->end)
                return;
        b->start = b->end = 0;
        if (b->allocated > VARLINK_BUFFER_KEEP) {
                free(b->data);
                b->data = NULL;
                b->allocated = 0;
        }
}

/* Makes room for at least n more bytes at the end, never growing beyond limit bytes in total.
 * Stores in *ret_shift how far the content moved towards the front (callers adjust offsets). */
static int buffer_reserve(Buffer *b, size_t n, size_t limit, size_t *ret_shift) {
        size_t shift = 0, want;
        char *p;

        if (b->allocated - b->end >= n) {
                *ret_shift = 0;
                return 0;
        }

        /* Moving costs as much as what remains: do it when the consumed part paid for it, or when
         * growing would pass the limit. */
        if (b->start > 0 && (b->start >= buffer_used(b) || b->end + n > limit)) {
                shift = b->start;
                memmove(b->data, b->data + b->start, buffer_used(b));
                b->end -= shift;
                b->start = 0;
        }

        if (b->allocated - b->end < n) {
                if (b->end + n > limit)
                        return -ENOBUFS;
                want = b->allocated > 0 ? b->allocated * 2 : VARLINK_READ_SIZE;
                want = want < b->end + n ? b->end + n : want;
                want = want > limit ? limit : want;
                p = realloc(b->data, want);
                if (!p)
                        return -ENOMEM;
                b->data = p;
                b->allocated = want;
        }

        *ret_shift = shift;
        return 0;
}

/* ---------------------------------------------------------------- framing */

int varlink_stream_new(int fd, size_t max_message, VarlinkStream **ret) {
        _cleanup_close_ int owned_fd = fd;
        _cleanup_free_ VarlinkStream *s = NULL;

        if (fd < 0 || !ret)
                return -EINVAL;
        if (max_message == 0)
                max_message = VARLINK_MESSAGE_MAX;
        /* json_tokener_parse_ex() takes an int length. */
        if (max_message > INT_MAX / 2)
                return -EINVAL;

        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;

        s->tokener = json_tokener_new();
        if (!s->tokener)
                return -ENOMEM;
        /* Strict JSON in UTF-8, and no second value after the first. */
        json_tokener_set_flags(s->tokener, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);

        s->fd = TAKE_FD(owned_fd);
        s->max_message = max_message;
        s->is_socket = true;
        *ret = TAKE_PTR(s);
        return 0;
}

VarlinkStream *varlink_stream_free(VarlinkStream *s) {
        if (!s)
                return NULL;
        safe_close(s->fd);
        free(s->in.data);
        free(s->out.data);
        if (s->tokener)
                json_tokener_free(s->tokener);
        free(s);
        return NULL;
}

int varlink_stream_fd(const VarlinkStream *s) {
        return s ? s->fd : -EBADF;
}

/* The largest input we hold: a message below the cap that is not yet complete, plus one read. A
 * caller that keeps reading without taking complete messages out gets -ENOBUFS there. */
static size_t input_limit(const VarlinkStream *s) {
        return s->max_message + VARLINK_READ_SIZE;
}

/* Continues the search for the end of the first buffered message. Returns 1 if its NUL is
 * buffered (at in_scanned), 0 if not, -EMSGSIZE if the message is over the cap, or if what is
 * buffered of it already fills the cap: with its NUL still to come it can only be larger. */
static int input_find_end(VarlinkStream *s) {
        const char *nul;

        if (s->in_scanned < s->in.start)
                s->in_scanned = s->in.start;

        /* Nothing new: the buffer may not even be allocated yet. */
        if (s->in_scanned == s->in.end)
                return buffer_used(&s->in) >= s->max_message ? -EMSGSIZE : 0;

        nul = memchr(s->in.data + s->in_scanned, 0, s->in.end - s->in_scanned);
        if (nul) {
                s->in_scanned = nul - s->in.data;
                return s->in_scanned + 1 - s->in.start > s->max_message ? -EMSGSIZE : 1;
        }

        s->in_scanned = s->in.end;
        if (buffer_used(&s->in) >= s->max_message)
                return -EMSGSIZE;
        return 0;
}

static void input_note_tail(VarlinkStream *s, size_t from) {
        const char *nul = memrchr(s->in.data + from, 0, s->in.end - from);

        if (nul)
                s->in_tail = nul - s->in.data + 1;
}

static ssize_t read_retry(int fd, void *buf, size_t n) {
        ssize_t l;

        do
                l = read(fd, buf, n);
        while (l < 0 && errno == EINTR);

        return l < 0 ? -errno : l;
}

int varlink_stream_read(VarlinkStream *s) {
        size_t shift, before, n;
        ssize_t l;
        int r;

        if (!s)
                return -EINVAL;
        if (s->in_error < 0)
                return s->in_error;

        /* Read less when complete messages wait to be taken out; none at all at the limit. */
        n = input_limit(s) - buffer_used(&s->in);
        n = n < VARLINK_READ_SIZE ? n : VARLINK_READ_SIZE;
        if (n == 0)
                return -ENOBUFS;

        r = buffer_reserve(&s->in, n, input_limit(s), &shift);
        if (r < 0)
                return r;
        s->in_scanned -= s->in_scanned >= shift ? shift : s->in_scanned;
        s->in_tail -= s->in_tail >= shift ? shift : s->in_tail;

        before = s->in.end;
        l = read_retry(s->fd, s->in.data + s->in.end, n);
        if (l == -EWOULDBLOCK)
                return -EAGAIN;
        if (l <= 0)
                return (int) l;

        s->in.end += l;
        input_note_tail(s, before);

        r = input_find_end(s);
        if (r < 0)
                return (s->in_error = r);

        return (int) l;
}

static int message_parse(VarlinkStream *s, const char *p, size_t len, json_object **ret) {
        _cleanup_(json_object_putp) json_object *o = NULL;

        json_tokener_reset(s->tokener);
        /* The length includes the NUL, so that the tokener knows the input ends there. */
        o = json_tokener_parse_ex(s->tokener, p, (int) len + 1);
        if (!o || json_tokener_get_error(s->tokener) != json_tokener_success)
                return -EBADMSG;
        /* Strict mode already refuses a second value; this also catches anything the tokener
         * stopped before, e.g. an embedded second message. */
        if (json_tokener_get_parse_end(s->tokener) != len)
                return -EBADMSG;
        if (!json_object_is_type(o, json_type_object))
                return -EBADMSG;

        *ret = TAKE_PTR(o);
        return 0;
}

int varlink_stream_next(VarlinkStream *s, json_object **ret) {
        const char *p;
        size_t len;
        int r;

        if (!s || !ret)
                return -EINVAL;
        if (s->in_error < 0)
                return s->in_error;

        r = input_find_end(s);
        if (r <= 0)
                return r < 0 ? (s->in_error = r) : 0;

        p = s->in.data + s->in.start;
        len = s->in_scanned - s->in.start;

        s->in.start = s->in_scanned + 1;
        s->in_scanned = s->in.start;

        r = message_parse(s, p, len, ret);
        if (r < 0)
                return (s->in_error = r);

        if (s->in.start == s->in.end)
                s->in_scanned = s->in_tail = 0;
        buffer_release_if_empty(&s->in);
        return 1;
}

bool varlink_stream_has_partial_input(const VarlinkStream *s) {
        if (!s)
                return false;
        return s->in.end > (s->in_tail > s->in.start ? s->in_tail : s->in.start);
}

int varlink_stream_enqueue(VarlinkStream *s, json_object *msg) {
        const char *text;
        size_t len, shift;
        int r;

        if (!s || !msg)
                return -EINVAL;

        text = json_object_to_json_string_length(msg, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE,
                                                 &len);
        if (!text)
                return -ENOMEM;
        if (len + 1 > s->max_message)
                return -EMSGSIZE;

        r = buffer_reserve(&s->out, len + 1, SIZE_MAX, &shift);
        if (r < 0)
                return r;

        memcpy(s->out.data + s->out.end, text, len + 1); /* with its NUL */
        s->out.end += len + 1;
        return 0;
}

/* send() with MSG_NOSIGNAL, so that a peer that went away is -EPIPE and not a SIGPIPE; write()
 * for an fd that is not a socket (a pipe in a test). */
static ssize_t write_retry(VarlinkStream *s, const void *p, size_t n) {
        ssize_t l;

        for (;;) {
                l = s->is_socket ? send(s->fd, p, n, MSG_NOSIGNAL) : write(s->fd, p, n);
                if (l >= 0)
                        return l;
                if (errno == EINTR)
                        continue;
                if (errno == ENOTSOCK && s->is_socket) {
                        s->is_socket = false;
                        continue;
                }
                return -errno;
        }
}

int varlink_stream_flush(VarlinkStream *s) {
        ssize_t l;

        if (!s)
                return -EINVAL;

        while (buffer_used(&s->out) > 0) {
                l = write_retry(s, s->out.data + s->out.start, buffer_used(&s->out));
                if (l == -EAGAIN || l == -EWOULDBLOCK)
                        return 0;
                if (l < 0)
                        return (int) l;
                s->out.start += l;
        }

        buffer_release_if_empty(&s->out);
        return 1;
}

bool varlink_stream_has_output(const VarlinkStream *s) {
        return s && buffer_used(&s->out) > 0;
}

size_t varlink_stream_output_size(const VarlinkStream *s) {
        return s ? buffer_used(&s->out) : 0;
}

/* ---------------------------------------------------------------- names */

static bool ascii_letter(char c) {
        return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool ascii_alnum(char c) {
        return ascii_letter(c) || (c >= '0' && c <= '9');
}

/* One label of an interface name: a letter, then letters, digits and dashes, not ending in a
 * dash. Returns the length of the label at p (at most n), or 0 if it is not valid. */
static size_t interface_label_length(const char *p, size_t n) {
        size_t l;

        if (n == 0 || !ascii_letter(p[0]))
                return 0;
        for (l = 1; l < n && (ascii_alnum(p[l]) || p[l] == '-'); l++)
                ;
        return p[l - 1] == '-' ? 0 : l;
}

/* Checks the first n bytes of name as an interface name: at least two labels. */
static bool interface_name_is_valid_n(const char *name, size_t n) {
        unsigned labels = 0;
        size_t i = 0;

        for (;;) {
                size_t l = interface_label_length(name + i, n - i);

                if (l == 0)
                        return false;
                labels++;
                i += l;
                if (i == n)
                        return labels >= 2;
                if (name[i] != '.')
                        return false;
                i++;
        }
}

bool varlink_interface_name_is_valid(const char *name) {
        return name && interface_name_is_valid_n(name, strlen(name));
}

bool varlink_member_name_is_valid(const char *name) {
        if (!name || !(name[0] >= 'A' && name[0] <= 'Z'))
                return false;
        for (const char *p = name + 1; *p; p++)
                if (!ascii_alnum(*p))
                        return false;
        return true;
}

/* The interface and the member are split at the last dot. */
bool varlink_qualified_name_is_valid(const char *name) {
        const char *dot;

        if (!name)
                return false;
        dot = strrchr(name, '.');
        return dot && varlink_member_name_is_valid(dot + 1) && interface_name_is_valid_n(name, dot - name);
}

/* ---------------------------------------------------------------- parsing */

/* A string without embedded NUL ("\u0000" would otherwise truncate what C code sees). */
static const char *json_plain_string(json_object *v) {
        const char *s;

        if (!json_object_is_type(v, json_type_string))
                return NULL;
        s = json_object_get_string(v);
        if (strlen(s) != (size_t) json_object_get_string_len(v))
                return NULL;
        return s;
}

/* A missing or null "parameters" is an empty object; anything else must be an object. */
static int parameters_take(json_object *msg, json_object **ret) {
        json_object *v;

        if (!json_object_object_get_ex(msg, "parameters", &v) || !v) {
                *ret = json_object_new_object();
                return *ret ? 0 : -ENOMEM;
        }
        if (!json_object_is_type(v, json_type_object))
                return -EPROTO;
        *ret = json_object_get(v);
        return 0;
}

static int bool_field(json_object *v, bool *field) {
        if (!json_object_is_type(v, json_type_boolean))
                return -EPROTO;
        *field = json_object_get_boolean(v);
        return 0;
}

/* Checks the keys and types of a call; fills in method and the flags. */
static int call_check(json_object *msg, const char **ret_method, VarlinkCall *flags) {
        const char *method = NULL;

        json_object_object_foreach(msg, key, v) {
                int r = 0;

                if (streq(key, "method"))
                        r = (method = json_plain_string(v)) ? 0 : -EPROTO;
                else if (streq(key, "parameters"))
                        r = !v || json_object_is_type(v, json_type_object) ? 0 : -EPROTO;
                else if (streq(key, "oneway"))
                        r = bool_field(v, &flags->oneway);
                else if (streq(key, "more"))
                        r = bool_field(v, &flags->more);
                else if (streq(key, "upgrade"))
                        r = bool_field(v, &flags->upgrade);
                else
                        r = -EPROTO;
                if (r < 0)
                        return r;
        }

        if (!method || !varlink_qualified_name_is_valid(method))
                return -EPROTO;
        /* A oneway call gets no reply, so it cannot get several. */
        if (flags->oneway && flags->more)
                return -EPROTO;

        *ret_method = method;
        return 0;
}

int varlink_call_parse(json_object *msg, VarlinkCall *ret) {
        _cleanup_(json_object_putp) json_object *parameters = NULL;
        _cleanup_free_ char *method = NULL, *interface = NULL;
        VarlinkCall flags = {};
        const char *m, *member;
        size_t dot;
        int r;

        if (!json_object_is_type(msg, json_type_object) || !ret)
                return -EINVAL;

        r = call_check(msg, &m, &flags);
        if (r < 0)
                return r;
        r = parameters_take(msg, &parameters);
        if (r < 0)
                return r;

        method = strdup(m);
        if (!method)
                return -ENOMEM;
        dot = strrchr(method, '.') - method;
        interface = strndup(method, dot);
        if (!interface)
                return -ENOMEM;

        /* Initializers are evaluated in no fixed order: take member before method is taken. */
        member = method + dot + 1;
        *ret = (VarlinkCall) {
                .member = member,
                .method = TAKE_PTR(method),
                .interface = TAKE_PTR(interface),
                .parameters = TAKE_PTR(parameters),
                .oneway = flags.oneway,
                .more = flags.more,
                .upgrade = flags.upgrade,
        };
        return 0;
}

void varlink_call_done(VarlinkCall *c) {
        if (!c)
                return;
        free(c->method);
        free(c->interface);
        json_object_put(c->parameters);
        *c = (VarlinkCall) {};
}

static int reply_check(json_object *msg, const char **ret_error, bool *ret_continues) {
        const char *error = NULL;
        bool continues = false;

        json_object_object_foreach(msg, key, v) {
                int r = 0;

                if (streq(key, "error"))
                        r = (error = json_plain_string(v)) && varlink_qualified_name_is_valid(error) ? 0 : -EPROTO;
                else if (streq(key, "parameters"))
                        r = !v || json_object_is_type(v, json_type_object) ? 0 : -EPROTO;
                else if (streq(key, "continues"))
                        r = bool_field(v, &continues);
                else
                        r = -EPROTO;
                if (r < 0)
                        return r;
        }

        /* An error always ends a call. */
        if (error && continues)
                return -EPROTO;

        *ret_error = error;
        *ret_continues = continues;
        return 0;
}

int varlink_reply_parse(json_object *msg, VarlinkReply *ret) {
        _cleanup_(json_object_putp) json_object *parameters = NULL;
        _cleanup_free_ char *error_copy = NULL;
        const char *error;
        bool continues;
        int r;

        if (!json_object_is_type(msg, json_type_object) || !ret)
                return -EINVAL;

        r = reply_check(msg, &error, &continues);
        if (r < 0)
                return r;
        r = parameters_take(msg, &parameters);
        if (r < 0)
                return r;
        if (error) {
                error_copy = strdup(error);
                if (!error_copy)
                        return -ENOMEM;
        }

        *ret = (VarlinkReply) {
                .parameters = TAKE_PTR(parameters),
                .error = TAKE_PTR(error_copy),
                .continues = continues,
        };
        return 0;
}

void varlink_reply_done(VarlinkReply *r) {
        if (!r)
                return;
        json_object_put(r->parameters);
        free(r->error);
        *r = (VarlinkReply) {};
}

/* ---------------------------------------------------------------- builders */

/* parameters is shared by reference, not copied. */
static int object_add_parameters(json_object *o, json_object *parameters) {
        return json_add(o, "parameters", parameters ? json_object_get(parameters) : json_object_new_object());
}

json_object *varlink_message_call(const char *method, json_object *parameters, bool oneway, bool more) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o || !method)
                return NULL;
        if (json_add(o, "method", json_object_new_string(method)) < 0 ||
            object_add_parameters(o, parameters) < 0)
                return NULL;
        if (oneway && json_add(o, "oneway", json_object_new_boolean(true)) < 0)
                return NULL;
        if (more && json_add(o, "more", json_object_new_boolean(true)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_object *varlink_message_reply(json_object *parameters, bool continues) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o || object_add_parameters(o, parameters) < 0)
                return NULL;
        if (continues && json_add(o, "continues", json_object_new_boolean(true)) < 0)
                return NULL;
        return TAKE_PTR(o);
}

json_object *varlink_message_error(const char *error, json_object *parameters) {
        _cleanup_(json_object_putp) json_object *o = json_object_new_object();

        if (!o || !error)
                return NULL;
        if (json_add(o, "error", json_object_new_string(error)) < 0 ||
            object_add_parameters(o, parameters) < 0)
                return NULL;
        return TAKE_PTR(o);
}

/* ---------------------------------------------------------------- client */

static int socket_address(const char *path, struct sockaddr_un *ret, socklen_t *ret_len) {
        size_t l;

        if (!path || !path[0])
                return -EINVAL;
        l = strlen(path);
        if (l >= sizeof(ret->sun_path))
                return -ENAMETOOLONG;

        *ret = (struct sockaddr_un) { .sun_family = AF_UNIX };
        memcpy(ret->sun_path, path, l);
        /* "@name" is the abstract namespace (varlink's unix:@name): a leading NUL, no terminator. */
        if (path[0] == '@') {
                ret->sun_path[0] = 0;
                *ret_len = offsetof(struct sockaddr_un, sun_path) + l;
        } else
                *ret_len = offsetof(struct sockaddr_un, sun_path) + l + 1;
        return 0;
}

/* A connect() interrupted by a signal goes on in the background: wait for it and fetch its
 * result instead of calling connect() again (which would say EALREADY). */
static int connect_wait(int fd) {
        struct pollfd p = { .fd = fd, .events = POLLOUT };
        socklen_t sl = sizeof(int);
        int r, error = 0;

        do
                r = poll(&p, 1, -1);
        while (r < 0 && errno == EINTR);
        if (r < 0)
                return -errno;
        if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &sl) < 0)
                return -errno;
        return -error;
}

int varlink_client_connect(const char *path, VarlinkStream **ret) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa;
        socklen_t sl;
        int r;

        if (!ret)
                return -EINVAL;
        r = socket_address(path, &sa, &sl);
        if (r < 0)
                return r;

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &sa, sl) < 0) {
                r = errno == EINTR ? connect_wait(fd) : -errno;
                if (r < 0)
                        return r;
        }

        return varlink_stream_new(TAKE_FD(fd), 0, ret);
}

static int fd_wait(int fd, short events) {
        struct pollfd p = { .fd = fd, .events = events };

        if (poll(&p, 1, -1) < 0)
                return errno == EINTR ? 0 : -errno;
        return 0;
}

/* Writes everything out, waiting if the fd is non-blocking. */
static int client_flush_all(VarlinkStream *s) {
        for (;;) {
                int r = varlink_stream_flush(s);
                if (r != 0)
                        return r < 0 ? r : 0;
                r = fd_wait(s->fd, POLLOUT);
                if (r < 0)
                        return r;
        }
}

/* Reads until one message is complete. */
static int client_read_message(VarlinkStream *s, json_object **ret) {
        for (;;) {
                int r = varlink_stream_next(s, ret);
                if (r == -EBADMSG)
                        return -EPROTO;
                if (r != 0)
                        return r < 0 ? r : 0;

                r = varlink_stream_read(s);
                if (r == 0)
                        return -ECONNRESET;
                if (r == -EAGAIN)
                        r = fd_wait(s->fd, POLLIN);
                if (r < 0)
                        return r;
        }
}

static int client_receive(VarlinkStream *s, VarlinkReply *ret_reply) {
        _cleanup_(json_object_putp) json_object *msg = NULL;
        VarlinkReply reply;
        int r;

        r = client_read_message(s, &msg);
        if (r < 0)
                return r;
        r = varlink_reply_parse(msg, &reply);
        if (r < 0)
                return r;
        /* Only a "more" call may be answered with continues. */
        if (reply.continues && !s->client_more) {
                varlink_reply_done(&reply);
                return -EPROTO;
        }

        s->client_continues = reply.continues;
        if (ret_reply)
                *ret_reply = reply;
        else
                varlink_reply_done(&reply);
        return 0;
}

static int client_send(VarlinkStream *s, const char *method, json_object *parameters, bool oneway, bool more) {
        _cleanup_(json_object_putp) json_object *msg = NULL;
        int r;

        if (!s || !varlink_qualified_name_is_valid(method))
                return -EINVAL;
        /* The connection belongs to a streaming call until its last reply. */
        if (s->client_continues)
                return -EBUSY;
        if (parameters && !json_object_is_type(parameters, json_type_object))
                return -EINVAL;

        msg = varlink_message_call(method, parameters, oneway, more);
        if (!msg)
                return -ENOMEM;
        r = varlink_stream_enqueue(s, msg);
        if (r < 0)
                return r;
        return client_flush_all(s);
}

int varlink_client_call(VarlinkStream *s, const char *method, json_object *parameters, bool more,
                        VarlinkReply *ret_reply) {
        int r;

        r = client_send(s, method, parameters, false, more);
        if (r < 0)
                return r;
        s->client_more = more;
        return client_receive(s, ret_reply);
}

int varlink_client_next(VarlinkStream *s, VarlinkReply *ret_reply) {
        if (!s)
                return -EINVAL;
        /* Nothing more is coming: waiting would block forever. */
        if (!s->client_continues)
                return -ENOMSG;
        return client_receive(s, ret_reply);
}

int varlink_client_send_oneway(VarlinkStream *s, const char *method, json_object *parameters) {
        return client_send(s, method, parameters, true, false);
}
