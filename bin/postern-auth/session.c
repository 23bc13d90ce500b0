/* session.c - one client of the auth service (doc/auth.md), in a child of
 * its own: the S line picks the Cyrus application name (which names its
 * configuration file, smtpd.conf for "smtpd", in cyrus_sasl_config_path
 * or libsasl2's own path), the service, the realm and the security flags;
 * A and R lines run one exchange at a time.  The client is not trusted:
 * every field is checked, every line bounded, and a client that waits
 * longer than smtpd_timeout is dropped. */
#include <ctype.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sasl/sasl.h>
#include <sasl/saslutil.h>

#include "auth.h"
#include "auth_proto.h"
#include "config.h"
#include "fdio.h"
#include "linereader.h"
#include "log.h"
#include "strbuf.h"

static int client_fd;
static struct line_reader reader;

/* Send one line to the client; a client gone ends the child. */
static void send_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void send_line(const char *fmt, ...)
{
    struct strbuf line = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&line, fmt, ap);
    va_end(ap);
    strbuf_putc(&line, '\n');
    if (write_all(client_fd, line.s, line.len) < 0)
        _exit(0);
    strbuf_free(&line);
}

/* A protocol error: say so and end. */
static _Noreturn void protocol_error(const char *reason)
{
    msg_warn("auth service: protocol error from client: %s", reason);
    send_line("E %s", reason);
    _exit(0);
}

/* libsasl2's log lines, as Postfix words them. */
static int sasl_log(void *context, int level, const char *message)
{
    (void)context;
    switch (level) {
    case SASL_LOG_ERR:
    case SASL_LOG_WARN:
        msg_warn("SASL authentication problem: %s", message);
        break;
    case SASL_LOG_FAIL:
        msg_warn("SASL authentication failure: %s", message);
        break;
    case SASL_LOG_NOTE:
        msg_info("SASL authentication info: %s", message);
        break;
    default:
        msg_debug("SASL: %s", message);
        break;
    }
    return SASL_OK;
}

/* A field of the S line: letters, digits and ".-_@:;[]" only, or "-". */
static int field_ok(const char *field)
{
    for (const char *p = field; *p; p++)
        if (!isalnum((unsigned char)*p) && !strchr(".-_@:;[]", *p))
            return 0;
    return *field != 0;
}

/* The security flags of a list of smtpd_sasl_security_options words. */
static int security_flags(char *list, unsigned *flags)
{
    static const struct {
        const char *name;
        unsigned flag;
    } words[] = {
        {"noplaintext", SASL_SEC_NOPLAINTEXT}, {"noactive", SASL_SEC_NOACTIVE},
        {"nodictionary", SASL_SEC_NODICTIONARY}, {"noanonymous", SASL_SEC_NOANONYMOUS},
        {"forward_secrecy", SASL_SEC_FORWARD_SECRECY}, {"mutual_auth", SASL_SEC_MUTUAL_AUTH},
    };
    *flags = 0;
    if (strcmp(list, "-") == 0)
        return 0;
    for (char *word = strtok(list, ","); word; word = strtok(NULL, ",")) {
        size_t i = 0;
        while (i < sizeof words / sizeof words[0] && strcmp(words[i].name, word) != 0)
            i++;
        if (i == sizeof words / sizeof words[0])
            return -1;
        *flags |= words[i].flag;
    }
    return 0;
}

/* The S line's settings, kept for each exchange's connection. */
struct settings {
    char app[256], service[256], realm[256], local[256], remote[256];
    unsigned flags;
};

/* A new libsasl2 connection with the settings: one for each exchange, as
 * a mechanism that finished (or failed) cannot start again on its own. */
static sasl_conn_t *connection_new(const struct settings *set)
{
    const char *realm = strcmp(set->realm, "-") == 0 ? NULL : set->realm;
    const char *local = strcmp(set->local, "-") == 0 ? NULL : set->local;
    const char *remote = strcmp(set->remote, "-") == 0 ? NULL : set->remote;
    sasl_conn_t *conn = NULL;
    int r = sasl_server_new(set->service, NULL, realm, local, remote, NULL, 0, &conn);
    if (r != SASL_OK) {
        msg_warn("SASL per-connection server initialization: %s", sasl_errstring(r, NULL, NULL));
        send_line("E SASL initialization failed");
        _exit(0);
    }
    /* no security layer (as Postfix), and the flags asked for: without
     * them libsasl2 offers ANONYMOUS */
    sasl_security_properties_t props;
    memset(&props, 0, sizeof props);
    props.min_ssf = 0;
    props.max_ssf = 0;
    props.maxbufsize = 0;
    props.security_flags = set->flags;
    if (sasl_setprop(conn, SASL_SEC_PROPS, &props) != SASL_OK) {
        send_line("E SASL security properties refused");
        _exit(0);
    }
    return conn;
}

