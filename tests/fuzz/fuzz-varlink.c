/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* libFuzzer target for the varlink protocol code: arbitrary bytes go through a socketpair into a
 * VarlinkStream in chunks whose sizes come from the input, and every message that comes out is
 * parsed as a call and as a reply, rebuilt, and dispatched. Besides the sanitizers, it checks the
 * promises of varlink.h: what parses is well-formed, and what is built parses back the same. */

#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>

#include "json-dispatch.h"
#include "macro.h"
#include "varlink.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define check(x)                                                                        \
        do {                                                                            \
                if (!(x)) {                                                             \
                        fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #x); \
                        abort();                                                        \
                }                                                                       \
        } while (0)

/* A small deterministic generator for chunk sizes, seeded from the input. */
static uint32_t next_random(uint32_t *state) {
        *state = *state * 1103515245U + 12345U;
        return *state >> 16;
}

static void check_call_round_trip(const VarlinkCall *c) {
        _cleanup_(json_object_putp) json_object *m = NULL;
        VarlinkCall again;

        /* The builder knows no upgrade flag. */
        if (c->upgrade)
                return;
        m = varlink_message_call(c->method, c->parameters, c->oneway, c->more);
        check(m);
        check(varlink_call_parse(m, &again) == 0);
        check(streq(again.method, c->method));
        check(again.oneway == c->oneway && again.more == c->more);
        check(json_object_equal(again.parameters, c->parameters));
        varlink_call_done(&again);
}

static void dispatch_parameters(json_object *parameters) {
        struct {
                char *s;
                bool b;
                int64_t i;
                uint64_t u;
                double d;
                json_object *o, *a;
        } p = {};
        static const JsonDispatch table[] = {
                { "s", JSON_DISPATCH_STRING, offsetof(typeof(p), s), JSON_NULLABLE },
                { "b", JSON_DISPATCH_BOOL, offsetof(typeof(p), b), 0 },
                { "volume", JSON_DISPATCH_STRING, offsetof(typeof(p), s), JSON_MANDATORY },
                {}
        };
        static const JsonDispatch numbers[] = {
                { "i", JSON_DISPATCH_INT64, offsetof(typeof(p), i), 0 },
                { "u", JSON_DISPATCH_UINT64, offsetof(typeof(p), u), 0 },
                { "d", JSON_DISPATCH_DOUBLE, offsetof(typeof(p), d), JSON_NULLABLE },
                { "o", JSON_DISPATCH_OBJECT, offsetof(typeof(p), o), 0 },
                { "a", JSON_DISPATCH_ARRAY, offsetof(typeof(p), a), JSON_NULLABLE },
                {}
        };
        const char *bad = NULL;
        int r;

        r = json_dispatch(parameters, table, &p, &bad);
        check(r == 0 || (r < 0 && bad));
        json_dispatch_done(table, &p);
        r = json_dispatch(parameters, numbers, &p, &bad);
        check(r == 0 || (r < 0 && bad));
        json_dispatch_done(numbers, &p);
}

static void check_message(json_object *msg) {
        VarlinkCall c;
        VarlinkReply reply;

        check(json_object_is_type(msg, json_type_object));

        if (varlink_call_parse(msg, &c) == 0) {
                check(varlink_qualified_name_is_valid(c.method));
                check(varlink_interface_name_is_valid(c.interface));
                check(varlink_member_name_is_valid(c.member));
                check(strlen(c.interface) + 1 + strlen(c.member) == strlen(c.method));
                check(json_object_is_type(c.parameters, json_type_object));
                check(!(c.oneway && c.more));
                check_call_round_trip(&c);
                dispatch_parameters(c.parameters);
                varlink_call_done(&c);
        }

        if (varlink_reply_parse(msg, &reply) == 0) {
                check(json_object_is_type(reply.parameters, json_type_object));
                check(!(reply.error && reply.continues));
                check(!reply.error || varlink_qualified_name_is_valid(reply.error));
                varlink_reply_done(&reply);
        }
}

/* Takes every complete message out. Returns false once the stream broke. */
static bool drain_messages(VarlinkStream *s) {
        for (;;) {
                json_object *msg = NULL;
                int r = varlink_stream_next(s, &msg);

                if (r == 0)
                        return true;
                if (r < 0) {
                        check(r == -EBADMSG || r == -EMSGSIZE);
                        check(!msg);
                        return false;
                }
                check_message(msg);
                json_object_put(msg);
        }
}

/* Reads what the socket has, up to end of file; false once the stream broke. */
static bool drain_socket(VarlinkStream *s) {
        for (;;) {
                int r = varlink_stream_read(s);

                if (r == -EAGAIN || r == 0)
                        return true;
                if (r < 0) {
                        check(r == -EMSGSIZE || r == -ENOBUFS);
                        return false;
                }
                check(r > 0);
                if (!drain_messages(s))
                        return false;
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        _cleanup_close_ int peer = -EBADF;
        uint32_t state;
        size_t max_message;
        int fds[2];

        if (size < 2)
                return 0;
        /* The first two bytes choose the chunk sizes and the cap: a small cap makes -EMSGSIZE
         * reachable with small inputs. */
        state = data[0] | (uint32_t) data[1] << 8;
        max_message = (data[0] & 1) ? 64 + (data[1] & 0x7f) * 16 : 0;
        data += 2;
        size -= 2;

        check(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, fds) == 0);
        peer = fds[1];
        check(varlink_stream_new(fds[0], max_message, &s) == 0);

        while (size > 0) {
                size_t chunk = 1 + next_random(&state) % 512;
                ssize_t l;

                chunk = chunk < size ? chunk : size;
                l = write(peer, data, chunk);
                check(l > 0);
                data += l;
                size -= l;
                if (!drain_socket(s))
                        return 0;
        }

        peer = safe_close(peer);
        if (drain_socket(s))
                check(varlink_stream_read(s) == 0);
        return 0;
}
