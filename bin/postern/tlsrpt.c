/* tlsrpt.c - `postern tlsrpt`: send the TLS reports of RFC 8460.
 *
 *   postern tlsrpt [-c DIR] [-o NAME=VALUE] [-n]
 *
 * The smtp runner records each TLS attempt as a line of
 * data_directory/tlsrpt/DAY (bin/postern-smtp/tlsrpt.c, lib/mail/tlsrpt.h).
 * For each finished day (UTC) and each policy domain in it, this looks up
 * _smtp._tls.DOMAIN (exactly one TXT record starting "v=TLSRPTv1"),
 * builds the JSON report of section 4, gzips it, and sends it to each rua
 * URI: mailto: as a multipart/report message (section 5.3) through the
 * injection client, https: as a POST of application/tlsrpt+gzip (section
 * 5.4) with libcurl.  What was sent is noted in DAY.sent ("DOMAIN<tab>URI"
 * a line; "DOMAIN<tab>-" when the domain asks for no report), so a rerun
 * never sends it twice; a send that failed, or a TXT lookup that failed,
 * is tried at the next run.  When every domain of a day is done, DAY is
 * renamed DAY.done.  A day still not done after 7 days is given up
 * (logged).  -n prints the reports' JSON instead and changes nothing.
 *
 * Exit 0 when everything due was sent, 75 when something is left for the
 * next run, 2 on usage errors.
 */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <zlib.h>

#include "config.h"
#include "dns.h"
#include "envelope.h"
#include "fdio.h"
#include "injection_client.h"
#include "log.h"
#include "postern.h"
#include "strbuf.h"
#include "strlist.h"
#include "tlsrpt.h"
#include "xalloc.h"

enum { EXIT_USAGE = 2, EXIT_LATER = 75, GIVE_UP_DAYS = 7 };

/* The owner of data_directory/tlsrpt (mail_owner, whose runners record
 * there): what root's run creates is given to it, so that the daily run
 * as mail_owner can read it. */
static uid_t dir_uid;
static gid_t dir_gid;

/* One failure-details entry of a policy. */
struct failure {
    char result[32], sending_ip[64], mx_host[256], receiving_ip[64];
    long long count;
};

/* One policy of a domain's report. */
struct policy {
    char type[20];
    char string[2048];
    struct strlist mx;              /* the MX hosts seen, each once */
    long long ok, failed;
    struct failure *failures;
    size_t failure_count;
};

struct domain {
    char name[256];
    struct policy *policies;
    size_t policy_count;
};

struct day {
    char name[16];                  /* YYYY-MM-DD */
    time_t start;                   /* 00:00:00 UTC */
    struct domain *domains;
    size_t domain_count;
};

static int usage(void)
{
    fprintf(stderr, "usage: postern tlsrpt [-c DIR] [-o NAME=VALUE] [-n]\n");
    return EXIT_USAGE;
}

/* The day's start in UTC, from "YYYY-MM-DD"; -1 when it is not a date. */
static time_t day_start(const char *name)
{
    if (strlen(name) != 10 || name[4] != '-' || name[7] != '-')
        return -1;
    for (int i = 0; i < 10; i++)
        if (i != 4 && i != 7 && !isdigit((unsigned char)name[i]))
            return -1;
    struct tm tm = {0};
    tm.tm_year = atoi(name) - 1900;
    tm.tm_mon = atoi(name + 5) - 1;
    tm.tm_mday = atoi(name + 8);
    if (tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31)
        return -1;
    return timegm(&tm);
}

static struct domain *domain_of(struct day *d, const char *name)
{
    for (size_t i = 0; i < d->domain_count; i++)
        if (strcasecmp(d->domains[i].name, name) == 0)
            return &d->domains[i];
    d->domains = xreallocarray(d->domains, d->domain_count + 1, sizeof *d->domains);
    struct domain *dom = &d->domains[d->domain_count++];
    memset(dom, 0, sizeof *dom);
    snprintf(dom->name, sizeof dom->name, "%s", name);
    for (char *c = dom->name; *c; c++)
        *c = (char)tolower((unsigned char)*c);
    return dom;
}

