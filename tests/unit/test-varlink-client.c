/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* The blocking varlink client against a scripted peer: the peer's replies are written into the
 * socket before the call, so that one thread plays both sides. */

#include <check.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "macro.h"
#include "varlink.h"

typedef struct Peer {
        VarlinkStream *client;
        int server;             /* the service's end: write replies, read calls */
} Peer;

static Peer peer_new(void) {
        Peer p;
        int fds[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        ck_assert_int_eq(varlink_stream_new(fds[0], 0, &p.client), 0);
        p.server = fds[1];
        return p;
}

static void peer_free(Peer *p) {
        p->client = varlink_stream_free(p->client);
        p->server = safe_close(p->server);
}

/* Writes the replies (a literal with embedded NULs; its final NUL included). */
#define PEER_SAYS(p, literal) \
        ck_assert_int_eq(write((p)->server, literal, sizeof(literal)), (ssize_t) sizeof(literal))

/* Asserts that the service received exactly this (a literal whose own NUL ends the message). */
#define PEER_HEARD(p, literal)                                                          \
        do {                                                                            \
                char _buf[sizeof(literal) + 64];                                        \
                ck_assert_int_eq(read((p)->server, _buf, sizeof _buf), sizeof(literal)); \
                ck_assert_str_eq(_buf, literal);                                        \
        } while (0)

START_TEST(test_a_call_sends_the_method_and_returns_the_reply) {
        _cleanup_(json_object_putp) json_object *in = json_tokener_parse("{\"volume\":\"/dev/vda\"}");
        Peer p = peer_new();
        VarlinkReply r;

        PEER_SAYS(&p, "{\"parameters\":{\"ok\":true}}");
        ck_assert_int_eq(varlink_client_call(p.client, "io.snapset.Manager.GetStatus", in, false, &r), 0);
        ck_assert_ptr_null(r.error);
        ck_assert(!r.continues);
        ck_assert(json_object_get_boolean(json_object_object_get(r.parameters, "ok")));
        varlink_reply_done(&r);
        PEER_HEARD(&p, "{\"method\":\"io.snapset.Manager.GetStatus\",\"parameters\":{\"volume\":\"/dev/vda\"}}");
        peer_free(&p);
}
END_TEST

START_TEST(test_a_varlink_error_is_a_successful_exchange) {
        Peer p = peer_new();
        VarlinkReply r;

        PEER_SAYS(&p, "{\"error\":\"org.varlink.service.MethodNotFound\",\"parameters\":{\"method\":\"a.b.C\"}}");
        ck_assert_int_eq(varlink_client_call(p.client, "a.b.C", NULL, false, &r), 0);
        ck_assert_str_eq(r.error, VARLINK_ERROR_METHOD_NOT_FOUND);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(r.parameters, "method")), "a.b.C");
        varlink_reply_done(&r);
        peer_free(&p);
}
END_TEST

START_TEST(test_a_streaming_call_returns_each_reply_until_the_last) {
        Peer p = peer_new();
        VarlinkReply r;

        PEER_SAYS(&p, "{\"parameters\":{\"n\":1},\"continues\":true}\0"
                      "{\"parameters\":{\"n\":2},\"continues\":true}\0"
                      "{\"parameters\":{\"n\":3}}");
        ck_assert_int_eq(varlink_client_call(p.client, "a.b.List", NULL, true, &r), 0);
        for (int n = 1;; n++) {
                bool continues = r.continues;

                ck_assert_int_eq(json_object_get_int(json_object_object_get(r.parameters, "n")), n);
                ck_assert(continues == (n < 3));
                varlink_reply_done(&r);
                if (!continues)
                        break;
                ck_assert_int_eq(varlink_client_next(p.client, &r), 0);
        }
        /* The stream is over: waiting for more would hang. */
        ck_assert_int_eq(varlink_client_next(p.client, &r), -ENOMSG);
        PEER_HEARD(&p, "{\"method\":\"a.b.List\",\"parameters\":{},\"more\":true}");
        peer_free(&p);
}
END_TEST

