/* postern-bounce - delivery status notifications: non-delivery, delay and
 * success notices (RFC 3464), injected with postern-queue.
 *
 *   postern-bounce -R [-c DIR] [-o name=value]... [-v]
 *       request mode (doc/delivery.md "Notices"): the queue file on fd 0,
 *       the request on fd 3, one result record on fd 1.
 *   postern-bounce [-c DIR] [-o name=value]... [-v] [-p] -k KIND -f SENDER
 *       [-q QUEUEID] [-e ENVID] [-r FULL|HDRS] [-s 'X.Y.Z text'] [-m MTA]
 *       [-a ARRIVAL] [-8] RECIPIENT... < message
 *       shell mode: the same notices for a message on stdin; -p prints
 *       them instead of injecting them.
 *
 * Who gets what follows Postfix's bounce(8) and notify_classes; see
 * doc/postern-bounce.8.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "config.h"
#include "dsn.h"
#include "fdio.h"
#include "envelope.h"
#include "injection_client.h"
#include "log.h"
#include "rewrite.h"
#include "runner.h"
#include "strbuf.h"
#include "xalloc.h"


/* One recipient of the request. */
struct request_rcpt {
    char *address, *orcpt, *notify;
    char *status;           /* "5.1.1"; the text after it in text */
    char *text, *remote_mta, *diagnostic;
    int relayed;            /* success: the mail went on to a system without notices */
};

/* The request: what qmgr (or the command line) asks for. */
struct request {
    char *queue_id;
    char *sender;
    enum dsn_kind kind;
    int have_kind;
    long long arrival;
    char *envid;
    int ret_headers;
    int eight_bit, smtputf8;
    int requiretls;             /* REQUIRETLS (RFC 8689): notices inherit it */
    int content_fd;
    off_t content_offset, content_length;
    struct request_rcpt *rcpt;
    size_t rcpt_count;
};

/* One notice to send. */
struct notice {
    int postmaster_copy;
    const char *env_sender;     /* "" or the double-bounce address */
    const char *to;
    int ret_headers;
    int notify_filter;          /* DSN NOTIFY keyword that selects recipients; 0 = all */
    const char *log_label;      /* "sender non-delivery notification" */
};

static int print_only;          /* -p: write notices to stdout */

static _Noreturn void usage(void)
{
    fprintf(stderr, "usage: postern-bounce -R [-c DIR] [-o name=value]... [-v]\n"
            "       postern-bounce [-c DIR] [-o name=value]... [-v] [-p] -k failure|delay|success|verify\n"
            "           -f SENDER [-q QUEUEID] [-e ENVID] [-r FULL|HDRS] [-s 'X.Y.Z text']\n"
            "           [-m MTA] [-a ARRIVAL] [-8] RECIPIENT... < message\n");
    exit(2);
}

/* Parse a kind name; -1 when unknown. */
static int parse_kind(const char *s)
{
    if (strcmp(s, "failure") == 0)
        return DSN_FAILURE;
    if (strcmp(s, "delay") == 0)
        return DSN_DELAY;
    if (strcmp(s, "success") == 0)
        return DSN_SUCCESS;
    if (strcmp(s, "verify") == 0)
        return DSN_VERIFY;
    return -1;
}

/* Split "5.1.1 text" into the recipient's status and text. */
static void set_status(struct request_rcpt *rcpt, const char *value)
{
    free(rcpt->status);
    free(rcpt->text);
    size_t code = strcspn(value, " ");
    rcpt->status = xstrndup(value, code);
    value += code;
    while (*value == ' ')
        value++;
    rcpt->text = xstrdup(value);
}

/* Add a recipient to the request. */
static struct request_rcpt *add_rcpt(struct request *req, const char *address)
{
    req->rcpt = xreallocarray(req->rcpt, req->rcpt_count + 1, sizeof *req->rcpt);
    struct request_rcpt *rcpt = &req->rcpt[req->rcpt_count++];
    memset(rcpt, 0, sizeof *rcpt);
    rcpt->address = xstrdup(address);
    return rcpt;
}

