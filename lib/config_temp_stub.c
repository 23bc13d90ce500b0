/* config_temp_stub.c - TEMPORARY, DELETE AT MERGE.
 *
 * Minimal stand-ins for the lib/config.h functions that `postern map` and
 * `postern alias` use, so the maps-files branch links and its tests run
 * before the real lib/config.c lands: config_set_dir, config_add_override,
 * config_common_option, config_load, config_dir, conf_str.  main.cf is read
 * as plain "name = value" lines with continuation lines and comments; there
 * is no $name expansion, and only default_database_type, alias_database and
 * config_directory have defaults.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

static char *stub_dir;
static struct strlist stub_names, stub_values;

void config_set_dir(const char *dir)
{
    free(stub_dir);
    stub_dir = xstrdup(dir);
}

const char *config_dir(void)
{
    if (stub_dir)
        return stub_dir;
    const char *env = getenv("POSTERN_CONFIG_DIR");
    return env && *env ? env : DEF_CONFIG_DIR;
}

/* Set name=value, later settings winning. */
static void stub_set(const char *name, const char *value)
{
    strlist_add(&stub_names, name);
    strlist_add(&stub_values, value);
}

void config_add_override(const char *name_eq_value)
{
    const char *eq = strchr(name_eq_value, '=');
    if (!eq)
        msg_fatal("-o %s: need name=value", name_eq_value);
    char *name = xstrndup(name_eq_value, (size_t)(eq - name_eq_value));
    stub_set(name, eq + 1);
    free(name);
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

/* Store one logical main.cf line. */
static void stub_line(char *line)
{
    char *eq = strchr(line, '=');
    if (!eq)
        return;
    char *end = eq;
    while (end > line && strchr(" \t", end[-1]))
        end--;
    *end = '\0';
    char *value = eq + 1;
    value += strspn(value, " \t");
    size_t len = strlen(value);
    while (len && strchr(" \t\r\n", value[len - 1]))
        value[--len] = '\0';
    stub_set(line, value);
}

void config_load(int allow_missing)
{
    struct strbuf path = STRBUF_INIT, logical = STRBUF_INIT;
    strbuf_printf(&path, "%s/main.cf", config_dir());
    FILE *f = fopen(path.s, "re");
    if (!f) {
        if (!allow_missing)
            msg_fatal_errno("open %s", path.s);
        strbuf_free(&path);
        return;
    }
    /* main.cf settings go before the -o overrides already stored */
    struct strlist names = stub_names, values = stub_values;
    stub_names = (struct strlist)STRLIST_INIT;
    stub_values = (struct strlist)STRLIST_INIT;
    char buf[8192];
    while (fgets(buf, sizeof buf, f)) {
        buf[strcspn(buf, "\n")] = '\0';
        if (buf[strspn(buf, " \t")] == '#' || buf[strspn(buf, " \t")] == '\0')
            continue;
        if (buf[0] == ' ' || buf[0] == '\t') {
            strbuf_printf(&logical, " %s", buf + strspn(buf, " \t"));
            continue;
        }
        if (logical.len)
            stub_line(logical.s);
        strbuf_set(&logical, buf);
    }
    if (logical.len)
        stub_line(logical.s);
    fclose(f);
    for (size_t i = 0; i < names.count; i++)
        stub_set(names.item[i], values.item[i]);
    strlist_free(&names);
    strlist_free(&values);
    strbuf_free(&path);
    strbuf_free(&logical);
}

const char *conf_str(const char *name)
{
    for (size_t i = stub_names.count; i-- > 0;)
        if (strcmp(stub_names.item[i], name) == 0)
            return stub_values.item[i];
    if (strcmp(name, "default_database_type") == 0)
        return "hash";
    if (strcmp(name, "alias_database") == 0)
        return "hash:/etc/aliases";
    if (strcmp(name, "config_directory") == 0)
        return config_dir();
    msg_fatal("config stub: parameter %s is not known", name);
}
