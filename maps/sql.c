/* sql.c - the shared half of the SQL table types (sql.h): the
 * configuration file, the query template expander, the domain filter and
 * the lookup with its one reconnection.  The template expander reads text
 * an administrator wrote and keys anyone may send: it is fuzzed
 * (fuzz/sql_query.c). */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "log.h"
#include "monotonic.h"
#include "sql.h"
#include "strbuf.h"
#include "textlines.h"
#include "xalloc.h"

#define SQL_CF_LINE_MAX     (64 * 1024)
#define SQL_CONNECT_TIMEOUT 10          /* seconds, each host */

void sql_config_free(struct sql_config *cf)
{
    strlist_free(&cf->hosts);
    strlist_free(&cf->domain);
    maplist_close(cf->domain_maps);
    free(cf->user);
    free(cf->password);
    free(cf->dbname);
    free(cf->dbpath);
    free(cf->query);
    free(cf->result_format);
    free(cf->option_file);
    free(cf->option_group);
    free(cf->tls_cert_file);
    free(cf->tls_key_file);
    free(cf->tls_CAfile);
    free(cf->tls_CApath);
    free(cf->tls_ciphers);
    free(cf->ldap.search_base);
    free(cf->ldap.bind_dn);
    free(cf->ldap.bind_pw);
    free(cf->ldap.tls_ca_cert_file);
    strlist_free(&cf->ldap.result_attribute);
    strlist_free(&cf->ldap.special_result_attribute);
    strlist_free(&cf->ldap.terminal_result_attribute);
    strlist_free(&cf->ldap.leaf_result_attribute);
    memset(cf, 0, sizeof *cf);
}

/* Is c one of the template's escapes? */
static int is_escape(int c)
{
    return c == '%' || c == 's' || c == 'u' || c == 'd' || c == 'S' || c == 'U'
           || c == 'D' || (c >= '1' && c <= '9');
}

int sql_check_template(const char *format, const char *what, struct strbuf *err)
{
    for (const char *p = format; *p; p++) {
        if (*p != '%')
            continue;
        if (!is_escape((unsigned char)p[1])) {
            if (p[1])
                strbuf_printf(err, "%s: unknown escape \"%%%c\" (use %%%% for a %%)", what,
                              isprint((unsigned char)p[1]) ? p[1] : '?');
            else
                strbuf_printf(err, "%s: a %% at the end (use %%%% for a %%)", what);
            return -1;
        }
        p++;
    }
    return 0;
}

/* Append s[0..len) quoted (or as it is without a quote function). */
static int put_part(struct strbuf *out, const char *s, size_t len, sql_quote_fn *quote,
                    void *ctx)
{
    if (!quote) {
        strbuf_append(out, s, len);
        return 0;
    }
    return quote(ctx, out, s, len);
}

/* The n-th label of the domain counted from the right (1 = top level):
 * start and length, or 0 when there are fewer. */
static int domain_label(const char *domain, int n, const char **start, size_t *len)
{
    const char *end = domain + strlen(domain);
    while (end > domain && end[-1] == '.')  /* a trailing dot names no label */
        end--;
    for (int i = 1; end > domain; i++) {
        const char *dot = end;
        while (dot > domain && dot[-1] != '.')
            dot--;
        if (i == n) {
            *start = dot;
            *len = (size_t)(end - dot);
            return *len > 0;
        }
        end = dot > domain ? dot - 1 : domain;
    }
    return 0;
}

