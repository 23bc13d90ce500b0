/* command.c - postern-smtpd's command loop and the commands that need no
 * transaction: HELO, EHLO, RSET, NOOP, QUIT, VRFY, ETRN; error counting,
 * and how a session ends (the log lines pflogsumm and fail2ban read). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config.h"
#include "dns.h"
#include "log.h"
#include "map.h"
#include "queuefile.h"
#include "smtpargs.h"
#include "smtpd.h"
#include "strlist.h"
#include "xalloc.h"

static const char *const command_names[CMD_COUNT] = {
    "helo", "ehlo", "xclient", "xforward", "starttls", "auth", "mail", "rcpt",
    "data", "bdat", "rset", "noop", "vrfy", "etrn", "quit", "unknown",
};

_Noreturn void session_end(struct session *s, int status)
{
    io_flush(s);
    /* a transaction cut off ends before the disconnect line: once that
     * line is logged, the queue has stored nothing of it and exited */
    if (s->injection) {
        submit_abort(s->injection);
        s->injection = NULL;
    }
    milter_quit(s);
    struct strbuf line = STRBUF_INIT;
    unsigned ok_total = 0, total = 0;
    for (int i = 0; i < CMD_COUNT; i++) {
        unsigned n = s->command_count[i], ok = n - s->command_failed[i];
        if (!n)
            continue;
        total += n;
        ok_total += ok;
        if (ok == n)
            strbuf_printf(&line, " %s=%u", command_names[i], n);
        else
            strbuf_printf(&line, " %s=%u/%u", command_names[i], ok, n);
    }
    /* Postfix: a session without commands is "commands=0/0" */
    if (ok_total == total && total)
        strbuf_printf(&line, " commands=%u", total);
    else
        strbuf_printf(&line, " commands=%u/%u", ok_total, total);
    msg_info("disconnect from %s%s", s->client.namaddr, strbuf_str(&line));
    strbuf_free(&line);
    /* after the line, so that whoever sees the connection end finds it
     * logged; before the process ends, which would keep the client
     * waiting.  _exit, not exit: everything is written by now (replies,
     * log lines), and the C library's exit handlers would only write
     * pages a zygote's child shares with the zygote, a copy each */
    io_close(s);
    _exit(status);
}

/* "DATA (123 bytes)" while message text is read, else the command. */
static const char *where_text(struct session *s, char *buf, size_t size)
{
    if (s->in_data)
        snprintf(buf, size, "%s (%lld bytes)", s->where, s->data_bytes);
    else
        snprintf(buf, size, "%s", s->where);
    return buf;
}

_Noreturn void session_lost(struct session *s)
{
    char where[64];
    msg_info("lost connection after %s from %s", where_text(s, where, sizeof where), s->client.namaddr);
    if (s->in_data)
        s->command_failed[strcmp(s->where, "BDAT") == 0 ? CMD_BDAT : CMD_DATA]++;
    s->out.len = 0;
    session_end(s, 0);
}

_Noreturn void session_timeout(struct session *s)
{
    char where[64];
    msg_info("timeout after %s from %s", where_text(s, where, sizeof where), s->client.namaddr);
    reply(s, "421 4.4.2 %s Error: timeout exceeded", s->myhostname);
    session_end(s, 0);
}

_Noreturn void session_write_timeout(struct session *s)
{
    char where[64];
    /* the client does not read: no reply can reach it */
    msg_info("timeout after %s from %s", where_text(s, where, sizeof where), s->client.namaddr);
    strbuf_reset(&s->out);
    session_end(s, 0);
}

void session_error(struct session *s)
{
    s->error_count++;
    /* the reply waits in the output buffer: the client sees it late */
    if (s->error_count > s->soft_error_limit && s->error_sleep_time > 0)
        sleep((unsigned)s->error_sleep_time);
}

void transaction_reset(struct session *s)
{
    struct transaction *tx = &s->tx;
    if (s->injection) {
        submit_abort(s->injection);
        s->injection = NULL;
    }
    if (tx->active || s->milter_discard)
        milter_abort(s);
    tx->active = 0;
    map_memo_forget();          /* the next transaction asks afresh */
    strbuf_reset(&tx->sender);
    strbuf_reset(&tx->attributes);
    strbuf_reset(&tx->recipients);
    strbuf_reset(&tx->last_recipient);
    strbuf_reset(&tx->actions);
    strbuf_reset(&tx->prepend);
    tx->recipient_count = 0;
    tx->declared_size = 0;
    tx->smtputf8 = 0;
    tx->bdat_started = 0;
    tx->bdat_failed = 0;
    tx->queue_prepared = 0;
    memset(&s->forwarded, 0, sizeof s->forwarded);
}

