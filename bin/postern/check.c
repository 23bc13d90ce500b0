/* check.c - `postern check`: what `postfix check` does, and what postern
 * does not do yet.
 *
 * Reports every problem, not only the first.  Errors: syntax errors, values
 * that do not expand or have the wrong type, a master.cf that does not
 * parse, and for every lookup table the configuration names a missing
 * file, a missing or stale NAME.cdb for hash/btree/cdb, a table that fails
 * to open.  Warnings: parameters postern does not know, settings it does not
 * act on yet (lib/conf/unimplemented.c), restrictions that will answer 451
 * at run time, transports (main.cf, transport_maps, master.cf) it has no
 * runner for, master.cf services and -o overrides it does not implement.
 * Exit 0 when all is well, 1 for warnings only, 2 for errors
 * (doc/postern-check.1).
 */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_impl.h"
#include "log.h"
#include "map.h"
#include "mastercf.h"
#include "proxyallow.h"
#include "postern.h"
#include "restrictions.h"
#include "strbuf.h"

/* Table types Postfix knows that postern may not: named so that a value
 * like "ldap:/etc/x.cf" is checked (and reported) as a table. */
static const char *const other_types[] = {
    "dbm", "environ", "internal", "lmdb", "ldap", "memcache", "mysql", "netinfo", "nis",
    "nisplus", "pgsql", "pipemap", "randmap", "sdbm", "socketmap", "sqlite", "tcp",
    "unionmap", NULL,
};
/* Types whose name is a file of their own syntax (a database .cf included). */
static const char *const file_types[] = {
    "cidr", "ldap", "memcache", "mysql", "pcre", "pgsql", "regexp", "sqlite", "texthash", NULL,
};

/* 1 when word is one of the NULL-ended list. */
static int in_list(const char *const *list, const char *word, size_t len)
{
    for (; *list; list++)
        if (strlen(*list) == len && strncmp(*list, word, len) == 0)
            return 1;
    return 0;
}

/* 1 when item has the form TYPE:NAME with a table type we know of. */
static int looks_like_table(const char *item)
{
    while (strncmp(item, "proxy:", 6) == 0)
        item += 6;
    const char *colon = strchr(item, ':');
    if (!colon || colon == item || !colon[1])
        return 0;
    size_t len = (size_t)(colon - item);
    return in_list((const char *const *)map_type_names(), item, len)
           || in_list(other_types, item, len);
}

/* Does this parameter hold lookup tables (all of its type:name items)? */
static int names_tables(const char *name)
{
    static const char *const suffixes[] = {"_maps", "_domains", "_checks", "_clientcerts",
                                           "_networks", "_clients", NULL};
    /* proxy_read_maps and proxy_write_maps name tables only to allow them */
    if (strncmp(name, "proxy_", 6) == 0)
        return 0;
    size_t len = strlen(name);
    for (const char *const *s = suffixes; *s; s++) {
        size_t n = strlen(*s);
        if (len > n && strcmp(name + len - n, *s) == 0)
            return 1;
    }
    return strcmp(name, "mydestination") == 0 || strcmp(name, "mynetworks") == 0
           || strcmp(name, "alias_database") == 0;
}

/* 1 for a restriction list (tables follow check_*_access). */
static int is_restriction_list(const char *name)
{
    size_t len = strlen(name);
    return len > 13 && strcmp(name + len - 13, "_restrictions") == 0;
}

struct checker {
    struct strlist seen;        /* tables already checked */
    int errors, warnings;
};

/* Report one problem about a parameter: an error (is_error) or a warning. */
static void problem_at(struct checker *ck, int is_error, const char *param, const char *fmt, va_list ap)
{
    const struct conf_entry *entries;
    size_t count = conf_entries(&entries);
    struct strbuf line = STRBUF_INIT;
    for (size_t i = 0; i < count; i++)
        if (strcmp(entries[i].name, param) == 0)
            strbuf_printf(&line, "%s, line %d: ", entries[i].file, entries[i].line);
    strbuf_printf(&line, "parameter %s: ", param);
    strbuf_vprintf(&line, fmt, ap);
    if (is_error) {
        msg_error("%s", strbuf_str(&line));
        ck->errors++;
    } else {
        msg_warn("%s", strbuf_str(&line));
        ck->warnings++;
    }
    strbuf_free(&line);
}

