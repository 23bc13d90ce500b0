/* regexp_table.c - fuzz the regexp table type (maps/regexp.c, maps/regex_table.c,
 * maps/textlines.c): parsing a table file and searching it. */
#include "table_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {
        "user+ext@example.com", "Subject: make money fast", "", "a\nb", NULL,
    };
    return fuzz_table("regexp", data, size, keys);
}
