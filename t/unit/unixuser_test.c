/* unixuser_test.c - unit test of lib/mail/unixuser.c: passwd(5) and
 * group(5) lines read through a table, with the ids setuid(2) and
 * chown(2) cannot take ((uid_t)-1 means "no change" there) refused as
 * malformed entries, never handed to a runner as a user. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "log.h"
#include "map.h"
#include "strbuf.h"
#include "tap.h"
#include "unixuser.h"

static char dir[] = "/tmp/postern-unixuser-XXXXXX";
static char file[128];

int main(void)
{
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        return 1;
    }
    snprintf(file, sizeof file, "%s/passwd", dir);
    FILE *f = fopen(file, "w");
    if (!f || fputs("alice alice:x:1001:1002:Alice:/home/alice:/bin/sh\n"
                    "big big:x:4294967294:100::/home/big:/bin/sh\n"
                    "minus1 minus1:x:4294967295:100::/home/m:/bin/sh\n"
                    "gminus1 gminus1:x:1003:4294967295::/home/g:/bin/sh\n"
                    "huge huge:x:18446744073709551616:100::/home/h:/bin/sh\n"
                    "neg neg:x:-5:100::/home/n:/bin/sh\n"
                    "grp grp:x:1004:\n"
                    "grpbad grpbad:x:4294967295:\n", f) < 0 || fclose(f) != 0) {
        perror(file);
        return 1;
    }
    char spec[160];
    snprintf(spec, sizeof spec, "texthash:%s", file);
    struct strbuf err = STRBUF_INIT;
    struct maplist *table = maplist_open(spec, &err);
    ok(table != NULL, "the table opens");
    if (!table)
        return tap_done();
    struct unix_user pw;
    ok(unix_user_lookup(table, "alice", &pw) == MAP_FOUND && pw.uid == 1001 && pw.gid == 1002
           && strcmp(pw.home, "/home/alice") == 0,
       "a passwd line gives uid, gid and home");
    unix_user_free(&pw);
    ok(unix_user_lookup(table, "big", &pw) == MAP_FOUND && pw.uid == 4294967294u,
       "uid 2^32-2 is a user");
    unix_user_free(&pw);
    ok(unix_user_lookup(table, "minus1", &pw) == MAP_RETRY, "uid 2^32-1 ((uid_t)-1) is malformed");
    ok(unix_user_lookup(table, "gminus1", &pw) == MAP_RETRY, "gid 2^32-1 is malformed");
    ok(unix_user_lookup(table, "huge", &pw) == MAP_RETRY, "a uid past 2^64 is malformed");
    ok(unix_user_lookup(table, "neg", &pw) == MAP_RETRY, "a negative uid is malformed");
    ok(unix_user_lookup(table, "nobody-here", &pw) == MAP_NOTFOUND, "an unknown user is not found");
    gid_t gid = 0;
    ok(unix_group_lookup(table, "grp", &gid) == MAP_FOUND && gid == 1004, "a group line gives its gid");
    ok(unix_group_lookup(table, "grpbad", &gid) == MAP_RETRY, "gid 2^32-1 in a group line is malformed");
    maplist_close(table);
    strbuf_free(&err);
    unlink(file);
    rmdir(dir);
    return tap_done();
}
