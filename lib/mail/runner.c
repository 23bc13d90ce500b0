/* runner.c - the runner side of the delivery protocol (see runner.h and
 * doc/delivery.md): command line, request records on fd 3 (one request
 * with -R; request after request with -S, each with its queue file passed
 * as SCM_RIGHTS), the message as fd + offset + length, results as records
 * or as shell-mode lines. */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "fdio.h"
#include "fdpass.h"
#include "log.h"
#include "mastercf.h"
#include "runner.h"
#include "strbuf.h"
#include "xalloc.h"

#define REQUEST_FD 3
#define SERVE_MAX_PENDING_FDS 8     /* descriptors received ahead of their request */

static struct record_reader request_reader;     /* -R */
static int serve_mode;                          /* -S: fd 3 is a socket to qmgr */
static volatile sig_atomic_t stop_requested;    /* -S: SIGTERM came */
static sigset_t serve_waiting_mask;             /* -S: the mask while idle (SIGTERM open) */
static int result_fd = 1;                       /* fd 1 (-R) or fd 3 (-S) */
static struct strbuf serve_in = STRBUF_INIT;    /* -S: bytes received, not yet parsed */
static size_t serve_pos;
static int serve_fds[SERVE_MAX_PENDING_FDS];    /* -S: queue files, oldest first */
static size_t serve_fd_count;
static const char *runner_program = "runner";
static struct timeval start_time;
static struct strbuf current_relay = STRBUF_INIT;  /* the last R record written */
static struct {                                     /* -S: runner_idle_watch() */
    int fd;
    long long deadline_ms;
    void (*fn)(void);
} idle_watch = {-1, 0, NULL};

/* Print the usage line and exit with EX_USAGE. */
static _Noreturn void runner_usage(void)
{
    fprintf(stderr,
            "usage: postern-%s -R|-S [-c DIR] [-o name=value]... [-v]\n"
            "       postern-%s [-c DIR] [-o name=value]... [-v] -f SENDER [-q QUEUEID] RECIPIENT... < message\n",
            runner_program, runner_program);
    exit(EX_USAGE);
}

/* Release what a request holds and clear it. */
static void request_clear(struct runner_request *request)
{
    free(request->queue_id);
    free(request->sender);
    free(request->nexthop);
    strlist_free(&request->attrs);
    strlist_free(&request->records);
    for (size_t i = 0; i < request->rcpt_count; i++) {
        free(request->rcpt[i].address);
        strlist_free(&request->rcpt[i].attrs);
        strlist_free(&request->rcpt[i].records);
    }
    free(request->rcpt);
    int mode = request->request_mode;
    int fd = request->msg_fd;
    memset(request, 0, sizeof *request);
    request->request_mode = mode;
    request->msg_fd = fd;
}

/* Append a recipient to the request. */
static struct runner_recipient *request_add_rcpt(struct runner_request *request,
                                                 const char *address)
{
    if (request->rcpt_count >= RUNNER_MAX_RECIPIENTS)
        msg_fatal_temp("request has more than %d recipients", RUNNER_MAX_RECIPIENTS);
    request->rcpt = xreallocarray(request->rcpt, request->rcpt_count + 1,
                                  sizeof *request->rcpt);
    struct runner_recipient *rcpt = &request->rcpt[request->rcpt_count++];
    memset(rcpt, 0, sizeof *rcpt);
    rcpt->address = xstrdup(address);
    return rcpt;
}

/* Parse "OFFSET,LENGTH" of an M record; 0 or -1. */
static int parse_msg_range(const char *value, off_t *offset, off_t *length)
{
    char *end;
    errno = 0;
    long long off = strtoll(value, &end, 10);
    if (errno || end == value || *end != ',' || off < 0)
        return -1;
    const char *len_text = end + 1;
    long long len = strtoll(len_text, &end, 10);
    if (errno || end == len_text || *end || len < 0)
        return -1;
    *offset = (off_t)off;
    *length = (off_t)len;
    return 0;
}

/* -S: receive more bytes (and queue files) from qmgr; 1, 0 at end of input,
 * -1 on error (errno). */
