/* injection_server.c - the queue's server side of interface 2: stores one
 * message in the queue.
 *
 * Interface 2 of DESIGN.md (doc/injection.md, postern-queue(8)): the message
 * on fd 0 (LF or CRLF line ends; stored with LF), the envelope on fd 1 as
 * NUL-terminated records, the status channel on fd 3 when open.  The queue
 * file is written as doc/queue-format.md says, and only after it and its
 * directory entry are on disk does `K`+id go to fd 3 and qmgr get a poke.
 *
 * It may run setgid to `setgid_group` so that local users can queue mail
 * (doc/privileges.md): then it trusts nothing from its caller but the
 * message and the envelope.  A caller that names a configuration the
 * administrator did not list (-c, -o, POSTERN_CONFIG_DIR) loses the group
 * first (main.c).  The queue service (service.c) runs this same code in
 * its workers, one message after another: inject_message() returns the
 * exit code instead of exiting, and leaves nothing of one message behind
 * for the next.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "config.h"
#include "envelope.h"
#include "fdio.h"
#include "log.h"
#include "queue.h"
#include "queuefile.h"
#include "strbuf.h"
#include "xalloc.h"

#define STATUS_FD           3
#define MAX_HEADER_LINE     4096            /* kept for the Message-ID scan */
#define INJECT_TIMEOUT      86400           /* as qmail-queue: a day */
#define SPACE_CHECK_STEP    (1LL << 20)     /* free space checks while writing */

static int status_open;                     /* fd 3 was open at start */
static int record_caller;                   /* the uid attribute is caller_uid */
static uid_t caller_uid;
static char *queue_dir;                     /* of the message being stored */
static struct queue_writer writer;
static volatile sig_atomic_t writer_open;
static jmp_buf refused;                     /* refuse() ends the message here */

/* The envelope as read from fd 1 (lib/mail/envelope.c, strict), and what
 * the queue takes from its records. */
struct queue_envelope {
    struct envelope env;
    long uid_index;                         /* the Auid= record, or -1 */
    long log_client_index;                  /* the Alog_client= record, or -1 */
    long sasl_method_index, sasl_username_index;    /* Asasl_*=, or -1 */
    long sasl_sender_index;     /* Asasl_sender= (MAIL FROM's AUTH=), or -1 */
    long log_pid;                           /* log_pid: the submitting smtpd, or 0 */
    int local;                              /* Aorigin=local */
    int discard;                            /* Adiscard=yes: store nothing */
};

/* Message attributes the queue acts on and does not store: rewrite's
 * log lines (logged with the queue id) and DISCARD. */
static int transient_attr(const char *rec)
{
    return strncmp(rec, "Alog_line=", 10) == 0 || strncmp(rec, "Adiscard=", 9) == 0;
}

/* What is known about the message while it streams in. */
struct message {
    long long size;                         /* bytes stored (LF line ends) */
    long long limit;                        /* message_size_limit; 0: none */
    long long minfree;                      /* queue_minfree */
    long long next_space_check;             /* size at which to look again */
    int too_big;
    int pending_cr;                         /* a chunk ended in CR */
    int last_byte;
    int stored;                             /* the envelope is written: content goes to the file */
    struct strbuf held;                     /* content read before the envelope */
    int in_header;                          /* still in the header part */
    struct strbuf line;                     /* the header line being scanned */
    struct strbuf message_id;
    int message_id_state;                   /* 0 looking, 1 in it, 2 done */
};

/* Write a status record to fd 3 when it is open. */
static void status(int type, const char *text)
{
    if (!status_open)
        return;
    struct strbuf rec = STRBUF_INIT;
    record_put(&rec, type, text);
    if (write_all(STATUS_FD, rec.s, rec.len) < 0)
        msg_warn_errno("write status to fd %d", STATUS_FD);
    strbuf_free(&rec);
}

/* Remove the temporary file and end the message with code (never 0),
 * after saying why on fd 3. */
static _Noreturn void refuse(int code, int status_type, const char *status_text)
{
    if (writer_open) {
        writer_open = 0;
        queue_writer_abort(&writer);
    }
    if (status_text)
        status(status_type, status_text);
    longjmp(refused, code);
}

