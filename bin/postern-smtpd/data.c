/* data.c - DATA and BDAT: the message text from the client into the
 * injection chain.
 *
 * DATA ends only on <CR><LF>.<CR><LF>: a "." line ends the message when it
 * and the line before it both end in CR LF.  <LF>.<LF>, <LF>.<CR><LF>,
 * <CR><LF>.<LF> and <CR>.<CR> are message text (no SMTP smuggling).  A bare
 * LF ends a line of text (smtpd_forbid_bare_newline = normalize, Postfix
 * 3.9's default) or, with "reject", ends the session with an error.  A bare
 * CR is text.  Lines go to the chain with LF endings, dots unstuffed.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "injection_client.h"
#include "log.h"
#include "smtpd.h"

#define DATA_CHUNK 8192

/* Common checks before message text: 0 when the transaction may go on,
 * else the reply was given. */
static int transaction_ready(struct session *s)
{
    /* Postfix 3.7's words: "need RCPT" even before MAIL; after MAIL with
     * every recipient refused, "no valid recipients" */
    if (!s->tx.recipient_count) {
        if (!s->tx.active)
            reply(s, "503 5.5.1 Error: need RCPT command");
        else
            reply(s, "554 5.5.1 Error: no valid recipients");
        return 0;
    }
    return 1;
}

/* After the message: start afresh, and forgive the errors of a client
 * that got mail through. */
static void message_done(struct session *s, int accepted, enum smtpd_command cmd)
{
    s->where = "END-OF-MESSAGE";
    if (accepted) {
        s->error_count = 0;
        s->junk_count = 0;
    } else {
        s->command_failed[cmd]++;
        session_error(s);
    }
    s->injection = NULL;
    transaction_reset(s);
}

/* Refuse a bare LF (smtpd_forbid_bare_newline = reject) and hang up. */
static _Noreturn void bare_lf_refused(struct session *s)
{
    msg_info("disconnect: bare <LF> received from %s after %s", s->client.namaddr, s->where);
    reply(s, "%d 5.5.2 %s Error: bare <LF> received", s->bare_newline_reject_code, s->myhostname);
    session_end(s, 0);
}

/* smtpd_data_restrictions: 1 when the message may come, else the refusal
 * was replied (and logged). */
static int data_allowed(struct session *s)
{
    struct strbuf text = STRBUF_INIT;
    int code = policy_check_data(s, &text);
    if (code)
        reply(s, "%s", strbuf_str(&text));
    strbuf_free(&text);
    if (code)
        return 0;
    /* smtpd_milters: the DATA event (SMFIC_DATA) */
    const char *refusal = milter_data(s);
    if (refusal)
        reply(s, "%s", refusal);
    return refusal == NULL;
}

void cmd_data(struct session *s, char *args)
{
    while (*args == ' ')
        args++;
    if (*args) {
        reply(s, "501 5.5.4 Syntax: DATA");
        goto failed;
    }
    if (!transaction_ready(s))
        goto failed;
    if (s->tx.bdat_started) {
        reply(s, "503 5.5.1 Error: DATA after BDAT");
        goto failed;
    }
    if (!data_allowed(s))
        goto failed;
    struct injection_client *inj = submit_start(s);
    if (!inj)
        goto failed;
    s->injection = inj;
    reply(s, "354 End data with <CR><LF>.<CR><LF>");
    s->where = "DATA";
    s->in_data = 1;
    s->data_bytes = 0;
    io_request_begin(s);

    struct strbuf chunk = STRBUF_INIT;
    int at_line_start = 1, previous_crlf = 1, size_exceeded = 0;
    char carried_cr = 0;        /* a CR at a chunk's end whose LF may follow */
    for (;;) {
        if (!io_read_chunk(s, &chunk, DATA_CHUNK)) {
            strbuf_free(&chunk);
            session_lost(s);
        }
        s->data_bytes += (long long)chunk.len;
        if (carried_cr) {       /* put the CR back in front */
            strbuf_grow(&chunk, 1);
            memmove(chunk.s + 1, chunk.s, chunk.len);
            chunk.s[0] = '\r';
            chunk.len++;
            chunk.s[chunk.len] = '\0';
            carried_cr = 0;
        }
        const char *text = chunk.s;
        size_t len = chunk.len;
        int terminated = 0, crlf = 0;
        if (len && text[len - 1] == '\n') {
            terminated = 1;
            len--;
            if (len && text[len - 1] == '\r') {
                crlf = 1;
                len--;
            }
        } else if (len && text[len - 1] == '\r') {
            carried_cr = 1;     /* decide with the next chunk */
            len--;
        }
        if (terminated && !crlf && s->bare_newline == 2)
            bare_lf_refused(s);
        if (at_line_start && terminated && crlf && previous_crlf && len == 1 && text[0] == '.')
            break;
        if (at_line_start && len && text[0] == '.') {
            text++;
            len--;
        }
        if (!size_exceeded) {
            injection_write(inj, text, len);
            if (terminated)
                injection_write(inj, "\n", 1);
            if (s->message_size_limit > 0 && submit_size(inj) > s->message_size_limit)
                size_exceeded = 1;
        }
        at_line_start = terminated;
        if (terminated)
            previous_crlf = crlf;
    }
    strbuf_free(&chunk);
    s->in_data = 0;
    message_done(s, submit_finish(s, inj, size_exceeded), CMD_DATA);
    return;
failed:
    s->command_failed[CMD_DATA]++;
    session_error(s);
}

