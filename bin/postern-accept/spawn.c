/* spawn.c - starting the program for a connection: posix_spawn (no copy of
 * the parent's memory; the connection dup'ed onto fd 0 and 1, signals
 * reset), or, with -z, handing the connection straight to a child the
 * zygote forked ahead (lib/util/zygote.h), or passing it to the zygote,
 * which forks the program it has already initialised. */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "accept.h"
#include "fdpass.h"
#include "filekeeper.h"
#include "log.h"
#include "xalloc.h"
#include "zygote.h"

static posix_spawnattr_t spawn_attr;
/* our copy of the TLS file keeper's socket (filekeeper.h), for the next
 * zygote */
static int keeper_fd = -1;

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
    /* while no zygote runs (its restart waits out a backoff), a session
     * reads the TLS key through the keeper too, and closes its socket
     * before it reads from the client (postern-smtpd) */
    static char keeper_variable[64];
    if (rc == 0 && keeper_fd >= 0) {
        snprintf(keeper_variable, sizeof keeper_variable, "%s=4", FILEKEEPER_FD_VARIABLE);
        child_env_append(keeper_variable);
        rc = posix_spawn_file_actions_adddup2(&actions, keeper_fd, 4);
    }
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

/* children the zygote forked ahead, waiting for a connection on the
 * socket we hold (zygote.h); oldest first */
struct ready_child {
    pid_t pid;
    int32_t generation;
    int fd;
};
static struct ready_child *ready;
static size_t ready_count, ready_size;

/* connections handed to a child forked ahead, with a copy of ours until
 * the child's end */
struct handed_connection {
    pid_t pid;
    struct pending_connection connection;
};
static struct handed_connection *handed;
static size_t handed_count, handed_size;
static int32_t ready_generation;    /* children older than this are retired */
static unsigned reloads_asked;      /* reloads the zygote has not answered */

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
    /* the keeper's socket on 4, after the zygote's (dup2 clears close-on-exec) */
    if (posix_spawn_file_actions_init(&actions) != 0
        || posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDWR, 0) != 0
        || posix_spawn_file_actions_adddup2(&actions, 0, 1) != 0
        || posix_spawn_file_actions_adddup2(&actions, pair[1], 3) != 0
        || (keeper_fd >= 0 && posix_spawn_file_actions_adddup2(&actions, keeper_fd, 4) != 0))
        die_nomem();
    int rc = posix_spawn(&zygote_pid, settings->program, &actions, &spawn_attr, settings->argv,
                         zygote_environment(settings->zygote_user, keeper_fd >= 0 ? 4 : -1));
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

/* Send a message to the zygote, with the connection attached when conn
 * >= 0; a full socket buffer is waited for rather than a client dropped.
 * 0, or -1 (errno). */
static int zygote_send(const char *message, size_t len, int conn)
{
    while (fdpass_send(zygote_fd, message, len, &conn, conn >= 0 ? 1 : 0) != (ssize_t)len) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            struct pollfd out = {zygote_fd, POLLOUT, 0};
            (void)poll(&out, 1, 1000);
            continue;
        }
        return -1;
    }
    return 0;
}

static int next_served_again;

void zygote_next_served_again(int times)
{
    next_served_again = times;
}

/* Our own copy of a connection passed on, with what serving it again
 * needs; 0, or -1 when no descriptor is left (c->fd is then -1). */
static int keep_copy(struct pending_connection *c, const struct listener *l, int conn,
                     const struct sockaddr *peer, unsigned connections, struct client *client)
{
    memset(c, 0, sizeof *c);
    c->served_again = next_served_again;
    next_served_again = 0;
    c->client = client;
    c->fd = fcntl(conn, F_DUPFD_CLOEXEC, 3);
    c->listener = l;
    c->count = connections;
    memcpy(&c->peer, peer, peer->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6)
                           : peer->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                           : sizeof(struct sockaddr_un));
    return c->fd < 0 ? -1 : 0;
}

/* Pass a connection to the zygote; 0, or -1 (logged). */
int zygote_pass(const struct listener *l, int conn, const struct sockaddr *peer,
                          unsigned connections, struct client *client)
{
    char env_buf[1024];
    size_t len = connection_env(l, conn, peer, connections, env_buf, sizeof env_buf);
    if (zygote_send(env_buf, len, conn) < 0) {
        msg_warn_errno("cannot pass the connection to the zygote");
        return -1;
    }
    struct pending_connection c;
    if (keep_copy(&c, l, conn, peer, connections, client) < 0) {
        /* no descriptor to spare: it is not served again if the zygote dies */
        c.fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
        if (c.fd < 0)
            msg_fatal_errno("open /dev/null");
        c.listener = NULL;
    }
    pending_push(&c);
    return 0;
}

