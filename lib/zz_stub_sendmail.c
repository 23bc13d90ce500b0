/* zz_stub_sendmail.c - TEMPORARY stand-in for lib/config.c and lib/params.c
 * (branch sendmail), so that sendmail, postern-rewrite and `postern
 * init/start/stop/status` link and run before the real configuration code
 * lands in main.  It knows only the parameters these programs read, does
 * `name = value`, comments, continuation lines and $name / ${name}
 * expansion.  DELETE THIS FILE when main brings lib/config.c. */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

static const char *const stub_defaults[][2] = {
    {"alias_database", "hash:/etc/aliases"},
    {"always_add_missing_headers", "no"},
    {"append_at_myorigin", "yes"},
    {"append_dot_mydomain", "no"},
    {"command_directory", DEF_COMMAND_DIR},
    {"daemon_directory", DEF_DAEMON_DIR},
    {"duplicate_filter_limit", "1000"},
    {"header_size_limit", "102400"},
    {"mail_owner", "postfix"},
    {"maillog_file", ""},
    {"message_drop_headers", "bcc, content-length, resent-bcc, return-path"},
    {"mydomain", "localdomain"},
    {"myhostname", "localhost"},
    {"myorigin", "$myhostname"},
    {"queue_directory", DEF_QUEUE_DIR},
    {"setgid_group", "postdrop"},
    {"syslog_facility", "mail"},
    {"syslog_name", "postern"},
};
#define STUB_NDEFAULTS (sizeof stub_defaults / sizeof stub_defaults[0])

static struct strlist stub_names = STRLIST_INIT, stub_values = STRLIST_INIT;
static struct strlist stub_overrides = STRLIST_INIT;
static char *stub_dir;
static struct strbuf stub_file = STRBUF_INIT;
static struct strlist stub_expanded = STRLIST_INIT;

void config_set_dir(const char *dir)
{
    free(stub_dir);
    stub_dir = xstrdup(dir);
}

void config_add_override(const char *name_eq_value)
{
    if (!strchr(name_eq_value, '='))
        msg_fatal("-o %s: expected name=value", name_eq_value);
    strlist_add(&stub_overrides, name_eq_value);
}

int config_common_option(int opt, const char *arg)
{
    if (opt == 'c')
        config_set_dir(arg);
    else if (opt == 'o')
        config_add_override(arg);
    else if (opt == 'v')
        log_set_verbose(log_verbose() + 1);
    else
        return 0;
    return 1;
}

const char *config_dir(void)
{
    if (stub_dir)
        return stub_dir;
    const char *env = getenv("POSTERN_CONFIG_DIR");
    return env && *env ? env : DEF_CONFIG_DIR;
}

const char *config_file(void)
{
    strbuf_reset(&stub_file);
    strbuf_printf(&stub_file, "%s/main.cf", config_dir());
    return strbuf_str(&stub_file);
}

/* Set (or replace) a raw value. */
static void stub_set(const char *name, size_t name_len, const char *value)
{
    for (size_t i = 0; i < stub_names.count; i++)
        if (strlen(stub_names.item[i]) == name_len
            && strncmp(stub_names.item[i], name, name_len) == 0) {
            free(stub_values.item[i]);
            stub_values.item[i] = xstrdup(value);
            return;
        }
    char *n = xstrndup(name, name_len);
    strlist_add(&stub_names, n);
    strlist_add(&stub_values, value);
    free(n);
}

/* Store one logical line "name = value". */
static void stub_line(const char *line, const char *file, int lineno)
{
    const char *p = line + strspn(line, " \t");
    if (!*p)
        return;
    size_t n = strcspn(p, " \t=");
    const char *eq = strchr(p, '=');
    if (!eq || n == 0)
        msg_fatal("%s, line %d: missing '=' after attribute name", file, lineno);
    struct strbuf value = STRBUF_INIT;
    strbuf_puts(&value, eq + 1 + strspn(eq + 1, " \t"));
    strbuf_trim_end(&value);
    stub_set(p, n, strbuf_str(&value));
    strbuf_free(&value);
}

