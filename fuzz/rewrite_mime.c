/* rewrite_mime.c - fuzz the MIME structure rewrite follows
 * (lib/mail/rewrite_mime.c through rewrite_stream.c): MIME processing on,
 * no tables, so the body must come out exactly as it went in, whatever
 * boundaries, nesting and part headers the input holds, unless a MIME
 * error refuses it (the strict_* checks, on when the first byte is odd).
 * The first byte is also the nesting limit and the boundary length limit. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "rewrite.h"
#include "rewrite_mime.h"

#include "rewrite_settings.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    long limit = data[0] % 8;
    int strict = data[0] & 0x80;
    size_t boundary_limit = (size_t)(data[0] >> 3 & 0xf) + 1;
    data++, size--;
    struct rewrite_config cfg;
    struct rewrite_message_info info;
    fuzz_rewrite_settings(0, &cfg, &info);
    cfg.mime = 1;
    cfg.mime_nesting_limit = limit;
    if (strict) {
        cfg.mime_report = MIME_ERR_NESTING | MIME_ERR_8BIT_IN_HEADER | MIME_ERR_8BIT_IN_7BIT_BODY
                          | MIME_ERR_ENCODING_DOMAIN;
        cfg.mime_boundary_length_limit = boundary_limit;
    }
    cfg.line_length_limit = 64;
    fuzz_rewrite_body(&cfg, &info, data, size, 1);
    return 0;
}