/* An error about a parameter. */
static void problem(struct checker *ck, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct checker *ck, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_at(ck, 1, param, fmt, ap);
    va_end(ap);
}

/* A warning about a parameter. */
static void notice(struct checker *ck, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void notice(struct checker *ck, const char *param, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    problem_at(ck, 0, param, fmt, ap);
    va_end(ap);
}

/* 1 for a word that names a restriction (implemented or Postfix's). */
static int restriction_word(const char *word)
{
    return restriction_find(word) || restriction_not_implemented(word);
}

/* The restrictions of one list that smtpd cannot evaluate: each answers
 * 451 4.3.5 when smtpd reaches it (bin/postern-smtpd/policy.c). */
static void check_restrictions(struct checker *ck, const char *name, const struct strlist *items)
{
    for (size_t i = 0; i < items->count; i++) {
        const char *word = items->item[i];
        const struct restriction_name *r = restriction_find(word);
        if (r && r->id == RESTRICT_CHECK_CCERT_ACCESS && i + 1 < items->count) {
            struct strbuf table = STRBUF_INIT, err = STRBUF_INIT;
            char order[3];
            if (restriction_ccert_argument(items->item[i + 1], &table, order, &err) != 0)
                problem(ck, name, "%s: smtpd answers 451 4.3.5 when it reaches it", strbuf_str(&err));
            strbuf_free(&table);
            strbuf_free(&err);
            i++;
        } else if (r) {
            i += r->needs_table;
        } else if (restriction_not_implemented(word)) {
            notice(ck, name, "restriction %s is not implemented: smtpd answers 451 4.3.5 when it "
                   "reaches it", word);
            /* its argument (a table, a DNS domain, a service, a number) */
            if (i + 1 < items->count && !restriction_word(items->item[i + 1]))
                i++;
        } else if (!strchr(word, ':')) {
            problem(ck, name, "unknown restriction %s: smtpd answers 451 4.3.5 when it reaches it",
                    word);
        }
    }
}

/* The transport of each entry of a file-based transport table postern has
 * no runner for (the file is read as text: the table type's own syntax). */
static void check_transport_table(struct checker *ck, const char *param, const char *spec)
{
    const char *plain = spec;
    while (strncmp(plain, "proxy:", 6) == 0)
        plain += 6;
    const char *colon = strchr(plain, ':');
    if (!colon)
        return;
    size_t type_len = (size_t)(colon - plain);
    const char *file = colon + 1;
    if (strncmp(plain, "static", type_len) == 0 && type_len == 6) {
        const char *what = transport_not_implemented(file);
        if (what)
            notice(ck, param, "table %s: %s", spec, what);
        return;
    }
    int patterns = in_list((const char *const[]){"pcre", "regexp", NULL}, plain, type_len);
    if (!patterns && !in_list((const char *const[]){"hash", "btree", "cdb", "texthash", "cidr", NULL},
                              plain, type_len))
        return;
    FILE *f = fopen(file, "r");
    if (!f)
        return;         /* reported by check_table */
    char line[4096];
    int line_no = 0;
    while (fgets(line, sizeof line, f)) {
        line_no++;
        char *p = line;
        while (*p == ' ' || *p == '\t')
            p++;
        if (!*p || *p == '#' || *p == '\n' || p != line)
            continue;       /* comments, blank and continuation lines */
        if (patterns && (*p == '/' || *p == '!')) {
            /* /pattern/flags value (a ! before the / negates) */
            if (*p == '!')
                p++;
            char delim = *p++;
            while (*p && *p != delim)
                p += (*p == '\\' && p[1]) ? 2 : 1;
        }
        p += strcspn(p, " \t\n");
        p += strspn(p, " \t");
        p[strcspn(p, "\n")] = '\0';
        const char *what = *p ? transport_not_implemented(p) : NULL;
        if (what)
            notice(ck, param, "table %s: line %d: %s: %s", spec, line_no, p, what);
    }
    fclose(f);
}

/* Check one table: its files, then that it opens. */
static void check_table(struct checker *ck, const char *param, const char *spec)
{
    for (size_t i = 0; i < ck->seen.count; i++)
        if (strcmp(ck->seen.item[i], spec) == 0)
            return;
    strlist_add(&ck->seen, spec);
    const char *plain = spec;
    while (strncmp(plain, "proxy:", 6) == 0)
        plain += 6;
    const char *colon = strchr(plain, ':');
    size_t type_len = (size_t)(colon - plain);
    const char *file = colon + 1;
    int indexed = in_list((const char *const[]){"hash", "btree", "cdb", NULL}, plain, type_len);
    struct stat source, index;
    int have_source = stat(file, &source) == 0;
    if (indexed) {
        struct strbuf cdb = STRBUF_INIT;
        strbuf_printf(&cdb, "%s.cdb", file);
        if (stat(cdb.s, &index) != 0) {
            if (!have_source)
                problem(ck, param, "table %s: %s: no such file", spec, file);
            else
                problem(ck, param, "table %s: %s is missing (run: postern map %s)", spec, cdb.s, plain);
            strbuf_free(&cdb);
            return;
        }
        if (have_source && source.st_mtime > index.st_mtime) {
            problem(ck, param, "table %s: %s is older than its source (run: postern map %s)",
                    spec, cdb.s, plain);
            strbuf_free(&cdb);
            return;
        }
        strbuf_free(&cdb);
    } else if (in_list(file_types, plain, type_len) && !have_source) {
        problem(ck, param, "table %s: %s: %s", spec, file, strerror(errno));
        return;
    }
    /* the lookup service would refuse it: every lookup "try again" */
    if ((plain != spec || map_is_service_type(plain)) && !proxy_table_allowed(plain))
        problem(ck, param, "table %s: the lookup service is not configured for it "
                "(list proxy:%s in proxy_read_maps)", spec, plain);
    /* a proxy: table is opened here as the lookup service would open it */
    struct strbuf err = STRBUF_INIT;
    struct map *map = map_open(plain, &err);
    if (!map)
        problem(ck, param, "table %s: %s", spec, strbuf_str(&err));
    map_close(map);
    strbuf_free(&err);
}

/* Check the tables one parameter names. */
static void check_param_tables(struct checker *ck, const char *name)
{
    int restrictions = is_restriction_list(name);
    if (!restrictions && !names_tables(name))
        return;
    const char *raw = conf_raw(name);
    struct strbuf value = STRBUF_INIT, err = STRBUF_INIT;
    struct strlist items = STRLIST_INIT;
    /* values that do not expand or split were reported by config_load_report */
    if (raw && conf_expand(raw, &value, &err) == 0 && list_split(strbuf_str(&value), &items, &err) == 0) {
        if (restrictions)
            check_restrictions(ck, name, &items);
        for (size_t i = 0; i < items.count; i++) {
            if (restrictions) {
                const char *prev = i ? items.item[i - 1] : "";
                size_t n = strlen(prev);
                if (strncmp(prev, "check_", 6) != 0 || n < 7 || strcmp(prev + n - 7, "_access") != 0)
                    continue;
                if (strcasecmp(prev, "check_ccert_access") == 0) {
                    /* { type:table, { search_order = ... } }: its table (a
                     * bad argument was reported by check_restrictions) */
                    struct strbuf table = STRBUF_INIT, why = STRBUF_INIT;
                    char order[3];
                    int parsed = restriction_ccert_argument(items.item[i], &table, order, &why) == 0;
                    if (parsed) {
                        free(items.item[i]);
                        items.item[i] = strbuf_detach(&table);
                    }
                    strbuf_free(&table);
                    strbuf_free(&why);
                    if (!parsed)
                        continue;
                }
            }
            if (looks_like_table(items.item[i])) {
                check_table(ck, name, items.item[i]);
                if (strcmp(name, "transport_maps") == 0)
                    check_transport_table(ck, name, items.item[i]);
            }
            else if (restrictions)
                problem(ck, name, "%s %s: expected a type:table", items.item[i - 1], items.item[i]);
        }
    }
    strlist_free(&items);
    strbuf_free(&value);
    strbuf_free(&err);
}

/* One -o name=value of a master.cf service: a parameter postern knows
 * and acts on, else a warning. */
static void check_master_override(struct checker *ck, const char *where, const char *arg)
{
    const char *eq = strchr(arg, '=');
    if (!eq) {
        ck->errors++;
        msg_error("%s: -o %s: expected name=value", where, arg);
        return;
    }
    struct strbuf name = STRBUF_INIT, value = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_append(&name, arg, (size_t)(eq - arg));
    while (name.len && (name.s[name.len - 1] == ' ' || name.s[name.len - 1] == '\t'))
        name.s[--name.len] = '\0';
    const char *raw = eq + 1 + strspn(eq + 1, " \t");
    const char *what = NULL;
    if (conf_expand(raw, &value, &err) != 0) {
        ck->errors++;
        msg_error("%s: -o %s: %s", where, strbuf_str(&name), strbuf_str(&err));
    } else if ((what = setting_not_implemented(strbuf_str(&name), strbuf_str(&value)))
               || (!param_find(strbuf_str(&name)) && param_is_postfix_name(strbuf_str(&name))
                   && *raw)) {
        ck->warnings++;
        msg_warn("%s: -o: not implemented by postern: %s%s%s", where, arg,
                 what ? ": " : "", what ? what : "");
    } else if (!param_find(strbuf_str(&name)) && !param_is_postfix_name(strbuf_str(&name))) {
        ck->warnings++;
        msg_warn("%s: -o: unused parameter: %s", where, arg);
    }
    strbuf_free(&name);
    strbuf_free(&value);
    strbuf_free(&err);
}

/* master.cf beside main.cf: it parses; each service's command is one
 * postern has; each -o names a parameter postern knows and acts on. */
static void check_master_cf(struct checker *ck)
{
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT, where = STRBUF_INIT;
    strbuf_printf(&path, "%s/master.cf", config_dir());
    struct master_table services = {0};
    if (master_read(strbuf_str(&path), 1, &services, &err) != 0) {
        ck->errors++;
        msg_error("%s", strbuf_str(&err));
    }
    for (size_t i = 0; i < services.count; i++) {
        const struct master_service *sv = &services.service[i];
        strbuf_reset(&where);
        strbuf_printf(&where, "%s, line %d: service %s", strbuf_str(&path), sv->line, sv->service);
        const char *what = master_command_not_implemented(sv->command);
        if (what) {
            ck->warnings++;
            msg_warn("%s: command %s is not implemented: %s", strbuf_str(&where), sv->command, what);
        }
        for (size_t a = 0; a < sv->arg_count; a++) {
            const char *arg = sv->args[a];
            if (strcmp(arg, "-o") == 0 && a + 1 < sv->arg_count)
                check_master_override(ck, strbuf_str(&where), sv->args[++a]);
            else if (strncmp(arg, "-o", 2) == 0 && arg[2])
                check_master_override(ck, strbuf_str(&where), arg + 2);
        }
    }
    master_free(&services);
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&where);
}

