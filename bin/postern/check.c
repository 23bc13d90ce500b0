/* check.c - `postern check`: what `postfix check` does for main.cf.
 *
 * Reports every problem, not only the first: syntax errors, values that do
 * not expand or have the wrong type, parameters postern does not know, and
 * for every lookup table the configuration names: a missing file, a missing
 * or stale NAME.cdb for hash/btree/cdb, a table that fails to open.  Silent
 * with exit 0 when all is well; one line per problem and exit 1 otherwise.
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
#include "proxyallow.h"
#include "postern.h"
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
    int problems;
};

/* Report one problem about a parameter's table. */
static void problem(struct checker *ck, const char *param, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void problem(struct checker *ck, const char *param, const char *fmt, ...)
{
    const struct conf_entry *entries;
    size_t count = conf_entries(&entries);
    struct strbuf line = STRBUF_INIT;
    for (size_t i = 0; i < count; i++)
        if (strcmp(entries[i].name, param) == 0)
            strbuf_printf(&line, "%s, line %d: ", entries[i].file, entries[i].line);
    strbuf_printf(&line, "parameter %s: ", param);
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&line, fmt, ap);
    va_end(ap);
    msg_warn("%s", strbuf_str(&line));
    strbuf_free(&line);
    ck->problems++;
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
        for (size_t i = 0; i < items.count; i++) {
            if (restrictions) {
                const char *prev = i ? items.item[i - 1] : "";
                size_t n = strlen(prev);
                if (strncmp(prev, "check_", 6) != 0 || n < 7 || strcmp(prev + n - 7, "_access") != 0)
                    continue;
            }
            if (looks_like_table(items.item[i]))
                check_table(ck, name, items.item[i]);
            else if (restrictions)
                problem(ck, name, "%s %s: expected a type:table", items.item[i - 1], items.item[i]);
        }
    }
    strlist_free(&items);
    strbuf_free(&value);
    strbuf_free(&err);
}

int cmd_check(int argc, char **argv)
{
    int opt;
    while ((opt = getopt(argc, argv, "c:o:v")) != -1)
        if (!config_common_option(opt, optarg)) {
            fprintf(stderr, "usage: postern check [-c DIR] [-o name=value] [-v]\n");
            return 2;
        }
    if (optind != argc) {
        fprintf(stderr, "usage: postern check [-c DIR] [-o name=value] [-v]\n");
        return 2;
    }
    struct strbuf report = STRBUF_INIT;
    struct checker ck = {STRLIST_INIT, 0};
    ck.problems = config_load_report(0, &report);
    for (const char *p = strbuf_str(&report); *p;) {
        size_t n = strcspn(p, "\n");
        msg_warn("%.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
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
    for (size_t i = 0; i < names.count; i++)
        check_param_tables(&ck, names.item[i]);
    strlist_free(&names);
    strlist_free(&ck.seen);
    strbuf_free(&report);
    if (ck.problems) {
        msg_error("%d problem%s found in %s and the tables it names", ck.problems,
                  ck.problems == 1 ? "" : "s", config_file());
        return 1;
    }
    return 0;
}
