/* SPDX-License-Identifier: LGPL-2.1-or-later */

/* Framing of varlink messages over a socketpair: messages split over many reads, many messages in
 * one read, the size cap, malformed messages, end of file, and output to a slow reader. */

#include <check.h>
#include <fcntl.h>
#include <stdio.h>
#include <sys/socket.h>

#include "macro.h"
#include "varlink.h"

typedef struct Pair {
        VarlinkStream *stream;  /* one end, non-blocking */
        int peer;               /* the other end, non-blocking */
} Pair;

static void fd_nonblock(int fd) {
        int flags = fcntl(fd, F_GETFL);

        ck_assert_int_ge(flags, 0);
        ck_assert_int_eq(fcntl(fd, F_SETFL, flags | O_NONBLOCK), 0);
}

static Pair pair_new(size_t max_message) {
        Pair p;
        int fds[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        fd_nonblock(fds[0]);
        fd_nonblock(fds[1]);
        ck_assert_int_eq(varlink_stream_new(fds[0], max_message, &p.stream), 0);
        p.peer = fds[1];
        return p;
}

static void pair_free(Pair *p) {
        p->stream = varlink_stream_free(p->stream);
        p->peer = safe_close(p->peer);
}

/* Reads until the fd has nothing more. Returns the first error of varlink_stream_read() other
 * than -EAGAIN, else 0; adds the bytes read to *total if given. */
static int drain(VarlinkStream *s, size_t *total) {
        for (;;) {
                int r = varlink_stream_read(s);

                if (r == -EAGAIN || r == 0)
                        return 0;
                if (r < 0)
                        return r;
                if (total)
                        *total += r;
        }
}

/* Writes len bytes to the peer, letting the stream read whenever the socket is full, so that any
 * amount goes through one thread. Returns the first read error, or 0. */
static int feed(Pair *p, const void *data, size_t len, size_t *total) {
        size_t off = 0;
        int r;

        while (off < len) {
                ssize_t l = write(p->peer, (const char *) data + off, len - off);

                if (l > 0) {
                        off += l;
                        continue;
                }
                ck_assert_int_eq(errno, EAGAIN);
                r = drain(p->stream, total);
                if (r < 0)
                        return r;
        }
        return drain(p->stream, total);
}

static int feed_string(Pair *p, const char *s, size_t len) {
        return feed(p, s, len, NULL);
}

/* A call message of exactly size bytes including its NUL. */
static char *message_of_size(size_t size) {
        static const char head[] = "{\"method\":\"a.b.C\",\"parameters\":{\"pad\":\"", tail[] = "\"}}";
        size_t fixed = strlen(head) + strlen(tail) + 1;
        char *m = malloc(size);

        ck_assert_ptr_nonnull(m);
        ck_assert_uint_ge(size, fixed);
        memcpy(m, head, strlen(head));
        memset(m + strlen(head), 'x', size - fixed);
        memcpy(m + size - 1 - strlen(tail), tail, strlen(tail));
        m[size - 1] = 0;
        return m;
}

static void assert_next_is_method(VarlinkStream *s, const char *method) {
        _cleanup_(json_object_putp) json_object *o = NULL;

        ck_assert_int_eq(varlink_stream_next(s, &o), 1);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "method")), method);
}

/* ---------------------------------------------------------------- input */

START_TEST(test_a_message_fed_byte_by_byte_is_returned_once_complete) {
        static const char msg[] = "{\"method\":\"io.snapset.Manager.GetStatus\",\"parameters\":{\"x\":[1,2,{}]}}";
        _cleanup_(json_object_putp) json_object *o = NULL;
        Pair p = pair_new(0);

        for (size_t i = 0; i < sizeof msg; i++) { /* sizeof includes the NUL */
                ck_assert_int_eq(varlink_stream_next(p.stream, &o), 0);
                ck_assert_int_eq(write(p.peer, msg + i, 1), 1);
                ck_assert_int_eq(varlink_stream_read(p.stream), 1);
                ck_assert(varlink_stream_has_partial_input(p.stream) == (i + 1 < sizeof msg));
        }
        ck_assert_int_eq(varlink_stream_next(p.stream, &o), 1);
        ck_assert_str_eq(json_object_get_string(json_object_object_get(o, "method")),
                         "io.snapset.Manager.GetStatus");
        ck_assert_int_eq(varlink_stream_next(p.stream, &o), 0);
        ck_assert(!varlink_stream_has_partial_input(p.stream));
        pair_free(&p);
}
END_TEST

