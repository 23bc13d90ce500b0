/* service.c - a pipe service's attributes from master.cf (Postfix's
 * pipe(8): flags=, user=, size=, eol=, null_sender=, directory=, argv=). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "mastercf.h"
#include "pipe.h"
#include "xalloc.h"

/* Set flags from a flags= value; 0, or -1 with err set. */
static int parse_flags(const char *value, unsigned *flags, struct strbuf *err)
{
    static const char letters[] = "BDFORXhqu.>";
    static const unsigned bits[] = {
        PIPE_FLAG_BLANK, PIPE_FLAG_DELIVERED, PIPE_FLAG_FROM, PIPE_FLAG_ORIG,
        PIPE_FLAG_RETURN, PIPE_FLAG_FINAL, PIPE_FLAG_HOST, PIPE_FLAG_QUOTE,
        PIPE_FLAG_USER, PIPE_FLAG_DOT, PIPE_FLAG_ESCAPE,
    };
    for (const char *p = value; *p; p++) {
        const char *at = strchr(letters, *p);
        if (!at) {
            strbuf_printf(err, "unknown flag '%c' in flags=%s", *p, value);
            return -1;
        }
        *flags |= bits[at - letters];
    }
    return 0;
}

/* eol=: "\n" and "\r" (and "\t", "\\") as C writes them. */
static void parse_eol(const char *value, struct strbuf *eol)
{
    strbuf_reset(eol);
    for (const char *p = value; *p; p++) {
        if (*p != '\\' || !p[1]) {
            strbuf_putc(eol, *p);
            continue;
        }
        p++;
        strbuf_putc(eol, *p == 'n' ? '\n' : *p == 'r' ? '\r' : *p == 't' ? '\t' : *p);
    }
}

/* The service's time limit: NAME_time_limit, else command_time_limit. */
static long long time_limit(const char *name)
{
    struct strbuf param = STRBUF_INIT, value = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&param, "%s_time_limit", name);
    long long limit = -1;
    const char *raw = conf_raw(strbuf_str(&param));
    if (raw && conf_expand(raw, &value, &err) == 0)
        limit = parse_time(strbuf_str(&value), 's');
    if (limit <= 0)
        limit = conf_time("command_time_limit");
    strbuf_free(&param);
    strbuf_free(&value);
    strbuf_free(&err);
    return limit;
}

/* Take the attributes of one master.cf entry; 0 or -1 with err set. */
static int take_attributes(const struct master_service *entry, struct pipe_service *service,
                           struct strbuf *err)
{
    size_t i = 0;
    for (; i < entry->arg_count; i++) {
        const char *arg = entry->args[i];
        if (strcmp(arg, "-o") == 0 && i + 1 < entry->arg_count) {
            /* not applied: the runner reads main.cf (and qmgr's -o) only */
            msg_warn("master.cf line %d: service %s: -o %s is not applied to postern-pipe; "
                     "set it in main.cf", entry->line, service->name, entry->args[++i]);
            continue;
        }
        const char *eq = strchr(arg, '=');
        if (!eq) {
            strbuf_printf(err, "master.cf line %d: pipe attribute without '=': %s", entry->line,
                          arg);
            return -1;
        }
        size_t n = (size_t)(eq - arg);
        const char *value = eq + 1;
        if (n == 4 && strncmp(arg, "argv", 4) == 0) {
            strlist_add(&service->argv, value);
            for (i++; i < entry->arg_count; i++)
                strlist_add(&service->argv, entry->args[i]);
            break;
        }
        if (n == 5 && strncmp(arg, "flags", 5) == 0) {
            if (parse_flags(value, &service->flags, err) != 0)
                return -1;
        } else if (n == 4 && strncmp(arg, "user", 4) == 0) {
            const char *colon = strchr(value, ':');
            free(service->user);
            free(service->group);
            service->user = colon ? xstrndup(value, (size_t)(colon - value)) : xstrdup(value);
            service->group = colon ? xstrdup(colon + 1) : NULL;
        } else if (n == 4 && strncmp(arg, "size", 4) == 0) {
            char *end;
            errno = 0;
            long long size = strtoll(value, &end, 10);
            if (errno || *end || end == value || size < 0) {
                strbuf_printf(err, "bad size= value: %s", value);
                return -1;
            }
            service->size_limit = (off_t)size;
        } else if (n == 3 && strncmp(arg, "eol", 3) == 0) {
            parse_eol(value, &service->eol);
        } else if (n == 11 && strncmp(arg, "null_sender", 11) == 0) {
            free(service->null_sender);
            service->null_sender = xstrdup(value);
        } else if (n == 9 && strncmp(arg, "directory", 9) == 0) {
            free(service->directory);
            service->directory = xstrdup(value);
        } else {
            strbuf_printf(err, "unknown pipe attribute: %s", arg);
            return -1;
        }
    }
    if (service->argv.count == 0 || !*service->argv.item[0]) {
        strbuf_printf(err, "service %s: missing argv= attribute", service->name);
        return -1;
    }
    if (!service->user || !*service->user) {
        strbuf_printf(err, "service %s: missing user= attribute", service->name);
        return -1;
    }
    return 0;
}

int pipe_service_read(const char *name, struct pipe_service *service, struct strbuf *err)
{
    memset(service, 0, sizeof *service);
    service->name = xstrdup(name);
    strbuf_puts(&service->eol, "\n");
    service->null_sender = xstrdup("MAILER-DAEMON");
    service->delimiters = xstrdup(conf_str("recipient_delimiter"));
    service->time_limit = time_limit(name);
    struct strbuf path = STRBUF_INIT;
    struct master_table table = {0};
    strbuf_printf(&path, "%s/master.cf", config_dir());
    int r = master_read(strbuf_str(&path), 0, &table, err);
    if (r == 0) {
        r = -1;
        for (size_t i = 0; i < table.count; i++)
            if (strcmp(table.service[i].service, name) == 0
                && strcmp(table.service[i].type, "unix") == 0
                && strcmp(table.service[i].command, "pipe") == 0) {
                r = take_attributes(&table.service[i], service, err);
                break;
            }
        if (r != 0 && !err->len)
            strbuf_printf(err, "%s: no pipe service %s", strbuf_str(&path), name);
    }
    master_free(&table);
    strbuf_free(&path);
    return r;
}

void pipe_service_free(struct pipe_service *service)
{
    free(service->name);
    free(service->user);
    free(service->group);
    strlist_free(&service->argv);
    strbuf_free(&service->eol);
    free(service->null_sender);
    free(service->directory);
    free(service->delimiters);
    memset(service, 0, sizeof *service);
}