/* Settings that make the virtual runner defer every delivery (4.3.5)
 * when mail for a virtual mailbox domain arrives (bin/postern-virtual.c). */
static void check_deferring(struct checker *ck)
{
    const char *mailbox_maps = conf_raw("virtual_mailbox_maps");
    struct strbuf value = STRBUF_INIT, err = STRBUF_INIT;
    int virtual_used = mailbox_maps && conf_expand(mailbox_maps, &value, &err) == 0
                       && strbuf_str(&value)[strspn(strbuf_str(&value), " \t,")];
    if (virtual_used) {
        long long limit = parse_size(conf_raw("virtual_mailbox_limit"));
        long long message_limit = parse_size(conf_raw("message_size_limit"));
        struct strbuf base = STRBUF_INIT;
        /* Postfix's virtual(8) stops with "virtual_mailbox_limit is
         * smaller than message_size_limit" in both cases; so does ours */
        if (limit > 0 && message_limit > 0 && limit < message_limit)
            problem(ck, "virtual_mailbox_limit", "%lld is smaller than message_size_limit (%lld): "
                    "every virtual delivery is deferred (4.3.5)", limit, message_limit);
        else if (limit > 0 && message_limit == 0)
            problem(ck, "virtual_mailbox_limit", "%lld is smaller than message_size_limit (0: no "
                    "limit): every virtual delivery is deferred (4.3.5), as with Postfix; set "
                    "virtual_mailbox_limit = 0 too, or give message_size_limit a size", limit);
        if (conf_expand(conf_raw("virtual_mailbox_base"), &base, &err) == 0 && base.s[0] != '/')
            problem(ck, "virtual_mailbox_base", "\"%s\" is not an absolute path: every virtual "
                    "delivery is deferred (4.3.5)", strbuf_str(&base));
        strbuf_free(&base);
    }
    /* smtpd, and postern-rewrite for local submissions, end with Postfix's
     * fatal on an unknown name: no mail is received */
    struct strbuf unknown = STRBUF_INIT;
    strbuf_reset(&value);
    if (conf_expand(conf_raw("receive_override_options"), &value, &err) == 0
        && receive_override_unknown(strbuf_str(&value), &unknown))
        problem(ck, "receive_override_options", "unknown value \"%s\": smtpd and local "
                "submission refuse every message (as Postfix's smtpd and pickup end)",
                strbuf_str(&unknown));
    strbuf_free(&unknown);
    strbuf_free(&value);
    strbuf_free(&err);
}

