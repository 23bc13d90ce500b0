/* privdrop.c - give up root for good (privdrop.h). */
#include <grp.h>
#include <unistd.h>

#include "log.h"
#include "privdrop.h"

void privileges_drop(uid_t uid, gid_t gid, const char *who)
{
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
        msg_fatal("privileges were not dropped to %s (uid %ld gid %ld)", who, (long)uid, (long)gid);
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0))
        msg_fatal("could regain root after dropping to %s", who);
}
