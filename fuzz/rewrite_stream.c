/* rewrite_stream.c - fuzz the push API of lib/mail/rewrite_stream.c (what
 * postern-smtpd uses in-process): the message fed in random pieces must
 * give the same result and the same output as rewrite_message() pulling it
 * from a descriptor.  The first byte chooses the settings as in
 * fuzz/rewrite.c, the second seeds the cutting, the rest is the message.
 * Generated headers (Date, Message-Id, Received) may differ in their
 * digits and letters only. */
#include <ctype.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "rewrite.h"
#include "strbuf.h"

#include "rewrite_settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The whole contents of a memfd. */
static void slurp(int fd, struct strbuf *out)
{
    off_t len = lseek(fd, 0, SEEK_END);
    if (len < 0)
        __builtin_trap();
    strbuf_grow(out, (size_t)len);
    if (pread_retry(fd, out->s, (size_t)len, 0) != len)
        __builtin_trap();
    out->len = (size_t)len;
}

/* 1 when a and b are the same but for letters and digits of generated
 * headers (a time or a random id) at the same places. */
static int same_but_generated(const struct strbuf *a, const struct strbuf *b, int exact)
{
    if (a->len != b->len)
        return 0;
    for (size_t i = 0; i < a->len; i++) {
        if (a->s[i] == b->s[i])
            continue;
        if (exact || !isalnum((unsigned char)a->s[i]) || !isalnum((unsigned char)b->s[i]))
            return 0;
    }
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    unsigned flags = data[0];
    unsigned seed = data[1] * 2654435761u + 1;
    data += 2, size -= 2;
    struct rewrite_config cfg;
    struct rewrite_message_info info;
    fuzz_rewrite_settings(flags, &cfg, &info);
    int in = memfd_create("in", 0), pulled_fd = memfd_create("pulled", 0);
    int pushed_fd = memfd_create("pushed", 0);
    if (in < 0 || pulled_fd < 0 || pushed_fd < 0 || write_all(in, data, size) < 0
        || lseek(in, 0, SEEK_SET) < 0)
        __builtin_trap();
    struct strbuf err = STRBUF_INIT, pulled = STRBUF_INIT, pushed = STRBUF_INIT;
    int pull_result = rewrite_message(&cfg, &info, in, pulled_fd, &err);

    /* the same message in pieces of 0 to 300 bytes, sometimes one byte */
    struct rewrite_stream *st = rewrite_stream_begin(&cfg, &info, pushed_fd);
    size_t at = 0;
    int fed = 0;
    while (at < size && fed == 0) {
        seed = seed * 1103515245u + 12345u;
        size_t piece = (seed >> 16) % 4 == 0 ? 1 : (seed >> 8) % 301;
        if (piece > size - at)
            piece = size - at;
        fed = rewrite_stream_feed(st, data + at, piece);
        at += piece;
    }
    strbuf_reset(&err);
    int push_result = rewrite_stream_end(st, &err);
    if (push_result != pull_result || (fed != 0 && fed != push_result))
        __builtin_trap();
    slurp(pulled_fd, &pulled);
    slurp(pushed_fd, &pushed);
    if (!same_but_generated(&pulled, &pushed, !info.local && !cfg.always_add_missing_headers))
        __builtin_trap();
    close(in);
    close(pulled_fd);
    close(pushed_fd);
    strbuf_free(&err);
    strbuf_free(&pulled);
    strbuf_free(&pushed);
    strlist_free(&cfg.drop_headers);
    return 0;
}