/* Log each line of text as an error or a warning. */
static void report_lines(const char *text, int is_error)
{
    for (const char *p = text; *p;) {
        size_t n = strcspn(p, "\n");
        if (is_error)
            msg_error("%.*s", (int)n, p);
        else
            msg_warn("%.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* The number of lines in text. */
static int count_lines(const char *text)
{
    int n = 0;
    for (; (text = strchr(text, '\n')); text++)
        n++;
    return n;
}

#define USAGE "usage: postern check [-c DIR] [-o name=value] [-v]\n"

int cmd_check(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "c:o:v")) != -1)
        if (!config_common_option(opt, optarg)) {
            fputs(USAGE, stderr);
            return 64;
        }
    if (optind != argc) {
        fputs(USAGE, stderr);
        return 64;
    }
    struct strbuf errors = STRBUF_INIT, warnings = STRBUF_INIT;
    struct checker ck = {STRLIST_INIT, 0, 0};
    config_load_split(0, &errors, &warnings);
    ck.errors = count_lines(strbuf_str(&errors));
    ck.warnings = count_lines(strbuf_str(&warnings));
    report_lines(strbuf_str(&errors), 1);
    report_lines(strbuf_str(&warnings), 0);
    /* set parameters first (file order), so a table is reported where it is named */
    struct strlist names = STRLIST_INIT;
    const struct conf_entry *entries;
    size_t entry_count = conf_entries(&entries);
    for (size_t i = 0; i < entry_count; i++)
        strlist_add(&names, entries[i].name);
    config_set_names(&names);
    size_t count;
    const struct param_def *table = param_table(&count);
    for (size_t i = 0; i < count; i++)
        strlist_add(&names, table[i].name);
    for (size_t i = 0; i < names.count; i++) {
        size_t j = 0;
        while (j < i && strcmp(names.item[j], names.item[i]) != 0)
            j++;
        if (j == i)             /* each parameter once */
            check_param_tables(&ck, names.item[i]);
    }
    check_master_cf(&ck);
    check_deferring(&ck);
    strlist_free(&names);
    strlist_free(&ck.seen);
    strbuf_free(&errors);
    strbuf_free(&warnings);
    if (ck.errors || ck.warnings) {
        (ck.errors ? msg_error : msg_warn)("%d error%s and %d warning%s found in %s, master.cf "
                                           "and the tables they name", ck.errors,
                                           ck.errors == 1 ? "" : "s", ck.warnings,
                                           ck.warnings == 1 ? "" : "s", config_file());
        return ck.errors ? 2 : 1;
    }
    return 0;
}