/* Release what the request holds. */
static void request_free(struct request *req)
{
    for (size_t i = 0; i < req->rcpt_count; i++) {
        struct request_rcpt *r = &req->rcpt[i];
        free(r->address);
        free(r->orcpt);
        free(r->notify);
        free(r->status);
        free(r->text);
        free(r->remote_mta);
        free(r->diagnostic);
    }
    free(req->rcpt);
    free(req->queue_id);
    free(req->sender);
    free(req->envid);
    if (req->content_fd > 0)
        close(req->content_fd);
    memset(req, 0, sizeof *req);
}

/* Take a message attribute ("RET=HDRS") into the request. */
static void take_attr(struct request *req, const char *attr)
{
    if (strncmp(attr, "ENVID=", 6) == 0) {
        free(req->envid);
        req->envid = xstrdup(attr + 6);
    } else if (strncasecmp(attr, "RET=", 4) == 0) {
        req->ret_headers = strcasecmp(attr + 4, "HDRS") == 0;
    } else if (strncasecmp(attr, "BODY=", 5) == 0) {
        req->eight_bit = strcasecmp(attr + 5, "8BITMIME") == 0;
    } else if (strncasecmp(attr, "SMTPUTF8=", 9) == 0) {
        req->smtputf8 = strcasecmp(attr + 9, "no") != 0;
    } else if (strncasecmp(attr, "REQUIRETLS=", 11) == 0) {
        req->requiretls = strcasecmp(attr + 11, "no") != 0;
    } else if (strncmp(attr, "arrival=", 8) == 0) {
        req->arrival = atoll(attr + 8);
    }
}

/* Read the request on fd 3 (the queue file on fd 0) with the runners'
 * reader (lib/mail/runner.c), and take what a notice needs from it.  0, or
 * -1 with the reason in err. */
static int read_request(struct request *req, struct strbuf *err)
{
    struct runner_request rr;
    if (runner_request_read(3, 0, &rr, err) < 0) {
        if (rr.queue_id && !req->queue_id)
            req->queue_id = xstrdup(rr.queue_id);
        runner_request_free(&rr);
        return -1;
    }
    req->queue_id = xstrdup(rr.queue_id);
    req->sender = xstrdup(rr.sender);
    req->arrival = (long long)rr.arrival;
    req->content_fd = 0;
    req->content_offset = rr.msg_offset;
    req->content_length = rr.msg_length;
    for (size_t i = 0; i < rr.attrs.count; i++)
        take_attr(req, rr.attrs.item[i]);
    const char *kind = runner_record(&rr.records, 'X');
    if (kind && parse_kind(kind) < 0) {
        strbuf_printf(err, "unknown notice kind \"%.100s\"", kind);
    } else if (kind) {
        req->kind = (enum dsn_kind)parse_kind(kind);
        req->have_kind = 1;
    }
    for (size_t i = 0; i < rr.rcpt_count; i++) {
        const struct runner_recipient *from = &rr.rcpt[i];
        struct request_rcpt *rcpt = add_rcpt(req, from->address);
        const char *v;
        if ((v = runner_attr(&from->attrs, "ORCPT")))
            rcpt->orcpt = xstrdup(v);
        if ((v = runner_attr(&from->attrs, "NOTIFY")))
            rcpt->notify = xstrdup(v);
        if ((v = runner_record(&from->records, 'S')))
            set_status(rcpt, v);
        if ((v = runner_record(&from->records, 'Y')))
            rcpt->remote_mta = xstrdup(v);
        if ((v = runner_record(&from->records, 'C')))
            rcpt->diagnostic = xstrdup(v);
        if ((v = runner_record(&from->records, 'L')))
            rcpt->relayed = strcmp(v, "relayed") == 0;
    }
    runner_request_free(&rr);
    if (!err->len && !req->have_kind)
        strbuf_puts(err, "the request has no X record");
    return err->len ? -1 : 0;
}

/* 1 when the list (comma or space separated, any case) holds the word. */
static int list_has(const char *list, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = list; *p;) {
        p += strspn(p, ", \t");
        size_t len = strcspn(p, ", \t");
        if (len == n && strncasecmp(p, word, n) == 0)
            return 1;
        p += len;
    }
    return 0;
}

/* 1 when notify_classes names the class; a name Postfix does not know is
 * reported (Postfix refuses it), once per process. */
