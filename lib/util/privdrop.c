/* privdrop.c - give up root for good (privdrop.h). */
#include <errno.h>
#include <grp.h>
#include <string.h>
#include <unistd.h>

#include "privdrop.h"
#include "strbuf.h"

int privileges_drop(uid_t uid, gid_t gid, const gid_t *groups, size_t group_count,
                    struct strbuf *err)
{
    if (setgroups(group_count, group_count ? groups : NULL) < 0) {
        strbuf_printf(err, "setgroups: %s", strerror(errno));
        return -1;
    }
    if (setresgid(gid, gid, gid) < 0) {
        strbuf_printf(err, "setresgid %ld: %s", (long)gid, strerror(errno));
        return -1;
    }
    if (setresuid(uid, uid, uid) < 0) {
        strbuf_printf(err, "setresuid %ld: %s", (long)uid, strerror(errno));
        return -1;
    }
    uid_t ruid, euid, suid;
    gid_t rgid, egid, sgid;
    if (getresuid(&ruid, &euid, &suid) < 0 || getresgid(&rgid, &egid, &sgid) < 0) {
        strbuf_printf(err, "getresuid: %s", strerror(errno));
        return -1;
    }
    if (ruid != uid || euid != uid || suid != uid || rgid != gid || egid != gid || sgid != gid) {
        strbuf_printf(err, "privileges were not dropped to uid %ld gid %ld", (long)uid, (long)gid);
        return -1;
    }
    if (uid != 0 && (setuid(0) == 0 || seteuid(0) == 0)) {
        strbuf_printf(err, "could regain root after dropping to uid %ld", (long)uid);
        return -1;
    }
    return 0;
}