/* The application libsasl2 was set up for ("" before). */
static char app_initialized[256];

/* Set libsasl2 up for an application (its configuration file, its
 * plugins loaded): 0, or -1 (logged). */
static int library_init(const char *app)
{
    static sasl_callback_t callbacks[] = {
        {SASL_CB_LOG, (int (*)(void))(void (*)(void))sasl_log, NULL},
        {SASL_CB_LIST_END, NULL, NULL},
    };
    if (app_initialized[0])
        sasl_done();
    app_initialized[0] = 0;
    const char *path = conf_str("cyrus_sasl_config_path");
    if (*path && sasl_set_path(SASL_PATH_TYPE_CONFIG, (char *)path) != SASL_OK)
        msg_warn("SASL: cannot set the configuration path to %s", path);
    int r = sasl_server_init(callbacks, app);
    if (r != SASL_OK) {
        msg_warn("SASL per-process initialization failed: %s", sasl_errstring(r, NULL, NULL));
        return -1;
    }
    snprintf(app_initialized, sizeof app_initialized, "%s", app);
    return 0;
}

void session_preload(const char *app)
{
    if (*app && !strchr(app, '/') && library_init(app) < 0)
        msg_warn("auth service: each client will try again");
}

/* The S line: set the library up and answer the mechanisms. */
static void start(char *args, struct settings *set)
{
    static int started;
    char *field[6];
    int n = 0;
    /* count every field: a seventh is an error, not ignored */
    for (char *word = strtok(args, " "); word; word = strtok(NULL, " ")) {
        if (n == 6)
            protocol_error("S needs six fields");
        field[n++] = word;
    }
    if (n != 6)
        protocol_error("S needs six fields");
    for (int i = 0; i < 5; i++)
        if (!field_ok(field[i]) || strlen(field[i]) >= sizeof set->app)
            protocol_error("bad S field");
    /* the application name names a file: no path in it */
    if (strcmp(field[0], "-") == 0 || field[0][0] == '.')
        protocol_error("bad application name");
    if (security_flags(field[5], &set->flags) < 0)
        protocol_error("unknown security option");
    /* the service set libsasl2 up for main.cf's smtpd_sasl_path before
     * it forked us; a service with another (master.cf -o) gets its own */
    if (started && strcmp(app_initialized, field[0]) != 0)
        protocol_error("the application name cannot change");
    if (strcmp(app_initialized, field[0]) != 0 && library_init(field[0]) < 0) {
        send_line("E SASL initialization failed");
        _exit(0);
    }
    started = 1;
    snprintf(set->app, sizeof set->app, "%s", field[0]);
    snprintf(set->service, sizeof set->service, "%s", field[1]);
    snprintf(set->realm, sizeof set->realm, "%s", field[2]);
    snprintf(set->local, sizeof set->local, "%s", field[3]);
    snprintf(set->remote, sizeof set->remote, "%s", field[4]);
    sasl_conn_t *conn = connection_new(set);
    const char *mechs = NULL;
    unsigned len;
    int count;
    int r = sasl_listmech(conn, NULL, "", " ", "", &mechs, &len, &count);
    if (r != SASL_OK || !count)
        send_line("M");
    else
        send_line("M %s", mechs);
    sasl_dispose(&conn);
}

/* Decode the client's base64 ("=" alone: empty) into out; -1 when bad. */
static int decode(const char *text, struct strbuf *out)
{
    size_t len = strlen(text);
    strbuf_reset(out);
    if (strcmp(text, "=") == 0)
        len = 0;
    strbuf_grow(out, len + 1);
    unsigned outlen = 0;
    if (len && sasl_decode64(text, (unsigned)len, out->s, (unsigned)(len + 1), &outlen) != SASL_OK)
        return -1;
    out->len = outlen;
    out->s[outlen] = 0;
    return 0;
}

/* Postfix's rule: these results ask the client to try again later (454). */
static int failure_is_temporary(int r)
{
    return r == SASL_FAIL || r == SASL_NOMEM || r == SASL_TRYAGAIN || r == SASL_UNAVAIL;
}

/* Success with data held back: the data went out as a challenge, and the
 * client's empty answer completes the exchange (RFC 4954 section 4). */
static int success_sent;

/* The result of sasl_server_start or _step: a challenge, success or a
 * failure line.  1 when another round follows.  Success with data
 * (SCRAM's server-final-message): libsasl2 itself turns it into a
 * challenge and a success on the empty answer, as the connection does
 * not ask for SASL_SUCCESS_DATA (Postfix does the same); should a library
 * hand it over with SASL_OK all the same, it goes out as that challenge
 * here rather than being dropped. */
