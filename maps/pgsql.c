/* pgsql.c - the pgsql table type, pgsql_table(5): PostgreSQL through
 * libpq.  The settings, the query language and the lookup are shared with
 * mysql: and sqlite: (maps/sql.c); this file connects, quotes keys with
 * PQescapeStringConn and runs the query.  A hosts entry is a socket
 * directory "unix:/run/postgresql", its socket
 * "unix:/run/postgresql/.s.PGSQL.5433" (another port), "inet:HOST:PORT",
 * "HOST:PORT", "HOST", or a connection URI "postgresql://..." whose
 * settings (TLS's among them) libpq reads; none: libpq's defaults.  libpq
 * loads plugins (GSSAPI, LDAP service lookups): only dynamically linked
 * programs link this file (map_register_dynamic_types()). */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"
#include "strbuf.h"
#include "xalloc.h"

/* libpq's notices (a query's warnings) go nowhere: the answer is what counts */
static void ignore_notice(void *arg, const char *message)
{
    (void)arg;
    (void)message;
}

/* Connect with keyword/value pairs; 0, or -1 with err set. */
static int pgsql_connect_params(struct sql_table *t, const char *const *keys,
                                const char *const *values, struct strbuf *err)
{
    PGconn *conn = PQconnectdbParams(keys, values, 0);
    if (!conn) {
        strbuf_puts(err, "out of memory");
        return -1;
    }
    if (PQstatus(conn) != CONNECTION_OK) {
        strbuf_puts(err, PQerrorMessage(conn));
        PQfinish(conn);
        return -1;
    }
    PQsetNoticeProcessor(conn, ignore_notice, NULL);
    t->conn = conn;
    return 0;
}

/* A connection URI (Postfix 3.6's hosts = postgresql://...): its
 * settings (sslmode, sslrootcert, host, port, dbname, ...) win; user,
 * password and dbname of the file fill in what it does not say. */
static int pgsql_connect_uri(struct sql_table *t, const char *uri, struct strbuf *err)
{
    char *why = NULL;
    PQconninfoOption *options = PQconninfoParse(uri, &why);
    if (!options) {
        strbuf_printf(err, "cannot read the connection URI: %s", why ? why : "out of memory");
        PQfreemem(why);
        return -1;
    }
    size_t count = 0;
    for (PQconninfoOption *o = options; o->keyword; o++)
        count++;
    const char **keys = xcalloc(count + 6, sizeof *keys), **values = xcalloc(count + 6, sizeof *values);
    char timeout[16];
    snprintf(timeout, sizeof timeout, "%d", t->cf.connect_timeout);
    size_t n = 0;
    const char *defaults[][2] = {
        {"user", t->cf.user}, {"password", t->cf.password}, {"dbname", t->cf.dbname},
        {"connect_timeout", timeout}, {"client_encoding", "UTF8"},
    };
    for (size_t i = 0; i < sizeof defaults / sizeof defaults[0]; i++)
        if (defaults[i][1]) {
            keys[n] = defaults[i][0];
            values[n++] = defaults[i][1];
        }
    for (PQconninfoOption *o = options; o->keyword; o++)
        if (o->val) {           /* later pairs override earlier ones */
            keys[n] = o->keyword;
            values[n++] = o->val;
        }
    keys[n] = values[n] = NULL;
    int rc = pgsql_connect_params(t, keys, values, err);
    free(keys);
    free(values);
    PQconninfoFree(options);
    return rc;
}

