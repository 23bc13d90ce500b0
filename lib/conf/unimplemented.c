/* unimplemented.c - what postern does not do yet, said once where it is
 * set: settings that Postfix acts on and postern reads without effect (or
 * does not read at all), transports without a delivery runner, master.cf
 * commands postern has no program for.  config_load() logs a warning for
 * each such setting of main.cf and -o at every program's start, and
 * `postern check` reports them (config.h).  When a feature arrives, its
 * line goes from here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "mastercf.h"
#include "strbuf.h"

enum when {
    WHEN_NONEMPTY,      /* any value but "" */
    WHEN_YES,           /* a yes/no value that is yes */
    WHEN_TRANSPORT,     /* a transport[:nexthop] postern has no runner for */
};

struct unimplemented {
    const char *name;
    enum when when;
    const char *what;   /* what happens instead */
};

/* Sorted by name. */
static const struct unimplemented settings[] = {
    {"content_filter", WHEN_TRANSPORT, NULL},
    {"default_transport", WHEN_TRANSPORT, NULL},
    {"local_transport", WHEN_TRANSPORT, NULL},
    {"relay_transport", WHEN_TRANSPORT, NULL},
    {"reset_owner_alias", WHEN_YES, "a child alias's local addresses still go to a new "
     "queue file (the sender is owner-NAME either way, as in Postfix)"},
    {"virtual_transport", WHEN_TRANSPORT, NULL},
};

/* Compare a name with an entry (for bsearch). */
static int compare_entry(const void *key, const void *entry)
{
    return strcmp(key, ((const struct unimplemented *)entry)->name);
}

/* Whether master.cf (beside main.cf) has a pipe, smtp or lmtp service of
 * this name: postern-pipe, postern-smtp or postern-lmtp delivers for it. */
static int pipe_service(const char *transport, size_t len)
{
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    struct master_table table = {0};
    int found = 0;
    strbuf_printf(&path, "%s/master.cf", config_dir());
    if (master_read(strbuf_str(&path), 1, &table, &err) == 0)
        for (size_t i = 0; i < table.count && !found; i++)
            found = strlen(table.service[i].service) == len
                    && strncmp(table.service[i].service, transport, len) == 0
                    && strcmp(table.service[i].type, "unix") == 0
                    && (strcmp(table.service[i].command, "pipe") == 0
                        || strcmp(table.service[i].command, "smtp") == 0
                        || strcmp(table.service[i].command, "lmtp") == 0);
    master_free(&table);
    strbuf_free(&path);
    strbuf_free(&err);
    return found;
}

int transport_implemented(const char *transport, size_t len)
{
    /* the runners postern has, and the transports qmgr decides itself */
    static const char *const runners[] = {"virtual", "local", "smtp", "relay", "lmtp", "error",
                                          "discard", "retry", NULL};
    for (int i = 0; runners[i]; i++)
        if (strlen(runners[i]) == len && strncmp(runners[i], transport, len) == 0)
            return 1;
    return pipe_service(transport, len);
}

const char *transport_not_implemented(const char *value)
{
    static char text[200];
    while (*value == ' ' || *value == '\t')
        value++;
    size_t len = strcspn(value, ": \t");
    if (!len || transport_implemented(value, len))
        return NULL;
    snprintf(text, sizeof text, "postern has no %.*s runner: such mail waits in the queue "
             "(4.3.0 mail transport unavailable)", (int)(len > 60 ? 60 : len), value);
    return text;
}

const char *setting_not_implemented(const char *name, const char *value)
{
    static int checked;
    for (size_t i = 1; !checked && i < sizeof settings / sizeof settings[0]; i++)
        if (strcmp(settings[i - 1].name, settings[i].name) >= 0)
            msg_fatal("lib/conf/unimplemented.c: %s is out of order", settings[i].name);
    checked = 1;
    const struct unimplemented *u = bsearch(name, settings, sizeof settings / sizeof settings[0],
                                            sizeof settings[0], compare_entry);
    if (!u || !value)
        return NULL;
    while (*value == ' ' || *value == '\t')
        value++;
    switch (u->when) {
    case WHEN_NONEMPTY:
        return *value ? u->what : NULL;
    case WHEN_YES:
        return parse_bool(value) == 1 ? u->what : NULL;
    case WHEN_TRANSPORT:
        return transport_not_implemented(value);

    }
    return NULL;
}

const char *master_command_not_implemented(const char *command)
{
    /* postern's own programs stand for these Postfix daemons */
    static const char *const covered[] = {
        "smtpd", "qmgr", "oqmgr", "cleanup", "trivial-rewrite", "pickup", "bounce", "defer",
        "trace", "verify", "flush", "proxymap", "proxywrite", "showq", "error", "retry",
        "discard", "virtual", "local", "smtp", "lmtp", "pipe", "anvil", "scache", "postlog", "tlsmgr",
        NULL,
    };
    for (int i = 0; covered[i]; i++)
        if (strcmp(command, covered[i]) == 0)
            return NULL;
    return "postern has no such program";
}
