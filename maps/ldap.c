/* ldap.c - the ldap table type, ldap_table(5): an LDAP directory through
 * OpenLDAP's libldap.  The settings file, the query language (query_filter
 * with %s %u %d %[1-9] %S %U %D %%), result_format, domain,
 * expansion_limit and the one reconnection are shared with the SQL types
 * (maps/sql.c: the directory is one more "driver"); this file connects
 * (server_host entries: ldap://, ldaps:// and ldapi:// URLs, or HOST and
 * HOST:PORT with server_port), binds (simple, bind_dn/bind_pw, or
 * anonymous), escapes keys for a search filter (RFC 4515) and searches:
 * every value of every result_attribute of every entry found is a result;
 * a special_result_attribute holds DNs whose entries are read in turn
 * (group expansion), up to a nesting limit; terminal_result_attribute and
 * leaf_result_attribute as ldap_table(5) describes them.  libldap loads SASL plugins
 * and calls the name service: only dynamically linked programs link this
 * file (map_register_dynamic_types()). */
#include <ldap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"
#include "strbuf.h"
#include "xalloc.h"

#define LDAP_NESTING_LIMIT 10   /* special_result_attribute levels */
#define LDAP_SEARCH_BUDGET 1000 /* searches for one key */

/* server_host entry to URL: "ldap://host:port" for a bare HOST[:PORT]. */
static void entry_url(const struct sql_table *t, const char *entry, struct strbuf *url)
{
    if (strstr(entry, "://")) {
        strbuf_puts(url, entry);
        return;
    }
    if (strchr(entry, ':'))
        strbuf_printf(url, "ldap://%s", entry);
    else
        strbuf_printf(url, "ldap://%s:%d", entry, t->cf.ldap.port);
}

static void ldap_table_disconnect(struct sql_table *t)
{
    if (t->conn)
        ldap_unbind_ext_s(t->conn, NULL, NULL);
    t->conn = NULL;
}

static int ldap_table_connect(struct sql_table *t, const char *entry, struct strbuf *err)
{
    const struct sql_ldap_settings *l = &t->cf.ldap;
    struct strbuf url = STRBUF_INIT;
    entry_url(t, entry ? entry : "localhost", &url);
    LDAP *ld = NULL;
    int rc = ldap_initialize(&ld, url.s);
    strbuf_free(&url);
    if (rc != LDAP_SUCCESS) {
        strbuf_printf(err, "%s", ldap_err2string(rc));
        return -1;
    }
    int version = l->version, deref = l->dereference, size = l->size_limit;
    struct timeval timeout = {t->cf.connect_timeout, 0};
    ldap_set_option(ld, LDAP_OPT_PROTOCOL_VERSION, &version);
    ldap_set_option(ld, LDAP_OPT_NETWORK_TIMEOUT, &timeout);
    ldap_set_option(ld, LDAP_OPT_TIMEOUT, &timeout);
    ldap_set_option(ld, LDAP_OPT_DEREF, &deref);
    ldap_set_option(ld, LDAP_OPT_SIZELIMIT, &size);
    ldap_set_option(ld, LDAP_OPT_REFERRALS, LDAP_OPT_OFF);
    if (l->tls_ca_cert_file)
        ldap_set_option(ld, LDAP_OPT_X_TLS_CACERTFILE, l->tls_ca_cert_file);
    int require = l->tls_require_cert ? LDAP_OPT_X_TLS_DEMAND : LDAP_OPT_X_TLS_NEVER;
    ldap_set_option(ld, LDAP_OPT_X_TLS_REQUIRE_CERT, &require);
    int zero = 0;
    ldap_set_option(ld, LDAP_OPT_X_TLS_NEWCTX, &zero);     /* the options above take effect */
    t->conn = ld;
    if (l->start_tls && (rc = ldap_start_tls_s(ld, NULL, NULL)) != LDAP_SUCCESS) {
        strbuf_printf(err, "StartTLS: %s", ldap_err2string(rc));
        ldap_table_disconnect(t);
        return -1;
    }
    /* a bind also opens the connection, so a server that is down shows
     * here; without bind_dn (or bind = no) it is anonymous */
    struct berval cred = {0, NULL};
    const char *dn = NULL;
    if (l->bind && l->bind_dn) {
        dn = l->bind_dn;
        cred.bv_val = l->bind_pw ? l->bind_pw : (char *)"";
        cred.bv_len = strlen(cred.bv_val);
    }
    rc = ldap_sasl_bind_s(ld, dn, LDAP_SASL_SIMPLE, &cred, NULL, NULL, NULL);
    if (rc != LDAP_SUCCESS) {
        strbuf_printf(err, "bind%s%s: %s", dn ? " as " : "", dn ? dn : "", ldap_err2string(rc));
        ldap_table_disconnect(t);
        return -1;
    }
    return 0;
}

