/* tlsrpt_txt.c - fuzz the _smtp._tls TXT record parser (lib/mail/
 * tlsrpt.c, RFC 8460 section 3): every URI it keeps is mailto:ADDRESS
 * with an '@' and no white space, or https:... without white space. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "strlist.h"
#include "tlsrpt.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmemdup0(data, size);
    struct strlist rua = STRLIST_INIT;
    int rc = tlsrpt_txt_parse(text, &rua);
    if ((rc == 0) != (rua.count > 0))
        __builtin_trap();
    for (size_t i = 0; i < rua.count; i++) {
        const char *u = rua.item[i];
        if (strpbrk(u, " \t\r\n"))
            __builtin_trap();
        if (strncasecmp(u, "mailto:", 7) == 0) {
            if (!strchr(u + 7, '@'))
                __builtin_trap();
        } else if (strncasecmp(u, "https://", 8) != 0) {
            __builtin_trap();
        }
    }
    strlist_free(&rua);
    free(text);
    return 0;
}
