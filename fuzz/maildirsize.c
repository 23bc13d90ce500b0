/* maildirsize.c - fuzz the Maildir++ maildirsize parser
 * (lib/mail/maildirsize.c): the file comes from disk, where Dovecot,
 * Courier or the user may have written anything.  Checks that a parsed
 * definition prints and parses back to itself, and that the quota test
 * runs free of overflow on whatever usage the file claims. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "maildirsize.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct maildir_limits limits, again;
    struct maildir_usage usage;
    if (maildirsize_parse((const char *)data, size, &limits, &usage) != 0)
        return 0;
    if (limits.bytes < 0 || limits.messages < 0)
        __builtin_trap();
    char text[64];
    maildir_limits_format(text, sizeof text, &limits);
    if (maildir_limits_parse(text, strlen(text), &again) != 0 || again.bytes != limits.bytes
        || again.messages != limits.messages)
        __builtin_trap();
    /* every message size a delivery could have, against the claimed usage */
    long long sizes[] = {0, 1, 4096, INT64_MAX / 2, INT64_MAX};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++)
        (void)maildir_over_quota(&limits, &usage, sizes[i]);
    return 0;
}
