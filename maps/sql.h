/* sql.h - what the SQL table types (pgsql:, mysql:, sqlite:) share
 * (private to maps/): the configuration file (pgsql_table(5) and its
 * siblings: "name = value" lines), the query language (%s %u %d %[1-9]
 * %S %U %D %%, Postfix's db_common), the domain filter, and the lookup
 * itself: expand, run, join the rows with commas under expansion_limit,
 * reconnect once.  Each type (maps/pgsql.c, mysql.c, sqlite.c) supplies
 * only connecting, quoting and running a query (struct sql_driver).
 * doc/lookup.md says who opens these tables: the lookup service, and
 * `postern map`; never a static program.
 */
#ifndef POSTERN_SQL_H
#define POSTERN_SQL_H

#include <stddef.h>

#include "map_impl.h"
#include "strlist.h"

struct strbuf;
struct sql_table;

/* The settings of one table's configuration file. */
struct sql_config {
    const char *file;               /* its path, for messages */
    struct strlist hosts;           /* as written: "unix:/x", "inet:h:p", "h:p", "h" */
    char *user, *password, *dbname;
    char *dbpath;                   /* sqlite */
    char *query;                    /* given, or built from the old form */
    char *result_format;            /* default "%s" */
    struct strlist domain;          /* names; empty: every key */
    struct maplist *domain_maps;    /* type:table entries of domain */
    long expansion_limit;           /* 0: none */
    int connect_timeout;            /* seconds */
    /* mysql_table(5) only: the client library's option file and group,
     * and TLS (NULL: not set) */
    char *option_file, *option_group;
    char *tls_cert_file, *tls_key_file, *tls_CAfile, *tls_CApath, *tls_ciphers;
    int tls_verify_cert;
    struct sql_ldap_settings {      /* ldap_table(5) only (hosts: server_host) */
        char *search_base, *bind_dn, *bind_pw;
        struct strlist result_attribute, special_result_attribute;
        struct strlist terminal_result_attribute, leaf_result_attribute;
        int port, scope, bind, version, size_limit, dereference, start_tls;
        char *tls_ca_cert_file;
        int tls_require_cert;
    } ldap;
};

/* Read a configuration file.  `type` says which settings are required
 * (sqlite needs dbpath).  0, or -1 with err set (file:line). */
int sql_config_read(struct sql_config *cf, const char *type, const char *path,
                    struct strbuf *err);
/* Parse configuration text (the fuzz target's entry). */
int sql_config_parse(struct sql_config *cf, const char *type, const char *file,
                     const char *text, size_t len, struct strbuf *err);
void sql_config_free(struct sql_config *cf);

/* Append the quoted form of s[0..len) to out (without the enclosing
 * quotes, which the query template holds).  0, or -1 when it cannot. */
typedef int sql_quote_fn(void *ctx, struct strbuf *out, const char *s, size_t len);

/* Expand a template as Postfix's db_common_expand does.  For a query:
 * value is the key, key NULL, quote the driver's; for result_format:
 * value is a result, key the lookup key, quote NULL (nothing quoted).
 * Lower-case %s %u %d are value's parts, upper-case %S %U %D and %1..%9
 * (the domain's labels, from the right) the key's (value's when key is
 * NULL).  Returns 1 expanded (appended to out), 0 suppressed (a part it
 * asks for is missing or empty: the query is not run, the result is
 * skipped), -1 quoting failed or a template error (err set). */
int sql_expand(const char *format, const char *value, const char *key,
               sql_quote_fn *quote, void *quote_ctx, struct strbuf *out,
               struct strbuf *err);
/* Check a template's syntax at open time: 0, or -1 with err set. */
int sql_check_template(const char *format, const char *what, struct strbuf *err);

/* The results of one query, passed to sql_result_add by the driver. */
struct sql_results {
    const struct sql_config *cf;
    const char *key;
    struct strbuf *value;
    long count;                     /* elements appended */
    int over_limit;
};
/* Add one field of one row (NULL: SQL NULL, skipped). */
void sql_result_add(struct sql_results *res, const char *field);

/* A driver: what a database's client library does for the shared code.
 * The connection lives in the driver's own state (sql_table's conn). */
struct sql_driver {
    const char *type;               /* "pgsql" */
    /* Connect to the given host entry (NULL: the library's default);
     * 0, or -1 with err set. */
    int (*connect)(struct sql_table *t, const char *host, struct strbuf *err);
    void (*disconnect)(struct sql_table *t);
    sql_quote_fn *quote;            /* ctx: the sql_table */
    /* Run the query, handing each field of each row to sql_result_add.
     * 0; SQL_CONNECTION_FAILED with err set (the connection is dropped and
     * made again once); SQL_QUERY_FAILED with err set (the server refused
     * the query; the connection is kept). */
    int (*run)(struct sql_table *t, const char *query, struct sql_results *res,
               struct strbuf *err);
};

#define SQL_CONNECTION_FAILED (-1)
#define SQL_QUERY_FAILED      (-2)

struct sql_table {
    const struct sql_driver *driver;
    struct sql_config cf;
    const char *spec;               /* "pgsql:/etc/..." for log lines */
    void *conn;                     /* the driver's connection, NULL: none */
    unsigned long connections;      /* opened so far */
    double *failed_at;              /* per host: monotonic time of its last failure, 0 */
};

/* Seconds a host that failed is passed over while another is usable
 * (Postfix's dict_pgsql/dict_mysql wait 60 s). */
#define SQL_HOST_RETRY_INTERVAL 60

/* The open, lookup and close of every SQL type. */
int sql_table_open(struct map *map, const struct sql_driver *driver, const char *name,
                   struct strbuf *err);
int sql_table_lookup(struct map *map, const char *key, struct strbuf *value);
void sql_table_close(struct map *map);

/* 1 when s is valid UTF-8 (keys that are not are never sent). */
int sql_valid_utf8(const char *s, size_t len);

/* The host entry's parts: unix:PATH gives *path; inet:HOST:PORT, HOST:PORT
 * and HOST give *host and *port (0 when none).  Returns 0, or -1 when the
 * entry is malformed.  The strings point into a copy the caller frees
 * (*copy). */
/* 1 when a hosts entry is a PostgreSQL connection URI (postgresql://...,
 * postgres://...), which pgsql: passes to libpq whole. */
int sql_host_is_uri(const char *entry);
int sql_host_parse(const char *entry, char **copy, const char **path,
                   const char **host, unsigned *port);

#endif