START_TEST(test_pipelined_messages_in_one_write_come_out_one_at_a_time_in_order) {
        enum { N = 4000 };
        char *all = NULL, name[64];
        size_t size = 0;
        FILE *f = open_memstream(&all, &size);
        Pair p = pair_new(0);

        ck_assert_ptr_nonnull(f);
        for (unsigned i = 0; i < N; i++) {
                fprintf(f, "{\"method\":\"a.b.M%u\"}", i);
                fputc(0, f);
        }
        fprintf(f, "{\"method\":"); /* and the start of one more */
        ck_assert_int_eq(fclose(f), 0);
        /* Larger than one read, small enough for the socket buffer: one write. */
        ck_assert_uint_gt(size, 64 * 1024);
        ck_assert_int_eq(write(p.peer, all, size), (ssize_t) size);
        ck_assert_int_eq(drain(p.stream, NULL), 0);

        for (unsigned i = 0; i < N; i++) {
                snprintf(name, sizeof name, "a.b.M%u", i);
                assert_next_is_method(p.stream, name);
                ck_assert(varlink_stream_has_partial_input(p.stream));
        }
        ck_assert_int_eq(varlink_stream_next(p.stream, &(json_object *) { NULL }), 0);
        ck_assert_int_eq(feed_string(&p, "\"a.b.Last\"}", 12), 0);
        assert_next_is_method(p.stream, "a.b.Last");
        ck_assert(!varlink_stream_has_partial_input(p.stream));
        free(all);
        pair_free(&p);
}
END_TEST

START_TEST(test_messages_interleaved_with_reads_stay_in_order) {
        Pair p = pair_new(0);
        char m[64];

        /* Each read brings the end of one message and the start of the next. */
        ck_assert_int_eq(feed_string(&p, "{\"method\":\"a.b.A\"", 17), 0);
        for (unsigned i = 0; i < 100; i++) {
                int l = snprintf(m, sizeof m, "}%c{\"method\":\"a.b.B%u\"", 0, i);
                ck_assert_int_eq(feed_string(&p, m, l), 0);
                if (i == 0)
                        assert_next_is_method(p.stream, "a.b.A");
                else {
                        char name[32];
                        snprintf(name, sizeof name, "a.b.B%u", i - 1);
                        assert_next_is_method(p.stream, name);
                }
        }
        pair_free(&p);
}
END_TEST

static void assert_message_of_size_accepted(size_t cap, size_t size) {
        _cleanup_free_ char *m = message_of_size(size);
        _cleanup_(json_object_putp) json_object *o = NULL;
        Pair p = pair_new(cap);

        ck_assert_int_eq(feed(&p, m, size, NULL), 0);
        ck_assert_int_eq(varlink_stream_next(p.stream, &o), 1);
        ck_assert_uint_eq(strlen(json_object_get_string(json_object_object_get(
                                  json_object_object_get(o, "parameters"), "pad"))),
                          size - strlen("{\"method\":\"a.b.C\",\"parameters\":{\"pad\":\"\"}}") - 1);
        pair_free(&p);
}

static void assert_message_of_size_refused(size_t cap, size_t size) {
        _cleanup_free_ char *m = message_of_size(size);
        _cleanup_(json_object_putp) json_object *o = NULL;
        Pair p = pair_new(cap);
        int r;

        /* Depending on how the bytes arrive, the read that fills the cap or the next() that
         * finds the NUL says so. */
        r = feed(&p, m, size, NULL);
        if (r == 0)
                r = varlink_stream_next(p.stream, &o);
        ck_assert_int_eq(r, -EMSGSIZE);
        ck_assert_ptr_null(o);
        pair_free(&p);
}

START_TEST(test_a_message_exactly_at_the_cap_is_accepted) {
        assert_message_of_size_accepted(1024, 1024);
        assert_message_of_size_accepted(0, VARLINK_MESSAGE_MAX);
}
END_TEST

START_TEST(test_a_message_one_byte_over_the_cap_is_refused) {
        assert_message_of_size_refused(1024, 1025);
        assert_message_of_size_refused(0, VARLINK_MESSAGE_MAX + 1);
}
END_TEST