int sql_expand(const char *format, const char *value, const char *key,
               sql_quote_fn *quote, void *quote_ctx, struct strbuf *out,
               struct strbuf *err)
{
    size_t start_len = out->len;
    if (!key)
        key = value;
    for (const char *p = format; *p; p++) {
        if (*p != '%') {
            strbuf_putc(out, *p);
            continue;
        }
        int c = (unsigned char)*++p;
        if (!is_escape(c)) {
            strbuf_truncate(out, start_len);
            strbuf_printf(err, "unknown escape in \"%.60s\"", format);
            return -1;
        }
        if (c == '%') {
            strbuf_putc(out, '%');
            continue;
        }
        const char *of = islower(c) ? value : key;
        const char *at = strrchr(of, '@');
        const char *part = of;
        size_t len = strlen(of);
        if (c == 'u' || c == 'U') {
            if (at)
                len = (size_t)(at - of);
            if (len == 0)
                goto suppressed;
        } else if (c == 'd' || c == 'D') {
            if (!at || !at[1])
                goto suppressed;
            part = at + 1;
            len = strlen(part);
        } else if (c >= '1' && c <= '9') {
            if (!at || !domain_label(at + 1, c - '0', &part, &len))
                goto suppressed;
        } else if (len == 0) {
            goto suppressed;            /* %s of an empty value */
        }
        if (put_part(out, part, len, quote, quote_ctx) != 0) {
            strbuf_truncate(out, start_len);
            strbuf_puts(err, "the key cannot be quoted");
            return -1;
        }
    }
    return 1;
suppressed:
    strbuf_truncate(out, start_len);
    return 0;
}

int sql_valid_utf8(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    while (p < end) {
        unsigned c = *p++;
        int more;
        unsigned min;
        if (c < 0x80)
            continue;
        else if ((c & 0xe0) == 0xc0)
            more = 1, min = 0x80, c &= 0x1f;
        else if ((c & 0xf0) == 0xe0)
            more = 2, min = 0x800, c &= 0x0f;
        else if ((c & 0xf8) == 0xf0)
            more = 3, min = 0x10000, c &= 0x07;
        else
            return 0;
        if (end - p < more)
            return 0;
        for (int i = 0; i < more; i++) {
            if ((*p & 0xc0) != 0x80)
                return 0;
            c = (c << 6) | (*p++ & 0x3f);
        }
        if (c < min || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
            return 0;
    }
    return 1;
}

/* Set a string setting, replacing an earlier line. */
static void set_str(char **slot, const char *value)
{
    free(*slot);
    *slot = xstrdup(value);
}

/* Split a list value on commas and white space into list. */
static void split_words(struct strlist *list, const char *value)
{
    const char *p = value;
    while (*p) {
        while (*p && (*p == ',' || textlines_is_blank((unsigned char)*p)))
            p++;
        const char *start = p;
        while (*p && *p != ',' && !textlines_is_blank((unsigned char)*p))
            p++;
        if (p > start) {
            char *word = xstrndup(start, (size_t)(p - start));
            strlist_add(list, word);
            free(word);
        }
    }
}

/* A number in [min, max]; 0, or -1. */
static int small_number(const char *value, int min, int max, int *out)
{
    char *end;
    long n = strtol(value, &end, 10);
    if (end == value || *end || n < min || n > max)
        return -1;
    *out = (int)n;
    return 0;
}

/* yes/true/1 or no/false/0; 0, or -1. */
static int yes_no(const char *value, int *out)
{
    if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0 || strcmp(value, "1") == 0)
        *out = 1;
    else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0 || strcmp(value, "0") == 0)
        *out = 0;
    else
        return -1;
    return 0;
}

/* One ldap_table(5) setting; 0, or -1 when its value is bad (names not
 * listed are ignored, as Postfix ignores what it does not ask for). */
