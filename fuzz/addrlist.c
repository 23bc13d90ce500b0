/* addrlist.c - fuzz the address-list scanner (lib/mail/addrlist.c) used on
 * header values and sendmail arguments. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addrlist.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Every span is inside the text and the address is not empty. */
static void check_address(const char *text, size_t start, size_t end,
                          const char *address, void *ctx)
{
    size_t len = *(size_t *)ctx;
    if (start > end || end > len || !*address || strlen(address) > len)
        __builtin_trap();
    (void)text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmemdup0(data, size);
    size_t len = strlen(text);
    size_t count = addrlist_scan(text, check_address, &len);
    if (count > len)
        __builtin_trap();
    free(text);
    return 0;
}
