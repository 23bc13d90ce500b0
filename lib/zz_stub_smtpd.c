/* zz_stub_smtpd.c - TEMPORARY stand-in (smtpd branch) for queue_trigger()
 * of lib/queuefile.c, which the q-inject branch brings.  Delete this file
 * when main has the real one. */
#include <fcntl.h>
#include <unistd.h>

#include "queuefile.h"
#include "strbuf.h"

void queue_trigger(const char *queue_dir, char request)
{
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/%s", queue_dir, QUEUE_TRIGGER);
    int fd = open(path.s, O_WRONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd >= 0) {
        if (write(fd, &request, 1) < 0) {
            /* best effort: qmgr also scans on a timer */
        }
        close(fd);
    }
    strbuf_free(&path);
}
