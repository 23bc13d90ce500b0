/* xclient.c - XCLIENT and XFORWARD (Postfix's XCLIENT_README and
 * XFORWARD_README) for clients in smtpd_authorized_xclient_hosts and
 * smtpd_authorized_xforward_hosts: a proxy or content filter tells who the
 * real client was.  XCLIENT replaces the client and starts the session
 * over with a new greeting; XFORWARD only changes what the envelope and
 * the Received header say about the current message's origin. */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "addrmatch.h"
#include "config.h"
#include "log.h"
#include "smtpargs.h"
#include "smtpd.h"

/* Decode one attribute value (xtext); "[UNAVAILABLE]" and "[TEMPUNAVAIL]"
 * become "".  -1 when malformed or too long for size. */
static int attribute_value(const char *value, char *out, size_t size)
{
    if (strcasecmp(value, "[UNAVAILABLE]") == 0 || strcasecmp(value, "[TEMPUNAVAIL]") == 0) {
        out[0] = '\0';
        return 0;
    }
    struct strbuf decoded = STRBUF_INIT;
    int r = xtext_decode(value, &decoded);
    if (r == 0 && decoded.len < size) {
        memcpy(out, strbuf_str(&decoded), decoded.len + 1);
        for (char *p = out; *p; p++)
            if ((unsigned char)*p < 32 || (unsigned char)*p > 126)
                r = -1;
    } else {
        r = -1;
    }
    strbuf_free(&decoded);
    return r;
}

/* Parse "NAME=value ..." with the allowed names; calls set() for each.
 * Returns 0, or -1 after replying 501. */
static int parse_attributes(struct session *s, char *args, const char *command,
                            const char *const *names,
                            int (*set)(struct session *s, const char *name, const char *value))
{
    char *save = NULL;
    int count = 0;
    for (char *word = strtok_r(args, " ", &save); word; word = strtok_r(NULL, " ", &save)) {
        char *eq = strchr(word, '=');
        int known = 0;
        if (eq) {
            *eq = '\0';
            for (int i = 0; names[i]; i++)
                known |= strcasecmp(word, names[i]) == 0;
        }
        struct strbuf printable = STRBUF_INIT;
        if (!known) {
            reply(s, "501 5.5.4 Bad %s attribute name: %s", command, log_printable(&printable, word, 100));
            strbuf_free(&printable);
            return -1;
        }
        if (set(s, word, eq + 1) != 0) {
            reply(s, "501 5.5.4 Bad %s attribute value: %s=%s", command, word,
                  log_printable(&printable, eq + 1, 100));
            strbuf_free(&printable);
            return -1;
        }
        count++;
    }
    if (!count) {
        reply(s, "501 5.5.4 Syntax: %s attribute=value...", command);
        return -1;
    }
    return 0;
}

/* The lookup status of a NAME or REVERSE_NAME value (before decoding):
 * [UNAVAILABLE] does not exist ('N'), [TEMPUNAVAIL] could not be looked
 * up ('R': a temporary failure, never "not found"), else 'F'. */
static char name_status(const char *raw, const char *text)
{
    if (strcasecmp(raw, "[TEMPUNAVAIL]") == 0)
        return 'R';
    return !*text || strcasecmp(raw, "[UNAVAILABLE]") == 0 ? 'N' : 'F';
}

/* One XCLIENT attribute. */
static int xclient_set(struct session *s, const char *name, const char *value)
{
    struct client *c = &s->client;
    char text[256];
    if (attribute_value(value, text, sizeof text) != 0)
        return -1;
    if (strcasecmp(name, "NAME") == 0) {
        /* the reverse name stays (only REVERSE_NAME sets it): Postfix 3.7
         * passes reject_unknown_reverse_client_hostname after NAME=[UNAVAILABLE] */
        char status = name_status(value, text);
        snprintf(c->name, sizeof c->name, "%s", status == 'F' ? text : "unknown");
        c->forward_status = status;
    } else if (strcasecmp(name, "REVERSE_NAME") == 0) {
        char status = name_status(value, text);
        snprintf(c->reverse_name, sizeof c->reverse_name, "%s", status == 'F' ? text : "unknown");
        c->reverse_status = status;
    } else if (strcasecmp(name, "ADDR") == 0) {
        if (*text && addr_normalize(text, c->address, sizeof c->address) != 0)
            return -1;
    } else if (strcasecmp(name, "PORT") == 0) {
        snprintf(c->port, sizeof c->port, "%.15s", text);
    } else if (strcasecmp(name, "HELO") == 0) {
        strbuf_set(&s->helo, text);
    } else if (strcasecmp(name, "PROTO") == 0) {
        s->protocol = strcasecmp(text, "ESMTP") == 0 ? "ESMTP" : "SMTP";
    } else if (strcasecmp(name, "DESTADDR") == 0) {
        if (*text && addr_normalize(text, c->local_address, sizeof c->local_address) != 0)
            return -1;
    } else if (strcasecmp(name, "DESTPORT") == 0) {
        snprintf(c->local_port, sizeof c->local_port, "%.15s", text);
    } else if (strcasecmp(name, "LOGIN") == 0 && name_status(value, text) == 'F') {
        /* the SASL login name, as if the client had authenticated
         * (Postfix: method "XCLIENT"); [UNAVAILABLE]: none */
        snprintf(s->sasl_username, sizeof s->sasl_username, "%s", text);
        snprintf(s->sasl_method, sizeof s->sasl_method, "XCLIENT");
    }
    return 0;
}

