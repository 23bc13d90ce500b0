/* cidr_table.c - fuzz the cidr table type (maps/cidr.c,
 * maps/textlines.c): parsing a table file and searching it. */
#include "table_fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const keys[] = {
        "192.168.1.1", "10.0.0.0", "2001:db8::1", "::ffff:1.2.3.4", "::", "1.2.3", NULL,
    };
    return fuzz_table("cidr", data, size, keys);
}