static int ldap_setting(struct sql_config *cf, const char *name, const char *value)
{
    struct sql_ldap_settings *l = &cf->ldap;
    if (strcmp(name, "server_host") == 0)
        split_words(&cf->hosts, value);
    else if (strcmp(name, "server_port") == 0)
        return small_number(value, 1, 65535, &l->port);
    else if (strcmp(name, "search_base") == 0)
        set_str(&l->search_base, value);
    else if (strcmp(name, "query_filter") == 0)
        set_str(&cf->query, value);
    else if (strcmp(name, "result_attribute") == 0) {
        strlist_free(&l->result_attribute);
        split_words(&l->result_attribute, value);
    } else if (strcmp(name, "special_result_attribute") == 0) {
        strlist_free(&l->special_result_attribute);
        split_words(&l->special_result_attribute, value);
    } else if (strcmp(name, "terminal_result_attribute") == 0) {
        strlist_free(&l->terminal_result_attribute);
        split_words(&l->terminal_result_attribute, value);
    } else if (strcmp(name, "leaf_result_attribute") == 0) {
        strlist_free(&l->leaf_result_attribute);
        split_words(&l->leaf_result_attribute, value);
    } else if (strcmp(name, "scope") == 0) {
        if (strcmp(value, "sub") == 0)
            l->scope = 2;
        else if (strcmp(value, "one") == 0)
            l->scope = 1;
        else if (strcmp(value, "base") == 0)
            l->scope = 0;
        else
            return -1;
    } else if (strcmp(name, "bind") == 0) {
        if (strcasecmp(value, "none") == 0)
            l->bind = 0;
        else if (yes_no(value, &l->bind) != 0)
            return -1;          /* "sasl" among others: not supported */
    } else if (strcmp(name, "bind_dn") == 0)
        set_str(&l->bind_dn, value);
    else if (strcmp(name, "bind_pw") == 0)
        set_str(&l->bind_pw, value);
    else if (strcmp(name, "version") == 0)
        return small_number(value, 2, 3, &l->version);
    else if (strcmp(name, "timeout") == 0)
        return small_number(value, 1, 3600, &cf->connect_timeout);
    else if (strcmp(name, "size_limit") == 0)
        return small_number(value, 0, 1 << 30, &l->size_limit);
    else if (strcmp(name, "dereference") == 0)
        return small_number(value, 0, 3, &l->dereference);
    else if (strcmp(name, "start_tls") == 0)
        return yes_no(value, &l->start_tls);
    else if (strcmp(name, "tls_ca_cert_file") == 0)
        set_str(&l->tls_ca_cert_file, value);
    else if (strcmp(name, "tls_require_cert") == 0)
        return yes_no(value, &l->tls_require_cert);
    return 0;
}

