/* clientlist_mastercf_test.c - unit tests for lib/clientlist.c (client address
 * lists: networks, negation, files, tables, errors) and lib/mastercf.c
 * (master.cf entries, continuation lines, braces, errors).  Run by
 * t/49-clientlist-mastercf.t. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "clientlist.h"
#include "mastercf.h"
#include "strbuf.h"
#include "tap.h"

static char tempdir[] = "/tmp/addr-mastercf-XXXXXX";

/* Write a file in the temporary directory; returns its path (static). */
static const char *write_file(const char *name, const char *text)
{
    static char path[512];
    snprintf(path, sizeof path, "%s/%s", tempdir, name);
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0) {
        perror(path);
        exit(254);
    }
    return path;
}

/* The match of one address against a list given as text. */
static int match(const char *list_text, const char *address)
{
    struct strbuf err = STRBUF_INIT;
    struct clientlist *list = clientlist_parse(list_text, "test", &err, NULL);
    if (!list) {
        diag("parse error", err.s);
        strbuf_free(&err);
        return -9;
    }
    int r = clientlist_match_text(list, address);
    clientlist_free(list);
    strbuf_free(&err);
    return r;
}

/* The error message of a list that must not parse ("" when it parses). */
static char *parse_error(const char *list_text)
{
    static char message[512];
    struct strbuf err = STRBUF_INIT;
    struct clientlist *list = clientlist_parse(list_text, "test", &err, NULL);
    snprintf(message, sizeof message, "%s", list ? "" : err.s);
    clientlist_free(list);
    strbuf_free(&err);
    return message;
}

static void test_clientlist(void)
{
    is_int(match("127.0.0.0/8", "127.0.0.1"), 1, "IPv4 network matches");
    is_int(match("127.0.0.0/8", "128.0.0.1"), 0, "IPv4 network does not match outside");
    is_int(match("192.0.2.7", "192.0.2.7"), 1, "IPv4 host");
    is_int(match("192.0.2.7", "192.0.2.8"), 0, "IPv4 host, other address");
    is_int(match("10.0.0.0/9, 192.0.2.0/25", "192.0.2.127"), 1, "second item, /25 boundary inside");
    is_int(match("192.0.2.0/25", "192.0.2.128"), 0, "/25 boundary outside");
    is_int(match("0.0.0.0/0", "203.0.113.9"), 1, "/0 matches every IPv4 address");
    is_int(match("[::1]/128", "::1"), 1, "bracketed IPv6 host");
    is_int(match("[2001:db8::]/32", "2001:db8:ffff::1"), 1, "bracketed IPv6 network");
    is_int(match("[2001:db8::]/32", "2001:db9::1"), 0, "IPv6 network, outside");
    is_int(match("::1", "::1"), 1, "bare IPv6 address");
    is_int(match("127.0.0.0/8", "::ffff:127.0.0.1"), 1, "IPv4-mapped IPv6 client matches as IPv4");
    is_int(match("127.0.0.0/8", "::1"), 0, "IPv4 network does not match IPv6");
    is_int(match("!127.0.0.1 127.0.0.0/8", "127.0.0.1"), 0, "negation: first match decides");
    is_int(match("!127.0.0.1 127.0.0.0/8", "127.0.0.2"), 1, "negation: other addresses go on");
    is_int(match("", "127.0.0.1"), 0, "empty list matches nothing");
    const char *file = write_file("nets", "# trusted\n192.0.2.0/24\n\n198.51.100.0/24 # comment\n");
    char text[600];
    snprintf(text, sizeof text, "10.0.0.0/8, %s", file);
    is_int(match(text, "198.51.100.3"), 1, "/file/name: items from a file");
    is_int(match(text, "203.0.113.3"), 0, "/file/name: not listed");
    const char *cidr = write_file("exempt.cidr", "192.0.2.0/24 OK\n");
    snprintf(text, sizeof text, "cidr:%s", cidr);
    is_int(match(text, "192.0.2.77"), 1, "type:table: a cidr table");
    is_int(match(text, "192.0.3.77"), 0, "type:table: not in the table");
    is_int(match("inline:{ 192.0.2.5=OK }", "192.0.2.5"), 1, "type:table: an inline table by address");
    is_int(match("127.0.0.0/8", "not-an-address"), 0, "text that is no address never matches");

    is_str(parse_error("10.1.2.3/8"), "test: non-null host address bits in \"10.1.2.3/8\"",
           "host bits set: Postfix's error");
    is_str(parse_error("10.0.0.0/33"), "test: bad network mask in \"10.0.0.0/33\"", "mask too long");
    is_str(parse_error("[::1"), "test: unbalanced [ in \"[::1\"", "unbalanced bracket");
    is_str(parse_error("300.1.2.3"), "test: bad address \"300.1.2.3\"", "bad IPv4 address");
    ok(parse_error("/nonexistent/list")[0] != '\0', "a file that cannot be read is an error");
    ok(parse_error("cidr:/nonexistent/table")[0] != '\0', "a table that cannot be opened is an error");

    struct strbuf err = STRBUF_INIT, warnings = STRBUF_INIT;
    struct clientlist *list = clientlist_parse("example.com, .example.net, 127.0.0.1", "test",
                                           &err, &warnings);
    ok(list != NULL, "host name patterns parse");
    is_str(warnings.s, "test: host name pattern \"example.com\" is not matched (client names are "
           "not looked up here)\ntest: host name pattern \".example.net\" is not matched (client "
           "names are not looked up here)\n", "and are reported as never matching");
    is_int(clientlist_match_text(list, "127.0.0.1"), 1, "the address items still match");
    clientlist_free(list);
    strbuf_free(&err);
    strbuf_free(&warnings);
}

