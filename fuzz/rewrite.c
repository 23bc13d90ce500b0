/* rewrite.c - fuzz postern-rewrite's header rewriting (lib/mail/rewrite*.c):
 * the first byte chooses local or remote origin and the settings, the rest
 * is the message.  The output must keep the body after the header. */
#include <stddef.h>
#include <stdint.h>
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
    unsigned flags = data[0];
    data++, size--;
    struct rewrite_config cfg;
    struct rewrite_message_info info;
    fuzz_rewrite_settings(flags, &cfg, &info);
    int in = memfd_create("in", 0), out = memfd_create("out", 0);
    if (in < 0 || out < 0 || write_all(in, data, size) < 0 || lseek(in, 0, SEEK_SET) < 0)
        __builtin_trap();
    struct strbuf err = STRBUF_INIT;
    int r = rewrite_message(&cfg, &info, in, out, &err);
    if (r != 0 && r != REWRITE_TOO_MANY_HOPS)
        __builtin_trap();
    /* a message whose header ends with an empty line keeps its body */
    const uint8_t *blank = size ? memmem(data, size, "\n\n", 2) : NULL;
    if (r == 0 && blank && !memchr(data, '\r', size)) {
        size_t body_len = size - (size_t)(blank + 2 - data);
        off_t out_len = lseek(out, 0, SEEK_END);
        if (out_len < (off_t)body_len)
            __builtin_trap();
    }
    close(in);
    close(out);
    strbuf_free(&err);
    strlist_free(&cfg.drop_headers);
    return 0;
}
