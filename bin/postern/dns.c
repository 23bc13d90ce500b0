/* dns.c - `postern dns`: ask the DNS as postern's programs do (lib/net/dns).
 *
 *   postern dns [-t MS] TYPE NAME   records of TYPE (A AAAA MX PTR TXT)
 *   postern dns [-t MS] -x ADDRESS  the client name smtpd would find:
 *                                   PTR, then the forward confirmation
 *
 * Prints one record a line (MX: "PREF HOST"); exit 0 when found, 1 when
 * the name or its records do not exist (NXDOMAIN, NODATA), 75 when the
 * lookup failed temporarily (SERVFAIL, timeout) and 2 on usage errors.
 * Follows /etc/resolv.conf, or the servers in POSTERN_DNS_SERVER.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns.h"
#include "postern.h"

enum { EXIT_NOTFOUND = 1, EXIT_USAGE = 2, EXIT_RETRY = 75 };

static int usage(void)
{
    fprintf(stderr, "usage: postern dns [-t MS] TYPE NAME\n"
                    "       postern dns [-t MS] -x ADDRESS\n");
    return EXIT_USAGE;
}

static const char *status_word(enum dns_status status)
{
    return status == DNS_FOUND ? "found"
           : status == DNS_NOTFOUND ? "not found" : "temporary failure";
}

static int status_exit(enum dns_status status)
{
    return status == DNS_FOUND ? 0 : status == DNS_NOTFOUND ? EXIT_NOTFOUND
                                                            : EXIT_RETRY;
}

/* -x: the PTR name, its confirmation, and the name smtpd would use. */
static int client_name(const char *addr)
{
    struct dns_client_name cn;
    dns_client_name(addr, &cn);
    printf("reverse: %s (%s)\n", cn.reverse[0] ? cn.reverse : "unknown",
           status_word(cn.reverse_status));
    printf("forward: %s\n", status_word(cn.forward_status));
    printf("name: %s\n", cn.name[0] ? cn.name : "unknown");
    return status_exit(cn.forward_status);
}

int cmd_dns(int argc, char **argv)
{
    int timeout_ms = 10000, reverse = 0, opt;
    while ((opt = getopt(argc, argv, "t:x")) != -1) {
        switch (opt) {
        case 't':
            timeout_ms = atoi(optarg);
            if (timeout_ms <= 0)
                return usage();
            break;
        case 'x':
            reverse = 1;
            break;
        default:
            return usage();
        }
    }
    if (argc - optind != (reverse ? 1 : 2))
        return usage();
    if (dns_open(timeout_ms) < 0)
        return EXIT_RETRY;
    if (reverse)
        return client_name(argv[optind]);
    enum dns_type type = dns_type_by_name(argv[optind]);
    if (!type)
        return usage();
    const char *name = argv[optind + 1];
    struct dns_answer answer;
    dns_lookup(name, type, &answer);
    switch (answer.status) {
    case DNS_FOUND:
        for (size_t i = 0; i < answer.count; i++) {
            if (type == DNS_T_MX)
                printf("%u %s\n", answer.records[i].pref, answer.records[i].text);
            else
                printf("%s\n", answer.records[i].text);
        }
        break;
    case DNS_NOTFOUND:
        fprintf(stderr, "postern dns: %s: %s\n", name,
                answer.nxdomain ? "host not found (NXDOMAIN)"
                                : "no record of this type (NODATA)");
        break;
    case DNS_RETRY:
        fprintf(stderr, "postern dns: %s %s: temporary failure: %s\n",
                dns_type_name(type), name, answer.why ? answer.why : "?");
        break;
    }
    dns_answer_free(&answer);
    return status_exit(answer.status);
}
