/* pipe_argv.c - fuzz postern-pipe's argv= macro expansion and address
 * quoting (bin/postern-pipe/argv.c).  Input: a first line of flags, then
 * argv elements one per line up to an empty line, then recipients one per
 * line (the first line of all also serves as the sender). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../bin/postern-pipe/argv.c"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

const char *pipe_sender(const struct pipe_service *service, const struct runner_request *request)
{
    return *request->sender ? request->sender : service->null_sender;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xmemdup0(data, size);
    struct pipe_service service;
    memset(&service, 0, sizeof service);
    service.name = (char *)"fuzz";
    service.null_sender = (char *)"MAILER-DAEMON";
    service.delimiters = (char *)"+-";
    struct runner_request request;
    memset(&request, 0, sizeof request);
    request.queue_id = (char *)"ABC";
    request.nexthop = (char *)"Example.COM";
    char *line = text, *next;
    int part = 0;
    for (int n = 0; line; line = next, n++) {
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        if (n == 0) {
            request.sender = line;
            for (const char *p = line; *p; p++) {
                static const char letters[] = "BDFORXhqu.>";
                const char *at = strchr(letters, *p);
                if (at && *p)
                    service.flags |= 1u << (at - letters);
            }
            continue;
        }
        if (part == 0 && !*line) {
            part = 1;
            continue;
        }
        if (part == 0) {
            strlist_add(&service.argv, line);
        } else if (request.rcpt_count < 8) {
            request.rcpt = realloc(request.rcpt, (request.rcpt_count + 1) * sizeof *request.rcpt);
            memset(&request.rcpt[request.rcpt_count], 0, sizeof *request.rcpt);
            request.rcpt[request.rcpt_count++].address = line;
        }
    }
    if (!request.sender)
        request.sender = (char *)"";
    if (request.rcpt_count > 0) {
        struct strlist out = STRLIST_INIT;
        struct strbuf err = STRBUF_INIT;
        int r = pipe_argv(&service, &request, &out, &err);
        if ((r != 0) != (err.len > 0))
            __builtin_trap();
        strlist_free(&out);
        strbuf_free(&err);
    }
    strlist_free(&service.argv);
    free(request.rcpt);
    free(text);
    return 0;
}
