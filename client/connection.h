/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* snapsetctl's side of the conversation with snapsetd: connect to arg_socket, call, wait, and
 * turn every failure into a message for the administrator (stderr; with --json also a JSON object
 * on stdout) and an exit status from the error table. Each function here that returns an exit
 * status has already told the user what went wrong. */

#include <json-c/json.h>

#include "varlink.h"

#define SNAPSET_MANAGER_INTERFACE "io.snapset.Manager"
#define SNAPSET_METHOD(name) SNAPSET_MANAGER_INTERFACE "." name

/* Connects to snapsetd. Returns 0 with the stream in *ret, or the exit status:
 * SNAPSET_EXIT_UNAVAILABLE (69) if nothing listens there, E_ACCESSDENIED's (13) if the socket's
 * permissions keep us out. */
int connection_open(VarlinkStream **ret);

/* Calls method (fully qualified) with parameters (NULL for none) and waits for the reply. Returns
 * 0 and the reply's parameters in *ret_parameters (a new reference, owned by the caller), or the
 * exit status of the failure. */
int connection_call(VarlinkStream *s, const char *method, json_object *parameters,
                    json_object **ret_parameters);

/* Connects, calls, and disconnects. */
int connection_call_once(const char *method, json_object *parameters, json_object **ret_parameters);

/* Calls method with "more" and hands the parameters of each reply to on_reply as it arrives.
 * on_reply returns 0 to go on, or an exit status to stop. Returns 0 after the last reply, or an
 * exit status. */
typedef int (*ReplyHandler)(json_object *parameters, void *userdata);
int connection_call_more(VarlinkStream *s, const char *method, json_object *parameters,
                         ReplyHandler on_reply, void *userdata);

/* Sends a oneway call; the daemon sends nothing back. Returns 0 or an exit status. */
int connection_send_oneway(VarlinkStream *s, const char *method, json_object *parameters);

/* The exit status for a varlink error name: the table's for io.snapset.Manager errors,
 * E_ACCESSDENIED's for org.varlink.service.PermissionDenied, SNAPSET_EXIT_PROTOCOL for the other
 * org.varlink.service errors, SNAPSET_EXIT_FAILURE for anything else. */
int exit_status_from_varlink_error(const char *error);