static int serve_fill(void)
{
    if (serve_pos > 0 && serve_pos == serve_in.len) {
        strbuf_reset(&serve_in);
        serve_pos = 0;
    } else if (serve_pos > 0) {
        /* keep only what is not parsed yet */
        memmove(serve_in.s, serve_in.s + serve_pos, serve_in.len - serve_pos);
        strbuf_truncate(&serve_in, serve_in.len - serve_pos);
        serve_pos = 0;
    }
    /* SIGTERM is blocked except while we wait here, so it ends the runner
     * between requests, never in the middle of a delivery */
    for (;;) {
        /* with an idle watch: its descriptor and its deadline too */
        struct pollfd fds_wait[2] = {{.fd = REQUEST_FD, .events = POLLIN},
                                     {.fd = idle_watch.fd, .events = POLLIN}};
        struct timespec wait, *timeout = NULL;
        if (idle_watch.fn && idle_watch.deadline_ms > 0) {
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long long left = idle_watch.deadline_ms - ((long long)now.tv_sec * 1000 + now.tv_nsec / 1000000);
            if (left < 0)
                left = 0;
            wait.tv_sec = left / 1000;
            wait.tv_nsec = left % 1000 * 1000000;
            timeout = &wait;
        }
        int n = ppoll(fds_wait, idle_watch.fn && idle_watch.fd >= 0 ? 2 : 1, timeout, &serve_waiting_mask);
        if (n < 0) {
            if (errno != EINTR)
                return -1;
            if (stop_requested && serve_in.len == serve_pos && serve_fd_count == 0)
                return 0;           /* as at EOF: no request in hand */
            continue;
        }
        if (idle_watch.fn && (n == 0 || (idle_watch.fd >= 0 && fds_wait[1].revents))) {
            void (*fn)(void) = idle_watch.fn;
            idle_watch.fn = NULL;
            fn();
        }
        if (fds_wait[0].revents)
            break;
    }
    char buf[16384];
    int fds[FDPASS_MAX_FDS];
    size_t fd_count;
    ssize_t n = fdpass_recv(REQUEST_FD, buf, sizeof buf, fds, &fd_count);
    for (size_t i = 0; i < fd_count; i++) {
        if (serve_fd_count >= SERVE_MAX_PENDING_FDS)
            msg_fatal_temp("more than %d queue files ahead of their requests",
                           SERVE_MAX_PENDING_FDS);
        serve_fds[serve_fd_count++] = fds[i];
    }
    if (n <= 0)
        return n < 0 ? -1 : 0;
    strbuf_append(&serve_in, buf, (size_t)n);
    return 1;
}

/* -S: the next request record, as record_read() answers. */
static int serve_record(struct strbuf *rec)
{
    for (;;) {
        size_t avail = serve_in.len - serve_pos;
        const char *start = avail ? serve_in.s + serve_pos : "";
        const char *nul = avail ? memchr(start, '\0', avail) : NULL;
        if (nul) {
            size_t len = (size_t)(nul - start);
            if (len > RUNNER_MAX_RECORD) {
                errno = EMSGSIZE;
                return -1;
            }
            strbuf_reset(rec);
            strbuf_append(rec, start, len);
            serve_pos += len + 1;
            return 1;
        }
        if (avail > RUNNER_MAX_RECORD) {
            errno = EMSGSIZE;
            return -1;
        }
        int r = serve_fill();
        if (r < 0)
            return -1;
        if (r == 0) {
            if (avail == 0)
                return 0;
            errno = EPROTO;
            return -1;
        }
    }
}

/* -S: the queue file that came with the request just read. */
static int serve_take_fd(void)
{
    if (serve_fd_count == 0)
        msg_fatal_temp("request on fd %d came without its queue file", REQUEST_FD);
    int fd = serve_fds[0];
    memmove(serve_fds, serve_fds + 1, --serve_fd_count * sizeof *serve_fds);
    return fd;
}

/* The next request record: from -S's buffer, else from the reader. */
static int next_record(struct record_reader *reader, struct strbuf *rec)
{
    return reader ? record_read(reader, rec, RUNNER_MAX_RECORD) : serve_record(rec);
}

/* Parse one request's records (to the empty record) into request: 1 when
 * read, 0 at end of input before it, -1 with the reason in err.  Records
 * of other kinds are kept for the program to judge: before the first T in
 * request->records, after a T in that recipient's records. */
