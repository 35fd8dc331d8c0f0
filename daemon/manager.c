/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <grp.h>
#include <signal.h>
#include <stdio.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>

#include "job.h"
#include "json-util.h"
#include "log.h"
#include "macro.h"
#include "manager.h"
#include "sets-revert.h"
#include "sets.h"
#include "methods.h"
#include "providers/external.h"
#include "varlink.h"
#include "vss-error.h"

/* How many connections one wake-up of the listening socket accepts, so that a flood of
 * connections cannot starve the clients already connected. */
#define ACCEPT_BATCH 64U
/* After EMFILE/ENFILE, stop accepting for this long instead of spinning on the listening fd. */
#define ACCEPT_PAUSE_USEC (250U * USEC_PER_MSEC)

struct Connection {
        EventSource source;           /* first: epoll data.ptr points here */
        Manager *manager;
        Connection *prev, *next;
        VarlinkStream *stream;
        int fd;                       /* owned by stream */
        uint64_t id;
        Peer peer;                    /* peer.groups points to groups */
        gid_t *groups;
        uint32_t events;              /* what the epoll set waits for on fd */
        uint64_t last_activity_usec;  /* the last call received, or the connection accepted */
        uint64_t last_write_usec;     /* the last write progress, or when output became pending */
        unsigned n_streaming;         /* "more" calls still sending: the connection is not idle */
        bool monitor;                 /* a Monitor call: events are sent until the client closes */
        /* A call of this connection is with the job, or waits for the job to end; nothing more
         * is read from the connection until it is answered (replies keep the calls' order). */
        bool deferred;
        json_object *waiting;         /* the call that waits, to be dispatched again */
        bool resume;                  /* its deferred call was answered: read on at the job's end */
        bool peer_shut;               /* EPOLLRDHUP seen while paused: stop watching for it */
        bool eof;                     /* the peer closed its side: no more calls will come */
        bool closed;
        /* Over a connection limit: its first call is answered with TooManyConnections naming
         * the key (e.g. "MaxConnectionsPerUser="), then it is closed. NULL: served. */
        const char *refused_limit;
        unsigned refused_maximum;
};

static const char *connection_peer(const Connection *c, char *buf, size_t size) {
        return manager_peer_to_string(c->peer.pid, c->peer.uid, buf, size);
}

const char *manager_peer_to_string(pid_t pid, uid_t uid, char *buf, size_t size) {
        snprintf(buf, size, "pid %ld uid %lu", (long) pid, (unsigned long) uid);
        return buf;
}

size_t manager_max_message(const Manager *m) {
        uint64_t v = m->config.max_message_bytes;

        return v == 0 || v > VARLINK_MESSAGE_MAX ? VARLINK_MESSAGE_MAX : (size_t) v;
}

const char *manager_serving_on(const Manager *m) {
        return m->activated ? "socket-activated fd" : m->socket_path;
}

/* ---------------------------------------------------------------- lifecycle */

int manager_new(Config *config, Manager **ret) {
        _cleanup_(manager_freep) Manager *m = NULL;

        m = calloc(1, sizeof *m);
        if (!m)
                return -ENOMEM;

        *m = (Manager) {
                .config = *config,
                .log_level_override = -1,
                .epoll_fd = -EBADF,
                .listen_fd = -EBADF,
                .signal_fd = -EBADF,
                .watchdog_fd = -EBADF,
                .timer_fd = -EBADF,
                .listen_source = { EVENT_SOURCE_LISTEN },
                .signal_source = { EVENT_SOURCE_SIGNAL },
                .watchdog_source = { EVENT_SOURCE_WATCHDOG },
                .timer_source = { EVENT_SOURCE_TIMER },
                .providers_source = { EVENT_SOURCE_PROVIDERS },
                .job_source = { EVENT_SOURCE_JOB },
                .posted_lock = PTHREAD_MUTEX_INITIALIZER,
                .loop_call_done = PTHREAD_COND_INITIALIZER,
                .start_usec = now_monotonic_usec(),
                .refuse_ratelimit = RATELIMIT_INIT(10 * USEC_PER_SEC, 5),
                .deny_ratelimit = RATELIMIT_INIT(10 * USEC_PER_SEC, 10),
                .protocol_ratelimit = RATELIMIT_INIT(10 * USEC_PER_SEC, 10),
        };
        *config = (Config) {};

        *ret = TAKE_PTR(m);
        return 0;
}

/* ---------------------------------------------------------------- what waits for the job */

typedef struct PostedEvent {
        struct PostedEvent *next;
        char *type, *set_id, *snapshot_id, *volume, *message;
} PostedEvent;

static void posted_event_free(PostedEvent *e) {
        free(e->type);
        free(e->set_id);
        free(e->snapshot_id);
        free(e->volume);
        free(e->message);
        free(e);
}

static void posted_events_free(Manager *m) {
        while (m->posted) {
                PostedEvent *e = m->posted;
                m->posted = e->next;
                posted_event_free(e);
        }
}

static bool strdup_or_null(const char *s, char **ret) {
        *ret = s ? strdup(s) : NULL;
        return !s || *ret;
}

void manager_post_event(Manager *m, const char *type, const char *set_id, const char *snapshot_id,
                        const char *volume, const char *message) {
        PostedEvent *e, **tail;

        if (!m->jobs || pthread_equal(pthread_self(), m->loop_thread))
                return manager_send_event(m, type, set_id, snapshot_id, volume, message);

        e = calloc(1, sizeof *e);
        if (!e || !strdup_or_null(type, &e->type) || !strdup_or_null(set_id, &e->set_id) ||
            !strdup_or_null(snapshot_id, &e->snapshot_id) || !strdup_or_null(volume, &e->volume) ||
            !strdup_or_null(message, &e->message)) {
                if (e)
                        posted_event_free(e);
                return (void) log_oom();
        }
        pthread_mutex_lock(&m->posted_lock);
        for (tail = &m->posted; *tail; tail = &(*tail)->next)
                ;
        *tail = e;
        pthread_mutex_unlock(&m->posted_lock);
        job_runner_wake(m->jobs);
}

typedef struct LoopCall {
        LoopCallFunc func;
        void *userdata;
        bool done;
} LoopCall;

