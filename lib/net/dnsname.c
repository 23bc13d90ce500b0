/* dnsname.c - DNS names made from addresses, without a resolver, so the
 * static programs (smtpd's RBL checks) can link it: dns.c's libunbound
 * code stays out of them (doc/dns.md). */
#include <arpa/inet.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "dns.h"

int dns_reverse_name(const char *addr, char *out, size_t size)
{
    unsigned char bytes[16];
    size_t o = 0;
    int n;
    if (inet_pton(AF_INET, addr, bytes) == 1) {
        n = snprintf(out, size, "%u.%u.%u.%u.in-addr.arpa",
                     bytes[3], bytes[2], bytes[1], bytes[0]);
        return n < 0 || (size_t)n >= size ? -1 : 0;
    }
    if (inet_pton(AF_INET6, addr, bytes) != 1 || size < 73)
        return -1;
    static const char hex[] = "0123456789abcdef";
    for (int i = 15; i >= 0; i--) {
        out[o++] = hex[bytes[i] & 15];
        out[o++] = '.';
        out[o++] = hex[bytes[i] >> 4];
        out[o++] = '.';
    }
    strcpy(out + o, "ip6.arpa");
    return 0;
}

int dns_reverse_prefix(const char *addr, char *out, size_t size)
{
    char full[80];
    if (dns_reverse_name(addr, full, sizeof full) < 0)
        return -1;
    char *suffix = strstr(full, ".in-addr.arpa");
    if (!suffix)
        suffix = strstr(full, ".ip6.arpa");
    if (!suffix || (size_t)(suffix - full) >= size)
        return -1;
    *suffix = 0;
    strcpy(out, full);
    return 0;
}

int dns_labels_valid(const char *name)
{
    size_t label = 0;
    for (const char *p = name; *p; p++) {
        if (*p == '.') {
            if (!label)
                return 0;
            label = 0;
        } else if (isalnum((unsigned char)*p) || *p == '-' || *p == '_') {
            if (++label > 63)
                return 0;
        } else {
            return 0;
        }
    }
    return 1;
}
