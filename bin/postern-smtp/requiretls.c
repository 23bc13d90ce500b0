/* requiretls.c - RFC 8689 in the runner.  A message whose envelope has
 * REQUIRETLS=yes (MAIL FROM ... REQUIRETLS at smtpd, or a bounce of such a
 * message) goes only over TLS to a server whose certificate the policy
 * verified (DANE, dane-only, fingerprint, verify, secure: the level comes
 * from smtp_tls_security_level, smtp_tls_policy_maps, DANE or an MTA-STS
 * policy table) and that offers REQUIRETLS itself; MAIL FROM then carries
 * REQUIRETLS.  Otherwise the server is skipped, and at the last one the
 * recipients bounce: 5.7.10 ("Encryption needed", RFC 5248) when the
 * policy or the TLS session fails, 5.7.30 ("REQUIRETLS support required",
 * RFC 8689 section 5) when the server lacks the extension.  A unix-domain
 * LMTP socket is local delivery and is not held to it.
 *
 * A message without REQUIRETLS whose header has "TLS-Required: No" (RFC
 * 8689 section 3 and 4.2.2) asks that the recipient's policy be ignored:
 * a level above encrypt becomes may (TLS when offered, any certificate,
 * and the clear when TLS fails, as may does).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include "fdio.h"
#include "log.h"
#include "smtp.h"

int requiretls_wanted(const struct smtp_session *s)
{
    const char *v = runner_attr(&s->batch->req->attrs, "REQUIRETLS");
    return v && strcasecmp(v, "no") != 0 && s->target->sa.ss_family != AF_UNIX;
}

/* The levels at which the server's certificate is authenticated. */
static int level_verifies(enum tls_level level)
{
    return level == TLS_FINGERPRINT || level == TLS_DANE || level == TLS_DANE_ONLY
           || level == TLS_VERIFY || level == TLS_SECURE;
}

const char *requiretls_dsn(const struct smtp_session *s, const char *dsn)
{
    if (!requiretls_wanted(s))
        return dsn;
    return s->final ? "5.7.10" : "4.7.10";
}

/* 1 when the header of the message has "TLS-Required: No".  The header
 * is read from the queue file, at most its first 64 KiB. */
static int header_says_tls_not_required(const struct runner_request *req)
{
    char buf[65536];
    size_t want = req->msg_length < (off_t)sizeof buf - 1 ? (size_t)req->msg_length : sizeof buf - 1;
    ssize_t n = pread_retry(req->msg_fd, buf, want, req->msg_offset);
    if (n <= 0)
        return 0;
    buf[n] = '\0';
    for (char *line = buf; *line && *line != '\n' && !(line[0] == '\r' && line[1] == '\n');) {
        char *end = strchr(line, '\n');
        if (strncasecmp(line, "TLS-Required:", 13) == 0) {
            /* the field's value, unfolded: its continuation lines start
             * with a space or a tab (RFC 5322 section 2.2.3) */
            char word[4];
            size_t len = 0, words = 0;
            int in_word = 0;
            for (const char *v = line + 13; *v; v++) {
                if (*v == '\n' && v[1] != ' ' && v[1] != '\t')
                    break;
                if (*v == ' ' || *v == '\t' || *v == '\r' || *v == '\n') {
                    in_word = 0;
                    continue;
                }
                if (!in_word)
                    words++;
                in_word = 1;
                if (words == 1 && len < sizeof word)
                    word[len++] = *v;
                else if (words == 1)
                    len = sizeof word + 1;      /* too long to be "No" */
            }
            /* the value is "No", case-insensitively (RFC 8689 section 5) */
            if (words == 1 && len == 2 && strncasecmp(word, "No", 2) == 0)
                return 1;
        }
        if (!end)
            break;
        line = end + 1;
    }
    return 0;
}

int requiretls_policy(struct smtp_session *s)
{
    const struct runner_request *req = s->batch->req;
    if (!requiretls_wanted(s)) {
        if (s->tls.level > TLS_ENCRYPT && !runner_attr(&req->attrs, "REQUIRETLS")
            && header_says_tls_not_required(req)) {
            msg_info("%s: TLS-Required: No: the %s policy for %s is not enforced",
                     *req->queue_id ? req->queue_id : "NOQUEUE", tls_level_name(s->tls.level),
                     s->relay);
            s->tls.level = TLS_MAY;
        }
        return 0;
    }
    if (level_verifies(s->tls.level))
        return 0;
    batch_result_open(s->batch, s->relay, 0, requiretls_dsn(s, NULL),
                      "REQUIRETLS: the TLS security level for %s is \"%s\", "
                      "which does not verify the server's certificate", s->host,
                      tls_level_name(s->tls.level));
    return -1;
}

int requiretls_server(struct smtp_session *s)
{
    if (!requiretls_wanted(s))
        return 0;
    if (!s->tls_active || !s->tls_verified) {
        batch_result_open(s->batch, s->relay, 0, requiretls_dsn(s, NULL),
                          "REQUIRETLS: no verified TLS session with host %s", s->host);
        return -1;
    }
    if (!s->features.requiretls) {
        batch_result_open(s->batch, s->relay, 0, s->final ? "5.7.30" : "4.7.30",
                          "REQUIRETLS support required, but was not offered by host %s", s->host);
        return -1;
    }
    return 0;
}
