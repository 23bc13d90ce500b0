/* lookup_proto.c - formatting and parsing the lookup service's requests
 * and answers (lookup_proto.h, doc/lookup.md).  The parser sees bytes
 * from any local process: it checks every bound before it trusts a byte. */
#include <stdio.h>
#include <string.h>

#include "lookup_proto.h"
#include "map.h"
#include "strbuf.h"

int lookup_request_format(struct strbuf *out, const char *table, unsigned options,
                          const char *key)
{
    size_t table_len = strlen(table), key_len = strlen(key);
    if (table_len == 0 || table_len > LOOKUP_TABLE_MAX || key_len > LOOKUP_KEY_MAX
        || (options & ~(unsigned)(MAP_OPEN_KEEP_CASE | MAP_OPEN_NO_REGSUB)))
        return -1;
    strbuf_putc(out, 'L');
    strbuf_append(out, table, table_len + 1);
    if (options & MAP_OPEN_KEEP_CASE)
        strbuf_putc(out, LOOKUP_OPT_KEEP_CASE);
    if (options & MAP_OPEN_NO_REGSUB)
        strbuf_putc(out, LOOKUP_OPT_NO_REGSUB);
    strbuf_append(out, "", 1);
    strbuf_append(out, key, key_len + 1);
    return 0;
}

/* The field that starts at buf[*pos]: its length through the NUL into
 * *field_len.  1 found, 0 no NUL yet (and none can come within max), -1
 * longer than max. */
static int next_field(const char *buf, size_t len, size_t pos, size_t max, size_t *field_len)
{
    size_t avail = len - pos;
    const char *nul = memchr(buf + pos, '\0', avail < max + 1 ? avail : max + 1);
    if (nul) {
        *field_len = (size_t)(nul - (buf + pos));
        return 1;
    }
    return avail > max ? -1 : 0;
}

int lookup_request_parse(char *buf, size_t len, struct lookup_request *req,
                         size_t *used, struct strbuf *err)
{
    if (len == 0)
        return 0;
    if (buf[0] != 'L') {
        strbuf_printf(err, "unknown request type 0x%02x", (unsigned char)buf[0]);
        return -1;
    }
    static const struct {
        const char *what;
        size_t max;
    } fields[] = {
        {"table name", LOOKUP_TABLE_MAX},
        {"options", LOOKUP_OPTIONS_MAX},
        {"key", LOOKUP_KEY_MAX},
    };
    size_t start[3], pos = 1;
    for (size_t i = 0; i < 3; i++) {
        size_t field_len;
        int r = next_field(buf, len, pos, fields[i].max, &field_len);
        if (r < 0) {
            strbuf_printf(err, "%s longer than %zu bytes", fields[i].what, fields[i].max);
            return -1;
        }
        if (r == 0)
            return 0;
        start[i] = pos;
        pos += field_len + 1;
    }
    req->table = buf + start[0];
    req->key = buf + start[2];
    req->options = 0;
    if (!*req->table || !strchr(req->table, ':')) {
        strbuf_puts(err, "table name is not type:name");
        return -1;
    }
    for (const char *o = buf + start[1]; *o; o++) {
        if (*o == LOOKUP_OPT_KEEP_CASE)
            req->options |= MAP_OPEN_KEEP_CASE;
        else if (*o == LOOKUP_OPT_NO_REGSUB)
            req->options |= MAP_OPEN_NO_REGSUB;
        else {
            strbuf_printf(err, "unknown option 0x%02x", (unsigned char)*o);
            return -1;
        }
    }
    *used = pos;
    return 1;
}

void lookup_reply_format(struct strbuf *out, int status, const char *text)
{
    size_t n = strlen(text);
    if (n > LOOKUP_VALUE_MAX) {
        strbuf_putc(out, LOOKUP_RETRY);
        strbuf_printf(out, "value longer than %d bytes", LOOKUP_VALUE_MAX);
        strbuf_append(out, "", 1);
        return;
    }
    strbuf_putc(out, status);
    strbuf_append(out, text, n + 1);
}
