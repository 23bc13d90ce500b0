/* tlsrpt.c - the TLS results the smtp runner records for TLS-RPT (RFC
 * 8460): with smtp_tls_report_enable (postern's own parameter, default
 * no), each TLS attempt appends one line (lib/mail/tlsrpt.h) to
 * data_directory/tlsrpt/DAY (DAY is the UTC date, YYYY-MM-DD), under an
 * exclusive lock.  POLICY-TYPE is "tlsa" at the DANE levels, what an
 * MTA-STS policy server said (policy_type=, tlspolicy.c), else
 * "no-policy-found"; RESULT "success" or a result type: those tls.c sees
 * (starttls-not-supported, certificate-host-mismatch, certificate-expired,
 * certificate-not-trusted, validation-failure, tlsa-invalid),
 * dnssec-invalid for a bogus TLSA answer, and the policy server's
 * policy_failure= (sts-policy-fetch-error, sts-policy-invalid,
 * sts-webpki-invalid) in place of a success.  `postern tlsrpt` reads the
 * finished days and sends the reports.  A failure to record is logged
 * and changes nothing else.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
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
#include "tlsrpt.h"

void tlsrpt_record(const struct smtp_session *s, const char *result)
{
    if (s->setup->lmtp || !conf_bool("smtp_tls_report_enable"))
        return;
    char dir[1024], path[1100], line[4096];
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
    const struct tls_policy *p = &s->tls;
    enum tls_level level = p->level;
    struct tlsrpt_line r;
    memset(&r, 0, sizeof r);
    r.time = (long long)now;
    snprintf(r.domain, sizeof r.domain, "%s",
             *p->policy_domain ? p->policy_domain
             : *p->nexthop_domain ? p->nexthop_domain : s->target->host);
    snprintf(r.policy_type, sizeof r.policy_type, "%s",
             *p->policy_type ? p->policy_type
             : level == TLS_DANE || level == TLS_DANE_ONLY || level == TLS_HALF_DANE
                 ? "tlsa" : "no-policy-found");
    /* a policy the MTA-STS server could not fetch or validate: each session
     * that went on without it counts as that failure */
    snprintf(r.result, sizeof r.result, "%s",
             *p->policy_failure && strcmp(result, "success") == 0 ? p->policy_failure : result);
    snprintf(r.mx_host, sizeof r.mx_host, "%s", s->target->host);
    if (strlen(s->target->addr) >= sizeof r.receiving_ip)
        return;
    memcpy(r.receiving_ip, s->target->addr, strlen(s->target->addr) + 1);
    /* the address this runner sent from (RFC 8460's sending-mta-ip) */
    struct sockaddr_storage local;
    socklen_t len = sizeof local;
    if (s->conn.fd >= 0 && getsockname(s->conn.fd, (struct sockaddr *)&local, &len) == 0) {
        if (local.ss_family == AF_INET)
            inet_ntop(AF_INET, &((struct sockaddr_in *)&local)->sin_addr, r.sending_ip,
                      sizeof r.sending_ip);
        else if (local.ss_family == AF_INET6)
            inet_ntop(AF_INET6, &((struct sockaddr_in6 *)&local)->sin6_addr, r.sending_ip,
                      sizeof r.sending_ip);
    }
    if (p->policy_string.len < sizeof r.policy_string)
        snprintf(r.policy_string, sizeof r.policy_string, "%s", strbuf_str(&p->policy_string));
    int n = tlsrpt_line_format(&r, line, sizeof line);
    if (n <= 0)
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
