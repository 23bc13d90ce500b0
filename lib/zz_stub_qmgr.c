/* zz_stub_qmgr.c - TEMPORARY stand-ins for the qmgr branch, until main
 * brings the real lib/config.c + lib/params.c (config helper) and
 * lib/queuefile.c (q-inject helper).  Delete this file when they land.
 *
 * Config: a minimal main.cf reader (name = value, comments, continuation
 * lines, $name / ${name} expansion) with the defaults of the parameters qmgr
 * and resolve use.  Queue file: a reader and updater of doc/queue-format.md.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "queuefile.h"
#include "strbuf.h"
#include "xalloc.h"

/* ---------------------------------------------------------------- config */

static const struct param_def stub_params[] = {
    {"bounce_queue_lifetime", PARAM_TIME, "5d", NULL, 'd', 0, 0},
    {"config_directory", PARAM_STR, DEF_CONFIG_DIR, NULL, 0, 0, 0},
    {"daemon_directory", PARAM_STR, DEF_DAEMON_DIR, NULL, 0, 0, 0},
    {"default_destination_concurrency_limit", PARAM_INT, "20", NULL, 0, 0, 0},
    {"default_destination_recipient_limit", PARAM_INT, "50", NULL, 0, 0, 0},
    {"default_process_limit", PARAM_INT, "100", NULL, 0, 0, 0},
    {"default_transport", PARAM_STR, "smtp", NULL, 0, 0, 0},
    {"defer_transports", PARAM_STR, "", NULL, 0, 0, 0},
    {"delay_warning_time", PARAM_TIME, "0h", NULL, 'h', 0, 0},
    {"inet_interfaces", PARAM_STR, "all", NULL, 0, 0, 0},
    {"local_destination_concurrency_limit", PARAM_INT, "2", NULL, 0, 0, 0},
    {"local_destination_recipient_limit", PARAM_INT, "1", NULL, 0, 0, 0},
    {"local_transport", PARAM_STR, "local:$myhostname", NULL, 0, 0, 0},
    {"maillog_file", PARAM_STR, "", NULL, 0, 0, 0},
    {"maximal_backoff_time", PARAM_TIME, "4000s", NULL, 's', 0, 0},
    {"maximal_queue_lifetime", PARAM_TIME, "5d", NULL, 'd', 0, 0},
    {"minimal_backoff_time", PARAM_TIME, "300s", NULL, 's', 0, 0},
    {"mydestination", PARAM_STR, "$myhostname, localhost.$mydomain, localhost", NULL, 0, 0, 0},
    {"mydomain", PARAM_STR, "localdomain", NULL, 0, 0, 0},
    {"myhostname", PARAM_STR, "localhost.localdomain", NULL, 0, 0, 0},
    {"parent_domain_matches_subdomains", PARAM_STR, "debug_peer_list,fast_flush_domains,mynetworks,permit_mx_backup_networks,qmqpd_authorized_clients,relay_domains,smtpd_access_maps", NULL, 0, 0, 0},
    {"proxy_interfaces", PARAM_STR, "", NULL, 0, 0, 0},
    {"qmgr_message_active_limit", PARAM_INT, "20000", NULL, 0, 0, 0},
    {"queue_directory", PARAM_STR, DEF_QUEUE_DIR, NULL, 0, 0, 0},
    {"queue_run_delay", PARAM_TIME, "300s", NULL, 's', 0, 0},
    {"relay_domains", PARAM_STR, "", NULL, 0, 0, 0},
    {"relay_transport", PARAM_STR, "relay", NULL, 0, 0, 0},
    {"relayhost", PARAM_STR, "", NULL, 0, 0, 0},
    {"recipient_delimiter", PARAM_STR, "", NULL, 0, 0, 0},
    {"syslog_facility", PARAM_STR, "mail", NULL, 0, 0, 0},
    {"syslog_name", PARAM_STR, "postern", NULL, 0, 0, 0},
    {"transport_maps", PARAM_STR, "", NULL, 0, 0, 0},
    {"virtual_alias_domains", PARAM_STR, "$virtual_alias_maps", NULL, 0, 0, 0},
    {"virtual_alias_maps", PARAM_STR, "", NULL, 0, 0, 0},
    {"virtual_mailbox_domains", PARAM_STR, "$virtual_mailbox_maps", NULL, 0, 0, 0},
    {"virtual_mailbox_maps", PARAM_STR, "", NULL, 0, 0, 0},
    {"virtual_transport", PARAM_STR, "virtual", NULL, 0, 0, 0},
};
#define STUB_PARAM_COUNT (sizeof stub_params / sizeof stub_params[0])

