/* table_fuzz.h - shared by the pattern-table fuzz targets (pcre_table.c,
 * regexp_table.c, cidr_table.c): the input becomes a table file (a memfd,
 * opened by its /proc/self/fd path through map_open, as a user's table
 * is), then a few keys are looked up, one of them taken from the input. */
#ifndef POSTERN_TABLE_FUZZ_H
#define POSTERN_TABLE_FUZZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Open `type` over the input and look keys up; traps on broken answers. */
static int fuzz_table(const char *type, const uint8_t *data, size_t size,
                      const char *const *keys)
{
    static int fd = -1;
    if (fd < 0) {
        log_open("fuzz", 0);
        fd = memfd_create("fuzz-table", MFD_CLOEXEC);
        if (fd < 0)
            abort();
    }
    if (ftruncate(fd, 0) != 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    char spec[64];
    snprintf(spec, sizeof spec, "%s:/proc/self/fd/%d", type, fd);
    struct strbuf err = STRBUF_INIT, value = STRBUF_INIT;
    struct map *map = map_open(spec, &err);
    if (!map) {
        if (err.len == 0)           /* a refusal always says why */
            __builtin_trap();
        strbuf_free(&err);
        return 0;
    }
    /* a key from the input: its last line, at most 200 bytes */
    const uint8_t *last = size ? memrchr(data, '\n', size - 1) : NULL;
    size_t start = last ? (size_t)(last - data) + 1 : 0;
    size_t n = size - start > 200 ? 200 : size - start;
    char own_key[201];
    memcpy(own_key, data + start, n);
    own_key[n] = '\0';
    for (size_t i = 0; ; i++) {
        const char *key = keys[i] ? keys[i] : own_key;
        int result = map_lookup(map, key, &value);
        if (result != MAP_FOUND && result != MAP_NOTFOUND)
            __builtin_trap();       /* pattern tables never say "try again" */
        if (result == MAP_NOTFOUND && value.len)
            __builtin_trap();
        if (!keys[i])
            break;
    }
    map_close(map);
    strbuf_free(&value);
    strbuf_free(&err);
    return 0;
}

#endif