/* Count one line into its domain's policy. */
static void count_line(struct day *d, const struct tlsrpt_line *r)
{
    struct domain *dom = domain_of(d, r->domain);
    struct policy *p = NULL;
    for (size_t i = 0; i < dom->policy_count && !p; i++)
        if (strcmp(dom->policies[i].type, r->policy_type) == 0
            && strcmp(dom->policies[i].string, r->policy_string) == 0)
            p = &dom->policies[i];
    if (!p) {
        dom->policies = xreallocarray(dom->policies, dom->policy_count + 1, sizeof *dom->policies);
        p = &dom->policies[dom->policy_count++];
        memset(p, 0, sizeof *p);
        snprintf(p->type, sizeof p->type, "%s", r->policy_type);
        snprintf(p->string, sizeof p->string, "%s", r->policy_string);
    }
    size_t k = 0;
    while (k < p->mx.count && strcasecmp(p->mx.item[k], r->mx_host) != 0)
        k++;
    if (k == p->mx.count)
        strlist_add(&p->mx, r->mx_host);
    if (strcmp(r->result, "success") == 0) {
        p->ok++;
        return;
    }
    p->failed++;
    for (size_t i = 0; i < p->failure_count; i++) {
        struct failure *f = &p->failures[i];
        if (strcmp(f->result, r->result) == 0 && strcmp(f->sending_ip, r->sending_ip) == 0
            && strcasecmp(f->mx_host, r->mx_host) == 0 && strcmp(f->receiving_ip, r->receiving_ip) == 0) {
            f->count++;
            return;
        }
    }
    p->failures = xreallocarray(p->failures, p->failure_count + 1, sizeof *p->failures);
    struct failure *f = &p->failures[p->failure_count++];
    memset(f, 0, sizeof *f);
    snprintf(f->result, sizeof f->result, "%s", r->result);
    snprintf(f->sending_ip, sizeof f->sending_ip, "%s", r->sending_ip);
    snprintf(f->mx_host, sizeof f->mx_host, "%s", r->mx_host);
    snprintf(f->receiving_ip, sizeof f->receiving_ip, "%s", r->receiving_ip);
    f->count = 1;
}

/* Read the day's file (under a shared lock: a runner may still append). */
static int read_day(const char *path, struct day *d)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        msg_warn("cannot open %s: %m", path);
        return -1;
    }
    if (flock(fd, LOCK_SH) != 0) {
        msg_warn("cannot lock %s: %m", path);
        close(fd);
        return -1;
    }
    FILE *f = fdopen(fd, "r");
    if (!f) {
        close(fd);
        return -1;
    }
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    long bad = 0;
    struct tlsrpt_line *r = xmalloc(sizeof *r);
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            n--;
        if (tlsrpt_line_parse(line, (size_t)n, r) == 0)
            count_line(d, r);
        else
            bad++;
    }
    if (bad)
        msg_warn("%s: %ld malformed lines skipped", path, bad);
    free(r);
    free(line);
    fclose(f);
    return 0;
}

static void json_string(struct strbuf *out, const char *s)
{
    strbuf_putc(out, '"');
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            strbuf_printf(out, "\\%c", *c);
        else if (*c < 0x20)
            strbuf_printf(out, "\\u%04x", *c);
        else
            strbuf_putc(out, (char)*c);
    }
    strbuf_putc(out, '"');
}

