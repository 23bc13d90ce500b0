/* socketmap_reply.c - fuzz the socketmap table's reply parser
 * (maps/socketmap.c, socketmap_reply): what a socketmap server (an
 * MTA-STS policy server, say) sends back.  Replies are read one after the
 * other from the input as a connection would deliver them; a reply is
 * taken whole or not at all, never past the bytes there are. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "map_impl.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf value = STRBUF_INIT;
    size_t at = 0;
    while (at < size) {
        size_t used = 0;
        int r = socketmap_reply((const char *)data + at, size - at, &used, &value);
        if (r == SOCKETMAP_MORE || r == SOCKETMAP_MALFORMED)
            break;
        if (r != MAP_FOUND && r != MAP_NOTFOUND && r != MAP_RETRY)
            __builtin_trap();
        if (used < 3 || used > size - at)
            __builtin_trap();
        if (r == MAP_FOUND && value.len && memchr(value.s, '\0', value.len))
            __builtin_trap();
        at += used;
    }
    strbuf_free(&value);
    return 0;
}
