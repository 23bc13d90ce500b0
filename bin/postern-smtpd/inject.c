/* inject.c - one message down the injection chain (doc/injection.md), with
 * rewrite run in-process (DESIGN.md, Privileges: rewrite holds no privilege
 * of its own, and a fork and exec of postern-rewrite per message cost more
 * than the boundary protects): the message goes through lib/rewrite's push
 * stream into the queue stage's fd 0 as it arrives (never held whole in
 * memory), the envelope, rewritten, on its fd 1 once the message is
 * complete, and the verdict comes back on fd 3.  The queue stage is started
 * by lib/queuestage.  The Received header is written first, so it counts
 * towards hopcount_limit as it did when postern-rewrite read it.
 * Should a filter ever have to stand between rewrite and queue, this is
 * where smtpd would go back to exec'ing `postern-rewrite -- FILTER`.
 *
 * The queue id is known only once postern-queue has stored the message, so
 * the Received header carries no "id" clause (Postfix writes its queue id
 * there); the id appears in the 250 reply and the log instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "fdio.h"
#include "log.h"
#include "queuestage.h"
#include "rewrite.h"
#include "smtpd.h"
#include "xalloc.h"

struct injection {
    struct queue_stage stage;
    int message_fd, envelope_fd, status_fd;
    long long size;
    int broken;                 /* the stream stopped: bytes are dropped */
    struct rewrite_stream *stream;
    struct rewrite_message_info info;
    struct strbuf sender;       /* the rewritten sender, for info */
    char uid[32];               /* the uid attribute of a local submission */
};

/* rewrite's settings, read once per process (before a zygote forks). */
static struct rewrite_config rewrite_settings;
static int rewrite_settings_loaded;

/* Load rewrite's settings the first time only. */
void inject_init(void)
{
    if (rewrite_settings_loaded)
        return;
    rewrite_config_load(&rewrite_settings);
    rewrite_settings_loaded = 1;
}

/* Append the Received header (RFC 5321 section 4.4). */
static void received_header(struct session *s, struct strbuf *out)
{
    char date[64];
    time_t now = time(NULL);
    struct tm tm;
    localtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S %z (%Z)", &tm);
    const struct forwarded *f = &s->forwarded;
    const char *name = f->set && f->name[0] ? f->name : s->client.name;
    const char *address = f->set && f->address[0] ? f->address : s->client.address;
    const char *from = f->set && f->helo[0] ? f->helo : s->helo.len ? strbuf_str(&s->helo) : name;
    /* RFC 5321 address literal: IPv6 addresses carry the "IPv6:" tag */
    strbuf_printf(out, "Received: from %s (%s [%s%s])\n", from, name,
                  strchr(address, ':') ? "IPv6:" : "", address);
    strbuf_printf(out, "\tby %s (%s) with %s", s->myhostname, conf_str("mail_name"),
                  s->local_submission ? "ESMTP" : s->protocol);
    if (s->tx.recipient_count == 1) {
        struct strbuf printable = STRBUF_INIT;
        strbuf_printf(out, "\n\tfor <%s>; %s\n",
                      log_printable(&printable, strbuf_str(&s->tx.last_recipient), 1000), date);
        strbuf_free(&printable);
    } else {
        strbuf_printf(out, ";\n\t%s\n", date);      /* Postfix's layout */
    }
}

