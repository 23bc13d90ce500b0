/* milter_client.c - the MTA's side of Sendmail milters (milter_client.h):
 * connect and negotiate (Postfix's milter8_connect), send an event with
 * its stage's macros and read the answer (milter8_event), send a message's
 * header and body at its end and apply the changes the milters ask for.
 * The states and default replies follow Postfix's milter8 client: a
 * milter that fails (connect, timeout, protocol error) answers with
 * milter_default_action from then on (tempfail: 451 4.7.1, reject: 550
 * 5.5.0, accept: nothing, quarantine: hold); a reject at CONNECT or HELO
 * persists for the session; accept skips the milter for the message (at
 * CONNECT and HELO: for the session).
 */
#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "fdio.h"
#include "log.h"
#include "milter_client.h"
#include "milter_proto.h"
#include "monotonic.h"
#include "rewrite.h"
#include "sockconnect.h"
#include "strlist.h"
#include "xalloc.h"

#define MILTER_PROTOCOL_STEPS 0x1FF7FF   /* every SMFIP_* but RCPT_REJ */
#define MILTER_ACTIONS        0x1FF      /* every SMFIF_* */

#define REPLY_TEMPFAIL "451 4.7.1 Service unavailable - try again later"
#define REPLY_REJECT   "550 5.7.1 Command rejected"

enum milter_state {
    MS_CLOSED,          /* not yet connected */
    MS_ERROR,           /* failed: the default reply from now on */
    MS_READY,           /* negotiated, before CONNECT */
    MS_ENVELOPE,        /* taking events */
    MS_ACCEPT_CON,      /* accepted the session: no more events */
    MS_REJECT_CON,      /* refused the session: its reply from now on */
    MS_ACCEPT_MSG,      /* accepted (or discarded) the message */
};

struct milter {
    char *name;                 /* "inet:127.0.0.1:8891" */
    long long connect_timeout, command_timeout, content_timeout;
    char *default_action;
    int fd;
    enum milter_state state;
    uint32_t version, actions, steps;
    struct strbuf macros[MILTER_STAGE_COUNT];   /* what to send at each stage */
    struct strbuf def_reply;    /* "" or the reply of a failed or refusing milter */
    int has_def_reply;
    int skip_body;              /* SMFIR_SKIP */
};

/* milter_macro_defaults: pairs of name and value, for a macro that has
 * no value of its own */
static struct strlist macro_defaults;

/* The reply of a milter that is out of the conversation, NULL for none. */
static const char *def_reply(const struct milter *m)
{
    return m->has_def_reply ? strbuf_str(&m->def_reply) : NULL;
}

static void set_def_reply(struct milter *m, const char *reply)
{
    m->has_def_reply = reply != NULL;
    strbuf_set(&m->def_reply, reply ? reply : "");
}

/* A failure talking to the milter: close it and answer with its
 * default action from now on. */
static const char *milter_failed(struct milter *m)
{
    if (m->fd >= 0)
        close(m->fd);
    m->fd = -1;
    m->state = MS_ERROR;
    const char *a = m->default_action;
    if (strcasecmp(a, "accept") == 0)
        set_def_reply(m, NULL);
    else if (strcasecmp(a, "reject") == 0)
        set_def_reply(m, "550 5.5.0 Service unavailable");
    else if (strcasecmp(a, "quarantine") == 0)
        set_def_reply(m, "H");
    else {
        if (strcasecmp(a, "tempfail") != 0)
            msg_warn("milter %s: unrecognized default action: %s", m->name, a);
        set_def_reply(m, REPLY_TEMPFAIL);
    }
    return def_reply(m);
}

/* Write a whole packet within the timeout: 0, or -1 (the milter failed). */
static int send_packet(struct milter *m, const struct strbuf *packet, long long timeout_s)
{
    long long deadline = monotonic_ms() + timeout_s * 1000;
    size_t sent = 0;
    while (sent < packet->len) {
        if (sock_wait(m->fd, POLLOUT, deadline) != 1) {
            msg_warn("milter %s: error writing command: %s", m->name,
                     errno ? strerror(errno) : "Connection timed out");
            milter_failed(m);
            return -1;
        }
        ssize_t n = send(m->fd, packet->s + sent, packet->len - sent, MSG_NOSIGNAL);
        if (n < 0 && errno != EINTR && errno != EAGAIN) {
            msg_warn("milter %s: error writing command: %s", m->name, strerror(errno));
            milter_failed(m);
            return -1;
        }
        if (n > 0)
            sent += (size_t)n;
    }
    return 0;
}

