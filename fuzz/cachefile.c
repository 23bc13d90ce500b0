/* fuzz/cachefile.c - arbitrary bytes as the content of a cache file the
 * smtp runners share (lib/util/cachefile.c): a lookup never reads past
 * its buffer and gives back only a value of a well-formed line, and a
 * put after any content leaves a file whose entries all parse and whose
 * new entry is found. */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cachefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static char path[64];
    if (!path[0])
        snprintf(path, sizeof path, "/tmp/fuzz-cachefile-%d", (int)getpid());
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return 0;
    if (size && write(fd, data, size) != (ssize_t)size) {
        close(fd);
        return 0;
    }
    close(fd);
    struct strbuf value = STRBUF_INIT;
    if (cachefile_get(path, "k1", 1000, &value) == 1 && value.len > CACHEFILE_MAX_VALUE)
        __builtin_trap();
    if (cachefile_put(path, "fresh", "abc", 3, 5000, 1000) == 0) {
        if (cachefile_get(path, "fresh", 1000, &value) != 1 || value.len != 3 || memcmp(value.s, "abc", 3) != 0)
            __builtin_trap();
    }
    strbuf_free(&value);
    return 0;
}
