/* fuzz/sasl_client.c - arbitrary bytes as what a remote server answers the
 * smtp runner's SMTP AUTH (lib/net/saslclient.c): the first line is the
 * server's AUTH mechanism list and the security option list to choose
 * under (split at the first TAB), each further line a 334 challenge's
 * text.  A chosen mechanism is one the server offered; every response is
 * base64 (it goes on the wire as one line). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "saslclient.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A response is base64 only: no CR, LF or NUL can reach the wire. */
static void check_base64(const struct strbuf *out)
{
    for (size_t i = 0; i < out->len; i++) {
        char c = out->s[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '+' || c == '/' || c == '='))
            __builtin_trap();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmemdup0(data, size);
    char *line = text, *nl = strchr(line, '\n');
    if (nl)
        *nl = '\0';
    char *tab = strchr(line, '\t');
    const char *options = "";
    if (tab) {
        *tab = '\0';
        options = tab + 1;
    }
    struct strbuf out = STRBUF_INIT, err = STRBUF_INIT;
    unsigned flags = 0;
    if (saslc_security_parse(options, &flags, &err) != 0)
        flags = 0;
    const char *mech = saslc_choose(line, flags);
    if (mech && !strcasestr(line, mech))
        __builtin_trap();
    if (mech) {
        struct saslc c = {.mech = mech, .user = "user", .password = "secret"};
        saslc_first(&c, &out);
        check_base64(&out);
        for (char *p = nl ? nl + 1 : NULL; p; p = nl ? nl + 1 : NULL) {
            nl = strchr(p, '\n');
            if (nl)
                *nl = '\0';
            if (saslc_next(&c, p, &out, &err) == 0)
                check_base64(&out);
        }
        saslc_free(&c);
    }
    strbuf_free(&out);
    strbuf_free(&err);
    free(text);
    return 0;
}