START_TEST(test_a_new_call_during_a_stream_is_busy) {
        Peer p = peer_new();

        PEER_SAYS(&p, "{\"parameters\":{},\"continues\":true}");
        ck_assert_int_eq(varlink_client_call(p.client, "a.b.List", NULL, true, NULL), 0);
        ck_assert_int_eq(varlink_client_call(p.client, "a.b.Other", NULL, false, NULL), -EBUSY);
        peer_free(&p);
}
END_TEST

START_TEST(test_continues_without_more_is_a_protocol_error) {
        Peer p = peer_new();
        VarlinkReply r = {};

        PEER_SAYS(&p, "{\"parameters\":{},\"continues\":true}");
        ck_assert_int_eq(varlink_client_call(p.client, "a.b.C", NULL, false, &r), -EPROTO);
        ck_assert_ptr_null(r.parameters);
        peer_free(&p);
}
END_TEST

START_TEST(test_malformed_replies_are_protocol_errors) {
        static const struct {
                const char *data;
                size_t size;
        } replies[] = {
                { "{\"parameters\":", sizeof("{\"parameters\":") },
                { "[]", 3 },
                { "{\"parameters\":{},\"extra\":1}", sizeof("{\"parameters\":{},\"extra\":1}") },
                { "{\"error\":\"a.b.C\",\"continues\":true}", sizeof("{\"error\":\"a.b.C\",\"continues\":true}") },
        };

        for (size_t i = 0; i < ELEMENTSOF(replies); i++) {
                Peer p = peer_new();

                ck_assert_int_eq(write(p.server, replies[i].data, replies[i].size), (ssize_t) replies[i].size);
                ck_assert_msg(varlink_client_call(p.client, "a.b.C", NULL, true, NULL) == -EPROTO, "%s",
                              replies[i].data);
                peer_free(&p);
        }
}
END_TEST

START_TEST(test_a_service_that_hangs_up_is_a_connection_reset) {
        Peer p = peer_new();

        ck_assert_int_eq(write(p.server, "{\"param", 7), 7);
        ck_assert_int_eq(shutdown(p.server, SHUT_WR), 0);
        ck_assert_int_eq(varlink_client_call(p.client, "a.b.C", NULL, false, NULL), -ECONNRESET);
        peer_free(&p);
}
END_TEST

START_TEST(test_a_oneway_call_is_sent_and_nothing_is_read) {
        Peer p = peer_new();

        ck_assert_int_eq(varlink_client_send_oneway(p.client, "a.b.Notify", NULL), 0);
        PEER_HEARD(&p, "{\"method\":\"a.b.Notify\",\"parameters\":{},\"oneway\":true}");
        peer_free(&p);
}
END_TEST

START_TEST(test_calls_with_bad_arguments_are_refused_before_sending) {
        _cleanup_(json_object_putp) json_object *array = json_object_new_array();
        Peer p = peer_new();
        char c;

        ck_assert_int_eq(varlink_client_call(p.client, "NoInterface", NULL, false, NULL), -EINVAL);
        ck_assert_int_eq(varlink_client_call(p.client, "a.b.C", array, false, NULL), -EINVAL);
        ck_assert_int_eq(varlink_client_send_oneway(p.client, "a.b.lower", NULL), -EINVAL);
        ck_assert_int_eq(recv(p.server, &c, 1, MSG_DONTWAIT), -1);
        ck_assert_int_eq(errno, EAGAIN);
        peer_free(&p);
}
END_TEST

/* ---------------------------------------------------------------- connect */