static void iso_time(char *out, size_t size, time_t t)
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The report of RFC 8460 section 4.4 for one domain of one day. */
static void build_json(const struct day *d, const struct domain *dom, const char *report_id,
                       struct strbuf *out)
{
    char start[32], end[32];
    iso_time(start, sizeof start, d->start);
    iso_time(end, sizeof end, d->start + 86399);
    strbuf_puts(out, "{\"organization-name\":");
    json_string(out, conf_str("smtp_tls_report_organization"));
    strbuf_printf(out, ",\"date-range\":{\"start-datetime\":\"%s\",\"end-datetime\":\"%s\"}", start, end);
    strbuf_puts(out, ",\"contact-info\":");
    json_string(out, conf_str("smtp_tls_report_contact"));
    strbuf_puts(out, ",\"report-id\":");
    json_string(out, report_id);
    strbuf_puts(out, ",\"policies\":[");
    for (size_t i = 0; i < dom->policy_count; i++) {
        const struct policy *p = &dom->policies[i];
        strbuf_puts(out, i ? ",{\"policy\":{\"policy-type\":" : "{\"policy\":{\"policy-type\":");
        json_string(out, p->type);
        if (*p->string) {
            strbuf_puts(out, ",\"policy-string\":[");
            const char *s = p->string;
            for (int first = 1;; first = 0) {
                const char *bar = strchr(s, '|');
                char piece[2048];
                snprintf(piece, sizeof piece, "%.*s", (int)(bar ? bar - s : (long)strlen(s)), s);
                if (!first)
                    strbuf_putc(out, ',');
                json_string(out, piece);
                if (!bar)
                    break;
                s = bar + 1;
            }
            strbuf_putc(out, ']');
        }
        strbuf_puts(out, ",\"policy-domain\":");
        json_string(out, dom->name);
        strbuf_puts(out, ",\"mx-host\":[");
        for (size_t k = 0; k < p->mx.count; k++) {
            if (k)
                strbuf_putc(out, ',');
            json_string(out, p->mx.item[k]);
        }
        strbuf_printf(out, "]},\"summary\":{\"total-successful-session-count\":%lld,"
                           "\"total-failure-session-count\":%lld}", p->ok, p->failed);
        if (p->failure_count) {
            strbuf_puts(out, ",\"failure-details\":[");
            for (size_t k = 0; k < p->failure_count; k++) {
                const struct failure *f = &p->failures[k];
                strbuf_puts(out, k ? ",{\"result-type\":" : "{\"result-type\":");
                json_string(out, f->result);
                if (*f->sending_ip) {
                    strbuf_puts(out, ",\"sending-mta-ip\":");
                    json_string(out, f->sending_ip);
                }
                strbuf_puts(out, ",\"receiving-mx-hostname\":");
                json_string(out, f->mx_host);
                strbuf_puts(out, ",\"receiving-ip\":");
                json_string(out, f->receiving_ip);
                strbuf_printf(out, ",\"failed-session-count\":%lld}", f->count);
            }
            strbuf_putc(out, ']');
        }
        strbuf_putc(out, '}');
    }
    strbuf_puts(out, "]}\n");
}

/* gzip (RFC 1952) of in into out; 0, or -1. */
static int gzip_bytes(const struct strbuf *in, struct strbuf *out)
{
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
        return -1;
    uLong bound = deflateBound(&z, (uLong)in->len);
    strbuf_reset(out);
    strbuf_grow(out, bound + 1);
    z.next_in = (Bytef *)(in->s ? in->s : "");
    z.avail_in = (uInt)in->len;
    z.next_out = (Bytef *)out->s;
    z.avail_out = (uInt)bound;
    int rc = deflate(&z, Z_FINISH);
    size_t n = bound - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END)
        return -1;
    strbuf_truncate(out, 0);
    out->len = n;
    return 0;
}

static void put_base64(struct strbuf *out, const struct strbuf *bytes)
{
    unsigned char line[80];
    for (size_t at = 0; at < bytes->len; at += 57) {
        size_t n = bytes->len - at < 57 ? bytes->len - at : 57;
        int k = EVP_EncodeBlock(line, (const unsigned char *)bytes->s + at, (int)n);
        strbuf_append(out, line, (size_t)k);
        strbuf_puts(out, "\n");
    }
}

/* The message of section 5.3 to one mailto: address, with bare LF line
 * ends as the queue holds a message (sendmail strips the CRs). */
static void build_message(const struct day *d, const struct domain *dom, const char *report_id,
                          const struct strbuf *gz, const char *to, struct strbuf *msg)
{
    const char *submitter = conf_str("mydomain");
    char date[64], boundary[64];
    time_t now = time(NULL);
    struct tm tm;
    gmtime_r(&now, &tm);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S +0000", &tm);
    unsigned char rnd[8];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0x5a, sizeof rnd);
    snprintf(boundary, sizeof boundary, "tlsrpt.%02x%02x%02x%02x%02x%02x%02x%02x/%s", rnd[0],
             rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7], d->name);
    strbuf_printf(msg, "From: %s\nDate: %s\nTo: %s\n", conf_str("smtp_tls_report_sender"),
                  date, to);
    strbuf_printf(msg, "Subject: Report Domain: %s\n Submitter: %s\n Report-ID: <%s>\n",
                  dom->name, submitter, report_id);
    strbuf_printf(msg, "Message-ID: <%s>\n", report_id);
    strbuf_printf(msg, "TLS-Report-Domain: %s\nTLS-Report-Submitter: %s\n", dom->name, submitter);
    strbuf_printf(msg, "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=\"tlsrpt\";\n"
                       "\tboundary=\"%s\"\n\n", boundary);
    strbuf_puts(msg, "This is a multipart message in MIME format.\n\n");
    strbuf_printf(msg, "--%s\nContent-Type: text/plain; charset=\"us-ascii\"\n"
                       "Content-Transfer-Encoding: 7bit\n\n"
                       "This is an aggregate TLS report from %s for %s, %s.\n\n",
                  boundary, submitter, dom->name, d->name);
    /* filename: submitter!policy-domain!begin!end.json.gz (section 5.3) */
    strbuf_printf(msg, "--%s\nContent-Type: application/tlsrpt+gzip\n"
                       "Content-Transfer-Encoding: base64\nContent-Disposition: attachment;\n"
                       "\tfilename=\"%s!%s!%lld!%lld.json.gz\"\n\n",
                  boundary, submitter, dom->name, (long long)d->start, (long long)d->start + 86399);
    put_base64(msg, gz);
    strbuf_printf(msg, "\n--%s--\n", boundary);
}