int sql_config_parse(struct sql_config *cf, const char *type, const char *file,
                     const char *text, size_t len, struct strbuf *err)
{
    char *table = NULL, *select_field = NULL, *where_field = NULL, *additional = NULL;
    char *domain_text = NULL;
    struct textlines tl;
    struct strbuf line = STRBUF_INIT, problems = STRBUF_INIT;
    int lineno, rc = -1;
    memset(cf, 0, sizeof *cf);
    cf->file = file;
    cf->connect_timeout = SQL_CONNECT_TIMEOUT;
    /* ldap_table(5)'s defaults */
    cf->ldap.port = 389;
    cf->ldap.scope = 2;
    cf->ldap.bind = 1;
    cf->ldap.version = 2;
    textlines_init(&tl, file, text, len, SQL_CF_LINE_MAX, TEXTLINES_STOP);
    while (textlines_next(&tl, &line, &lineno, &problems)) {
        char *name = line.s, *eq = strchr(line.s, '=');
        if (!eq) {
            textlines_problem(&tl, lineno, &problems, "expected \"name = value\"");
            break;
        }
        char *value = eq + 1;
        while (eq > name && textlines_is_blank((unsigned char)eq[-1]))
            eq--;
        *eq = '\0';
        while (textlines_is_blank((unsigned char)*value))
            value++;
        if (strcmp(name, "hosts") == 0)
            split_words(&cf->hosts, value);
        else if (strcmp(name, "user") == 0)
            set_str(&cf->user, value);
        else if (strcmp(name, "password") == 0)
            set_str(&cf->password, value);
        else if (strcmp(name, "dbname") == 0)
            set_str(&cf->dbname, value);
        else if (strcmp(name, "dbpath") == 0)
            set_str(&cf->dbpath, value);
        else if (strcmp(name, "query") == 0)
            set_str(&cf->query, value);
        else if (strcmp(name, "result_format") == 0 || strcmp(name, "result_filter") == 0)
            set_str(&cf->result_format, value);
        else if (strcmp(name, "domain") == 0)
            set_str(&domain_text, value);
        else if (strcmp(name, "expansion_limit") == 0) {
            char *end;
            cf->expansion_limit = strtol(value, &end, 10);
            if (end == value || *end || cf->expansion_limit < 0) {
                textlines_problem(&tl, lineno, &problems,
                                  "expansion_limit: expected a number, 0 or more");
                break;
            }
        } else if (strcmp(name, "table") == 0)
            set_str(&table, value);
        else if (strcmp(name, "select_field") == 0)
            set_str(&select_field, value);
        else if (strcmp(name, "where_field") == 0)
            set_str(&where_field, value);
        else if (strcmp(name, "additional_conditions") == 0)
            set_str(&additional, value);
        else if (strcmp(type, "mysql") == 0 && strcmp(name, "option_file") == 0)
            set_str(&cf->option_file, value);
        else if (strcmp(type, "mysql") == 0 && strcmp(name, "option_group") == 0)
            set_str(&cf->option_group, value);
        else if (strcmp(type, "mysql") == 0 && strcmp(name, "tls_cert_file") == 0)
            set_str(&cf->tls_cert_file, value);
        else if (strcmp(type, "mysql") == 0 && strcmp(name, "tls_key_file") == 0)
            set_str(&cf->tls_key_file, value);
        else if (strcmp(type, "mysql") == 0 && strcmp(name, "tls_CAfile") == 0)
            set_str(&cf->tls_CAfile, value);
        else if (strcmp(type, "mysql") == 0 && strcmp(name, "tls_CApath") == 0)
            set_str(&cf->tls_CApath, value);
        else if (strcmp(type, "mysql") == 0 && strcmp(name, "tls_ciphers") == 0)
            set_str(&cf->tls_ciphers, value);
        else if (strcmp(type, "mysql") == 0 && strcmp(name, "tls_verify_cert") == 0) {
            if (strcasecmp(value, "yes") == 0 || strcasecmp(value, "true") == 0)
                cf->tls_verify_cert = 1;
            else if (strcasecmp(value, "no") == 0 || strcasecmp(value, "false") == 0)
                cf->tls_verify_cert = 0;
            else {
                textlines_problem(&tl, lineno, &problems, "tls_verify_cert: expected yes or no");
                break;
            }
        }
        else if (strcmp(type, "ldap") == 0) {
            if (ldap_setting(cf, name, value) != 0) {
                textlines_problem(&tl, lineno, &problems, "%s: bad value \"%.60s\"", name, value);
                break;
            }
        }
        /* other settings (retry_interval, idle_interval, ...) are not
         * used: Postfix too reads only what it asks for */
    }
    if (problems.len)
        goto done;
    if (strcmp(type, "ldap") == 0) {
        if (!cf->ldap.search_base) {
            strbuf_printf(&problems, "%s: no \"search_base\"", file);
            goto done;
        }
        if (!cf->query)
            cf->query = xstrdup("(mailacceptinggeneralid=%s)");
        if (!cf->ldap.result_attribute.count && !cf->ldap.special_result_attribute.count
            && !cf->ldap.terminal_result_attribute.count && !cf->ldap.leaf_result_attribute.count)
            strlist_add(&cf->ldap.result_attribute, "maildrop");
        if (!cf->hosts.count)
            strlist_add(&cf->hosts, "localhost");
    }
    if (!cf->query) {
        /* the old form (pgsql_table(5) "OBSOLETE QUERY INTERFACE") */
        if (!table || !select_field || !where_field) {
            strbuf_printf(&problems, "%s: no \"query\", nor \"table\", \"select_field\" and "
                          "\"where_field\"", file);
            goto done;
        }
        struct strbuf q = STRBUF_INIT;
        strbuf_printf(&q, "SELECT %s FROM %s WHERE %s = '%%s' %s", select_field, table,
                      where_field, additional ? additional : "");
        strbuf_trim_end(&q);
        cf->query = strbuf_detach(&q);
    }
    if (!*cf->query) {
        strbuf_printf(&problems, "%s: \"query\" is empty", file);
        goto done;
    }
    if (!cf->result_format)
        cf->result_format = xstrdup("%s");
    if (strcmp(type, "sqlite") == 0 && !cf->dbpath) {
        strbuf_printf(&problems, "%s: no \"dbpath\"", file);
        goto done;
    }
    if (strcmp(type, "sqlite") != 0 && strcmp(type, "ldap") != 0 && !cf->dbname) {
        strbuf_printf(&problems, "%s: no \"dbname\"", file);
        goto done;
    }
    struct strbuf what = STRBUF_INIT;
    strbuf_printf(&what, "%s: query", file);
    int bad = sql_check_template(cf->query, what.s, &problems);
    strbuf_reset(&what);
    strbuf_printf(&what, "%s: result_format", file);
    bad = bad || sql_check_template(cf->result_format, what.s, &problems);
    if (cf->ldap.search_base) {
        strbuf_reset(&what);
        strbuf_printf(&what, "%s: search_base", file);
        bad = bad || sql_check_template(cf->ldap.search_base, what.s, &problems);
    }
    strbuf_free(&what);
    if (bad)
        goto done;
    if (domain_text) {
        struct strlist words = STRLIST_INIT;
        split_words(&words, domain_text);
        struct strbuf maps = STRBUF_INIT;
        for (size_t i = 0; i < words.count; i++) {
            /* a domain table is asked from the database's thread in the
             * lookup service: only a table that needs neither the name
             * service nor a server (hash:, texthash:, cidr:, ...) */
            if (strchr(words.item[i], ':') && (map_is_service_type(words.item[i])
                                               || strncmp(words.item[i], "proxy:", 6) == 0))
                strbuf_printf(&problems, "%s: domain: %s: a table here must be a file table "
                              "(hash:, texthash:, ...), not one of a server or the lookup service",
                              file, words.item[i]);
            else if (strchr(words.item[i], ':'))
                strbuf_printf(&maps, "%s%s", maps.len ? " " : "", words.item[i]);
            else
                strlist_add(&cf->domain, words.item[i]);
        }
        strlist_free(&words);
        if (problems.len) {
            strbuf_free(&maps);
            goto done;
        }
        if (maps.len) {
            struct strbuf why = STRBUF_INIT;
            cf->domain_maps = maplist_open(maps.s, &why);
            if (!cf->domain_maps)
                strbuf_printf(&problems, "%s: domain: %s", file, why.s);
            strbuf_free(&why);
        }
        strbuf_free(&maps);
        if (problems.len)
            goto done;
    }
    rc = 0;
done:
    if (rc != 0) {
        strbuf_trim_end(&problems);
        strbuf_append(err, problems.s, problems.len);
        sql_config_free(cf);
    }
    free(table);
    free(select_field);
    free(where_field);
    free(additional);
    free(domain_text);
    strbuf_free(&line);
    strbuf_free(&problems);
    return rc;
}

