/* privdrop.h - give up root for good, in OpenSMTPD's order: setgroups to
 * the one group, setresgid, setresuid, then verify that all three ids
 * changed and that root cannot be regained.  Numeric ids only: the name
 * service is the caller's business (static programs must not use it). */
#ifndef POSTERN_PRIVDROP_H
#define POSTERN_PRIVDROP_H

#include <sys/types.h>

/* Become uid:gid or end the program (msg_fatal); `who` names the target
 * in the error ("postern-smtpd", "uid 101"). */
void privileges_drop(uid_t uid, gid_t gid, const char *who);

#endif
