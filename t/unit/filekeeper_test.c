/* filekeeper_test.c - unit tests for lib/util/filekeeper.c: the keeper
 * opens again, for a process that gave root up, exactly the files it was
 * given, and nothing else, and only through directories nobody else can
 * write in (a symbolic link swapped in by smtpd's user is refused).  Run
 * by t/99-filekeeper.t (as root: the files are root's, mode 0600, and the
 * test drops to nobody's ids, 65534, smtpd's user here). */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "filekeeper.h"
#include "privdrop.h"
#include "strbuf.h"
#include "tap.h"

static const char *tempdir;    /* argv[1]: the caller makes and removes it */

/* A root-only file in the temporary directory; its path (malloc'ed). */
static char *root_file(const char *name, const char *text)
{
    char *path = malloc(512);
    snprintf(path, 512, "%s/%s", tempdir, name);
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0 || write(fd, text, strlen(text)) != (ssize_t)strlen(text) || close(fd) != 0) {
        perror(path);
        exit(254);
    }
    return path;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: filekeeper_test TEMPDIR\n");
        return 254;
    }
    tempdir = argv[1];
    if (geteuid() != 0) {
        ok(0, "run as root (the files are root's and the test drops privileges)");
        return tap_done();
    }
    char *key = root_file("key.pem", "the key\n");
    char *other = root_file("other.pem", "not listed\n");
    char dir[600];
    snprintf(dir, sizeof dir, "%s/sub", tempdir);
    mkdir(dir, 0700);
    /* certbot's layout: live/NAME a root-owned link into a root-owned
     * directory; and a directory smtpd's user owns, holding a root-only
     * key, and a root-owned link into it */
    char live[600], live_cert[700], via[700], untrusted[600], untrusted_key[700];
    snprintf(live, sizeof live, "%s/live", tempdir);
    snprintf(live_cert, sizeof live_cert, "%s/cert.pem", live);
    snprintf(via, sizeof via, "%s/via.pem", live);
    snprintf(untrusted, sizeof untrusted, "%s/untrusted", tempdir);
    snprintf(untrusted_key, sizeof untrusted_key, "%s/key.pem", untrusted);
    ok(mkdir(live, 0755) == 0 && symlink("../key.pem", live_cert) == 0
       && symlink("../untrusted/key.pem", via) == 0, "live/cert.pem and live/via.pem: root's links");
    ok(mkdir(untrusted, 0755) == 0, "untrusted/");
    free(root_file("untrusted/key.pem", "the key\n"));
    ok(chown(untrusted, 65534, 65534) == 0, "untrusted/ belongs to smtpd's user (65534)");
    const char *listed[] = {key, dir, live_cert, via, untrusted_key};
    ok(filekeeper_start(listed, 5) == 0, "the keeper starts");
    pid_t keeper = filekeeper_pid();
    ok(keeper > 0, "it has a pid");

    struct strbuf err = STRBUF_INIT;
    gid_t nogroup = 65534;
    ok(privileges_drop(65534, 65534, &nogroup, 1, &err) == 0, "we drop to 65534");
    ok(open(key, O_RDONLY) < 0 && errno == EACCES, "we cannot open the key ourselves");

    char *data = NULL;
    size_t len = 0;
    ok(filekeeper_read(key, 4096, &data, &len) == 0 && len == 8 && strcmp(data, "the key\n") == 0,
       "the keeper opens the listed key for us");
    free(data);
    ok(filekeeper_read(key, 4, &data, &len) < 0 && errno == EFBIG, "a file over the limit: EFBIG");
    errno = 0;
    ok(filekeeper_open(other) < 0 && errno == EPERM, "a root-only file not listed: EPERM");
    char trick[700];
    snprintf(trick, sizeof trick, "%s/../%s/key.pem", tempdir, strrchr(tempdir, '/') + 1);
    errno = 0;
    ok(filekeeper_open(trick) < 0 && errno == EPERM, "the same file by another name: EPERM");
    errno = 0;
    ok(filekeeper_open("/etc/shadow") < 0 && errno == EPERM, "/etc/shadow: EPERM");
    errno = 0;
    ok(filekeeper_open(dir) < 0 && errno == EINVAL, "a listed directory is not opened: EINVAL");
    /* a path with a NUL inside, as the keeper receives it: a prefix must
     * not match */
    char with_nul[600];
    size_t klen = strlen(key);
    memcpy(with_nul, key, klen + 1);
    with_nul[klen] = 'x';
    with_nul[klen + 1] = '\0';
    errno = 0;
    ok(filekeeper_open(with_nul) < 0 && errno == EPERM, "a longer path that starts with the listed one: EPERM");

    /* paths through links and directories */
    ok(filekeeper_read(live_cert, 4096, &data, &len) == 0 && strcmp(data, "the key\n") == 0,
       "a listed root-owned link in a root-owned directory is followed (certbot's live/)");
    free(data);
    data = NULL;
    errno = 0;
    ok(filekeeper_open(untrusted_key) < 0 && errno == EPERM,
       "a listed key in a directory smtpd's user can write in: EPERM");
    ok(unlink(untrusted_key) == 0 && symlink(other, untrusted_key) == 0,
       "smtpd's user swaps that name for a link to a root-only file that is not listed");
    errno = 0;
    int swapped = filekeeper_read(untrusted_key, 4096, &data, &len);
    ok(swapped < 0 && errno == EPERM, "the swapped link is refused (EPERM), the other file stays unread");
    if (swapped == 0)
        diag("read through the swapped link", data);
    free(data);
    data = NULL;
    errno = 0;
    ok(filekeeper_open(via) < 0 && errno == EPERM,
       "a root-owned link whose target lies in that directory: EPERM");

    /* a zygote postern-accept starts after a crash takes the first one's
     * keeper from FILEKEEPER_FD_VARIABLE (postern-accept's copy of our end) */
    int copy = fcntl(filekeeper_descriptor(), F_DUPFD_CLOEXEC, 10);
    ok(copy >= 10, "a copy of our end of the keeper's socket (postern-accept's)");
    filekeeper_forget();
    char value[16];
    snprintf(value, sizeof value, "%d", copy);
    setenv(FILEKEEPER_FD_VARIABLE, value, 1);
    filekeeper_inherit();
    ok(getenv(FILEKEEPER_FD_VARIABLE) == NULL, "inheriting takes the variable out");
    ok(filekeeper_descriptor() == copy, "the inherited socket is our end now");
    data = NULL;
    ok(filekeeper_read(key, 4096, &data, &len) == 0 && len == 8 && strcmp(data, "the key\n") == 0,
       "the inherited keeper opens the listed key (we are not root)");
    free(data);
    errno = 0;
    ok(filekeeper_open(other) < 0 && errno == EPERM, "and still nothing else: EPERM");
    setenv(FILEKEEPER_FD_VARIABLE, "1", 1);
    filekeeper_inherit();
    ok(filekeeper_descriptor() == copy && getenv(FILEKEEPER_FD_VARIABLE) == NULL,
       "a second variable (not a keeper's socket) changes nothing");

    /* the keeper ends when its socket closes */
    filekeeper_forget();
    int gone = 0;
    for (int i = 0; i < 200 && !gone; i++) {
        gone = kill(keeper, 0) < 0 || waitpid(keeper, NULL, WNOHANG) == keeper;
        usleep(10000);
    }
    ok(gone, "the keeper ends when our end closes");
    errno = 0;
    ok(filekeeper_open(key) < 0 && errno == EACCES, "without it, the key is out of reach again");
    strbuf_free(&err);
    free(key);
    free(other);
    return tap_done();
}
