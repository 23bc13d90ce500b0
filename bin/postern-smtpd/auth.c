/* auth.c - SMTP AUTH (RFC 4954) in smtpd: the EHLO keyword, the AUTH
 * command and its exchange, with Postfix's replies and log lines.  The
 * exchange itself runs in the auth service, postern-auth (doc/auth.md):
 * libsasl2 loads its mechanisms with dlopen and cannot live in this
 * static program, and smtpd must not be able to read sasldb or
 * /etc/shadow.  smtpd only passes base64 lines between the client and
 * the service, and keeps the user name the service answers. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <unistd.h>

#include "auth_proto.h"
#include "config.h"
#include "fdio.h"
#include "linereader.h"
#include "log.h"
#include "smtpd.h"
#include "xalloc.h"

/* Is the session under TLS?  STARTTLS is being built beside this (the
 * tls branch): until it lands, no session is; the merge replaces this
 * function with its query.  The one place SASL asks. */
int smtpd_tls_active(const struct session *s)
{
    (void)s;
    return 0;
}

/* The connection to the auth service, for the whole session. */
struct auth_service {
    int fd;                     /* -1: not connected */
    int tls;                    /* the TLS state the S line was sent for */
    struct line_reader *reader;
    struct strbuf mechanisms;   /* the M answer */
};

static struct auth_service service = {.fd = -1};

void auth_prepare(struct session *s)
{
    s->sasl_enabled = conf_bool("smtpd_sasl_auth_enable") && !s->local_submission;
    if (s->sasl_enabled && strcasecmp(conf_str("smtpd_sasl_type"), "cyrus") != 0) {
        msg_warn("unsupported SASL server implementation: %s (postern supports cyrus)",
                 conf_str("smtpd_sasl_type"));
        s->sasl_enabled = 0;
    }
    s->sasl_exception = s->sasl_enabled && policy_client_in(s, "smtpd_sasl_exceptions_networks");
}

/* AUTH may be used now: enabled, and under TLS if smtpd_tls_auth_only. */
static int auth_allowed(const struct session *s)
{
    return s->sasl_enabled && (!conf_bool("smtpd_tls_auth_only") || smtpd_tls_active(s));
}

/* Forget the service connection (it failed or the TLS state changed). */
static void service_close(void)
{
    if (service.fd >= 0)
        close(service.fd);
    service.fd = -1;
    strbuf_reset(&service.mechanisms);
}

/* Send a line to the service; 0, or -1 with the connection closed. */
static int service_send(const struct strbuf *line)
{
    if (write_all(service.fd, line->s, line->len) == 0)
        return 0;
    msg_warn("auth service: write: %s", strerror(errno));
    service_close();
    return -1;
}

/* Read the service's answer into line; 0, or -1 with the connection
 * closed (the service went away or answered nonsense). */
static int service_read(struct strbuf *line)
{
    int r = line_read(service.reader, line, AUTH_LINE_MAX);
    if (r == 1 && line->len && (line->len == 1 || line->s[1] == ' '))
        return 0;
    if (r == 1)
        msg_warn("auth service: bad answer");
    else
        msg_warn("auth service: %s", r < 0 ? strerror(errno) : "connection closed");
    service_close();
    return -1;
}

/* "a, b c" (a Postfix list) as "a,b,c", or "-" for none. */
static void flag_list(const char *param, struct strbuf *out)
{
    struct strlist words = STRLIST_INIT;
    conf_list(param, &words);
    for (size_t i = 0; i < words.count; i++)
        strbuf_printf(out, "%s%s", i ? "," : "", words.item[i]);
    if (!words.count)
        strbuf_puts(out, "-");
    strlist_free(&words);
}

/* Connect and say who we are: the mechanisms land in service.mechanisms.
 * 0, or -1 (logged) when the service cannot be used. */
