/* privileges.c - postern-accept gives up root once its sockets are bound:
 * the user and group by name or number, then lib/util/privdrop.h; the
 * ids alone for a zygote that drops them itself (zygote.h). */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accept.h"
#include "log.h"
#include "privdrop.h"
#include "strbuf.h"
#include "xalloc.h"

/* A group by name or number. */
static gid_t lookup_group(const char *name)
{
    struct group *gr = getgrnam(name);
    if (gr)
        return gr->gr_gid;
    char *end;
    errno = 0;
    unsigned long id = strtoul(name, &end, 10);
    if (*name && !*end && !errno)
        return (gid_t)id;
    msg_fatal("unknown group: %s", name);
}

void user_ids(const char *user_spec, uid_t *uid, gid_t *gid)
{
    char *user = xstrdup(user_spec);
    char *group = strchr(user, ':');
    if (group)
        *group++ = '\0';
    struct passwd *pw = getpwnam(user);
    if (!pw)
        msg_fatal("unknown user: %s", user);
    *uid = pw->pw_uid;
    *gid = group ? lookup_group(group) : pw->pw_gid;
    free(user);
}

void drop_privileges(const char *user_spec)
{
    uid_t uid;
    gid_t gid;
    user_ids(user_spec, &uid, &gid);
    struct strbuf err = STRBUF_INIT;
    if (privileges_drop(uid, gid, &gid, 1, &err) < 0)
        msg_fatal("drop to %s: %s", user_spec, strbuf_str(&err));
    strbuf_free(&err);
}
