/* pgsql.c - the pgsql table type, pgsql_table(5): PostgreSQL through
 * libpq.  The settings, the query language and the lookup are shared with
 * mysql: and sqlite: (maps/sql.c); this file connects (hosts in the order
 * written: "unix:/run/postgresql" a socket directory, or its socket
 * "unix:/run/postgresql/.s.PGSQL.5433" for another port, "inet:HOST:PORT",
 * "HOST:PORT", "HOST"; none: libpq's defaults, PGHOST and PGPORT), quotes
 * keys with PQescapeStringConn and runs the query.  libpq loads plugins
 * (GSSAPI, LDAP service lookups): only dynamically linked programs link
 * this file (map_register_dynamic_types()). */
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

static int pgsql_connect(struct sql_table *t, const char *entry, struct strbuf *err)
{
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
    PGconn *conn = PQconnectdbParams(keys, values, 0);
    free(copy);
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
    return sql_table_open(map, &pgsql_driver, name, err);
}

const struct map_type map_type_pgsql = {
    .name = "pgsql", .flags = MAP_FOLD_KEYS | MAP_SLOW, .open = pgsql_open,
    .lookup = sql_table_lookup, .close = sql_table_close,
};