/* Read exactly n bytes before the deadline: 0, or -1 with errno. */
static int read_exact(int fd, unsigned char *p, size_t n, long long deadline)
{
    while (n) {
        if (sock_wait(fd, POLLIN, deadline) != 1) {
            if (!errno)
                errno = ETIMEDOUT;
            return -1;
        }
        ssize_t r = read(fd, p, n);
        if (r == 0) {
            errno = ECONNRESET;
            return -1;
        }
        if (r < 0) {
            if (errno == EINTR || errno == EAGAIN)
                continue;
            return -1;
        }
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

/* The name of an event, for log lines. */
static const char *event_name(int event)
{
    switch (event) {
    case SMFIC_OPTNEG: return "SMFIC_OPTNEG";
    case SMFIC_CONNECT: return "SMFIC_CONNECT";
    case SMFIC_HELO: return "SMFIC_HELO";
    case SMFIC_MAIL: return "SMFIC_MAIL";
    case SMFIC_RCPT: return "SMFIC_RCPT";
    case SMFIC_DATA: return "SMFIC_DATA";
    case SMFIC_HEADER: return "SMFIC_HEADER";
    case SMFIC_EOH: return "SMFIC_EOH";
    case SMFIC_BODY: return "SMFIC_BODY";
    case SMFIC_BODYEOB: return "SMFIC_BODYEOB";
    case SMFIC_UNKNOWN: return "SMFIC_UNKNOWN";
    default: return "command";
    }
}

/* Read one reply packet (command byte and data) into packet: 0, or -1
 * (logged; the milter failed). */
static int read_packet(struct milter *m, int event, struct strbuf *packet, long long timeout_s)
{
    long long deadline = monotonic_ms() + timeout_s * 1000;
    unsigned char header[4];
    if (read_exact(m->fd, header, 4, deadline) < 0) {
        msg_warn("milter %s: can't read %s reply packet header: %s", m->name, event_name(event),
                 strerror(errno));
        milter_failed(m);
        return -1;
    }
    uint32_t len = milter_packet_length(header);
    if (len < 1 || len > MILTER_PACKET_MAX) {
        msg_warn("milter %s: bad packet length: %lu", m->name, (unsigned long)len);
        milter_failed(m);
        return -1;
    }
    strbuf_reset(packet);
    strbuf_grow(packet, len);
    if (read_exact(m->fd, (unsigned char *)packet->s, len, deadline) < 0) {
        msg_warn("milter %s: can't read %s reply packet data: %s", m->name, event_name(event),
                 strerror(errno));
        milter_failed(m);
        return -1;
    }
    packet->len = len;
    packet->s[len] = 0;
    return 0;
}

/* milter_macro_defaults as Postfix 3.1 reads it: name=value items, or
 * "{ name = value }" where the value holds commas or white space (white
 * space around the "=" ignored).  The name is the macro's as the
 * milter_*_macros lists write it: "{auth_type}" with its braces. */
void milter_macro_defaults_load(void)
{
    static int loaded;
    if (loaded)
        return;
    loaded = 1;
    struct strlist items = STRLIST_INIT;
    conf_list("milter_macro_defaults", &items);
    for (size_t i = 0; i < items.count; i++) {
        const char *item = items.item[i], *eq = strchr(item, '=');
        if (!eq || eq == item) {
            msg_warn("milter_macro_defaults: missing '=' after attribute name: \"%s\"", item);
            continue;
        }
        size_t n = (size_t)(eq - item);
        while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
            n--;
        const char *v = eq + 1;
        v += strspn(v, " \t");
        struct strbuf name = STRBUF_INIT;
        strbuf_append(&name, item, n);
        strlist_add(&macro_defaults, strbuf_str(&name));
        strlist_add(&macro_defaults, v);
        strbuf_free(&name);
    }
    strlist_free(&items);
}

/* A macro's default from milter_macro_defaults: 1 with out set, or 0. */
static int macro_default(const char *name, struct strbuf *out)
{
    for (size_t i = 0; i + 1 < macro_defaults.count; i += 2)
        if (strcmp(macro_defaults.item[i], name) == 0) {
            strbuf_set(out, macro_defaults.item[i + 1]);
            return 1;
        }
    return 0;
}

/* The SMFIC_MACRO packet for a stage ("" when no macro has a value). */
static void macro_packet(struct milter_set *set, struct milter *m, enum milter_stage stage, int event,
                         struct strbuf *packet)
{
    struct strbuf name = STRBUF_INIT, value = STRBUF_INIT;
    strbuf_reset(packet);
    /* names apart on white space and commas; "{name}" keeps its braces */
    const char *p = strbuf_str(&m->macros[stage]);
    while (*p) {
        p += strspn(p, " \t\r\n,");
        size_t n = strcspn(p, " \t\r\n,");
        if (!n)
            break;
        strbuf_reset(&name);
        strbuf_append(&name, p, n);
        p += n;
        if (!(set->macro_value && set->macro_value(set->macro_ctx, strbuf_str(&name), &value))
            && !macro_default(strbuf_str(&name), &value))
            continue;
        if (!packet->len) {
            milter_packet_begin(packet, SMFIC_MACRO);
            strbuf_putc(packet, event);
        }
        milter_packet_string(packet, strbuf_str(&name));
        milter_packet_string(packet, strbuf_str(&value));
    }
    if (packet->len)
        milter_packet_end(packet);
    strbuf_free(&name);
    strbuf_free(&value);
}

/* ---- events ---- */

/* Changes a milter asked for at end of message. */
struct milter_changes {
    struct milter_reply *item;
    size_t count;
};

/* Send an event (after its stage's macros) and read the answer, as
 * Postfix's milter8_event: NULL to go on, or "D" (discard), "H" (hold),
 * "S" (shut down), or an SMTP reply.  `skip` is the SMFIP_NO* bit of the
 * event, `noreply` its SMFIP_NR_* bit (0: always answered); `stage` the
 * macro stage (-1: none).  Modifications are kept in `changes` (end of
 * message only). */
static const char *milter_event(struct milter_set *set, struct milter *m, int event, uint32_t skip,
                                uint32_t noreply, int stage, const struct strbuf *data,
                                long long timeout_s, struct milter_changes *changes)
{
    struct strbuf packet = STRBUF_INIT;
    const char *result = def_reply(m);
    if (stage >= 0) {
        macro_packet(set, m, (enum milter_stage)stage, event, &packet);
        if (packet.len && send_packet(m, &packet, timeout_s) < 0) {
            result = def_reply(m);
            goto done;
        }
    }
    if (m->steps & skip)
        goto done;
    milter_packet_begin(&packet, event);
    if (data)
        milter_packet_bytes(&packet, data->s, data->len);
    milter_packet_end(&packet);
    if (send_packet(m, &packet, timeout_s) < 0) {
        result = def_reply(m);
        goto done;
    }
    if (noreply && (m->steps & noreply))
        goto done;
    int connect_stage = event == SMFIC_CONNECT || event == SMFIC_HELO;
    struct strbuf why = STRBUF_INIT;
    for (;;) {
        struct milter_reply r = MILTER_REPLY_INIT;
        if (read_packet(m, event, &packet, timeout_s) < 0) {
            result = def_reply(m);
            break;
        }
        if (milter_reply_parse((const unsigned char *)packet.s, packet.len, &r, &why) < 0) {
            msg_warn("milter %s: %s", m->name, strbuf_str(&why));
            result = milter_failed(m);
            milter_reply_free(&r);
            break;
        }
        int c = r.command;
        if (c == SMFIR_PROGRESS) {
            milter_reply_free(&r);
            continue;
        }
        if (c == SMFIR_CONTINUE) {
            result = def_reply(m);
        } else if (c == SMFIR_SKIP) {
            m->skip_body = 1;
            result = def_reply(m);
        } else if (c == SMFIR_ACCEPT) {
            m->state = connect_stage ? MS_ACCEPT_CON : MS_ACCEPT_MSG;
            result = def_reply(m);
        } else if (c == SMFIR_DISCARD) {
            if (connect_stage) {
                msg_warn("milter %s: DISCARD action is not allowed for connect or helo", m->name);
                result = milter_failed(m);
            } else {
                m->state = MS_ACCEPT_MSG;
                result = "D";
            }
        } else if (c == SMFIR_REJECT || c == SMFIR_TEMPFAIL || c == SMFIR_REPLYCODE
                   || c == SMFIR_SHUTDOWN || c == SMFIR_CONN_FAIL) {
            const char *text = c == SMFIR_REJECT ? REPLY_REJECT
                               : c == SMFIR_TEMPFAIL ? REPLY_TEMPFAIL
                               : c == SMFIR_REPLYCODE ? strbuf_str(&r.name) : "S";
            if (connect_stage || c == SMFIR_SHUTDOWN || c == SMFIR_CONN_FAIL) {
                m->state = MS_REJECT_CON;
                set_def_reply(m, text);
                result = def_reply(m);
            } else {
                /* kept beyond this call */
                strbuf_set(&set->reply, text);
                result = strbuf_str(&set->reply);
            }
        } else if (c == SMFIR_QUARANTINE) {
            result = "H";
            if (changes) {      /* at end of message: a change like the others */
                changes->item = xrealloc(changes->item, (changes->count + 1) * sizeof *changes->item);
                changes->item[changes->count++] = r;
                continue;       /* r now belongs to changes */
            }
        } else if (event == SMFIC_BODYEOB && changes) {
            uint32_t need = c == SMFIR_ADDHEADER ? SMFIF_ADDHDRS
                            : c == SMFIR_INSHEADER || c == SMFIR_CHGHEADER ? SMFIF_CHGHDRS
                            : c == SMFIR_REPLBODY ? SMFIF_CHGBODY
                            : c == SMFIR_ADDRCPT ? SMFIF_ADDRCPT
                            : c == SMFIR_ADDRCPT_PAR ? SMFIF_ADDRCPT_PAR
                            : c == SMFIR_DELRCPT ? SMFIF_DELRCPT
                            : c == SMFIR_CHGFROM ? SMFIF_CHGFROM : 0;
            if (c == SMFIR_INSHEADER && (m->actions & SMFIF_ADDHDRS))
                need = SMFIF_ADDHDRS;
            if (!need || !(m->actions & need)) {
                msg_warn("milter %s: unexpected reply '%c' at end of message", m->name, c);
                result = milter_failed(m);
                milter_reply_free(&r);
                break;
            }
            changes->item = xrealloc(changes->item, (changes->count + 1) * sizeof *changes->item);
            changes->item[changes->count++] = r;
            continue;           /* r now belongs to changes */
        } else {
            msg_warn("milter %s: unexpected reply '%c' to %s", m->name, c, event_name(event));
            result = milter_failed(m);
        }
        milter_reply_free(&r);
        break;
    }
    strbuf_free(&why);
done:
    strbuf_free(&packet);
    return result;
}

/* ---- the milters ---- */

/* One item of a milter list: "inet:host:port" or "{ name, key=value ... }". */
static void milter_add(struct milter_set *set, const char *param, const char *item)
{
    struct strlist parts = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT;
    if (list_split(item, &parts, &err) < 0 || !parts.count) {
        msg_warn("%s: bad item \"%s\": %s", param, item, strbuf_str(&err));
        strbuf_free(&err);
        strlist_free(&parts);
        return;
    }
    set->list = xrealloc(set->list, (set->count + 1) * sizeof *set->list);
    struct milter *m = &set->list[set->count++];
    memset(m, 0, sizeof *m);
    m->fd = -1;
    m->name = xstrdup(parts.item[0]);
    m->connect_timeout = conf_time("milter_connect_timeout");
    m->command_timeout = conf_time("milter_command_timeout");
    m->content_timeout = conf_time("milter_content_timeout");
    m->default_action = xstrdup(conf_str("milter_default_action"));
    m->version = (uint32_t)conf_int("milter_protocol");
    for (size_t i = 1; i < parts.count; i++) {
        const char *p = parts.item[i], *eq = strchr(p, '=');
        long long t = eq ? parse_time(eq + 1, 's') : -1;
        if (eq && strncmp(p, "connect_timeout=", 16) == 0 && t >= 0)
            m->connect_timeout = t;
        else if (eq && strncmp(p, "command_timeout=", 16) == 0 && t >= 0)
            m->command_timeout = t;
        else if (eq && strncmp(p, "content_timeout=", 16) == 0 && t >= 0)
            m->content_timeout = t;
        else if (eq && strncmp(p, "default_action=", 15) == 0) {
            free(m->default_action);
            m->default_action = xstrdup(eq + 1);
        } else if (eq && strncmp(p, "protocol=", 9) == 0 && atoi(eq + 1) >= 2 && atoi(eq + 1) <= 6)
            m->version = (uint32_t)atoi(eq + 1);
        else
            msg_warn("milter %s: unknown attribute: %s", m->name, p);
    }
    strlist_free(&parts);
    strbuf_free(&err);
}

/* Connect and negotiate (Postfix's milter8_connect). */
static void milter_open(struct milter *m)
{
    static const char *const params[MILTER_STAGE_COUNT] = {
        "milter_connect_macros", "milter_helo_macros", "milter_mail_macros",
        "milter_rcpt_macros", "milter_data_macros", "milter_end_of_data_macros",
        "milter_end_of_header_macros",
    };
    struct strbuf why = STRBUF_INIT, packet = STRBUF_INIT;
    if (strncmp(m->name, "inet:", 5) != 0 && strncmp(m->name, "unix:", 5) != 0) {
        msg_warn("invalid transport name in Milter service: %s", m->name);
        milter_failed(m);
        goto done;
    }
    m->fd = sock_connect(m->name, monotonic_ms() + m->connect_timeout * 1000, &why);
    if (m->fd < 0) {
        msg_warn("connect to Milter service %s: %s", m->name, strbuf_str(&why));
        milter_failed(m);
        goto done;
    }
    uint32_t my_version = m->version;
    milter_packet_begin(&packet, SMFIC_OPTNEG);
    milter_packet_u32(&packet, my_version);
    milter_packet_u32(&packet, MILTER_ACTIONS);
    milter_packet_u32(&packet, MILTER_PROTOCOL_STEPS);
    milter_packet_end(&packet);
    if (send_packet(m, &packet, m->command_timeout) < 0
        || read_packet(m, SMFIC_OPTNEG, &packet, m->command_timeout) < 0) {
        msg_warn("milter %s: read error in initial handshake", m->name);
        goto done;
    }
    struct milter_optneg neg;
    memset(&neg, 0, sizeof neg);
    if (packet.s[0] != SMFIC_OPTNEG) {
        msg_warn("milter %s: unexpected reply \"%c\" in initial handshake", m->name, packet.s[0]);
        milter_failed(m);
    } else if (milter_optneg_parse((const unsigned char *)packet.s + 1, packet.len - 1, &neg, &why) < 0) {
        msg_warn("milter %s: %s", m->name, strbuf_str(&why));
        milter_failed(m);
    } else if (neg.version > my_version) {
        msg_warn("milter %s: protocol version %u conflict with MTA protocol version %u",
                 m->name, neg.version, my_version);
        milter_failed(m);
    } else if ((neg.actions & MILTER_ACTIONS) != neg.actions) {
        msg_warn("milter %s: request mask 0x%x conflict with MTA request mask 0x%x",
                 m->name, neg.actions, MILTER_ACTIONS);
        milter_failed(m);
    } else {
        m->actions = neg.actions;
        m->steps = neg.protocol;
        /* events an older protocol does not have are not sent, and only
         * version 6 knows the "no reply" steps */
        if (neg.version < 6)
            m->steps &= SMFIP_NOCONNECT | SMFIP_NOHELO | SMFIP_NOMAIL | SMFIP_NORCPT
                        | SMFIP_NOBODY | SMFIP_NOHDRS | SMFIP_NOEOH | SMFIP_NOUNKNOWN | SMFIP_NODATA;
        if (neg.version < 3)
            m->steps |= SMFIP_NOUNKNOWN;
        if (neg.version < 4)
            m->steps |= SMFIP_NODATA;
        for (int i = 0; i < MILTER_STAGE_COUNT; i++)
            strbuf_set(&m->macros[i], neg.macros_set[i] ? strbuf_str(&neg.macros[i])
                                                        : conf_str(params[i]));
        m->state = MS_READY;
        set_def_reply(m, NULL);
    }
    milter_optneg_free(&neg);
done:
    strbuf_free(&why);
    strbuf_free(&packet);
}

/* Send an event to every milter in order until one answers something
 * other than "go on" (Postfix's milter_event loop). */
const char *milter_set_event(struct milter_set *set, int event, uint32_t skip, uint32_t noreply,
                             int stage, const struct strbuf *data, int message_event)
{
    const char *answer = NULL;
    for (size_t i = 0; i < set->count && !answer; i++) {
        struct milter *m = &set->list[i];
        if (m->state == MS_ENVELOPE)
            answer = milter_event(set, m, event, skip, noreply, stage, data, m->command_timeout, NULL);
        else if (m->state == MS_ACCEPT_MSG && !message_event)
            answer = NULL;
        else
            answer = m->state == MS_ACCEPT_CON || m->state == MS_ACCEPT_MSG ? NULL : def_reply(m);
    }
    return answer;
}

/* Split ESMTP arguments after the path into NUL-terminated strings. */
static void add_esmtp_args(struct strbuf *data, const char *rest)
{
    while (*rest) {
        while (*rest == ' ')
            rest++;
        size_t n = strcspn(rest, " ");
        if (n) {
            strbuf_append(data, rest, n);
            strbuf_putc(data, 0);
        }
        rest += n;
    }
}

/* The text after "FROM:<path>" or "TO:<path>" in a command's arguments
 * (the whole of args when it has no such prefix: sendmail's own). */
static const char *after_path(const char *args)
{
    const char *colon = strchr(args, ':');
    const char *p = colon ? colon + 1 : args;
    while (*p == ' ')
        p++;
    if (*p == '<') {
        const char *close = strchr(p, '>');
        return close ? close + 1 : p + strlen(p);
    }
    return p + strcspn(p, " ");
}

void milter_envelope_data(struct strbuf *data, const char *path, const char *args)
{
    strbuf_reset(data);
    strbuf_printf(data, "<%s>", path);
    strbuf_putc(data, 0);
    if (args)
        add_esmtp_args(data, after_path(args));
}

const char *milter_set_connect(struct milter_set *set, const char *client_name,
                               const char *client_addr, unsigned port)
{
    struct strbuf data = STRBUF_INIT;
    const char *answer = NULL;
    for (size_t i = 0; i < set->count && !answer; i++) {
        struct milter *m = &set->list[i];
        milter_open(m);
        if (m->state != MS_READY) {
            answer = def_reply(m);
            continue;
        }
        m->state = MS_ENVELOPE;
        strbuf_reset(&data);
        const char *addr = client_addr;
        int v6 = strchr(addr, ':') != NULL;
        if (strncmp(addr, "::ffff:", 7) == 0 && strchr(addr + 7, '.')) {
            addr += 7;
            v6 = 0;
        }
        if (strcmp(client_name, "unknown") == 0)
            strbuf_printf(&data, "[%s]", addr);
        else
            strbuf_puts(&data, client_name);
        strbuf_putc(&data, 0);
        strbuf_putc(&data, v6 ? '6' : '4');
        strbuf_putc(&data, (char)(port >> 8));
        strbuf_putc(&data, (char)port);
        strbuf_puts(&data, addr);
        strbuf_putc(&data, 0);
        answer = milter_event(set, m, SMFIC_CONNECT, SMFIP_NOCONNECT, SMFIP_NR_CONN,
                              MILTER_STAGE_CONNECT, &data, m->command_timeout, NULL);
    }
    strbuf_free(&data);
    return answer;
}

void milter_set_abort(struct milter_set *set)
{
    struct strbuf packet = STRBUF_INIT;
    for (size_t i = 0; i < set->count; i++) {
        struct milter *m = &set->list[i];
        if (m->state != MS_ENVELOPE && m->state != MS_ACCEPT_MSG)
            continue;
        milter_packet_begin(&packet, SMFIC_ABORT);
        milter_packet_end(&packet);
        if (send_packet(m, &packet, m->command_timeout) == 0)
            m->state = MS_ENVELOPE;
        m->skip_body = 0;
    }
    strbuf_free(&packet);
}

void milter_set_quit(struct milter_set *set)
{
    struct strbuf packet = STRBUF_INIT;
    for (size_t i = 0; i < set->count; i++) {
        struct milter *m = &set->list[i];
        if (m->fd < 0)
            continue;
        milter_packet_begin(&packet, SMFIC_QUIT);
        milter_packet_end(&packet);
        (void)send_packet(m, &packet, m->command_timeout);
        close(m->fd);
        m->fd = -1;
    }
    strbuf_free(&packet);
}

void milter_set_free(struct milter_set *set)
{
    for (size_t i = 0; i < set->count; i++) {
        struct milter *m = &set->list[i];
        if (m->fd >= 0)
            close(m->fd);
        free(m->name);
        free(m->default_action);
        for (int k = 0; k < MILTER_STAGE_COUNT; k++)
            strbuf_free(&m->macros[k]);
        strbuf_free(&m->def_reply);
    }
    free(set->list);
    set->list = NULL;
    set->count = 0;
    strbuf_free(&set->reply);
}

void milter_set_add(struct milter_set *set, const char *param)
{
    struct strlist items = STRLIST_INIT;
    conf_list(param, &items);
    for (size_t i = 0; i < items.count; i++)
        milter_add(set, param, items.item[i]);
    strlist_free(&items);
    milter_macro_defaults_load();
}

/* ---- the message ---- */

/* Split held text at the end of its header: fields into msg->headers
 * (a line that is no field, or the empty line, ends the header), the
 * body's offset set.  Returns 0, or -1 on a read error. */
static int message_read(int fd, struct milter_message *msg)
{
    struct strbuf head = STRBUF_INIT;
    char buf[8192];
    off_t at = 0;
    /* the header, at most 4 MB of it (the rest is body) */
    while (head.len < (4u << 20)) {
        ssize_t n = pread_retry(fd, buf, sizeof buf, at);
        if (n < 0) {
            strbuf_free(&head);
            return -1;
        }
        if (n == 0)
            break;
        strbuf_append(&head, buf, (size_t)n);
        at += n;
        if ((head.len && head.s[0] == '\n') || strstr(head.s, "\n\n"))
            break;
    }
    size_t pos = 0, field_start = 0;
    int in_field = 0;
    while (pos < head.len) {
        const char *line = head.s + pos;
        const char *nl = memchr(line, '\n', head.len - pos);
        if (!nl)
            break;              /* an unfinished line: body */
        size_t len = (size_t)(nl - line) + 1;
        if (in_field && (line[0] == ' ' || line[0] == '\t')) {
            pos += len;
            continue;
        }
        if (in_field) {
            strlist_add(&msg->headers, "");
            free(msg->headers.item[msg->headers.count - 1]);
            msg->headers.item[msg->headers.count - 1] = xstrndup(head.s + field_start, pos - field_start);
            in_field = 0;
        }
        size_t name = strcspn(line, ":\n \t");
        if (line[0] == '\n') {
            pos += len;         /* the empty line goes; release writes one */
            break;
        }
        if (!name || line[name] != ':')
            break;
        field_start = pos;
        in_field = 1;
        pos += len;
    }
    if (in_field) {
        strlist_add(&msg->headers, "");
        free(msg->headers.item[msg->headers.count - 1]);
        msg->headers.item[msg->headers.count - 1] = xstrndup(head.s + field_start, pos - field_start);
    }
    strbuf_free(&head);
    msg->held_fd = msg->body_fd = fd;
    msg->body_offset = (off_t)pos;
    return 0;
}

/* Name and value of a header field ("Name: value\n" -> "Name", "value"
 * with continuation lines as LF-separated text, no final LF). */
static void field_split(const char *field, int leading_space, struct strbuf *name, struct strbuf *value)
{
    size_t n = strcspn(field, ":");
    strbuf_reset(name);
    strbuf_append(name, field, n);
    while (name->len && (name->s[name->len - 1] == ' ' || name->s[name->len - 1] == '\t'))
        strbuf_truncate(name, name->len - 1);
    const char *v = field[n] ? field + n + 1 : field + n;
    if (!leading_space && *v == ' ')
        v++;
    strbuf_set(value, v);
    if (value->len && value->s[value->len - 1] == '\n')
        strbuf_truncate(value, value->len - 1);
}

/* Send the header, end of header, body and end of message to one milter;
 * its answer (NULL: go on), changes in `changes`. */
static const char *message_to_milter(struct milter_set *set, struct milter *m, const struct milter_message *msg,
                                     struct milter_changes *changes)
{
    struct strbuf data = STRBUF_INIT, name = STRBUF_INIT, value = STRBUF_INIT;
    const char *answer = NULL;
    long long t = m->content_timeout;
    int leading = (m->steps & SMFIP_HDR_LEADSPC) != 0;
    for (size_t i = msg->own; i < msg->headers.count && !answer && m->state == MS_ENVELOPE; i++) {
        field_split(msg->headers.item[i], leading, &name, &value);
        strbuf_reset(&data);
        milter_packet_string(&data, strbuf_str(&name));
        milter_packet_string(&data, strbuf_str(&value));
        answer = milter_event(set, m, SMFIC_HEADER, SMFIP_NOHDRS, SMFIP_NR_HDR, -1, &data, t, NULL);
    }
    if (!answer && m->state == MS_ENVELOPE)
        answer = milter_event(set, m, SMFIC_EOH, SMFIP_NOEOH, SMFIP_NR_EOH, MILTER_STAGE_EOH, NULL, t, NULL);
    /* the body with CR LF line ends, in chunks */
    char buf[8192];
    off_t at = msg->body_offset;
    strbuf_reset(&data);
    while (!answer && m->state == MS_ENVELOPE && !m->skip_body && !(m->steps & SMFIP_NOBODY)) {
        ssize_t n = pread_retry(msg->body_fd, buf, sizeof buf, at);
        if (n < 0) {
            answer = "451 4.3.0 Error: queue file write error";
            break;
        }
        for (ssize_t i = 0; i < n; i++) {
            if (buf[i] == '\n')
                strbuf_putc(&data, '\r');
            strbuf_putc(&data, buf[i]);
        }
        at += n;
        while (!answer && m->state == MS_ENVELOPE && !m->skip_body
               && (data.len >= MILTER_CHUNK_SIZE || (n == 0 && data.len))) {
            size_t piece = data.len < MILTER_CHUNK_SIZE ? data.len : MILTER_CHUNK_SIZE;
            struct strbuf chunk = STRBUF_INIT;
            strbuf_append(&chunk, data.s, piece);
            answer = milter_event(set, m, SMFIC_BODY, SMFIP_NOBODY, SMFIP_NR_BODY, -1, &chunk, t, NULL);
            strbuf_free(&chunk);
            memmove(data.s, data.s + piece, data.len - piece);
            strbuf_truncate(&data, data.len - piece);
        }
        if (n == 0)
            break;
    }
    if (!answer && m->state == MS_ENVELOPE)
        answer = milter_event(set, m, SMFIC_BODYEOB, 0, 0, MILTER_STAGE_EOM, NULL, t, changes);
    if (m->state == MS_ACCEPT_MSG)
        m->state = MS_ENVELOPE;
    strbuf_free(&data);
    strbuf_free(&name);
    strbuf_free(&value);
    return answer;
}

/* A header field from a milter's name and value: "Name: value\n", each
 * line break followed by white space (a line that would start a field of
 * its own or the body gets a tab), CR LF made LF.  NULL for a bad name. */
static char *field_make(const char *name, const char *value, int leading_space)
{
    if (!*name || strcspn(name, ": \t\r\n") != strlen(name))
        return NULL;
    struct strbuf f = STRBUF_INIT;
    strbuf_printf(&f, "%s:%s", name, leading_space ? "" : " ");
    for (const char *p = value; *p; p++) {
        if (*p == '\r' && p[1] == '\n')
            continue;
        strbuf_putc(&f, *p);
        if (*p == '\n' && p[1] != ' ' && p[1] != '\t')
            strbuf_putc(&f, '\t');
    }
    strbuf_putc(&f, '\n');
    return strbuf_detach(&f);
}

/* Insert a string into a list at position `at`. */
static void list_insert(struct strlist *list, size_t at, char *item)
{
    list->item = xreallocarray(list->item, list->count + 1, sizeof *list->item);
    memmove(list->item + at + 1, list->item + at, (list->count - at) * sizeof *list->item);
    list->item[at] = item;
    list->count++;
}

/* Remove a recipient (its T record and the P records after it). */
static void recipient_delete(struct envelope *env, const char *address)
{
    struct strlist *r = &env->records;
    size_t w = 0;
    int dropping = 0;
    for (size_t i = 0; i < r->count; i++) {
        char *rec = r->item[i];
        if (rec[0] == 'T')
            dropping = strcmp(rec + 1, address) == 0;
        else if (rec[0] != 'P')
            dropping = 0;
        if (dropping)
            free(rec);
        else
            r->item[w++] = rec;
    }
    r->count = w;
}

/* Strip "<" and ">" around an address from a milter. */
static void bare_address(const char *in, struct strbuf *out)
{
    strbuf_set(out, in);
    if (out->len >= 2 && out->s[0] == '<' && out->s[out->len - 1] == '>') {
        memmove(out->s, out->s + 1, out->len - 2);
        strbuf_truncate(out, out->len - 2);
    }
}

/* A field a milter added or changed, through milter_header_checks: the
 * field to keep (REPLACE: the new one), or NULL when it goes (IGNORE, or
 * REJECT, which mc notes).  Takes field. */
static char *field_checked(struct milter_checks *mc, char *field)
{
    if (!mc->cfg || !mc->cfg->milter_header_checks || mc->rejected)
        return field;
    struct strbuf content = STRBUF_INIT, replaced = STRBUF_INIT, prepend = STRBUF_INIT;
    strbuf_set(&content, field);
    if (content.len && content.s[content.len - 1] == '\n')
        strbuf_truncate(&content, content.len - 1);
    int action = rewrite_check(mc->cfg, &mc->info, CHECKS_MILTER, strbuf_str(&content), &replaced,
                               &prepend, &mc->reject);
    if (action == CHECK_REJECT)
        mc->rejected = 1;
    if (action == CHECK_REJECT || action == CHECK_IGNORE) {
        free(field);
        field = NULL;
    } else if (action == CHECK_REPLACE) {
        free(field);
        strbuf_putc(&replaced, '\n');
        field = strbuf_detach(&replaced);
    }
    strbuf_free(&content);
    strbuf_free(&replaced);
    strbuf_free(&prepend);
    return field;
}

/* Apply one milter's changes to the message and envelope. */
static void changes_apply(struct milter *m, struct milter_changes *changes, struct milter_message *msg,
                          struct envelope *env, struct milter_checks *mc)
{
    int leading = (m->steps & SMFIP_HDR_LEADSPC) != 0;
    int body_replaced = 0;
    struct strbuf addr = STRBUF_INIT, name = STRBUF_INIT, value = STRBUF_INIT;
    for (size_t i = 0; i < changes->count; i++) {
        struct milter_reply *r = &changes->item[i];
        char *field;
        switch (r->command) {
        case SMFIR_ADDHEADER:
        case SMFIR_INSHEADER:
            field = field_make(strbuf_str(&r->name), strbuf_str(&r->value), leading);
            if (!field) {
                msg_warn("milter %s: bad header name: %.100s", m->name, strbuf_str(&r->name));
                break;
            }
            field = field_checked(mc, field);
            if (!field)
                break;
            /* an insert index counts the MTA's own header fields too, as
             * Postfix's counts its Received header */
            list_insert(&msg->headers, r->command == SMFIR_ADDHEADER || r->index > msg->headers.count
                                       ? msg->headers.count : r->index, field);
            if (r->command == SMFIR_INSHEADER && r->index < msg->own)
                msg->own++;
            break;
        case SMFIR_CHGHEADER: {
            /* the index-th field of that name among those the milters saw, from 1 */
            uint32_t want = r->index ? r->index : 1, seen = 0;
            for (size_t h = msg->own; h < msg->headers.count; h++) {
                field_split(msg->headers.item[h], 0, &name, &value);
                if (strcasecmp(strbuf_str(&name), strbuf_str(&r->name)) != 0 || ++seen != want)
                    continue;
                free(msg->headers.item[h]);
                if (!r->value.len) {        /* an empty value deletes it */
                    memmove(msg->headers.item + h, msg->headers.item + h + 1,
                            (msg->headers.count - h - 1) * sizeof *msg->headers.item);
                    msg->headers.count--;
                } else {
                    field = field_make(strbuf_str(&r->name), strbuf_str(&r->value), leading);
                    field = field_checked(mc, field ? field : xstrdup("X-Invalid: header\n"));
                    if (field) {
                        msg->headers.item[h] = field;
                    } else {        /* IGNORE or REJECT: the field goes */
                        memmove(msg->headers.item + h, msg->headers.item + h + 1,
                                (msg->headers.count - h - 1) * sizeof *msg->headers.item);
                        msg->headers.count--;
                    }
                }
                break;
            }
            break;
        }
        case SMFIR_REPLBODY:
            if (!body_replaced) {
                int fd = memfd_create("postern-milter-body", MFD_CLOEXEC);
                if (fd < 0) {
                    msg_warn("milter %s: memfd_create: %s", m->name, strerror(errno));
                    break;
                }
                if (msg->body_fd != msg->held_fd)
                    close(msg->body_fd);
                msg->body_fd = fd;
                msg->body_offset = 0;
                body_replaced = 1;
            }
            /* CR LF becomes LF as the body is kept */
            {
                struct strbuf lf = STRBUF_INIT;
                for (size_t k = 0; k < r->value.len; k++)
                    if (!(r->value.s[k] == '\r' && k + 1 < r->value.len && r->value.s[k + 1] == '\n'))
                        strbuf_putc(&lf, r->value.s[k]);
                off_t end = lseek(msg->body_fd, 0, SEEK_END);
                if (end < 0 || write_all(msg->body_fd, lf.s ? lf.s : "", lf.len) < 0)
                    msg_warn("milter %s: body: %s", m->name, strerror(errno));
                strbuf_free(&lf);
            }
            break;
        case SMFIR_CHGFROM:
            bare_address(strbuf_str(&r->name), &addr);
            msg_info("milter %s: sender changed to <%s>", m->name, strbuf_str(&addr));
            free(env->sender);
            env->sender = xstrdup(strbuf_str(&addr));
            break;
        case SMFIR_ADDRCPT:
        case SMFIR_ADDRCPT_PAR: {
            bare_address(strbuf_str(&r->name), &addr);
            size_t at = 0;
            while (at < env->records.count && env->records.item[at][0] != 'A')
                at++;
            struct strbuf rec = STRBUF_INIT;
            strbuf_printf(&rec, "T%s", strbuf_str(&addr));
            list_insert(&env->records, at, strbuf_detach(&rec));
            break;
        }
        case SMFIR_DELRCPT:
            bare_address(strbuf_str(&r->name), &addr);
            recipient_delete(env, strbuf_str(&addr));
            break;
        default:
            break;
        }
    }
    strbuf_free(&addr);
    strbuf_free(&name);
    strbuf_free(&value);
}

static void changes_free(struct milter_changes *changes)
{
    for (size_t i = 0; i < changes->count; i++)
        milter_reply_free(&changes->item[i]);
    free(changes->item);
    changes->item = NULL;
    changes->count = 0;
}

int milter_message_write(const struct milter_message *msg,
                         int (*put)(void *ctx, const void *bytes, size_t n), void *ctx)
{
    for (size_t i = 0; i < msg->headers.count; i++)
        if (put(ctx, msg->headers.item[i], strlen(msg->headers.item[i])) < 0)
            return -1;
    if (put(ctx, "\n", 1) < 0)
        return -1;
    char buf[8192];
    off_t at = msg->body_offset;
    for (;;) {
        ssize_t n = pread_retry(msg->body_fd, buf, sizeof buf, at);
        if (n < 0)
            return -1;
        if (n == 0)
            break;
        if (put(ctx, buf, (size_t)n) < 0)
            return -1;
        at += n;
    }
    return 0;
}

void milter_message_free(struct milter_message *msg)
{
    if (msg->body_fd != msg->held_fd && msg->body_fd >= 0)
        close(msg->body_fd);
    msg->body_fd = msg->held_fd;
    strlist_free(&msg->headers);
}

int milter_message_read(int fd, size_t own_bytes, struct milter_message *msg)
{
    if (message_read(fd, msg) < 0)
        return -1;
    /* the MTA's own header fields (PREPEND, Received), hidden from milters */
    size_t bytes = 0;
    while (msg->own < msg->headers.count && bytes < own_bytes)
        bytes += strlen(msg->headers.item[msg->own++]);
    return 0;
}

const char *milter_set_message(struct milter_set *set, int fd, size_t own_bytes,
                               struct milter_message *msg, struct envelope *env,
                               struct milter_checks *mc, int *hold)
{
    const char *answer = NULL;
    *hold = 0;
    if (msg->held_fd < 0 && milter_message_read(fd, own_bytes, msg) < 0)
        return "451 4.3.0 Error: queue file write error";
    for (size_t i = 0; i < set->count && !answer; i++) {
        struct milter *m = &set->list[i];
        struct milter_changes changes = {NULL, 0};
        if (m->state != MS_ENVELOPE) {
            if (m->state == MS_ERROR || m->state == MS_REJECT_CON)
                answer = def_reply(m);
            if (m->state == MS_ACCEPT_MSG)
                m->state = MS_ENVELOPE;
            if (answer && answer[0] == 'H') {
                *hold = 1;
                answer = NULL;
            }
            continue;
        }
        answer = message_to_milter(set, m, msg, &changes);
        if (!answer || answer[0] == 'H')
            changes_apply(m, &changes, msg, env, mc);
        for (size_t k = 0; k < changes.count; k++)
            if (changes.item[k].command == SMFIR_QUARANTINE)
                *hold = 1;
        if (answer && answer[0] == 'H') {
            *hold = 1;
            answer = NULL;
        }
        changes_free(&changes);
    }
    return answer;
}

const char *milter_answer_reply(const char *answer, const char **action, const char **text)
{
    if (answer[0] == 'H') {
        *action = "milter-hold";
        *text = "milter triggers HOLD action";
        return NULL;
    }
    if (answer[0] == 'D') {
        *action = "milter-discard";
        *text = "milter triggers DISCARD action";
        return NULL;
    }
    *action = "milter-reject";
    if (answer[0] == 'S')
        *text = "421 4.7.0 Server closing connection";
    else if (answer[0] == '4' || answer[0] == '5')
        *text = answer;
    else {
        *action = "reject";
        *text = "421 4.3.5 Server configuration error";
    }
    return *text;
}
