/* rewrite_mime.c - fuzz the MIME structure rewrite follows
 * (lib/mail/rewrite_mime.c through rewrite_stream.c): MIME processing on,
 * no tables, so the body must come out exactly as it went in, whatever
 * boundaries, nesting and part headers the input holds.  The first byte
 * is the nesting limit. */
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    long limit = data[0] % 8;
    data++, size--;
    struct rewrite_config cfg;
    struct rewrite_message_info info;
    fuzz_rewrite_settings(0, &cfg, &info);
    cfg.mime = 1;
    cfg.mime_nesting_limit = limit;
    cfg.line_length_limit = 64;
    int in = memfd_create("in", 0), out = memfd_create("out", 0);
    if (in < 0 || out < 0 || write_all(in, data, size) < 0 || lseek(in, 0, SEEK_SET) < 0)
        __builtin_trap();
    struct strbuf err = STRBUF_INIT;
    int r = rewrite_message(&cfg, &info, in, out, &err);
    if (r != 0 && r != REWRITE_TOO_MANY_HOPS)
        __builtin_trap();
    /* the body after the first empty line comes out unchanged */
    const uint8_t *blank = size ? memmem(data, size, "\n\n", 2) : NULL;
    if (r == 0 && blank && !memchr(data, '\r', size)) {
        size_t body_len = size - (size_t)(blank + 2 - data);
        off_t out_len = lseek(out, 0, SEEK_END);
        if (out_len < (off_t)body_len)
            __builtin_trap();
        char *tail = malloc(body_len + 1);
        if (!tail || pread(out, tail, body_len, out_len - (off_t)body_len) != (ssize_t)body_len
            || memcmp(tail, blank + 2, body_len) != 0)
            __builtin_trap();
        free(tail);
    }
    close(in);
    close(out);
    strbuf_free(&err);
    strlist_free(&cfg.drop_headers);
    return 0;
}
