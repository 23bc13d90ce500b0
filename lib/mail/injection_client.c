/* injection_client.c - the one client of interface 2 (injection_client.h,
 * doc/injection.md): start the next stage on three pipes (or the caller's
 * message file), stream the message into it (through an in-process
 * rewrite stream when asked), hand on the envelope once the message is
 * complete, and turn the status record and exit code into a verdict. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "envelope.h"
#include "fdio.h"
#include "injection_client.h"
#include "log.h"
#include "xalloc.h"

#define STATUS_RECORD_MAX 4096

/* Close a descriptor we hold and forget it. */
static void close_fd(int *fd)
{
    if (*fd >= 0)
        close(*fd);
    *fd = -1;
}

int injection_start(struct injection_client *inj, const struct injection_options *options,
                    struct strbuf *err)
{
    int message[2] = {-1, -1}, envelope[2] = {-1, -1}, status[2] = {-1, -1};
    memset(inj, 0, sizeof *inj);
    inj->message_fd = inj->envelope_fd = inj->status_fd = inj->held_fd = -1;
    inj->sender = (struct strbuf)STRBUF_INIT;
    inj->why = (struct strbuf)STRBUF_INIT;
    const char *base = options->program ? strrchr(options->program, '/') : NULL;
    inj->program = options->program ? (base ? base + 1 : options->program) : "postern-queue";
    if ((options->message_fd < 0 && pipe2(message, O_CLOEXEC) < 0)
        || pipe2(envelope, O_CLOEXEC) < 0 || pipe2(status, O_CLOEXEC) < 0) {
        strbuf_printf(err, "cannot make a pipe: %s", strerror(errno));
        goto fail;
    }
    int stage_message = options->message_fd >= 0 ? options->message_fd : message[0];
    int started = options->program
        ? queue_stage_start_program(&inj->stage, options->program, stage_message,
                                    envelope[0], status[1])
        : queue_stage_start(&inj->stage, stage_message, envelope[0], status[1]);
    if (started < 0) {
        strbuf_printf(err, "cannot start %s: %s", inj->program, strerror(errno));
        goto fail;
    }
    close_fd(&message[0]);
    close_fd(&envelope[0]);
    close_fd(&status[1]);
    if (options->hold && options->message_fd < 0
        && (inj->held_fd = memfd_create("postern-held-message", MFD_CLOEXEC)) < 0)
        injection_write_failed(inj, errno);
    inj->message_fd = message[1];
    inj->envelope_fd = envelope[1];
    inj->status_fd = status[0];
    if (options->rewrite && inj->message_fd >= 0) {
        /* what rewrite needs before the message: the sender as the
         * rewritten envelope will carry it */
        inj->rewrite = options->rewrite;
        inj->info = options->info;
        const char *sender = options->info.sender ? options->info.sender : "";
        if (*sender)        /* a table that fails now fails again on the envelope */
            (void)rewrite_address_class(options->rewrite, REWRITE_CONTEXT_LOCAL,
                                        REWRITE_ENV_FROM, sender, &inj->sender);
        inj->info.sender = strbuf_str(&inj->sender);
        inj->actions = (struct rewrite_actions)REWRITE_ACTIONS_INIT;
        inj->info.actions = &inj->actions;
        inj->stream = rewrite_stream_begin(options->rewrite, &inj->info, inj->message_fd);
    }
    return 0;
fail:
    for (int i = 0; i < 2; i++) {
        close_fd(&message[i]);
        close_fd(&envelope[i]);
        close_fd(&status[i]);
    }
    return -1;
}

void injection_write_failed(struct injection_client *inj, int errnum)
{
    inj->cut_short = 1;
    if (errnum != EPIPE && !inj->write_errno)
        inj->write_errno = errnum;
}

int injection_held_fd(const struct injection_client *inj)
{
    return inj->held_fd;
}

int injection_write(struct injection_client *inj, const void *bytes, size_t n)
{
    inj->size += (long long)n;
    if (inj->cut_short)
        return -1;
    if (inj->held_fd >= 0) {
        if (write_all(inj->held_fd, bytes, n) < 0)
            injection_write_failed(inj, errno);
        return inj->cut_short ? -1 : 0;
    }
    return injection_release(inj, bytes, n);
}

int injection_release(struct injection_client *inj, const void *bytes, size_t n)
{
    if (inj->cut_short)
        return -1;
    if (inj->stream) {
        int r = rewrite_stream_feed(inj->stream, bytes, n);
        if (r == REWRITE_TOO_MANY_HOPS || r == REWRITE_DEFERRED || r == REWRITE_REJECTED)
            inj->cut_short = 1;         /* rewrite_stream_end says so again */
        else if (r != 0)
            injection_write_failed(inj, errno);
    } else if (write_all(inj->message_fd, bytes, n) < 0) {
        injection_write_failed(inj, errno);
    }
    return inj->cut_short ? -1 : 0;
}

/* Close what is left, wait for the stage; its wait status. */
static int reap(struct injection_client *inj)
{
    rewrite_stream_free(inj->stream);
    inj->stream = NULL;
    close_fd(&inj->held_fd);
    close_fd(&inj->message_fd);
    close_fd(&inj->envelope_fd);
    close_fd(&inj->status_fd);
    int wstatus = queue_stage_wait(&inj->stage);
    strbuf_free(&inj->sender);
    strbuf_free(&inj->why);
    rewrite_actions_free(&inj->actions);
    return wstatus;
}

void injection_prepare(void)
{
    (void)queue_stage_connect();
}

void injection_abort(struct injection_client *inj)
{
    reap(inj);
}