static int parse_request(struct record_reader *reader, struct runner_request *request,
                         struct strbuf *err)
{
    struct strbuf rec = STRBUF_INIT;
    struct runner_recipient *last = NULL;
    int have_msg = 0, got_any = 0, r;
    request->arrival = time(NULL);
    for (;;) {
        r = next_record(reader, &rec);
        if (r < 0) {
            strbuf_printf(err, "read request on fd %d: %s", REQUEST_FD, strerror(errno));
            goto fail;
        }
        if (r == 0) {
            if (!got_any) {
                strbuf_free(&rec);
                return 0;
            }
            strbuf_printf(err, "request on fd %d ends without its empty record", REQUEST_FD);
            goto fail;
        }
        got_any = 1;
        if (rec.len == 0)
            break;
        if (memchr(rec.s, '\0', rec.len)) {
            strbuf_puts(err, "request record with a NUL byte");
            goto fail;
        }
        const char *value = rec.s + 1;
        switch (rec.s[0]) {
        case 'Q':
            free(request->queue_id);
            request->queue_id = xstrdup(value);
            break;
        case 'F':
            free(request->sender);
            request->sender = xstrdup(value);
            break;
        case 'H':
            free(request->nexthop);
            request->nexthop = xstrdup(value);
            break;
        case 'M':
            if (parse_msg_range(value, &request->msg_offset, &request->msg_length) != 0) {
                strbuf_printf(err, "malformed M record \"%.100s\"", value);
                goto fail;
            }
            have_msg = 1;
            break;
        case 'A':
            if (request->attrs.count >= RUNNER_MAX_ATTRS) {
                strbuf_printf(err, "request has more than %d A records", RUNNER_MAX_ATTRS);
                goto fail;
            }
            strlist_add(&request->attrs, value);
            if (strncasecmp(value, "arrival=", 8) == 0)
                request->arrival = (time_t)strtoll(value + 8, NULL, 10);
            break;
        case 'T':
            if (request->rcpt_count >= RUNNER_MAX_RECIPIENTS) {
                strbuf_printf(err, "request has more than %d recipients", RUNNER_MAX_RECIPIENTS);
                goto fail;
            }
            last = request_add_rcpt(request, value);
            break;
        case 'P':
            if (!last) {
                strbuf_puts(err, "P record before any T record");
                goto fail;
            }
            if (last->attrs.count >= RUNNER_MAX_ATTRS) {
                strbuf_printf(err, "recipient has more than %d P records", RUNNER_MAX_ATTRS);
                goto fail;
            }
            strlist_add(&last->attrs, value);
            break;
        default: {
            /* a record of a notice (X; S Y C after a T) or of a later
             * protocol version: not ours to judge */
            struct strlist *into = last ? &last->records : &request->records;
            if (into->count >= RUNNER_MAX_ATTRS) {
                strbuf_printf(err, "more than %d other records", RUNNER_MAX_ATTRS);
                goto fail;
            }
            strlist_add(into, rec.s);
            break;
        }
        }
    }
    strbuf_free(&rec);
    if (!have_msg)
        strbuf_puts(err, "request without an M record");
    else if (request->rcpt_count == 0)
        strbuf_puts(err, "request without recipients");
    if (err->len)
        return -1;
    if (!request->queue_id)
        request->queue_id = xstrdup("");
    if (!request->sender)
        request->sender = xstrdup("");
    if (!request->nexthop)
        request->nexthop = xstrdup("");
    return 1;
fail:
    strbuf_free(&rec);
    return -1;
}

/* The message range must lie inside the (regular) queue file. */
static int check_message(const struct runner_request *request, struct strbuf *err)
{
    struct stat st;
    if (fstat(request->msg_fd, &st) != 0) {
        strbuf_printf(err, "fstat message file (fd %d): %s", request->msg_fd, strerror(errno));
        return -1;
    }
    if (!S_ISREG(st.st_mode) || request->msg_offset > st.st_size
        || request->msg_length > st.st_size - request->msg_offset) {
        strbuf_printf(err, "message range %lld,%lld is not inside the queue file (%lld bytes)",
                      (long long)request->msg_offset, (long long)request->msg_length,
                      (long long)st.st_size);
        return -1;
    }
    return 0;
}

/* Read one request from fd 3; 1 when read, 0 at end of input before it.
 * A malformed request is fatal (temporary): qmgr defers its recipients. */
static int read_request(struct runner_request *request)
{
    struct strbuf err = STRBUF_INIT;
    int r = parse_request(serve_mode ? NULL : &request_reader, request, &err);
    if (r > 0 && serve_mode)
        request->msg_fd = serve_take_fd();
    if (r > 0 && check_message(request, &err) != 0)
        r = -1;
    if (r < 0)
        msg_fatal_temp("%s", strbuf_str(&err));
    strbuf_free(&err);
    return r;
}