/* A write into the queue failed: a full disk is a 4.3.1 refusal.  `what`
 * says what failed; with_reason: it already ends in strerror(error). */
static _Noreturn void write_failed(const char *what, int error, int with_reason)
{
    const char *reason = with_reason ? "" : strerror(error);
    const char *colon = with_reason ? "" : ": ";
    if (error == ENOSPC || error == EDQUOT) {
        msg_warn("%s%s%s: not enough space in the queue file system", what, colon, reason);
        refuse(INJECT_EXIT_WRITE_ERROR, 'Z', "452 4.3.1 Insufficient system storage");
    }
    msg_warn("%s%s%s", what, colon, reason);
    refuse(INJECT_EXIT_WRITE_ERROR, 'Z', "451 4.3.0 Error: queue file write error");
}

/* SIGALRM: the submitter stalled for a day. */
static void on_timeout(int sig)
{
    (void)sig;
    if (writer_open && writer.dir_fd >= 0 && writer.tmp_name[0])
        (void)unlinkat(writer.dir_fd, writer.tmp_name, 0);
    _exit(INJECT_EXIT_TIMEOUT);
}

/* Free bytes in the queue file system (refuses when it cannot tell). */
static unsigned long long free_space(int fd)
{
    struct statvfs fs;
    if (fstatvfs(fd, &fs) < 0) {
        msg_warn_errno("statvfs of the queue directory");
        refuse(INJECT_EXIT_WRITE_ERROR, 'Z', "451 4.3.0 Error: queue file write error");
    }
    return (unsigned long long)fs.f_bavail * fs.f_frsize;
}

/* Free space check before anything is written, by Postfix's rule
 * (queue_space_short, the same smtpd applies at MAIL FROM). */
static void check_space(long long minfree, long long limit)
{
    unsigned long long free_bytes = free_space(writer.dir_fd);
    if (queue_space_short(free_bytes, minfree, limit, 0)) {
        msg_warn("not enough free space in the queue file system: %llu bytes free, "
                 "queue_minfree=%lld, message_size_limit=%lld",
                 free_bytes, minfree, limit);
        refuse(INJECT_EXIT_WRITE_ERROR, 'Z', "452 4.3.1 Insufficient system storage");
    }
}

/* Scan one complete header line (without LF) for Message-ID. */
static void scan_header_line(struct message *m)
{
    const char *s = strbuf_str(&m->line);
    if (m->line.len == 0) {
        m->in_header = 0;
        if (m->message_id_state == 1)
            m->message_id_state = 2;
        return;
    }
    if (m->message_id_state == 1) {
        if (s[0] == ' ' || s[0] == '\t') {     /* a folded Message-ID */
            strbuf_puts(&m->message_id, s + strspn(s, " \t"));
            return;
        }
        m->message_id_state = 2;
    }
    if (m->message_id_state == 0 && strncasecmp(s, "Message-ID:", 11) == 0) {
        strbuf_set(&m->message_id, s + 11 + strspn(s + 11, " \t"));
        m->message_id_state = 1;
    }
}

/* Follow header lines through the content until the blank line. */
static void scan_header(struct message *m, const char *bytes, size_t n)
{
    while (n > 0 && m->in_header) {
        const char *lf = memchr(bytes, '\n', n);
        size_t take = lf ? (size_t)(lf - bytes) : n;
        if (m->line.len < MAX_HEADER_LINE)
            strbuf_append(&m->line, bytes, take < MAX_HEADER_LINE ? take : MAX_HEADER_LINE);
        if (!lf)
            return;
        scan_header_line(m);
        strbuf_reset(&m->line);
        bytes += take + 1;
        n -= take + 1;
    }
}