static char *stub_dir;
static struct strlist stub_overrides = STRLIST_INIT;
static struct strlist stub_names = STRLIST_INIT, stub_values = STRLIST_INIT;
static struct strbuf stub_file = STRBUF_INIT;
static struct strlist stub_expanded = STRLIST_INIT;    /* keeps returned strings alive */

const struct param_def *param_find(const char *name)
{
    for (size_t i = 0; i < STUB_PARAM_COUNT; i++)
        if (strcmp(stub_params[i].name, name) == 0)
            return &stub_params[i];
    return NULL;
}

const struct param_def *param_table(size_t *count)
{
    *count = STUB_PARAM_COUNT;
    return stub_params;
}

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
    switch (opt) {
    case 'c': config_set_dir(arg); return 1;
    case 'o': config_add_override(arg); return 1;
    case 'v': log_set_verbose(log_verbose() + 1); return 1;
    }
    return 0;
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

/* Record name = value (later settings win). */
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

/* Store one logical main.cf line. */
static void stub_line(const char *line)
{
    const char *eq = strchr(line, '=');
    if (!eq)
        return;
    size_t n = (size_t)(eq - line);
    while (n && isspace((unsigned char)line[n - 1]))
        n--;
    char *name = xstrndup(line, n);
    const char *v = eq + 1;
    while (isspace((unsigned char)*v))
        v++;
    struct strbuf value = STRBUF_INIT;
    strbuf_puts(&value, v);
    strbuf_trim_end(&value);
    stub_set(name, strbuf_str(&value));
    strbuf_free(&value);
    free(name);
}

/* Read main.cf and the overrides. */
static void stub_read(int allow_missing)
{
    strlist_free(&stub_names);
    strlist_free(&stub_values);
    FILE *f = fopen(config_file(), "r");
    if (!f) {
        if (!allow_missing)
            msg_fatal_errno("open %s", config_file());
    } else {
        char *line = NULL;
        size_t cap = 0;
        struct strbuf logical = STRBUF_INIT;
        while (getline(&line, &cap, f) >= 0) {
            size_t n = strlen(line);
            while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
                line[--n] = '\0';
            const char *p = line;
            while (isspace((unsigned char)*p))
                p++;
            if (*p == '#' || *p == '\0')
                continue;
            if (isspace((unsigned char)line[0])) {
                strbuf_putc(&logical, ' ');
                strbuf_puts(&logical, p);
                continue;
            }
            if (logical.len)
                stub_line(strbuf_str(&logical));
            strbuf_set(&logical, line);
        }
        if (logical.len)
            stub_line(strbuf_str(&logical));
        strbuf_free(&logical);
        free(line);
        fclose(f);
    }
    for (size_t i = 0; i < stub_overrides.count; i++)
        stub_line(stub_overrides.item[i]);
}

void config_load(int allow_missing)
{
    stub_read(allow_missing);
    log_configure(conf_str("syslog_name"), conf_str("syslog_facility"),
                  conf_str("maillog_file"));
}

int config_load_report(int allow_missing, struct strbuf *report)
{
    (void)report;
    stub_read(allow_missing);
    return 0;
}

void config_reload(void)
{
    stub_read(0);
    log_configure(conf_str("syslog_name"), conf_str("syslog_facility"),
                  conf_str("maillog_file"));
}

const char *conf_raw(const char *name)
{
    for (size_t i = 0; i < stub_names.count; i++)
        if (strcmp(stub_names.item[i], name) == 0)
            return stub_values.item[i];
    const struct param_def *def = param_find(name);
    return def ? def->default_value : NULL;
}

int conf_is_set(const char *name)
{
    for (size_t i = 0; i < stub_names.count; i++)
        if (strcmp(stub_names.item[i], name) == 0)
            return 1;
    return 0;
}

/* Expand $name and ${name} recursively (depth-limited). */
static int stub_expand(const char *text, struct strbuf *out, int depth)
{
    if (depth > 20)
        return -1;
    for (const char *p = text; *p; p++) {
        if (*p != '$') {
            strbuf_putc(out, *p);
            continue;
        }
        const char *start = p + 1;
        size_t n;
        if (*start == '{' || *start == '(') {
            char close = *start == '{' ? '}' : ')';
            const char *end = strchr(start, close);
            if (!end)
                return -1;
            start++;
            n = (size_t)(end - start);
            p = end;
        } else {
            n = 0;
            while (isalnum((unsigned char)start[n]) || start[n] == '_')
                n++;
            p = start + n - 1;
        }
        char *name = xstrndup(start, n);
        const char *raw = conf_raw(name);
        free(name);
        if (raw && stub_expand(raw, out, depth + 1) != 0)
            return -1;
    }
    return 0;
}

