/* env.c - the environment of the programs postern-accept starts: its own
 * without the variables that describe another connection, plus the UCSPI
 * variables of each connection (tcpserver's and ucspi-unix's names). */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>

#include "accept.h"
#include "config.h"
#include "filekeeper.h"
#include "log.h"
#include "xalloc.h"
#include "zygote.h"

extern char **environ;

#define EXTRA_ENV           8       /* per-connection variables */

/* Variables a connection's program must not inherit from our own
 * environment: they describe another connection, or our socket activation. */
static const char *const stale_variables[] = {
    "PROTO", "TCPLOCALIP", "TCPLOCALPORT", "TCPLOCALHOST", "TCPREMOTEIP",
    "TCPREMOTEPORT", "TCPREMOTEHOST", "TCPREMOTEINFO", "UNIXLOCALPATH",
    "UNIXLOCALUID", "UNIXLOCALGID", "UNIXLOCALPID", "UNIXREMOTEEUID",
    "UNIXREMOTEEGID", "UNIXREMOTEPID", "REMOTE_ADDR", "REMOTE_PORT",
    "TCPCONNNUM", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", CONFIG_STRESS_VARIABLE,
};

static char **child_env;        /* inherited variables + EXTRA_ENV slots + NULL */
static size_t child_env_base;
static int stress;              /* the service is at its process limit */

void child_env_stress(int on)
{
    stress = on;
}


/* Our environment without the stale variables, with room at the end. */
void child_env_init(void)
{
    size_t n = 0;
    while (environ[n])
        n++;
    child_env = xcalloc(n + EXTRA_ENV + 1, sizeof *child_env);
    for (size_t i = 0; i < n; i++) {
        int stale = 0;
        for (size_t j = 0; j < sizeof stale_variables / sizeof stale_variables[0]; j++) {
            size_t len = strlen(stale_variables[j]);
            if (strncmp(environ[i], stale_variables[j], len) == 0 && environ[i][len] == '=')
                stale = 1;
        }
        if (!stale)
            child_env[child_env_base++] = environ[i];
    }
}


/* Append "NAME=value" to a fixed buffer; returns the string's start. */
static char *put_var(char **cursor, char *limit, const char *name, const char *value)
{
    char *start = *cursor;
    int n = snprintf(start, (size_t)(limit - start), "%s=%s", name, value);
    if (n < 0 || n >= limit - start)
        msg_fatal("environment buffer too small");
    *cursor = start + n + 1;
    return start;
}

/* Address and port of an inet socket address as text. */
void format_inet(const struct sockaddr *sa, char *ip, size_t ip_size, char *port,
                      size_t port_size)
{
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr))
            inet_ntop(AF_INET, in6->sin6_addr.s6_addr + 12, ip, (socklen_t)ip_size);
        else
            inet_ntop(AF_INET6, &in6->sin6_addr, ip, (socklen_t)ip_size);
        snprintf(port, port_size, "%u", ntohs(in6->sin6_port));
    } else {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, (socklen_t)ip_size);
        snprintf(port, port_size, "%u", ntohs(in->sin_port));
    }
}

