/* unixuser.c - users and groups through tables (unixuser.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"
#include "unixuser.h"
#include "xalloc.h"

void unix_user_free(struct unix_user *pw)
{
    free(pw->name);
    free(pw->home);
    free(pw->shell);
    memset(pw, 0, sizeof *pw);
}

/* A decimal id; 0, or -1 when text is none. */
static int parse_id(const char *text, unsigned long *id)
{
    char *end;
    errno = 0;
    *id = strtoul(text, &end, 10);
    /* (uid_t)-1 means "no change" to setuid(2) and chown(2): never an id */
    return errno || *end || end == text || *text == '-' || *id >= (unsigned long)(uid_t)-1 ? -1
                                                                                          : 0;
}

/* Split a line of `fields` colon-separated fields in place; 0 or -1. */
static int split_fields(char *line, char **field, int fields)
{
    for (int i = 0; i < fields; i++) {
        field[i] = line;
        char *colon = strchr(line, ':');
        if (i < fields - 1) {
            if (!colon)
                return -1;
            *colon = 0;
            line = colon + 1;
        }
    }
    return 0;
}

/* Split a passwd(5) line into pw; 0, or -1 when it is malformed. */
static int parse_passwd(const char *line, struct unix_user *pw)
{
    char *copy = xstrdup(line), *field[7];
    unsigned long uid, gid;
    int bad = split_fields(copy, field, 7) != 0 || parse_id(field[2], &uid) != 0
              || parse_id(field[3], &gid) != 0 || field[5][0] != '/';
    if (!bad) {
        pw->name = xstrdup(field[0]);
        pw->uid = (uid_t)uid;
        pw->gid = (gid_t)gid;
        pw->home = xstrdup(field[5]);
        pw->shell = xstrdup(field[6]);
    }
    free(copy);
    return bad ? -1 : 0;
}

/* Warn about a malformed entry of table for name. */
static void malformed(const char *table, const char *name)
{
    struct strbuf shown = STRBUF_INIT;
    msg_warn("%s: malformed entry for %s", table, log_printable(&shown, name, 100));
    strbuf_free(&shown);
}

int unix_user_lookup(struct maplist *passwd, const char *name, struct unix_user *pw)
{
    struct strbuf value = STRBUF_INIT;
    memset(pw, 0, sizeof *pw);
    int r = maplist_lookup(passwd, name, &value);
    if (r == MAP_FOUND && parse_passwd(value.s, pw) != 0) {
        malformed(UNIX_PASSWD_TABLE, name);
        r = MAP_RETRY;
    }
    strbuf_free(&value);
    return r;
}

int unix_group_lookup(struct maplist *group, const char *name, gid_t *gid)
{
    struct strbuf value = STRBUF_INIT;
    int r = maplist_lookup(group, name, &value);
    if (r == MAP_FOUND) {
        char *field[4];
        unsigned long id;
        if (split_fields(value.s, field, 4) != 0 || parse_id(field[2], &id) != 0) {
            malformed(UNIX_GROUP_TABLE, name);
            r = MAP_RETRY;
        } else {
            *gid = (gid_t)id;
        }
    }
    strbuf_free(&value);
    return r;
}