/* Forget every waiting child: closing its socket ends it. */
static void ready_clear(void)
{
    for (size_t i = 0; i < ready_count; i++)
        close(ready[i].fd);
    ready_count = 0;
}

/* Take the oldest waiting child out of the list; 0 when there is none. */
static int ready_take(struct ready_child *out)
{
    if (!ready_count)
        return 0;
    *out = ready[0];
    memmove(ready, ready + 1, --ready_count * sizeof *ready);
    return 1;
}

void zygote_child_ready(pid_t pid, int32_t generation, int fd)
{
    if (fd < 0) {
        msg_warn("zygote: a waiting child (pid %ld) came without its socket", (long)pid);
        return;
    }
    /* forked before a reload or a change the zygote has since answered */
    if (reloads_asked || generation < ready_generation) {
        close(fd);
        return;
    }
    if (ready_count == ready_size) {
        ready_size = ready_size ? ready_size * 2 : 8;
        ready = xreallocarray(ready, ready_size, sizeof *ready);
    }
    ready[ready_count++] = (struct ready_child){pid, generation, fd};
}

void zygote_retire(int32_t generation, int answering_reload)
{
    if (answering_reload && reloads_asked)
        reloads_asked--;
    if (generation > ready_generation)
        ready_generation = generation;
    size_t kept = 0;
    for (size_t i = 0; i < ready_count; i++) {
        if (ready[i].generation < ready_generation)
            close(ready[i].fd);
        else
            ready[kept++] = ready[i];
    }
    ready_count = kept;
}

int zygote_child_gone(pid_t pid)
{
    for (size_t i = 0; i < ready_count; i++)
        if (ready[i].pid == pid) {
            close(ready[i].fd);
            memmove(ready + i, ready + i + 1, (ready_count - i - 1) * sizeof *ready);
            ready_count--;
            return 1;
        }
    return 0;
}

void zygote_keeper(int fd)
{
    if (keeper_fd >= 0)
        close(keeper_fd);
    keeper_fd = fd;
}

size_t zygote_ready_count(void)
{
    return ready_count;
}

int zygote_hand_out(const struct listener *l, int conn, const struct sockaddr *peer,
                    unsigned connections, struct client *client)
{
    struct ready_child child;
    if (!ready_count)
        return -1;
    char env_buf[1024];
    size_t len = connection_env(l, conn, peer, connections, env_buf, sizeof env_buf);
    while (ready_take(&child)) {
        /* its socket is empty: the one message fits; a child that has
         * died is passed over (EPIPE) */
        ssize_t sent = fdpass_send(child.fd, env_buf, len, &conn, 1);
        if (sent != (ssize_t)len) {
            close(child.fd);
            continue;
        }
        close(child.fd);
        child_add(child.pid, client);
        /* until the child's end, a copy of ours: a child that dies before
         * it answers (killed while it waited) does not lose it */
        struct handed_connection h = {child.pid, {0}};
        if (keep_copy(&h.connection, l, conn, peer, connections, client) < 0)
            return 0;               /* no descriptor to spare: not served again */
        if (handed_count == handed_size) {
            handed_size = handed_size ? handed_size * 2 : 8;
            handed = xreallocarray(handed, handed_size, sizeof *handed);
        }
        handed[handed_count++] = h;
        return 0;
    }
    return -1;
}

int zygote_handed_end(pid_t pid, struct pending_connection *out)
{
    for (size_t i = 0; i < handed_count; i++)
        if (handed[i].pid == pid) {
            *out = handed[i].connection;
            handed[i] = handed[--handed_count];
            return 1;
        }
    return 0;
}

int zygote_reload(void)
{
    static const char message[] = ZYGOTE_RELOAD_MESSAGE;
    /* the children waiting now hold what the reload replaces */
    ready_clear();
    if (zygote_send(message, sizeof message - 1, -1) < 0) {
        msg_warn_errno("cannot ask the zygote to reload");
        return -1;
    }
    reloads_asked++;
    return 0;
}

void zygote_lost(void)
{
    if (zygote_fd >= 0)
        close(zygote_fd);
    zygote_fd = -1;
    zygote_pid = 0;
    /* its waiting children end; the next zygote counts from 0 */
    ready_clear();
    ready_generation = 0;
    reloads_asked = 0;
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
    ready_clear();
    free(ready);
    ready = NULL;
    ready_size = 0;
    for (size_t i = 0; i < handed_count; i++)
        close(handed[i].connection.fd);
    free(handed);
    handed = NULL;
    handed_count = handed_size = 0;
    if (keeper_fd >= 0)
        close(keeper_fd);      /* the keeper ends with the last copy */
    keeper_fd = -1;
    posix_spawnattr_destroy(&spawn_attr);
}
