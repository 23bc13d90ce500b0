/* privdrop.h - give up root for good, in one fixed order (STYLE.md, habit
 * 12; OpenSMTPD's): supplementary groups, then the group, then the user,
 * then a check that all three ids changed and that root cannot be
 * regained.  Names are looked up by the caller (a static program must not
 * call NSS). */
#ifndef POSTERN_PRIVDROP_H
#define POSTERN_PRIVDROP_H

#include <stddef.h>
#include <sys/types.h>

struct strbuf;

/* Become uid/gid with exactly these supplementary groups (none when
 * group_count is 0).  0, or -1 with the reason in err. */
int privileges_drop(uid_t uid, gid_t gid, const gid_t *groups, size_t group_count,
                    struct strbuf *err);

#endif
