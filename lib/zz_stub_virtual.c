/* zz_stub_virtual.c - TEMPORARY stand-ins for lib/config.c (branch virtual).
 *
 * Only so that postern-virtual links and its tests run before the real
 * configuration code lands in main: a minimal main.cf reader (name = value,
 * comments, continuation lines, no $name expansion) with the defaults of the
 * parameters postern-virtual reads.  Delete this file when main brings
 * lib/config.c and lib/params.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *const stub_defaults[][2] = {
    {"deliver_lock_attempts", "20"},
    {"deliver_lock_delay", "1"},
    {"maillog_file", ""},
    {"message_size_limit", "10240000"},
    {"recipient_delimiter", ""},
    {"stale_lock_time", "500"},
    {"strict_mailbox_ownership", "yes"},
    {"syslog_facility", "mail"},
    {"syslog_name", "postern"},
    {"virtual_gid_maps", ""},
    {"virtual_mailbox_base", ""},
    {"virtual_mailbox_limit", "51200000"},
    {"virtual_mailbox_lock", "fcntl, dotlock"},
    {"virtual_mailbox_maps", ""},
    {"virtual_minimum_uid", "100"},
    {"virtual_uid_maps", ""},
};

static struct strlist stub_names, stub_values;
static struct strlist stub_overrides;
static const char *stub_dir;
static char stub_file[4096];

static void stub_set(const char *name, const char *value)
{
    for (size_t i = 0; i < stub_names.count; i++)
        if (strcmp(stub_names.item[i], name) == 0) {
            free(stub_values.item[i]);
            stub_values.item[i] = xstrdup(value);
            return;
        }
    strlist_add(&stub_names, name);
    strlist_add(&stub_values, value);
}

static void stub_set_line(const char *line)
{
    const char *eq = strchr(line, '=');
    if (!eq)
        return;
    size_t n = (size_t)(eq - line);
    while (n && (line[n - 1] == ' ' || line[n - 1] == '\t'))
        n--;
    char *name = xstrndup(line, n);
    const char *value = eq + 1;
    value += strspn(value, " \t");
    struct strbuf v = STRBUF_INIT;
    strbuf_puts(&v, value);
    strbuf_trim_end(&v);
    stub_set(name, strbuf_str(&v));
    strbuf_free(&v);
    free(name);
}

void config_set_dir(const char *dir)
{
    stub_dir = dir;
}

void config_add_override(const char *name_eq_value)
{
    if (!strchr(name_eq_value, '='))
        msg_fatal("-o %s: expected name=value", name_eq_value);
    strlist_add(&stub_overrides, name_eq_value);
}

int config_common_option(int opt, const char *arg)
{
    switch (opt) {
    case 'c': config_set_dir(arg); return 1;
    case 'o': config_add_override(arg); return 1;
    case 'v': log_set_verbose(log_verbose() + 1); return 1;
    default: return 0;
    }
}

void config_load(int allow_missing)
{
    const char *dir = stub_dir ? stub_dir : getenv("POSTERN_CONFIG_DIR");
    if (!dir)
        dir = DEF_CONFIG_DIR;
    snprintf(stub_file, sizeof stub_file, "%s/main.cf", dir);
    FILE *fp = fopen(stub_file, "r");
    if (!fp && !(allow_missing && errno == ENOENT))
        msg_fatal_errno("open %s", stub_file);
    if (fp) {
        char *line = NULL;
        size_t cap = 0;
        struct strbuf logical = STRBUF_INIT;
        while (getline(&line, &cap, fp) >= 0) {
            if (line[0] == '#')
                continue;
            if ((line[0] == ' ' || line[0] == '\t') && logical.len) {
                strbuf_trim_end(&logical);
                strbuf_putc(&logical, ' ');
                strbuf_puts(&logical, line + strspn(line, " \t"));
                continue;
            }
            stub_set_line(strbuf_str(&logical));
            strbuf_set(&logical, line);
        }
        stub_set_line(strbuf_str(&logical));
        strbuf_free(&logical);
        free(line);
        fclose(fp);
    }
    for (size_t i = 0; i < stub_overrides.count; i++)
        stub_set_line(stub_overrides.item[i]);
    log_configure(conf_str("syslog_name"), conf_str("syslog_facility"),
                  conf_str("maillog_file"));
}

const char *config_dir(void)
{
    return stub_dir ? stub_dir : DEF_CONFIG_DIR;
}

const char *conf_str(const char *name)
{
    for (size_t i = 0; i < stub_names.count; i++)
        if (strcmp(stub_names.item[i], name) == 0)
            return stub_values.item[i];
    for (size_t i = 0; i < sizeof stub_defaults / sizeof stub_defaults[0]; i++)
        if (strcmp(stub_defaults[i][0], name) == 0)
            return stub_defaults[i][1];
    msg_fatal("stub config: undeclared parameter %s", name);
}

long long conf_int(const char *name)
{
    char *end;
    const char *s = conf_str(name);
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        msg_fatal("%s: bad numerical configuration: %s = %s", stub_file, name, s);
    return v;
}

long long conf_time(const char *name)
{
    char *end;
    const char *s = conf_str(name);
    long long v = strtoll(s, &end, 10);
    switch (*end) {
    case 'm': v *= 60; break;
    case 'h': v *= 3600; break;
    case 'd': v *= 86400; break;
    default: break;
    }
    return v;
}

int conf_bool(const char *name)
{
    const char *s = conf_str(name);
    return strcasecmp(s, "yes") == 0 || strcmp(s, "1") == 0;
}