/* RFC 4515: * ( ) \ and NUL in a filter value as \XX. */
static int ldap_table_quote(void *ctx, struct strbuf *out, const char *s, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '*' || c == '(' || c == ')' || c == '\\' || c == 0)
            strbuf_printf(out, "\\%02x", c);
        else
            strbuf_putc(out, (char)c);
    }
    return 0;
}

/* RFC 4514: a value put into search_base (%d and the like) cannot end
 * the RDN or start another: , + " \ < > ; = and a leading # or space as
 * \XX. */
static int dn_quote(void *ctx, struct strbuf *out, const char *s, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (strchr(",+\"\\<>;=", c) || c == 0 || (i == 0 && (c == '#' || c == ' '))
            || (i == len - 1 && c == ' '))
            strbuf_printf(out, "\\%02x", c);
        else
            strbuf_putc(out, (char)c);
    }
    return 0;
}

/* A failed operation: the connection is lost, or the server said no. */
static int failure(int rc, struct strbuf *err)
{
    strbuf_printf(err, "%s", ldap_err2string(rc));
    return rc == LDAP_SERVER_DOWN || rc == LDAP_TIMEOUT || rc == LDAP_CONNECT_ERROR
               ? SQL_CONNECTION_FAILED : SQL_QUERY_FAILED;
}

static int search(struct sql_table *t, const char *base, int scope, const char *filter,
                  int depth, int *budget, struct sql_results *res, struct strbuf *err);

/* Add every value of the entry's attributes in list; the count of
 * values the entry had. */
static int add_values(LDAP *ld, LDAPMessage *entry, const struct strlist *list,
                      struct sql_results *res)
{
    int found = 0;
    for (size_t a = 0; a < list->count; a++) {
        struct berval **values = ldap_get_values_len(ld, entry, list->item[a]);
        for (int v = 0; values && values[v]; v++) {
            found++;
            /* a value with a NUL in it cannot be a result */
            if (memchr(values[v]->bv_val, 0, values[v]->bv_len))
                continue;
            char *value = xstrndup(values[v]->bv_val, values[v]->bv_len);
            sql_result_add(res, value);
            free(value);
        }
        ldap_value_free_len(values);
    }
    return found;
}

/* The results of one entry, in ldap_table(5)'s order: an entry with a
 * terminal_result_attribute gives those values and nothing else; any
 * other gives its result_attribute values, its leaf_result_attribute
 * values when it has no special_result_attribute, and the entries its
 * special_result_attribute DNs name, read in turn. */
static int entry_results(struct sql_table *t, LDAPMessage *entry, int depth, int *budget,
                         struct sql_results *res, struct strbuf *err)
{
    const struct sql_ldap_settings *l = &t->cf.ldap;
    LDAP *ld = t->conn;
    if (add_values(ld, entry, &l->terminal_result_attribute, res) > 0)
        return 0;
    add_values(ld, entry, &l->result_attribute, res);
    int special = 0;
    for (size_t a = 0; a < l->special_result_attribute.count; a++) {
        struct berval **values = ldap_get_values_len(ld, entry, l->special_result_attribute.item[a]);
        int rc = 0;
        for (int v = 0; values && values[v] && rc == 0 && !res->over_limit; v++) {
            special++;
            if (depth >= LDAP_NESTING_LIMIT) {
                strbuf_printf(err, "special_result_attribute nested deeper than %d", LDAP_NESTING_LIMIT);
                rc = SQL_QUERY_FAILED;
                break;
            }
            if (memchr(values[v]->bv_val, 0, values[v]->bv_len))
                continue;
            char *dn = xstrndup(values[v]->bv_val, values[v]->bv_len);
            rc = search(t, dn, LDAP_SCOPE_BASE, "(objectClass=*)", depth + 1, budget, res, err);
            free(dn);
        }
        ldap_value_free_len(values);
        if (rc != 0)
            return rc;
    }
    if (!special)
        add_values(ld, entry, &l->leaf_result_attribute, res);
    return 0;
}

