/* pcre_table.c - fuzz the pcre table type (maps/pcre.c, maps/regex_table.c,
 * maps/textlines.c): parsing a table file and searching it. */
#include "table_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {
        "user+ext@example.com", "Subject: make money fast", "", "a\nb", NULL,
    };
    return fuzz_table("pcre", data, size, keys);
}