int runner_request_read(int fd, int msg_fd, struct runner_request *request, struct strbuf *err)
{
    struct record_reader *reader = xmalloc(sizeof *reader);
    memset(request, 0, sizeof *request);
    request->request_mode = 1;
    request->msg_fd = msg_fd;
    record_reader_init(reader, fd);
    int r = parse_request(reader, request, err);
    free(reader);
    if (r == 0)
        strbuf_printf(err, "empty request on fd %d", fd);
    if (r > 0 && check_message(request, err) != 0)
        r = -1;
    return r > 0 ? 0 : -1;
}

const char *runner_record(const struct strlist *records, int type)
{
    for (size_t i = records->count; i-- > 0;)
        if (records->item[i][0] == type)
            return records->item[i] + 1;
    return NULL;
}

void runner_request_free(struct runner_request *request)
{
    request_clear(request);
    if (request->msg_fd > 0)
        close(request->msg_fd);
    request->msg_fd = -1;
}

/* Shell mode: make stdin, from its current position, usable as fd +
 * offset + length; a pipe or terminal is copied to an unlinked temporary
 * file first. */
static void shell_message(struct runner_request *request)
{
    struct stat st;
    if (fstat(0, &st) != 0)
        msg_fatal_temp_errno("fstat stdin");
    off_t pos = S_ISREG(st.st_mode) ? lseek(0, 0, SEEK_CUR) : -1;
    if (pos >= 0) {
        request->msg_fd = 0;
        request->msg_offset = pos <= st.st_size ? pos : st.st_size;
        request->msg_length = st.st_size - request->msg_offset;
        return;
    }
    const char *tmpdir = getenv("TMPDIR");
    if (!tmpdir || !*tmpdir)
        tmpdir = "/tmp";
    int fd = open(tmpdir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
    if (fd < 0) {
        /* file systems without O_TMPFILE: create and unlink at once */
        struct strbuf path = STRBUF_INIT;
        strbuf_printf(&path, "%s/postern-%s.XXXXXX", tmpdir, runner_program);
        fd = mkostemp(path.s, O_CLOEXEC);
        if (fd < 0)
            msg_fatal_temp_errno("create a temporary file in %s", tmpdir);
        /* a copy left behind would keep the message on disk */
        if (unlink(path.s) != 0)
            msg_fatal_temp_errno("remove %s", path.s);
        strbuf_free(&path);
    }
    static char buf[65536];
    off_t total = 0;
    for (;;) {
        ssize_t n = read(0, buf, sizeof buf);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0)
            msg_fatal_temp_errno("read message from stdin");
        if (n == 0)
            break;
        if (write_all(fd, buf, (size_t)n) != 0)
            msg_fatal_temp_errno("write temporary copy of the message");
        total += n;
    }
    request->msg_fd = fd;
    request->msg_offset = 0;
    request->msg_length = total;
}

/* -S: SIGTERM, seen when waiting for a request. */
static void note_stop_request(int sig)
{
    (void)sig;
    stop_requested = 1;
}

void runner_start(int argc, char **argv, const char *program,
                  const struct runner_options *options,
                  struct runner_request *request)
{
    runner_program = program;
    gettimeofday(&start_time, NULL);
    memset(request, 0, sizeof *request);
    request->msg_fd = -1;

    struct strbuf optstring = STRBUF_INIT;
    strbuf_printf(&optstring, "+c:o:vRSf:q:%s",
                  options && options->letters ? options->letters : "");
    const char *sender = NULL, *queue_id = NULL;
    int opt;
    while ((opt = getopt(argc, argv, optstring.s)) != -1) {
        if (config_common_option(opt, optarg)
            || (opt != '?' && options && options->take && options->take(opt, optarg)))
            continue;
        switch (opt) {
        case 'R': request->request_mode = 1; break;
        case 'S': request->request_mode = 1; serve_mode = 1; break;
        case 'f': sender = optarg; break;
        case 'q': queue_id = optarg; break;
        default: runner_usage();
        }
    }
    strbuf_free(&optstring);
    /* a person at a shell sees warnings; qmgr reads only our records */
    struct strbuf name = STRBUF_INIT;
    strbuf_printf(&name, "postern-%s", program);
    log_open(name.s, request->request_mode ? 0 : LOG_STDERR);
    strbuf_free(&name);
    /* anything that ends a runner early is a deferral, never a bounce */
    log_exit_codes(EX_TEMPFAIL, EX_TEMPFAIL);
    if (request->request_mode ? (optind != argc || sender || queue_id)
                              : (optind == argc || !sender))
        runner_usage();