/* Take content bytes (already LF): count, scan, store or hold them. */
static void take_content(struct message *m, const char *bytes, size_t n)
{
    if (n == 0 || m->too_big)
        return;
    m->size += (long long)n;
    if (m->limit > 0 && m->size > m->limit) {
        m->too_big = 1;             /* the rest is read and dropped */
        strbuf_free(&m->held);
        return;
    }
    /* a message of unknown size may not eat into queue_minfree: look
     * again at every SPACE_CHECK_STEP bytes */
    if (m->minfree > 0 && m->size >= m->next_space_check) {
        m->next_space_check = m->size + SPACE_CHECK_STEP;
        unsigned long long free_bytes = free_space(writer.dir_fd);
        unsigned long long pending = m->held.len + (writer.buf ? writer.buf->len : 0);
        if (free_bytes <= (unsigned long long)m->minfree + pending) {
            msg_warn("queue file system below queue_minfree=%lld while writing "
                     "(%llu bytes free)", m->minfree, free_bytes);
            refuse(INJECT_EXIT_WRITE_ERROR, 'Z', "452 4.3.1 Insufficient system storage");
        }
    }
    m->last_byte = (unsigned char)bytes[n - 1];
    if (m->in_header)
        scan_header(m, bytes, n);
    if (!m->stored)
        strbuf_append(&m->held, bytes, n);
    else if (queue_writer_content(&writer, bytes, n) < 0)
        write_failed("write queue file", errno, 0);
}

/* CRLF to LF, in place across chunk boundaries; then take_content. */
static void take_input(struct message *m, char *bytes, size_t n)
{
    if (m->pending_cr) {
        m->pending_cr = 0;
        if (n > 0 && bytes[0] == '\n') {
            /* the CR of a CRLF split between reads: dropped */
        } else {
            take_content(m, "\r", 1);
        }
    }
    size_t out = 0;
    for (size_t i = 0; i < n;) {
        char *cr = memchr(bytes + i, '\r', n - i);
        size_t upto = cr ? (size_t)(cr - bytes) : n;
        if (out != i)
            memmove(bytes + out, bytes + i, upto - i);
        out += upto - i;
        i = upto;
        if (!cr)
            break;
        if (i + 1 == n) {           /* CR at the end: decide with the next read */
            m->pending_cr = 1;
            i++;
        } else if (bytes[i + 1] == '\n') {
            i++;                    /* drop the CR of CRLF */
        } else {
            bytes[out++] = '\r';    /* a bare CR stays */
            i++;
        }
    }
    take_content(m, bytes, out);
}

/* Read one chunk of the message; 0 at end of input. */
static int read_message_chunk(struct message *m)
{
    static char buf[64 * 1024];
    ssize_t r;
    do
        r = read(0, buf, sizeof buf);
    while (r < 0 && errno == EINTR);
    if (r < 0) {
        msg_warn_errno("read message");
        refuse(INJECT_EXIT_MESSAGE_READ, 0, NULL);
    }
    if (r > 0)
        take_input(m, buf, (size_t)r);
    return r > 0;
}

/* What only the trusted smtpd chain may claim: who the client was and
 * how it authenticated (these reach pipe commands as ${client_*} and
 * ${sasl_*}).  The log fields stay: an untrusted caller's client= line
 * is logged with its real uid (log_submitter). */
static int untrusted_claim(const char *rec)
{
    static const char *const claims[] = {
        "Aclient_", "Asasl_", "Ahelo_name=", "Aprotocol=", "Areverse_client_name=", NULL,
    };
    for (int i = 0; claims[i]; i++)
        if (strncmp(rec, claims[i], strlen(claims[i])) == 0)
            return 1;
    return 0;
}

/* Remove from an untrusted caller's envelope every FILTER (logged) and
 * every claim of untrusted_claim(), as Postfix's pickup ignores such
 * records from anyone but mail_owner. */
static void drop_untrusted_filter(struct envelope *env)
{
    size_t kept = 0;
    for (size_t i = 0; i < env->records.count; i++) {
        char *rec = env->records.item[i];
        if (strncmp(rec, "Afilter=", 8) == 0) {
            struct strbuf printable = STRBUF_INIT;
            msg_warn("FILTER %s from uid %lu ignored: only a trusted submitter may route mail",
                     log_printable(&printable, rec + 8, 128), (unsigned long)caller_uid);
            strbuf_free(&printable);
            free(rec);
            continue;
        }
        if (untrusted_claim(rec)) {
            free(rec);
            continue;
        }
        env->records.item[kept++] = rec;
    }
    env->records.count = kept;
}