int manager_run_on_loop(Manager *m, LoopCallFunc func, void *userdata) {
        LoopCall call = { .func = func, .userdata = userdata };
        int r = 0;

        if (!m->jobs || pthread_equal(pthread_self(), m->loop_thread)) {
                func(m, userdata);
                return 0;
        }
        pthread_mutex_lock(&m->posted_lock);
        if (m->loop_calls_closed || m->loop_call)   /* one job, one call at a time */
                r = m->loop_calls_closed ? -ECANCELED : -EBUSY;
        else {
                m->loop_call = &call;
                job_runner_wake(m->jobs);
                while (!call.done && !m->loop_calls_closed)
                        pthread_cond_wait(&m->loop_call_done, &m->posted_lock);
                if (!call.done) {
                        m->loop_call = NULL;
                        r = -ECANCELED;
                }
        }
        pthread_mutex_unlock(&m->posted_lock);
        return r;
}

/* The loop: runs what the job thread waits for. */
static void manager_run_loop_call(Manager *m) {
        LoopCall *call;

        pthread_mutex_lock(&m->posted_lock);
        call = m->loop_call;
        pthread_mutex_unlock(&m->posted_lock);
        if (!call)
                return;
        call->func(m, call->userdata);
        pthread_mutex_lock(&m->posted_lock);
        m->loop_call = NULL;
        call->done = true;
        pthread_cond_broadcast(&m->loop_call_done);
        pthread_mutex_unlock(&m->posted_lock);
}

/* The loop: sends what the job thread posted, in order. */
static void manager_send_posted(Manager *m) {
        PostedEvent *list;

        pthread_mutex_lock(&m->posted_lock);
        list = TAKE_PTR(m->posted);
        pthread_mutex_unlock(&m->posted_lock);
        while (list) {
                PostedEvent *e = list;
                list = e->next;
                manager_send_event(m, e->type, e->set_id, e->snapshot_id, e->volume, e->message);
                posted_event_free(e);
        }
}

bool manager_job_busy(const Manager *m) {
        return job_runner_busy(m->jobs);
}

static void pending_close_add(Manager *m, uint64_t id) {
        uint64_t *a = reallocarray(m->pending_closes, m->n_pending_closes + 1, sizeof(uint64_t));

        if (!a) {
                /* Its sets stay until the daemon's next start cleans them up. */
                log_oom();
                return;
        }
        m->pending_closes = a;
        m->pending_closes[m->n_pending_closes++] = id;
}

static Connection *connection_free(Connection *c) {
        if (!c)
                return NULL;
        varlink_stream_free(c->stream);
        json_object_put(c->waiting);
        free(c->groups);
        free(c);
        return NULL;
}

static void connection_list_free(Connection **list) {
        while (*list) {
                Connection *c = *list;
                *list = c->next;
                connection_free(c);
        }
}

/* Removes the socket we bound, unless something else has replaced it since. */
static void manager_unlink_socket(Manager *m) {
        struct stat st;

        if (!m->socket_bound || !m->socket_path)
                return;
        if (lstat(m->socket_path, &st) >= 0 && st.st_dev == m->socket_dev && st.st_ino == m->socket_ino)
                (void) unlink(m->socket_path);
        m->socket_bound = false;
}

Manager *manager_free(Manager *m) {
        if (!m)
                return NULL;

        /* A job still running (a fatal loop error) is waited for: it owns the set in creation. A
         * job waiting for a loop call gets -ECANCELED first, or it would never end. */
        pthread_mutex_lock(&m->posted_lock);
        m->loop_calls_closed = true;
        pthread_cond_broadcast(&m->loop_call_done);
        pthread_mutex_unlock(&m->posted_lock);
        m->jobs = job_runner_free(m->jobs);
        connection_list_free(&m->connections);
        connection_list_free(&m->closed);
        free(m->pending_closes);
        posted_events_free(m);
        manager_unlink_socket(m);
        safe_close(m->listen_fd);
        safe_close(m->signal_fd);
        safe_close(m->watchdog_fd);
        safe_close(m->timer_fd);
        safe_close(m->epoll_fd);
        config_done(&m->config);
        free(m->config_path);
        free(m->state_directory);
        free(m->socket_path);
        free(m->runtime_directory);
        free(m);
        return NULL;
}

static int manager_epoll_add(Manager *m, int fd, uint32_t events, EventSource *source) {
        struct epoll_event ev = { .events = events, .data.ptr = source };

        if (epoll_ctl(m->epoll_fd, EPOLL_CTL_ADD, fd, &ev) < 0)
                return -errno;
        return 0;
}

/* ---------------------------------------------------------------- connections */

static void connection_close(Connection *c, int level, const char *reason) {
        Manager *m = c->manager;
        char peer[64];

        if (c->closed)
                return;
        c->closed = true;

        if (reason)
                log_full(level, "Connection %" PRIu64 " (%s): %s; closing it.", c->id,
                         connection_peer(c, peer, sizeof peer), reason);

        (void) epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, c->fd, NULL);
        /* Close now so that the client sees EOF at once; free later, because events for this
         * connection may still be in the batch the loop is working through. */
        c->stream = varlink_stream_free(c->stream);
        c->fd = -EBADF;

        if (c->prev)
                c->prev->next = c->next;
        else
                m->connections = c->next;
        if (c->next)
                c->next->prev = c->prev;
        c->prev = NULL;
        c->next = m->closed;
        m->closed = c;
        if (c->refused_limit)
                m->n_refusing--;
        else
                m->n_connections--;

        /* A set in creation, and backup-context sets, belong to the connection that made them:
         * they go with it (architecture §1.1, §4); after the job, if one runs (it may be using
         * them). */
        if (!job_runner_busy(m->jobs))
                sets_connection_closed(m, c->id);
        else if (sets_connection_owns(m, c->id))
                pending_close_add(m, c->id);
}

static int connection_send(void *userdata, json_object *msg) {
        Connection *c = userdata;
        int r;

        if (c->closed)
                return -ECONNRESET;
        if (!varlink_stream_has_output(c->stream))
                c->last_write_usec = now_monotonic_usec();
        r = varlink_stream_enqueue(c->stream, msg);
        if (r == -EMSGSIZE) {
                /* A reply larger than the client would accept: say so instead of sending it. */
                _cleanup_(json_object_putp) json_object *p = NULL, *err = NULL;

                p = vss_error_parameters(VSS_E_UNEXPECTED, NULL,
                                         "The reply exceeds the maximum message size of the protocol.");
                err = p ? varlink_message_error(vss_code_varlink_error(VSS_E_UNEXPECTED), p) : NULL;
                if (!err)
                        return -ENOMEM;
                return varlink_stream_enqueue(c->stream, err);
        }
        return r;
}

