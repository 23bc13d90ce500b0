/* zz_stub_bounce.c - TEMPORARY stand-ins for lib/config.c (branch bounce).
 *
 * Only until the real configuration code lands in main: -c/-o/-v, defaults
 * for the parameters postern-bounce reads, and -o overrides (main.cf is not
 * read).  Delete this file when main brings lib/params.c.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *stub_defaults[][2] = {
    {"2bounce_notice_recipient", "postmaster"},
    {"bounce_notice_recipient", "postmaster"},
    {"bounce_size_limit", "50000"},
    {"daemon_directory", DEF_DAEMON_DIR},
    {"delay_notice_recipient", "postmaster"},
    {"delay_warning_time", "0"},
    {"double_bounce_sender", "double-bounce"},
    {"error_notice_recipient", "postmaster"},
    {"mail_name", "Postern"},
    {"maximal_queue_lifetime", "432000"},
    {"myhostname", "localhost.localdomain"},
    {"myorigin", "localhost.localdomain"},
    {"notify_classes", "resource, software"},
};
static struct strlist overrides;
static char *stub_dir;

void config_set_dir(const char *dir)
{
    free(stub_dir);
    stub_dir = xstrdup(dir);
}

void config_add_override(const char *name_eq_value)
{
    if (!strchr(name_eq_value, '='))
        msg_fatal("bad -o argument: %s", name_eq_value);
    strlist_add(&overrides, name_eq_value);
}

int config_common_option(int opt, const char *arg)
{
    switch (opt) {
    case 'c':
        config_set_dir(arg);
        return 1;
    case 'o':
        config_add_override(arg);
        return 1;
    case 'v':
        log_set_verbose(log_verbose() + 1);
        return 1;
    }
    return 0;
}

void config_load(int allow_missing)
{
    (void)allow_missing;
    const char *file = NULL;
    for (size_t i = 0; i < overrides.count; i++)
        if (strncmp(overrides.item[i], "maillog_file=", 13) == 0)
            file = overrides.item[i] + 13;
    if (file)
        log_configure("postern", "mail", file);
}

const char *config_dir(void)
{
    if (stub_dir)
        return stub_dir;
    const char *env = getenv("POSTERN_CONFIG_DIR");
    return env && *env ? env : DEF_CONFIG_DIR;
}

const char *conf_str(const char *name)
{
    size_t n = strlen(name);
    for (size_t i = overrides.count; i-- > 0;)
        if (strncmp(overrides.item[i], name, n) == 0 && overrides.item[i][n] == '=')
            return overrides.item[i] + n + 1;
    for (size_t i = 0; i < sizeof stub_defaults / sizeof stub_defaults[0]; i++)
        if (strcmp(stub_defaults[i][0], name) == 0)
            return stub_defaults[i][1];
    msg_fatal("stub: unknown parameter %s", name);
}

long long conf_size(const char *name)
{
    return atoll(conf_str(name));
}

long long conf_time(const char *name)
{
    long long v = parse_time(conf_str(name), 's');
    if (v < 0)
        msg_fatal("bad time value for %s", name);
    return v;
}

long long parse_time(const char *s, char unit)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    char u = *end ? *end : unit;
    switch (u) {
    case 's': return v;
    case 'm': return v * 60;
    case 'h': return v * 3600;
    case 'd': return v * 86400;
    case 'w': return v * 604800;
    }
    return -1;
}

void conf_list(const char *name, struct strlist *out)
{
    struct strbuf err = STRBUF_INIT;
    list_split(conf_str(name), out, &err);
    strbuf_free(&err);
}
