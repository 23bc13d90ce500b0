/* unix.c - the unix table type: unix:passwd.byname (getpwnam; the value is
 * the passwd(5) line "name:passwd:uid:gid:gecos:dir:shell") and
 * unix:group.byname (getgrnam; "name:passwd:gid:member,member"), as
 * Postfix's dict_unix answers; and postern's unix:hosts.byname (the NIS
 * map's name; getaddrinfo: the host's addresses, numeric, separated by
 * spaces), with which the address resolver learns the addresses of names
 * in inet_interfaces.  An error of the name service (not "no such user")
 * is MAP_RETRY.  This code calls NSS: only dynamically linked programs
 * link it (map_register_dynamic_types()). */
#include <arpa/inet.h>
#include <errno.h>
#include <grp.h>
#include <netdb.h>
#include <pwd.h>
#include <string.h>
#include <sys/socket.h>

#include "log.h"
#include "map_impl.h"
#include "strbuf.h"

enum unix_kind { UNIX_PASSWD = 1, UNIX_GROUP = 2, UNIX_HOSTS = 3 };

/* Is errno after a NULL from getpwnam/getgrnam just "not there"? */
static int errno_means_absent(int e)
{
    return e == 0 || e == ENOENT || e == ESRCH || e == EBADF || e == EPERM;
}

/* Accept the two names Postfix knows, and hosts.byname. */
static int unix_open(struct map *map, const char *name, struct strbuf *err)
{
    static enum unix_kind kinds[] = {UNIX_PASSWD, UNIX_GROUP, UNIX_HOSTS};
    if (strcmp(name, "passwd.byname") == 0)
        map->data = &kinds[0];
    else if (strcmp(name, "group.byname") == 0)
        map->data = &kinds[1];
    else if (strcmp(name, "hosts.byname") == 0)
        map->data = &kinds[2];
    else {
        strbuf_printf(err, "table \"unix:%s\": unknown name; use unix:passwd.byname, "
                      "unix:group.byname or unix:hosts.byname", name);
        return -1;
    }
    return 0;
}

/* Log a failed lookup (errno set) with the key in printable form: keys
 * come from mail. */
static void warn_lookup(const struct map *map, const char *key)
{
    int saved = errno;
    struct strbuf shown = STRBUF_INIT;
    msg_warn("table %s: lookup of \"%s\": %s", map->spec, log_printable(&shown, key, 200),
             strerror(saved));
    strbuf_free(&shown);
}

/* A host's addresses, numeric, separated by spaces. */
static int hosts_lookup(struct map *map, const char *key, struct strbuf *value)
{
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(key, NULL, &hints, &res);
    if (rc == EAI_NONAME || rc == EAI_NODATA)
        return MAP_NOTFOUND;
    if (rc != 0) {
        struct strbuf shown = STRBUF_INIT;
        msg_warn("table %s: lookup of \"%s\": %s", map->spec, log_printable(&shown, key, 200),
                 rc == EAI_SYSTEM ? strerror(errno) : gai_strerror(rc));
        strbuf_free(&shown);
        return MAP_RETRY;
    }
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        char text[INET6_ADDRSTRLEN];
        const void *addr = ai->ai_family == AF_INET
            ? (const void *)&((struct sockaddr_in *)ai->ai_addr)->sin_addr
            : (const void *)&((struct sockaddr_in6 *)ai->ai_addr)->sin6_addr;
        if ((ai->ai_family == AF_INET || ai->ai_family == AF_INET6)
            && inet_ntop(ai->ai_family, addr, text, sizeof text))
            strbuf_printf(value, "%s%s", value->len ? " " : "", text);
    }
    freeaddrinfo(res);
    return value->len ? MAP_FOUND : MAP_NOTFOUND;
}

/* Ask the name service. */
static int unix_lookup(struct map *map, const char *key, struct strbuf *value)
{
    enum unix_kind kind = *(enum unix_kind *)map->data;
    if (kind == UNIX_HOSTS)
        return hosts_lookup(map, key, value);
    errno = 0;
    if (kind == UNIX_PASSWD) {
        struct passwd *pw = getpwnam(key);
        if (!pw) {
            if (errno_means_absent(errno))
                return MAP_NOTFOUND;
            warn_lookup(map, key);
            return MAP_RETRY;
        }
        strbuf_printf(value, "%s:%s:%ld:%ld:%s:%s:%s", pw->pw_name, pw->pw_passwd,
                      (long)pw->pw_uid, (long)pw->pw_gid, pw->pw_gecos, pw->pw_dir,
                      pw->pw_shell);
        return MAP_FOUND;
    }
    struct group *gr = getgrnam(key);
    if (!gr) {
        if (errno_means_absent(errno))
            return MAP_NOTFOUND;
        warn_lookup(map, key);
        return MAP_RETRY;
    }
    strbuf_printf(value, "%s:%s:%ld:", gr->gr_name, gr->gr_passwd, (long)gr->gr_gid);
    for (char **member = gr->gr_mem; *member; member++)
        strbuf_printf(value, "%s%s", member == gr->gr_mem ? "" : ",", *member);
    return MAP_FOUND;
}

const struct map_type map_type_unix = {
    .name = "unix", .flags = MAP_FOLD_KEYS, .open = unix_open, .lookup = unix_lookup,
};
