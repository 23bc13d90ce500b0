/* clientlist.c - fuzz the client address-list parser and matcher
 * (lib/clientlist.c).  Inputs that name files ("/...") are skipped: the
 * parser would read whatever file the input names. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "clientlist.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 4096 || memchr(data, '/', size) || memchr(data, '\0', size))
        return 0;
    char *text = strndup((const char *)data, size);
    if (!text)
        return 0;
    struct strbuf err = STRBUF_INIT, warnings = STRBUF_INIT;
    struct clientlist *list = clientlist_parse(text, "fuzz", &err, &warnings);
    if ((list == NULL) != (err.len > 0))
        __builtin_trap();
    if (list) {
        static const char *const probes[] = {"127.0.0.1", "192.0.2.1", "::1", "2001:db8::1",
                                             "::ffff:10.1.2.3", "0.0.0.0"};
        for (size_t i = 0; i < sizeof probes / sizeof probes[0]; i++) {
            int r = clientlist_match_text(list, probes[i]);
            if (r < -1 || r > 1)
                __builtin_trap();
        }
        clientlist_free(list);
    }
    strbuf_free(&err);
    strbuf_free(&warnings);
    free(text);
    return 0;
}
