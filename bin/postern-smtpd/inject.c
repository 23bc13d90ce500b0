/* inject.c - one message down the injection chain (doc/injection.md):
 * daemon_directory/postern-rewrite with the message streamed into fd 0 as
 * it arrives (never held whole in memory), then the envelope on fd 1, and
 * the verdict read from fd 3.  The Received header is written first.
 *
 * The queue id is known only once postern-queue has stored the message, so
 * the Received header carries no "id" clause (Postfix writes its queue id
 * there); the id appears in the 250 reply and the log instead.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "log.h"
#include "smtpd.h"
#include "xalloc.h"

#define INJECT_BUFFER 65536

struct injection {
    pid_t pid;
    int message_fd, envelope_fd, status_fd;
    long long size;
    int broken;                 /* the chain stopped reading */
    struct strbuf buffer;
};

/* Put fd on target in the child (clearing close-on-exec). */
static void move_fd(int fd, int target)
{
    if (fd == target) {
        fcntl(fd, F_SETFD, 0);
        return;
    }
    if (dup2(fd, target) < 0)
        _exit(71);
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
    struct strbuf path = STRBUF_INIT;
    strbuf_printf(&path, "%s/postern-rewrite", conf_str("daemon_directory"));
    pid_t pid = fork();
    if (pid == 0) {
        move_fd(message[0], 0);
        move_fd(envelope[0], 1);
        move_fd(status[1], 3);
        if (!log_verbose()) {
            int null = open("/dev/null", O_WRONLY);
            if (null >= 0 && null != 2) {
                dup2(null, 2);
                close(null);
            }
        }
        signal(SIGPIPE, SIG_DFL);
        char *argv[] = {(char *)"postern-rewrite", NULL};
        execv(path.s, argv);
        _exit(71);
    }
    close(message[0]);
    close(envelope[0]);
    close(status[1]);
    if (pid < 0) {
        msg_warn_errno("fork");
        close(message[1]);
        close(envelope[1]);
        close(status[0]);
        strbuf_free(&path);
        goto fail;
    }
    strbuf_free(&path);
    struct injection *inj = xcalloc(1, sizeof *inj);
    inj->pid = pid;
    inj->message_fd = message[1];
    inj->envelope_fd = envelope[1];
    inj->status_fd = status[0];
    /* a local submission (-S) gets its Received line from the chain, as
     * every origin=local message does ("by HOST (postern, from userid N)") */
    if (!s->local_submission)
        received_header(s, &inj->buffer);
    return inj;
fail:
    reply(s, "451 4.3.0 Error: queue file write error");
    return NULL;
}

/* Send what is buffered to the chain; a chain that went away is noted,
 * and the rest of the message is read and dropped. */
static void inject_flush(struct injection *inj)
{
    if (!inj->broken && inj->buffer.len && write_all(inj->message_fd, inj->buffer.s, inj->buffer.len) != 0)
        inj->broken = 1;
    strbuf_reset(&inj->buffer);
}

void inject_write(struct injection *inj, const void *bytes, size_t n)
{
    inj->size += (long long)n;
    if (inj->broken)
        return;
    strbuf_append(&inj->buffer, bytes, n);
    if (inj->buffer.len >= INJECT_BUFFER)
        inject_flush(inj);
}

long long inject_size(const struct injection *inj)
{
    return inj->size;
}

/* Close everything and reap the chain; returns its wait status. */
static int inject_reap(struct injection *inj)
{
    if (inj->message_fd >= 0)
        close(inj->message_fd);
    if (inj->envelope_fd >= 0)
        close(inj->envelope_fd);
    if (inj->status_fd >= 0)
        close(inj->status_fd);
    int wstatus = 0;
    while (waitpid(inj->pid, &wstatus, 0) < 0 && errno == EINTR)
        ;
    strbuf_free(&inj->buffer);
    free(inj);
    return wstatus;
}

void inject_abort(struct injection *inj)
{
    /* the envelope never gets its end record: the chain stores nothing */
    inject_reap(inj);
}

/* The envelope records (doc/injection.md). */
static void write_envelope(struct session *s, struct strbuf *env)
{
    struct transaction *tx = &s->tx;
    record_put(env, 'F', strbuf_str(&tx->sender));
    strbuf_append(env, tx->recipients.s ? tx->recipients.s : "", tx->recipients.len);
    strbuf_append(env, tx->attributes.s ? tx->attributes.s : "", tx->attributes.len);
    record_putf(env, 'A', "origin=%s", s->local_submission ? "local" : "smtp");
    if (s->local_submission)
        record_putf(env, 'A', "uid=%ld", (long)getuid());
    const struct forwarded *f = &s->forwarded;
    const char *name = f->set && f->name[0] ? f->name : s->client.name;
    const char *address = f->set && f->address[0] ? f->address : s->client.address;
    const char *port = f->set && f->port[0] ? f->port : s->client.port;
    const char *helo = f->set && f->helo[0] ? f->helo : strbuf_str(&s->helo);
    record_putf(env, 'A', "client_name=%s", name);
    record_putf(env, 'A', "client_address=%s", address);
    if (*port)
        record_putf(env, 'A', "client_port=%s", port);
    if (*helo)
        record_putf(env, 'A', "helo_name=%s", helo);
    record_putf(env, 'A', "protocol=%s", f->set && f->protocol[0] ? f->protocol : s->protocol);
    record_putf(env, 'A', "log_client=%s[%s]", name, address);
    record_end(env);
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
    struct strbuf text = STRBUF_INIT;
    int accepted = 0;
    inject_flush(inj);
    close(inj->message_fd);
    inj->message_fd = -1;
    if (size_exceeded) {
        inject_reap(inj);
        strbuf_puts(&text, "552 5.3.4 Message size exceeds fixed limit");
        goto refused;
    }
    struct strbuf env = STRBUF_INIT;
    write_envelope(s, &env);
    if (write_all(inj->envelope_fd, env.s, env.len) != 0)
        inj->broken = 1;
    strbuf_free(&env);
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
        msg_info("%s: client=%s", strbuf_str(&printable), s->client.namaddr);
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
    return accepted;
}