static void test_mastercf(void)
{
    struct master_table table;
    struct strbuf err = STRBUF_INIT;
    const char *path = write_file("master.cf",
        "# service type  private unpriv  chroot  wakeup  maxproc command + args\n"
        "smtp      inet  n       -       n       -       -       smtpd\n"
        "127.0.0.1:2525 inet n   -       n       -       20      smtpd\n"
        "submission inet n       -       n       -       -       smtpd\n"
        "  -o smtpd_tls_security_level=may\n"
        "# a comment inside the entry\n"
        "\t-o smtpd_client_restrictions=permit_sasl_authenticated,reject\n"
        "  -o { smtpd_reject_footer = see the policy }\n"
        "maildrop  unix  -       n       n       -       -       pipe\n"
        "  flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient}\n");
    is_int(master_read(path, 0, &table, &err), 0, "master.cf parses");
    is_int((long)table.count, 4, "four services");
    if (table.count == 4) {
        is_str(table.service[0].service, "smtp", "service name");
        is_str(table.service[0].type, "inet", "type");
        is_str(table.service[0].command, "smtpd", "command");
        is_int(master_maxproc(&table.service[0], 100), 100, "maxproc - is the default");
        is_str(table.service[1].service, "127.0.0.1:2525", "host:port service");
        is_int(master_maxproc(&table.service[1], 100), 20, "maxproc 20");
        is_int((long)table.service[2].arg_count, 6, "continuation lines, a comment between them");
        is_str(table.service[2].args[3], "smtpd_client_restrictions=permit_sasl_authenticated,reject",
               "an argument from a tab-continued line");
        is_str(table.service[2].args[5], "smtpd_reject_footer = see the policy",
               "{ } groups an argument with spaces");
        is_int(table.service[2].line, 4, "the entry's line number");
        is_str(table.service[3].args[3], "-d", "pipe's argv words");
    }
    master_free(&table);

    strbuf_reset(&err);
    path = write_file("bad.cf", "smtp inet n - n - - smtpd\nbroken inet n -\n");
    is_int(master_read(path, 0, &table, &err), -1, "a short entry is an error");
    char want[600];
    snprintf(want, sizeof want, "%s, line 2: 4 fields, expected at least 8 (service type private "
             "unpriv chroot wakeup maxproc command)", path);
    is_str(err.s, want, "with file and line");
    strbuf_reset(&err);
    path = write_file("cont.cf", "  -o x=y\n");
    is_int(master_read(path, 0, &table, &err), -1, "a continuation line first is an error");
    strbuf_reset(&err);
    is_int(master_read("/nonexistent/master.cf", 1, &table, &err), 0,
           "a missing file may be an empty table");
    is_int((long)table.count, 0, "with no services");
    is_int(master_read("/nonexistent/master.cf", 0, &table, &err), -1,
           "or an error when it must exist");
    strbuf_free(&err);
}

int main(void)
{
    if (!mkdtemp(tempdir)) {
        perror("mkdtemp");
        return 254;
    }
    test_clientlist();
    test_mastercf();
    char command[600];
    snprintf(command, sizeof command, "%s", tempdir);
    const char *names[] = {"nets", "exempt.cidr", "master.cf", "bad.cf", "cont.cf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", tempdir, names[i]);
        unlink(path);
    }
    rmdir(command);
    return tap_done();
}