static void connection_update_events(Connection *c) {
        uint32_t events = 0;
        struct epoll_event ev;

        if (c->closed)
                return;

        /* Backpressure: while the client has not read what we sent, read nothing from it, so that
         * neither its calls nor our replies pile up in memory. A Monitor connection is only
         * watched for the client going away. */
        if (c->monitor)
                events |= EPOLLRDHUP;
        else if (c->deferred || c->waiting || c->resume) {
                /* Paused: only watch for the client going away (HUP and ERR always come). */
                if (!c->peer_shut)
                        events |= EPOLLRDHUP;
        } else if (!c->eof && varlink_stream_output_size(c->stream) < MANAGER_OUTPUT_HIGH_WATER)
                events |= EPOLLIN;
        if (varlink_stream_has_output(c->stream))
                events |= EPOLLOUT;

        if (events == c->events)
                return;
        ev = (struct epoll_event) { .events = events, .data.ptr = &c->source };
        if (epoll_ctl(c->manager->epoll_fd, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
                log_error_errno(errno, "Failed to update the epoll set for connection %" PRIu64 ": %m", c->id);
                connection_close(c, LOG_DEBUG, NULL);
                return;
        }
        c->events = events;
}

/* Writes what the socket takes. */
static void connection_flush(Connection *c) {
        size_t before;
        int r;

        if (c->closed || !varlink_stream_has_output(c->stream))
                return;

        before = varlink_stream_output_size(c->stream);
        r = varlink_stream_flush(c->stream);
        if (r < 0) {
                char reason[128];
                snprintf(reason, sizeof reason, "failed to send replies: %s", strerror(-r));
                connection_close(c, LOG_DEBUG, reason);
                return;
        }
        if (varlink_stream_output_size(c->stream) != before)
                c->last_write_usec = now_monotonic_usec();
}

static void connection_protocol_error(Connection *c, int r) {
        char peer[64];
        unsigned suppressed;
        const char *what =
                r == -EMSGSIZE ? "sent a message larger than the maximum message size" :
                r == -EBADMSG ? "sent a message that is not a JSON object" :
                r == -EPROTO ? "sent a message that is not a valid varlink call" :
                "sent something that is not varlink";

        /* A client can trigger this at will: notice level, rate-limited. */
        if (ratelimit_below(&c->manager->protocol_ratelimit, &suppressed))
                log_notice("Connection %" PRIu64 " (%s) %s; closing it.%s", c->id,
                           connection_peer(c, peer, sizeof peer), what,
                           suppressed > 0 ? " (similar messages were suppressed)" : "");
        connection_close(c, LOG_DEBUG, NULL);
}

/* The one reply a connection over a limit gets, to its first call: which limit, and what to
 * do. Then it is closed (a small reply into an empty socket buffer: one write sends it). */
static void connection_refuse(Connection *c) {
        _cleanup_(json_object_putp) json_object *p = json_object_new_object(), *err = NULL;
        char message[256];

        snprintf(message, sizeof message, "snapsetd serves at most %u connections %s at once (%s in "
                 "snapsetd.conf); this one is closed. Close idle connections, retry later, or raise %s.",
                 c->refused_maximum, streq(c->refused_limit, "MaxConnections=") ? "in all" : "per user",
                 c->refused_limit, c->refused_limit);
        if (p && json_add_string(p, "limit", c->refused_limit) >= 0 &&
            json_add_int(p, "maximum", c->refused_maximum) >= 0 && json_add_string(p, "message", message) >= 0)
                err = varlink_message_error(SNAPSET_VARLINK_INTERFACE ".TooManyConnections", p);
        if (err && varlink_stream_enqueue(c->stream, err) >= 0)
                (void) varlink_stream_flush(c->stream);
        connection_close(c, LOG_DEBUG, "over a connection limit, told so");
}

/* Handles the complete calls in the input buffer, in order, while the client keeps up with the
 * replies; then writes, and closes the connection once the client is done. */
static void connection_process(Connection *c) {
        bool input_drained = false;
        int r;

        c->resume = false;
        while (!c->closed && !c->monitor && !c->deferred &&
               varlink_stream_output_size(c->stream) < MANAGER_OUTPUT_HIGH_WATER) {
                _cleanup_(json_object_putp) json_object *msg = NULL;

                if (c->waiting) {
                        if (job_runner_busy(c->manager->jobs))
                                break;
                        msg = TAKE_PTR(c->waiting);
                } else {
                        r = varlink_stream_next(c->stream, &msg);
                        if (r == 0) {
                                input_drained = true;
                                break;
                        }
                        if (r < 0) {
                                connection_protocol_error(c, r);
                                return;
                        }
                }

                if (c->refused_limit) {
                        connection_refuse(c);
                        return;
                }
                c->last_activity_usec = now_monotonic_usec();
                r = methods_dispatch(c->manager, &c->peer, msg, connection_send, c);
                if (r == METHODS_DEFERRED) {
                        c->deferred = true;
                        break;
                }
                if (r == METHODS_WAIT) {
                        c->waiting = TAKE_PTR(msg);
                        break;
                }
                if (r > 0) {
                        /* Monitor: the call stays open, and the connection carries only its
                         * events from now on. Calls pipelined after it are never answered (the
                         * protocol allows none while a "more" call is open); they are not even
                         * read, so they cannot pile up. */
                        c->monitor = true;
                        c->n_streaming++;
                        break;
                }
                if (r == -EPROTO) {
                        connection_protocol_error(c, r);
                        return;
                }
                if (r < 0) {
                        char reason[128];
                        snprintf(reason, sizeof reason, "failed to reply: %s", strerror(-r));
                        connection_close(c, LOG_WARNING, reason);
                        return;
                }
        }

        connection_flush(c);
        if (c->closed)
                return;

        /* The client has closed its side and every call it sent has been answered and written. */
        if (c->eof && input_drained && !varlink_stream_has_output(c->stream)) {
                if (varlink_stream_has_partial_input(c->stream))
                        connection_close(c, LOG_DEBUG, "closed by the client in the middle of a message");
                else
                        connection_close(c, LOG_DEBUG, NULL);
                return;
        }

        connection_update_events(c);
}

static void connection_handle(Connection *c, uint32_t events) {
        int r;

        if (events & EPOLLOUT) {
                connection_flush(c);
                if (c->closed)
                        return;
        }

        if (c->monitor) {
                /* The client ends a Monitor call by closing the connection. */
                if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                        connection_close(c, LOG_DEBUG, "Monitor ended by the client");
                else
                        connection_update_events(c);
                return;
        }

        if (c->deferred || c->waiting || c->resume) {
                /* Gone altogether: nothing we send can arrive. Only its write side shut: the
                 * answer is still due, and what it sent before is read once the job is done. */
                if (events & (EPOLLHUP | EPOLLERR))
                        connection_close(c, LOG_DEBUG, "the client hung up while its call was waiting");
                else {
                        if (events & EPOLLRDHUP)
                                c->peer_shut = true;
                        connection_update_events(c);
                }
                return;
        }

        if ((events & (EPOLLIN | EPOLLHUP | EPOLLERR)) && !c->eof &&
            varlink_stream_output_size(c->stream) < MANAGER_OUTPUT_HIGH_WATER) {
                /* One read per wake-up: the epoll set is level-triggered, so the rest comes on the
                 * next round, after the other clients have had their turn. */
                r = varlink_stream_read(c->stream);
                if (r == 0)
                        c->eof = true;
                else if (r == -EMSGSIZE) {
                        connection_protocol_error(c, r);
                        return;
                } else if (r < 0 && r != -EAGAIN && r != -EINTR) {
                        char reason[128];
                        snprintf(reason, sizeof reason, "failed to read: %s", strerror(-r));
                        connection_close(c, LOG_DEBUG, reason);
                        return;
                }
        } else if ((events & (EPOLLHUP | EPOLLERR)) && !(events & EPOLLOUT) &&
                   varlink_stream_has_output(c->stream)) {
                connection_close(c, LOG_DEBUG, "the client hung up");
                return;
        }

        /* Also after EPOLLOUT: calls held back by backpressure are processed once the replies
         * have drained. */
        connection_process(c);
}

/* Sends an Event object (taken over) to every Monitor client. */
static void manager_send_event_object(Manager *m, json_object *event_taken) {
        _cleanup_(json_object_putp) json_object *event = event_taken, *params = NULL, *msg = NULL;
        Connection *next;

        params = event ? json_object_new_object() : NULL;
        if (!params || json_object_object_add(params, "event", TAKE_PTR(event)) < 0)
                return (void) log_oom();
        msg = varlink_message_reply(params, /* continues= */ true);
        if (!msg)
                return (void) log_oom();

        for (Connection *c = m->connections; c; c = next) {
                next = c->next;
                if (!c->monitor)
                        continue;
                /* Events are pushed, not asked for, so backpressure cannot hold them back: a
                 * client that lets them pile up is dropped rather than buffered for. */
                if (varlink_stream_output_size(c->stream) >= MANAGER_OUTPUT_HIGH_WATER) {
                        connection_close(c, LOG_NOTICE, "Monitor client does not read its events");
                        continue;
                }
                if (connection_send(c, msg) < 0) {
                        connection_close(c, LOG_DEBUG, "failed to queue an event");
                        continue;
                }
                connection_flush(c);
                connection_update_events(c);
        }
}

void manager_send_event(Manager *m, const char *type, const char *set_id, const char *snapshot_id,
                        const char *volume, const char *message) {
        manager_send_event_object(m, monitor_event_new(type, set_id, snapshot_id, volume, message));
}

void manager_send_phase_event(Manager *m, const char *set_id, const char *phase, const char *message) {
        json_object *event = monitor_event_new("set-phase", set_id, NULL, NULL, message);

        if (event && json_object_object_add(event, "phase", json_object_new_string(phase)) < 0) {
                json_object_put(event);
                event = NULL;
        }
        manager_send_event_object(m, event);
}

void manager_deliver(Manager *m, uint64_t connection_id, json_object *replies) {
        Connection *c;

        for (c = m->connections; c && c->id != connection_id; c = c->next)
                ;
        if (!c || c->closed)
                return;   /* gone: the job's results were taken in by finish all the same */
        for (size_t i = 0; i < json_object_array_length(replies); i++)
                if (connection_send(c, json_object_array_get_idx(replies, i)) < 0) {
                        connection_close(c, LOG_DEBUG, "failed to queue a reply");
                        return;
                }
        c->deferred = false;
        c->resume = true;   /* its next calls are read once the job has ended (manager_job_ended) */
        c->last_activity_usec = now_monotonic_usec();
        connection_flush(c);
        connection_update_events(c);
}

/* The job's done function has run. What had to wait for it happens now, unless the connection
 * that got its answer already started the next job (then at that job's end): the sets of
 * connections that closed meanwhile, a reload, the providers' output, the calls that waited,
 * and the next calls of the connection whose call the job was. */
static void manager_job_ended(Manager *m) {
        Connection *next;

        if (job_runner_busy(m->jobs))
                return;
        for (size_t i = 0; i < m->n_pending_closes; i++)
                sets_connection_closed(m, m->pending_closes[i]);
        free(m->pending_closes);
        m->pending_closes = NULL;
        m->n_pending_closes = 0;
        if (m->reload_pending) {
                m->reload_pending = false;
                (void) manager_reload(m);
        }
        /* Calls that waited first, then the connections that had a job: a client pipelining its
         * AddToSnapshotSet calls does not starve the others. */
        for (int pass = 0; pass < 2; pass++)
                for (Connection *c = m->connections; c; c = next) {
                        next = c->next;
                        if (job_runner_busy(m->jobs))
                                return;
                        if (c->closed || !(pass == 0 ? c->waiting != NULL : c->resume))
                                continue;
                        c->peer_shut = false;
                        connection_process(c);
                }
}

static void manager_handle_job(Manager *m) {
        bool ended = job_runner_dispatch(m->jobs);

        manager_send_posted(m);
        manager_run_loop_call(m);
        sets_announce_phases(m);
        if (ended)
                manager_job_ended(m);
}

/* The providers' output is not read while a job may be talking to them. */
static void manager_pause_providers(Manager *m) {
        int fd = external_providers_event_fd();
        bool pause = job_runner_busy(m->jobs);

        if (fd < 0 || pause == m->providers_paused)
                return;
        if (pause)
                (void) epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, fd, NULL);
        else if (manager_epoll_add(m, fd, EPOLLIN, &m->providers_source) < 0)
                return;
        m->providers_paused = pause;
}