static int notify_class(const char *class)
{
    static const char known[] = "bounce 2bounce data delay policy protocol resource software";
    static int warned;
    struct strlist classes = STRLIST_INIT;
    int found = 0;
    conf_list("notify_classes", &classes);
    for (size_t i = 0; i < classes.count; i++) {
        if (strcasecmp(classes.item[i], class) == 0)
            found = 1;
        else if (!list_has(known, classes.item[i]) && !warned++)
            msg_warn("unknown notify_classes value \"%s\" ignored", classes.item[i]);
    }
    strlist_free(&classes);
    return found;
}

/* An address qualified with @$myorigin when it has no domain, as Postfix's
 * cleanup does for the notice recipients named in main.cf. */
static char *qualify(const char *address)
{
    struct strbuf out = STRBUF_INIT;
    strbuf_puts(&out, address);
    if (!strchr(address, '@'))
        strbuf_printf(&out, "@%s", conf_str("myorigin"));
    return strbuf_detach(&out);
}

/* The double-bounce address: double_bounce_sender@$myhostname. */
static const char *double_bounce_address(void)
{
    static char *address;
    if (!address) {
        struct strbuf out = STRBUF_INIT;
        const char *name = conf_str("double_bounce_sender");
        strbuf_puts(&out, name);
        if (!strchr(name, '@'))
            strbuf_printf(&out, "@%s", conf_str("myhostname"));
        address = strbuf_detach(&out);
    }
    return address;
}

/* Random hex text for the boundary and Message-Id. */
static void unique_salt(struct strbuf *out, const char *queue_id)
{
    unsigned char bytes[8];
    if (getrandom(bytes, sizeof bytes, 0) != (ssize_t)sizeof bytes) {
        unsigned long long t = (unsigned long long)time(NULL) ^ (unsigned long long)getpid() << 20;
        memcpy(bytes, &t, sizeof bytes);
    }
    strbuf_printf(out, "%s.", queue_id);
    for (size_t i = 0; i < sizeof bytes; i++)
        strbuf_printf(out, "%02X", bytes[i]);
}

/* Fill the report for one notice; the recipients array is the caller's. */
static size_t make_report(const struct request *req, const struct notice *n,
                          struct dsn_recipient *rcpts, struct dsn_report *r,
                          struct strbuf *salt)
{
    static const char *const keyword[] = {"FAILURE", "DELAY", "SUCCESS", "SUCCESS"};
    size_t count = 0;
    for (size_t i = 0; i < req->rcpt_count; i++) {
        const struct request_rcpt *q = &req->rcpt[i];
        /* a recipient without NOTIFY gets failure and delay notices (Postfix);
         * success notices go to every recipient qmgr names */
        if (n->notify_filter && q->notify && !list_has(q->notify, keyword[req->kind]))
            continue;
        struct dsn_recipient *d = &rcpts[count++];
        memset(d, 0, sizeof *d);
        d->address = q->address;
        d->orcpt = q->orcpt;
        d->status = q->status;
        d->text = q->text;
        d->remote_mta = q->remote_mta;
        d->diagnostic = q->diagnostic;
        if (req->kind == DSN_SUCCESS)
            d->action = q->remote_mta || q->relayed ? "relayed" : "delivered";
        else if (req->kind == DSN_VERIFY)    /* sendmail -bv: what would happen */
            d->action = q->status && q->status[0] == '2' ? "deliverable" : "undeliverable";
    }
    memset(r, 0, sizeof *r);
    r->kind = req->kind;
    r->postmaster_copy = n->postmaster_copy;
    r->queue_id = req->queue_id;
    r->myhostname = conf_str("myhostname");
    r->mail_name = conf_str("mail_name");
    r->to = n->to;
    r->sender = req->sender;
    r->arrival = req->arrival;
    r->envid = req->envid;
    /* RFC 8689 section 5: the notice of a REQUIRETLS message goes with
     * REQUIRETLS itself (inject) and returns only the header, so its
     * content is never sent where the sender did not allow it */
    r->ret_headers = n->ret_headers || req->requiretls;
    r->eight_bit = req->eight_bit;
    r->smtputf8 = req->smtputf8;
    r->size_limit = conf_size("bounce_size_limit");
    r->delay_warning = conf_time("delay_warning_time");
    r->queue_lifetime = conf_time("maximal_queue_lifetime");
    r->content_fd = req->content_fd;
    r->content_offset = req->content_offset;
    r->content_length = req->content_length;
    r->rcpt = rcpts;
    r->rcpt_count = count;
    r->now = time(NULL);
    strbuf_reset(salt);
    unique_salt(salt, req->queue_id);
    r->boundary_salt = salt->s;
    return count;
}

