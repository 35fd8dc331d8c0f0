/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* snapsetctl's side of the conversation with snapsetd: connect to arg_socket, call, wait, and
 * turn every failure into a message for the administrator (stderr; with --json also a JSON object
 * on stdout) and an exit status from the error table. Each function here that returns an exit
 * status has already told the user what went wrong. */

#include <json-c/json.h>

#include "snapsetctl.h"
#include "varlink.h"

#define SNAPSET_MANAGER_INTERFACE "io.snapset.Manager"
#define SNAPSET_METHOD(name) SNAPSET_MANAGER_INTERFACE "." name

/* Connects to snapsetd. Returns 0 with the stream in *ret, or the exit status:
 * SNAPSET_EXIT_UNAVAILABLE (69) if nothing listens there, E_ACCESSDENIED's (13) if the socket's
 * permissions keep us out. */
int connection_open(VarlinkStream **ret);

/* Every wait for a reply is bounded: by --timeout, or else by method_default_timeout_usec() (see
 * parse.h). A reply that does not come in time is SNAPSETCTL_EXIT_TIMEOUT (75), with a message that
 * says the daemon may still be at work. For a stream, the limit holds for each reply. */

/* The calls that follow concern n volumes (a create of n, the delete of a set of n): the default
 * limit of the slow calls grows with n. 1 until said otherwise. */
void connection_expect_volumes(size_t n);

void varlink_reply_donep(VarlinkReply *r);
#define _cleanup_reply_ _cleanup_(varlink_reply_donep)

/* Calls method and waits for the reply, error replies included: returns 0 and the reply in
 * *ret_reply (release with varlink_reply_done()), or the exit status of a failed exchange (no reply,
 * a reply that is not varlink, a timeout), which it has reported. For callers that expect an error
 * and deal with it themselves; connection_call() reports every error. */
int connection_call_reply(VarlinkStream *s, const char *method, json_object *parameters,
                          VarlinkReply *ret_reply);

/* Tells the user about an error reply to method (stderr; with --json also a JSON object on stdout)
 * and returns its exit status. */
int connection_report_error(const char *method, const VarlinkReply *reply);

/* True if reply is the error of code. */
bool connection_reply_is(const VarlinkReply *reply, VssCode code);

/* True if an error reply names text: in its message, or as its volume, snapshot or set. */
bool connection_error_names(const VarlinkReply *reply, const char *text);

/* {"key": "value"}, the parameters of most calls; NULL on allocation failure. */
json_object *parameters_new_string(const char *key, const char *value);

/* Calls method (fully qualified) with parameters (NULL for none) and waits for the reply. Returns
 * 0 and the reply's parameters in *ret_parameters (a new reference, owned by the caller), or the
 * exit status of the failure. */
int connection_call(VarlinkStream *s, const char *method, json_object *parameters,
                    json_object **ret_parameters);

/* Connects, calls, and disconnects. */
int connection_call_once(const char *method, json_object *parameters, json_object **ret_parameters);

/* Calls method with "more" and hands the parameters of each reply to on_reply as it arrives, with
 * continues false for the last one. on_reply returns 0 to go on, or an exit status to stop. Returns
 * 0 after the last reply, or an exit status. */
typedef int (*ReplyHandler)(json_object *parameters, bool continues, void *userdata);
int connection_call_more(VarlinkStream *s, const char *method, json_object *parameters,
                         ReplyHandler on_reply, void *userdata);

/* Sends a oneway call; the daemon sends nothing back. Returns 0 or an exit status. */
int connection_send_oneway(VarlinkStream *s, const char *method, json_object *parameters);

/* The exit status for a varlink error name: the table's for io.snapset.Manager errors,
 * E_ACCESSDENIED's for org.varlink.service.PermissionDenied, SNAPSET_EXIT_PROTOCOL for the other
 * org.varlink.service errors, SNAPSET_EXIT_FAILURE for anything else. */
int exit_status_from_varlink_error(const char *error);
