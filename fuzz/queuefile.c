/* fuzz/queuefile.c - arbitrary bytes as a queue file: queue_file_read must
 * return 0 or -1 with a reason, never crash, and what it returns must stay
 * inside the file; queue_file_verify (the commit record's checksum) must
 * answer 0, 1 or -1 with a reason. */
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include "queuefile.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int fd = -1;
    if (fd < 0 && (fd = memfd_create("queuefile", 0)) < 0)
        abort();
    if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
        abort();
    struct queue_file qf;
    struct strbuf err = STRBUF_INIT;
    if (queue_file_read(fd, "FUZZ", &qf, &err) == 0) {
        if (qf.content_offset + qf.content_length > (off_t)size || qf.size > (off_t)size
            || qf.rcpt_count == 0)
            abort();
        for (size_t i = 0; i < qf.rcpt_count; i++)
            if (qf.rcpt[i].status_offset >= qf.content_offset)
                abort();
        (void)queue_file_attr(&qf, "ENVID");
        if (qf.header_end >= qf.content_offset || (qf.commit_id && !queue_id_valid(qf.commit_id)))
            abort();
        struct strbuf why = STRBUF_INIT;
        int v = queue_file_verify(fd, &qf, &why);
        if (v < -1 || v > 1 || (v < 0 && why.len == 0) || (v == 1 && qf.commit_id))
            abort();
        strbuf_free(&why);
        queue_file_free(&qf);
    } else if (err.len == 0) {
        abort();                    /* a failure always says why */
    }
    strbuf_free(&err);
    return 0;
}