/* content_filter for local submission, as Postfix's pickup(8) adds it
 * (its master.cf -o, else main.cf's; read once per process): to a message
 * of sendmail's (origin=local, or any from an untrusted caller) that is
 * not postern's own (internal=:
 * forwarding, as Postfix's local(8) re-injects without it) and carries
 * no FILTER of a trusted submitter's (header_checks of root's mail). */
static void add_local_content_filter(struct envelope *env)
{
    static struct strbuf content_filter = STRBUF_INIT;
    static int known;
    if (!known)
        receive_local_setting("content_filter", &content_filter);
    known = 1;
    if (!content_filter.len || envelope_attr(env, "internal") || envelope_attr(env, "filter"))
        return;
    struct strbuf rec = STRBUF_INIT;
    strbuf_printf(&rec, "filter=%s", strbuf_str(&content_filter));
    envelope_add(env, 'A', strbuf_str(&rec));
    strbuf_free(&rec);
}

/* May an untrusted caller mark address verification probes (verify=yes:
 * delivered nowhere, the outcome goes to the verify cache)?  Only
 * mail_owner, whom postern-verify runs as, as in Postfix only verify(8)
 * posts probes.  mail_owner's uid is the owner of the queue's active/
 * (doc/privileges.md), which a static program learns without NSS. */
static int caller_may_probe(void)
{
    if (!record_caller)
        return 1;
    struct strbuf path = STRBUF_INIT;
    struct stat st;
    strbuf_printf(&path, "%s/" QUEUE_ACTIVE, queue_dir);
    int ok = stat(path.s, &st) == 0 && st.st_uid == caller_uid;
    strbuf_free(&path);
    return ok;
}

/* Drop an untrusted caller's verify=yes (logged): a local user's "probe"
 * would teach the verify cache the answer for that user's sender.
 * verify=report (sendmail -bv) stays: it teaches the cache nothing, and
 * its report goes to the sender, as any user's mail may. */
static void drop_untrusted_probe(struct envelope *env)
{
    size_t kept = 0;
    for (size_t i = 0; i < env->records.count; i++) {
        char *rec = env->records.item[i];
        if (strncmp(rec, "Averify=", 8) == 0 && strcmp(rec + 8, "report") != 0) {
            msg_warn("address verification probe from uid %lu ignored: only the verify service "
                     "may submit probes", (unsigned long)caller_uid);
            free(rec);
            continue;
        }
        env->records.item[kept++] = rec;
    }
    env->records.count = kept;
}

/* Read the whole envelope from fd 1 with the queue's strict checks. */
static void read_envelope(struct queue_envelope *qe)
{
    struct strbuf err = STRBUF_INIT;
    int code = envelope_read(1, &qe->env, ENVELOPE_STRICT, &err);
    if (code) {
        /* no envelope at all: the submitter withdrew the message and has
         * said why itself (Postfix's cleanup is silent then too) */
        if (err.len)
            msg_warn("%s", strbuf_str(&err));
        strbuf_free(&err);
        refuse(code, 0, NULL);
    }
    strbuf_free(&err);
    /* FILTER routes the message through any transport of master.cf (a
     * pipe running as another user, say): only a trusted submitter (the
     * smtpd chain, root, mail_owner) may ask for it, as Postfix's pickup
     * drops such records from local users */
    if (record_caller)
        drop_untrusted_filter(&qe->env);
    if (!caller_may_probe())
        drop_untrusted_probe(&qe->env);
    const struct strlist *records = &qe->env.records;
    for (size_t i = 0; i < records->count; i++) {
        const char *rec = records->item[i];
        if (strncmp(rec, "Auid=", 5) == 0)
            qe->uid_index = (long)i;
        else if (strncmp(rec, "Alog_client=", 12) == 0)
            qe->log_client_index = (long)i;
        else if (strncmp(rec, "Asasl_method=", 13) == 0)
            qe->sasl_method_index = (long)i;
        else if (strncmp(rec, "Asasl_username=", 15) == 0)
            qe->sasl_username_index = (long)i;
        else if (strncmp(rec, "Asasl_sender=", 13) == 0)
            qe->sasl_sender_index = (long)i;
        else if (strncmp(rec, "Alog_pid=", 9) == 0)
            qe->log_pid = strtol(rec + 9, NULL, 10);
        else if (strcmp(rec, "Aorigin=local") == 0)
            qe->local = 1;
        else if (strcmp(rec, "Adiscard=yes") == 0)
            qe->discard = 1;
    }
    /* an untrusted caller's mail is a local submission whatever its
     * envelope says (it could leave origin=local out) */
    if (qe->local || record_caller)
        add_local_content_filter(&qe->env);
}

