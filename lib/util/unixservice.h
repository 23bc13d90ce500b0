/* unixservice.h - what every long-running service behind a unix socket
 * does when it starts without systemd (postern-queue -S, postern-lookup,
 * postern-auth):
 * lock its pid file, so that a second one refuses to run, bind and listen
 * on its socket, and write its pid once it is ready (unixservice.c). */
#ifndef POSTERN_UNIXSERVICE_H
#define POSTERN_UNIXSERVICE_H

#include <sys/socket.h>
#include <sys/types.h>

struct strbuf;

/* Open and lock the pid file at path for the life of the process.  The
 * descriptor, or -1 with the reason in err (another process holds the
 * lock: its pid is in the reason). */
int pid_file_lock(const char *path, struct strbuf *err);
/* Write our pid into the locked pid file: we are ready.  0, or -1. */
int pid_file_publish(int fd);
/* Bind a unix stream socket at path with this mode and, unless they are
 * -1, this owner and group, and listen.  It is made as path.new and then
 * renamed into place, so a client never finds it half made, and a socket
 * file left by a killed service is replaced (the pid file's lock says none
 * runs).  The descriptor (close-on-exec), or -1 with err set. */
int unix_listen(const char *path, mode_t mode, uid_t owner, gid_t group, int backlog,
                struct strbuf *err);
/* Connect to the unix stream socket at path (a client of a service), with
 * timeout_s seconds for each send and receive (SO_SNDTIMEO, SO_RCVTIMEO).
 * The descriptor (close-on-exec), or -1 with errno set. */
int unix_connect(const char *path, int timeout_s);
/* Accept one connection (accept4 with flags, which should hold
 * SOCK_CLOEXEC) and read its peer's credentials (SO_PEERCRED, filled in
 * by the kernel; uid -1 and pid 0 when they cannot be read).  The
 * descriptor; -1 with err empty when no client waits (or one went away);
 * -1 with the reason in err on another error. */
int unix_accept(int listen_fd, int flags, struct ucred *peer, struct strbuf *err);
/* Check that fd is a listening socket (one systemd passed may not be:
 * Accept=yes) and make it non-blocking.  0, or -1 with err set. */
int listener_prepare(int fd, struct strbuf *err);
/* A service's listening socket and pid file (postern-lookup,
 * postern-auth): the socket systemd passed, or one bound by the service. */
struct unix_service {
    int listen_fd;
    int pid_fd;                     /* -1: systemd's socket, no pid file */
    char *pid_path, *socket_path;   /* NULL: systemd's socket */
};
/* Take the one socket systemd passed (LISTEN_FDS); without one, lock the
 * pid file at pid_path and bind socket_path with this mode and group
 * ((gid_t)-1: ours; unix_listen).  The socket is then checked and made non-blocking
 * (listener_prepare).  0, or -1 with the reason in err. */
int unix_service_open(struct unix_service *svc, const char *pid_path, const char *socket_path,
                      mode_t mode, gid_t group, int backlog, struct strbuf *err);
/* The same with the socket owned by owner ((uid_t)-1: ours), as a root
 * service binds a socket for an unprivileged client (postern-spawn). */
int unix_service_open_owned(struct unix_service *svc, const char *pid_path,
                            const char *socket_path, mode_t mode, uid_t owner, gid_t group,
                            int backlog, struct strbuf *err);
/* Write our pid into the pid file (if we bound the socket): we are
 * ready.  0, or -1 with errno. */
int unix_service_ready(struct unix_service *svc);
/* The whole start of such a service, fatal (logged as "WHAT: reason")
 * when a step fails: unix_service_open() with the pid file
 * queue_dir/pid/NAME.pid and the socket queue_dir/SOCKET_REL, a signalfd
 * for these signals (signal_fd_open), then unix_service_ready().  Returns
 * the signalfd. */
int unix_service_start(struct unix_service *svc, const char *what, const char *queue_dir,
                       const char *name, const char *socket_rel, mode_t mode, gid_t group,
                       int backlog, const int *signals, size_t signal_count);
/* Remove the socket and the pid file we made; what failed goes to err. */
void unix_service_close(struct unix_service *svc, struct strbuf *err);
/* An octal socket mode (a service's -m): 0, or -1 when text is not one. */
int socket_mode_parse(const char *text, mode_t *mode);
/* Block these signals and return a signalfd (non-blocking, close-on-exec)
 * that delivers them; -1 with errno on failure. */
int signal_fd_open(const int *signals, size_t count);

#endif
