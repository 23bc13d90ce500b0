/* params_derived.c - defaults Postfix computes from the machine:
 * myhostname (gethostname, made fully qualified), mydomain (myhostname
 * without its first label), mynetworks (the interfaces' addresses as
 * mynetworks_style says).
 */
#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "config.h"
#include "config_impl.h"
#include "log.h"
#include "strbuf.h"

#define DEF_MYDOMAIN "localdomain"

void derive_myhostname(struct strbuf *out)
{
    char host[256];
    if (gethostname(host, sizeof host) != 0 || !host[0]) {
        msg_warn_errno("gethostname");
        strcpy(host, "localhost");
    }
    host[sizeof host - 1] = '\0';
    strbuf_puts(out, host);
    if (!strchr(host, '.')) {
        /* Postfix appends $mydomain when main.cf sets it, else "localdomain" */
        strbuf_putc(out, '.');
        strbuf_puts(out, conf_is_set("mydomain") ? config_value_or("mydomain", DEF_MYDOMAIN)
                                                 : DEF_MYDOMAIN);
    }
}

void derive_mydomain(struct strbuf *out)
{
    const char *host = config_value_or("myhostname", "");
    const char *dot = strchr(host, '.');
    strbuf_puts(out, dot && dot[1] ? dot + 1 : DEF_MYDOMAIN);
}

/* Length of the prefix that a netmask gives (contiguous one bits). */
static int prefix_length(const unsigned char *mask, size_t bytes)
{
    int bits = 0;
    for (size_t i = 0; i < bytes; i++)
        for (int b = 7; b >= 0; b--)
            if (mask[i] & (1u << b))
                bits++;
    return bits;
}

/* Append "net/len" (IPv4) or "[net]/len" (IPv6) unless already present. */
static void add_network(struct strbuf *out, int family, unsigned char *addr, int len)
{
    size_t bytes = family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {        /* clear the host part */
        int keep = len - (int)i * 8;
        if (keep <= 0)
            addr[i] = 0;
        else if (keep < 8)
            addr[i] &= (unsigned char)(0xff << (8 - keep));
    }
    char text[INET6_ADDRSTRLEN], item[INET6_ADDRSTRLEN + 8];
    if (!inet_ntop(family, addr, text, sizeof text))
        return;
    snprintf(item, sizeof item, family == AF_INET ? "%s/%d" : "[%s]/%d", text, len);
    /* skip duplicates: compare whole items */
    for (const char *p = strbuf_str(out); (p = strstr(p, item)); p++)
        if ((p == out->s || p[-1] == ' ') && (p[strlen(item)] == ' ' || !p[strlen(item)]))
            return;
    if (out->len)
        strbuf_putc(out, ' ');
    strbuf_puts(out, item);
}

/* The network of one interface address for a style (host, subnet, class). */
static void add_interface(struct strbuf *out, const struct ifaddrs *ifa, const char *style)
{
    int family = ifa->ifa_addr->sa_family;
    unsigned char addr[16], mask[16];
    size_t bytes = family == AF_INET ? 4 : 16;
    if (family == AF_INET) {
        memcpy(addr, &((const struct sockaddr_in *)ifa->ifa_addr)->sin_addr, 4);
        memset(mask, 0xff, 4);
        if (ifa->ifa_netmask)
            memcpy(mask, &((const struct sockaddr_in *)ifa->ifa_netmask)->sin_addr, 4);
    } else {
        memcpy(addr, &((const struct sockaddr_in6 *)ifa->ifa_addr)->sin6_addr, 16);
        memset(mask, 0xff, 16);
        if (ifa->ifa_netmask)
            memcpy(mask, &((const struct sockaddr_in6 *)ifa->ifa_netmask)->sin6_addr, 16);
    }
    int len;
    if (strcmp(style, "host") == 0)
        len = (int)bytes * 8;
    else if (strcmp(style, "class") == 0 && family == AF_INET)
        len = addr[0] < 128 ? 8 : addr[0] < 192 ? 16 : addr[0] < 224 ? 24 : 32;
    else
        len = prefix_length(mask, bytes);      /* subnet; class for IPv6 */
    add_network(out, family, addr, len);
}

void derive_mynetworks(struct strbuf *out)
{
    const char *style = config_value_or("mynetworks_style", "host");
    if (strcmp(style, "host") != 0 && strcmp(style, "subnet") != 0
        && strcmp(style, "class") != 0) {
        msg_warn("unknown mynetworks_style \"%s\": using host", style);
        style = "host";
    }
    struct strlist protocols = STRLIST_INIT;
    struct strbuf err = STRBUF_INIT;
    int want4 = 0, want6 = 0;
    if (list_split(config_value_or("inet_protocols", "all"), &protocols, &err) == 0)
        for (size_t i = 0; i < protocols.count; i++) {
            want4 |= strcmp(protocols.item[i], "all") == 0 || strcmp(protocols.item[i], "ipv4") == 0;
            want6 |= strcmp(protocols.item[i], "all") == 0 || strcmp(protocols.item[i], "ipv6") == 0;
        }
    strlist_free(&protocols);
    strbuf_free(&err);
    struct ifaddrs *list;
    if (getifaddrs(&list) != 0) {
        msg_warn_errno("getifaddrs: mynetworks is only the loopback networks");
        strbuf_puts(out, want6 ? "127.0.0.0/8 [::1]/128" : "127.0.0.0/8");
        return;
    }
    for (int pass = 0; pass < 2; pass++) {      /* IPv4 first, as Postfix */
        int family = pass == 0 ? AF_INET : AF_INET6;
        if ((family == AF_INET && !want4) || (family == AF_INET6 && !want6))
            continue;
        for (struct ifaddrs *ifa = list; ifa; ifa = ifa->ifa_next)
            if (ifa->ifa_addr && ifa->ifa_addr->sa_family == family && (ifa->ifa_flags & IFF_UP))
                add_interface(out, ifa, style);
    }
    freeifaddrs(list);
}