void inject_record_caller(uid_t uid)
{
    record_caller = 1;
    caller_uid = uid;
}

/* An untrusted caller: the uid attribute is its real uid, whatever the
 * envelope claims (as Postfix's postdrop records it). */
static void record_real_uid(struct queue_envelope *qe)
{
    char value[32];
    snprintf(value, sizeof value, "uid=%lu", (unsigned long)caller_uid);
    if (qe->uid_index < 0) {
        envelope_add(&qe->env, 'A', value);
        qe->uid_index = (long)qe->env.records.count - 1;
        return;
    }
    char **item = &qe->env.records.item[qe->uid_index];
    if (strcmp(*item + 1, value) != 0) {
        struct strbuf claimed = STRBUF_INIT;
        msg_warn("envelope %s replaced by the real %s",
                 log_printable(&claimed, *item + 1, 64), value);
        strbuf_free(&claimed);
        free(*item);
        *item = xmalloc(strlen(value) + 2);
        (*item)[0] = 'A';
        strcpy(*item + 1, value);
    }
}

/* The envelope is complete: write the records, then what content came. */
static void store_envelope(const struct envelope *env, struct message *m)
{
    queue_writer_sender(&writer, env->sender);
    for (size_t i = 0; i < env->records.count; i++)
        if (env->records.item[i][0] == 'A' && !transient_attr(env->records.item[i]))
            queue_writer_attr(&writer, env->records.item[i] + 1);
    for (size_t i = 0; i < env->records.count; i++) {
        const char *rec = env->records.item[i];
        if (rec[0] == 'T')
            queue_writer_recipient(&writer, rec + 1);
        else if (rec[0] == 'P')
            queue_writer_rcpt_attr(&writer, rec + 1);
    }
    queue_writer_begin_content(&writer);
    m->stored = 1;
    if (m->held.len && queue_writer_content(&writer, m->held.s, m->held.len) < 0)
        write_failed("write queue file", errno, 0);
    strbuf_free(&m->held);
}

/* Read the message and the envelope in whichever order the submitter
 * writes them: a qmail-style submitter writes the message first, others
 * the envelope first; the message is held in memory only until the
 * envelope is complete. */
static void read_input(struct queue_envelope *qe, struct message *m)
{
    int message_done = 0, envelope_done = 0;
    while (!message_done || !envelope_done) {
        int message_ready = 0, envelope_ready = 0;
        if (message_done) {
            envelope_ready = 1;
        } else if (envelope_done) {
            message_ready = 1;
        } else {
            struct pollfd fds[2] = {{.fd = 0, .events = POLLIN}, {.fd = 1, .events = POLLIN}};
            if (poll(fds, 2, -1) < 0) {
                if (errno == EINTR)
                    continue;
                msg_warn_errno("poll");
                refuse(INJECT_EXIT_MESSAGE_READ, 0, NULL);
            }
            message_ready = fds[0].revents != 0;
            envelope_ready = fds[1].revents != 0;
        }
        if (envelope_ready && !envelope_done) {
            read_envelope(qe);
            envelope_done = 1;
            if (record_caller)
                record_real_uid(qe);
            if (!m->too_big)
                store_envelope(&qe->env, m);
        }
        if (message_ready && !message_done && !read_message_chunk(m)) {
            message_done = 1;
            if (m->pending_cr) {
                m->pending_cr = 0;
                take_content(m, "\r", 1);
            }
            if (m->size > 0 && m->last_byte != '\n')
                take_content(m, "\n", 1);
            if (m->in_header && m->line.len)
                scan_header_line(m);
        }
    }
}

