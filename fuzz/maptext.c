/* maptext.c - fuzz the postmap(1) source parser (maps/maptext.c and the
 * logical-line reader), and the in-memory table it fills. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "maptext.h"
#include "strbuf.h"
#include "strtable.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Check what the parser hands out and keep it, as texthash does. */
static void take_entry(const char *key, const char *value, int lineno, void *ctx)
{
    if (!*key || !*value || lineno < 1 || strchr(key, ' ') || strchr(key, '\n'))
        __builtin_trap();
    strtable_put(ctx, key, value, 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf err = STRBUF_INIT;
    struct strtable *table = strtable_new();
    unsigned flags = size && (data[0] & 1) ? MAPTEXT_KEEP_CASE : 0;
    int bad = maptext_parse("fuzz", (const char *)data, size, flags, take_entry, table, &err);
    if ((bad > 0) != (err.len > 0))
        __builtin_trap();
    for (size_t i = 0; i < strtable_count(table); i++)
        if (!strtable_get(table, strtable_key(table, i)))
            __builtin_trap();
    strtable_free(table);
    strbuf_free(&err);
    return 0;
}