/* Rewrite's settings, read at the first notice. */
static struct rewrite_config *rewrite_settings(void)
{
    static struct rewrite_config cfg;
    static int loaded;
    if (!loaded) {
        rewrite_config_load(&cfg, 0);     /* internal mail: as Postfix's */
        loaded = 1;
    }
    return &cfg;
}

/* Inject one notice through the injection client, rewritten in-process
 * as Postfix's cleanup rewrites a bounce (address mapping; header_checks
 * and body_checks only when internal_mail_filter_classes says "bounce").
 * Returns 'K' with the new queue id in result, or 'Z'/'D' with "X.Y.Z
 * text" in result. */
static int inject(const struct dsn_report *r, const char *env_sender, int requiretls,
                  struct strbuf *result)
{
    struct injection_options options = {.program = NULL, .message_fd = -1,
                                         .rewrite = rewrite_settings()};
    options.info.sender = env_sender;
    options.info.internal = REWRITE_INTERNAL_BOUNCE;
    struct injection_client inj;
    struct injection_verdict verdict = INJECTION_VERDICT_INIT;
    struct strbuf err = STRBUF_INIT;
    strbuf_reset(result);
    /* the notice is written into a memory file first, then streamed
     * through rewrite */
    int notice = memfd_create("notice", MFD_CLOEXEC);
    if (notice < 0 || dsn_write(r, notice, &err) < 0) {
        if (notice < 0)
            strbuf_printf(&err, "memfd_create: %s", strerror(errno));
        strbuf_printf(result, "4.3.0 %s", err.s);
        if (notice >= 0)
            close(notice);
        strbuf_free(&err);
        return OUTCOME_DEFERRED;
    }
    if (injection_start(&inj, &options, &err) < 0) {
        strbuf_printf(result, "4.3.0 %s", err.s);
        strbuf_free(&err);
        close(notice);
        return OUTCOME_DEFERRED;
    }
    static char chunk[65536];
    ssize_t n;
    off_t at = 0;
    while ((n = pread_retry(notice, chunk, sizeof chunk, at)) > 0) {
        at += n;
        if (injection_write(&inj, chunk, (size_t)n) < 0)
            break;
    }
    close(notice);
    struct envelope env = ENVELOPE_INIT;
    env.sender = xstrdup(env_sender);
    envelope_add(&env, 'T', r->to);
    /* postern's own mail (doc/injection.md): no local content filter */
    envelope_add(&env, 'A', "internal=bounce");
    if (r->eight_bit)
        envelope_add(&env, 'A', "BODY=8BITMIME");
    if (r->smtputf8)
        envelope_add(&env, 'A', "SMTPUTF8=yes");
    if (requiretls)
        envelope_add(&env, 'A', "REQUIRETLS=yes");
    enum outcome outcome;
    if (n < 0) {
        injection_abort(&inj);
        strbuf_puts(result, "4.3.0 error reading the notice");
        outcome = OUTCOME_DEFERRED;
    } else {
        outcome = injection_finish(&inj, &env, &verdict);
        if (verdict.from_stage)
            strbuf_puts(result, strbuf_str(&verdict.text));
        else            /* the code of the verdict, what happened instead of its text */
            strbuf_printf(result, "%.5s %s", strbuf_str(&verdict.text), strbuf_str(&verdict.detail));
    }
    envelope_free(&env);
    injection_verdict_free(&verdict);
    strbuf_free(&err);
    return outcome;
}

/* Build and send (or print, -p) one notice.  Returns 'K' (sent, or nothing
 * to send: result empty), 'Z' or 'D' with the reason in result. */