static int pgsql_connect(struct sql_table *t, const char *entry, struct strbuf *err)
{
    if (entry && sql_host_is_uri(entry))
        return pgsql_connect_uri(t, entry, err);
    char *copy = NULL;
    const char *path = NULL, *host = NULL;
    unsigned port = 0;
    char port_text[16] = "", timeout[16];
    if (entry)
        sql_host_parse(entry, &copy, &path, &host, &port);    /* checked at open */
    char *sockname = path ? strrchr(path, '/') : NULL;
    if (sockname && strncmp(sockname, "/.s.PGSQL.", 10) == 0 && atoi(sockname + 10) > 0) {
        /* the socket itself: libpq wants its directory and port */
        port = (unsigned)atoi(sockname + 10);
        *sockname = '\0';
        if (!*path)
            path = "/";
    }
    if (port)
        snprintf(port_text, sizeof port_text, "%u", port);
    snprintf(timeout, sizeof timeout, "%d", t->cf.connect_timeout);
    const char *keys[8], *values[8];
    int n = 0;
    if (path || host) {
        keys[n] = "host";
        values[n++] = path ? path : host;
    }
    if (port) {
        keys[n] = "port";
        values[n++] = port_text;
    }
    if (t->cf.user) {
        keys[n] = "user";
        values[n++] = t->cf.user;
    }
    if (t->cf.password) {
        keys[n] = "password";
        values[n++] = t->cf.password;
    }
    keys[n] = "dbname";
    values[n++] = t->cf.dbname;
    keys[n] = "connect_timeout";
    values[n++] = timeout;
    keys[n] = "client_encoding";
    values[n++] = "UTF8";
    keys[n] = NULL;
    values[n] = NULL;
    int rc = pgsql_connect_params(t, keys, values, err);
    free(copy);
    return rc;
}

static void pgsql_disconnect(struct sql_table *t)
{
    if (t->conn)
        PQfinish(t->conn);
    t->conn = NULL;
}

/* PQescapeStringConn: quotes doubled, backslashes as the server reads them. */
static int pgsql_quote(void *ctx, struct strbuf *out, const char *s, size_t len)
{
    struct sql_table *t = ctx;
    int error = 0;
    strbuf_grow(out, 2 * len + 1);
    size_t n = PQescapeStringConn(t->conn, out->s + out->len, s, len, &error);
    if (error) {
        out->s[out->len] = '\0';
        return -1;
    }
    out->len += n;
    return 0;
}

static int pgsql_run(struct sql_table *t, const char *query, struct sql_results *res,
                     struct strbuf *err)
{
    PGresult *r = PQexec(t->conn, query);
    if (!r || PQresultStatus(r) != PGRES_TUPLES_OK) {
        int lost = PQstatus(t->conn) != CONNECTION_OK;
        const char *why = r ? PQresultErrorMessage(r) : "";
        strbuf_puts(err, *why ? why : PQerrorMessage(t->conn));
        strbuf_trim_end(err);
        if (!err->len)
            strbuf_puts(err, "the query failed");
        PQclear(r);
        return lost ? SQL_CONNECTION_FAILED : SQL_QUERY_FAILED;
    }
    int rows = PQntuples(r), fields = PQnfields(r);
    for (int i = 0; i < rows; i++)
        for (int j = 0; j < fields; j++)
            sql_result_add(res, PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j));
    PQclear(r);
    return 0;
}

static const struct sql_driver pgsql_driver = {
    .type = "pgsql", .connect = pgsql_connect, .disconnect = pgsql_disconnect,
    .quote = pgsql_quote, .run = pgsql_run,
};

static int pgsql_open(struct map *map, const char *name, struct strbuf *err)
{
    if (sql_table_open(map, &pgsql_driver, name, err) != 0)
        return -1;
    const struct sql_table *t = map->data;
    for (size_t i = 0; i < t->cf.hosts.count; i++) {
        const char *entry = t->cf.hosts.item[i];
        char *why = NULL;
        PQconninfoOption *options = sql_host_is_uri(entry) ? PQconninfoParse(entry, &why) : NULL;
        if (sql_host_is_uri(entry) && !options) {
            strbuf_printf(err, "%s: hosts: cannot read the connection URI: %s", name,
                          why ? why : "out of memory");
            PQfreemem(why);
            sql_table_close(map);
            map->data = NULL;
            return -1;
        }
        PQconninfoFree(options);
    }
    return 0;
}

const struct map_type map_type_pgsql = {
    .name = "pgsql", .flags = MAP_FOLD_KEYS | MAP_SLOW, .open = pgsql_open,
    .lookup = sql_table_lookup, .close = sql_table_close,
};