void cmd_xclient(struct session *s, char *args)
{
    static const char *const names[] = {
        "NAME", "ADDR", "PORT", "PROTO", "HELO", "LOGIN", "REVERSE_NAME", "DESTADDR", "DESTPORT", NULL,
    };
    if (!s->xclient_allowed) {
        reply(s, "550 5.7.0 Error: insufficient authorization");
        goto failed;
    }
    if (s->tx.active) {
        reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        goto failed;
    }
    char before[sizeof s->client.namaddr];
    snprintf(before, sizeof before, "%s", s->client.namaddr);
    /* a new client: logged in only when LOGIN says so */
    s->sasl_username[0] = 0;
    s->sasl_method[0] = 0;
    if (parse_attributes(s, args, "XCLIENT", names, xclient_set) != 0)
        goto failed;
    snprintf(s->client.namaddr, sizeof s->client.namaddr, "%s[%s]", s->client.name, s->client.address);
    msg_info("client %s is now %s (XCLIENT)", before, s->client.namaddr);
    /* Postfix 3.7's disconnect line counts a successful XCLIENT among
     * the commands but not among the successful ones ("xclient=0/1") */
    s->command_failed[CMD_XCLIENT]++;
    /* the session starts over as the new client */
    s->xclient_allowed = policy_client_in(s, "smtpd_authorized_xclient_hosts");
    s->xforward_allowed = policy_client_in(s, "smtpd_authorized_xforward_hosts");
    session_greet(s);
    return;
failed:
    s->command_failed[CMD_XCLIENT]++;
    session_error(s);
}

/* One XFORWARD attribute. */
static int xforward_set(struct session *s, const char *name, const char *value)
{
    struct forwarded *f = &s->forwarded;
    char text[256];
    if (attribute_value(value, text, sizeof text) != 0)
        return -1;
    if (strcasecmp(name, "NAME") == 0)
        snprintf(f->name, sizeof f->name, "%s", *text ? text : "unknown");
    else if (strcasecmp(name, "ADDR") == 0) {
        if (*text && addr_normalize(text, f->address, sizeof f->address) != 0)
            return -1;
    } else if (strcasecmp(name, "PORT") == 0)
        snprintf(f->port, sizeof f->port, "%.15s", text);
    else if (strcasecmp(name, "HELO") == 0)
        snprintf(f->helo, sizeof f->helo, "%s", text);
    else if (strcasecmp(name, "PROTO") == 0)
        snprintf(f->protocol, sizeof f->protocol, "%.15s", text);
    /* IDENT, SOURCE: accepted */
    f->set = 1;
    return 0;
}

void cmd_xforward(struct session *s, char *args)
{
    static const char *const names[] = {"NAME", "ADDR", "PORT", "PROTO", "HELO", "IDENT", "SOURCE", NULL};
    if (!s->xforward_allowed) {
        reply(s, "550 5.7.0 Error: insufficient authorization");
        goto failed;
    }
    if (s->tx.active) {
        reply(s, "503 5.5.1 Error: MAIL transaction in progress");
        goto failed;
    }
    if (parse_attributes(s, args, "XFORWARD", names, xforward_set) != 0)
        goto failed;
    reply(s, "250 2.0.0 Ok");
    return;
failed:
    s->command_failed[CMD_XFORWARD]++;
    session_error(s);
}
