/* pipe.h - what the parts of postern-pipe share (postern-pipe(8)): the
 * service's attributes from its master.cf entry (service.c), the argv
 * built from them for a request without a shell (argv.c), and the
 * message as the command reads it (message.c); main.c runs it. */
#ifndef POSTERN_PIPE_H
#define POSTERN_PIPE_H

#include <sys/types.h>

#include "runner.h"
#include "strbuf.h"
#include "strlist.h"

/* Postfix's pipe(8) flags. */
#define PIPE_FLAG_BLANK     0x001   /* B: a blank line after the message */
#define PIPE_FLAG_DELIVERED 0x002   /* D: Delivered-To: (and the loop check) */
#define PIPE_FLAG_FROM      0x004   /* F: the mbox From_ line */
#define PIPE_FLAG_ORIG      0x008   /* O: X-Original-To: */
#define PIPE_FLAG_RETURN    0x010   /* R: Return-Path: */
#define PIPE_FLAG_FINAL     0x020   /* X: final delivery */
#define PIPE_FLAG_HOST      0x040   /* h: fold the domain to lower case */
#define PIPE_FLAG_QUOTE     0x080   /* q: quote local parts (RFC 5322) */
#define PIPE_FLAG_USER      0x100   /* u: fold the local part to lower case */
#define PIPE_FLAG_DOT       0x200   /* .: dot-stuff lines starting with '.' */
#define PIPE_FLAG_ESCAPE    0x400   /* >: ">From " for lines starting "From " */

/* A pipe service, from `NAME unix - n n - - pipe ATTR... argv=COMMAND...`. */
struct pipe_service {
    char *name;
    unsigned flags;             /* PIPE_FLAG_* */
    char *user, *group;         /* user=USER[:GROUP] */
    struct strlist argv;        /* argv=, as written (macros unexpanded) */
    off_t size_limit;           /* size= (0: none) */
    struct strbuf eol;          /* eol= (default "\n") */
    char *null_sender;          /* null_sender= (default MAILER-DAEMON) */
    char *directory;            /* directory= (default: /) */
    char *delimiters;           /* recipient_delimiter, for ${user} and ${extension} */
    long long time_limit;       /* NAME_time_limit, else command_time_limit */
};

/* service.c */
/* Read the pipe service NAME from master.cf beside main.cf; 0, or -1 with
 * the reason in err (a configuration error: every delivery defers). */
int pipe_service_read(const char *name, struct pipe_service *service, struct strbuf *err);
void pipe_service_free(struct pipe_service *service);

/* argv.c */
/* Expand the service's argv for the recipients of a request: $name and
 * ${name} (and $$), an element naming a recipient macro repeated once per
 * recipient.  0, or -1 with err set (an unknown macro). */
int pipe_argv(const struct pipe_service *service, const struct runner_request *request,
              struct strlist *out, struct strbuf *err);

/* message.c */
/* Write the message as the command reads it into fd (From_,
 * Return-Path:, X-Original-To:, Delivered-To: as the flags say, then the
 * content with eol, '>' and '.' as they say).  0, or -1 with errno. */
int pipe_message(const struct pipe_service *service, const struct runner_request *request,
                 int fd);
/* Whether the message's header has Delivered-To: address (D's loop
 * check); -1 on a read error. */
int pipe_delivered_to(const struct runner_request *request, const char *address);
/* The sender as macros and headers show it (null_sender for <>). */
const char *pipe_sender(const struct pipe_service *service, const struct runner_request *request);

#endif
