/* rewrite_mime.c - fuzz the MIME structure rewrite follows
 * (lib/mail/rewrite_mime.c through rewrite_stream.c): MIME processing on,
 * no tables, so the body must come out exactly as it went in, whatever
 * boundaries, nesting and part headers the input holds.  The first byte
 * is the nesting limit. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rewrite.h"

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
    fuzz_rewrite_body(&cfg, &info, data, size, 1);
    return 0;
}
