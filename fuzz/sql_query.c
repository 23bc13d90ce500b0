/* sql_query.c - fuzz the SQL tables' configuration reader and query
 * template expander (maps/sql.c): the input is a .cf file, a NUL, then a
 * key.  The query is expanded with a quoting function like the drivers'
 * (quotes doubled) and the result_format with the key as a result; the
 * expander must never let a quote of the key out unquoted. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "log.h"
#include "sql.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Double single quotes, as sqlite's driver does; count what it quoted. */
static int quote_doubling(void *ctx, struct strbuf *out, const char *s, size_t len)
{
    size_t *quoted = ctx;
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\'')
            strbuf_putc(out, '\'');
        strbuf_putc(out, s[i]);
    }
    *quoted += len;
    return 0;
}

/* Quotes in text outside doubled pairs. */
static size_t lone_quotes(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++) {
        if (*p != '\'')
            continue;
        if (p[1] == '\'')
            p++;
        else
            n++;
    }
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int logging;
    if (!logging) {
        log_open("fuzz", 0);
        logging = 1;
    }
    const char *text = (const char *)data;
    const char *nul = memchr(text, '\0', size);
    size_t cf_len = nul ? (size_t)(nul - text) : size;
    /* "domain = type:table" would open files the input names */
    if (memmem(text, cf_len, "domain", 6))
        return 0;
    struct strbuf key = STRBUF_INIT, err = STRBUF_INIT, out = STRBUF_INIT;
    if (nul)
        strbuf_append(&key, nul + 1, strnlen(nul + 1, size - cf_len - 1));
    struct sql_config cf;
    static const char *const types[] = {"pgsql", "sqlite", "mysql", "ldap"};
    const char *type = types[size ? data[0] & 3 : 0];
    if (sql_config_parse(&cf, type, "fuzz.cf", text, cf_len, &err) == 0) {
        if (!cf.query || !cf.result_format)
            __builtin_trap();
        size_t quoted = 0;
        int r = sql_expand(cf.query, strbuf_str(&key), NULL, quote_doubling, &quoted, &out, &err);
        if (r < 0 || (r == 0 && out.len))
            __builtin_trap();           /* checked at open; suppressed means empty */
        /* the key's quotes are all doubled: lone quotes come from the template */
        if (r == 1 && lone_quotes(strbuf_str(&out)) > lone_quotes(cf.query))
            __builtin_trap();
        strbuf_reset(&out);
        if (sql_expand(cf.result_format, strbuf_str(&key), "user@a.b.example", NULL, NULL, &out,
                       &err) < 0)
            __builtin_trap();
        sql_config_free(&cf);
    } else if (!err.len) {
        __builtin_trap();
    }
    strbuf_free(&key);
    strbuf_free(&err);
    strbuf_free(&out);
    return 0;
}