int sql_config_read(struct sql_config *cf, const char *type, const char *path,
                    struct strbuf *err)
{
    struct strbuf text = STRBUF_INIT;
    if (textlines_read_file(path, &text, err) != 0) {
        strbuf_free(&text);
        return -1;
    }
    int rc = sql_config_parse(cf, type, path, text.s, text.len, err);
    strbuf_free(&text);
    return rc;
}

int sql_host_is_uri(const char *entry)
{
    return strncmp(entry, "postgresql://", 13) == 0 || strncmp(entry, "postgres://", 11) == 0;
}

int sql_host_parse(const char *entry, char **copy, const char **path,
                   const char **host, unsigned *port)
{
    *copy = xstrdup(entry);
    *path = *host = NULL;
    *port = 0;
    char *s = *copy;
    if (strncmp(s, "unix:", 5) == 0) {
        *path = s + 5;
        return **path ? 0 : -1;
    }
    if (strncmp(s, "inet:", 5) == 0)
        s += 5;
    char *colon = strrchr(s, ':');
    if (s[0] == '[') {                  /* [IPv6]:port */
        char *close = strchr(s, ']');
        if (!close)
            return -1;
        *close = '\0';
        *host = s + 1;
        colon = close[1] == ':' ? close + 1 : NULL;
    } else {
        *host = s;
        if (colon && strchr(s, ':') != colon)
            colon = NULL;               /* a bare IPv6 address */
        if (colon)
            *colon = '\0';
    }
    if (colon) {
        char *end;
        unsigned long p = strtoul(colon + 1, &end, 10);
        if (end == colon + 1 || *end || p == 0 || p > 65535)
            return -1;
        *port = (unsigned)p;
    }
    return **host ? 0 : -1;
}

