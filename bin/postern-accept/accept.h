/* accept.h - the parts of postern-accept(8): listening sockets (listen.c),
 * per-client counts and the child table (clients.c), privileges
 * (privileges.c) and the accept loop (serve.c). */
#ifndef POSTERN_ACCEPT_H
#define POSTERN_ACCEPT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

struct addrmatch;

/* One listening socket. */
struct listener {
    int fd;
    int family;                 /* AF_INET, AF_INET6 or AF_UNIX */
    char *name;                 /* as given or found, for log lines */
    char *unix_path;            /* AF_UNIX: the socket's path (UNIXLOCALPATH) */
    int bound_here;             /* a unix socket we created: removed at exit */
};

struct listeners {
    struct listener *item;
    size_t count;
};

/* ---- listen.c ---- */
/* Bind and listen on "host:port", "[v6]:port", "*:port", ":port" or an
 * absolute unix socket path; fatal on an error.  Appends to out. */
void listen_address(struct listeners *out, const char *address, int backlog);
/* Take the sockets systemd passed (sd_listen_fds); returns how many. */
size_t listen_systemd(struct listeners *out);

/* ---- privileges.c ---- */
/* Drop to user[:group] in OpenSMTPD's order (setgroups, setresgid,
 * setresuid) and verify; fatal on any failure. */
void drop_privileges(const char *user_spec);
/* The uid and gid of "user[:group]" (fatal when unknown). */
void user_ids(const char *user_spec, uid_t *uid, gid_t *gid);

/* ---- clients.c ---- */
/* A client's key: family and address bytes (IPv4-mapped IPv6 as IPv4). */
struct client_key {
    uint8_t family;
    uint8_t bytes[16];
};
/* Fill key from a socket address; 0, or -1 for a family without clients
 * (AF_UNIX). */
int client_key_from(struct client_key *key, const struct sockaddr *addr);

struct client;
/* The entry of a client, created when absent. */
struct client *client_get(const struct client_key *key);
/* Count a new connection: returns the concurrent count including it, and
 * stores the number of connections in the current rate window in *rate. */
unsigned client_connect(struct client *client, time_t now, time_t rate_unit,
                        unsigned *rate);
/* A connection of the client ended. */
void client_disconnect(struct client *client);
/* Remember which client a child serves (client may be NULL). */
void child_add(pid_t pid, struct client *client);
/* Forget a child; returns 1 when it was ours, storing its client. */
int child_remove(pid_t pid, struct client **client);
/* Children alive. */
size_t child_count(void);
/* A client's open connections (0 for NULL), and its key. */
unsigned client_connections(const struct client *client);
const struct client_key *client_key_of(const struct client *client);
/* Fairness at the process limit: the oldest child of the client with the
 * most connections, when it has more than more_than; its connection is
 * given back now (its end will not give it again) and the client stored
 * in *victim.  The caller ends the child.  0 when no client has more. */
pid_t child_evict(unsigned more_than, struct client **victim);
/* Send sig to every child. */
void child_signal_all(int sig);
/* Free entries of clients with no connection and an expired window. */
void client_expire(time_t now, time_t rate_unit);

/* Release both tables (at exit, for leak checkers). */
void clients_free_all(void);

/* ---- env.c ---- */
/* Our environment, less the variables of another connection (once). */
void child_env_init(void);
/* Put the UCSPI variables of a connection at the end of the programs'
 * environment, their text (NUL-ended strings back to back) in buf; returns
 * the text's length. */
size_t connection_env(const struct listener *l, int conn, const struct sockaddr *peer,
                      unsigned connections, char *buf, size_t buf_size);
/* Give the programs started from now on stress=yes (config.h,
 * CONFIG_STRESS_VARIABLE), or not. */
void child_env_stress(int on);
/* The environment for a connection's program / for the zygote. */
char **child_environment(void);
/* keeper_fd: the TLS file keeper's socket as the zygote finds it, or -1 */
char **zygote_environment(const char *zygote_user, int keeper_fd);
/* Add a variable to the environment connection_env() made (one slot is
 * left for it). */
