/* zz_stub_q-inject.c - TEMPORARY stand-ins for lib/config.c and lib/params.c
 * until the config branch lands in main (branch q-inject).  Just enough of
 * config.h for postern-queue and `postern queue`: `name = value` lines with
 * continuation lines, -o overrides, $name expansion, and the defaults of the
 * parameters these programs use.  DELETE when main brings the real thing. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

static const struct { const char *name, *value; } stub_defaults[] = {
    {"daemon_directory", DEF_DAEMON_DIR},
    {"mail_owner", "postern"},
    {"maillog_file", ""},
    {"message_size_limit", "10240000"},
    {"queue_directory", DEF_QUEUE_DIR},
    {"queue_minfree", "0"},
    {"setgid_group", "postdrop"},
    {"syslog_facility", "mail"},
    {"syslog_name", "postern"},
};

static char *stub_dir;
static char *stub_file;
static struct strlist stub_names, stub_values;      /* main.cf then -o */
static struct strbuf stub_expanded[64];
static size_t stub_expanded_used;

void config_set_dir(const char *dir)
{
    free(stub_dir);
    stub_dir = xstrdup(dir);
}

/* Record one name=value pair (later ones win). */
static void stub_set(const char *name, size_t name_len, const char *value)
{
    char *n = xstrndup(name, name_len);
    strlist_add(&stub_names, n);
    strlist_add(&stub_values, value);
    free(n);
}

void config_add_override(const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq || eq == arg)
        msg_fatal("bad -o argument: \"%s\" (expected name=value)", arg);
    size_t n = (size_t)(eq - arg);
    while (n && isspace((unsigned char)arg[n - 1]))
        n--;
    eq++;
    while (isspace((unsigned char)*eq))
        eq++;
    stub_set(arg, n, eq);
}

int config_common_option(int opt, const char *arg)
{
    switch (opt) {
    case 'c': config_set_dir(arg); return 1;
    case 'o': config_add_override(arg); return 1;
    case 'v': log_set_verbose(log_verbose() + 1); return 1;
    }
    return 0;
}

/* Store one logical main.cf line. */
static void stub_line(struct strbuf *line)
{
    strbuf_trim_end(line);
    const char *s = strbuf_str(line);
    const char *eq = strchr(s, '=');
    if (!*s)
        return;
    if (!eq)
        msg_fatal("%s: missing '=' in \"%s\"", stub_file, s);
    size_t n = (size_t)(eq - s);
    while (n && isspace((unsigned char)s[n - 1]))
        n--;
    eq++;
    while (isspace((unsigned char)*eq))
        eq++;
    stub_set(s, n, eq);
}

void config_load(int allow_missing)
{
    if (!stub_dir) {
        const char *env = getenv("POSTERN_CONFIG_DIR");
        stub_dir = xstrdup(env && *env ? env : DEF_CONFIG_DIR);
    }
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/main.cf", stub_dir);
    stub_file = strbuf_detach(&path);
    struct strlist overrides = stub_names, override_values = stub_values;
    stub_names = (struct strlist)STRLIST_INIT;
    stub_values = (struct strlist)STRLIST_INIT;
    FILE *f = fopen(stub_file, "r");
    if (!f && !(allow_missing && errno == ENOENT))
        msg_fatal_errno("open %s", stub_file);
    if (f) {
        char *buf = NULL;
        size_t cap = 0;
        struct strbuf logical = STRBUF_INIT;
        while (getline(&buf, &cap, f) > 0) {
            if (buf[0] == '#')
                continue;
            if (isspace((unsigned char)buf[0])) {
                const char *p = buf + strspn(buf, " \t\r\n");
                if (*p && *p != '#') {
                    strbuf_putc(&logical, ' ');
                    strbuf_puts(&logical, p);
                    strbuf_trim_end(&logical);
                }
                continue;
            }
            stub_line(&logical);
            strbuf_set(&logical, buf);
        }
        stub_line(&logical);
        strbuf_free(&logical);
        free(buf);
        fclose(f);
    }
    for (size_t i = 0; i < overrides.count; i++) {
        strlist_add(&stub_names, overrides.item[i]);
        strlist_add(&stub_values, override_values.item[i]);
    }
    strlist_free(&overrides);
    strlist_free(&override_values);
    log_configure(conf_str("syslog_name"), conf_str("syslog_facility"),
                  conf_str("maillog_file"));
}

const char *config_dir(void) { return stub_dir ? stub_dir : DEF_CONFIG_DIR; }
const char *config_file(void) { return stub_file; }

const char *conf_raw(const char *name)
{
    for (size_t i = stub_names.count; i-- > 0;)
        if (strcmp(stub_names.item[i], name) == 0)
            return stub_values.item[i];
    for (size_t i = 0; i < sizeof stub_defaults / sizeof stub_defaults[0]; i++)
        if (strcmp(stub_defaults[i].name, name) == 0)
            return stub_defaults[i].value;
    return NULL;
}

/* Expand $name and ${name} (no conditionals) into out. */
static void stub_expand(const char *s, struct strbuf *out, int depth)
{
    if (depth > 20)
        msg_fatal("parameter expansion loop");
    while (*s) {
        if (*s != '$') {
            strbuf_putc(out, *s++);
            continue;
        }
        s++;
        int brace = *s == '{';
        if (brace)
            s++;
        size_t n = 0;
        while (isalnum((unsigned char)s[n]) || s[n] == '_')
            n++;
        char *name = xstrndup(s, n);
        const char *v = conf_raw(name);
        if (v)
            stub_expand(v, out, depth + 1);
        free(name);
        s += n;
        if (brace && *s == '}')
            s++;
    }
}

const char *conf_str(const char *name)
{
    const char *raw = conf_raw(name);
    if (!raw)
        msg_fatal("conf_str: undeclared parameter %s", name);
    struct strbuf *out = &stub_expanded[stub_expanded_used++ % 64];
    strbuf_reset(out);
    stub_expand(raw, out, 0);
    return strbuf_str(out);
}

long long conf_int(const char *name)
{
    const char *v = conf_str(name);
    char *end;
    errno = 0;
    long long n = strtoll(v, &end, 10);
    if (errno || end == v || *end)
        msg_fatal("bad numerical parameter value: %s = %s", name, v);
    return n;
}

long long conf_size(const char *name) { return conf_int(name); }