static int send_notice(const struct request *req, const struct notice *n, struct strbuf *result)
{
    struct dsn_recipient *rcpts = xcalloc(req->rcpt_count, sizeof *rcpts);
    struct dsn_report report;
    struct strbuf salt = STRBUF_INIT;
    int outcome = 'K';
    strbuf_reset(result);
    if (make_report(req, n, rcpts, &report, &salt) == 0) {
        msg_debug("%s: no recipient asked for this notice", req->queue_id);
    } else if (print_only) {
        struct strbuf err = STRBUF_INIT;
        printf("=== notice from=<%s> to=<%s>\n", n->env_sender, n->to);
        fflush(stdout);
        if (dsn_write(&report, 1, &err) < 0)
            msg_fatal_temp("%s", err.s);
        strbuf_free(&err);
        strbuf_set(result, "printed");
    } else {
        outcome = inject(&report, n->env_sender, req->requiretls, result);
        if (outcome == 'K')
            msg_info("%s: %s: %s", req->queue_id, n->log_label, result->len ? result->s : "?");
    }
    free(rcpts);
    strbuf_free(&salt);
    return outcome;
}

/* Send what Postfix's bounce(8) would for the request; returns the outcome
 * of the notice the request is about, with the new id or reason in result. */
static int process(const struct request *req, struct strbuf *result)
{
    static const char *const pm_param[] = {
        "bounce_notice_recipient", "delay_notice_recipient", "2bounce_notice_recipient",
        "2bounce_notice_recipient"};
    static const char *const pm_class[] = {"bounce", "delay", NULL, NULL};
    static const char *const sender_label[] = {
        "sender non-delivery notification", "sender delay notification",
        "sender delivery status notification", "sender delivery status notification"};
    static const char *const pm_label[] = {
        "postmaster non-delivery notification", "postmaster delay notification",
        "postmaster delivery status notification",
        "postmaster delivery status notification"};
    const char *dbl = double_bounce_address();
    enum dsn_kind kind = req->kind;
    /* success notices and sendmail -bv reports: to the sender only, every
     * recipient qmgr names, the header returned */
    int report = kind == DSN_SUCCESS || kind == DSN_VERIFY;
    strbuf_reset(result);

    /* a notice about a notice of our own to postmaster: never a third one */
    if (strcasecmp(req->sender, dbl) == 0) {
        if (report)
            msg_info("%s: not sending trace/success notification for double-bounce message",
                     req->queue_id);
        else
            msg_warn("%s: undeliverable postmaster notification discarded", req->queue_id);
        return 'K';
    }

    /* a notice about a notice (null sender): once to postmaster, if asked */
    if (*req->sender == '\0') {
        int wanted = kind == DSN_FAILURE ? notify_class("bounce") || notify_class("2bounce")
                     : kind == DSN_DELAY ? notify_class("delay") : notify_class("2bounce");
        if (!wanted) {
            msg_info("%s: not sending %s notification for a message with the null sender"
                     " (notify_classes does not ask for it)", req->queue_id,
                     kind == DSN_FAILURE ? "non-delivery" : kind == DSN_DELAY ? "delay"
                                                                              : "success");
            return 'K';
        }
        char *to = qualify(conf_str(kind == DSN_DELAY ? "delay_notice_recipient"
                                                      : "2bounce_notice_recipient"));
        struct notice n = {
            .postmaster_copy = !report, .env_sender = dbl, .to = to,
            .ret_headers = report, .notify_filter = 0,
            .log_label = report ? sender_label[kind] : pm_label[kind],
        };
        int outcome = send_notice(req, &n, result);
        free(to);
        return outcome;
    }

    /* the notice to the sender, for the recipients whose NOTIFY asks for it */
    struct notice n = {
        .postmaster_copy = 0, .env_sender = "", .to = req->sender,
        .ret_headers = kind == DSN_FAILURE ? req->ret_headers : 1,
        .notify_filter = !report, .log_label = sender_label[kind],
    };
    int outcome = send_notice(req, &n, result);

    /* notify_classes bounce/delay: a copy with the header only to postmaster */
    if (outcome == 'K' && !report && notify_class(pm_class[kind])) {
        char *to = qualify(conf_str(pm_param[kind]));
        struct notice copy = {
            .postmaster_copy = 1, .env_sender = dbl, .to = to, .ret_headers = 1,
            .notify_filter = 0, .log_label = pm_label[kind],
        };
        struct strbuf copy_result = STRBUF_INIT;
        if (send_notice(req, &copy, &copy_result) != 'K')
            msg_warn("%s: postmaster notice failed while %s %s: %s", req->queue_id,
                     kind == DSN_FAILURE ? "bouncing to" : "warning", req->sender,
                     copy_result.s);
        strbuf_free(&copy_result);
        free(to);
    }
    return outcome;
}

