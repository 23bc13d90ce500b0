/* maildir_filter.c - fuzz the VDA patch's filter parsers
 * (lib/mail/maildirfilter.c): the header string the rules see, built from
 * any message start, and a table's value turned into the filter file. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "maildirfilter.h"
#include "strbuf.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf out = STRBUF_INIT;
    maildir_filter_header((const char *)data, size, &out);
    /* bounded, one line per header line, no upper case left */
    if (out.len > MAILDIR_FILTER_HEADER_MAX + MAILDIR_FILTER_LINE_MAX + 1)
        __builtin_trap();
    for (size_t i = 0; i < out.len; i++)
        if (out.s[i] >= 'A' && out.s[i] <= 'Z')
            __builtin_trap();
    char *text = xmemdup0(data, size);
    long long stamp = 0;
    if (maildir_filter_table_text(text, &out, &stamp)) {
        if (stamp == 0 || out.len == 0 || out.s[out.len - 1] != '\n' || memchr(out.s, '\r', out.len)
            || strncmp(out.s, "# M", 3) != 0)
            __builtin_trap();
    }
    free(text);
    strbuf_free(&out);
    return 0;
}
