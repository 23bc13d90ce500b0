/* auth.c - SMTP AUTH (RFC 4954) in smtpd: the EHLO keyword, the AUTH
 * command and its exchange, with Postfix's replies and log lines.  The
 * exchange itself runs elsewhere (doc/auth.md): with smtpd_sasl_type =
 * cyrus in the auth service, postern-auth (libsasl2 loads its mechanisms
 * with dlopen and cannot live in this static program, and smtpd must not
 * be able to read sasldb or /etc/shadow); with dovecot in Dovecot's auth
 * server, whose line protocol smtpd speaks itself.  smtpd only passes
 * base64 lines between the client and the server, and keeps the user
 * name the server answers. */
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
#include "domainlist.h"
#include "fdio.h"
#include "linereader.h"
#include "log.h"
#include "smtpd.h"
#include "xalloc.h"

/* The connection to the auth server, for the whole session. */
struct auth_service {
    int fd;                     /* -1: not connected */
    int dovecot;                /* smtpd_sasl_type = dovecot */
    int tls;                    /* the TLS state the mechanisms are for */
    struct line_reader *reader;
    struct strbuf mechanisms;   /* the server's: "PLAIN LOGIN" */
    struct strbuf announced;    /* those smtpd_sasl_mechanism_filter lets EHLO name */
    unsigned request_id;        /* dovecot: the AUTH request's id */
};

static struct auth_service service = {.fd = -1};

void auth_prepare(struct session *s)
{
    s->sasl_enabled = conf_bool("smtpd_sasl_auth_enable") && !s->local_submission;
    const char *type = conf_str("smtpd_sasl_type");
    int dovecot = strcasecmp(type, "dovecot") == 0;
    if (service.dovecot != dovecot)     /* else not written: a page shared with the zygote */
        service.dovecot = dovecot;
    if (s->sasl_enabled && !service.dovecot && strcasecmp(type, "cyrus") != 0) {
        msg_warn("unsupported SASL server implementation: %s", type);
        s->sasl_enabled = 0;
    }
    s->sasl_exception = s->sasl_enabled && policy_client_in(s, "smtpd_sasl_exceptions_networks");
}

/* AUTH may be used now: enabled, and under TLS if smtpd_tls_auth_only or
 * TLS is required (Postfix offers no AUTH before STARTTLS under encrypt). */
static int auth_allowed(const struct session *s)
{
    return s->sasl_enabled
        && ((!conf_bool("smtpd_tls_auth_only") && s->tls_level != TLS_LEVEL_ENCRYPT)
            || tls_session_active(s, NULL));
}

/* Forget the service connection (it failed or the TLS state changed). */
static void service_close(void)
{
    if (service.fd >= 0)
        close(service.fd);
    service.fd = -1;
    strbuf_reset(&service.mechanisms);
    strbuf_reset(&service.announced);
}

/* smtpd_sasl_mechanism_filter (Postfix 3.6): which of the server's
 * mechanisms EHLO names, a list of names, /file/name and type:table items
 * with "!" to exclude, first match deciding, as Postfix's string lists.
 * It only changes the announcement: AUTH with another of the server's
 * mechanisms still goes to the server, as in Postfix. */