const struct strlist *discarded_ehlo_keywords(void)
{
    static struct strlist list = STRLIST_INIT;
    static char *split;         /* the value `list` was split from */
    const char *value = conf_str("smtpd_discard_ehlo_keywords");
    if (!split || strcmp(split, value) != 0) {
        strlist_free(&list);
        conf_list("smtpd_discard_ehlo_keywords", &list);
        free(split);
        split = xstrdup(value);
    }
    return &list;
}

/* 1 when an EHLO keyword is listed in smtpd_discard_ehlo_keywords. */
static int keyword_discarded(const struct strlist *discard, const char *keyword)
{
    for (size_t i = 0; i < discard->count; i++)
        if (strcasecmp(discard->item[i], keyword) == 0)
            return 1;
    return 0;
}

void session_greet(struct session *s)
{
    struct strbuf text = STRBUF_INIT;
    strbuf_reset(&s->access_denied);
    if (!s->local_submission && !conf_bool("smtpd_delay_reject")
        && policy_check_connect(s, &text)) {
        /* smtpd_delay_reject = no: the refusal is the greeting, and every
         * command but QUIT is answered 503 (Postfix) */
        msg_info("NOQUEUE: reject: CONNECT from %s: %s; proto=SMTP", s->client.namaddr, text.s);
        strbuf_set(&s->access_denied, text.s);
        reply(s, "%s", text.s);
    } else {
        reply(s, "220 %s", conf_str("smtpd_banner"));
    }
    strbuf_free(&text);
}

/* HELO and EHLO: remember the name, forget any transaction. */
static void cmd_helo(struct session *s, char *args, int extended)
{
    while (*args == ' ')
        args++;
    if (!*args) {
        reply(s, "501 Syntax: %s hostname", extended ? "EHLO" : "HELO");
        s->command_failed[extended ? CMD_EHLO : CMD_HELO]++;
        session_error(s);
        return;
    }
    transaction_reset(s);
    strbuf_reset(&s->helo);
    log_printable(&s->helo, args, 255);     /* it goes into logs and headers */
    const char *old_protocol = s->protocol;
    s->protocol = extended ? "ESMTP" : "SMTP";
    if (!s->local_submission && !conf_bool("smtpd_delay_reject")) {
        struct strbuf text = STRBUF_INIT;
        if (policy_check_helo(s, &text)) {
            struct strbuf printable = STRBUF_INIT;
            msg_info("NOQUEUE: reject: %s from %s: %s; proto=%s helo=<%s>", extended ? "EHLO" : "HELO",
                     s->client.namaddr, text.s, s->protocol, strbuf_str(&s->helo));
            reply(s, "%s", text.s);
            strbuf_reset(&s->helo);
            strbuf_free(&printable);
            strbuf_free(&text);
            s->command_failed[extended ? CMD_EHLO : CMD_HELO]++;
            session_error(s);
            return;
        }
        strbuf_free(&text);
    }
    /* smtpd_milters: a refusal waits for MAIL, except 421 (Postfix) */
    const char *new_protocol = s->protocol;
    s->protocol = old_protocol;     /* logged as it was before this command */
    const char *refusal = milter_helo(s, strbuf_str(&s->helo));
    s->protocol = new_protocol;
    if (refusal && strncmp(refusal, "421", 3) == 0) {
        reply(s, "%s", refusal);
        s->command_failed[extended ? CMD_EHLO : CMD_HELO]++;
        return;
    }
    /* after a 5xx refusal EHLO offers ENHANCEDSTATUSCODES only */
    int milter_refused = refusal && refusal[0] == '5';
    if (!extended) {
        reply(s, "250 %s", s->myhostname);
        return;
    }
    const struct strlist *discard = discarded_ehlo_keywords();
    struct strlist keywords = STRLIST_INIT;
    strlist_add(&keywords, "PIPELINING");
    if (s->message_size_limit > 0) {
        char size[40];
        snprintf(size, sizeof size, "SIZE %lld", s->message_size_limit);
        strlist_add(&keywords, size);
    } else {
        strlist_add(&keywords, "SIZE");
    }
    if (!conf_bool("disable_vrfy_command"))
        strlist_add(&keywords, "VRFY");
    strlist_add(&keywords, "ETRN");
    if (tls_offered(s))
        strlist_add(&keywords, "STARTTLS");
    const char *mechanisms = auth_ehlo_mechanisms(s);
    struct strbuf auth = STRBUF_INIT, auth_broken = STRBUF_INIT;
    if (mechanisms) {
        strbuf_printf(&auth, "AUTH %s", mechanisms);
        strlist_add(&keywords, auth.s);
        if (conf_bool("broken_sasl_auth_clients")) {
            strbuf_printf(&auth_broken, "AUTH=%s", mechanisms);
            strlist_add(&keywords, auth_broken.s);
        }
    }
    strbuf_free(&auth);
    strbuf_free(&auth_broken);
    if (s->xclient_allowed)
        strlist_add(&keywords, "XCLIENT NAME ADDR PROTO HELO REVERSE_NAME PORT LOGIN DESTADDR DESTPORT");
    if (s->xforward_allowed)
        strlist_add(&keywords, "XFORWARD NAME ADDR PROTO HELO SOURCE PORT IDENT");
    strlist_add(&keywords, "ENHANCEDSTATUSCODES");
    strlist_add(&keywords, "8BITMIME");
    strlist_add(&keywords, "DSN");
    if (conf_bool("smtputf8_enable"))
        strlist_add(&keywords, "SMTPUTF8");
    strlist_add(&keywords, "CHUNKING");
    if (s->tls && conf_bool("smtpd_requiretls_enable"))
        strlist_add(&keywords, "REQUIRETLS");
    size_t kept = 0;
    const char *kept_list[32];
    struct strbuf dropped = STRBUF_INIT;
    for (size_t i = 0; i < keywords.count && kept < 32; i++) {
        char word[32];
        size_t n = strcspn(keywords.item[i], " =");
        if (n > sizeof word - 1)
            n = sizeof word - 1;
        memcpy(word, keywords.item[i], n);
        word[n] = '\0';
        if (milter_refused && strcmp(word, "ENHANCEDSTATUSCODES") != 0)
            continue;
        if (discard->count && keyword_discarded(discard, word)) {
            strbuf_printf(&dropped, " %s", word);
            continue;
        }
        kept_list[kept++] = keywords.item[i];
    }
    if (dropped.len && !keyword_discarded(discard, "silent-discard"))
        msg_info("discarding EHLO keywords:%s", strbuf_str(&dropped));
    strbuf_free(&dropped);
    reply(s, "250%c%s", kept ? '-' : ' ', s->myhostname);
    for (size_t i = 0; i < kept; i++)
        reply(s, "250%c%s", i + 1 < kept ? '-' : ' ', kept_list[i]);
    strlist_free(&keywords);
}

