/* peer.c - who the client is (interface 1 of DESIGN.md): the UCSPI
 * variables (tcpserver, postern-accept), else systemd's REMOTE_ADDR and
 * REMOTE_PORT (Accept=yes), else getpeername/getsockname on fd 0 (inetd),
 * else a local submission (a pipe: sendmail -bs), which Postfix calls
 * localhost[127.0.0.1].  The client name is TCPREMOTEHOST when the acceptor
 * looked it up; else, with smtpd_peername_lookup (Postfix's default), the
 * forward-confirmed PTR name, which the lookup service finds (table
 * proxy:dns:client, doc/lookup.md: a static program does no DNS itself);
 * else "unknown". */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "addrmatch.h"
#include "config.h"
#include "hosts.h"
#include "log.h"
#include "map.h"
#include "smtpd.h"
#include "strbuf.h"

/* isalnum for ASCII only, whatever the locale. */
static int isalnum_ascii(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Copy an address in its plain form (IPv4 for a mapped IPv6 address). */
static void set_address(char *out, size_t size, const char *text)
{
    if (addr_normalize(text, out, size) != 0)
        snprintf(out, size, "%s", text);
}

/* The address and port of a socket address. */
static int sockaddr_text(const struct sockaddr_storage *sa, char *addr, size_t addr_size,
                         char *port, size_t port_size)
{
    char text[INET6_ADDRSTRLEN];
    if (sa->ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        snprintf(port, port_size, "%u", ntohs(in->sin_port));
    } else if (sa->ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        snprintf(port, port_size, "%u", ntohs(in6->sin6_port));
    } else {
        return -1;
    }
    set_address(addr, addr_size, text);
    return 0;
}

/* Is name a host name of letters, digits, '.', '-' and '_' shorter than
 * size?  (What DNS or the environment says goes into logs and headers.) */
static int host_name_ok(const char *name, size_t size)
{
    if (!name || !*name || strlen(name) >= size)
        return 0;
    for (const char *p = name; *p; p++)
        if (!(isalnum_ascii(*p) || *p == '.' || *p == '-' || *p == '_'))
            return 0;
    return 1;
}

/* A printable host name from the environment, or "unknown". */
static void set_name(struct client *c, const char *name)
{
    snprintf(c->name, sizeof c->name, "%s", host_name_ok(name, sizeof c->name) ? name : "unknown");
}

/* One status word of the lookup service's dns:client answer as a letter. */
static char status_letter(const char *word)
{
    if (strcmp(word, "found") == 0)
        return 'F';
    return strcmp(word, "notfound") == 0 || strcmp(word, "nodata") == 0
           || strcmp(word, "nxdomain") == 0 ? 'N' : 'R';
}

/* What Postfix's warning adds for a PTR name that does not confirm the
 * address: getaddrinfo's error, none when the name's addresses differ. */
static const char *forward_failure(const char *word)
{
    if (strcmp(word, "nodata") == 0)
        return ": No address associated with hostname";
    if (strcmp(word, "nxdomain") == 0)
        return ": Name or service not known";
    if (strcmp(word, "retry") == 0)
        return ": Temporary failure in name resolution";
    return "";
}

/* The hosts file, read once per process (a zygote's children share it). */
static struct hosts *hosts_table;
static int hosts_read;

void peer_prepare(void)
{
    if (!hosts_read && conf_bool("smtpd_peername_lookup")) {
        hosts_table = hosts_open();
        hosts_read = 1;
    }
}

int peer_refresh(void)
{
    struct hosts *now = hosts_refresh(hosts_table);
    if (now == hosts_table)
        return 0;               /* not written: a page shared with the zygote */
    hosts_table = now;
    return 1;
}

/* The name of the address's first line in the hosts file, which that line
 * confirms: 1 when there is one. */
static int name_from_hosts(struct client *c)
{
    char name[sizeof c->name];
    peer_prepare();
    if (!hosts_name_of(hosts_table, c->address, name, sizeof name) || !host_name_ok(name, sizeof name))
        return 0;
    snprintf(c->reverse_name, sizeof c->reverse_name, "%s", name);
    set_name(c, name);
    c->reverse_status = c->forward_status = 'F';
    return 1;
}

/* smtpd_peername_lookup: the PTR name of the address, kept as the client
 * name when its addresses include the address again, as Postfix does;
 * Postfix's warnings when they do not. */
static void look_up_name(struct client *c)
{
    static struct map *names;
    if (name_from_hosts(c))
        return;
    struct strbuf value = STRBUF_INIT, err = STRBUF_INIT;
    snprintf(c->reverse_name, sizeof c->reverse_name, "unknown");
    c->reverse_status = c->forward_status = 'R';
    if (!names && !(names = map_open("proxy:dns:client", &err))) {
        msg_warn("client name lookup: %s", err.s);
    } else if (map_lookup(names, c->address, &value) == MAP_FOUND) {
        char reverse[16], forward[16], ptr[256], name[256];
        if (sscanf(strbuf_str(&value), "%15s %15s %255s %255s", reverse, forward, ptr, name) == 4) {
            c->reverse_status = status_letter(reverse);
            c->forward_status = status_letter(forward);
            if (c->reverse_status == 'F' && !host_name_ok(ptr, sizeof c->reverse_name))
                c->reverse_status = 'N';    /* a PTR that is no host name names no one */
            if (c->reverse_status == 'F') {
                snprintf(c->reverse_name, sizeof c->reverse_name, "%s", ptr);
                if (c->forward_status == 'F')
                    set_name(c, name);
                else
                    msg_warn("hostname %s does not resolve to address %s%s", ptr, c->address,
                             forward_failure(forward));
            }
        }
    }
    strbuf_free(&value);
    strbuf_free(&err);
}

void peer_identify(struct session *s)
{
    struct client *c = &s->client;
    const char *remote = getenv("TCPREMOTEIP");
    set_name(c, NULL);
    if (s->local_submission) {
        snprintf(c->name, sizeof c->name, "localhost");
        snprintf(c->address, sizeof c->address, "127.0.0.1");
    } else if (remote && *remote) {
        set_address(c->address, sizeof c->address, remote);
        snprintf(c->port, sizeof c->port, "%s", getenv("TCPREMOTEPORT") ? getenv("TCPREMOTEPORT") : "");
        if (getenv("TCPLOCALIP"))
            set_address(c->local_address, sizeof c->local_address, getenv("TCPLOCALIP"));
        snprintf(c->local_port, sizeof c->local_port, "%s", getenv("TCPLOCALPORT") ? getenv("TCPLOCALPORT") : "");
        set_name(c, getenv("TCPREMOTEHOST"));
    } else if ((remote = getenv("REMOTE_ADDR")) && *remote) {
        set_address(c->address, sizeof c->address, remote);
        snprintf(c->port, sizeof c->port, "%s", getenv("REMOTE_PORT") ? getenv("REMOTE_PORT") : "");
    } else {
        struct sockaddr_storage sa;
        socklen_t len = sizeof sa;
        if (getpeername(0, (struct sockaddr *)&sa, &len) == 0
            && sockaddr_text(&sa, c->address, sizeof c->address, c->port, sizeof c->port) == 0) {
            len = sizeof sa;
            if (getsockname(0, (struct sockaddr *)&sa, &len) == 0)
                sockaddr_text(&sa, c->local_address, sizeof c->local_address,
                              c->local_port, sizeof c->local_port);
        } else {
            /* not a network socket: a pipe or a unix socket */
            snprintf(c->name, sizeof c->name, "localhost");
            snprintf(c->address, sizeof c->address, "127.0.0.1");
        }
    }
    if (!s->local_submission && strcmp(c->name, "unknown") == 0 && c->address[0]
        && conf_bool("smtpd_peername_lookup")) {
        look_up_name(c);
    } else {
        /* named by the acceptor, a local client, or not looked up */
        int named = strcmp(c->name, "unknown") != 0;
        snprintf(c->reverse_name, sizeof c->reverse_name, "%s", c->name);
        c->reverse_status = c->forward_status = named ? 'F' : 'N';
    }
    snprintf(c->namaddr, sizeof c->namaddr, "%s[%s]", c->name, c->address);
    snprintf(c->peer_address, sizeof c->peer_address, "%s", c->address);
}