static void filter_mechanisms(void)
{
    static struct domainlist *filter;
    static int opened;
    if (!opened) {
        struct strbuf err = STRBUF_INIT;
        opened = 1;
        if (*conf_str("smtpd_sasl_mechanism_filter")
            && !(filter = domainlist_from_param("smtpd_sasl_mechanism_filter", &err)))
            msg_warn("%s", strbuf_str(&err));
        strbuf_free(&err);
    }
    strbuf_reset(&service.announced);
    const char *p = strbuf_str(&service.mechanisms);
    while (*p) {
        size_t n = strcspn(p, " ");
        char name[64];
        snprintf(name, sizeof name, "%.*s", (int)(n < 63 ? n : 63), p);
        int match = !*conf_str("smtpd_sasl_mechanism_filter") || (filter && domainlist_match(filter, name) == 1);
        if (n && match)
            strbuf_printf(&service.announced, "%s%s", service.announced.len ? " " : "", name);
        p += n;
        while (*p == ' ')
            p++;
    }
    if (service.mechanisms.len && !service.announced.len)
        msg_warn("smtpd_sasl_mechanism_filter discards all mechanisms in '%s'", strbuf_str(&service.mechanisms));
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

/* Read the server's next line into line; 0, or -1 with the connection
 * closed (the server went away or sent a line too long). */
static int service_read(struct strbuf *line)
{
    int r = line_read(service.reader, line, AUTH_LINE_MAX);
    if (r == 1)
        return 0;
    if (r == 2)
        msg_warn("auth service: line too long");
    else
        msg_warn("auth service: %s", r < 0 ? strerror(errno) : "connection closed");
    service_close();
    return -1;
}

/* Read a postern-auth answer: a letter, then a space and text or nothing. */
static int cyrus_read(struct strbuf *line)
{
    if (service_read(line) < 0)
        return -1;
    if (line->len && (line->len == 1 || line->s[1] == ' '))
        return 0;
    msg_warn("auth service: bad answer");
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

/* Connect to the server's socket at path (a relative one is in
 * queue_directory); 0, or -1 (logged). */
static int service_connect(struct session *s, const char *path)
{
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    int n = *path == '/' ? snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path)
                         : snprintf(addr.sun_path, sizeof addr.sun_path, "%s/%s",
                                    conf_str("queue_directory"), path);
    if (n < 0 || (size_t)n >= sizeof addr.sun_path) {
        msg_warn("auth service: socket path too long: %s", path);
        return -1;
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        msg_warn("auth service: socket: %s", strerror(errno));
        return -1;
    }
    /* the server may wait for saslauthd; never longer than the client may */
    struct timeval tv = {.tv_sec = s->timeout > 0 ? s->timeout : 300};
    if (setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv) != 0
        || connect(fd, (struct sockaddr *)&addr, sizeof addr) != 0) {
        msg_warn("auth service: connect to %s: %s", addr.sun_path, strerror(errno));
        close(fd);
        return -1;
    }
    service.fd = fd;
    if (!service.reader)
        service.reader = xcalloc(1, sizeof *service.reader);
    line_reader_init(service.reader, fd);
    return 0;
}

/* The security options in force (before or under TLS). */
static const char *security_param(int tls)
{
    return tls ? "smtpd_sasl_tls_security_options" : "smtpd_sasl_security_options";
}

/* postern-auth: say who we are; the mechanisms land in service.mechanisms.
 * 0, or -1 (logged) when the service cannot be used. */