START_TEST(test_an_unterminated_prefix_over_the_cap_fails_without_buffering_it_all) {
        enum { CAP = 4096, SENT = 1024 * 1024 };
        _cleanup_free_ char *junk = malloc(SENT);
        size_t total = 0;
        Pair p = pair_new(CAP);

        ck_assert_ptr_nonnull(junk);
        memset(junk, ' ', SENT); /* valid JSON whitespace, never a NUL */
        ck_assert_int_eq(write(p.peer, junk, CAP - 1), CAP - 1);
        ck_assert_int_eq(drain(p.stream, &total), 0);
        ck_assert_int_eq(feed(&p, junk, SENT, &total), -EMSGSIZE);
        /* It stopped within one read of the cap, and stays stopped. */
        ck_assert_uint_le(total, CAP + 64 * 1024);
        ck_assert_int_eq(varlink_stream_read(p.stream), -EMSGSIZE);
        ck_assert_int_eq(varlink_stream_next(p.stream, &(json_object *) { NULL }), -EMSGSIZE);
        pair_free(&p);
}
END_TEST

static int next_of(const char *data, size_t len) {
        _cleanup_(json_object_putp) json_object *o = NULL;
        Pair p = pair_new(0);
        int r;

        ck_assert_int_eq(feed_string(&p, data, len), 0);
        r = varlink_stream_next(p.stream, &o);
        ck_assert(r < 0 ? o == NULL : r == 1);
        pair_free(&p);
        return r;
}

#define NEXT_OF(literal) next_of(literal, sizeof(literal))  /* with the literal's own NUL */