/* Hand the message to the queue through the injection client, as
 * sendmail does; 0 when it was queued. */
static int send_mail(const struct strbuf *msg, const char *rcpt)
{
    int fd = memfd_create("tlsrpt", MFD_CLOEXEC);
    if (fd < 0 || write_all(fd, msg->s, msg->len) != 0 || lseek(fd, 0, SEEK_SET) != 0) {
        msg_warn("cannot hold the report: %m");
        if (fd >= 0)
            close(fd);
        return -1;
    }
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT, attr = STRBUF_INIT;
    strbuf_printf(&path, "%s/postern-rewrite", conf_str("daemon_directory"));
    struct injection_options options = {.program = path.s, .message_fd = fd};
    struct injection_client inj;
    struct injection_verdict verdict = INJECTION_VERDICT_INIT;
    int rc = -1;
    if (injection_start(&inj, &options, &err) < 0) {
        msg_warn("cannot send the report to %s: %s", rcpt, strbuf_str(&err));
    } else {
        struct envelope env = ENVELOPE_INIT;
        env.sender = xstrdup(conf_str("smtp_tls_report_sender"));
        envelope_add(&env, 'T', rcpt);
        envelope_add(&env, 'A', "origin=local");
        strbuf_printf(&attr, "uid=%ld", (long)getuid());
        envelope_add(&env, 'A', attr.s);
        if (injection_finish(&inj, &env, &verdict) == OUTCOME_SENT) {
            msg_info("report for %s queued as %s", rcpt, strbuf_str(&verdict.text));
            rc = 0;
        } else {
            msg_warn("cannot send the report to %s: %s%s", rcpt, strbuf_str(&verdict.text),
                     verdict.from_stage ? "" : strbuf_str(&verdict.detail));
        }
        envelope_free(&env);
    }
    injection_verdict_free(&verdict);
    strbuf_free(&path);
    strbuf_free(&err);
    strbuf_free(&attr);
    close(fd);
    return rc;
}

/* POST the gzipped report to an https: URI (section 5.4); 0 on a 2xx. */
static int send_https(const char *uri, const struct strbuf *gz)
{
    CURL *curl = curl_easy_init();
    if (!curl)
        return -1;
    struct curl_slist *headers = curl_slist_append(NULL, "Content-Type: application/tlsrpt+gzip");
    char errbuf[CURL_ERROR_SIZE] = "";
    curl_easy_setopt(curl, CURLOPT_URL, uri);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "https");
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, gz->s);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)gz->len);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 60L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(curl, CURLOPT_USERAGENT, "postern-tlsrpt/" POSTERN_VERSION);
    const char *ca = conf_str("smtp_tls_report_CAfile");
    if (*ca)
        curl_easy_setopt(curl, CURLOPT_CAINFO, ca);
    CURLcode rc = curl_easy_perform(curl);
    long status = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    int ok = rc == CURLE_OK && status >= 200 && status < 300;
    if (rc != CURLE_OK)
        msg_warn("cannot post the report to %s: %s", uri, *errbuf ? errbuf : curl_easy_strerror(rc));
    else if (!ok)
        msg_warn("cannot post the report to %s: HTTP status %ld", uri, status);
    else
        msg_info("report posted to %s (HTTP status %ld)", uri, status);
    curl_slist_free_all(headers);
    curl_easy_cleanup(curl);
    return ok ? 0 : -1;
}