static unsigned manager_connections_of_uid(const Manager *m, uid_t uid) {
        unsigned n = 0;

        for (const Connection *c = m->connections; c; c = c->next)
                if (c->peer.uid == uid && !c->refused_limit)
                        n++;
        return n;
}

/* The supplementary groups of the peer as of connect() (SO_PEERGROUPS, Linux 4.13). An older
 * kernel gives none; membership then comes from the gid and the user database only. */
static int socket_peer_groups(int fd, gid_t **ret, size_t *ret_n) {
        _cleanup_free_ gid_t *groups = NULL;
        socklen_t l = 32 * sizeof(gid_t);

        for (;;) {
                gid_t *n = realloc(groups, l ?: 1);
                if (!n)
                        return -ENOMEM;
                groups = n;
                if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &l) >= 0)
                        break;
                if (errno == ENOPROTOOPT || errno == EOPNOTSUPP) {
                        l = 0;
                        break;
                }
                /* ERANGE: l now holds the size needed. */
                if (errno != ERANGE || l > 65536 * sizeof(gid_t))
                        return -errno;
        }
        *ret_n = l / sizeof(gid_t);
        *ret = TAKE_PTR(groups);
        return 0;
}

static int socket_peer(int fd, Peer *ret) {
        struct ucred ucred;
        socklen_t l = sizeof ucred;

        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &ucred, &l) < 0)
                return -errno;
        if (l != sizeof ucred)
                return -EIO;
        *ret = (Peer) { .pid = ucred.pid, .uid = ucred.uid, .gid = ucred.gid };
        return 0;
}