/* BDAT text: CR LF becomes LF, also across chunks. */
struct bdat_state {
    struct injection_client *inj;
    int *pending_cr;
};

/* Hand one piece of a BDAT chunk to the chain (or drop it). */
static void bdat_piece(struct session *s, const unsigned char *p, size_t len, void *ctx)
{
    struct bdat_state *st = ctx;
    if (!st->inj)
        return;
    for (size_t i = 0; i < len; i++) {
        if (*st->pending_cr) {
            *st->pending_cr = 0;
            if (p[i] != '\n')
                injection_write(st->inj, "\r", 1);
        }
        if (p[i] == '\r') {
            *st->pending_cr = 1;
            continue;
        }
        /* write runs of plain bytes at once */
        size_t j = i;
        while (j < len && p[j] != '\r')
            j++;
        injection_write(st->inj, p + i, j - i);
        i = j - 1;
    }
    (void)s;
}

void cmd_bdat(struct session *s, char *args)
{
    static int pending_cr;
    while (*args == ' ')
        args++;
    char *end;
    errno = 0;
    long long size = strtoll(args, &end, 10);
    if (!*args || end == args || errno || size < 0 || (*end && *end != ' ')) {
        reply(s, "521 5.5.4 Syntax: BDAT count [LAST]");
        s->command_failed[CMD_BDAT]++;
        session_end(s, 0);
    }
    while (*end == ' ')
        end++;
    int last = 0;
    if (*end) {
        if (strcasecmp(end, "LAST") != 0) {
            reply(s, "521 5.5.4 Syntax: BDAT count [LAST]");
            s->command_failed[CMD_BDAT]++;
            session_end(s, 0);
        }
        last = 1;
    }
    struct bdat_state st = {NULL, &pending_cr};
    s->where = "BDAT";
    io_request_begin(s);
    if (s->tx.active && s->tx.bdat_failed) {
        if (!io_read_exact(s, size, bdat_piece, &st))
            session_lost(s);
        reply(s, "503 5.5.1 Error: BDAT chunk discarded after an earlier error");
        if (last)
            transaction_reset(s);
        s->command_failed[CMD_BDAT]++;
        session_error(s);
        return;
    }
    if (!transaction_ready(s)) {
        if (!io_read_exact(s, size, bdat_piece, &st))
            session_lost(s);
        s->command_failed[CMD_BDAT]++;
        session_error(s);
        return;
    }
    if (!s->tx.bdat_started) {
        pending_cr = 0;
        s->injection = data_allowed(s) ? submit_start(s) : NULL;
        s->tx.bdat_started = 1;
        if (!s->injection) {
            /* the reply is given; drop the text */
            s->tx.bdat_failed = 1;
            if (!io_read_exact(s, size, bdat_piece, &st))
                session_lost(s);
            s->command_failed[CMD_BDAT]++;
            session_error(s);
            return;
        }
    }
    st.inj = s->injection;
    s->in_data = 1;
    if (!io_read_exact(s, size, bdat_piece, &st))
        session_lost(s);
    s->in_data = 0;
    s->data_bytes += size;
    int exceeded = s->message_size_limit > 0 && submit_size(s->injection) > s->message_size_limit;
    if (!last && !exceeded) {
        reply(s, "250 2.0.0 Ok: %lld bytes", size);
        return;
    }
    if (pending_cr)
        injection_write(s->injection, "\r", 1);
    pending_cr = 0;
    struct injection_client *inj = s->injection;
    s->injection = NULL;
    if (exceeded && !last) {
        /* Postfix refuses at once; later chunks are dropped */
        submit_finish(s, inj, 1);
        s->tx.bdat_failed = 1;
        s->command_failed[CMD_BDAT]++;
        session_error(s);
        return;
    }
    message_done(s, submit_finish(s, inj, exceeded), CMD_BDAT);
}
