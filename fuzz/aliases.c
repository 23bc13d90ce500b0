/* aliases.c - fuzz the aliases(5) source parser (maps/aliastext.c). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "maptext.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Check what the parser hands out. */
static void take_entry(const char *key, const char *value, int lineno, void *ctx)
{
    (void)ctx;
    if (!*key || !*value || lineno < 1 || strchr(value, '\n'))
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf err = STRBUF_INIT;
    int bad = aliases_parse("fuzz", (const char *)data, size, 0, take_entry, NULL, &err);
    if ((bad > 0) != (err.len > 0))
        __builtin_trap();
    strbuf_free(&err);
    return 0;
}
