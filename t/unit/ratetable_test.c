/* ratetable_test.c - lib/util/ratetable.c: counts per key and window,
 * shared by forked processes; a full table evicts the least recently
 * active key (never leaves a key uncounted); a slot just claimed and not
 * yet counted is not taken as stale; concurrent counting loses nothing. */
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "ratetable.h"
#include "tap.h"

int main(void)
{
    /* windows */
    struct ratetable *t = ratetable_new(4096, 2);
    ok(t != NULL, "a table is mapped");
    ok(ratetable_new(100, 2) == NULL, "a size that is not a power of two is refused");
    is_int(ratetable_count(t, 0, "192.0.2.1", 60, 1, 1000), 1, "the first event counts 1");
    is_int(ratetable_count(t, 0, "192.0.2.1", 60, 1, 1010), 2, "the second, in the window, 2");
    is_int(ratetable_count(t, 0, "192.0.2.1", 60, 0, 1020), 2, "a look counts nothing");
    is_int(ratetable_count(t, 1, "192.0.2.1", 60, 1, 1020), 1, "each kind of event has its count");
    is_int(ratetable_count(t, 0, "192.0.2.2", 60, 1, 1020), 1, "each key has its count");
    is_int(ratetable_count(t, 0, "192.0.2.1", 60, 0, 1060), 0, "a window older than the unit is over");
    is_int(ratetable_count(t, 0, "192.0.2.1", 60, 1, 1060), 1, "... and starts again");

    /* a full table: every slot a key may use is taken by a current key */
    struct ratetable *small = ratetable_new(8, 1);      /* one probe window */
    char key[32];
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "10.0.0.%d", i);
        ratetable_count(small, 0, key, 60, 1, (uint32_t)(2000 + i));
        ratetable_count(small, 0, key, 60, 1, (uint32_t)(2000 + i));
    }
    is_int(ratetable_count(small, 0, "10.0.1.1", 60, 1, 2010), 1, "a full table still counts a new key");
    is_int(ratetable_count(small, 0, "10.0.1.1", 60, 1, 2010), 2, "... in the slot it took");
    ok(!ratetable_holds(small, "10.0.0.0"), "... the least recently active key's");
    int kept = 0;
    for (int i = 1; i < 8; i++) {
        snprintf(key, sizeof key, "10.0.0.%d", i);
        kept += ratetable_holds(small, key);
    }
    is_int(kept, 7, "... and the others keep theirs");
    snprintf(key, sizeof key, "10.0.0.%d", 7);
    is_int(ratetable_count(small, 0, key, 60, 1, 2011), 3, "a kept key's count goes on");

    /* a slot claimed by a look, not yet counted, is not stale */
    struct ratetable *claim = ratetable_new(8, 1);
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "10.0.2.%d", i);
        ratetable_count(claim, 0, key, 10, 1, 100);
    }
    for (int i = 1; i < 8; i++) {       /* 10.0.2.0 stays stale */
        snprintf(key, sizeof key, "10.0.2.%d", i);
        ratetable_count(claim, 0, key, 10, 1, 114);
    }
    ratetable_count(claim, 0, "10.0.3.1", 10, 0, 115);  /* STARTTLS: a look */
    ok(ratetable_holds(claim, "10.0.3.1") && !ratetable_holds(claim, "10.0.2.0"),
       "a look takes the stale slot");
    ratetable_count(claim, 0, "10.0.3.2", 10, 1, 116);
    ok(ratetable_holds(claim, "10.0.3.1"), "a slot claimed a second ago, with no count, is kept");
    kept = 0;
    for (int i = 1; i < 8; i++) {
        snprintf(key, sizeof key, "10.0.2.%d", i);
        kept += ratetable_holds(claim, key);
    }
    is_int(kept, 6, "... a less recently active key is evicted instead");

    /* taken over: the last owner's window is not the new key's */
    struct ratetable *over = ratetable_new(8, 1);
    for (int i = 0; i < 8; i++) {
        snprintf(key, sizeof key, "10.0.4.%d", i);
        for (int n = 0; n < 5; n++)
            ratetable_count(over, 0, key, 60, 1, 300);
    }
    is_int(ratetable_count(over, 0, "10.0.5.1", 60, 1, 301), 1,
           "a key that takes a slot over starts at 1, not at the last owner's count");

    /* processes counting at once: nothing lost, nothing doubled */
    struct ratetable *shared = ratetable_new(16, 1);
    enum { PROCS = 8, EVENTS = 3000 };
    for (int p = 0; p < PROCS; p++) {
        pid_t pid = fork();
        if (pid == 0) {
            snprintf(key, sizeof key, "172.16.0.%d", p % 4);
            for (int n = 0; n < EVENTS; n++)
                if (ratetable_count(shared, 0, key, 3600, 1, 5000) == 0)
                    _exit(1);
            _exit(0);
        }
    }
    int failed = 0, status;
    while (wait(&status) > 0)
        failed += !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    is_int(failed, 0, "every event of 8 processes was counted");
    int exact = 1;
    for (int k = 0; k < 4; k++) {
        snprintf(key, sizeof key, "172.16.0.%d", k);
        unsigned n = ratetable_count(shared, 0, key, 3600, 0, 5000);
        if (n != 2 * EVENTS) {
            char got[32];
            snprintf(got, sizeof got, "%u", n);
            diag(key, got);
            exact = 0;
        }
    }
    ok(exact, "each key's count is the sum of its processes' events (%d)", 2 * (int)EVENTS);
    return tap_done();
}