    config_load(0);

    if (serve_mode) {
        /* SIGTERM (a runner service that stops) ends the runner when it has
         * no request in hand: blocked but while waiting for one */
        sigset_t term;
        sigemptyset(&term);
        sigaddset(&term, SIGTERM);
        struct sigaction on_term = {.sa_handler = note_stop_request};
        sigemptyset(&on_term.sa_mask);
        if (sigprocmask(SIG_BLOCK, &term, &serve_waiting_mask) != 0
            || sigaction(SIGTERM, &on_term, NULL) != 0)
            msg_fatal_temp_errno("-S: SIGTERM handling");
        sigdelset(&serve_waiting_mask, SIGTERM);
        if (fcntl(REQUEST_FD, F_GETFD) < 0)
            msg_fatal_temp("-S: no request channel on fd %d", REQUEST_FD);
        result_fd = REQUEST_FD;
        /* a program a runner starts (a pipe command) must not hold the
         * channel: qmgr and the runner watch it for EOF */
        if (fcntl(REQUEST_FD, F_SETFD, FD_CLOEXEC) != 0)
            msg_fatal_temp_errno("-S: fcntl fd %d", REQUEST_FD);
        if (!read_request(request))
            exit(0);                /* qmgr closed the channel before any request */
        return;
    }
    if (request->request_mode) {
        if (fcntl(REQUEST_FD, F_GETFD) < 0)
            msg_fatal_temp("-R: no request on fd %d", REQUEST_FD);
        record_reader_init(&request_reader, REQUEST_FD);
        request->msg_fd = 0;
        if (!read_request(request))
            msg_fatal_temp("-R: empty request on fd %d", REQUEST_FD);
        return;
    }
    request->queue_id = xstrdup(queue_id ? queue_id : "");
    request->sender = xstrdup(sender);
    request->nexthop = xstrdup("");
    request->arrival = start_time.tv_sec;
    for (int i = optind; i < argc; i++)
        request_add_rcpt(request, argv[i]);
    shell_message(request);
}

/* Write one result as the mode wants it. */
static void emit_result(struct runner_request *request, size_t index,
                        const char *dsn, const char *text)
{
    struct runner_recipient *rcpt = &request->rcpt[index];
    if (request->request_mode) {
        struct strbuf out = STRBUF_INIT;
        record_putf(&out, rcpt->outcome, "%s %s", dsn, text);
        if (write_all(result_fd, out.s, out.len) != 0)
            msg_fatal_temp_errno("write result to qmgr");
        strbuf_free(&out);
        return;
    }
    struct timeval now;
    gettimeofday(&now, NULL);
    double delay = (double)(now.tv_sec - start_time.tv_sec)
                   + (double)(now.tv_usec - start_time.tv_usec) / 1e6;
    if (delay < 0)
        delay = 0;
    /* Postfix's delay form: at most two decimals, no trailing zeros */
    char delay_text[32];
    snprintf(delay_text, sizeof delay_text, "%.2f", delay);
    char *end = delay_text + strlen(delay_text);
    while (end[-1] == '0')
        *--end = '\0';
    if (end[-1] == '.')
        end[-1] = '\0';
    struct strbuf addr = STRBUF_INIT, why = STRBUF_INIT;
    log_printable(&addr, rcpt->address, 0);
    log_printable(&why, text, 0);
    msg_info("%s: to=<%s>, relay=%s, delay=%s, dsn=%s, status=%s (%s)",
             *request->queue_id ? request->queue_id : "NOQUEUE", addr.s,
             current_relay.len ? current_relay.s : runner_program, delay_text, dsn, outcome_word(rcpt->outcome), why.s);
    printf("%s: dsn=%s, status=%s (%s)\n", addr.s, dsn,
           outcome_word(rcpt->outcome), why.s);
    fflush(stdout);
    strbuf_free(&addr);
    strbuf_free(&why);
}