/* VRFY: 502 when disabled, else the recipient checks and 252. */
static void cmd_vrfy(struct session *s, char *args)
{
    if (conf_bool("disable_vrfy_command")) {
        reply(s, "502 5.5.1 VRFY command is disabled");
        goto failed;
    }
    if (s->helo_required && !s->helo.len) {
        reply(s, "503 5.5.1 Error: send HELO/EHLO first");
        goto failed;
    }
    while (*args == ' ')
        args++;
    if (!*args) {
        reply(s, "501 5.5.4 Syntax: VRFY address [SMTPUTF8]");
        goto failed;
    }
    struct strbuf address = STRBUF_INIT, text = STRBUF_INIT;
    size_t len = strcspn(args, " ");
    strbuf_append(&address, args, len);
    if (address.len >= 2 && address.s[0] == '<' && address.s[address.len - 1] == '>') {
        memmove(address.s, address.s + 1, address.len - 2);
        strbuf_truncate(&address, address.len - 2);
    }
    int code = policy_unlisted_recipient(s, strbuf_str(&address), &text);
    if (code) {
        reply(s, "%s", strbuf_str(&text));
        strbuf_free(&address);
        strbuf_free(&text);
        goto failed;
    }
    reply(s, "252 2.0.0 %.*s", (int)len, args);
    strbuf_free(&address);
    strbuf_free(&text);
    return;
failed:
    s->command_failed[CMD_VRFY]++;
    session_error(s);
}

/* A domain ETRN takes, as Postfix's valid_hostname(): labels of letters,
 * digits, '-' and '_' (dns_labels_valid), none starting or ending with
 * '-', no final dot, at most 255 bytes, not all digits and dots. */
static int etrn_domain_valid(const char *domain)
{
    size_t len = strlen(domain);
    if (!len || len > 255 || domain[len - 1] == '.' || !dns_labels_valid(domain)
        || strspn(domain, "0123456789.") == len)
        return 0;
    for (const char *p = domain; *p; p++)
        if (*p == '-' && (p == domain || p[-1] == '.' || p[1] == '.' || !p[1]))
            return 0;
    return 1;
}