int sql_table_open(struct map *map, const struct sql_driver *driver, const char *name,
                   struct strbuf *err)
{
    struct sql_table *t = xcalloc(1, sizeof *t);
    t->driver = driver;
    t->spec = map->spec;
    if (sql_config_read(&t->cf, driver->type, name, err) != 0) {
        free(t);
        return -1;
    }
    for (size_t i = 0; i < t->cf.hosts.count; i++) {
        char *copy;
        const char *path, *host;
        unsigned port;
        if ((strcmp(driver->type, "pgsql") == 0 && sql_host_is_uri(t->cf.hosts.item[i]))
            || strcmp(driver->type, "ldap") == 0)
            continue;               /* the library reads it (checked by its open) */
        int bad = sql_host_parse(t->cf.hosts.item[i], &copy, &path, &host, &port);
        free(copy);
        if (bad) {
            strbuf_printf(err, "%s: hosts: cannot read \"%s\" (unix:PATH, inet:HOST:PORT, "
                          "HOST:PORT or HOST)", name, t->cf.hosts.item[i]);
            sql_config_free(&t->cf);
            free(t);
            return -1;
        }
    }
    t->failed_at = xcalloc(t->cf.hosts.count ? t->cf.hosts.count : 1, sizeof *t->failed_at);
    map->data = t;
    return 0;
}

void sql_table_close(struct map *map)
{
    struct sql_table *t = map->data;
    if (!t)
        return;
    if (t->conn)
        t->driver->disconnect(t);
    sql_config_free(&t->cf);
    free(t->failed_at);
    free(t);
}

/* The order to try the hosts in, as Postfix's: unix: sockets first, then
 * the others, each group in random order (so several lookup services
 * spread over the servers); a host that failed within the last
 * SQL_HOST_RETRY_INTERVAL seconds goes last, behind every usable one.
 * Unlike Postfix, which answers "try again" without trying while every
 * host is in its wait, such hosts are still tried, oldest failure first:
 * a server back after a restart answers at once. */
static void host_order(const struct sql_table *t, size_t *order, size_t count)
{
    double now = monotonic_now();
    size_t n = 0;
    for (int pass = 0; pass < 3; pass++) {
        size_t first = n;
        for (size_t i = 0; i < count; i++) {
            int waiting = t->failed_at[i] > 0 && now - t->failed_at[i] < SQL_HOST_RETRY_INTERVAL;
            int local = strncmp(t->cf.hosts.item[i], "unix:", 5) == 0;
            if ((pass == 0 && !waiting && local) || (pass == 1 && !waiting && !local)
                || (pass == 2 && waiting))
                order[n++] = i;
        }
        if (pass < 2) {
            for (size_t i = n - first; i > 1; i--) {     /* Fisher-Yates */
                size_t j = arc4random_uniform((uint32_t)i);
                size_t tmp = order[first + i - 1];
                order[first + i - 1] = order[first + j];
                order[first + j] = tmp;
            }
        } else {
            for (size_t i = first + 1; i < n; i++)      /* oldest failure first */
                for (size_t j = i; j > first && t->failed_at[order[j]] < t->failed_at[order[j - 1]];
                     j--) {
                    size_t tmp = order[j];
                    order[j] = order[j - 1];
                    order[j - 1] = tmp;
                }
        }
    }
}