/* Fill the per-connection variables into child_env's tail. */
size_t connection_env(const struct listener *l, int conn, const struct sockaddr *peer,
                             unsigned connections, char *buf, size_t buf_size)
{
    char *cursor = buf, *limit = buf + buf_size;
    size_t k = child_env_base;
    if (l->family == AF_UNIX) {
        struct ucred cred;
        socklen_t len = sizeof cred;
        char num[32];
        child_env[k++] = put_var(&cursor, limit, "PROTO", "UNIX");
        child_env[k++] = put_var(&cursor, limit, "UNIXLOCALPATH", l->unix_path ? l->unix_path : "");
        if (getsockopt(conn, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0) {
            snprintf(num, sizeof num, "%ld", (long)cred.uid);
            child_env[k++] = put_var(&cursor, limit, "UNIXREMOTEEUID", num);
            snprintf(num, sizeof num, "%ld", (long)cred.gid);
            child_env[k++] = put_var(&cursor, limit, "UNIXREMOTEEGID", num);
            snprintf(num, sizeof num, "%ld", (long)cred.pid);
            child_env[k++] = put_var(&cursor, limit, "UNIXREMOTEPID", num);
        }
    } else {
        char ip[INET6_ADDRSTRLEN], port[8];
        struct sockaddr_storage local;
        socklen_t len = sizeof local;
        child_env[k++] = put_var(&cursor, limit, "PROTO", "TCP");
        format_inet(peer, ip, sizeof ip, port, sizeof port);
        child_env[k++] = put_var(&cursor, limit, "TCPREMOTEIP", ip);
        child_env[k++] = put_var(&cursor, limit, "TCPREMOTEPORT", port);
        if (getsockname(conn, (struct sockaddr *)&local, &len) == 0) {
            format_inet((struct sockaddr *)&local, ip, sizeof ip, port, sizeof port);
            child_env[k++] = put_var(&cursor, limit, "TCPLOCALIP", ip);
            child_env[k++] = put_var(&cursor, limit, "TCPLOCALPORT", port);
        }
        if (connections) {
            char num[16];
            snprintf(num, sizeof num, "%u", connections);
            child_env[k++] = put_var(&cursor, limit, "TCPCONNNUM", num);
        }
    }
    if (stress)
        child_env[k++] = put_var(&cursor, limit, CONFIG_STRESS_VARIABLE, "yes");
    child_env[k] = NULL;
    return (size_t)(cursor - buf);
}

void export_connection_env(int fd)
{
    struct sockaddr_storage peer, local;
    socklen_t peer_len = sizeof peer, local_len = sizeof local;
    char ip[INET6_ADDRSTRLEN], port[8];
    if (getpeername(fd, (struct sockaddr *)&peer, &peer_len) < 0
        || (peer.ss_family != AF_INET && peer.ss_family != AF_INET6))
        return;
    for (size_t j = 0; j < sizeof stale_variables / sizeof stale_variables[0]; j++)
        if (strncmp(stale_variables[j], "LISTEN_", 7) != 0)
            unsetenv(stale_variables[j]);
    setenv("PROTO", "TCP", 1);
    format_inet((struct sockaddr *)&peer, ip, sizeof ip, port, sizeof port);
    setenv("TCPREMOTEIP", ip, 1);
    setenv("TCPREMOTEPORT", port, 1);
    if (getsockname(fd, (struct sockaddr *)&local, &local_len) == 0) {
        format_inet((struct sockaddr *)&local, ip, sizeof ip, port, sizeof port);
        setenv("TCPLOCALIP", ip, 1);
        setenv("TCPLOCALPORT", port, 1);
    }
}

char **child_environment(void)
{
    return child_env;
}

void child_env_append(char *variable)
{
    size_t k = child_env_base;
    while (child_env[k])
        k++;
    if (k < child_env_base + EXTRA_ENV) {
        child_env[k++] = variable;
        child_env[k] = NULL;
    }
}

char **zygote_environment(const char *zygote_user, int keeper_fd)
{
    static char user_variable[96], keeper_variable[64];
    size_t k = child_env_base;
    child_env[k++] = (char *)ZYGOTE_FD_VARIABLE "=3";
    if (keeper_fd >= 0) {
        snprintf(keeper_variable, sizeof keeper_variable, "%s=%d", FILEKEEPER_FD_VARIABLE, keeper_fd);
        child_env[k++] = keeper_variable;
    }
    if (zygote_user) {
        snprintf(user_variable, sizeof user_variable, "%s=%s", ZYGOTE_USER_VARIABLE, zygote_user);
        child_env[k++] = user_variable;
    }
    child_env[k] = NULL;
    return child_env;
}

void child_env_free(void)
{
    free(child_env);
    child_env = NULL;
}