/* ETRN domain: ask qmgr to deliver the domain's deferred mail now
 * (fast_flush_domains decides which domains may ask), with Postfix
 * 3.7's replies. */
static void cmd_etrn(struct session *s, char *args)
{
    while (*args == ' ')
        args++;
    if (s->helo_required && !s->helo.len) {
        reply(s, "503 Error: send HELO/EHLO first");
        goto failed;
    }
    if (s->tx.active) {
        reply(s, "503 Error: MAIL transaction in progress");
        goto failed;
    }
    if (!*args || strchr(args, ' ')) {
        reply(s, "500 Syntax: ETRN domain");
        goto failed;
    }
    const char *domain = args[0] == '@' || args[0] == '#' ? args + 1 : args;
    if (!etrn_domain_valid(domain)) {
        reply(s, "501 Error: invalid parameter syntax");
        goto failed;
    }
    int ok = policy_etrn_domain(s, domain);
    if (ok < 0) {
        reply(s, "451 4.3.0 <%s>: Temporary lookup failure", domain);
        goto failed;
    }
    if (!ok) {
        reply(s, "459 <%s>: service unavailable", domain);
        goto failed;
    }
    if (queue_trigger_site(conf_str("queue_directory"), domain) != 0) {
        reply(s, "458 Unable to queue messages");
        goto failed;
    }
    reply(s, "250 Queuing started");
    return;
failed:
    s->command_failed[CMD_ETRN]++;
    session_error(s);
}

/* Forbidden (non-SMTP) commands: a web browser or a proxy talking to us. */
static int forbidden_command(const char *verb)
{
    static const char *const forbidden[] = {"CONNECT", "GET", "POST", NULL};
    for (int i = 0; forbidden[i]; i++)
        if (strcasecmp(verb, forbidden[i]) == 0)
            return 1;
    return !isupper((unsigned char)verb[0]) && !islower((unsigned char)verb[0]);
}

/* RFC 2920: input already waiting after a command that must end a group
 * (anything but RSET, MAIL, RCPT and BDAT with its chunk), or any
 * pipelining by a client that did not say EHLO.  Logged once, as Postfix
 * does; fail2ban's postfix filter reads the line. */
static void check_pipelining(struct session *s, enum smtpd_command id)
{
    if (s->improper_pipelining || s->in_start == s->in_end)
        return;
    int groupable = id == CMD_RSET || id == CMD_MAIL || id == CMD_RCPT || id == CMD_BDAT;
    if (strcmp(s->protocol, "ESMTP") == 0 && groupable)
        return;
    /* after STARTTLS what waits is thrown away (CVE-2011-0411), and
     * Postfix 3.7 logs nothing about it */
    if (id == CMD_QUIT || id == CMD_STARTTLS)
        return;
    s->improper_pipelining = 1;
    struct strbuf pending = STRBUF_INIT;
    size_t n = s->in_end - s->in_start;
    for (size_t i = 0; i < n && pending.len < 100; i++) {
        unsigned char c = s->inbuf[s->in_start + i];
        if (c == '\r')
            strbuf_puts(&pending, "\\r");
        else if (c == '\n')
            strbuf_puts(&pending, "\\n");
        else
            strbuf_putc(&pending, c >= 32 && c < 127 ? c : '?');
    }
    msg_info("improper command pipelining after %s from %s: %s", s->where, s->client.namaddr,
             strbuf_str(&pending));
    strbuf_free(&pending);
}

