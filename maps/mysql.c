/* mysql.c - the mysql table type, mysql_table(5): MySQL and MariaDB
 * through MariaDB's client library.  The settings, the query language and
 * the lookup are shared (maps/sql.c); this file connects (hosts:
 * "unix:/run/mysqld/mysqld.sock" a socket, "inet:HOST:PORT", "HOST:PORT",
 * "HOST"; none: the library's default socket; option_file, option_group
 * and the tls_* settings), quotes keys with mysql_real_escape_string and
 * runs the query.  The library loads
 * authentication plugins: only dynamically linked programs link this file
 * (map_register_dynamic_types()). */
#include <errmsg.h>
#include <mysql.h>
#include <stdlib.h>
#include <string.h>

#include "sql.h"
#include "strbuf.h"

static int mysql_table_connect(struct sql_table *t, const char *entry, struct strbuf *err)
{
    char *copy = NULL;
    const char *path = NULL, *host = NULL;
    unsigned port = 0;
    if (entry)
        sql_host_parse(entry, &copy, &path, &host, &port);    /* checked at open */
    MYSQL *m = mysql_init(NULL);
    if (!m) {
        free(copy);
        strbuf_puts(err, "out of memory");
        return -1;
    }
    unsigned timeout = (unsigned)t->cf.connect_timeout;
    unsigned io_timeout = 30;
    mysql_options(m, MYSQL_OPT_CONNECT_TIMEOUT, &timeout);
    mysql_options(m, MYSQL_OPT_READ_TIMEOUT, &io_timeout);
    mysql_options(m, MYSQL_OPT_WRITE_TIMEOUT, &io_timeout);
    mysql_options(m, MYSQL_SET_CHARSET_NAME, "utf8mb4");
    /* mysql_table(5): option_file and option_group ("client" by default
     * since Postfix 3.2), then TLS; the file's settings apply only where
     * the table's do not */
    if (t->cf.option_file)
        mysql_options(m, MYSQL_READ_DEFAULT_FILE, t->cf.option_file);
    mysql_options(m, MYSQL_READ_DEFAULT_GROUP, t->cf.option_group ? t->cf.option_group : "client");
    if (t->cf.tls_cert_file || t->cf.tls_key_file || t->cf.tls_CAfile || t->cf.tls_CApath
        || t->cf.tls_ciphers) {
        mysql_ssl_set(m, t->cf.tls_key_file, t->cf.tls_cert_file, t->cf.tls_CAfile,
                      t->cf.tls_CApath, t->cf.tls_ciphers);
        my_bool enforce = 1, verify = t->cf.tls_verify_cert ? 1 : 0;
        mysql_options(m, MYSQL_OPT_SSL_ENFORCE, &enforce);
        mysql_options(m, MYSQL_OPT_SSL_VERIFY_SERVER_CERT, &verify);
    }
    if (host && strcmp(host, "localhost") == 0 && port)
        host = "127.0.0.1";             /* "localhost" would mean the socket */
    if (!mysql_real_connect(m, path ? "localhost" : host, t->cf.user, t->cf.password,
                            t->cf.dbname, port, path, 0)) {
        strbuf_puts(err, mysql_error(m));
        mysql_close(m);
        free(copy);
        return -1;
    }
    free(copy);
    t->conn = m;
    return 0;
}

static void mysql_table_disconnect(struct sql_table *t)
{
    if (t->conn)
        mysql_close(t->conn);
    t->conn = NULL;
}

/* mysql_real_escape_string: quotes, backslashes, NUL, CR, LF, ^Z. */
static int mysql_table_quote(void *ctx, struct strbuf *out, const char *s, size_t len)
{
    struct sql_table *t = ctx;
    strbuf_grow(out, 2 * len + 1);
    unsigned long n = mysql_real_escape_string(t->conn, out->s + out->len, s,
                                               (unsigned long)len);
    if (n == (unsigned long)-1) {
        out->s[out->len] = '\0';
        return -1;
    }
    out->len += n;
    return 0;
}

/* Is the error one of a lost connection (not of the query)? */
static int connection_lost(unsigned code)
{
    return code == CR_SERVER_GONE_ERROR || code == CR_SERVER_LOST
           || code == CR_CONNECTION_ERROR || code == CR_CONN_HOST_ERROR
           || code == CR_COMMANDS_OUT_OF_SYNC || code == CR_UNKNOWN_ERROR;
}

static int mysql_table_run(struct sql_table *t, const char *query, struct sql_results *res,
                           struct strbuf *err)
{
    MYSQL *m = t->conn;
    if (mysql_real_query(m, query, strlen(query)) != 0) {
        strbuf_puts(err, mysql_error(m));
        return connection_lost(mysql_errno(m)) ? SQL_CONNECTION_FAILED : SQL_QUERY_FAILED;
    }
    MYSQL_RES *r = mysql_store_result(m);
    if (!r) {
        if (mysql_errno(m)) {
            strbuf_puts(err, mysql_error(m));
            return connection_lost(mysql_errno(m)) ? SQL_CONNECTION_FAILED : SQL_QUERY_FAILED;
        }
        return 0;                       /* a statement without rows */
    }
    unsigned fields = mysql_num_fields(r);
    MYSQL_ROW row;
    while ((row = mysql_fetch_row(r)))
        for (unsigned j = 0; j < fields; j++)
            sql_result_add(res, row[j]);
    mysql_free_result(r);
    /* further result sets (a procedure's) are read and dropped */
    while (mysql_next_result(m) == 0) {
        MYSQL_RES *more = mysql_store_result(m);
        if (more)
            mysql_free_result(more);
    }
    return 0;
}

static const struct sql_driver mysql_driver = {
    .type = "mysql", .connect = mysql_table_connect, .disconnect = mysql_table_disconnect,
    .quote = mysql_table_quote, .run = mysql_table_run,
};

static int mysql_table_open(struct map *map, const char *name, struct strbuf *err)
{
    /* once, before any thread of the lookup service connects */
    static int library_ready;
    if (!library_ready && mysql_library_init(0, NULL, NULL) != 0) {
        strbuf_puts(err, "the MariaDB client library cannot start");
        return -1;
    }
    library_ready = 1;
    return sql_table_open(map, &mysql_driver, name, err);
}

const struct map_type map_type_mysql = {
    .name = "mysql", .flags = MAP_FOLD_KEYS | MAP_SLOW, .open = mysql_table_open,
    .lookup = sql_table_lookup, .close = sql_table_close,
};