static int search(struct sql_table *t, const char *base, int scope, const char *filter,
                  int depth, int *budget, struct sql_results *res, struct strbuf *err)
{
    /* a group that names itself, or groups that name each other, are
     * searched a bounded number of times per lookup */
    if (--*budget < 0) {
        strbuf_printf(err, "more than %d searches for one key (special_result_attribute)",
                      LDAP_SEARCH_BUDGET);
        return SQL_QUERY_FAILED;
    }
    const struct sql_ldap_settings *l = &t->cf.ldap;
    LDAP *ld = t->conn;
    const struct strlist *lists[] = {&l->result_attribute, &l->special_result_attribute,
                                     &l->terminal_result_attribute, &l->leaf_result_attribute};
    size_t n = 0;
    for (size_t i = 0; i < 4; i++)
        n += lists[i]->count;
    char **attrs = xcalloc(n + 1, sizeof *attrs);
    n = 0;
    for (size_t i = 0; i < 4; i++)
        for (size_t j = 0; j < lists[i]->count; j++)
            attrs[n++] = lists[i]->item[j];
    struct timeval timeout = {t->cf.connect_timeout, 0};
    LDAPMessage *answer = NULL;
    int rc = ldap_search_ext_s(ld, base, scope, filter, attrs, 0, NULL, NULL, &timeout,
                               l->size_limit, &answer);
    free(attrs);
    /* a DN that names nothing (a dangling group member) adds nothing; a
     * search_base made from the key (%d...) that names nothing: not found */
    if (rc == LDAP_NO_SUCH_OBJECT && (depth > 0 || strchr(t->cf.ldap.search_base, '%'))) {
        ldap_msgfree(answer);
        return 0;
    }
    if (rc != LDAP_SUCCESS) {
        ldap_msgfree(answer);
        return failure(rc, err);
    }
    int result = 0;
    /* past expansion_limit the answer is "try again" anyway: stop (a group
     * that names itself would otherwise be searched again and again) */
    for (LDAPMessage *e = ldap_first_entry(ld, answer); e && result == 0 && !res->over_limit;
         e = ldap_next_entry(ld, e))
        result = entry_results(t, e, depth, budget, res, err);
    ldap_msgfree(answer);
    return result;
}

static int ldap_table_run(struct sql_table *t, const char *filter, struct sql_results *res,
                          struct strbuf *err)
{
    static const int scopes[] = {LDAP_SCOPE_BASE, LDAP_SCOPE_ONELEVEL, LDAP_SCOPE_SUBTREE};
    /* search_base may use the key's parts too (%d: one subtree per domain) */
    struct strbuf base = STRBUF_INIT;
    int expanded = sql_expand(t->cf.ldap.search_base, res->key, NULL, dn_quote, NULL, &base, err);
    if (expanded != 1) {
        strbuf_free(&base);
        return expanded == 0 ? 0 : SQL_QUERY_FAILED;
    }
    int budget = LDAP_SEARCH_BUDGET;
    int rc = search(t, base.s, scopes[t->cf.ldap.scope], filter, 0, &budget, res, err);
    strbuf_free(&base);
    return rc;
}

static const struct sql_driver ldap_driver = {
    .type = "ldap", .connect = ldap_table_connect, .disconnect = ldap_table_disconnect,
    .quote = ldap_table_quote, .run = ldap_table_run,
};

static int ldap_table_open(struct map *map, const char *name, struct strbuf *err)
{
    if (sql_table_open(map, &ldap_driver, name, err) != 0)
        return -1;
    const struct sql_table *t = map->data;
    for (size_t i = 0; i < t->cf.hosts.count; i++) {
        struct strbuf url = STRBUF_INIT;
        entry_url(t, t->cf.hosts.item[i], &url);
        int ok = ldap_is_ldap_url(url.s) || ldap_is_ldaps_url(url.s) || ldap_is_ldapi_url(url.s);
        if (!ok)
            strbuf_printf(err, "%s: server_host: cannot read \"%s\"", name, t->cf.hosts.item[i]);
        strbuf_free(&url);
        if (!ok) {
            sql_table_close(map);
            map->data = NULL;
            return -1;
        }
    }
    return 0;
}

const struct map_type map_type_ldap = {
    .name = "ldap", .flags = MAP_FOLD_KEYS | MAP_SLOW, .open = ldap_table_open,
    .lookup = sql_table_lookup, .close = sql_table_close,
};