/* DAY.sent: "DOMAIN<tab>URI" lines of what was done. */
static int already_sent(const struct strlist *sent, const char *domain, const char *uri)
{
    char key[2600];
    snprintf(key, sizeof key, "%s\t%s", domain, uri);
    for (size_t i = 0; i < sent->count; i++)
        if (strcmp(sent->item[i], key) == 0)
            return 1;
    return 0;
}

static void note_sent(const char *path, struct strlist *sent, const char *domain, const char *uri)
{
    char key[2600];
    int n = snprintf(key, sizeof key, "%s\t%s\n", domain, uri);
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd >= 0 && geteuid() == 0 && fchown(fd, dir_uid, dir_gid) != 0)
        msg_warn("cannot give %s to uid %ld: %m", path, (long)dir_uid);
    if (fd < 0 || write_all(fd, key, (size_t)n) != 0 || fsync(fd) != 0)
        msg_warn("cannot note in %s that the report went to %s: %m", path, uri);
    if (fd >= 0)
        close(fd);
    key[n - 1] = '\0';
    strlist_add(sent, key);
}

static void read_sent(const char *path, struct strlist *sent)
{
    FILE *f = fopen(path, "re");
    if (!f)
        return;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    while ((n = getline(&line, &cap, f)) > 0) {
        if (line[n - 1] == '\n')
            line[n - 1] = '\0';
        strlist_add(sent, line);
    }
    free(line);
    fclose(f);
}

/* The domain's rua URIs: 1 found, 0 the domain has no (single) TLSRPT
 * record, -1 the lookup failed (try at the next run). */
static int find_rua(const char *domain, struct strlist *rua)
{
    char name[300];
    snprintf(name, sizeof name, "_smtp._tls.%s", domain);
    struct dns_answer ans;
    dns_lookup(name, DNS_T_TXT, &ans);
    int rc = 0;
    if (ans.status == DNS_RETRY) {
        msg_warn("TXT lookup of %s: %s", name, ans.why ? ans.why : "temporary failure");
        rc = -1;
    } else if (ans.status == DNS_FOUND) {
        /* section 3: records not starting "v=TLSRPTv1" are discarded; not
         * exactly one left means no TLSRPT */
        size_t count = 0, at = 0;
        for (size_t i = 0; i < ans.count; i++)
            if (strncmp(ans.records[i].text, "v=TLSRPTv1", 10) == 0)
                count++, at = i;
        if (count == 1 && tlsrpt_txt_parse(ans.records[at].text, rua) == 0)
            rc = 1;
        else if (count > 1)
            msg_info("%s: %zu TLSRPT records: none used", name, count);
    }
    dns_answer_free(&ans);
    return rc;
}

/* Report one domain of a day to each of its URIs; 0 when all is done. */
static int report_domain(const struct day *d, const struct domain *dom, const char *sent_path,
                         struct strlist *sent, int dry_run)
{
    if (!dry_run && already_sent(sent, dom->name, "-"))
        return 0;
    struct strlist rua = STRLIST_INIT;
    int found = dry_run ? 1 : find_rua(dom->name, &rua);
    if (found <= 0) {
        if (found == 0)
            note_sent(sent_path, sent, dom->name, "-");
        strlist_free(&rua);
        return found == 0 ? 0 : -1;
    }
    char report_id[400];
    unsigned char rnd[6];
    if (RAND_bytes(rnd, sizeof rnd) != 1)
        memset(rnd, 0, sizeof rnd);
    /* a dot-atom, as a Message-ID's left part must be */
    snprintf(report_id, sizeof report_id, "%s.%02x%02x%02x%02x%02x%02x.%s@%s", d->name,
             rnd[0], rnd[1], rnd[2], rnd[3], rnd[4], rnd[5], dom->name, conf_str("myhostname"));
    struct strbuf json = STRBUF_INIT, gz = STRBUF_INIT;
    build_json(d, dom, report_id, &json);
    int rc = 0;
    if (dry_run) {
        fputs(json.s, stdout);
    } else if (gzip_bytes(&json, &gz) != 0) {
        msg_warn("cannot compress the report for %s", dom->name);
        rc = -1;
    } else {
        int all = 1;
        for (size_t i = 0; i < rua.count; i++) {
            const char *uri = rua.item[i];
            if (already_sent(sent, dom->name, uri))
                continue;
            int ok;
            if (strncasecmp(uri, "mailto:", 7) == 0) {
                struct strbuf msg = STRBUF_INIT;
                build_message(d, dom, report_id, &gz, uri + 7, &msg);
                ok = send_mail(&msg, uri + 7) == 0;
                strbuf_free(&msg);
            } else {
                ok = send_https(uri, &gz) == 0;
            }
            if (ok)
                note_sent(sent_path, sent, dom->name, uri);
            else
                all = 0;
        }
        rc = all ? 0 : -1;
    }
    strbuf_free(&json);
    strbuf_free(&gz);
    strlist_free(&rua);
    return rc;
}

