/* mbox_copy.c - fuzz target: mail_copy() in mbox mode (lib/mail/mailcopy.c)
 * must quote exactly the lines that start with "From ", keep every other
 * byte, end with a newline and an empty line, whatever the input and
 * wherever in its file the message starts.  Checked against a direct
 * byte-by-byte reference.  (t/60-virtual.t covers read-block edges, which
 * lie beyond the inputs fuzzed here.) */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "mailbox.h"
#include "strbuf.h"

/* The expected mbox body for input bytes, computed the simple way. */
static void reference(const uint8_t *data, size_t size, struct strbuf *out)
{
    int line_start = 1;
    for (size_t i = 0; i < size; i++) {
        if (line_start && size - i >= 5 && memcmp(data + i, "From ", 5) == 0)
            strbuf_putc(out, '>');
        strbuf_putc(out, data[i]);
        line_start = data[i] == '\n';
    }
    if (size > 0 && data[size - 1] != '\n')
        strbuf_putc(out, '\n');
    strbuf_putc(out, '\n');
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* a leading byte moves the message inside its file */
    size_t skip = size ? data[0] : 0;
    if (size)
        data++, size--;
    int in = memfd_create("in", 0), out = memfd_create("out", 0);
    if (in < 0 || out < 0)
        abort();
    static const char pad[256];
    if (write(in, pad, skip) != (ssize_t)skip || write(in, data, size) != (ssize_t)size)
        abort();
    struct mail_source src = {.fd = in, .offset = (off_t)skip, .length = (off_t)size,
                              .sender = "", .delivered_to = "x"};
    struct strbuf prefix = STRBUF_INIT, want = STRBUF_INIT;
    strbuf_puts(&prefix, "P\n");
    if (mail_copy(out, &src, &prefix, 1, -1) != MAIL_COPY_OK)
        abort();
    strbuf_puts(&want, "P\n");
    reference(data, size, &want);
    off_t got_size = lseek(out, 0, SEEK_END);
    if (got_size != (off_t)want.len)
        abort();
    char *got = malloc(want.len + 1);
    if (pread(out, got, want.len, 0) != (ssize_t)want.len || memcmp(got, want.s, want.len) != 0)
        abort();
    free(got);
    strbuf_free(&prefix);
    strbuf_free(&want);
    close(in);
    close(out);
    return 0;
}