struct injection *inject_start(struct session *s)
{
    int message[2], envelope[2], status[2];
    inject_init();
    if (pipe2(message, O_CLOEXEC) < 0) {
        msg_warn_errno("pipe");
        goto fail;
    }
    if (pipe2(envelope, O_CLOEXEC) < 0) {
        msg_warn_errno("pipe");
        close(message[0]);
        close(message[1]);
        goto fail;
    }
    if (pipe2(status, O_CLOEXEC) < 0) {
        msg_warn_errno("pipe");
        close(message[0]);
        close(message[1]);
        close(envelope[0]);
        close(envelope[1]);
        goto fail;
    }
    struct injection *inj = xcalloc(1, sizeof *inj);
    int started = queue_stage_start(&inj->stage, message[0], envelope[0], status[1]);
    int saved = errno;
    close(message[0]);
    close(envelope[0]);
    close(status[1]);
    if (started < 0) {
        errno = saved;
        msg_warn_errno("start the queue stage");
        close(message[1]);
        close(envelope[1]);
        close(status[0]);
        free(inj);
        goto fail;
    }
    inj->message_fd = message[1];
    inj->envelope_fd = envelope[1];
    inj->status_fd = status[0];
    /* what rewrite needs from the envelope before the message; the
     * envelope itself is built at the end (rewrite_message_info_from on
     * smtpd's envelope gives the same) */
    inj->sender = (struct strbuf)STRBUF_INIT;
    rewrite_address(&rewrite_settings, strbuf_str(&s->tx.sender), &inj->sender);
    inj->info.local = s->local_submission;
    inj->info.sender = strbuf_str(&inj->sender);
    inj->info.full_name = NULL;
    inj->info.uid = NULL;
    if (s->local_submission) {
        snprintf(inj->uid, sizeof inj->uid, "%ld", (long)getuid());
        inj->info.uid = inj->uid;
    }
    inj->stream = rewrite_stream_begin(&rewrite_settings, &inj->info, inj->message_fd);
    /* a local submission (-S) gets its Received line from rewrite, as
     * every origin=local message does ("by HOST (postern, from userid N)") */
    if (!s->local_submission) {
        struct strbuf received = STRBUF_INIT;
        received_header(s, &received);
        if (rewrite_stream_feed(inj->stream, received.s, received.len) != 0)
            inj->broken = 1;
        strbuf_free(&received);
    }
    return inj;
fail:
    reply(s, "451 4.3.0 Error: queue file write error");
    return NULL;
}

void inject_write(struct injection *inj, const void *bytes, size_t n)
{
    inj->size += (long long)n;
    if (inj->broken)
        return;
    if (rewrite_stream_feed(inj->stream, bytes, n) != 0)
        inj->broken = 1;        /* the rest is read and dropped */
}

long long inject_size(const struct injection *inj)
{
    return inj->size;
}

/* Close everything and wait for the queue stage; returns its wait status. */
static int inject_reap(struct injection *inj)
{
    rewrite_stream_free(inj->stream);
    if (inj->message_fd >= 0)
        close(inj->message_fd);
    if (inj->envelope_fd >= 0)
        close(inj->envelope_fd);
    if (inj->status_fd >= 0)
        close(inj->status_fd);
    int wstatus = queue_stage_wait(&inj->stage);
    strbuf_free(&inj->sender);
    free(inj);
    return wstatus;
}

void inject_abort(struct injection *inj)
{
    /* the envelope never gets its end record: the queue stores nothing */
    inject_reap(inj);
}

/* Add the NUL-terminated records of a buffer (type byte first) to env. */
static void add_records(struct envelope *env, const struct strbuf *records)
{
    for (size_t at = 0; at < records->len;) {
        const char *rec = records->s + at;
        strlist_add(&env->records, rec);
        at += strlen(rec) + 1;
    }
}

/* The envelope as smtpd gives it (doc/injection.md), before rewrite. */
static void build_envelope(struct session *s, struct envelope *env)
{
    struct transaction *tx = &s->tx;
    struct strbuf attrs = STRBUF_INIT;
    env->sender = xstrdup(strbuf_str(&tx->sender));
    add_records(env, &tx->recipients);
    add_records(env, &tx->attributes);
    record_putf(&attrs, 'A', "origin=%s", s->local_submission ? "local" : "smtp");
    if (s->local_submission)
        record_putf(&attrs, 'A', "uid=%ld", (long)getuid());
    const struct forwarded *f = &s->forwarded;
    const char *name = f->set && f->name[0] ? f->name : s->client.name;
    const char *address = f->set && f->address[0] ? f->address : s->client.address;
    const char *port = f->set && f->port[0] ? f->port : s->client.port;
    const char *helo = f->set && f->helo[0] ? f->helo : strbuf_str(&s->helo);
    record_putf(&attrs, 'A', "client_name=%s", name);
    record_putf(&attrs, 'A', "client_address=%s", address);
    if (*port)
        record_putf(&attrs, 'A', "client_port=%s", port);
    if (*helo)
        record_putf(&attrs, 'A', "helo_name=%s", helo);
    record_putf(&attrs, 'A', "protocol=%s", f->set && f->protocol[0] ? f->protocol : s->protocol);
    record_putf(&attrs, 'A', "log_client=%s[%s]", name, address);
    record_putf(&attrs, 'A', "log_pid=%ld", (long)getpid());
    add_records(env, &attrs);
    strbuf_free(&attrs);
}