/* The verdict when the stage gave no usable record: from its exit. */
static void verdict_from_exit(struct injection_client *inj, int wstatus, int record_type,
                              struct injection_verdict *v)
{
    int code = v->exit_code;
    v->from_stage = 0;
    if (code > 0 && inject_exit_permanent(code)) {
        v->outcome = OUTCOME_BOUNCED;
        v->reply_code = 554;
        strbuf_set(&v->text, "5.3.0 Error: message rejected by the queue");
    } else {
        v->outcome = OUTCOME_DEFERRED;
        v->reply_code = 451;
        strbuf_set(&v->text, "4.3.0 Error: queue file write error");
    }
    strbuf_reset(&v->detail);
    if (code < 0)
        strbuf_printf(&v->detail, "%s killed by signal %d", inj->program,
                      WIFSIGNALED(wstatus) ? WTERMSIG(wstatus) : 0);
    else if (code > 0 || !inj->write_errno)
        strbuf_printf(&v->detail, "%s exited with status %d%s", inj->program, code,
                      inj->cut_short ? " before it read the whole message"
                      : record_type ? "" : " without a status");
    else
        strbuf_printf(&v->detail, "write to %s: %s", inj->program, strerror(inj->write_errno));
}

enum outcome injection_finish(struct injection_client *inj, struct envelope *env,
                              struct injection_verdict *v)
{
    int r = 0;
    if (inj->stream) {
        r = rewrite_stream_end(inj->stream, &inj->why);
        inj->stream = NULL;
    }
    close_fd(&inj->message_fd);
    strbuf_reset(&v->text);
    strbuf_reset(&v->detail);
    if (r != 0 && env && inj->rewrite)
        rewrite_actions_log_noqueue(&inj->actions, env);   /* no queue id: none is stored */
    if (r == REWRITE_TOO_MANY_HOPS) {
        /* a mail loop: no envelope, so the stage stores nothing */
        msg_warn("%s", strbuf_str(&inj->why));
        reap(inj);
        v->outcome = OUTCOME_BOUNCED;
        v->reply_code = 554;
        v->from_stage = 1;
        v->exit_code = INJECT_EXIT_REFUSED;
        strbuf_set(&v->text, "5.4.6 Too many hops");
        return v->outcome;
    }
    if (r == REWRITE_DEFERRED || r == REWRITE_REJECTED) {
        /* a table could not answer, or header_checks/body_checks said
         * REJECT: no envelope, so nothing is stored */
        strbuf_set(&v->text, r == REWRITE_DEFERRED ? REWRITE_EXPANSION_ERROR : strbuf_str(&inj->why));
        reap(inj);
        int temporary = v->text.s[0] == '4';
        v->outcome = temporary ? OUTCOME_DEFERRED : OUTCOME_BOUNCED;
        v->reply_code = temporary ? 451 : 550;
        v->from_stage = 1;
        v->exit_code = temporary ? INJECT_EXIT_REFUSED_FOR_NOW : INJECT_EXIT_REFUSED;
        return v->outcome;
    }
    /* a message that did not get through whole is never certified: the
     * stage says why on fd 3 */
    if (env && r == 0 && !inj->cut_short && inj->rewrite
        && rewrite_envelope(inj->rewrite, env, &inj->why) != 0) {
        /* deferred by rewrite (an alias loop, ...): no envelope, so the
         * stage stores nothing */
        strbuf_set(&v->text, strbuf_str(&inj->why));
        reap(inj);
        v->outcome = OUTCOME_DEFERRED;
        v->reply_code = 451;
        v->from_stage = 1;
        v->exit_code = INJECT_EXIT_REFUSED_FOR_NOW;
        return v->outcome;
    }
    if (env && r == 0 && !inj->cut_short && inj->rewrite)
        rewrite_actions_apply(inj->rewrite, &inj->actions, env);
    if (env && r == 0 && !inj->cut_short) {
        struct strbuf records = STRBUF_INIT;
        envelope_write(env, &records);
        if (write_all(inj->envelope_fd, records.s, records.len) < 0 && errno != EPIPE)
            injection_write_failed(inj, errno);
        strbuf_free(&records);
    }
    close_fd(&inj->envelope_fd);

    /* the first K, Z or D record decides; the stage may end without one */
    struct record_reader reader;
    struct strbuf record = STRBUF_INIT;
    int type = 0;
    record_reader_init(&reader, inj->status_fd);
    while (record_read(&reader, &record, STATUS_RECORD_MAX) == 1) {
        if (record.len && strchr("KZD", record.s[0])) {
            type = record.s[0];
            break;
        }
    }
    const char *value = type ? record.s + 1 : "";
    if (type == 'K' && *value && !inj->cut_short) {
        /* K comes after the fsync: the message is the queue's, and the
         * stage's exit adds nothing; the caller answers without waiting
         * for it (collected before the next message) */
        queue_stage_detach(&inj->stage);
        reap(inj);
        v->exit_code = 0;
        v->outcome = OUTCOME_SENT;
        v->reply_code = 250;
        v->from_stage = 1;
        strbuf_set(&v->text, value);
        strbuf_free(&record);
        return v->outcome;
    }
    int wstatus = reap(inj);
    v->exit_code = WIFEXITED(wstatus) ? WEXITSTATUS(wstatus) : -1;
    if ((type == 'Z' || type == 'D') && v->exit_code != 0) {
        v->outcome = type == 'Z' ? OUTCOME_DEFERRED : OUTCOME_BOUNCED;
        v->from_stage = 1;
        strbuf_set(&v->text, reply_split(value, type == 'Z' ? 451 : 550, &v->reply_code));
    } else {
        verdict_from_exit(inj, wstatus, type, v);
    }
    strbuf_free(&record);
    return v->outcome;
}

void injection_verdict_free(struct injection_verdict *v)
{
    strbuf_free(&v->text);
    strbuf_free(&v->detail);
}
