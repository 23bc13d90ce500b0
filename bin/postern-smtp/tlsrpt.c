/* tlsrpt.c - the TLS results the smtp runner records for TLS-RPT (RFC
 * 8460): with smtp_tls_report_enable (postern's own parameter, default
 * no), each TLS attempt appends one line to data_directory/tlsrpt/DAY
 * (DAY is the UTC date, YYYY-MM-DD), under an exclusive lock:
 *
 *     TIME <tab> POLICY-DOMAIN <tab> POLICY-TYPE <tab> RESULT <tab> MX-HOST <tab> ADDRESS
 *
 * POLICY-TYPE is RFC 8460's "tlsa" (DANE levels) or "no-policy-found";
 * RESULT is "success" or one of its result types (starttls-not-supported,
 * certificate-host-mismatch, certificate-expired, certificate-not-trusted,
 * validation-failure, tlsa-invalid).  A report writer reads the day's
 * file.  A failure to record is logged and changes nothing else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "smtp.h"

void tlsrpt_record(const struct smtp_session *s, const char *result)
{
    if (s->setup->lmtp || !conf_bool("smtp_tls_report_enable"))
        return;
    char dir[1024], path[1100], line[1200];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    if (snprintf(dir, sizeof dir, "%s/tlsrpt", conf_str("data_directory")) >= (int)sizeof dir)
        return;
    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        msg_warn("cannot make %s: %m", dir);
        return;
    }
    snprintf(path, sizeof path, "%s/%04d-%02d-%02d", dir, tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
    enum tls_level level = s->tls.level;
    int n = snprintf(line, sizeof line, "%lld\t%s\t%s\t%s\t%s\t%s\n", (long long)now,
                     *s->tls.nexthop_domain ? s->tls.nexthop_domain : s->target->host,
                     level == TLS_DANE || level == TLS_DANE_ONLY ? "tlsa" : "no-policy-found",
                     result, s->target->host, s->target->addr);
    if (n <= 0 || n >= (int)sizeof line || strchr(line, '\r'))
        return;
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        msg_warn("cannot open %s: %m", path);
        return;
    }
    if (flock(fd, LOCK_EX) != 0 || write_all(fd, line, (size_t)n) != 0)
        msg_warn("cannot record the TLS result in %s: %m", path);
    close(fd);
}
