/* milter_local.h - non_smtpd_milters: a local submission (sendmail(1))
 * told to the milters as Postfix's cleanup tells them (milter_local.c),
 * after rewrite and before the queue. */
#ifndef POSTERN_MILTER_LOCAL_H
#define POSTERN_MILTER_LOCAL_H

#include "envelope.h"
#include "milter_client.h"
#include "rewrite.h"
#include "strbuf.h"

/* The rewritten message on fd (seekable, from offset 0) and its envelope
 * through non_smtpd_milters: a fake connection from localhost[127.0.0.1],
 * HELO localhost, MAIL, RCPT for each recipient, DATA, the header and
 * body.  Returns 0 to go on (env changed, the message to write is msg:
 * milter_message_write, then milter_message_free; a DISCARD or HOLD is
 * an attribute of env), or 4 or 5 with `reply` set ("550 5.7.1 text",
 * "451 4.7.1 text") when a milter refused it, logged as Postfix logs
 * "milter-reject".  cfg gives milter_header_checks. */
int milter_local_run(int fd, struct envelope *env, const struct rewrite_config *cfg,
                     struct milter_message *msg, struct strbuf *reply);

#endif