/* The line Postfix's smtpd or pickup logs for a new message. */
static void log_submitter(const struct queue_envelope *qe)
{
    struct strbuf printable = STRBUF_INIT, sender = STRBUF_INIT;
    if (qe->local && qe->uid_index >= 0) {
        const char *uid = qe->env.records.item[qe->uid_index] + 5;
        msg_info_as(NULL, "pickup", 0, "%s: uid=%s from=<%s>", writer.id,
                    log_printable(&printable, uid, 32), log_printable(&sender, qe->env.sender, 0));
        strbuf_reset(&printable);
    } else if (qe->log_client_index >= 0) {
        const char *client = qe->env.records.item[qe->log_client_index] + strlen("Alog_client=");
        /* an untrusted caller may claim anything: its real uid goes along
         * (after a comma, where Postfix's tools expect more fields) */
        char caller[40] = "";
        if (record_caller)
            snprintf(caller, sizeof caller, ", uid=%lu", (unsigned long)caller_uid);
        /* SMTP AUTH: Postfix's ", sasl_method=PLAIN, sasl_username=alice" */
        struct strbuf sasl = STRBUF_INIT;
        if (qe->sasl_method_index >= 0 && qe->sasl_username_index >= 0) {
            struct strbuf p1 = STRBUF_INIT, p2 = STRBUF_INIT;
            strbuf_printf(&sasl, ", sasl_method=%s, sasl_username=%s",
                          log_printable(&p1, qe->env.records.item[qe->sasl_method_index] + 13, 32),
                          log_printable(&p2, qe->env.records.item[qe->sasl_username_index] + 15, 255));
            strbuf_free(&p1);
            strbuf_free(&p2);
        }
        if (qe->sasl_sender_index >= 0) {
            struct strbuf p3 = STRBUF_INIT;
            strbuf_printf(&sasl, ", sasl_sender=%s",
                          log_printable(&p3, qe->env.records.item[qe->sasl_sender_index] + 13, 255));
            strbuf_free(&p3);
        }
        msg_info_as("smtpd", "smtpd", qe->log_pid, "%s: client=%s%s%s", writer.id,
                    log_printable(&printable, client, 300), strbuf_str(&sasl), caller);
        strbuf_free(&sasl);
        strbuf_reset(&printable);
    }
    strbuf_free(&printable);
    strbuf_free(&sender);
}

/* 1 when a log_line is one of the checks' lines ("hold: header ...",
 * "warning: body ...", milter_header_checks' "milter-header-hold:
 * header ..."): a submitter may put no other line under the queue's
 * name. */
static int check_line(const char *line)
{
    if (strncmp(line, "milter-header-", 14) == 0)
        line += 14;
    static const char *const actions[] = {
        "reject", "warning", "info", "hold", "discard", "redirect", "filter", "bcc",
        "replace", "prepend",
    };
    for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
        size_t n = strlen(actions[i]);
        if (strncmp(line, actions[i], n) == 0 && line[n] == ':' && line[n + 1] == ' '
            && (strncmp(line + n + 2, "header ", 7) == 0 || strncmp(line + n + 2, "body ", 5) == 0))
            return 1;
    }
    return 0;
}

/* Log what rewrite's header and body checks did, with the queue id, as
 * Postfix's cleanup does ("ID: hold: header Subject: ...": doc/injection.md). */
