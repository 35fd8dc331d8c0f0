/* SPDX-License-Identifier: LGPL-2.1-or-later */

#include <syslog.h>

#include "macro.h"
#include "message-ids.h"

/* Made once with a random generator; never change one: the catalog and people's journal
 * queries ('journalctl MESSAGE_ID=...') depend on them. */
static const MessageId ids[] = {
        { "set-created",          "3c85fbba53e740d3baad022e832dad26" },
        { "set-aborted",          "e992f463b3a549d5a2ee1c4fd866416c" },
        { "set-failed",           "bdbcfa41e97e4bb18ea994f224f39007" },
        { "flush-timeout",        "a360abb43e61414a98726c78fe4a775e" },
        { "hold-timeout",         "cefc1f161ea14db781c681e1141ff1b2" },
        { "insufficient-storage", "3d44cb9e59f14580b5621ce4fe318aac" },
        { "provider-veto",        "80c157ba83bf46f090599321f43655a3" },
        { "provider-error",       "30e4e4a260414aabbfcf3291cf1bdea4" },
        { "call-refused",         "08c0417a554f478a887ef3cc86be74ff" },
        { "snapshot-deleted",     "6f0f17621ae740fab023c208032a6fe4" },
        { "snapshot-invalid",     "386ac4a085524e2798bc37365ea213b8" },
        { "snapshot-gone",        "256fd79f9d80467ebf0ab17bc4ec6f7c" },
        { "snapshot-exposed",     "d9e02da69c8e460d90e0c289026364a0" },
        { "snapshot-unexposed",   "da73a7b6ce094557b07ef41a6db86adb" },
        { "snapshot-revert-started", "f027875236574ce5a40db1a22f620514" },
        { "snapshot-reverted",    "716ac33ab8b0426c9806a674cf2983ec" },
        { "snapshot-revert-failed", "11a9bb55f2a64c7780f35ea38a9cba29" },
        { "snapshot-broken",      "56a37ef402054852bf3cbec6097a8ac5" },
        { "set-recovered",        "2c42858bcfab47dd9979d7b655354dc8" },
        { "recovery-failed",      "cc2a730731364d3597d650f69498ace5" },
        { "hook-failed",          "a879406ae9c74b6b91ab2a74429b881c" },
        { "sets-pruned",          "ec6334ec87c5424ca16a391f01278dc4" },
        { "space-low",            "789025d42e9a411181fad75aa6bd9822" },
};

static const char *by_name(const char *name) {
        for (size_t i = 0; i < ELEMENTSOF(ids); i++)
                if (streq(ids[i].name, name))
                        return ids[i].id;
        return NULL;
}

static const char *story_of(VssCode code) {
        switch (code) {
        case VSS_E_FLUSH_WRITES_TIMEOUT:
                return "flush-timeout";
        case VSS_E_HOLD_WRITES_TIMEOUT:
                return "hold-timeout";
        case VSS_E_INSUFFICIENT_STORAGE:
                return "insufficient-storage";
        case VSS_E_PROVIDER_VETO:
                return "provider-veto";
        case VSS_E_UNEXPECTED_PROVIDER_ERROR:
                return "provider-error";
        default:
                return NULL;
        }
}

const char *message_id_of(const SetEvent *e) {
        const char *story = e->priority <= LOG_WARNING ? story_of(e->code) : NULL;

        if (story)
                return by_name(story);
        if (e->type[0])
                return by_name(e->type);
        /* An error of the coordinator's without a story of its own. */
        if (e->priority <= LOG_ERR && !vss_code_is_success(e->code))
                return by_name("set-failed");
        return NULL;
}

const MessageId *message_ids(size_t *ret_n) {
        *ret_n = ELEMENTSOF(ids);
        return ids;
}
