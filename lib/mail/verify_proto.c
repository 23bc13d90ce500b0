/* verify_proto.c - the address verification service's requests, cache
 * entries and client (verify_proto.h, postern-verify(8)). */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "strbuf.h"
#include "unixservice.h"
#include "verify_proto.h"

/* 1 when status is one an update may carry. */
static int outcome_status(int status)
{
    return status == VERIFY_OK || status == VERIFY_DEFER || status == VERIFY_BOUNCE;
}

/* The field that starts at p (up to end): its length, or -1 without a NUL. */
static long field_length(const char *p, const char *end)
{
    const char *nul = memchr(p, 0, (size_t)(end - p));
    return nul ? nul - p : -1;
}

/* An address the service keys its cache by: not empty, no LF or TAB. */
static int address_ok(const char *address, long len)
{
    return len > 0 && len <= VERIFY_ADDRESS_MAX && !memchr(address, '\n', (size_t)len)
           && !memchr(address, '\t', (size_t)len) && !memchr(address, '\r', (size_t)len);
}

long verify_request_parse(const char *buf, size_t len, struct verify_request *req,
                          struct strbuf *err)
{
    const char *end = buf + len, *p = buf;
    memset(req, 0, sizeof *req);
    if (len == 0)
        return 0;
    req->type = (unsigned char)*p++;
    if (req->type != VERIFY_QUERY && req->type != VERIFY_UPDATE) {
        strbuf_set(err, "unknown request");
        return -1;
    }
    if (req->type == VERIFY_UPDATE) {
        if (p == end)
            return 0;
        req->status = (unsigned char)*p++;
        if (!outcome_status(req->status)) {
            strbuf_set(err, "bad status");
            return -1;
        }
    }
    long n = field_length(p, end);
    if (n < 0)
        return (size_t)(end - p) > VERIFY_ADDRESS_MAX ? (strbuf_set(err, "address too long"), -1) : 0;
    if (!address_ok(p, n)) {
        strbuf_set(err, n > VERIFY_ADDRESS_MAX ? "address too long" : "bad address");
        return -1;
    }
    req->address = p;
    p += n + 1;
    if (req->type == VERIFY_UPDATE) {
        n = field_length(p, end);
        if (n < 0)
            return (size_t)(end - p) > VERIFY_TEXT_MAX ? (strbuf_set(err, "text too long"), -1) : 0;
        if (n > VERIFY_TEXT_MAX) {
            strbuf_set(err, "text too long");
            return -1;
        }
        req->text = p;
        p += n + 1;
    }
    return p - buf;
}

/* Postfix's numbers for the statuses in an entry. */
static const int entry_codes[] = {VERIFY_OK, VERIFY_DEFER, VERIFY_BOUNCE, VERIFY_TODO};

/* A decimal number of at most 18 digits up to the next ':'; the position
 * after the ':', or NULL. */
static const char *entry_number(const char *p, long long *out)
{
    long long value = 0;
    int digits = 0;
    while (*p >= '0' && *p <= '9' && digits < 18) {
        value = value * 10 + (*p++ - '0');
        digits++;
    }
    if (!digits || *p != ':')
        return NULL;
    *out = value;
    return p + 1;
}

int verify_entry_parse(const char *value, struct verify_entry *entry)
{
    long long status;
    const char *p = entry_number(value, &status);
    if (!p || status < 0 || status > 3)
        return -1;
    p = entry_number(p, &entry->probed);
    if (!p)
        return -1;
    p = entry_number(p, &entry->updated);
    if (!p || (entry->probed == 0 && entry->updated == 0))
        return -1;
    entry->status = entry_codes[status];
    entry->text = p;
    return 0;
}

void verify_entry_format(const struct verify_entry *entry, struct strbuf *out)
{
    int code = 0;
    for (int i = 0; i < 4; i++)
        if (entry_codes[i] == entry->status)
            code = i;
    strbuf_printf(out, "%d:%lld:%lld:", code, entry->probed, entry->updated);
    for (const char *t = entry->text ? entry->text : ""; *t; t++)
        strbuf_putc(out, *t == '\n' || *t == '\r' ? ' ' : *t);
}

