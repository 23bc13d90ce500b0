/* unixuser.h - a user or group of the system's databases as delivery
 * agents see them: through tables (proxy:unix:passwd.byname and
 * proxy:unix:group.byname, answered by the lookup service), never through
 * NSS, which a static runner must not call.  postern-local (recipients,
 * default_privs) and postern-pipe (user=) use it. */
#ifndef POSTERN_UNIXUSER_H
#define POSTERN_UNIXUSER_H

#include <sys/types.h>

struct maplist;

#define UNIX_PASSWD_TABLE "proxy:unix:passwd.byname"
#define UNIX_GROUP_TABLE  "proxy:unix:group.byname"

struct unix_user {
    char *name;
    uid_t uid;
    gid_t gid;
    char *home;
    char *shell;
};

/* Look a user up in a passwd table: MAP_FOUND (pw filled; free it),
 * MAP_NOTFOUND or MAP_RETRY (also for a malformed entry, logged). */
int unix_user_lookup(struct maplist *passwd, const char *name, struct unix_user *pw);
void unix_user_free(struct unix_user *pw);
/* Look a group's id up in a group table: MAP_FOUND, MAP_NOTFOUND or
 * MAP_RETRY. */
int unix_group_lookup(struct maplist *group, const char *name, gid_t *gid);

#endif