static int manager_add_connection(Manager *m, int fd, const Peer *peer, const char *refused_limit,
                                  unsigned refused_maximum) {
        _cleanup_close_ int fd_close = fd;
        Connection *c;
        int r;

        c = calloc(1, sizeof *c);
        if (!c)
                return -ENOMEM;
        *c = (Connection) {
                .source = { EVENT_SOURCE_CONNECTION },
                .manager = m,
                .fd = fd,
                .id = ++m->next_connection_id,
                .peer = *peer,
                .events = EPOLLIN,
                .last_activity_usec = now_monotonic_usec(),
                .refused_limit = refused_limit,
                .refused_maximum = refused_maximum,
        };

        r = socket_peer_groups(fd, &c->groups, &c->peer.n_groups);
        if (r < 0) {
                free(c);
                return r;
        }
        c->peer.groups = c->groups;
        c->peer.connection_id = c->id;

        r = varlink_stream_new(TAKE_FD(fd_close), manager_max_message(m), &c->stream);
        if (r < 0) {
                free(c->groups);
                free(c);
                return r;
        }

        r = manager_epoll_add(m, fd, EPOLLIN, &c->source);
        if (r < 0) {
                connection_free(c);
                return r;
        }

        c->next = m->connections;
        if (m->connections)
                m->connections->prev = c;
        m->connections = c;
        if (refused_limit)
                m->n_refusing++;
        else
                m->n_connections++;
        return 0;
}

static void manager_listen_pause(Manager *m, bool pause) {
        if (m->listen_fd < 0 || m->listening == !pause)
                return;
        if (pause)
                (void) epoll_ctl(m->epoll_fd, EPOLL_CTL_DEL, m->listen_fd, NULL);
        else if (manager_epoll_add(m, m->listen_fd, EPOLLIN, &m->listen_source) < 0)
                return;
        m->listening = !pause;
        m->accept_resume_usec = pause ? now_monotonic_usec() + ACCEPT_PAUSE_USEC : 0;
}

/* Closes the connections whose client has already gone away completely (POLLHUP: nothing we
 * send can arrive), so that a client that closes and reconnects at once is not refused because
 * the loop has not seen the close yet. Runs only when a cap is reached. */
static void manager_reap_hung_up(Manager *m) {
        _cleanup_free_ struct pollfd *fds = NULL;
        Connection **conns, *c;
        size_t n = 0, all = m->n_connections + m->n_refusing;   /* every one in the list */

        if (all == 0)
                return;
        fds = calloc(all, sizeof *fds + sizeof *conns);
        if (!fds)
                return;
        conns = (Connection **) (fds + all);

        for (c = m->connections; c && n < all; c = c->next) {
                fds[n] = (struct pollfd) { .fd = c->fd, .events = 0 };
                conns[n++] = c;
        }
        if (poll(fds, n, 0) <= 0)
                return;
        for (size_t i = 0; i < n; i++)
                if (fds[i].revents & (POLLHUP | POLLERR | POLLNVAL))
                        connection_close(conns[i], LOG_DEBUG, NULL);
}

/* Root is the administrator, and a backup server runs its many jobs as root: its connections
 * count against MaxConnections= only. Every other user has MaxConnectionsPerUser= as well, so
 * that no user can take every connection. */
static bool manager_at_cap(Manager *m, uid_t uid, bool *ret_total) {
        *ret_total = m->n_connections >= m->config.max_connections;
        return *ret_total ||
               (uid != 0 && manager_connections_of_uid(m, uid) >= m->config.max_connections_per_user);
}

