/* ccert_argument.c - fuzz check_ccert_access's argument parser
 * (lib/conf/restrictions.c: "type:table, { search_order = ... }"). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "restrictions.h"
#include "strbuf.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A parse gives a table with a ':' and an order of one or two of 'c' and
 * 'p'; a failure says why. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmemdup0(data, size);
    struct strbuf table = STRBUF_INIT, err = STRBUF_INIT;
    char order[3];
    if (restriction_ccert_argument(text, &table, order, &err) == 0) {
        size_t n = strlen(order);
        if (!strchr(strbuf_str(&table), ':') || n < 1 || n > 2 || strspn(order, "cp") != n)
            __builtin_trap();
    } else if (!err.len) {
        __builtin_trap();
    }
    strbuf_free(&table);
    strbuf_free(&err);
    free(text);
    return 0;
}
