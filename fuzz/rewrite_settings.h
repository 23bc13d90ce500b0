/* rewrite_settings.h - the rewrite settings both rewrite fuzz targets
 * derive from their first byte (fuzz/rewrite.c, fuzz/rewrite_stream.c):
 * bits 0-2 append_at_myorigin, append_dot_mydomain,
 * always_add_missing_headers; 3 a small header_size_limit and a
 * header_address_token_limit of 7; 4 a local
 * submission; 5 a full name; 6 a uid; 7 a hopcount_limit of 2. */
#ifndef POSTERN_FUZZ_REWRITE_SETTINGS_H
#define POSTERN_FUZZ_REWRITE_SETTINGS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "rewrite.h"
#include "strbuf.h"

/* Fill cfg and info from flags; free cfg.drop_headers afterwards. */
static inline void fuzz_rewrite_settings(unsigned flags, struct rewrite_config *cfg,
                                         struct rewrite_message_info *info)
{
    *cfg = (struct rewrite_config){
        .myhostname = "host.example.org", .myorigin = "example.org",
        .mydomain = "example.org", .append_at_myorigin = flags & 1,
        .append_dot_mydomain = (flags >> 1) & 1,
        .always_add_missing_headers = (flags >> 2) & 1,
        .header_size_limit = (flags & 8) ? 1024 : 102400,
        .header_token_limit = (flags & 8) ? 7 : 0,
        .duplicate_filter_limit = 1000, .hopcount_limit = (flags & 128) ? 2 : 50,
        .drop_headers = STRLIST_INIT,
    };
    strlist_add(&cfg->drop_headers, "bcc");
    strlist_add(&cfg->drop_headers, "return-path");
    *info = (struct rewrite_message_info){
        .local = (flags >> 4) & 1, .sender = "alice",
        .full_name = (flags & 32) ? "A. \"Q\" Person" : NULL,
        .uid = (flags & 64) ? "1000" : NULL,
    };
}

/* Pull the message through rewrite_message() and check what must hold:
 * it succeeds (or finds a loop), and a message whose header ends with an
 * empty line keeps its body: at least as long (exact 0), or byte for byte
 * at the end of the output (exact 1). */
static inline void fuzz_rewrite_body(struct rewrite_config *cfg, struct rewrite_message_info *info,
                                     const uint8_t *data, size_t size, int exact)
{
    int in = memfd_create("in", 0), out = memfd_create("out", 0);
    if (in < 0 || out < 0 || write_all(in, data, size) < 0 || lseek(in, 0, SEEK_SET) < 0)
        __builtin_trap();
    struct strbuf err = STRBUF_INIT;
    int r = rewrite_message(cfg, info, in, out, &err);
    if (r != 0 && r != REWRITE_TOO_MANY_HOPS && !(r == REWRITE_REJECTED && cfg->mime_report))
        __builtin_trap();
    const uint8_t *blank = size ? memmem(data, size, "\n\n", 2) : NULL;
    if (r == 0 && blank && !memchr(data, '\r', size)) {
        size_t body_len = size - (size_t)(blank + 2 - data);
        off_t out_len = lseek(out, 0, SEEK_END);
        if (out_len < (off_t)body_len)
            __builtin_trap();
        if (exact) {
            char *tail = malloc(body_len + 1);
            if (!tail || pread(out, tail, body_len, out_len - (off_t)body_len) != (ssize_t)body_len
                || memcmp(tail, blank + 2, body_len) != 0)
                __builtin_trap();
            free(tail);
        }
    }
    close(in);
    close(out);
    strbuf_free(&err);
    strlist_free(&cfg->drop_headers);
}

#endif
