/* log_ident_test.c - a line's program name stays whole while another
 * thread changes syslog_name (lib/util/log.c): the lookup service's
 * database threads log while its main thread reloads main.cf on SIGHUP.
 * Run by t/87-log-ident.t with a temporary directory for maillog_file. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "log.h"
#include "tap.h"

#define SWITCHES 20000

static atomic_int stop;
static atomic_long logged;

/* The database thread: logs until told to stop. */
static void *logger(void *arg)
{
    (void)arg;
    for (long i = 0; !atomic_load(&stop); i++) {
        msg_info("line %ld", i);
        atomic_store(&logged, i + 1);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: log_ident_test TEMPDIR\n");
        return 254;
    }
    char path[512];
    snprintf(path, sizeof path, "%s/maillog", argv[1]);
    static const char *const names[] = {"a", "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb",
                                        "postfix", "postfix-out"};
    log_open("logtest", 0);
    ok(log_configure(names[0], "mail", path) == 0, "maillog_file %s", path);
    pthread_t thread;
    ok(pthread_create(&thread, NULL, logger, NULL) == 0, "a thread logs");
    /* at least SWITCHES changes, and on until the thread has logged 2,000
     * lines among them (on a loaded machine it may barely run during the
     * first changes), for a minute at most */
    time_t end = time(NULL) + 60;
    for (long i = 0; i < SWITCHES || (atomic_load(&logged) < 2000 && time(NULL) < end); i++)
        (void)log_configure(names[i % 4], "mail", path);
    atomic_store(&stop, 1);
    pthread_join(thread, NULL);
    (void)log_configure(names[0], "mail", "");

    FILE *f = fopen(path, "r");
    char line[1024];
    long lines = 0, garbled = 0;
    while (f && fgets(line, sizeof line, f)) {
        /* "Mon DD HH:MM:SS host IDENT[PID]: line N" */
        char *ident = strchr(line + 16, ' ');
        char *bracket = ident ? strchr(ident + 1, '[') : NULL;
        if (!bracket) {
            garbled++;
            continue;
        }
        *bracket = '\0';
        ident++;
        lines++;
        int known = 0;
        for (int n = 0; n < 4; n++) {
            char want[128];
            snprintf(want, sizeof want, "%s/logtest", names[n]);
            known |= strcmp(ident, want) == 0;
        }
        if (!known && garbled++ < 5)
            diag("garbled program name", ident);
    }
    if (f)
        fclose(f);
    ok(lines > 1000, "the thread wrote %ld lines during %d changes of syslog_name", lines, SWITCHES);
    ok(garbled == 0, "every line carries one of the names whole (%ld did not)", garbled);
    return tap_done();
}
