/* local.h - what the parts of postern-local share: the configuration read
 * once per process, the state of one recipient's delivery, and the
 * functions of each part (main.c: the recipient's path and the mailbox;
 * expand.c: alias, .forward and :include: entries; command.c: running a
 * command as a user).  See doc/postern-local.8.
 */
#ifndef POSTERN_LOCAL_H
#define POSTERN_LOCAL_H

#include <sys/types.h>

#include "mailbox.h"
#include "map.h"
#include "outcome.h"
#include "runner.h"
#include "strbuf.h"
#include "strlist.h"
#include "unixuser.h"

/* Where an entry came from: allow_mail_to_commands and allow_mail_to_files
 * name these classes (Postfix's "alias, forward, include"). */
#define CLASS_ALIAS     0x1
#define CLASS_FORWARD   0x2
#define CLASS_INCLUDE   0x4

/* Where prepend_delivered_header adds Delivered-To (a mailbox always has it). */
#define PREPEND_COMMAND 0x1
#define PREPEND_FILE    0x2
#define PREPEND_FORWARD 0x4

/* The deepest nesting of :include: files. */
#define LOCAL_MAX_DEPTH 20

/* What the configuration says, read once per process. */
struct local_setup {
    struct maplist *alias_maps;     /* alias_maps */
    struct maplist *passwd;         /* proxy:unix:passwd.byname */
    struct maplist *mailbox_transport_maps;
    struct maplist *mailbox_command_maps;   /* by user name: a command, as mailbox_command */
    struct maplist *fallback_transport_maps;
    const char *mailbox_transport;  /* transport[:nexthop], or "" */
    const char *fallback_transport;
    const char *delimiters;         /* recipient_delimiter */
    const char *home_mailbox;
    const char *spool;              /* mail_spool_directory */
    const char *mailbox_command;    /* raw: $home, $user, ... are ours */
    const char *forward_path;       /* raw */
    const char *luser_relay;        /* raw */
    const char *command_shell;      /* local_command_shell */
    const char *exec_directory;     /* command_execution_directory, raw */
    const char *myorigin;
    const char *default_privs;
    unsigned allow_commands;        /* CLASS_* */
    unsigned allow_files;           /* CLASS_* */
    unsigned prepend;               /* PREPEND_* */
    int expand_owner_alias;
    int owner_request_special;
    long long command_time_limit;   /* seconds */
    off_t mailbox_limit;            /* mailbox_size_limit (0: none) */
    int biff;                       /* biff: a notice to comsat after an mbox delivery */
    struct strlist export_env;      /* export_environment */
    struct mbox_options mbox;
    int privileged;                 /* running as root: switch to the user */
    int broken;                     /* a configuration error: defer everything */
};

/* The ids files and commands of one entry are written and run with. */
struct local_privs {
    uid_t uid;
    gid_t gid;
    const struct unix_user *user;  /* HOME, USER, ... for commands; may be NULL */
};

/* One recipient's delivery. */
struct local_delivery {
    struct local_setup *setup;
    struct runner_request *req;
    size_t index;
    char *address;          /* the recipient, folded to lower case */
    char *local;            /* its local part */
    char *domain;           /* its domain ("" when none) */
    char *user;             /* the local part without the extension */
    char *extension;        /* "" when none */
    char delimiter[2];      /* the delimiter that split it, or "" */
    const char *orig;       /* X-Original-To */
    char *alias;            /* the alias being expanded (self-references), or NULL */
    struct strlist forward; /* addresses to forward to */
    char *forward_sender;   /* the sender of the forwarded copy (owner- alias) */
    struct strlist handover;        /* "transport:nexthop" mailbox parts go to */
    struct strlist handover_address;    /* each one's address ("": the recipient) */
    const char *handover_setting;   /* the parameter that chose the first */
    /* the combined result: the worst outcome of all destinations */
    enum outcome worst;
    char dsn[16];
    struct strbuf text;
};

/* main.c */
/* Add one destination's result to the recipient's (the worst wins;
 * deferred over bounced over sent). */
void local_result(struct local_delivery *d, const char *dsn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Look a user up in the passwd database: MAP_FOUND (pw filled), MAP_NOTFOUND
 * or MAP_RETRY. */
int local_user_lookup(struct local_setup *setup, const char *name, struct unix_user *pw);
/* The ids for the commands and files of a user's .forward and
 * mailbox_command: the user's, but default_privs for root (Postfix: "command
 * delivery for root executes with $default_privs privileges"); `holder`
 * keeps the default_privs user (free it).  0, or -1 with the deferral
 * recorded. */
int local_user_privs(struct local_delivery *d, const struct unix_user *pw,
                     struct unix_user *holder, struct local_privs *privs);
/* The default_privs user's ids in privs (never root); 0, or -1 with the
 * deferral recorded. */
int local_default_privs(struct local_delivery *d, struct unix_user *owner,
                        struct local_privs *privs);
/* Hand the recipient's mailbox delivery over to mailbox_transport_maps or
 * mailbox_transport (1: handed over, or deferred on a table failure; 0:
 * neither is set for it).  Postfix does so whether or not the user is in
 * the passwd database. */
int local_mailbox_transport(struct local_delivery *d, const char *user);
/* Deliver to a user's mailbox (mailbox_transport, mailbox_command,
 * home_mailbox or the spool) after the checks that the user may be
 * delivered to here. */
void local_mailbox(struct local_delivery *d, const struct unix_user *pw);
/* The message as a mail_source for this recipient; delivered_to is set
 * when `prepend` (PREPEND_*) is in prepend_delivered_header (always when 0). */
void local_source(struct local_delivery *d, unsigned prepend, struct mail_source *src);
/* Expand $name, ${name}, ${name?text}, ${name:text} with the delivery's
 * attributes (user, home, shell, extension, recipient_delimiter, local,
 * domain, recipient, sender; other $names stay as written, for the shell);
 * with a filter (command_expansion_filter, forward_expansion_filter), each
 * character of a value that is not in it becomes '_', as in Postfix, so
 * that an address cannot put shell syntax into a command; 0, or -1 with
 * err set. */
int local_expand(struct local_delivery *d, const struct unix_user *pw, const char *text,
                 const char *filter, struct strbuf *out, struct strbuf *err);

/* expand.c */
/* Deliver to every entry of an alias value, a .forward or an :include:
 * file, of class `klass`, with files and commands as `privs`. */
void local_expand_entries(struct local_delivery *d, const char *text, unsigned klass,
                          const struct local_privs *privs, int depth);
/* Deliver to the first .forward file of forward_path that exists; 1 when
 * one did (the mailbox is then only written on a self-reference). */
int local_forward_file(struct local_delivery *d, const struct unix_user *pw);
/* Forward the message to the collected addresses (one new message). */
void local_forward_send(struct local_delivery *d);
/* Write the message to a file (mbox; a Maildir when it ends in '/') as privs. */
void local_file(struct local_delivery *d, const char *path, const struct local_privs *privs,
                unsigned prepend, const char *what);

/* command.c */
/* Run `command` with the message on its stdin as privs (permanently, in a
 * child), in the user's home, with the time limit and environment of
 * local(8), and record the result as "delivered to command: ...". */
void local_command(struct local_delivery *d, const char *command,
                   const struct local_privs *privs, unsigned prepend);

#endif