void command_loop(struct session *s)
{
    struct strbuf line = STRBUF_INIT;
    struct strbuf printable = STRBUF_INIT;
    for (;;) {
        if (s->hangup)          /* a 421 or 521 was said: Postfix hangs up */
            session_end(s, 0);
        if (s->error_count >= s->hard_error_limit) {
            msg_info("too many errors after %s from %s", s->where, s->client.namaddr);
            reply(s, "421 4.7.0 %s Error: too many errors", s->myhostname);
            session_end(s, 0);
        }
        int bare_lf;
        io_request_begin(s);
        if (!io_read_line(s, &line, (size_t)s->line_length_limit, &bare_lf))
            session_lost(s);
        if (bare_lf && s->bare_newline == 2) {
            msg_info("disconnect: bare <LF> received from %s after %s", s->client.namaddr, s->where);
            reply(s, "%d 5.5.2 %s Error: bare <LF> received", s->bare_newline_reject_code, s->myhostname);
            session_end(s, 0);
        }
        /* NUL bytes in a command cannot be honest */
        if (memchr(line.s ? line.s : "", '\0', line.len))
            strbuf_truncate(&line, strlen(line.s));
        char *cmd = line.s ? line.s : (char *)"";
        char verb[SMTP_VERB_MAX];
        char *args = smtp_command_split(cmd, verb);
        if (!*cmd) {
            reply(s, "500 5.5.2 Error: bad syntax");
            session_error(s);
            continue;
        }
        if (forbidden_command(verb)) {
            strbuf_reset(&printable);
            msg_warn("non-SMTP command from %s: %s", s->client.namaddr,
                     log_printable(&printable, cmd, 100));
            reply(s, "221 2.7.0 Error: I can break rules, too. Goodbye.");
            session_end(s, 0);
        }
        static const struct {
            const char *name;
            enum smtpd_command id;
            int junk;
        } table[] = {
            {"HELO", CMD_HELO, 0}, {"EHLO", CMD_EHLO, 0}, {"MAIL", CMD_MAIL, 0},
            {"RCPT", CMD_RCPT, 0}, {"DATA", CMD_DATA, 0}, {"BDAT", CMD_BDAT, 0},
            {"RSET", CMD_RSET, 1}, {"NOOP", CMD_NOOP, 1}, {"VRFY", CMD_VRFY, 1},
            {"ETRN", CMD_ETRN, 1}, {"QUIT", CMD_QUIT, 0}, {"STARTTLS", CMD_STARTTLS, 0},
            {"AUTH", CMD_AUTH, 0}, {"XCLIENT", CMD_XCLIENT, 0}, {"XFORWARD", CMD_XFORWARD, 0},
        };
        enum smtpd_command id = CMD_UNKNOWN;
        int junk = 0;
        for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
            if (strcasecmp(verb, table[i].name) == 0) {
                id = table[i].id;
                junk = table[i].junk;
                s->where = table[i].name;
            }
        s->command_count[id]++;
        check_pipelining(s, id);
        if (junk && ++s->junk_count > s->junk_limit)
            s->error_count++;
        /* smtpd_delay_reject = no and the client refused at connect */
        if (s->access_denied.len && id != CMD_QUIT) {
            reply(s, "503 5.7.0 Error: access denied for %s", s->client.namaddr);
            s->command_failed[id]++;
            session_error(s);
            continue;
        }
        /* smtpd_tls_security_level = encrypt: only these before STARTTLS */
        if (s->tls_level == TLS_LEVEL_ENCRYPT && !s->tls && id != CMD_HELO && id != CMD_EHLO
            && id != CMD_STARTTLS && id != CMD_NOOP && id != CMD_QUIT && id != CMD_UNKNOWN) {
            reply(s, "530 5.7.0 Must issue a STARTTLS command first");
            s->command_failed[id]++;
            session_error(s);
            continue;
        }
        switch (id) {
        case CMD_HELO:
            cmd_helo(s, args, 0);
            break;
        case CMD_EHLO:
            cmd_helo(s, args, 1);
            break;
        case CMD_MAIL:
            cmd_mail(s, args);
            break;
        case CMD_RCPT:
            cmd_rcpt(s, args);
            break;
        case CMD_DATA:
            cmd_data(s, args);
            break;
        case CMD_BDAT:
            cmd_bdat(s, args);
            break;
        case CMD_RSET:
            while (*args == ' ')
                args++;
            if (*args) {
                reply(s, "501 5.5.4 Syntax: RSET");
                s->command_failed[id]++;
                session_error(s);
                break;
            }
            transaction_reset(s);
            reply(s, "250 2.0.0 Ok");
            break;
        case CMD_NOOP:
            reply(s, "250 2.0.0 Ok");
            break;
        case CMD_VRFY:
            cmd_vrfy(s, args);
            break;
        case CMD_ETRN:
            cmd_etrn(s, args);
            break;
        case CMD_QUIT:
            reply(s, "221 2.0.0 Bye");
            strbuf_free(&line);
            strbuf_free(&printable);
            session_end(s, 0);
        case CMD_STARTTLS:
            cmd_starttls(s, args);
            break;
        case CMD_AUTH:
            cmd_auth(s, args);
            break;
        case CMD_XCLIENT:
            cmd_xclient(s, args);
            break;
        case CMD_XFORWARD:
            cmd_xforward(s, args);
            break;
        case CMD_UNKNOWN:
            s->where = "UNKNOWN";
            milter_unknown(s, cmd);
            reply(s, "500 5.5.2 Error: command not recognized");
            s->command_failed[id]++;
            session_error(s);
            break;
        case CMD_COUNT:
            break;
        }
    }
}