static void free_day(struct day *d)
{
    for (size_t i = 0; i < d->domain_count; i++) {
        struct domain *dom = &d->domains[i];
        for (size_t k = 0; k < dom->policy_count; k++) {
            strlist_free(&dom->policies[k].mx);
            free(dom->policies[k].failures);
        }
        free(dom->policies);
    }
    free(d->domains);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

int cmd_tlsrpt(int argc, char **argv)
{
    int opt, dry_run = 0;
    while ((opt = getopt(argc, argv, "c:o:vn")) != -1) {
        if (opt == 'n')
            dry_run = 1;
        else if (!config_common_option(opt, optarg))
            return usage();
    }
    if (optind != argc)
        return usage();
    config_load(0);
    char dir[1024];
    if (snprintf(dir, sizeof dir, "%s/tlsrpt", conf_str("data_directory")) >= (int)sizeof dir)
        return EXIT_USAGE;
    DIR *dh = opendir(dir);
    if (!dh) {
        if (errno == ENOENT)
            return 0;       /* nothing recorded yet */
        msg_warn("cannot read %s: %m", dir);
        return EXIT_LATER;
    }
    /* one run at a time: a second one would send the same reports */
    int lock = dirfd(dh);
    struct stat st;
    if (fstat(lock, &st) != 0 || flock(lock, LOCK_EX | LOCK_NB) != 0) {
        msg_warn("%s: %s", dir, errno == EWOULDBLOCK ? "another postern tlsrpt is running" : strerror(errno));
        closedir(dh);
        return EXIT_LATER;
    }
    dir_uid = st.st_uid;
    dir_gid = st.st_gid;
    struct strlist days = STRLIST_INIT;
    struct dirent *e;
    while ((e = readdir(dh)))
        if (day_start(e->d_name) >= 0)
            strlist_add(&days, e->d_name);
    if (days.count)
        qsort(days.item, days.count, sizeof *days.item, cmp_str);
    time_t now = time(NULL);
    time_t today = now - now % 86400;
    if (!dry_run && (dns_open(0) < 0 || curl_global_init(CURL_GLOBAL_DEFAULT) != 0)) {
        strlist_free(&days);
        closedir(dh);
        return EXIT_LATER;
    }
    int status = 0;
    for (size_t i = 0; i < days.count; i++) {
        struct day d = {.start = day_start(days.item[i])};
        snprintf(d.name, sizeof d.name, "%s", days.item[i]);
        if (d.start >= today)
            continue;       /* not finished: tomorrow */
        char path[1100], sent_path[1110], done_path[1110];
        snprintf(path, sizeof path, "%s/%s", dir, d.name);
        snprintf(sent_path, sizeof sent_path, "%s.sent", path);
        snprintf(done_path, sizeof done_path, "%s.done", path);
        if (read_day(path, &d) != 0) {
            status = EXIT_LATER;
            continue;
        }
        struct strlist sent = STRLIST_INIT;
        read_sent(sent_path, &sent);
        int all = 1;
        for (size_t k = 0; k < d.domain_count; k++)
            if (report_domain(&d, &d.domains[k], sent_path, &sent, dry_run) != 0)
                all = 0;
        if (!dry_run && !all && today - d.start > GIVE_UP_DAYS * 86400) {
            msg_warn("%s: reports not sent for %d days: given up", d.name, GIVE_UP_DAYS);
            all = 1;
        }
        if (!dry_run && all && rename(path, done_path) != 0)
            msg_warn("cannot rename %s: %m", path);
        if (!all)
            status = EXIT_LATER;
        strlist_free(&sent);
        free_day(&d);
    }
    strlist_free(&days);
    if (!dry_run)
        curl_global_cleanup();
    closedir(dh);       /* and the lock */
    return status;
}
