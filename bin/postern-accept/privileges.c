/* privileges.c - postern-accept gives up root once its sockets are bound,
 * in OpenSMTPD's order: setgroups, setresgid, setresuid, then verify. */
#include <errno.h>
#include <grp.h>
#include <pwd.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "accept.h"
#include "log.h"
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

void drop_privileges(const char *user_spec)
{
    char *user = xstrdup(user_spec);
    char *group = strchr(user, ':');
    if (group)
        *group++ = '\0';
    struct passwd *pw = getpwnam(user);
    if (!pw)
        msg_fatal("unknown user: %s", user);
    uid_t uid = pw->pw_uid;
    gid_t gid = group ? lookup_group(group) : pw->pw_gid;
    if (setgroups(1, &gid) < 0)
        msg_fatal_errno("setgroups %ld", (long)gid);
    if (setresgid(gid, gid, gid) < 0)
        msg_fatal_errno("setresgid %ld", (long)gid);
    if (setresuid(uid, uid, uid) < 0)
        msg_fatal_errno("setresuid %ld", (long)uid);
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0)
        msg_fatal_errno("getresuid");
    if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid)
        msg_fatal("privileges were not dropped to %s (uid %ld gid %ld)", user_spec,
                  (long)uid, (long)gid);
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        msg_fatal("could regain root after dropping to %s", user_spec);
    free(user);
}
