/* dsn_report.c - fuzz target: dsn_write() (lib/mail/dsn.c) must make a report
 * whose every line is shorter than 998 bytes, that ends with the closing
 * boundary, whatever the original message (huge lines, no blank line,
 * binary, empty) and whatever the recipient fields hold.  Input: a flag
 * byte, then NUL-separated fields (sender, address, orcpt, status, text,
 * remote MTA, envid), then the original message. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "dsn.h"
#include "strbuf.h"

#define FIELDS 7

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned flags = data[0];
    data++, size--;
    char *field[FIELDS];
    size_t used = 0;
    for (int i = 0; i < FIELDS; i++) {
        const uint8_t *nul = used < size ? memchr(data + used, 0, size - used) : NULL;
        size_t len = nul ? (size_t)(nul - (data + used)) : 0;
        field[i] = strndup((const char *)data + used, len);
        used += nul ? len + 1 : 0;
    }
    int in = memfd_create("in", 0), out = memfd_create("out", 0);
    if (in < 0 || out < 0 || write(in, data + used, size - used) != (ssize_t)(size - used))
        abort();

    struct dsn_recipient rcpt[2] = {
        {.address = field[1], .orcpt = *field[2] ? field[2] : NULL, .status = field[3],
         .text = field[4], .remote_mta = *field[5] ? field[5] : NULL},
        {.address = field[0], .status = NULL, .text = NULL},
    };
    struct dsn_report r = {
        .kind = (enum dsn_kind)(flags % 3), .postmaster_copy = (flags >> 2) & 1,
        .queue_id = "FUZZ1", .myhostname = "mail.example.org", .mail_name = "postern",
        .to = field[0], .sender = field[0], .arrival = (flags & 8) ? 1763787013 : 0,
        .envid = field[6], .ret_headers = (flags >> 4) & 1, .eight_bit = (flags >> 5) & 1,
        .smtputf8 = (flags >> 6) & 1, .size_limit = (flags & 128) ? 100 : 0,
        .delay_warning = 14400, .queue_lifetime = 432000, .content_fd = in,
        .content_offset = 0, .content_length = (off_t)(size - used),
        .rcpt = rcpt, .rcpt_count = 2, .now = 1763787013, .boundary_salt = "FUZZ1.00",
    };
    struct strbuf err = STRBUF_INIT;
    if (dsn_write(&r, out, &err) != 0)
        abort();
    off_t length = lseek(out, 0, SEEK_END);
    char *text = malloc((size_t)length + 1);
    if (!text || pread(out, text, (size_t)length, 0) != length)
        abort();
    size_t column = 0;
    for (off_t i = 0; i < length; i++) {
        column = text[i] == '\n' ? 0 : column + 1;
        if (column >= 998)
            abort();                /* a line of 998 bytes or more */
    }
    static const char closing[] = "--\n";
    if (length < 3 || memcmp(text + length - 3, closing, 3) != 0)
        abort();                    /* no closing boundary */
    free(text);
    strbuf_free(&err);
    close(in);
    close(out);
    for (int i = 0; i < FIELDS; i++)
        free(field[i]);
    return 0;
}