static void manager_accept(Manager *m) {
        for (unsigned i = 0; i < ACCEPT_BATCH; i++) {
                _cleanup_close_ int fd = -EBADF;
                const char *limit = NULL;
                unsigned suppressed, maximum = 0;
                char peerbuf[64];
                Peer peer;
                int r;

                fd = accept4(m->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
                if (fd < 0) {
                        r = -errno;
                        if (r == -EAGAIN || r == -EWOULDBLOCK)
                                return;
                        if (r == -EINTR || r == -ECONNABORTED || r == -EPROTO)
                                continue;
                        if (ratelimit_below(&m->refuse_ratelimit, &suppressed))
                                log_warning_errno(r, "Failed to accept a connection, pausing for a moment: %m");
                        /* EMFILE, ENFILE, ENOBUFS, ENOMEM: the pending connection stays pending;
                         * try again shortly instead of waking up for it in a busy loop. */
                        manager_listen_pause(m, true);
                        return;
                }

                r = socket_peer(fd, &peer);
                if (r < 0) {
                        log_debug_errno(r, "Failed to get the credentials of a new connection, closing it: %m");
                        continue;
                }

                bool total;
                if (manager_at_cap(m, peer.uid, &total))
                        manager_reap_hung_up(m);
                if (manager_at_cap(m, peer.uid, &total)) {
                        limit = total ? "MaxConnections=" : "MaxConnectionsPerUser=";
                        maximum = total ? m->config.max_connections : m->config.max_connections_per_user;
                        if (ratelimit_below(&m->refuse_ratelimit, &suppressed))
                                log_warning("Refusing a connection from %s: %s (%u) reached.%s",
                                            manager_peer_to_string(peer.pid, peer.uid, peerbuf, sizeof peerbuf),
                                            limit, maximum,
                                            suppressed > 0 ? " (similar messages were suppressed)" : "");
                        /* Kept only to answer its first call with the reason (a reply nobody
                         * asked for would break the protocol); a flood is closed unanswered. */
                        if (m->n_refusing >= MANAGER_REFUSING_MAX)
                                continue;
                }

                r = manager_add_connection(m, TAKE_FD(fd), &peer, limit, maximum);
                if (r < 0) {
                        log_warning_errno(r, "Failed to set up a connection from %s: %m",
                                          manager_peer_to_string(peer.pid, peer.uid, peerbuf, sizeof peerbuf));
                        continue;
                }
                log_debug("Connection %" PRIu64 " from %s%s.", m->next_connection_id,
                          manager_peer_to_string(peer.pid, peer.uid, peerbuf, sizeof peerbuf),
                          limit ? ", over a limit: its first call is refused" : "");
        }
}

/* ---------------------------------------------------------------- timeouts */

/* When c must be closed, or UINT64_MAX. */
static uint64_t connection_deadline(const Connection *c) {
        const Config *cfg = &c->manager->config;

        if (c->refused_limit)
                return c->last_activity_usec + MANAGER_REFUSING_USEC;
        if (varlink_stream_has_output(c->stream))
                return c->last_write_usec + MANAGER_OUTPUT_STALL_USEC;
        /* A backup script holds its connection open, idle, for as long as it reads its
         * snapshots: closing it would delete its backup-context set under it. */
        if (c->n_streaming > 0 || cfg->idle_timeout_sec == 0 || sets_connection_owns(c->manager, c->id))
                return UINT64_MAX;
        /* A call that is with the job, or waits for it, is not idleness. */
        if (c->deferred || c->waiting || c->resume)
                return UINT64_MAX;
        return c->last_activity_usec + (uint64_t) cfg->idle_timeout_sec * USEC_PER_SEC;
}

static void manager_arm_timer(Manager *m) {
        uint64_t next = UINT64_MAX;
        struct itimerspec its = {};

        for (const Connection *c = m->connections; c; c = c->next) {
                uint64_t d = connection_deadline(c);
                if (d < next)
                        next = d;
        }
        if (m->accept_resume_usec > 0 && m->accept_resume_usec < next)
                next = m->accept_resume_usec;
        if (sets_idle_deadline(m) < next)
                next = sets_idle_deadline(m);
        if (sets_revert_deadline(m) < next)
                next = sets_revert_deadline(m);

        if (next != UINT64_MAX) {
                /* An absolute time of 0 would disarm the timer. */
                if (next == 0)
                        next = 1;
                its.it_value.tv_sec = (time_t) (next / USEC_PER_SEC);
                its.it_value.tv_nsec = (long) ((next % USEC_PER_SEC) * NSEC_PER_USEC);
        }
        if (timerfd_settime(m->timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0)
                log_warning_errno(errno, "Failed to arm the connection timer: %m");
}

static void manager_handle_timer(Manager *m) {
        uint64_t expirations, now = now_monotonic_usec();
        Connection *next;

        /* How often it expired does not matter: the deadlines below decide. */
        ssize_t l = read(m->timer_fd, &expirations, sizeof expirations);
        (void) l;

        for (Connection *c = m->connections; c; c = next) {
                next = c->next;
                if (connection_deadline(c) > now)
                        continue;
                if (varlink_stream_has_output(c->stream))
                        connection_close(c, LOG_NOTICE, "the client has not read its replies for 30 s");
                else
                        connection_close(c, LOG_DEBUG, "idle timeout (IdleTimeoutSec=)");
        }

        if (m->accept_resume_usec > 0 && m->accept_resume_usec <= now)
                manager_listen_pause(m, false);
        sets_check_idle(m, now);
        sets_revert_poll(m, now);
}

/* ---------------------------------------------------------------- signals, watchdog, reload */

static void manager_check_read_group(const Manager *m) {
        const char *g = m->config.read_group;

        if (g && !getgrnam(g))
                log_warning("ReadGroup=%s: no such group (yet); until it exists, only root may call snapsetd.", g);
}

int manager_reload(Manager *m) {
        _cleanup_(config_done) Config c = {};
        _cleanup_free_ char *message = NULL;
        int r;

        (void) sd_notify(false, "RELOADING=1\nSTATUS=Reloading the configuration...");

        r = config_load(m->config_path, !m->config_path_explicit, &c, &message);
        if (r < 0) {
                if (message)
                        log_error("Failed to reload the configuration, keeping the old one: %s", message);
                else
                        log_error_errno(r, "Failed to reload the configuration from %s, keeping the old one: %m",
                                        m->config_path);
        } else {
                if (!streq_ptr(c.state_directory, m->config.state_directory))
                        log_warning("StateDirectory= cannot change while snapsetd runs; restart it to use %s.",
                                    c.state_directory);
                config_done(&m->config);
                m->config = c;
                /* The providers' settings point into the configuration: refresh them. */
                (void) sets_apply_config(m);
                c = (Config) {};
                if (m->log_level_override < 0)
                        log_set_max_level(m->config.log_level);
                manager_check_read_group(m);
                /* New limits apply to new connections and calls; connections over a lowered cap are
                 * left alone rather than cut off. */
                log_info("Configuration reloaded from %s.", m->config_path);
        }

        (void) sd_notify(false, "READY=1\nSTATUS=Processing requests...");
        return r;
}

static void manager_handle_signal(Manager *m) {
        struct signalfd_siginfo si;
        ssize_t l;

        l = read(m->signal_fd, &si, sizeof si);
        if (l != (ssize_t) sizeof si)
                return;

        switch (si.ssi_signo) {
        case SIGTERM:
        case SIGINT:
                log_info("Received %s, stopping%s.", si.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT",
                         job_runner_busy(m->jobs) ? " once the snapshot set being created is done" : "");
                (void) sd_notify(false, "STOPPING=1\nSTATUS=Shutting down...");
                m->exiting = true;
                break;
        case SIGHUP:
                /* The job reads the configuration: the new one applies when it is done. */
                if (job_runner_busy(m->jobs)) {
                        log_info("Received SIGHUP while a snapshot set is created; reloading when it is done.");
                        m->reload_pending = true;
                } else
                        (void) manager_reload(m);
                break;
        default:
                break;
        }
}

static void manager_handle_watchdog(Manager *m) {
        uint64_t expirations;

        /* Ping even if the read fails: a missed expiry is no reason to be killed. */
        if (read(m->watchdog_fd, &expirations, sizeof expirations) < 0)
                log_debug_errno(errno, "Failed to read the watchdog timerfd: %m");
        (void) sd_notify(false, "WATCHDOG=1");
}

/* ---------------------------------------------------------------- startup */

static int manager_setup_signals(Manager *m) {
        sigset_t mask;
        int r;

        /* A client that goes away mid-reply must not kill the daemon; the stream code uses
         * MSG_NOSIGNAL, this covers everything else. */
        (void) signal(SIGPIPE, SIG_IGN);

        sigemptyset(&mask);
        sigaddset(&mask, SIGTERM);
        sigaddset(&mask, SIGINT);
        sigaddset(&mask, SIGHUP);
        r = sigprocmask(SIG_BLOCK, &mask, NULL);
        if (r < 0)
                return log_error_errno(errno, "Failed to block signals: %m");

        m->signal_fd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
        if (m->signal_fd < 0)
                return log_error_errno(errno, "Failed to create a signalfd: %m");
        r = manager_epoll_add(m, m->signal_fd, EPOLLIN, &m->signal_source);
        if (r < 0)
                return log_error_errno(r, "Failed to add the signalfd to the epoll set: %m");
        return 0;
}

static int manager_setup_timers(Manager *m) {
        int r;

        m->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (m->timer_fd < 0)
                return log_error_errno(errno, "Failed to create a timerfd: %m");
        r = manager_epoll_add(m, m->timer_fd, EPOLLIN, &m->timer_source);
        if (r < 0)
                return log_error_errno(r, "Failed to add the timerfd to the epoll set: %m");

        r = sd_watchdog_enabled(false, &m->watchdog_usec);
        if (r < 0)
                log_warning_errno(r, "Failed to parse WATCHDOG_USEC, not sending watchdog pings: %m");
        if (r <= 0) {
                m->watchdog_usec = 0;
                return 0;
        }

        m->watchdog_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
        if (m->watchdog_fd < 0)
                return log_error_errno(errno, "Failed to create the watchdog timerfd: %m");

        /* Ping at half the interval, as sd_watchdog_enabled(3) recommends. */
        uint64_t half = m->watchdog_usec / 2 ?: 1;
        struct itimerspec its = {
                .it_value = { .tv_sec = (time_t) (half / USEC_PER_SEC),
                              .tv_nsec = (long) ((half % USEC_PER_SEC) * NSEC_PER_USEC) },
        };
        its.it_interval = its.it_value;
        if (timerfd_settime(m->watchdog_fd, 0, &its, NULL) < 0)
                return log_error_errno(errno, "Failed to arm the watchdog timerfd: %m");
        r = manager_epoll_add(m, m->watchdog_fd, EPOLLIN, &m->watchdog_source);
        if (r < 0)
                return log_error_errno(r, "Failed to add the watchdog timerfd to the epoll set: %m");
        log_debug("Watchdog enabled: pinging every %" PRIu64 " ms.", half / USEC_PER_MSEC);
        return 0;
}

static int mkdir_parents(const char *path, mode_t mode) {
        _cleanup_free_ char *p = strdup(path);
        char *slash;

        if (!p)
                return -ENOMEM;
        slash = strrchr(p, '/');
        if (!slash || slash == p)
                return 0;
        *slash = 0;

        for (char *s = p + 1; ; s++) {
                if (*s != '/' && *s != 0)
                        continue;
                char saved = *s;
                *s = 0;
                if (mkdir(p, mode) < 0 && errno != EEXIST)
                        return -errno;
                *s = saved;
                if (saved == 0)
                        return 0;
        }
}

/* Binds the socket path ourselves, with the checks of OpenBSD daemons: refuse to start if another
 * daemon answers on it, remove a stale socket, never remove anything that is not a socket. */
static int manager_bind(Manager *m) {
        _cleanup_close_ int fd = -EBADF;
        struct sockaddr_un sa = { .sun_family = AF_UNIX };
        const char *path = m->socket_path;
        struct stat st;
        mode_t old_umask;
        int r;

        if (strlen(path) >= sizeof sa.sun_path)
                return log_error_errno(ENAMETOOLONG, "Socket path %s is too long (at most %zu bytes).",
                                       path, sizeof sa.sun_path - 1);
        if (path[0] != '/')
                return log_error_errno(EINVAL, "Socket path %s is not absolute.", path);
        memcpy(sa.sun_path, path, strlen(path) + 1);

        r = mkdir_parents(path, 0755);
        if (r < 0)
                return log_error_errno(r, "Failed to create the directory of %s: %m", path);

        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return log_error_errno(errno, "Failed to create a socket: %m");

        if (lstat(path, &st) >= 0) {
                _cleanup_close_ int probe = -EBADF;

                if (!S_ISSOCK(st.st_mode))
                        return log_error_errno(EEXIST, "%s exists and is not a socket; not touching it.", path);

                probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
                if (probe < 0)
                        return log_error_errno(errno, "Failed to create a socket: %m");
                if (connect(probe, (struct sockaddr *) &sa, sizeof sa) >= 0)
                        return log_error_errno(EADDRINUSE,
                                               "Another snapsetd is already serving on %s (stop it first, "
                                               "or use --socket= for a second instance).", path);
                if (errno != ECONNREFUSED && errno != ENOENT)
                        return log_error_errno(errno, "Failed to probe the existing socket %s: %m", path);
                /* Nobody listens: a leftover of a daemon that did not exit cleanly. */
                log_debug("Removing stale socket %s.", path);
                if (unlink(path) < 0 && errno != ENOENT)
                        return log_error_errno(errno, "Failed to remove the stale socket %s: %m", path);
        }

        /* The socket is created 0666 right away (never briefly with a wider or narrower mode):
         * anyone may connect; what each caller may do is decided per call from SO_PEERCRED. */
        old_umask = umask(0111);
        r = bind(fd, (struct sockaddr *) &sa, sizeof sa);
        r = r < 0 ? -errno : 0;
        umask(old_umask);
        if (r < 0)
                return log_error_errno(r, "Failed to bind %s: %m", path);

        if (lstat(path, &st) < 0)
                return log_error_errno(errno, "Failed to stat %s: %m", path);
        m->socket_bound = true;
        m->socket_dev = st.st_dev;
        m->socket_ino = st.st_ino;
        if (chmod(path, 0666) < 0)
                return log_error_errno(errno, "Failed to set the mode of %s: %m", path);

        if (listen(fd, SOMAXCONN) < 0)
                return log_error_errno(errno, "Failed to listen on %s: %m", path);

        m->listen_fd = TAKE_FD(fd);
        return 0;
}

static int fd_nonblock_cloexec(int fd) {
        int flags = fcntl(fd, F_GETFL);

        if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0)
                return -errno;
        flags = fcntl(fd, F_GETFD);
        if (flags < 0 || fcntl(fd, F_SETFD, flags | FD_CLOEXEC) < 0)
                return -errno;
        return 0;
}

/* Takes the socket from the service manager. Returns 1 if one was passed, 0 if none. */
static int manager_listen_activated(Manager *m) {
        char **names = NULL;
        int n, chosen = -1, r, accepting;
        socklen_t l = sizeof accepting;

        n = sd_listen_fds_with_names(true, &names);
        if (n < 0)
                return log_error_errno(n, "Failed to get the sockets passed by the service manager: %m");
        if (n == 0) {
                free(names);
                return 0;
        }

        for (int i = 0; i < n; i++)
                if (names && names[i] && streq(names[i], "varlink") && chosen < 0)
                        chosen = i;
        /* A single fd is ours whatever its name (systemd-socket-activate without --fdname, or a
         * unit without FileDescriptorName=). */
        if (chosen < 0 && n == 1)
                chosen = 0;

        for (int i = 0; i < n; i++) {
                if (i != chosen) {
                        log_warning("Ignoring socket fd %d named '%s' passed by the service manager.",
                                    SD_LISTEN_FDS_START + i, names && names[i] ? names[i] : "?");
                        safe_close(SD_LISTEN_FDS_START + i);
                }
                if (names)
                        free(names[i]);
        }
        free(names);

        if (chosen < 0)
                return log_error_errno(ENOENT, "The service manager passed %d sockets, none named 'varlink'.", n);

        int fd = SD_LISTEN_FDS_START + chosen;
        if (sd_is_socket(fd, AF_UNIX, SOCK_STREAM, -1) <= 0) {
                safe_close(fd);
                return log_error_errno(EINVAL, "The socket passed by the service manager is not an AF_UNIX stream socket.");
        }
        r = fd_nonblock_cloexec(fd);
        if (r < 0) {
                safe_close(fd);
                return log_error_errno(r, "Failed to make the passed socket non-blocking: %m");
        }
        if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &accepting, &l) < 0) {
                r = -errno;
                safe_close(fd);
                return log_error_errno(r, "Failed to check whether the passed socket is listening: %m");
        }

        m->activated = true;
        if (accepting) {
                m->listen_fd = fd;
                return 1;
        }

        /* Accept=yes (or an exec: client with a socketpair): one connection, already made. We serve
         * it and exit when it closes. */
        Peer peer;
        r = socket_peer(fd, &peer);
        if (r < 0) {
                safe_close(fd);
                return log_error_errno(r, "Failed to get the credentials of the passed connection: %m");
        }
        r = manager_add_connection(m, fd, &peer, NULL, 0);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the passed connection: %m");
        log_debug("Serving the connection passed by the service manager (%s).",
                  manager_peer_to_string(peer.pid, peer.uid, (char[64]) {}, 64));
        return 1;
}

