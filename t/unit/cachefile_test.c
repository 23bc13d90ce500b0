/* cachefile_test.c - lib/util/cachefile.c: values kept until they expire,
 * replaced, deleted; a file of another owner or readable by others is
 * refused; the entry count stays bounded (the soonest to expire go);
 * processes writing at once lose no entry of each other's. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cachefile.h"
#include "tap.h"

int main(void)
{
    char dir[] = "/tmp/cachefile-XXXXXX";
    if (!mkdtemp(dir))
        return 1;
    char path[300];
    snprintf(path, sizeof path, "%s/scache", dir);
    struct strbuf v = STRBUF_INIT;

    is_int(cachefile_get(path, "k1", 1000, &v), 0, "an empty cache has nothing");
    struct stat st;
    ok(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600, "the file is made 0600");
    is_int(cachefile_put(path, "k1", "\x00\x01secret", 8, 2000, 1000), 0, "a value is stored");
    is_int(cachefile_get(path, "k1", 1500, &v), 1, "and found before it expires");
    ok(v.len == 8 && memcmp(v.s, "\x00\x01secret", 8) == 0, "with its bytes (a NUL among them)");
    is_int(cachefile_get(path, "k1", 2000, &v), 0, "not at its expiry time");
    is_int(cachefile_get(path, "k2", 1500, &v), 0, "another key: nothing");
    cachefile_put(path, "k1", "new", 3, 3000, 1000);
    is_int(cachefile_get(path, "k1", 2500, &v), 1, "a second put replaces the value");
    ok(v.len == 3 && memcmp(v.s, "new", 3) == 0, "... with the new bytes");
    cachefile_put(path, "k2", "two", 3, 3000, 1000);
    is_int(cachefile_delete(path, "k1", 1000), 0, "delete");
    is_int(cachefile_get(path, "k1", 1500, &v), 0, "a deleted key is gone");
    is_int(cachefile_get(path, "k2", 1500, &v), 1, "the other stays");
    errno = 0;
    is_int(cachefile_put(path, "a key", "x", 1, 3000, 1000), -1, "a key with a space is refused");
    is_int(cachefile_put(path, "k3", "x", 1, 900, 1000), -1, "a value that has already expired is refused");

    /* a torn last line and a garbled line read as fewer entries */
    int fd = open(path, O_WRONLY | O_APPEND);
    ok(fd >= 0 && write(fd, "junk line\n4000 k4 6", 19) == 19, "garbage appended");
    close(fd);
    is_int(cachefile_get(path, "k2", 1500, &v), 1, "the entries before it are still read");
    is_int(cachefile_get(path, "k4", 1500, &v), 0, "a torn line is no entry");
    cachefile_put(path, "k5", "five", 4, 3000, 1000);
    is_int(cachefile_get(path, "k5", 1500, &v), 1, "a put after garbage works");
    is_int(cachefile_get(path, "k2", 1500, &v), 1, "and keeps the good entries");
    fd = open(path, O_WRONLY | O_APPEND);
    ok(fd >= 0 && write(fd, "\n4000 k6 00\n", 13) == 13, "an empty line before a good one");
    close(fd);
    is_int(cachefile_get(path, "k6", 1500, &v), 1, "the good line after an empty one is read, and only it");

    /* bounded: the soonest to expire give way */
    for (int i = 0; i < CACHEFILE_MAX_ENTRIES + 20; i++) {
        char key[32];
        snprintf(key, sizeof key, "n%d", i);
        cachefile_put(path, key, "v", 1, 5000 + i, 1000);
    }
    int found = 0;
    for (int i = 0; i < CACHEFILE_MAX_ENTRIES + 20; i++) {
        char key[32];
        snprintf(key, sizeof key, "n%d", i);
        found += cachefile_get(path, key, 1000, &v) == 1;
    }
    is_int(found, CACHEFILE_MAX_ENTRIES, "never more than CACHEFILE_MAX_ENTRIES entries");
    is_int(cachefile_get(path, "n0", 1000, &v), 0, "the soonest to expire went first");
    char last[32];
    snprintf(last, sizeof last, "n%d", CACHEFILE_MAX_ENTRIES + 19);
    is_int(cachefile_get(path, last, 1000, &v), 1, "the newest is there");

    /* concurrent writers */
    char cpath[300];
    snprintf(cpath, sizeof cpath, "%s/concurrent", dir);
    for (int p = 0; p < 4; p++) {
        if (fork() == 0) {
            for (int i = 0; i < 50; i++) {
                char key[32];
                snprintf(key, sizeof key, "p%d-%d", p, i);
                if (cachefile_put(cpath, key, key, strlen(key), 9000, 1000) != 0)
                    _exit(1);
            }
            _exit(0);
        }
    }
    int failures = 0, status;
    while (wait(&status) > 0)
        failures += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    is_int(failures, 0, "four processes write 50 entries each");
    found = 0;
    for (int p = 0; p < 4; p++)
        for (int i = 0; i < 50; i++) {
            char key[32];
            snprintf(key, sizeof key, "p%d-%d", p, i);
            found += cachefile_get(cpath, key, 1000, &v) == 1 && v.len == strlen(key)
                     && memcmp(v.s, key, v.len) == 0;
        }
    is_int(found, 200, "all 200 are there: the lock lost none");

    /* refused files */
    chmod(path, 0644);
    errno = 0;
    ok(cachefile_get(path, "k2", 1500, &v) == -1 && errno == EPERM, "a file others may read is refused");
    chmod(path, 0600);
    char link_path[320];
    snprintf(link_path, sizeof link_path, "%s/link", dir);
    ok(symlink(path, link_path) == 0 && cachefile_get(link_path, "k2", 1500, &v) == -1,
       "a symbolic link is not followed");
    if (geteuid() == 0) {
        ok(chown(path, 65534, 65534) == 0, "the file given to nobody");
        errno = 0;
        ok(cachefile_get(path, "k2", 1500, &v) == -1 && errno == EPERM, "a file of another owner is refused");
    }
    strbuf_free(&v);
    unlink(link_path);
    unlink(path);
    unlink(cpath);
    rmdir(dir);
    return tap_done();
}
