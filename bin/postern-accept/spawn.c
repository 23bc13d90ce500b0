/* spawn.c - starting the program for a connection: posix_spawn (no copy of
 * the parent's memory; the connection dup'ed onto fd 0 and 1, signals
 * reset), or, with -z, passing the connection to the zygote (lib/util/zygote.h),
 * which forks the program it has already initialised. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "accept.h"
#include "log.h"
#include "xalloc.h"
#include "zygote.h"

static posix_spawnattr_t spawn_attr;

/* Children start with no blocked signals and default dispositions. */
void spawn_init(void)
{
    sigset_t empty, defaults;
    sigemptyset(&empty);
    sigemptyset(&defaults);
    sigaddset(&defaults, SIGPIPE);
    sigaddset(&defaults, SIGCHLD);
    sigaddset(&defaults, SIGTERM);
    sigaddset(&defaults, SIGHUP);
    sigaddset(&defaults, SIGINT);
    sigaddset(&defaults, SIGQUIT);
    if (posix_spawnattr_init(&spawn_attr) != 0
        || posix_spawnattr_setsigmask(&spawn_attr, &empty) != 0
        || posix_spawnattr_setsigdefault(&spawn_attr, &defaults) != 0
        || posix_spawnattr_setflags(&spawn_attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF) != 0)
        msg_fatal("posix_spawnattr: cannot set up");
}

/* Start the program on a connection; returns its pid, or -1 (logged). */
pid_t spawn_program(const struct accept_settings *settings, const struct listener *l,
                         int conn, const struct sockaddr *peer, unsigned connections)
{
    char env_buf[1024];
    posix_spawn_file_actions_t actions;
    pid_t pid;
    connection_env(l, conn, peer, connections, env_buf, sizeof env_buf);
    if (posix_spawn_file_actions_init(&actions) != 0)
        die_nomem();
    int rc = posix_spawn_file_actions_adddup2(&actions, conn, 0);
    if (rc == 0)
        rc = posix_spawn_file_actions_adddup2(&actions, conn, 1);
    if (rc == 0)
        rc = posix_spawn(&pid, settings->program, &actions, &spawn_attr, settings->argv,
                         child_environment());
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        msg_warn_errno("cannot start %s", settings->program);
        return -1;
    }
    return pid;
}

/* ---- zygote mode (-z, lib/util/zygote.h) ---- */

static int zygote_fd = -1;
static pid_t zygote_pid;
/* the connections sent to the zygote and not yet answered, in the order
 * sent (the zygote answers in that order), each with a descriptor of our
 * own: when the zygote dies before forking for it, it is served again */
static struct pending_connection *pending;
static size_t pending_head, pending_count, pending_size;

/* Remember a connection passed to the zygote. */
static void pending_push(const struct pending_connection *c)
{
    if (pending_count == pending_size) {
        size_t new_size = pending_size ? 2 * pending_size : 64;
        struct pending_connection *grown = xcalloc(new_size, sizeof *grown);
        for (size_t i = 0; i < pending_count; i++)
            grown[i] = pending[(pending_head + i) % pending_size];
        free(pending);
        pending = grown;
        pending_size = new_size;
        pending_head = 0;
    }
    pending[(pending_head + pending_count) % pending_size] = *c;
    pending_count++;
}

int zygote_pending_take(struct pending_connection *out)
{
    if (pending_count == 0)
        return 0;
    *out = pending[pending_head];
    pending_head = (pending_head + 1) % pending_size;
    pending_count--;
    return 1;
}

struct client *zygote_pending_pop(void)
{
    struct pending_connection c;
    if (!zygote_pending_take(&c))
        msg_fatal("zygote answered for a connection that was not sent");
    close(c.fd);
    return c.client;
}

/* Start the program once, as the zygote, with its end of the socketpair. */
void zygote_start(const struct accept_settings *settings)
{
    int pair[2];
    if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, pair) < 0)
        msg_fatal_errno("socketpair");
    posix_spawn_file_actions_t actions;
    if (posix_spawn_file_actions_init(&actions) != 0
        || posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDWR, 0) != 0
        || posix_spawn_file_actions_adddup2(&actions, 0, 1) != 0
        || posix_spawn_file_actions_adddup2(&actions, pair[1], 3) != 0)
        die_nomem();
    int rc = posix_spawn(&zygote_pid, settings->program, &actions, &spawn_attr,
                         settings->argv, zygote_environment(settings->zygote_user));
    posix_spawn_file_actions_destroy(&actions);
    if (rc != 0) {
        errno = rc;
        msg_fatal_errno("cannot start %s", settings->program);
    }
    close(pair[1]);
    zygote_fd = pair[0];
    int flags = fcntl(zygote_fd, F_GETFL);
    if (flags < 0 || fcntl(zygote_fd, F_SETFL, flags | O_NONBLOCK) < 0)
        msg_fatal_errno("fcntl");
    msg_info("zygote %s started as pid %ld", settings->program, (long)zygote_pid);
}

/* Pass a connection to the zygote; 0, or -1 (logged). */
int zygote_pass(const struct listener *l, int conn, const struct sockaddr *peer,
                          unsigned connections, struct client *client)
{
    char env_buf[1024];
    size_t len = connection_env(l, conn, peer, connections, env_buf, sizeof env_buf);
    /* a full socket buffer: wait for the zygote rather than drop the client */
    while (zygote_send_connection(zygote_fd, conn, env_buf, len) < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd out = {zygote_fd, POLLOUT, 0};
            (void)poll(&out, 1, 1000);
            continue;
        }
        msg_warn_errno("cannot pass the connection to the zygote");
        return -1;
    }
    struct pending_connection c = {client, fcntl(conn, F_DUPFD_CLOEXEC, 3), l, {0}, connections};
    if (c.fd < 0) {
        /* no descriptor to spare: it is not served again if the zygote dies */
        c.fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (c.fd < 0)
            msg_fatal_errno("open /dev/null");
        c.listener = NULL;
    }
    memcpy(&c.peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                          : peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                          : sizeof(struct sockaddr_un));
    pending_push(&c);
    return 0;
}

void zygote_lost(void)
{
    if (zygote_fd >= 0)
        close(zygote_fd);
    zygote_fd = -1;
    zygote_pid = 0;
}

int zygote_descriptor(void)
{
    return zygote_fd;
}

pid_t zygote_process(void)
{
    return zygote_pid;
}

size_t zygote_pending(void)
{
    return pending_count;
}

void spawn_free(void)
{
    if (zygote_fd >= 0)
        close(zygote_fd);       /* the zygote exits; its sessions go on */
    zygote_fd = -1;
    struct pending_connection c;
    while (zygote_pending_take(&c))
        close(c.fd);
    free(pending);
    pending = NULL;
    posix_spawnattr_destroy(&spawn_attr);
}
