/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The daemon's state and its one event loop: the listening socket (bound here or passed in by
 * systemd), the connections, signals (signalfd), the watchdog and the connection timeouts
 * (timerfds), all in one epoll set. Nothing blocks in the loop: sockets are non-blocking, and a
 * client that does not read its replies is paused, then dropped. */

#include <stdbool.h>
#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#include "config.h"
#include "macro.h"
#include "ratelimit.h"

/* Stop reading (and processing pipelined calls) from a client whose unread replies exceed this;
 * resume when it has read them. */
#define MANAGER_OUTPUT_HIGH_WATER (1024U * 1024U)
/* Drop a client whose pending replies have not moved for this long. */
#define MANAGER_OUTPUT_STALL_USEC (30U * USEC_PER_SEC)
/* A connection over MaxConnections= or MaxConnectionsPerUser= is kept only to answer its first
 * call with TooManyConnections (so that the client learns why), at most this many at once and
 * for at most this long; beyond that it is closed without a word. */
#define MANAGER_REFUSING_MAX 8U
#define MANAGER_REFUSING_USEC (2U * USEC_PER_SEC)

typedef enum EventSourceType {
        EVENT_SOURCE_LISTEN,
        EVENT_SOURCE_CONNECTION,
        EVENT_SOURCE_SIGNAL,
        EVENT_SOURCE_WATCHDOG,
        EVENT_SOURCE_TIMER,
        EVENT_SOURCE_PROVIDERS,       /* external providers wrote to their stderr */
        EVENT_SOURCE_JOB,             /* the job thread ended, or has something for the loop */
        _EVENT_SOURCE_TYPE_MAX,
        _EVENT_SOURCE_TYPE_INVALID = -EINVAL,
} EventSourceType;

/* What an epoll event's data.ptr points to: the first member of whatever owns the fd. */
typedef struct EventSource {
        EventSourceType type;
} EventSource;

typedef struct Connection Connection;

typedef struct Manager {
        Config config;
        char *config_path;
        bool config_path_explicit;    /* --config given: a missing file is an error */
        int log_level_override;       /* --log-level, or -1: LogLevel= from the config applies */
        char *state_directory;        /* fixed at startup: --state-dir, else StateDirectory= */

        char *socket_path;            /* --socket, or the default; NULL once activated */
        bool socket_bound;            /* we created socket_path and remove it at exit */
        dev_t socket_dev;
        ino_t socket_ino;
        bool activated;               /* the socket came from the service manager */

        int epoll_fd;
        int listen_fd;
        int signal_fd;
        int watchdog_fd;
        int timer_fd;
        EventSource listen_source, signal_source, watchdog_source, timer_source, providers_source, job_source;
        bool listening;               /* listen_fd is in the epoll set (paused after EMFILE) */
        uint64_t accept_resume_usec;  /* when to listen again after EMFILE, or 0 */

        uint64_t watchdog_usec;       /* WATCHDOG_USEC, or 0 */
        uint64_t start_usec;          /* CLOCK_MONOTONIC at startup, for uptimeUsec */

        Connection *connections;      /* live connections, newest first */
        Connection *closed;           /* closed during this loop iteration, freed after it */
        unsigned n_connections;       /* served; not the ones only kept to be refused */
        unsigned n_refusing;
        uint64_t next_connection_id;

        bool exiting;
        int exit_status;

        struct SetRegistry *sets;     /* snapshot sets: finished ones, and the one in creation */

        /* The long work of set creation runs as a job (job.h) while the loop goes on serving.
         * What the loop must not do meanwhile waits for the job's end: */
        struct JobRunner *jobs;       /* NULL: no loop (unit tests), everything runs inline */
        pthread_t loop_thread;
        bool providers_paused;        /* their stderr is not read while a job may use them */
        bool reload_pending;          /* SIGHUP came during a job */
        uint64_t *pending_closes;     /* connections that owned sets and closed during a job */
        size_t n_pending_closes;
        struct PostedEvent *posted;   /* events for Monitor clients from the job thread */
        pthread_mutex_t posted_lock;  /* also guards the loop call below */
        struct LoopCall *loop_call;   /* what the job thread waits for the loop to run */
        pthread_cond_t loop_call_done;
        bool loop_calls_closed;       /* the loop has ended: a loop call is refused */
        char *runtime_directory;      /* /run/snapset, or the socket's directory with --socket */

        RateLimit refuse_ratelimit;   /* "too many connections" warnings */
        RateLimit deny_ratelimit;     /* "access denied" notices */
        RateLimit protocol_ratelimit; /* protocol errors */
} Manager;

/* Allocates a manager with the given configuration (taken over: *config is zeroed). */
int manager_new(Config *config, Manager **ret);
Manager *manager_free(Manager *m);
DEFINE_TRIVIAL_CLEANUP_FUNC(Manager *, manager_free);

/* Creates the epoll set, signalfd and watchdog, and takes the socket: from the service manager
 * (an fd named "varlink", or the only fd passed; listening or already connected), else binds
 * m->socket_path. Logs what failed; returns negative errno. */
int manager_startup(Manager *m);

/* Where the daemon serves, for the startup message: the path, or "socket-activated fd". */
const char *manager_serving_on(const Manager *m);

/* Runs the loop until SIGTERM/SIGINT, or until the single connection passed in by the service
 * manager has closed. Returns 0, or negative errno on a fatal error (already logged). */
int manager_run(Manager *m);

/* Re-reads the configuration file (SIGHUP). Keeps the old configuration, and logs why, if the new
 * one is bad. */
int manager_reload(Manager *m);

/* Sends an event to every Monitor client (io.snapset.Manager Event: type, and the optional
 * objects concerned and message). Never blocks: a client that does not read its events is
 * disconnected. */
void manager_send_event(Manager *m, const char *type, const char *set_id, const char *snapshot_id,
                        const char *volume, const char *message);

/* The "set-phase" event: the set in creation entered phase. */
void manager_send_phase_event(Manager *m, const char *set_id, const char *phase, const char *message);

/* manager_send_event() from any thread: from the job thread the event is handed to the loop,
 * which sends it. Outside the freeze window only (it allocates). */
void manager_post_event(Manager *m, const char *type, const char *set_id, const char *snapshot_id,
                        const char *volume, const char *message);

/* From the job thread, outside any freeze window: runs func(m, userdata) on the loop, between two
 * events, and waits until it has run. For the job that needs what only the loop may touch while
 * the job holds the creation lock (the finished sets, the set in creation itself): the job is
 * blocked meanwhile, so the loop has the providers and the state directory to itself. On the
 * loop, or without a job runner, func runs at once. -ECANCELED: the loop has ended, func did not
 * run. */
typedef void (*LoopCallFunc)(Manager *m, void *userdata);
int manager_run_on_loop(Manager *m, LoopCallFunc func, void *userdata);

/* The replies of a deferred call (methods.h), for the connection it came from if it is still
 * there: sends them, and lets the connection's next calls be read once the job has ended. */
void manager_deliver(Manager *m, uint64_t connection_id, json_object *replies);

/* A job is running (nothing that job.h reserves for it may be done). */
bool manager_job_busy(const Manager *m);

/* Limits and timeouts as currently in force. */
size_t manager_max_message(const Manager *m);

/* Builds the "pid N uid N" description of a peer, for logs. */
const char *manager_peer_to_string(pid_t pid, uid_t uid, char *buf, size_t size);