static int answer(sasl_conn_t *conn, int r, const char *out, unsigned outlen)
{
    success_sent = 0;
    if (r == SASL_OK && out && outlen) {
        r = SASL_CONTINUE;
        success_sent = 1;
    }
    if (r == SASL_CONTINUE) {
        struct strbuf encoded = STRBUF_INIT;
        unsigned size = (outlen + 2) / 3 * 4 + 1, used = 0;
        strbuf_grow(&encoded, size);
        if (sasl_encode64(out ? out : "", outlen, encoded.s, size, &used) != SASL_OK) {
            send_line("T - cannot encode the challenge");
            strbuf_free(&encoded);
            return 0;
        }
        encoded.s[used] = 0;
        send_line("C %s", encoded.s);
        strbuf_free(&encoded);
        return 1;
    }
    const void *name = NULL;
    if (r == SASL_OK) {
        if (sasl_getprop(conn, SASL_USERNAME, &name) != SASL_OK || !name || !*(const char *)name) {
            send_line("T - no user name");
            return 0;
        }
        /* the name goes into a line: no controls, no spaces */
        for (const char *p = name; *p; p++)
            if ((unsigned char)*p < 33 || *p == 127) {
                send_line("F - unacceptable user name");
                return 0;
            }
        send_line("K %s", (const char *)name);
        return 0;
    }
    /* as Postfix: an unknown user is told nothing more than a bad
     * password; the name tried goes along for the log line */
    if (r == SASL_NOUSER)
        r = SASL_BADAUTH;
    const char *user = "-";
    if (sasl_getprop(conn, SASL_USERNAME, &name) == SASL_OK && name && *(const char *)name
        && strlen(name) < 256 && strcspn(name, " \t\r\n") == strlen(name))
        user = name;
    send_line("%c %s %s", failure_is_temporary(r) ? 'T' : 'F', user, sasl_errstring(r, NULL, NULL));
    return 0;
}

_Noreturn void session_serve(int fd)
{
    client_fd = fd;
    line_reader_init(&reader, fd);
    unsigned timeout = (unsigned)conf_time("smtpd_timeout");
    struct settings settings;
    int started = 0;
    sasl_conn_t *conn = NULL;
    int in_exchange = 0;
    struct strbuf line = STRBUF_INIT, decoded = STRBUF_INIT;
    for (;;) {
        alarm(timeout ? timeout : 300);     /* SIGALRM ends a client that waits */
        int r = line_read(&reader, &line, AUTH_LINE_MAX);
        if (r == 0 || r < 0)
            break;
        if (r == 2)
            protocol_error("line too long");
        char *text = line.s ? line.s : (char *)"";
        char verb = text[0];
        char *args = text[0] && text[1] == ' ' ? text + 2 : text + (text[0] ? 1 : 0);
        if (verb == 'S') {
            if (conn)
                sasl_dispose(&conn);
            start(args, &settings);
            started = 1;
            in_exchange = 0;
        } else if (verb == 'A') {
            if (!started)
                protocol_error("A before S");
            if (conn)
                sasl_dispose(&conn);
            conn = connection_new(&settings);
            char *mech = strtok(args, " ");
            char *response = strtok(NULL, " ");
            if (!mech || strtok(NULL, " "))
                protocol_error("A needs a mechanism");
            const char *out = NULL;
            unsigned outlen = 0;
            if (response && decode(response, &decoded) < 0) {
                send_line("F - %s", sasl_errstring(SASL_BADPROT, NULL, NULL));
                in_exchange = 0;
                continue;
            }
            r = sasl_server_start(conn, mech, response ? decoded.s : NULL,
                                  response ? (unsigned)decoded.len : 0, &out, &outlen);
            in_exchange = answer(conn, r, out, outlen);
        } else if (verb == 'R') {
            if (!in_exchange)
                protocol_error("R outside an exchange");
            const char *out = NULL;
            unsigned outlen = 0;
            if (decode(*args ? args : "=", &decoded) < 0) {
                send_line("F - %s", sasl_errstring(SASL_BADPROT, NULL, NULL));
                in_exchange = 0;
                continue;
            }
            if (success_sent)       /* the answer to success data is empty */
                r = decoded.len ? SASL_BADPROT : SASL_OK;
            else
                r = sasl_server_step(conn, decoded.s, (unsigned)decoded.len, &out, &outlen);
            in_exchange = answer(conn, r, out, outlen);
        } else {
            protocol_error("unknown request");
        }
    }
    if (conn)
        sasl_dispose(&conn);
    _exit(0);
}