/* ---- the client ---- */

/* Send one request and read its answer record; 0, or -1 with the reason
 * in why. */
static int exchange(const char *socket_path, const struct strbuf *request, int timeout_s,
                    struct strbuf *answer, struct strbuf *why)
{
    int fd = unix_connect(socket_path, timeout_s > 0 ? timeout_s : 10);
    if (fd < 0) {
        int saved = errno;
        strbuf_printf(why, "connect to %s: %s", socket_path, strerror(saved));
        errno = saved;
        return -1;
    }
    /* a service gone away is EPIPE, not a SIGPIPE */
    if (send(fd, request->s, request->len, MSG_NOSIGNAL) != (ssize_t)request->len) {
        int saved = errno;
        strbuf_printf(why, "send to %s: %s", socket_path, strerror(saved));
        close(fd);
        errno = saved;
        return -1;
    }
    struct record_reader reader;
    record_reader_init(&reader, fd);
    int r = record_read(&reader, answer, VERIFY_TEXT_MAX + 64);
    int saved = errno;
    close(fd);
    if (r <= 0 || answer->len == 0) {
        strbuf_printf(why, "read from %s: %s", socket_path,
                      r == 0 || answer->len == 0 ? "no answer" : strerror(saved));
        errno = r == 0 || answer->len == 0 ? ECONNRESET : saved;
        return -1;
    }
    return 0;
}

int verify_query(const char *socket_path, const char *address, int timeout_s, int *status,
                 struct strbuf *text)
{
    struct strbuf request = STRBUF_INIT, answer = STRBUF_INIT, why = STRBUF_INIT;
    int rc = -1, connect_failed = 0;
    strbuf_reset(text);
    if (!address_ok(address, (long)strlen(address))) {
        strbuf_set(text, "address not accepted by the verify service");
    } else {
        record_put(&request, VERIFY_QUERY, address);
        if (exchange(socket_path, &request, timeout_s, &answer, &why) < 0) {
            connect_failed = 1;
            int saved = errno;
            strbuf_set(text, strbuf_str(&why));
            errno = saved;
        } else if (answer.s[0] == VERIFY_BAD || !(outcome_status(answer.s[0])
                                                   || answer.s[0] == VERIFY_TODO)) {
            strbuf_printf(text, "bad answer from the verify service: %.200s", answer.s);
        } else {
            *status = (unsigned char)answer.s[0];
            strbuf_set(text, answer.s + 1);
            rc = 0;
        }
    }
    int saved = errno;
    strbuf_free(&request);
    strbuf_free(&answer);
    strbuf_free(&why);
    errno = rc < 0 && !connect_failed ? EPROTO : saved;
    return rc;
}

int verify_update(const char *socket_path, const char *address, int status, const char *text,
                  int timeout_s, struct strbuf *why)
{
    struct strbuf request = STRBUF_INIT, answer = STRBUF_INIT, clean = STRBUF_INIT;
    int rc = -2;
    if (!address_ok(address, (long)strlen(address)) || !outcome_status(status)) {
        strbuf_set(why, "address or status not accepted by the verify service");
    } else {
        /* the text: one line, bounded */
        for (const char *t = text; *t && clean.len < VERIFY_TEXT_MAX; t++)
            strbuf_putc(&clean, *t == '\n' || *t == '\r' ? ' ' : *t);
        strbuf_putc(&request, VERIFY_UPDATE);
        strbuf_putc(&request, status);
        strbuf_puts(&request, address);
        strbuf_putc(&request, 0);
        strbuf_append(&request, strbuf_str(&clean), clean.len);
        strbuf_putc(&request, 0);
        if (exchange(socket_path, &request, timeout_s, &answer, why) < 0)
            rc = -1;
        else if (answer.s[0] == VERIFY_OK)
            rc = 0;
        else
            strbuf_printf(why, "the verify service refused the update: %.200s", answer.s + 1);
    }
    strbuf_free(&request);
    strbuf_free(&answer);
    strbuf_free(&clean);
    return rc;
}