void runner_result(struct runner_request *request, size_t index,
                   const char *dsn, const char *fmt, ...)
{
    if (index >= request->rcpt_count)
        msg_fatal("runner_result: recipient %zu of %zu", index, request->rcpt_count);
    struct runner_recipient *rcpt = &request->rcpt[index];
    if (rcpt->outcome != OUTCOME_PENDING)
        msg_fatal("runner_result: second result for <%s>", rcpt->address);
    rcpt->outcome = outcome_of_dsn(dsn);
    switch (rcpt->outcome) {
    case OUTCOME_SENT: request->sent++; break;
    case OUTCOME_BOUNCED: request->bounced++; break;
    default: request->deferred++; break;
    }
    struct strbuf text = STRBUF_INIT;
    va_list ap;
    va_start(ap, fmt);
    strbuf_vprintf(&text, fmt, ap);
    va_end(ap);
    /* a record cannot hold NUL or a line break; keep the text one line */
    for (size_t i = 0; i < text.len; i++)
        if (text.s[i] == '\0' || text.s[i] == '\n' || text.s[i] == '\r')
            text.s[i] = ' ';
    emit_result(request, index, dsn, text.s);
    strbuf_free(&text);
}

int runner_handover(struct runner_request *request, size_t index, const char *address,
                    const char *route)
{
    if (index >= request->rcpt_count)
        msg_fatal("runner_handover: recipient %zu of %zu", index, request->rcpt_count);
    struct runner_recipient *rcpt = &request->rcpt[index];
    if (!request->request_mode)
        return -1;
    if (rcpt->outcome != OUTCOME_PENDING)
        msg_fatal("runner_handover: after the result for <%s>", rcpt->address);
    struct strbuf out = STRBUF_INIT;
    if (address)
        record_put(&out, 'U', address);
    record_put(&out, 'H', route);
    if (write_all(result_fd, out.s, out.len) != 0)
        msg_fatal_temp_errno("write hand-over to qmgr");
    strbuf_free(&out);
    return 0;
}

void runner_handover_end(struct runner_request *request, size_t index)
{
    if (index >= request->rcpt_count || !request->request_mode)
        msg_fatal("runner_handover_end: recipient %zu of %zu", index, request->rcpt_count);
    struct runner_recipient *rcpt = &request->rcpt[index];
    if (rcpt->outcome != OUTCOME_PENDING)
        msg_fatal("runner_handover_end: second result for <%s>", rcpt->address);
    rcpt->outcome = OUTCOME_SENT;   /* no longer ours: qmgr routes it anew */
    struct strbuf out = STRBUF_INIT;
    record_put(&out, 'E', "");
    if (write_all(result_fd, out.s, out.len) != 0)
        msg_fatal_temp_errno("write hand-over end to qmgr");
    strbuf_free(&out);
}

void runner_relay(struct runner_request *request, const char *relay)
{
    if (!relay)
        relay = "";
    if (strcmp(relay, strbuf_str(&current_relay)) == 0)
        return;
    strbuf_set(&current_relay, relay);
    if (!request->request_mode)
        return;
    struct strbuf out = STRBUF_INIT;
    /* "R" alone: back to the transport's name */
    record_put(&out, 'R', relay);
    if (write_all(result_fd, out.s, out.len) != 0)
        msg_fatal_temp_errno("write relay to qmgr");
    strbuf_free(&out);
}

/* An L record before the next result. */
static void next_action(struct runner_request *request, const char *action)
{
    if (!request->request_mode)
        return;
    struct strbuf out = STRBUF_INIT;
    record_put(&out, 'L', action);
    if (write_all(result_fd, out.s, out.len) != 0)
        msg_fatal_temp_errno("write action to qmgr");
    strbuf_free(&out);
}

void runner_next_relayed(struct runner_request *request)
{
    next_action(request, "relayed");
}

void runner_next_notified(struct runner_request *request)
{
    next_action(request, "notified");
}

void runner_site_failure(struct runner_request *request, const char *dsn, const char *text)
{
    if (!request->request_mode)
        return;
    struct strbuf out = STRBUF_INIT;
    record_putf(&out, 'S', "%s %s", dsn, text);
    if (out.len > 4096) {
        /* a record is at most 4096 bytes (doc/delivery.md) */
        out.s[4094] = '\0';
        out.len = 4095;
    }
    if (write_all(result_fd, out.s, out.len) != 0)
        msg_fatal_temp_errno("write site failure to qmgr");
    strbuf_free(&out);
}

