/* addrmatch.c - fuzz the client address-match lists (lib/conf/addrmatch.c):
 * the first line is a list (mynetworks syntax), the other lines are
 * addresses to match against it. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "addrmatch.h"
#include "config.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int loaded;
    if (!loaded) {
        config_load(1);         /* no main.cf: every parameter has its default */
        loaded = 1;
    }
    /* no /file items: only the parser, never the fuzzer's choice of files */
    if (size > 4096 || memchr(data, '/', size))
        return 0;
    char *text = strndup((const char *)data, size);
    if (!text)
        return 0;
    char *nl = strchr(text, '\n');
    char *rest = nl ? nl + 1 : NULL;
    if (nl)
        *nl = '\0';
    struct strbuf err = STRBUF_INIT;
    struct addrmatch *list = addrmatch_open("mynetworks", text, &err);
    if (list) {
        while (rest && *rest) {
            char *end = strchr(rest, '\n');
            if (end)
                *end = '\0';
            int r = addrmatch_match(list, "host.example", rest);
            if (r < -1 || r > 1)
                __builtin_trap();
            char plain[64];
            addr_normalize(rest, plain, sizeof plain);
            rest = end ? end + 1 : NULL;
        }
        addrmatch_free(list);
    } else if (!err.len) {
        __builtin_trap();       /* a refusal always says why */
    }
    strbuf_free(&err);
    free(text);
    return 0;
}
