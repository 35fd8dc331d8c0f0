/* SPDX-License-Identifier: LGPL-2.1-or-later */
#pragma once

/* What the handlers of io.snapset.Manager share: dispatching parameters, checking ids, replying
 * one value, and refusing a call with an error of the table. Each returns 0 when it went on
 * (nothing replied), 1 when it replied an error (the handler stops and returns 0), or a negative
 * errno. */

#include "json-dispatch.h"
#include "macro.h"
#include "methods.h"
#include "vss-error.h"

/* Replies code with the message, and, for a method that changes something, records the refusal
 * in the journal with the structured fields (a refused AddToSnapshotSet is part of the set's
 * story: the administrator looking for why last night's set failed finds it there). Returns 0
 * once replied: callers write "method_refuse(...) ?: 1". */
int method_refuse(MethodCall *mc, VssCode code, const VssErrorFields *f, const char *format, ...) _printf_(4, 5);

/* Dispatches parameters; 0 if fine, 1 if InvalidParameter was replied. */
int method_dispatch(MethodCall *mc, json_object *parameters, const JsonDispatch *table, void *target);

/* 0 if id is a valid snapset id; else E_INVALIDARG is replied, naming what ("snapshot"). */
int method_check_id(MethodCall *mc, const char *id, const char *what);

/* Replies {key: value}; takes value. */
int method_reply_with(MethodCall *mc, const char *key, json_object *value);