void runner_defer_rest(struct runner_request *request, const char *dsn,
                       const char *text)
{
    for (size_t i = 0; i < request->rcpt_count; i++)
        if (request->rcpt[i].outcome == OUTCOME_PENDING)
            runner_result(request, i, dsn, "%s", text);
}

const char *runner_attr(const struct strlist *attrs, const char *name)
{
    size_t n = strlen(name);
    for (size_t i = 0; i < attrs->count; i++)
        if (strncasecmp(attrs->item[i], name, n) == 0 && attrs->item[i][n] == '=')
            return attrs->item[i] + n + 1;
    return NULL;
}

void runner_idle_watch(int fd, long long deadline_ms, void (*fn)(void))
{
    idle_watch.fd = fd;
    idle_watch.deadline_ms = deadline_ms;
    idle_watch.fn = fn;
}

int runner_next(struct runner_request *request)
{
    runner_defer_rest(request, "4.3.0", "delivery agent did not report a result");
    if (!serve_mode)
        return 0;               /* -R and shell mode: one request per process */
    /* -S: done with the queue file (qmgr may reuse it once the message is
     * done); the empty record ends this request's results; then the next */
    if (request->msg_fd >= 0 && close(request->msg_fd) != 0)
        msg_warn_errno("close queue file");
    request->msg_fd = -1;
    if (write_all(result_fd, "", 1) != 0)
        msg_fatal_temp_errno("write end of results to qmgr");
    strbuf_reset(&current_relay);   /* qmgr starts each request without one */
    request_clear(request);
    if (serve_pos != serve_in.len || serve_fd_count != 0)
        msg_fatal_temp("qmgr sent a request before the end of the previous results");
    return read_request(request);
}

int runner_finish(struct runner_request *request)
{
    runner_defer_rest(request, "4.3.0", "delivery agent did not report a result");
    int status = 0;
    if (!request->request_mode) {
        if (request->bounced)
            status = EX_NOUSER;
        else if (request->deferred)
            status = EX_TEMPFAIL;
    }
    if (request->msg_fd > 0)
        close(request->msg_fd);
    request->msg_fd = -1;
    request_clear(request);
    strbuf_free(&serve_in);
    return status;
}

int runner_program_path(struct strbuf *out, const char *daemon_directory, const char *transport,
                        long *maxproc, struct strlist *options)
{
    /* a master.cf service of this name: a pipe(8) one runs postern-pipe,
     * and its maxproc limits the transport's runners */
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    struct master_table table = {0};
    int pipe_service = 0;
    const char *client = NULL;      /* "smtp" or "lmtp": an SMTP client service */
    if (maxproc)
        *maxproc = -1;
    strbuf_printf(&path, "%s/master.cf", config_dir());
    if (master_read(strbuf_str(&path), 1, &table, &err) != 0) {
        msg_warn("%s", strbuf_str(&err));
    } else {
        for (size_t i = 0; i < table.count; i++) {
            const struct master_service *service = &table.service[i];
            if (strcmp(service->service, transport) != 0 || strcmp(service->type, "unix") != 0)
                continue;
            pipe_service = strcmp(service->command, "pipe") == 0;
            client = strcmp(service->command, "smtp") == 0 ? "smtp"
                     : strcmp(service->command, "lmtp") == 0 ? "lmtp" : NULL;
            if (client && options)
                master_service_overrides(service, options);
            long limit = master_maxproc(service, -1);
            if (maxproc && limit > 0)
                *maxproc = limit;
        }
    }
    master_free(&table);
    strbuf_free(&path);
    strbuf_free(&err);
    /* relay is Postfix's second smtp service */
    const char *program = pipe_service ? "pipe" : client ? client
                          : strcmp(transport, "relay") == 0 ? "smtp" : transport;
    strbuf_printf(out, "%s/postern-%s", daemon_directory, program);
    return pipe_service;
}

void runner_become(uid_t uid, gid_t gid)
{
    if (setgroups(1, &gid) != 0 || setresgid((gid_t)-1, gid, (gid_t)-1) != 0
        || setresuid((uid_t)-1, uid, (uid_t)-1) != 0)
        msg_fatal_temp_errno("switch to uid %lu gid %lu", (unsigned long)uid, (unsigned long)gid);
}

void runner_become_root(void)
{
    if (setresuid((uid_t)-1, 0, (uid_t)-1) != 0 || setresgid((gid_t)-1, 0, (gid_t)-1) != 0
        || setgroups(0, NULL) != 0)
        msg_fatal_temp_errno("switch back to root");
}
