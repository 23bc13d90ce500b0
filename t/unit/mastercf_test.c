/* mastercf_test.c - unit tests for lib/conf/mastercf.c (master.cf entries,
 * continuation lines, braces, errors).  Run by t/49-mastercf.t. */
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "mastercf.h"
#include "strbuf.h"
#include "tap.h"

static char tempdir[] = "/tmp/mastercf-test-XXXXXX";

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
    test_mastercf();
    char command[600];
    snprintf(command, sizeof command, "%s", tempdir);
    const char *names[] = {"master.cf", "bad.cf", "cont.cf"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        char path[700];
        snprintf(path, sizeof path, "%s/%s", tempdir, names[i]);
        unlink(path);
    }
    rmdir(command);
    return tap_done();
}
