/* verify_request.c - fuzz the verify service's parsers (lib/mail/
 * verify_proto.c): requests as a client's connection delivers them one
 * after the other (verify_request_parse), and cache entries as a journal
 * line holds them (verify_entry_parse, then formatted and parsed again:
 * the same entry).  A request is taken whole or not at all, never past
 * the bytes there are. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "verify_proto.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The input as a journal entry: what parses formats back to itself. */
static void entry_round_trip(const uint8_t *data, size_t size)
{
    char *text = xmemdup0(data, size);
    struct verify_entry e, again;
    if (strlen(text) == size && !strpbrk(text, "\r\n") && verify_entry_parse(text, &e) == 0) {
        struct strbuf out = STRBUF_INIT;
        verify_entry_format(&e, &out);
        if (verify_entry_parse(strbuf_str(&out), &again) != 0 || again.status != e.status
            || again.probed != e.probed || again.updated != e.updated
            || strcmp(again.text, e.text) != 0)
            __builtin_trap();
        strbuf_free(&out);
    }
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct strbuf err = STRBUF_INIT;
    size_t at = 0;
    while (at < size) {
        struct verify_request req;
        long n = verify_request_parse((const char *)data + at, size - at, &req, &err);
        if (n <= 0)
            break;
        if ((size_t)n > size - at || !req.address || !*req.address
            || strlen(req.address) > VERIFY_ADDRESS_MAX)
            __builtin_trap();
        if (req.type == VERIFY_UPDATE && (!req.text || strlen(req.text) > VERIFY_TEXT_MAX))
            __builtin_trap();
        at += (size_t)n;
    }
    strbuf_free(&err);
    entry_round_trip(data, size);
    return 0;
}