static int cyrus_open(struct session *s, int tls)
{
    if (service_connect(s, AUTH_SOCKET) < 0)
        return -1;
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
    flag_list(security_param(tls), &line);
    strbuf_putc(&line, '\n');
    int r = service_send(&line) == 0 && cyrus_read(&line) == 0 ? 0 : -1;
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

/* Does a Dovecot mechanism (its MECH line's flags, tab-separated) pass
 * the security options?  As Postfix: noanonymous drops "anonymous",
 * noplaintext "plaintext", ...; forward_secrecy and mutual_auth require
 * theirs; "private" mechanisms are never offered. */
static int dovecot_mechanism_allowed(const char *flags, int tls)
{
    static const struct {
        const char *option, *flag;
        int required;
    } rules[] = {
        {"noanonymous", "anonymous", 0}, {"noplaintext", "plaintext", 0},
        {"nodictionary", "dictionary", 0}, {"noactive", "active", 0},
        {"forward_secrecy", "forward-secrecy", 1}, {"mutual_auth", "mutual-auth", 1},
    };
    struct strlist options = STRLIST_INIT, words = STRLIST_INIT;
    conf_list(security_param(tls), &options);
    for (const char *p = flags; *p;) {
        size_t n = strcspn(p, "\t");
        char word[32];
        snprintf(word, sizeof word, "%.*s", (int)(n < 31 ? n : 31), p);
        strlist_add(&words, word);
        p += n + (p[n] ? 1 : 0);
    }
    int allowed = 1;
    for (size_t w = 0; w < words.count; w++)
        if (strcasecmp(words.item[w], "private") == 0)
            allowed = 0;
    for (size_t o = 0; o < options.count && allowed; o++)
        for (size_t r = 0; r < sizeof rules / sizeof rules[0]; r++) {
            if (strcasecmp(options.item[o], rules[r].option) != 0)
                continue;
            int has = 0;
            for (size_t w = 0; w < words.count; w++)
                has |= strcasecmp(words.item[w], rules[r].flag) == 0;
            if (has != rules[r].required)
                allowed = 0;
        }
    strlist_free(&options);
    strlist_free(&words);
    return allowed;
}

/* Dovecot's auth server (its auth protocol 1.x, client side): the
 * handshake, and the mechanisms the security options allow. */
static int dovecot_open(struct session *s, int tls)
{
    if (service_connect(s, conf_str("smtpd_sasl_path")) < 0)
        return -1;
    struct strbuf line = STRBUF_INIT;
    strbuf_printf(&line, "VERSION\t1\t1\nCPID\t%ld\n", (long)getpid());
    int r = service_send(&line);
    int version_ok = 0;
    while (r == 0) {
        if ((r = service_read(&line)) < 0)
            break;
        char empty[1] = "";
        char *text = line.s ? line.s : empty;
        if (strncmp(text, "VERSION\t", 8) == 0) {
            version_ok = atoi(text + 8) == 1;
        } else if (strncmp(text, "MECH\t", 5) == 0) {
            char *name = text + 5;
            size_t n = strcspn(name, "\t");
            char *flags = name + n + (name[n] ? 1 : 0);
            name[n] = 0;
            if (dovecot_mechanism_allowed(flags, tls) && n && strspn(name, "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_") == n)
                strbuf_printf(&service.mechanisms, "%s%s", service.mechanisms.len ? " " : "", name);
        } else if (strcmp(text, "DONE") == 0) {
            break;
        }
    }
    if (r == 0 && !version_ok) {
        msg_warn("auth service: %s: not Dovecot's auth protocol 1", conf_str("smtpd_sasl_path"));
        service_close();
        r = -1;
    }
    strbuf_free(&line);
    return r;
}

/* Connect unless connected for this TLS state; 0, or -1 (logged). */
static int service_open(struct session *s)
{
    int tls = tls_session_active(s, NULL);
    if (service.fd >= 0 && service.tls == tls)
        return 0;
    service_close();
    service.tls = tls;
    int r = service.dovecot ? dovecot_open(s, tls) : cyrus_open(s, tls);
    if (r == 0)
        filter_mechanisms();
    return r;
}

/* Begin an exchange: 0, or -1 with the connection closed. */
static int request_start(struct session *s, const char *method, const char *initial)
{
    struct strbuf line = STRBUF_INIT;
    if (!service.dovecot) {
        strbuf_printf(&line, "A %s%s%s\n", method, initial ? " " : "", initial ? initial : "");
    } else {
        strbuf_printf(&line, "AUTH\t%u\t%s\tservice=%s\tnologin", ++service.request_id, method,
                      conf_str("smtpd_sasl_service"));
        if (*s->client.local_address)
            strbuf_printf(&line, "\tlip=%s", s->client.local_address);
        if (*s->client.address && *s->client.port)
            strbuf_printf(&line, "\trip=%s", s->client.address);
        if (*s->client.local_port)
            strbuf_printf(&line, "\tlport=%s", s->client.local_port);
        if (*s->client.port)
            strbuf_printf(&line, "\trport=%s", s->client.port);
        if (tls_session_active(s, NULL))
            strbuf_puts(&line, "\tsecured");
        if (initial)
            strbuf_printf(&line, "\tresp=%s", strcmp(initial, "=") == 0 ? "" : initial);
        strbuf_putc(&line, '\n');
    }
    int r = service_send(&line);
    strbuf_free(&line);
    return r;
}

/* Answer a challenge with the client's line (base64). */
static int request_continue(const char *response)
{
    struct strbuf line = STRBUF_INIT;
    if (service.dovecot)
        strbuf_printf(&line, "CONT\t%u\t%s\n", service.request_id, response);
    else
        strbuf_printf(&line, "R %s\n", response);
    int r = service_send(&line);
    strbuf_free(&line);
    return r;
}

/* The value of a Dovecot reply's "name=value" field, or NULL. */
static const char *dovecot_field(char *fields, const char *name)
{
    size_t len = strlen(name);
    for (char *p = fields; p && *p;) {
        char *end = strchr(p, '\t');
        if (end)
            *end = 0;
        if (strncmp(p, name, len) == 0 && p[len] == '=')
            return p + len + 1;
        if (strcmp(p, name) == 0)
            return "";
        p = end ? end + 1 : NULL;
    }
    return NULL;
}

/* The server's next answer, as postern-auth words it: "C challenge",
 * "K user", "F reason", "T reason".  0, or -1 with the connection closed. */
static int request_answer(struct strbuf *answer)
{
    if (!service.dovecot)
        return cyrus_read(answer);
    for (;;) {
        if (service_read(answer) < 0)
            return -1;
        char empty[1] = "";
        char *text = answer->s ? answer->s : empty;
        size_t n = strcspn(text, "\t");
        char *id = text + n + (text[n] ? 1 : 0);
        size_t idn = strcspn(id, "\t");
        char *rest = id + idn + (id[idn] ? 1 : 0);
        id[idn] = 0;
        text[n] = 0;
        if ((unsigned)strtoul(id, NULL, 10) != service.request_id)
            continue;           /* an answer to an abandoned request */
        struct strbuf out = STRBUF_INIT;
        if (strcmp(text, "CONT") == 0) {
            strbuf_printf(&out, "C %s", rest);
        } else if (strcmp(text, "OK") == 0) {
            const char *user = dovecot_field(rest, "user");
            if (user && *user && strcspn(user, " \r\n") == strlen(user))
                strbuf_printf(&out, "K %s", user);
            else
                strbuf_puts(&out, "T - no user name");
        } else if (strcmp(text, "FAIL") == 0) {
            static char copy[AUTH_LINE_MAX], copy2[AUTH_LINE_MAX];
            snprintf(copy, sizeof copy, "%s", rest);
            snprintf(copy2, sizeof copy2, "%s", rest);
            const char *reason = dovecot_field(copy, "reason");
            const char *user = dovecot_field(copy2, "user");
            int temporary = dovecot_field(rest, "temp") != NULL;
            if (!user || !*user || strcspn(user, " ") != strlen(user))
                user = "-";
            strbuf_printf(&out, "%c %s %s", temporary ? 'T' : 'F', user,
                          reason && *reason ? reason : "authentication failure");
        } else {
            msg_warn("auth service: unexpected answer %s", text);
            strbuf_free(&out);
            service_close();
            return -1;
        }
        strbuf_set(answer, out.s);
        strbuf_free(&out);
        return 0;
    }
}

void auth_forget(struct session *s)
{
    s->sasl_username[0] = 0;
    s->sasl_method[0] = 0;
    service_close();
}

const char *auth_ehlo_mechanisms(struct session *s)
{
    if (!auth_allowed(s) || s->sasl_exception)
        return NULL;
    if (service_open(s) < 0 || !service.announced.len)
        return NULL;
    return strbuf_str(&service.announced);
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

/* The exchange failed: Postfix 3.7's warning (fail2ban's postfix-sasl
 * filter reads it), with the name tried when the server said it, and
 * reply. */
static void auth_failed(struct session *s, const char *method, int temporary, const char *user,
                        const char *reason)
{
    struct strbuf text = STRBUF_INIT, name = STRBUF_INIT, mech = STRBUF_INIT;
    log_printable(&text, reason, 200);
    log_printable(&name, user && *user && strcmp(user, "-") != 0 ? user : "(unavailable)", 255);
    msg_warn("%s: SASL %s authentication failed: %s, sasl_username=%s", s->client.namaddr,
             log_printable(&mech, method, 20), text.s, name.s);
    if (temporary)
        reply(s, "454 4.7.0 Temporary authentication failure: %s", text.s);
    else
        reply(s, "535 5.7.8 Error: authentication failed: %s", text.s);
    strbuf_free(&text);
    strbuf_free(&name);
    strbuf_free(&mech);
}

/* A failure answer "F USER REASON" / "T USER REASON". */
static void answer_failed(struct session *s, const char *method, const char *answer)
{
    const char *user = answer[1] ? answer + 2 : "";
    size_t n = strcspn(user, " ");
    char name[256];
    snprintf(name, sizeof name, "%.*s", (int)(n < 255 ? n : 255), user);
    const char *reason = user[n] ? user + n + 1 : "";
    auth_failed(s, method, answer[0] == 'T', name, reason);
}

/* Run the exchange for a mechanism; 1 when the client is authenticated. */
static int exchange(struct session *s, const char *method, const char *initial)
{
    struct strbuf line = STRBUF_INIT, answer = STRBUF_INIT;
    int ok = 0;
    size_t limit = (size_t)conf_int("smtpd_sasl_response_limit");
    if (limit > AUTH_LINE_MAX - 8)
        limit = AUTH_LINE_MAX - 8;
    if (initial && strlen(initial) > limit) {
        /* the initial response is a response line like any other */
        reply(s, "500 5.5.6 Authentication exchange line is too long");
        goto done;
    }
    if (request_start(s, method, initial) < 0)
        goto unavailable;
    for (;;) {
        if (request_answer(&answer) < 0)
            goto unavailable;
        const char *text = answer.len > 2 ? answer.s + 2 : "";
        switch (answer.s[0]) {
        case 'K':
            /* the name goes into replies, log lines and the envelope: a
             * printable word that fits, or a temporary failure */
            if (!*text || strlen(text) >= sizeof s->sasl_username
                || strcspn(text, " \t\r\n") != strlen(text)) {
                msg_warn("auth service: unusable user name in its answer");
                service_close();
                goto unavailable;
            }
            for (const char *p = text; *p; p++)
                if ((unsigned char)*p < 32 || *p == 127) {
                    msg_warn("auth service: unusable user name in its answer");
                    service_close();
                    goto unavailable;
                }
            snprintf(s->sasl_username, sizeof s->sasl_username, "%s", text);
            snprintf(s->sasl_method, sizeof s->sasl_method, "%s", method);
            ok = 1;
            goto done;
        case 'F':
        case 'T':
            answer_failed(s, method, answer.s);
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
            auth_failed(s, method, 0, NULL, "bad protocol / cancel");
            goto done;
        }
        if (request_continue(strbuf_str(&line)) < 0)
            goto unavailable;
    }
unavailable:
    auth_failed(s, method, 1, NULL, "Connection lost to authentication server");
done:
    strbuf_free(&line);
    strbuf_free(&answer);
    return ok;
}

/* smtpd_client_auth_rate_limit: every AUTH command counts, accepted or
 * not, per client and anvil_rate_time_unit, across the service's sessions
 * (clientrate.c).  1 (replied, logged) when this one is over the limit. */
static int auth_rate_exceeded(struct session *s)
{
    if (!client_rate_exceeded(s, CLIENT_AUTH, 1))
        return 0;
    reply(s, "450 4.7.1 Error: too many AUTH commands from %s", s->client.address);
    return 1;
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
    if (auth_rate_exceeded(s))
        goto failed;
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
        /* Postfix hands it to the library, which says this */
        auth_failed(s, method, 0, NULL, "no mechanism available");
        goto failed;
    }
    if (initial && strcspn(initial, "\t\r\n") != strlen(initial)) {
        reply(s, "501 5.5.2 Cannot decode response");
        goto failed;
    }
    if (!exchange(s, method, initial))
        goto failed;
    reply(s, "235 2.7.0 Authentication successful");
    return;
failed:
    s->command_failed[CMD_AUTH]++;
    session_error(s);
}