int conf_expand(const char *text, struct strbuf *out, struct strbuf *err)
{
    if (stub_expand(text, out, 0) != 0) {
        strbuf_printf(err, "cannot expand \"%s\"", text);
        return -1;
    }
    return 0;
}

const char *conf_str(const char *name)
{
    const char *raw = conf_raw(name);
    if (!raw)
        msg_fatal("conf_str: undeclared parameter %s", name);
    struct strbuf out = STRBUF_INIT;
    if (stub_expand(raw, &out, 0) != 0)
        msg_fatal("parameter %s: expansion loop", name);
    char *s = strbuf_detach(&out);
    if (!s)
        s = xstrdup("");
    stub_expanded.item = xreallocarray(stub_expanded.item, stub_expanded.count + 1,
                                       sizeof *stub_expanded.item);
    stub_expanded.item[stub_expanded.count++] = s;
    return s;
}

int conf_bool(const char *name)
{
    int b = parse_bool(conf_str(name));
    if (b < 0)
        msg_fatal("parameter %s: expected yes or no", name);
    return b;
}

long long conf_int(const char *name)
{
    char *end;
    const char *s = conf_str(name);
    long long v = strtoll(s, &end, 10);
    if (end == s || *end)
        msg_fatal("parameter %s: bad number \"%s\"", name, s);
    return v;
}

long long conf_time(const char *name)
{
    const struct param_def *def = param_find(name);
    long long v = parse_time(conf_str(name), def && def->time_unit ? def->time_unit : 's');
    if (v < 0)
        msg_fatal("parameter %s: bad time \"%s\"", name, conf_str(name));
    return v;
}

long long conf_size(const char *name)
{
    long long v = parse_size(conf_str(name));
    if (v < 0)
        msg_fatal("parameter %s: bad size", name);
    return v;
}

void conf_list(const char *name, struct strlist *out)
{
    struct strbuf err = STRBUF_INIT;
    list_split(conf_str(name), out, &err);
    strbuf_free(&err);
}

int parse_bool(const char *s)
{
    if (strcasecmp(s, "yes") == 0)
        return 1;
    if (strcasecmp(s, "no") == 0)
        return 0;
    return -1;
}

long long parse_time(const char *s, char unit)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0)
        return -1;
    char u = *end ? *end : unit;
    if (*end && end[1])
        return -1;
    switch (u) {
    case 's': return v;
    case 'm': return v * 60;
    case 'h': return v * 3600;
    case 'd': return v * 86400;
    case 'w': return v * 604800;
    }
    return -1;
}

long long parse_size(const char *s)
{
    char *end;
    long long v = strtoll(s, &end, 10);
    if (end == s || v < 0 || *end)
        return -1;
    return v;
}

/* ------------------------------------------------------------ queue file */

/* Read the whole file into memory. */
static int stub_slurp(int fd, struct strbuf *out)
{
    char buf[65536];
    if (lseek(fd, 0, SEEK_SET) < 0)
        return -1;
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (n == 0)
            return 0;
        strbuf_append(out, buf, (size_t)n);
    }
}