void config_load(int allow_missing)
{
    const char *path = config_file();
    FILE *f = fopen(path, "r");
    if (!f && !allow_missing)
        msg_fatal_errno("open %s", path);
    if (f) {
        struct strbuf logical = STRBUF_INIT;
        char *line = NULL;
        size_t cap = 0;
        int lineno = 0, start = 0;
        while (getline(&line, &cap, f) >= 0) {
            lineno++;
            line[strcspn(line, "\n")] = '\0';
            const char *t = line + strspn(line, " \t");
            if (*t == '#' || !*t)
                continue;
            if (line[0] == ' ' || line[0] == '\t') {
                strbuf_putc(&logical, ' ');
                strbuf_puts(&logical, t);
                continue;
            }
            if (logical.len)
                stub_line(strbuf_str(&logical), path, start);
            strbuf_set(&logical, line);
            start = lineno;
        }
        if (logical.len)
            stub_line(strbuf_str(&logical), path, start);
        strbuf_free(&logical);
        free(line);
        fclose(f);
    }
    for (size_t i = 0; i < stub_overrides.count; i++) {
        const char *o = stub_overrides.item[i];
        const char *eq = strchr(o, '=');
        stub_set(o, (size_t)(eq - o), eq + 1);
    }
    log_configure(conf_str("syslog_name"), conf_str("syslog_facility"),
                  conf_str("maillog_file"));
}

const char *conf_raw(const char *name)
{
    for (size_t i = 0; i < stub_names.count; i++)
        if (strcmp(stub_names.item[i], name) == 0)
            return stub_values.item[i];
    for (size_t i = 0; i < STUB_NDEFAULTS; i++)
        if (strcmp(stub_defaults[i][0], name) == 0)
            return stub_defaults[i][1];
    return NULL;
}

int conf_is_set(const char *name)
{
    for (size_t i = 0; i < stub_names.count; i++)
        if (strcmp(stub_names.item[i], name) == 0)
            return 1;
    return 0;
}

/* Expand $name and ${name} recursively (depth-limited). */
static void stub_expand(const char *text, struct strbuf *out, int depth)
{
    if (depth > 20)
        msg_fatal("parameter expansion loop");
    for (const char *p = text; *p;) {
        if (*p != '$') {
            strbuf_putc(out, *p++);
            continue;
        }
        p++;
        size_t n;
        const char *name;
        if (*p == '{' || *p == '(') {
            char close = *p == '{' ? '}' : ')';
            name = p + 1;
            const char *end = strchr(name, close);
            if (!end)
                msg_fatal("unterminated ${ in \"%s\"", text);
            n = (size_t)(end - name);
            p = end + 1;
        } else {
            name = p;
            n = 0;
            while (isalnum((unsigned char)p[n]) || p[n] == '_')
                n++;
            p += n;
        }
        char *key = xstrndup(name, n);
        const char *raw = conf_raw(key);
        if (raw)
            stub_expand(raw, out, depth + 1);
        free(key);
    }
}

int conf_expand(const char *text, struct strbuf *out, struct strbuf *err)
{
    (void)err;
    stub_expand(text, out, 0);
    return 0;
}

const char *conf_str(const char *name)
{
    const char *raw = conf_raw(name);
    if (!raw)
        msg_fatal("stub config: parameter %s is not declared", name);
    struct strbuf out = STRBUF_INIT;
    stub_expand(raw, &out, 0);
    strlist_add(&stub_expanded, strbuf_str(&out));
    strbuf_free(&out);
    return stub_expanded.item[stub_expanded.count - 1];
}

int parse_bool(const char *s)
{
    if (strcasecmp(s, "yes") == 0)
        return 1;
    if (strcasecmp(s, "no") == 0)
        return 0;
    return -1;
}

int conf_bool(const char *name)
{
    int b = parse_bool(conf_str(name));
    if (b < 0)
        msg_fatal("bad boolean value for %s", name);
    return b;
}

long long conf_int(const char *name)
{
    return strtoll(conf_str(name), NULL, 10);
}

long long conf_size(const char *name)
{
    return strtoll(conf_str(name), NULL, 10);
}

void conf_list(const char *name, struct strlist *out)
{
    list_split(conf_str(name), out, NULL);
}