static int service_open(struct session *s)
{
    int tls = smtpd_tls_active(s);
    if (service.fd >= 0 && service.tls == tls)
        return 0;
    service_close();
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n = snprintf(addr.sun_path, sizeof addr.sun_path, "%s/%s", conf_str("queue_directory"),
                     AUTH_SOCKET);
    if (n < 0 || (size_t)n >= sizeof addr.sun_path) {
        msg_warn("auth service: socket path too long");
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        msg_warn("auth service: socket: %s", strerror(errno));
        return -1;
    }
    /* the service may wait for saslauthd; never longer than the client may */
    struct timeval tv = {.tv_sec = s->timeout > 0 ? s->timeout : 300};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0
        || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        msg_warn("auth service: connect to %s: %s", addr.sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    service.fd = fd;
    service.tls = tls;
    if (!service.reader)
        service.reader = xcalloc(1, sizeof *service.reader);
    line_reader_init(service.reader, fd);
    struct strbuf line = STRBUF_INIT;
    const char *realm = conf_str("smtpd_sasl_local_domain");
    strbuf_printf(&line, "S %s %s %s ", conf_str("smtpd_sasl_path"), conf_str("smtpd_sasl_service"),
                  *realm ? realm : "-");
    if (*s->client.local_address && *s->client.local_port)
        strbuf_printf(&line, "%s;%s ", s->client.local_address, s->client.local_port);
    else
        strbuf_puts(&line, "- ");
    if (*s->client.port)
        strbuf_printf(&line, "%s;%s ", s->client.address, s->client.port);
    else
        strbuf_puts(&line, "- ");
    flag_list(tls ? "smtpd_sasl_tls_security_options" : "smtpd_sasl_security_options", &line);
    strbuf_putc(&line, '\n');
    int r = service_send(&line) == 0 && service_read(&line) == 0 ? 0 : -1;
    if (r == 0 && line.s[0] != 'M') {
        msg_warn("auth service: %s", line.s);
        service_close();
        r = -1;
    }
    if (r == 0)
        strbuf_set(&service.mechanisms, line.len > 2 ? line.s + 2 : "");
    strbuf_free(&line);
    return r;
}

const char *auth_ehlo_mechanisms(struct session *s)
{
    if (!auth_allowed(s) || s->sasl_exception)
        return NULL;
    if (service_open(s) < 0 || !service.mechanisms.len)
        return NULL;
    return strbuf_str(&service.mechanisms);
}

/* Is mechanism one of the offered ones? */
static int mechanism_offered(const char *mechanism)
{
    const char *p = strbuf_str(&service.mechanisms);
    size_t len = strlen(mechanism);
    while (*p) {
        size_t n = strcspn(p, " ");
        if (n == len && strncasecmp(p, mechanism, len) == 0)
            return 1;
        p += n;
        while (*p == ' ')
            p++;
    }
    return 0;
}

/* The exchange failed: Postfix's warning (fail2ban's postfix-sasl filter
 * reads it) and reply. */
static void auth_failed(struct session *s, const char *method, int temporary, const char *reason)
{
    struct strbuf printable = STRBUF_INIT;
    log_printable(&printable, reason, 200);
    msg_warn("%s: SASL %s authentication failed: %s", s->client.namaddr, method, printable.s);
    if (temporary)
        reply(s, "454 4.7.0 Temporary authentication failure: %s", printable.s);
    else
        reply(s, "535 5.7.8 Error: authentication failed: %s", printable.s);
    strbuf_free(&printable);
}

/* Run the exchange for a mechanism; 1 when the client is authenticated. */
static int exchange(struct session *s, const char *method, const char *initial)
{
    struct strbuf line = STRBUF_INIT, answer = STRBUF_INIT;
    int ok = 0;
    size_t limit = (size_t)conf_int("smtpd_sasl_response_limit");
    if (limit > AUTH_LINE_MAX - 8)
        limit = AUTH_LINE_MAX - 8;
    strbuf_printf(&line, "A %s%s%s\n", method, initial ? " " : "", initial ? initial : "");
    if (service_send(&line) < 0)
        goto unavailable;
    for (;;) {
        if (service_read(&answer) < 0)
            goto unavailable;
        const char *text = answer.len > 2 ? answer.s + 2 : "";
        switch (answer.s[0]) {
        case 'K':
            snprintf(s->sasl_username, sizeof s->sasl_username, "%s", text);
            snprintf(s->sasl_method, sizeof s->sasl_method, "%s", method);
            ok = 1;
            goto done;
        case 'F':
            auth_failed(s, method, 0, text);
            goto done;
        case 'T':
            auth_failed(s, method, 1, text);
            goto done;
        case 'C':
            break;
        default:
            msg_warn("auth service: %s", answer.s);
            service_close();
            goto unavailable;
        }
        reply(s, "334 %s", text);
        int bare_lf;
        if (!io_read_line(s, &line, limit + 1, &bare_lf))
            session_lost(s);
        if (line.len > limit) {
            reply(s, "500 5.5.6 Authentication exchange line is too long");
            goto done;
        }
        if (strcmp(strbuf_str(&line), "*") == 0) {
            msg_warn("%s: SASL %s authentication aborted", s->client.namaddr, method);
            reply(s, "501 5.7.0 Authentication aborted");
            goto done;
        }
        /* base64 only: anything else is the service's to refuse, but a
         * space or a control would break the line */
        if (strcspn(strbuf_str(&line), " \t\r\n") != line.len) {
            auth_failed(s, method, 0, "invalid base64 data in response");
            goto done;
        }
        strbuf_reset(&answer);
        strbuf_printf(&answer, "R %s\n", strbuf_str(&line));
        if (service_send(&answer) < 0)
            goto unavailable;
    }
unavailable:
    auth_failed(s, method, 1, "Connection lost to authentication server");
done:
    strbuf_free(&line);
    strbuf_free(&answer);
    return ok;
}

void cmd_auth(struct session *s, char *args)
{
    while (*args == ' ')
        args++;
    if (s->helo_required && !s->helo.len) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        goto failed;
    }
    if (!auth_allowed(s)) {
        reply(s, "503 5.5.1 Error: authentication not enabled");
        goto failed;
    }
    if (s->tx.active) {
        reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        goto failed;
    }
    if (s->sasl_username[0]) {
        reply(s, "503 5.5.1 Error: already authenticated");
        goto failed;
    }
    char *method = strtok(args, " ");
    char *initial = method ? strtok(NULL, " ") : NULL;
    if (!method || strtok(NULL, " ") || strlen(method) > 20) {
        reply(s, "501 5.5.4 Syntax: AUTH mechanism");
        goto failed;
    }
    for (char *p = method; *p; p++)
        *p = (char)toupper((unsigned char)*p);
    if (service_open(s) < 0) {
        reply(s, "454 4.7.0 Temporary authentication failure: Connection lost to authentication server");
        goto failed;
    }
    if (!mechanism_offered(method)) {
        reply(s, "504 5.5.4 Unrecognized authentication type");
        goto failed;
    }
    if (initial && strcspn(initial, "\t\r\n") != strlen(initial)) {
        reply(s, "501 5.5.2 Cannot decode response");
        goto failed;
    }
    if (!exchange(s, method, initial))
        goto failed;
    /* Postfix's protocol names: ESMTPA, ESMTPSA under TLS */
    s->protocol = strcmp(s->protocol, "ESMTPS") == 0 ? "ESMTPSA" : "ESMTPA";
    reply(s, "235 2.7.0 Authentication successful");
    return;
failed:
    s->command_failed[CMD_AUTH]++;
    session_error(s);
}