/* Lets MaxConnections= connections (plus some fds of our own) fit under RLIMIT_NOFILE. */
static void manager_raise_fd_limit(Manager *m) {
        struct rlimit rl;
        rlim_t need = (rlim_t) m->config.max_connections + 64;

        if (getrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur >= need)
                return;
        rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
        if (setrlimit(RLIMIT_NOFILE, &rl) < 0 || rl.rlim_cur < need)
                log_warning("RLIMIT_NOFILE (%llu) is too low for MaxConnections=%u; connections beyond it will be refused.",
                            (unsigned long long) rl.rlim_cur, m->config.max_connections);
}

int manager_startup(Manager *m) {
        int r;

        m->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
        if (m->epoll_fd < 0)
                return log_error_errno(errno, "Failed to create the epoll set: %m");

        r = manager_setup_signals(m);
        if (r < 0)
                return r;
        r = manager_setup_timers(m);
        if (r < 0)
                return r;

        manager_raise_fd_limit(m);
        manager_check_read_group(m);

        r = job_runner_new(&m->jobs);
        if (r < 0)
                return log_error_errno(r, "Failed to set up the job thread's eventfd: %m");
        r = manager_epoll_add(m, job_runner_fd(m->jobs), EPOLLIN, &m->job_source);
        if (r < 0)
                return log_error_errno(r, "Failed to add the job eventfd to the epoll set: %m");
        m->loop_thread = pthread_self();

        /* What external providers write is logged as it comes (sets_startup() loaded them). */
        if (external_providers_event_fd() >= 0) {
                r = manager_epoll_add(m, external_providers_event_fd(), EPOLLIN, &m->providers_source);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the providers' output to the epoll set: %m");
        }

        r = manager_listen_activated(m);
        if (r < 0)
                return r;
        if (r > 0 && m->socket_path)
                log_debug("Using the socket passed by the service manager, not %s.", m->socket_path);
        if (r == 0) {
                r = manager_bind(m);
                if (r < 0)
                        return r;
        }

        if (m->listen_fd >= 0) {
                r = manager_epoll_add(m, m->listen_fd, EPOLLIN, &m->listen_source);
                if (r < 0)
                        return log_error_errno(r, "Failed to add the listening socket to the epoll set: %m");
                m->listening = true;
        }
        return 0;
}

