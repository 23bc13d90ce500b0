/* spawn.c - starting the program for a connection: posix_spawn (no copy of
 * the parent's memory; the connection dup'ed onto fd 0 and 1, signals
 * reset), or, with -z, passing the connection to the zygote (lib/util/zygote.h),
 * which forks the program it has already initialised. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
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
/* clients of the connections sent to the zygote and not yet answered, in
 * the order sent (the zygote answers in that order) */
static struct client **pending;
static size_t pending_head, pending_count, pending_size;

/* Remember the client of a connection passed to the zygote. */
static void pending_push(struct client *client)
{
    if (pending_count == pending_size) {
        size_t new_size = pending_size ? 2 * pending_size : 64;
        struct client **grown = xcalloc(new_size, sizeof *grown);
        for (size_t i = 0; i < pending_count; i++)
            grown[i] = pending[(pending_head + i) % pending_size];
        free(pending);
        pending = grown;
        pending_size = new_size;
        pending_head = 0;
    }
    pending[(pending_head + pending_count) % pending_size] = client;
    pending_count++;
}

/* The client of the oldest connection passed to the zygote. */
struct client *zygote_pending_pop(void)
{
    if (pending_count == 0)
        msg_fatal("zygote answered for a connection that was not sent");
    struct client *client = pending[pending_head];
    pending_head = (pending_head + 1) % pending_size;
    pending_count--;
    return client;
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
    pending_push(client);
    return 0;
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
    free(pending);
    pending = NULL;
    posix_spawnattr_destroy(&spawn_attr);
}
