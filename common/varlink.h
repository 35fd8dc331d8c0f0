/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* The varlink wire protocol (https://varlink.org), on json-c: NUL-terminated JSON objects over a
 * stream socket. This is the only code that knows the wire format. It does no logging and never
 * exits; every function returns a negative errno on failure.
 *
 * Three layers:
 *   VarlinkStream  framing: bytes in and out of one fd, split at NUL, capped in size;
 *   VarlinkCall / VarlinkReply  strict parsing and building of the message objects;
 *   varlink_client_*  a blocking client for snapsetctl and the tests. */

#include <stdbool.h>
#include <stddef.h>
#include <json-c/json.h>

#include "macro.h"

/* The largest message either side accepts: 16 MiB, including the NUL. */
#define VARLINK_MESSAGE_MAX (16U * 1024U * 1024U)

/* The standard errors of org.varlink.service. */
#define VARLINK_ERROR_INTERFACE_NOT_FOUND     "org.varlink.service.InterfaceNotFound"
#define VARLINK_ERROR_METHOD_NOT_FOUND        "org.varlink.service.MethodNotFound"
#define VARLINK_ERROR_METHOD_NOT_IMPLEMENTED  "org.varlink.service.MethodNotImplemented"
#define VARLINK_ERROR_INVALID_PARAMETER       "org.varlink.service.InvalidParameter"
#define VARLINK_ERROR_PERMISSION_DENIED       "org.varlink.service.PermissionDenied"
#define VARLINK_ERROR_EXPECTED_MORE           "org.varlink.service.ExpectedMore"

DEFINE_TRIVIAL_CLEANUP_FUNC(json_object *, json_object_put);

/* ---------------------------------------------------------------- framing */

typedef struct VarlinkStream VarlinkStream;

/* Wraps fd (ownership passes to the stream, also on failure). max_message is the largest message
 * accepted (0 means VARLINK_MESSAGE_MAX). The fd may be blocking or non-blocking. */
int varlink_stream_new(int fd, size_t max_message, VarlinkStream **ret);

/* Closes the fd and frees everything; accepts NULL; returns NULL. */
VarlinkStream *varlink_stream_free(VarlinkStream *s);
DEFINE_TRIVIAL_CLEANUP_FUNC(VarlinkStream *, varlink_stream_free);

int varlink_stream_fd(const VarlinkStream *s);

/* Reads once from the fd into the input buffer. Returns the number of bytes read (> 0), 0 at end
 * of file, -EAGAIN if a non-blocking fd has nothing, -EMSGSIZE if the buffered, still incomplete
 * message exceeds the cap, or another negative errno. */
int varlink_stream_read(VarlinkStream *s);

/* Takes the next complete message out of the input buffer and parses it. Returns 1 and the object
 * in *ret (owned by the caller) if a message was complete, 0 if more bytes are needed, -EBADMSG if
 * the message is not valid JSON or not a JSON object, -EMSGSIZE if it exceeds the cap. After an
 * error the stream is unusable: the caller closes the connection. Pipelined messages are returned
 * one per call, in order. */
int varlink_stream_next(VarlinkStream *s, json_object **ret);

/* True if the input buffer holds bytes that are not yet a complete message. */
bool varlink_stream_has_partial_input(const VarlinkStream *s);

/* Serialises msg (not consumed) plus its NUL into the output buffer. -EMSGSIZE if it is too big. */
int varlink_stream_enqueue(VarlinkStream *s, json_object *msg);

/* Writes as much of the output buffer as the fd takes. Returns 1 if everything was written, 0 if
 * some is left (non-blocking fd, -EAGAIN), negative errno on error (-EPIPE etc.). */
int varlink_stream_flush(VarlinkStream *s);

bool varlink_stream_has_output(const VarlinkStream *s);

/* Size of the buffered output in bytes, so a server can stop reading from a client that does
 * not read its replies. */
size_t varlink_stream_output_size(const VarlinkStream *s);

/* ---------------------------------------------------------------- messages */

/* A call as received by a service. */
typedef struct VarlinkCall {
        char *method;            /* fully qualified, "io.snapset.Manager.GetStatus" */
        char *interface;         /* "io.snapset.Manager" */
        const char *member;      /* points into method: "GetStatus" */
        json_object *parameters; /* always an object: a missing or null "parameters" becomes {} */
        bool oneway;
        bool more;
        bool upgrade;
} VarlinkCall;

/* Parses a call strictly: keys other than method, parameters, oneway, more, upgrade, wrong types,
 * a malformed method name, or oneway and more both true, are -EPROTO (the service closes the
 * connection). ret is filled only on success; release with varlink_call_done(). */
int varlink_call_parse(json_object *msg, VarlinkCall *ret);
void varlink_call_done(VarlinkCall *c);

/* A reply as received by a client. */
typedef struct VarlinkReply {
        json_object *parameters; /* always an object */
        char *error;             /* NULL on success, else the qualified error name */
        bool continues;
} VarlinkReply;

/* Parses a reply strictly (keys: parameters, continues, error); -EPROTO if malformed. */
int varlink_reply_parse(json_object *msg, VarlinkReply *ret);
void varlink_reply_done(VarlinkReply *r);

/* Name checks from the varlink specification (interface names may carry capitals, as the current
 * specification and systemd allow). */
bool varlink_interface_name_is_valid(const char *name);
bool varlink_member_name_is_valid(const char *name);     /* "GetStatus", "SnapshotSetInProgress" */
bool varlink_qualified_name_is_valid(const char *name);  /* "io.snapset.Manager.GetStatus" */

/* Builders. Each returns a new object (NULL on allocation failure). parameters is not consumed and
 * may be NULL (an empty object is sent). */
json_object *varlink_message_call(const char *method, json_object *parameters, bool oneway, bool more);
json_object *varlink_message_reply(json_object *parameters, bool continues);
json_object *varlink_message_error(const char *error, json_object *parameters);

/* ---------------------------------------------------------------- client */

/* Connects to a varlink service on a Unix socket path, blocking. */
int varlink_client_connect(const char *path, VarlinkStream **ret);

/* Calls method and waits for the reply (blocking). On success returns 0 and, if ret_reply is not
 * NULL, the reply (error or not: a varlink error is a successful exchange, check reply.error).
 * -ECONNRESET if the service closed the connection, -EPROTO on a malformed reply. With more=true,
 * call varlink_client_next() after each reply with continues=true. */
int varlink_client_call(VarlinkStream *s, const char *method, json_object *parameters, bool more,
                        VarlinkReply *ret_reply);

/* Waits for the next reply of a streaming ("more") call. Same returns as varlink_client_call(). */
int varlink_client_next(VarlinkStream *s, VarlinkReply *ret_reply);

/* Sends a oneway call; nothing comes back. */
int varlink_client_send_oneway(VarlinkStream *s, const char *method, json_object *parameters);
