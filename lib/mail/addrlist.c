/* addrlist.c - the addresses in an address-list (addrlist.h). */
#include <string.h>

#include "addrlist.h"
#include "strbuf.h"

/* Skip a quoted string, comment or domain literal starting at text[i];
 * returns the index after it (or the end of text when unterminated). */
static size_t skip_delimited(const char *text, size_t i)
{
    char open = text[i];
    char close = open == '"' ? '"' : open == '(' ? ')' : ']';
    int depth = 1;
    for (i++; text[i]; i++) {
        if (text[i] == '\\' && text[i + 1]) {
            i++;
        } else if (open == '(' && text[i] == '(') {
            depth++;
        } else if (text[i] == close && --depth == 0) {
            return i + 1;
        }
    }
    return i;
}

/* Find the addr-spec in text[start..end) and report it. */
static size_t report_entry(const char *text, size_t start, size_t end,
                           int have_angle, size_t angle_start, size_t angle_end,
                           addrlist_fn *fn, void *ctx)
{
    if (have_angle) {
        start = angle_start;
        end = angle_end;
        /* an obsolete source route "@a,@b:user@c" keeps only user@c */
        if (text[start] == '@') {
            const char *colon = memchr(text + start, ':', end - start);
            if (colon)
                start = (size_t)(colon - text) + 1;
        }
    }
    struct strbuf address = STRBUF_INIT;
    size_t first = end, last = start;
    for (size_t i = start; i < end;) {
        char c = text[i];
        if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
            i++;
        } else if (c == '(') {
            i = skip_delimited(text, i);
        } else {
            size_t next = (c == '"' || c == '[') ? skip_delimited(text, i) : i + 1;
            if (next > end)
                next = end;
            if (first == end)
                first = i;
            strbuf_append(&address, text + i, next - i);
            last = next;
            i = next;
        }
    }
    size_t found = 0;
    if (address.len > 0) {
        fn(text, first, last, strbuf_str(&address), ctx);
        found = 1;
    }
    strbuf_free(&address);
    return found;
}

size_t addrlist_scan(const char *text, addrlist_fn *fn, void *ctx)
{
    size_t count = 0, entry = 0, angle_start = 0, angle_end = 0;
    size_t i = 0;
    int have_angle = 0;
    for (;;) {
        char c = text[i];
        if (c == '\0' || c == ',' || c == ';') {
            count += report_entry(text, entry, i, have_angle, angle_start,
                                  angle_end, fn, ctx);
            if (c == '\0')
                break;
            entry = ++i;
            have_angle = 0;
        } else if (c == '"' || c == '(' || c == '[') {
            i = skip_delimited(text, i);
        } else if (c == '<') {
            size_t j = i + 1;
            while (text[j] && text[j] != '>') {
                if (text[j] == '"')
                    j = skip_delimited(text, j);
                else
                    j++;
            }
            have_angle = 1;
            angle_start = i + 1;
            angle_end = j;
            i = text[j] ? j + 1 : j;
        } else if (c == ':') {
            /* "group name:" starts a group; its members are entries */
            entry = ++i;
            have_angle = 0;
        } else {
            i++;
        }
    }
    return count;
}
