/* fuzz/envelope.c - arbitrary bytes as an injection envelope (the input
 * the set-group-id injector and the queue service take from any local
 * user), read as the queue reads it (strict) and as rewrite does
 * (lenient): envelope_read must return 0 or a documented exit code with a
 * reason, never crash; an envelope it accepts, written out again, reads
 * back the same. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "envelope.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Put bytes into a fresh memfd, positioned at its start. */
static int bytes_fd(const void *bytes, size_t size)
{
    int fd = memfd_create("envelope", MFD_CLOEXEC);
    if (fd < 0 || (size && write(fd, bytes, size) != (ssize_t)size) || lseek(fd, 0, SEEK_SET) != 0)
        abort();
    return fd;
}

/* One reading in one mode, and the round trip of what it accepts. */
static void read_envelope(const uint8_t *data, size_t size, enum envelope_check check)
{
    struct envelope env = ENVELOPE_INIT;
    struct strbuf err = STRBUF_INIT;
    int fd = bytes_fd(data, size);
    int status = envelope_read(fd, &env, check, &err);
    close(fd);
    if (status != 0) {
        if (status != 55 && status != 91 && !(status == 11 && check == ENVELOPE_STRICT))
            abort();                /* only the documented exit codes */
        if ((err.len == 0) != (size == 0))
            abort();                /* a failure says why, but for no envelope at all (withdrawn) */
    } else {
        if (!env.sender || env.records.count == 0)
            abort();
        (void)envelope_attr(&env, "ENVID");
        struct strbuf out = STRBUF_INIT;
        envelope_write(&env, &out);
        struct envelope again = ENVELOPE_INIT;
        struct strbuf err2 = STRBUF_INIT;
        fd = bytes_fd(out.s, out.len);
        if (envelope_read(fd, &again, check, &err2) != 0 || strcmp(again.sender, env.sender) != 0
            || again.records.count != env.records.count)
            abort();
        for (size_t i = 0; i < env.records.count; i++)
            if (strcmp(again.records.item[i], env.records.item[i]) != 0)
                abort();
        close(fd);
        envelope_free(&again);
        strbuf_free(&err2);
        strbuf_free(&out);
    }
    envelope_free(&env);
    strbuf_free(&err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    read_envelope(data, size, ENVELOPE_LENIENT);    /* rewrite, filters */
    read_envelope(data, size, ENVELOPE_STRICT);     /* the queue */
    return 0;
}