START_TEST(test_invalid_json_is_a_bad_message) {
        ck_assert_int_eq(NEXT_OF("{"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("{\"method\":}"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("{\"method\":\"a.b.C\",}"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("{method:1}"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("{\"a\":tru}"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("{\"a\":\"\xff\"}"), -EBADMSG);   /* not UTF-8 */
        ck_assert_int_eq(NEXT_OF("{\"a\":1 /* comment */}"), -EBADMSG);
}
END_TEST

START_TEST(test_trailing_garbage_in_a_message_is_a_bad_message) {
        ck_assert_int_eq(NEXT_OF("{}x"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("{}{}"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("{} {}"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("{}]"), -EBADMSG);
}
END_TEST

START_TEST(test_whitespace_around_the_object_is_valid_json) {
        ck_assert_int_eq(NEXT_OF(" {}"), 1);
        ck_assert_int_eq(NEXT_OF("{}\n"), 1);
        ck_assert_int_eq(NEXT_OF("\t{ \"a\" : 1 }\r\n"), 1);
}
END_TEST

START_TEST(test_a_message_that_is_not_an_object_is_a_bad_message) {
        ck_assert_int_eq(NEXT_OF("[]"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("[{\"method\":\"a.b.C\"}]"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("1"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("\"a.b.C\""), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("null"), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("true"), -EBADMSG);
}
END_TEST

START_TEST(test_an_empty_message_is_a_bad_message) {
        ck_assert_int_eq(next_of("", 1), -EBADMSG);
        ck_assert_int_eq(NEXT_OF("  "), -EBADMSG);
}
END_TEST

START_TEST(test_a_bad_message_breaks_the_stream_for_good) {
        static const char data[] = "{]\0{\"method\":\"a.b.C\"}";
        Pair p = pair_new(0);

        ck_assert_int_eq(feed_string(&p, data, sizeof data), 0);
        ck_assert_int_eq(varlink_stream_next(p.stream, &(json_object *) { NULL }), -EBADMSG);
        ck_assert_int_eq(varlink_stream_next(p.stream, &(json_object *) { NULL }), -EBADMSG);
        ck_assert_int_eq(varlink_stream_read(p.stream), -EBADMSG);
        pair_free(&p);
}
END_TEST

START_TEST(test_end_of_file_in_the_middle_of_a_message_leaves_partial_input) {
        Pair p = pair_new(0);

        ck_assert_int_eq(write(p.peer, "{\"meth", 6), 6);
        p.peer = safe_close(p.peer);
        ck_assert_int_eq(varlink_stream_read(p.stream), 6);
        ck_assert_int_eq(varlink_stream_read(p.stream), 0);
        ck_assert(varlink_stream_has_partial_input(p.stream));
        ck_assert_int_eq(varlink_stream_next(p.stream, &(json_object *) { NULL }), 0);
        pair_free(&p);
}
END_TEST

START_TEST(test_end_of_file_after_complete_messages_leaves_no_partial_input) {
        Pair p = pair_new(0);

        ck_assert_int_eq(write(p.peer, "{}\0{}", 6), 6);
        p.peer = safe_close(p.peer);
        ck_assert_int_eq(varlink_stream_read(p.stream), 6);
        ck_assert_int_eq(varlink_stream_read(p.stream), 0);
        ck_assert(!varlink_stream_has_partial_input(p.stream));
        pair_free(&p);
}
END_TEST

START_TEST(test_reading_an_empty_non_blocking_socket_is_again) {
        Pair p = pair_new(0);

        ck_assert_int_eq(varlink_stream_read(p.stream), -EAGAIN);
        ck_assert(!varlink_stream_has_partial_input(p.stream));
        pair_free(&p);
}
END_TEST

START_TEST(test_the_stream_owns_its_fd_even_when_creation_fails) {
        VarlinkStream *s = NULL;
        int fds[2];

        ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
        ck_assert_int_eq(varlink_stream_new(fds[0], SIZE_MAX, &s), -EINVAL);
        ck_assert_ptr_null(s);
        ck_assert_int_eq(fcntl(fds[0], F_GETFD), -1);
        ck_assert_int_eq(errno, EBADF);
        ck_assert_int_eq(varlink_stream_new(fds[1], 0, &s), 0);
        ck_assert_int_eq(varlink_stream_fd(s), fds[1]);
        ck_assert_ptr_null(varlink_stream_free(s));
        ck_assert_int_eq(fcntl(fds[1], F_GETFD), -1);
        ck_assert_ptr_null(varlink_stream_free(NULL));
}
END_TEST

/* ---------------------------------------------------------------- output */

START_TEST(test_output_reaches_a_slow_non_blocking_reader_intact) {
        enum { SIZE = 4 * 1024 * 1024 };
        _cleanup_free_ char *m = message_of_size(SIZE), *got = malloc(SIZE);
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(m);
        size_t received = 0, last_size = SIZE + 1;
        bool blocked = false;
        Pair p = pair_new(0);
        int r;

        ck_assert_ptr_nonnull(o);
        ck_assert_ptr_nonnull(got);
        ck_assert_int_eq(varlink_stream_enqueue(p.stream, o), 0);
        ck_assert_uint_eq(varlink_stream_output_size(p.stream), SIZE);

        while ((r = varlink_stream_flush(p.stream)) == 0) {
                ssize_t l;

                blocked = true;
                ck_assert(varlink_stream_has_output(p.stream));
                ck_assert_uint_le(varlink_stream_output_size(p.stream), last_size);
                last_size = varlink_stream_output_size(p.stream);
                l = read(p.peer, got + received, 4096); /* slowly: a page at a time */
                ck_assert_int_gt(l, 0);
                received += l;
        }
        ck_assert_int_eq(r, 1);
        ck_assert(blocked);
        ck_assert(!varlink_stream_has_output(p.stream));
        ck_assert_uint_eq(varlink_stream_output_size(p.stream), 0);
        while (received < SIZE) {
                ssize_t l = read(p.peer, got + received, SIZE - received);
                ck_assert_int_gt(l, 0);
                received += l;
        }
        ck_assert_int_eq(read(p.peer, got, 1), -1);     /* nothing more: EAGAIN */
        ck_assert(memcmp(got, m, SIZE) == 0);            /* the same JSON text and its NUL */
        pair_free(&p);
}
END_TEST

START_TEST(test_enqueued_messages_are_sent_in_order_with_their_nul) {
        _cleanup_(json_object_putp) json_object *a = varlink_message_call("a.b.A", NULL, false, false);
        _cleanup_(json_object_putp) json_object *b = varlink_message_reply(NULL, true);
        static const char expected[] = "{\"method\":\"a.b.A\",\"parameters\":{}}\0{\"parameters\":{},\"continues\":true}";
        char got[sizeof expected + 16];
        Pair p = pair_new(0);

        ck_assert_int_eq(varlink_stream_enqueue(p.stream, a), 0);
        ck_assert_int_eq(varlink_stream_enqueue(p.stream, b), 0);
        ck_assert_int_eq(varlink_stream_flush(p.stream), 1);
        ck_assert_int_eq(read(p.peer, got, sizeof got), sizeof expected);
        ck_assert(memcmp(got, expected, sizeof expected) == 0);
        pair_free(&p);
}
END_TEST

START_TEST(test_enqueue_refuses_a_message_over_the_cap) {
        _cleanup_free_ char *m = message_of_size(101);
        _cleanup_(json_object_putp) json_object *o = json_tokener_parse(m);
        Pair p = pair_new(100);

        ck_assert_int_eq(varlink_stream_enqueue(p.stream, o), -EMSGSIZE);
        ck_assert(!varlink_stream_has_output(p.stream));
        pair_free(&p);
        p = pair_new(101);
        ck_assert_int_eq(varlink_stream_enqueue(p.stream, o), 0);
        ck_assert_uint_eq(varlink_stream_output_size(p.stream), 101);
        pair_free(&p);
}
END_TEST

START_TEST(test_flushing_to_a_closed_peer_is_a_broken_pipe_not_a_signal) {
        _cleanup_(json_object_putp) json_object *o = varlink_message_reply(NULL, false);
        Pair p = pair_new(0);

        p.peer = safe_close(p.peer);
        ck_assert_int_eq(varlink_stream_enqueue(p.stream, o), 0);
        ck_assert_int_eq(varlink_stream_flush(p.stream), -EPIPE);
        pair_free(&p);
}
END_TEST

START_TEST(test_a_stream_on_a_pipe_writes_too) {
        _cleanup_(json_object_putp) json_object *o = varlink_message_reply(NULL, false);
        _cleanup_(varlink_stream_freep) VarlinkStream *s = NULL;
        _cleanup_close_ int in = -EBADF;
        char got[64];
        int fds[2];

        ck_assert_int_eq(pipe2(fds, O_CLOEXEC), 0);
        in = fds[0];
        ck_assert_int_eq(varlink_stream_new(fds[1], 0, &s), 0);
        ck_assert_int_eq(varlink_stream_enqueue(s, o), 0);
        ck_assert_int_eq(varlink_stream_flush(s), 1);
        ck_assert_int_eq(read(in, got, sizeof got), sizeof("{\"parameters\":{}}"));
}
END_TEST

Suite *suite_varlink_stream(void) {
        Suite *s = suite_create("varlink-stream");
        TCase *tc;

        tc = tcase_create("input");
        /* The cap tests move 16 MiB through a socket, twice; slow under valgrind. */
        tcase_set_timeout(tc, 120);
        tcase_add_test(tc, test_a_message_fed_byte_by_byte_is_returned_once_complete);
        tcase_add_test(tc, test_pipelined_messages_in_one_write_come_out_one_at_a_time_in_order);
        tcase_add_test(tc, test_messages_interleaved_with_reads_stay_in_order);
        tcase_add_test(tc, test_a_message_exactly_at_the_cap_is_accepted);
        tcase_add_test(tc, test_a_message_one_byte_over_the_cap_is_refused);
        tcase_add_test(tc, test_an_unterminated_prefix_over_the_cap_fails_without_buffering_it_all);
        tcase_add_test(tc, test_invalid_json_is_a_bad_message);
        tcase_add_test(tc, test_trailing_garbage_in_a_message_is_a_bad_message);
        tcase_add_test(tc, test_whitespace_around_the_object_is_valid_json);
        tcase_add_test(tc, test_a_message_that_is_not_an_object_is_a_bad_message);
        tcase_add_test(tc, test_an_empty_message_is_a_bad_message);
        tcase_add_test(tc, test_a_bad_message_breaks_the_stream_for_good);
        tcase_add_test(tc, test_end_of_file_in_the_middle_of_a_message_leaves_partial_input);
        tcase_add_test(tc, test_end_of_file_after_complete_messages_leaves_no_partial_input);
        tcase_add_test(tc, test_reading_an_empty_non_blocking_socket_is_again);
        tcase_add_test(tc, test_the_stream_owns_its_fd_even_when_creation_fails);
        suite_add_tcase(s, tc);

        tc = tcase_create("output");
        tcase_set_timeout(tc, 60);
        tcase_add_test(tc, test_output_reaches_a_slow_non_blocking_reader_intact);
        tcase_add_test(tc, test_enqueued_messages_are_sent_in_order_with_their_nul);
        tcase_add_test(tc, test_enqueue_refuses_a_message_over_the_cap);
        tcase_add_test(tc, test_flushing_to_a_closed_peer_is_a_broken_pipe_not_a_signal);
        tcase_add_test(tc, test_a_stream_on_a_pipe_writes_too);
        suite_add_tcase(s, tc);
        return s;
}
