/* rewrite_stream.c - fuzz the push API of lib/mail/rewrite_stream.c (what
 * postern-smtpd uses in-process): the message fed in random pieces must
 * give the same result and the same output as rewrite_message() pulling it
 * from a descriptor.  The first byte chooses the settings as in
 * fuzz/rewrite.c, the second seeds the cutting, the rest is the message.
 * Generated headers (Date, Message-Id, Received) may differ in their
 * digits and letters only.  When the second byte is odd, header_checks
 * and body_checks (a regexp table with every action, body lines cut at 64
 * bytes, body_checks_size_limit 512) are on too; and every input is also
 * read as a table result by rewrite_check_parse(). */
#include <ctype.h>
#include <stddef.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "map.h"
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

/* The checks table, opened once: a regexp table in a memfd. */
static struct maplist *checks_table(void)
{
    static struct maplist *maps;
    if (maps)
        return maps;
    static const char rules[] =
        "/^Subject: reject/ REJECT no thanks\n/^Subject: defer/ REJECT 4.7.1 later\n"
        "/^X-Drop:/ IGNORE\n/^X-Warn:/ WARN w\n/^X-Info:/ INFO i\n/^X-Old: (.*)/ REPLACE X-New: $1\n"
        "/^X-Pre:/ PREPEND X-Added: yes\n/^X-Bad:/ REPLACE not a header\n/^X-Hold:/ HOLD\n"
        "/^X-Unknown:/ FROBNICATE\n/^bad/ REJECT\n/^drop/ IGNORE\n/^old(.*)/ REPLACE new$1\n"
        "/^mark/ PREPEND inserted\n/^empty/ REPLACE\n";
    int fd = memfd_create("checks", 0);
    char name[64];
    snprintf(name, sizeof name, "regexp:/proc/self/fd/%d", fd);
    struct strbuf err = STRBUF_INIT;
    if (fd < 0 || write_all(fd, rules, sizeof rules - 1) < 0 || !(maps = maplist_open(name, &err)))
        __builtin_trap();
    strbuf_free(&err);
    return maps;
}

/* rewrite_check_parse on any text: the action word and text lie within it. */
static void fuzz_parse(const uint8_t *data, size_t size)
{
    char *text = strndup((const char *)data, size);
    if (!text)
        __builtin_trap();
    struct rewrite_check check;
    rewrite_check_parse(text, &check);
    size_t len = strlen(text);
    if (check.name != text || check.name_len > len || check.text < text || check.text > text + len)
        __builtin_trap();
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    fuzz_parse(data, size);
    int checks = data[1] & 1;
    unsigned flags = data[0];
    unsigned seed = data[1] * 2654435761u + 1;
    data += 2, size -= 2;
    struct rewrite_config cfg;
    struct rewrite_message_info info;
    fuzz_rewrite_settings(flags, &cfg, &info);
    if (checks) {
        cfg.header_checks = cfg.body_checks = checks_table();
        cfg.line_length_limit = 64;
        cfg.body_checks_size_limit = 512;
    }
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
