/* milter_reply.c - fuzz the milter reply and negotiation parsers
 * (lib/net/milter_proto.c) with a packet as smtpd reads it from a milter
 * (command byte and data).  A parsed reply's strings lie within the
 * input, an SMTP reply starts "4" or "5" and its status class matches. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "milter_proto.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct milter_reply reply = MILTER_REPLY_INIT;
    struct strbuf why = STRBUF_INIT;
    if (milter_reply_parse(data, size, &reply, &why) == 0) {
        if (reply.name.len + reply.value.len > size)
            __builtin_trap();
        if (reply.command == SMFIR_REPLYCODE) {
            const char *s = strbuf_str(&reply.name);
            if ((s[0] != '4' && s[0] != '5') || s[4] != s[0])
                __builtin_trap();
        }
    } else if (!why.len) {
        __builtin_trap();
    }
    struct milter_optneg neg;
    memset(&neg, 0, sizeof neg);
    strbuf_reset(&why);
    if (milter_optneg_parse(data, size, &neg, &why) < 0 && !why.len)
        __builtin_trap();
    for (int i = 0; i < MILTER_STAGE_COUNT; i++)
        if (neg.macros[i].len > size)
            __builtin_trap();
    milter_optneg_free(&neg);
    milter_reply_free(&reply);
    strbuf_free(&why);
    return 0;
}
