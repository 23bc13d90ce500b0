/* sqlite.c - the sqlite table type, sqlite_table(5): an SQLite database
 * file (dbpath), opened read-only.  The settings, the query language and
 * the lookup are shared (maps/sql.c); "connecting" opens the file, keys
 * are quoted by doubling single quotes (sqlite3_mprintf's %q), and a
 * locked database is waited for up to ten seconds. */
#include <sqlite3.h>
#include <string.h>

#include "sql.h"
#include "strbuf.h"

#define SQLITE_BUSY_MS 10000

static int sqlite_table_connect(struct sql_table *t, const char *entry, struct strbuf *err)
{
    (void)entry;                        /* sqlite has no hosts */
    sqlite3 *db = NULL;
    int rc = sqlite3_open_v2(t->cf.dbpath, &db, SQLITE_OPEN_READONLY | SQLITE_OPEN_FULLMUTEX,
                             NULL);
    if (rc != SQLITE_OK) {
        strbuf_printf(err, "%s: %s", t->cf.dbpath, db ? sqlite3_errmsg(db) : sqlite3_errstr(rc));
        sqlite3_close(db);
        return -1;
    }
    sqlite3_busy_timeout(db, SQLITE_BUSY_MS);
    t->conn = db;
    return 0;
}

static void sqlite_table_disconnect(struct sql_table *t)
{
    if (t->conn)
        sqlite3_close(t->conn);
    t->conn = NULL;
}

/* Single quotes doubled; a key holds no NUL. */
static int sqlite_table_quote(void *ctx, struct strbuf *out, const char *s, size_t len)
{
    (void)ctx;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\0')
            return -1;
        if (s[i] == '\'')
            strbuf_putc(out, '\'');
        strbuf_putc(out, s[i]);
    }
    return 0;
}

static int sqlite_table_run(struct sql_table *t, const char *query, struct sql_results *res,
                            struct strbuf *err)
{
    sqlite3 *db = t->conn;
    sqlite3_stmt *stmt = NULL;
    int rc = sqlite3_prepare_v2(db, query, -1, &stmt, NULL);
    if (rc == SQLITE_OK && stmt) {
        int fields = sqlite3_column_count(stmt);
        while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
            for (int j = 0; j < fields; j++)
                sql_result_add(res, (const char *)sqlite3_column_text(stmt, j));
        if (rc == SQLITE_DONE)
            rc = SQLITE_OK;
    }
    if (rc != SQLITE_OK)
        strbuf_printf(err, "%s: %s", t->cf.dbpath, sqlite3_errmsg(db));
    sqlite3_finalize(stmt);
    if (rc == SQLITE_OK)
        return 0;
    /* the file went away or broke: open it again; else the query is wrong */
    int primary = rc & 0xff;
    return primary == SQLITE_IOERR || primary == SQLITE_CORRUPT || primary == SQLITE_NOTADB
                   || primary == SQLITE_CANTOPEN
               ? SQL_CONNECTION_FAILED : SQL_QUERY_FAILED;
}

static const struct sql_driver sqlite_driver = {
    .type = "sqlite", .connect = sqlite_table_connect, .disconnect = sqlite_table_disconnect,
    .quote = sqlite_table_quote, .run = sqlite_table_run,
};

static int sqlite_table_open(struct map *map, const char *name, struct strbuf *err)
{
    return sql_table_open(map, &sqlite_driver, name, err);
}

const struct map_type map_type_sqlite = {
    .name = "sqlite", .flags = MAP_FOLD_KEYS | MAP_SLOW, .open = sqlite_table_open,
    .lookup = sql_table_lookup, .close = sql_table_close,
};