/* ---------------------------------------------------------------- the loop */

int manager_run(Manager *m) {
        struct epoll_event events[64];

        /* On SIGTERM a running job is finished first: it is bounded by the freeze and hold
         * timeouts and the providers' timeouts, and stopping in its middle would leave the set
         * to the next start's recovery. */
        while (!m->exiting || job_runner_busy(m->jobs)) {
                int n;

                manager_pause_providers(m);
                manager_arm_timer(m);

                n = epoll_wait(m->epoll_fd, events, ELEMENTSOF(events), -1);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return log_error_errno(errno, "epoll_wait() failed: %m");
                }

                /* New connections last: the closes that arrived together with them are seen
                 * first, so that they do not count against the connection caps. */
                bool accept_pending = false;
                for (int i = 0; i < n; i++) {
                        EventSource *s = events[i].data.ptr;

                        switch (s->type) {
                        case EVENT_SOURCE_LISTEN:
                                accept_pending = true;
                                break;
                        case EVENT_SOURCE_CONNECTION: {
                                Connection *c = (Connection *) s;
                                if (!c->closed)
                                        connection_handle(c, events[i].events);
                                break;
                        }
                        case EVENT_SOURCE_SIGNAL:
                                manager_handle_signal(m);
                                break;
                        case EVENT_SOURCE_WATCHDOG:
                                manager_handle_watchdog(m);
                                break;
                        case EVENT_SOURCE_TIMER:
                                manager_handle_timer(m);
                                break;
                        case EVENT_SOURCE_PROVIDERS:
                                /* A job may have started earlier in this batch. */
                                if (!job_runner_busy(m->jobs))
                                        external_providers_dispatch();
                                break;
                        case EVENT_SOURCE_JOB:
                                manager_handle_job(m);
                                break;
                        default:
                                break;
                        }
                }

                if (accept_pending && m->listening)
                        manager_accept(m);

                connection_list_free(&m->closed);

                /* Started for one connection (Accept=yes): done when it is. */
                if (m->listen_fd < 0 && m->n_connections == 0 && !job_runner_busy(m->jobs)) {
                        log_debug("The passed connection has closed, exiting.");
                        break;
                }
        }

        return 0;
}