static void log_rewrite_lines(const struct queue_envelope *qe)
{
    struct strbuf printable = STRBUF_INIT;
    for (size_t i = 0; i < qe->env.records.count; i++) {
        const char *rec = qe->env.records.item[i];
        if (strncmp(rec, "Alog_line=", 10) != 0)
            continue;
        if (!check_line(rec + 10)) {
            strbuf_reset(&printable);
            msg_warn("%s: log_line attribute that is no check's line ignored: %s", writer.id,
                     log_printable(&printable, rec + 10, 200));
            continue;
        }
        strbuf_reset(&printable);
        /* an untrusted caller writes its own lines (sendmail runs the
         * checks as the user): they say whose they are, as its client=
         * line does */
        if (record_caller)
            msg_info("%s: %s, uid=%lu", writer.id, log_printable(&printable, rec + 10, 2000),
                     (unsigned long)caller_uid);
        else
            msg_info("%s: %s", writer.id, log_printable(&printable, rec + 10, 2000));
    }
    strbuf_free(&printable);
}

/* The message being stored (file scope: a refusal ends it from deeper
 * down, and what it holds is freed on either path). */
static struct message current;
static struct queue_envelope current_envelope;
static struct strbuf failure;               /* why the writer failed */

/* Free what the message held; the writer is closed already. */
static void forget_message(void)
{
    alarm(0);
    strbuf_free(&current.held);
    strbuf_free(&current.line);
    strbuf_free(&current.message_id);
    envelope_free(&current_envelope.env);
    strbuf_free(&failure);
    free(queue_dir);
    queue_dir = NULL;
    record_caller = 0;
}

/* Store the message: the configuration is loaded, the message on fd 0,
 * the envelope on fd 1, the status channel on fd 3 when open.  The
 * qmail-queue exit code. */
static int store_message(void)
{
    struct message *m = &current;
    struct queue_envelope *qe = &current_envelope;
    status_open = fcntl(STATUS_FD, F_GETFD) >= 0;
    queue_dir = xstrdup(conf_str("queue_directory"));
    *m = (struct message){.in_header = 1, .limit = conf_size("message_size_limit"),
                          .minfree = conf_size("queue_minfree"),
                          .next_space_check = SPACE_CHECK_STEP};
    *qe = (struct queue_envelope){.env = ENVELOPE_INIT, .uid_index = -1, .log_client_index = -1,
                                  .sasl_method_index = -1, .sasl_username_index = -1,
                                  .sasl_sender_index = -1};

    if (queue_writer_open(&writer, queue_dir, &failure) < 0)
        write_failed(strbuf_str(&failure), errno, 1);
    writer_open = 1;
    check_space(m->minfree, m->limit);
    signal(SIGALRM, on_timeout);
    alarm(INJECT_TIMEOUT);

    read_input(qe, m);
    if (m->too_big) {
        msg_info("reject: message size exceeds message_size_limit=%lld", m->limit);
        refuse(INJECT_EXIT_REFUSED, 'D', "552 5.3.4 Message size exceeds fixed maximum message size");
    }
    if (qe->discard) {
        /* DISCARD: accepted, logged with the id it would have had, never
         * stored (Postfix logs no message-id line for it) */
        log_submitter(qe);
        log_rewrite_lines(qe);
        status('K', writer.id);
        writer_open = 0;
        queue_writer_abort(&writer);
        return 0;
    }
    writer_open = 0;
    /* the one unit that makes the file the queue's: after it returns 0 the
     * message is on disk under its id (doc/queue-format.md, "Durability") */
    if (queue_writer_commit(&writer, &failure) < 0)
        write_failed(strbuf_str(&failure), errno, 1);
    alarm(0);

    /* The lines Postfix's smtpd or pickup, then cleanup, log for a new
     * message, written before qmgr can hear of it (log tools such as
     * pflogsumm count a message received only when these come before
     * qmgr's "from=" line). */
    struct strbuf printable = STRBUF_INIT;
    log_submitter(qe);
    log_rewrite_lines(qe);
    msg_info("%s: message-id=%s", writer.id,
             m->message_id.len ? log_printable(&printable, strbuf_str(&m->message_id), 0) : "<>");

    status('K', writer.id);
    queue_trigger(queue_dir, 'A');

    strbuf_free(&printable);
    return 0;
}

int inject_message(void)
{
    int code = setjmp(refused);
    if (code == 0)
        code = store_message();
    forget_message();
    return code;
}

void inject_run(void)
{
    exit(inject_message());
}
