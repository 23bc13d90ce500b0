/* lookup_request.c - fuzz the lookup service's request parser
 * (maps/lookup_proto.c) the way postern-lookup's serve.c drives it: the
 * input is a client's byte stream, parsed request after request.  Each
 * request parsed must lie inside the input, keep its bounds, and survive
 * a round trip through lookup_request_format.  serve.c leaves a request
 * in its buffer while a client's DNS answers are out and parses it again
 * later: parsing must change nothing, so a second parse gives the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lookup_proto.h"
#include "strbuf.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = malloc(size ? size : 1);
    if (!buf)
        abort();
    memcpy(buf, data, size);
    size_t pos = 0;
    while (pos < size) {
        struct lookup_request req;
        struct strbuf err = STRBUF_INIT;
        size_t used = 0;
        int r = lookup_request_parse(buf + pos, size - pos, &req, &used, &err);
        if (r < 0 && err.len == 0)          /* a refusal always says why */
            __builtin_trap();
        struct lookup_request again_req;
        struct strbuf again_err = STRBUF_INIT;
        size_t again_used = 0;
        int again_r = lookup_request_parse(buf + pos, size - pos, &again_req, &again_used, &again_err);
        if (again_r != r || (r == 1 && (again_used != used || again_req.table != req.table
                                        || again_req.key != req.key || again_req.options != req.options))
            || (r < 0 && strcmp(again_err.s, err.s) != 0))
            __builtin_trap();
        strbuf_free(&again_err);
        if (r == 1) {
            if (used == 0 || used > size - pos || used > LOOKUP_REQUEST_MAX)
                __builtin_trap();
            size_t tlen = strlen(req.table), klen = strlen(req.key);
            if (req.table < buf + pos || req.key + klen >= buf + pos + used + 1
                || tlen == 0 || tlen > LOOKUP_TABLE_MAX || klen > LOOKUP_KEY_MAX
                || !strchr(req.table, ':'))
                __builtin_trap();
            /* what the client would send for it parses to the same */
            struct strbuf again = STRBUF_INIT;
            if (lookup_request_format(&again, req.table, req.options, req.key) != 0)
                __builtin_trap();
            struct lookup_request back;
            size_t back_used = 0;
            if (lookup_request_parse(again.s, again.len, &back, &back_used, &err) != 1
                || back_used != again.len || strcmp(back.table, req.table) != 0
                || strcmp(back.key, req.key) != 0 || back.options != req.options)
                __builtin_trap();
            strbuf_free(&again);
            pos += used;
        }
        strbuf_free(&err);
        if (r != 1)
            break;
    }
    /* and every answer record the service could write is one record */
    struct strbuf answer = STRBUF_INIT;
    char *text = xmemdup0(data, size);
    lookup_reply_format(&answer, 'F', text);
    if (answer.len == 0 || memchr(answer.s, '\0', answer.len) != answer.s + answer.len - 1)
        __builtin_trap();
    strbuf_free(&answer);
    free(text);
    free(buf);
    return 0;
}
