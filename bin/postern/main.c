/* postern - the administration command: `postern SUBCOMMAND [options]`.
 *
 *   conf   print and edit main.cf parameters (postconf)
 *   map    build, query and list lookup tables (postmap)
 *   alias  build and query aliases(5) tables (postalias)
 *   check  check the configuration and the tables it names (postfix check)
 *   init, start, stop, status, reload   a self-contained instance (instance.c)
 *   queue  list, flush, delete, hold, release, requeue, print queued mail
 *   dns    ask the DNS through postern's resolver (lib/net/dns)
 *   tlsrpt send the TLS reports of finished days (RFC 8460)
 *
 * Each subcommand is in its own file beside this one.
 */
#include <stdio.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "postern.h"

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
    const char *summary;
} subcommands[] = {
    {"conf", cmd_conf, "print or change main.cf parameters (postconf)"},
    {"map", cmd_map, "build, query or list a lookup table (postmap)"},
    {"alias", cmd_alias, "build or query an aliases table (postalias)"},
    {"check", cmd_check, "check main.cf and the tables it uses"},
    {"init", cmd_init, "create a self-contained instance in a directory"},
    {"start", cmd_start, "start the queue manager in the background"},
    {"stop", cmd_stop, "stop the queue manager"},
    {"status", cmd_status, "say whether it runs, and the queue counts"},
    {"reload", cmd_reload, "SMTP listeners: main.cf's limits and TLS certificates again"},
    {"queue", cmd_queue, "list or manage the mail queue (postqueue, postsuper, postcat)"},
    {"dns", cmd_dns, "look a name up as postern's programs do"},
    {"tlsrpt", cmd_tlsrpt, "send the TLS reports (RFC 8460) of finished days"},
};

static int usage(void)
{
    fprintf(stderr, "usage: postern SUBCOMMAND [options]\n");
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        fprintf(stderr, "  %-7s %s\n", subcommands[i].name, subcommands[i].summary);
    return 2;
}

int main(int argc, char **argv)
{
    if (argc < 2)
        return usage();
    /* a dynamically linked command: `postern map -q KEY unix:passwd.byname`
     * asks the name service itself, as postmap does */
    map_register_dynamic_types();
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++) {
        if (strcmp(argv[1], subcommands[i].name) == 0) {
            char program[32];
            snprintf(program, sizeof program, "postern-%s", subcommands[i].name);
            log_open(program, LOG_STDERR);
            return subcommands[i].run(argc - 1, argv + 1);
        }
    }
    fprintf(stderr, "postern: unknown subcommand \"%s\"\n", argv[1]);
    return usage();
}
