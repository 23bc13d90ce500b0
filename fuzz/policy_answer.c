/* policy_answer.c - fuzz the policy service answer parser
 * (lib/net/policy_proto.c), fed as smtpd's policy client feeds it: the
 * bytes received so far, growing.  An answer it accepts lies inside the
 * input, ends at an empty line, and its action holds no line break; a
 * refusal says why; a request it encodes for any value is one line. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "policy_proto.h"
#include "strbuf.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    struct strbuf action = STRBUF_INIT, why = STRBUF_INIT;
    /* every prefix, as the bytes arrive in pieces */
    for (size_t len = 0; len <= size; len += 1 + len / 8) {
        size_t used = 0;
        strbuf_reset(&why);
        enum policy_parse p = policy_answer_parse(buf, len, &action, &used, &why);
        if (p == POLICY_PARSE_DONE) {
            if (used == 0 || used > len || buf[used - 1] != '\n')
                __builtin_trap();
            if (memchr(action.s ? action.s : "", '\n', action.len))
                __builtin_trap();
            break;
        }
        if (p == POLICY_PARSE_BAD && why.len == 0)
            __builtin_trap();
        if (p == POLICY_PARSE_BAD)
            break;
    }
    /* any bytes as a value stay one attribute line */
    struct strbuf req = STRBUF_INIT;
    char *value = xmemdup0(data, size);
    policy_attr_put(&req, "sender", value);
    const char *nl = memchr(req.s, '\n', req.len);
    if (!nl || (size_t)(nl - req.s) != req.len - 1)
        __builtin_trap();
    free(value);
    strbuf_free(&req);
    strbuf_free(&action);
    strbuf_free(&why);
    free(buf);
    return 0;
}