/* Shell mode: the message on stdin as a seekable descriptor. */
static void stdin_content(struct request *req)
{
    struct stat st;
    off_t here = lseek(0, 0, SEEK_CUR);
    if (here >= 0 && fstat(0, &st) == 0 && S_ISREG(st.st_mode)) {
        req->content_fd = 0;
        req->content_offset = here;
        req->content_length = st.st_size > here ? st.st_size - here : 0;
        return;
    }
    int fd = memfd_create("postern-bounce", MFD_CLOEXEC);
    if (fd < 0)
        msg_fatal_temp_errno("memfd_create");
    char buf[65536];
    ssize_t got;
    off_t total = 0;
    while ((got = read(0, buf, sizeof buf)) != 0) {
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0)
            msg_fatal_temp_errno("read the message");
        if (write_all(fd, buf, (size_t)got) < 0)
            msg_fatal_temp_errno("write the message copy");
        total += got;
    }
    req->content_fd = fd;
    req->content_offset = 0;
    req->content_length = total;
}

int main(int argc, char **argv)
{
    struct request req = {.content_fd = -1, .content_length = -1};
    int request_mode = 0, opt;
    const char *status = NULL, *mta = NULL;
    log_open(argv[0], 0);
    signal(SIGPIPE, SIG_IGN);
    while ((opt = getopt(argc, argv, "c:o:vRpk:f:q:e:r:s:m:a:8")) != -1) {
        if (config_common_option(opt, optarg))
            continue;
        switch (opt) {
        case 'R': request_mode = 1; break;
        case 'p': print_only = 1; break;
        case 'k':
            if (parse_kind(optarg) < 0)
                usage();
            req.kind = (enum dsn_kind)parse_kind(optarg);
            req.have_kind = 1;
            break;
        case 'f': req.sender = xstrdup(optarg); break;
        case 'q': req.queue_id = xstrdup(optarg); break;
        case 'e': req.envid = xstrdup(optarg); break;
        case 'r': req.ret_headers = strcasecmp(optarg, "HDRS") == 0; break;
        case 's': status = optarg; break;
        case 'm': mta = optarg; break;
        case 'a': req.arrival = atoll(optarg); break;
        case '8': req.eight_bit = 1; break;
        default: usage();
        }
    }
    config_load(1);
    struct strbuf result = STRBUF_INIT;
    if (request_mode) {
        struct strbuf err = STRBUF_INIT, out = STRBUF_INIT;
        int outcome;
        if (optind != argc || print_only)
            usage();
        if (read_request(&req, &err) < 0) {
            msg_warn("%s: malformed notice request: %s", req.queue_id ? req.queue_id : "?", err.s);
            outcome = 'D';
            strbuf_printf(&result, "5.3.0 malformed notice request: %s", err.s);
        } else {
            outcome = process(&req, &result);
        }
        record_putf(&out, outcome, "%s", result.s ? result.s : "");
        if (write_all(1, out.s, out.len) < 0)
            msg_fatal_temp_errno("write the result");
        strbuf_free(&err);
        strbuf_free(&out);
        strbuf_free(&result);
        request_free(&req);
        return 0;
    }

    log_open(argv[0], LOG_STDERR);
    if (!req.have_kind || !req.sender || optind == argc)
        usage();
    if (!req.queue_id)
        req.queue_id = xstrdup("NOQUEUE");
    for (int i = optind; i < argc; i++) {
        struct request_rcpt *rcpt = add_rcpt(&req, argv[i]);
        if (status)
            set_status(rcpt, status);
        if (mta)
            rcpt->remote_mta = xstrdup(mta);
    }
    stdin_content(&req);
    int outcome = process(&req, &result);
    if (!print_only)
        printf("%c%s\n", outcome, result.s ? result.s : "");
    strbuf_free(&result);
    request_free(&req);
    return outcome == OUTCOME_SENT ? 0 : outcome == OUTCOME_DEFERRED ? EX_TEMPFAIL : 1;
}