int queue_file_read(int fd, const char *id, struct queue_file *qf,
                    struct strbuf *err)
{
    memset(qf, 0, sizeof *qf);
    qf->id = xstrdup(id);
    struct strbuf data = STRBUF_INIT;
    if (stub_slurp(fd, &data) != 0) {
        strbuf_printf(err, "read: %s", strerror(errno));
        strbuf_free(&data);
        return -1;
    }
    const char *base = data.s ? data.s : "";
    size_t len = data.len, pos = 0;
    int stage = 0;              /* 0 V, 1 t, 2 F, 3 A/R/P/M, 4 after M, 5 after E */
    errno = 0;
#define CORRUPT(...) do { strbuf_printf(err, __VA_ARGS__); goto bad; } while (0)
    while (pos < len) {
        const char *nl = memchr(base + pos, '\n', len - pos);
        if (!nl)
            CORRUPT("record without LF at offset %zu", pos);
        size_t rec_len = (size_t)(nl - (base + pos));
        char *rec = xstrndup(base + pos, rec_len);
        size_t rec_off = pos;
        pos += rec_len + 1;
        char type = rec[0];
        const char *val = rec_len ? rec + 1 : "";
        if (rec_len == 0) {
            free(rec);
            CORRUPT("empty record at offset %zu", rec_off);
        }
        if (stage == 0) {
            if (strcmp(rec, "V1") != 0) { free(rec); CORRUPT("bad magic"); }
            stage = 1;
        } else if (stage == 1) {
            if (type != 't') { free(rec); CORRUPT("missing arrival time"); }
            char *end;
            qf->arrival_sec = strtoll(val, &end, 10);
            qf->arrival_usec = *end == '.' ? strtol(end + 1, NULL, 10) : 0;
            stage = 2;
        } else if (stage == 2) {
            if (type != 'F') { free(rec); CORRUPT("missing sender"); }
            qf->sender = xstrdup(val);
            stage = 3;
        } else if (stage == 3) {
            if (type == 'A') {
                strlist_add(&qf->attrs, val);
            } else if (type == RCPT_TODO || type == RCPT_BOUNCE || type == RCPT_DONE) {
                qf->rcpt = xreallocarray(qf->rcpt, qf->rcpt_count + 1, sizeof *qf->rcpt);
                struct queue_recipient *r = &qf->rcpt[qf->rcpt_count++];
                memset(r, 0, sizeof *r);
                r->address = xstrdup(val);
                r->status_offset = (off_t)rec_off;
                r->status = type;
            } else if (type == 'P') {
                if (!qf->rcpt_count) { free(rec); CORRUPT("P record before any recipient"); }
                struct queue_recipient *r = &qf->rcpt[qf->rcpt_count - 1];
                if (strncmp(val, "ORCPT=", 6) == 0) { free(r->orcpt); r->orcpt = xstrdup(val + 6); }
                else if (strncmp(val, "NOTIFY=", 7) == 0) { free(r->notify); r->notify = xstrdup(val + 7); }
            } else if (type == 'M') {
                char *end;
                long long n = strtoll(val, &end, 10);
                if (end == val || *end || n < 0 || (size_t)n > len - pos)
                    { free(rec); CORRUPT("bad content length"); }
                if (!qf->rcpt_count) { free(rec); CORRUPT("no recipients"); }
                qf->content_offset = (off_t)pos;
                qf->content_length = n;
                pos += (size_t)n;
                if (pos >= len || base[pos] != '\n')
                    { free(rec); CORRUPT("content not followed by LF"); }
                pos++;
                stage = 4;
            } else {
                free(rec);
                CORRUPT("unexpected record type before content");
            }
        } else if (stage == 4) {
            if (type != 'E') { free(rec); CORRUPT("missing end record"); }
            stage = 5;
        } else {
            if (type == 'S') {
                char *end;
                long long off = strtoll(val, &end, 10);
                for (size_t i = 0; i < qf->rcpt_count && *end == ' '; i++)
                    if (qf->rcpt[i].status_offset == off) {
                        free(qf->rcpt[i].last_status);
                        qf->rcpt[i].last_status = xstrdup(end + 1);
                    }
            } else if (type == 'W') {
                qf->delay_warned = strtoll(val, NULL, 10);
            } else if (type == 'N') {
                long long off = strtoll(val, NULL, 10);
                for (size_t i = 0; i < qf->rcpt_count; i++)
                    if (qf->rcpt[i].status_offset == off)
                        qf->rcpt[i].success_noticed = 1;
            }
        }
        free(rec);
    }
    if (stage < 5)
        CORRUPT("truncated file (no E record)");
    qf->size = (off_t)len;
    strbuf_free(&data);
    return 0;
bad:
    strbuf_free(&data);
    return -1;
#undef CORRUPT
}

void queue_file_free(struct queue_file *qf)
{
    free(qf->id);
    free(qf->sender);
    strlist_free(&qf->attrs);
    for (size_t i = 0; i < qf->rcpt_count; i++) {
        free(qf->rcpt[i].address);
        free(qf->rcpt[i].orcpt);
        free(qf->rcpt[i].notify);
        free(qf->rcpt[i].last_status);
    }
    free(qf->rcpt);
    memset(qf, 0, sizeof *qf);
}

const char *queue_file_attr(const struct queue_file *qf, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < qf->attrs.count; i++)
        if (strncmp(qf->attrs.item[i], name, n) == 0 && qf->attrs.item[i][n] == '=')
            return qf->attrs.item[i] + n + 1;
    return NULL;
}

int queue_file_set_status(int fd, struct queue_recipient *rcpt, char status)
{
    if (pwrite(fd, &status, 1, rcpt->status_offset) != 1)
        return -1;
    rcpt->status = status;
    return 0;
}

int queue_file_append(int fd, struct queue_file *qf, const char *record)
{
    struct strbuf line = STRBUF_INIT;
    strbuf_puts(&line, record);
    strbuf_putc(&line, '\n');
    ssize_t n = pwrite(fd, line.s, line.len, qf->size);
    int ok = n == (ssize_t)line.len;
    if (ok)
        qf->size += (off_t)line.len;
    strbuf_free(&line);
    return ok ? 0 : -1;
}

int queue_file_sync(int fd)
{
    return fdatasync(fd);
}