START_TEST(test_connect_refuses_a_path_too_long_for_a_socket_address) {
        char path[sizeof(((struct sockaddr_un *) NULL)->sun_path) + 1];
        VarlinkStream *s = NULL;

        memset(path, 'a', sizeof path - 1);
        path[sizeof path - 1] = 0;
        ck_assert_int_eq(varlink_client_connect(path, &s), -ENAMETOOLONG);
        ck_assert_int_eq(varlink_client_connect("", &s), -EINVAL);
        ck_assert_int_eq(varlink_client_connect("/nonexistent/snapset-test.sock", &s), -ENOENT);
        ck_assert_ptr_null(s);
}
END_TEST

static int listen_on(const char *path) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        socklen_t sl = offsetof(struct sockaddr_un, sun_path) + strlen(path) + 1;
        int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

        ck_assert_int_ge(fd, 0);
        strcpy(sa.sun_path, path);
        if (path[0] == '@') {
                sa.sun_path[0] = 0;
                sl--;
        }
        ck_assert_int_eq(bind(fd, (struct sockaddr *) &sa, sl), 0);
        ck_assert_int_eq(listen(fd, 1), 0);
        return fd;
}

/* Connects, answers the call from the accepting side, and checks what arrived. */
static void assert_call_through_listener(const char *path) {
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        _cleanup_close_ int listener = listen_on(path), conn = -EBADF;
        Peer p;
        VarlinkReply r;

        ck_assert_int_eq(varlink_client_connect(path, &s), 0);
        conn = accept4(listener, NULL, NULL, SOCK_CLOEXEC);
        ck_assert_int_ge(conn, 0);
        p = (Peer) { .client = s, .server = conn };
        PEER_SAYS(&p, "{\"parameters\":{\"vendor\":\"snapset\"}}");
        ck_assert_int_eq(varlink_client_call(s, "org.varlink.service.GetInfo", NULL, false, &r), 0);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(r.parameters, "vendor")), "snapset");
        varlink_reply_done(&r);
        PEER_HEARD(&p, "{\"method\":\"org.varlink.service.GetInfo\",\"parameters\":{}}");
}

START_TEST(test_connect_reaches_a_listening_socket_by_path) {
        char dir[] = "/tmp/snapset-test-XXXXXX", path[64];

        ck_assert_ptr_nonnull(mkdtemp(dir));
        snprintf(path, sizeof path, "%s/io.snapset.Manager", dir);
        assert_call_through_listener(path);
        ck_assert_int_eq(unlink(path), 0);
        ck_assert_int_eq(rmdir(dir), 0);
}
END_TEST

START_TEST(test_connect_reaches_an_abstract_socket) {
        char path[64];

        snprintf(path, sizeof path, "@snapset-test-%d", (int) getpid());
        assert_call_through_listener(path);
}
END_TEST

Suite *suite_varlink_client(void) {
        Suite *s = suite_create("varlink-client");
        TCase *tc;

        tc = tcase_create("call");
        tcase_add_test(tc, test_a_call_sends_the_method_and_returns_the_reply);
        tcase_add_test(tc, test_a_varlink_error_is_a_successful_exchange);
        tcase_add_test(tc, test_a_streaming_call_returns_each_reply_until_the_last);
        tcase_add_test(tc, test_a_new_call_during_a_stream_is_busy);
        tcase_add_test(tc, test_continues_without_more_is_a_protocol_error);
        tcase_add_test(tc, test_malformed_replies_are_protocol_errors);
        tcase_add_test(tc, test_a_service_that_hangs_up_is_a_connection_reset);
        tcase_add_test(tc, test_a_oneway_call_is_sent_and_nothing_is_read);
        tcase_add_test(tc, test_calls_with_bad_arguments_are_refused_before_sending);
        suite_add_tcase(s, tc);

        tc = tcase_create("connect");
        tcase_add_test(tc, test_connect_refuses_a_path_too_long_for_a_socket_address);
        tcase_add_test(tc, test_connect_reaches_a_listening_socket_by_path);
        tcase_add_test(tc, test_connect_reaches_an_abstract_socket);
        suite_add_tcase(s, tc);
        return s;
}
