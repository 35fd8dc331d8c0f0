/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <stdarg.h>
#include <stdio.h>
#include <syslog.h>

#include "method-util.h"
#include "set-events.h"
#include "snapshot-set.h"

/* Failures of the coordinator are logged by it already and are replied by the handlers
 * themselves (reply_outcome() in methods-sets.c). */
int method_refuse(MethodCall *mc, VssCode code, const VssErrorFields *f, const char *format, ...) {
        _cleanup_free_ char *message = NULL;
        const VssErrorFields none = {};
        va_list ap;
        int r;

        va_start(ap, format);
        r = vasprintf(&message, format, ap);
        va_end(ap);
        if (r < 0)
                return -ENOMEM;
        if (!f)
                f = &none;
        if (!(mc->method->flags & METHOD_READ_ONLY)) {
                SetEvent e;

                set_event_init(&e, LOG_NOTICE, f->set_id, f->snapshot_id, f->volume, f->provider, mc->call.member);
                snprintf(e.type, sizeof e.type, "call-refused");
                e.code = code;
                e.error = f->error < 0 ? -f->error : f->error;
                snprintf(e.message, sizeof e.message, "%s refused: %s", mc->call.member, message);
                set_events_emit(&e, set_event_journal_sink, NULL);   /* queued inside a job's window */
        }
        return method_error_vss(mc, code, f, "%s", message);
}

int method_dispatch(MethodCall *mc, json_object *parameters, const JsonDispatch *table, void *target) {
        const char *bad = NULL;
        int r;

        r = json_dispatch(parameters, table, target, &bad);
        if (r == -ENOMEM || (r < 0 && !bad))
                return r;
        if (r < 0) {
                r = method_error_invalid_parameter(mc, bad);
                return r < 0 ? r : 1;
        }
        return 0;
}

int method_reply_with(MethodCall *mc, const char *key, json_object *value) {
        _cleanup_(json_object_putp) json_object *reply = json_object_new_object();

        if (!reply || !value || json_object_object_add(reply, key, value) < 0) {
                json_object_put(value);
                return -ENOMEM;
        }
        return method_reply(mc, reply);
}

int method_check_id(MethodCall *mc, const char *id, const char *what) {
        if (snapset_id_is_valid(id))
                return 0;
        return method_refuse(mc, E_INVALIDARG, NULL, "'%s' is not a valid %s id (a UUID like "
                                "0f1e2d3c-4b5a-6978-8695-a4b3c2d1e0f9).", id, what) ?: 1;
}