/* A hosts entry as logs may show it: a URI's user information
 * (postgresql://user:password@host/...) becomes "***". */
static const char *host_shown(const char *host, struct strbuf *out)
{
    strbuf_reset(out);
    const char *scheme = host ? strstr(host, "://") : NULL;
    const char *end = scheme ? scheme + 3 + strcspn(scheme + 3, "/?") : NULL;
    const char *at = scheme ? memchr(scheme + 3, '@', (size_t)(end - scheme - 3)) : NULL;
    if (!at) {
        strbuf_puts(out, host ? host : "default server");
        return out->s;
    }
    strbuf_append(out, host, (size_t)(scheme + 3 - host));
    strbuf_puts(out, "***");
    strbuf_puts(out, at);
    return out->s;
}

/* Connect to the first host that answers, in host_order(); 0, or -1 with
 * the reasons in err. */
static int connect_any(struct sql_table *t, struct strbuf *err)
{
    struct strbuf shown_host = STRBUF_INIT;
    size_t count = t->cf.hosts.count;
    size_t *order = xcalloc(count ? count : 1, sizeof *order);
    if (count)
        host_order(t, order, count);
    for (size_t k = 0; k < (count ? count : 1); k++) {
        size_t i = order[k];
        const char *host = count ? t->cf.hosts.item[i] : NULL;
        struct strbuf why = STRBUF_INIT;
        if (t->driver->connect(t, host, &why) == 0) {
            t->failed_at[i] = 0;
            free(order);
            t->connections++;
            msg_info("table %s: connected to %s (connection %lu)", t->spec,
                     host ? host_shown(host, &shown_host)
                          : t->cf.dbpath ? t->cf.dbpath : "the default server",
                     t->connections);
            strbuf_free(&why);
            strbuf_free(&shown_host);
            return 0;
        }
        strbuf_trim_end(&why);
        for (size_t j = 0; j < why.len; j++)   /* libpq's messages are several lines */
            if (why.s[j] == '\n' || why.s[j] == '\t')
                why.s[j] = ' ';
        strbuf_printf(err, "%s%s: %s", err->len ? "; " : "", host_shown(host, &shown_host),
                      why.s);
        /* with several hosts a failed one is worth a line of its own: the
         * lookup may still succeed on the next */
        if (count > 1) {
            struct strbuf shown = STRBUF_INIT;
            msg_warn("table %s: cannot connect to %s: %s", t->spec, host_shown(host, &shown_host),
                     log_printable(&shown, why.s, 600));
            strbuf_free(&shown);
        }
        strbuf_free(&why);
        t->failed_at[i] = monotonic_now();
    }
    free(order);
    strbuf_free(&shown_host);
    return -1;
}

void sql_result_add(struct sql_results *res, const char *field)
{
    if (!field || !*field || res->over_limit)
        return;
    struct strbuf one = STRBUF_INIT, err = STRBUF_INIT;
    if (sql_expand(res->cf->result_format, field, res->key, NULL, NULL, &one, &err) == 1) {
        if (res->cf->expansion_limit && res->count >= res->cf->expansion_limit) {
            res->over_limit = 1;
        } else {
            if (res->value->len)
                strbuf_putc(res->value, ',');
            strbuf_append(res->value, one.s, one.len);
            res->count++;
        }
    }
    strbuf_free(&one);
    strbuf_free(&err);
}