/* The rewritten envelope, with its end record, on the queue's fd 1. */
static void send_envelope(struct session *s, struct injection *inj)
{
    struct envelope env = ENVELOPE_INIT;
    struct strbuf records = STRBUF_INIT;
    build_envelope(s, &env);
    rewrite_envelope(&rewrite_settings, &env);
    envelope_write(&env, &records);
    if (write_all(inj->envelope_fd, records.s, records.len) != 0)
        inj->broken = 1;        /* the queue went away: it says why on fd 3 */
    strbuf_free(&records);
    envelope_free(&env);
}

/* "NNN X.Y.Z text" from a Z or D record, with the default code. */
static void status_reply(const char *value, int default_code, struct strbuf *out)
{
    if (strlen(value) > 4 && value[0] >= '2' && value[0] <= '5' && value[3] == ' '
        && value[1] >= '0' && value[1] <= '9' && value[2] >= '0' && value[2] <= '9')
        strbuf_puts(out, value);
    else
        strbuf_printf(out, "%d %s", default_code, value);
}

int inject_finish(struct session *s, struct injection *inj, int size_exceeded)
{
    struct strbuf text = STRBUF_INIT, why = STRBUF_INIT;
    int accepted = 0;
    if (size_exceeded) {
        inject_reap(inj);
        strbuf_puts(&text, "552 5.3.4 Message size exceeds fixed limit");
        goto refused;
    }
    int r = rewrite_stream_end(inj->stream, &why);
    inj->stream = NULL;
    close(inj->message_fd);
    inj->message_fd = -1;
    if (r == REWRITE_TOO_MANY_HOPS) {
        /* a mail loop: no envelope, so the queue stores nothing */
        msg_warn("%s", strbuf_str(&why));
        inject_reap(inj);
        strbuf_puts(&text, "554 5.4.6 Too many hops");
        goto refused;
    }
    /* a write error means the queue went away: it says why on fd 3 */
    if (r == 0)
        send_envelope(s, inj);
    close(inj->envelope_fd);
    inj->envelope_fd = -1;
    struct record_reader reader;
    struct strbuf record = STRBUF_INIT;
    record_reader_init(&reader, inj->status_fd);
    int got = record_read(&reader, &record, 4096);
    int wstatus = inject_reap(inj);
    int code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    const char *value = got == 1 && record.len ? record.s + 1 : "";
    int type = got == 1 && record.len ? record.s[0] : 0;
    if (type == 'K' && code == 0 && *value) {
        struct strbuf printable = STRBUF_INIT;
        log_printable(&printable, value, 64);
        /* the queue logged "ID: client=..." for us (log_client, log_pid),
         * before qmgr could log "from=" (doc/logging.md) */
        reply(s, "250 2.0.0 Ok: queued as %s", strbuf_str(&printable));
        strbuf_free(&printable);
        accepted = 1;
    } else if (type == 'Z' && code != 0) {
        status_reply(value, 451, &text);
    } else if (type == 'D' && code != 0) {
        status_reply(value, 550, &text);
    } else if (code == 11 || code == 31 || code == 91) {
        strbuf_puts(&text, "554 5.3.0 Error: message rejected by the queue");
    } else {
        if (code != 0 || type != 'K')
            msg_warn("injection chain failed (%s %d)%s", WIFEXITED(wstatus) ? "exit" : "signal",
                     WIFEXITED(wstatus) ? code : WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0,
                     type ? "" : " without a status");
        strbuf_puts(&text, "451 4.3.0 Error: queue file write error");
    }
    strbuf_free(&record);
refused:
    if (!accepted) {
        struct strbuf printable = STRBUF_INIT, sender = STRBUF_INIT;
        log_printable(&printable, strbuf_str(&text), 500);
        msg_info("NOQUEUE: reject: END-OF-MESSAGE from %s: %s; from=<%s> proto=%s helo=<%s>",
                 s->client.namaddr, strbuf_str(&printable),
                 log_printable(&sender, strbuf_str(&s->tx.sender), 0), s->protocol,
                 strbuf_str(&s->helo));
        reply(s, "%s", strbuf_str(&printable));
        strbuf_free(&printable);
        strbuf_free(&sender);
    }
    strbuf_free(&text);
    strbuf_free(&why);
    return accepted;
}