void child_env_append(char *variable);
void child_env_free(void);
/* Address and port of an inet socket address as text (IPv4-mapped as IPv4). */
void format_inet(const struct sockaddr *sa, char *ip, size_t ip_size, char *port,
                 size_t port_size);
/* -i: set the UCSPI variables for the TCP connection on fd (inetd and
 * systemd's Accept=yes give only the socket). */
void export_connection_env(int fd);

/* ---- spawn.c ---- */
struct accept_settings;
/* Children start with no blocked signals and default dispositions. */
void spawn_init(void);
/* Start the program on a connection; its pid, or -1 (logged). */
pid_t spawn_program(const struct accept_settings *settings, const struct listener *l,
                    int conn, const struct sockaddr *peer, unsigned connections);
/* -z: start the zygote; pass it a connection (0, or -1 logged); the client
 * of the oldest connection it has not answered (its descriptor closed); how
 * many it has not. */
void zygote_start(const struct accept_settings *settings);
int zygote_pass(const struct listener *l, int conn, const struct sockaddr *peer,
                unsigned connections, struct client *client);
struct client *zygote_pending_pop(void);
/* Pass a connection straight to a child the zygote forked ahead, which
 * is counted as the client's at once; a copy of the connection is kept
 * until the child's end: 0, or -1 when none is waiting. */
int zygote_hand_out(const struct listener *l, int conn, const struct sockaddr *peer,
                    unsigned connections, struct client *client);
/* The zygote's reports about its children forked ahead and its keeper. */
void zygote_child_ready(pid_t pid, int32_t generation, int fd);
void zygote_retire(int32_t generation, int answering_reload);
/* A child the zygote reaped: 1 when it was still waiting (forgotten now). */
int zygote_child_gone(pid_t pid);
void zygote_keeper(int fd);
/* A child handed a connection has ended: 1 with our copy of its
 * connection in *out (the caller serves it again or closes it), 0 when
 * pid was not handed one. */
struct pending_connection;
int zygote_handed_end(pid_t pid, struct pending_connection *out);
/* Ask the zygote to reload, in the stream of connections; 0, or -1. */
int zygote_reload(void);
size_t zygote_ready_count(void);
size_t zygote_pending(void);
/* A connection passed to the zygote and not yet answered: our own
 * descriptor of it (listener NULL: /dev/null, nothing to serve again). */
struct pending_connection {
    struct client *client;
    int fd;
    const struct listener *listener;
    struct sockaddr_storage peer;
    unsigned count;
    int served_again;           /* times served again after a child died */
};
/* The connection passed on next has been served again this many times. */
void zygote_next_served_again(int times);
/* The oldest of them, taken out of the list (the caller closes its fd);
 * 0 when there is none. */
int zygote_pending_take(struct pending_connection *out);
/* The zygote has ended: forget it (zygote_start() makes a new one); the
 * connections it did not answer are still to be taken. */
void zygote_lost(void);
int zygote_descriptor(void);            /* -1 without -z, or while there is none */
pid_t zygote_process(void);
void spawn_free(void);

/* ---- serve.c ---- */
struct accept_settings {
    const char *service;            /* "smtp": for log lines */
    const char *myhostname;         /* for the 421 reply */
    size_t process_limit;
    unsigned count_limit;           /* 0 = none */
    unsigned rate_limit;            /* 0 = none */
    time_t rate_unit;               /* seconds */
    struct addrmatch *exceptions;   /* clients not limited (may be NULL) */
    char *program;                  /* resolved path of argv[0] (owned) */
    char **argv;                    /* the program's argv */
    int zygote;                     /* -z: start the program once, fork it per connection */
    const char *zygote_user;        /* -z -u: "uid:gid" the zygote drops to itself */
};
/* Load the settings from the configuration (at start and on SIGHUP). */
void settings_load(struct accept_settings *settings, long process_limit_option);
/* Serve until SIGTERM; returns the exit code. */
int serve(struct listeners *listeners, struct accept_settings *settings,
          long process_limit_option);

#endif