/* May the key be looked up, given the domain setting?  MAP_FOUND yes,
 * MAP_NOTFOUND no, MAP_RETRY a domain table cannot say. */
static int domain_allows(struct sql_table *t, const char *key)
{
    if (!t->cf.domain.count && !t->cf.domain_maps)
        return MAP_FOUND;
    const char *at = strrchr(key, '@');
    if (!at || at == key || !at[1])
        return MAP_NOTFOUND;
    for (size_t i = 0; i < t->cf.domain.count; i++)
        if (strcasecmp(t->cf.domain.item[i], at + 1) == 0)
            return MAP_FOUND;
    if (!t->cf.domain_maps)
        return MAP_NOTFOUND;
    struct strbuf ignored = STRBUF_INIT;
    int r = maplist_lookup(t->cf.domain_maps, at + 1, &ignored);
    strbuf_free(&ignored);
    return r;
}

/* Log a failed lookup with the key in printable form. */
static void warn_lookup(const struct sql_table *t, const char *key, const char *why)
{
    struct strbuf shown = STRBUF_INIT, reason = STRBUF_INIT;
    msg_warn("table %s: lookup of \"%s\": %s", t->spec, log_printable(&shown, key, 200),
             log_printable(&reason, why, 600));
    strbuf_free(&shown);
    strbuf_free(&reason);
}

int sql_table_lookup(struct map *map, const char *key, struct strbuf *value)
{
    struct sql_table *t = map->data;
    int allowed = domain_allows(t, key);
    if (allowed != MAP_FOUND)
        return allowed;
    if (!sql_valid_utf8(key, strlen(key))) {
        warn_lookup(t, key, "the key is not UTF-8: not looked up");
        return MAP_NOTFOUND;
    }
    struct strbuf query = STRBUF_INIT, err = STRBUF_INIT;
    int result = MAP_RETRY;
    /* a query the key cannot fill is not run, and needs no connection */
    if (sql_expand(t->cf.query, key, NULL, NULL, NULL, &query, &err) != 1) {
        strbuf_free(&query);
        strbuf_free(&err);
        return MAP_NOTFOUND;
    }
    for (int attempt = 0; attempt < 2; attempt++) {
        int reused = t->conn != NULL;
        strbuf_reset(&err);
        if (!t->conn && connect_any(t, &err) != 0) {
            warn_lookup(t, key, err.s);
            break;
        }
        strbuf_reset(&query);
        if (sql_expand(t->cf.query, key, NULL, t->driver->quote, t, &query, &err) != 1) {
            warn_lookup(t, key, err.len ? err.s : "the query cannot be made");
            break;
        }
        struct sql_results res = {.cf = &t->cf, .key = key, .value = value};
        strbuf_reset(value);
        int rc = t->driver->run(t, query.s, &res, &err);
        if (rc == 0) {
            if (res.over_limit) {
                struct strbuf why = STRBUF_INIT;
                strbuf_printf(&why, "more than expansion_limit=%ld results",
                              t->cf.expansion_limit);
                warn_lookup(t, key, why.s);
                strbuf_free(&why);
                strbuf_reset(value);
            } else {
                result = res.count ? MAP_FOUND : MAP_NOTFOUND;
            }
            break;
        }
        for (size_t j = 0; j < err.len; j++)
            if (err.s[j] == '\n' || err.s[j] == '\t')
                err.s[j] = ' ';
        if (rc == SQL_QUERY_FAILED) {
            warn_lookup(t, key, err.s);     /* the connection is fine: keep it */
            break;
        }
        t->driver->disconnect(t);
        t->conn = NULL;
        /* a kept connection the server dropped: connect and ask again */
        if (!reused || attempt == 1) {
            warn_lookup(t, key, err.s);
            break;
        }
    }
    if (result != MAP_FOUND)
        strbuf_reset(value);
    strbuf_free(&query);
    strbuf_free(&err);
    return result;
}
