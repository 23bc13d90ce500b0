/* rewrite.c - fuzz postern-rewrite's header rewriting (lib/mail/rewrite*.c):
 * the first byte chooses local or remote origin and the settings, the rest
 * is the message.  The output must keep the body after the header. */
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
    unsigned flags = data[0];
    data++, size--;
    struct rewrite_config cfg;
    struct rewrite_message_info info;
    fuzz_rewrite_settings(flags, &cfg, &info);
    fuzz_rewrite_body(&cfg, &info, data, size, 0);
    return 0;
}
