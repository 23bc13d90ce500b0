/* message.c - the message as a pipe command reads it: the lines the flags
 * ask for (F: "From SENDER  DATE", R: Return-Path:, O: X-Original-To:,
 * D: Delivered-To:, in Postfix's order), then the content line by line
 * with '>' before "From " (flag >), '.' before '.' (flag .), each line
 * ended with eol=, and a blank line after it all (flag B).  The content is
 * read through a read-only mapping of the queue file. */
#include <errno.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "pipe.h"

/* Bytes gathered before a write. */
#define FLUSH_AT 65536

const char *pipe_sender(const struct pipe_service *service, const struct runner_request *request)
{
    return *request->sender ? request->sender : service->null_sender;
}

/* The message content mapped into memory: *base is what to unmap. */
static const char *map_content(const struct runner_request *request, void **base,
                               size_t *map_len)
{
    long page = sysconf(_SC_PAGESIZE);
    off_t start = request->msg_offset - request->msg_offset % (page > 0 ? page : 4096);
    *map_len = (size_t)(request->msg_offset - start + request->msg_length);
    *base = NULL;
    if (request->msg_length == 0)
        return "";
    void *p = mmap(NULL, *map_len, PROT_READ, MAP_PRIVATE, request->msg_fd, start);
    if (p == MAP_FAILED)
        return NULL;
    *base = p;
    return (const char *)p + (request->msg_offset - start);
}

/* Write what is gathered when it is large (or always); 0 or -1. */
static int flush(int fd, struct strbuf *out, int always)
{
    if (!always && out->len < FLUSH_AT)
        return 0;
    int r = write_all(fd, out->s ? out->s : "", out->len);
    strbuf_reset(out);
    return r;
}

int pipe_message(const struct pipe_service *service, const struct runner_request *request,
                 int fd)
{
    struct strbuf out = STRBUF_INIT;
    const char *eol = strbuf_str(&service->eol);
    size_t eol_len = service->eol.len;
    const char *sender = pipe_sender(service, request);
    const struct runner_recipient *rcpt = &request->rcpt[0];
    if (service->flags & PIPE_FLAG_FROM) {
        time_t now = time(NULL);
        char date[32];
        if (!ctime_r(&now, date))
            strcpy(date, "Thu Jan  1 00:00:00 1970\n");
        date[strcspn(date, "\n")] = 0;
        strbuf_printf(&out, "From %s  %s", *sender ? sender : "MAILER-DAEMON", date);
        strbuf_append(&out, eol, eol_len);
    }
    if (service->flags & PIPE_FLAG_RETURN) {
        strbuf_printf(&out, "Return-Path: <%s>", sender);
        strbuf_append(&out, eol, eol_len);
    }
    if (service->flags & PIPE_FLAG_ORIG) {
        const char *orig = runner_attr(&rcpt->attrs, "ORIG");
        strbuf_printf(&out, "X-Original-To: %s", orig && *orig ? orig : rcpt->address);
        strbuf_append(&out, eol, eol_len);
    }
    if (service->flags & PIPE_FLAG_DELIVERED) {
        strbuf_puts(&out, "Delivered-To: ");
        size_t start = out.len;
        strbuf_puts(&out, rcpt->address);
        for (size_t i = start; i < out.len; i++)
            out.s[i] = (char)(out.s[i] >= 'A' && out.s[i] <= 'Z' ? out.s[i] + 32 : out.s[i]);
        strbuf_append(&out, eol, eol_len);
    }
    void *base;
    size_t map_len;
    const char *content = map_content(request, &base, &map_len);
    if (!content) {
        strbuf_free(&out);
        return -1;
    }
    const char *p = content, *end = content + request->msg_length;
    int r = 0;
    while (p < end && r == 0) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        size_t len = (size_t)(line_end - p);
        if (len && p[len - 1] == '\r' && eol_len)
            len--;          /* the stored line ends as eol= says, once */
        if ((service->flags & PIPE_FLAG_ESCAPE) && len >= 5 && memcmp(p, "From ", 5) == 0)
            strbuf_putc(&out, '>');
        if ((service->flags & PIPE_FLAG_DOT) && len && p[0] == '.')
            strbuf_putc(&out, '.');
        strbuf_append(&out, p, len);
        strbuf_append(&out, eol, eol_len);
        p = nl ? nl + 1 : end;
        r = flush(fd, &out, 0);
    }
    if (r == 0 && (service->flags & PIPE_FLAG_BLANK))
        strbuf_append(&out, eol, eol_len);
    if (r == 0)
        r = flush(fd, &out, 1);
    int saved = errno;
    if (base && munmap(base, map_len) != 0 && r == 0)
        r = -1;
    else
        errno = saved;
    strbuf_free(&out);
    return r;
}

int pipe_delivered_to(const struct runner_request *request, const char *address)
{
    void *base;
    size_t map_len;
    const char *content = map_content(request, &base, &map_len);
    if (!content)
        return -1;
    const char *p = content, *end = content + request->msg_length;
    size_t addr_len = strlen(address);
    int found = 0;
    while (p < end && !found) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *line_end = nl ? nl : end;
        size_t len = (size_t)(line_end - p);
        if (len && p[len - 1] == '\r')
            len--;
        if (len == 0)
            break;              /* the end of the header */
        if (len > 13 && strncasecmp(p, "Delivered-To:", 13) == 0) {
            const char *v = p + 13;
            size_t vlen = len - 13;
            while (vlen && (*v == ' ' || *v == '\t'))
                v++, vlen--;
            while (vlen && (v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
                vlen--;
            found = vlen == addr_len && strncasecmp(v, address, vlen) == 0;
        }
        p = nl ? nl + 1 : end;
    }
    if (base)
        munmap(base, map_len);
    return found;
}
