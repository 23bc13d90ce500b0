/* lookupbench.c - lookups per second and latency of one table, through
 * the real map layer (maps/map.h): `proxy:TYPE:NAME` asks the lookup
 * service, `TYPE:NAME` looks up in this process.  Built and run by
 * bench/lookup.
 *
 *   lookupbench SOCKET SPEC KEYFILE N J
 *
 * J processes, each with its own connection, look up N/J keys taken in
 * turn from KEYFILE (one per line); prints "lookups_per_s X", "lat_us_p50
 * X", "lat_us_p99 X" and "found F of N". */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fdio.h"
#include "map.h"
#include "strbuf.h"

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    if (argc != 6) {
        fprintf(stderr, "usage: lookupbench SOCKET SPEC KEYFILE N J\n");
        return 2;
    }
    map_set_lookup_socket(argv[1]);
    map_register_dynamic_types();
    const char *spec = argv[2];
    long n = atol(argv[4]), jobs = atol(argv[5]);
    char **keys = NULL, line[512];
    size_t nkeys = 0;
    FILE *f = fopen(argv[3], "r");
    if (!f)
        return 1;
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = '\0';
        keys = realloc(keys, (nkeys + 1) * sizeof *keys);
        keys[nkeys++] = strdup(line);
    }
    fclose(f);
    long per = n / jobs;
    int pipes[64][2];
    if (jobs < 1 || jobs > 64 || !nkeys)
        return 2;
    double start = now_s();
    for (long j = 0; j < jobs; j++) {
        if (pipe(pipes[j]) < 0)
            return 1;
        if (fork() == 0) {
            struct strbuf err = STRBUF_INIT, value = STRBUF_INIT;
            struct map *map = map_open(spec, &err);
            if (!map) {
                fprintf(stderr, "%s\n", err.s);
                _exit(1);
            }
            uint32_t *lat = calloc((size_t)per + 1, sizeof *lat);
            uint32_t found = 0;
            for (long i = 0; i < per; i++) {
                double t0 = now_s();
                int r = map_lookup(map, keys[(size_t)(i + j * 7) % nkeys], &value);
                lat[i] = (uint32_t)((now_s() - t0) * 1e9);
                if (r == MAP_RETRY)
                    _exit(3);
                found += r == MAP_FOUND;
            }
            lat[per] = found;
            _exit(write_all(pipes[j][1], lat, ((size_t)per + 1) * sizeof *lat) == 0 ? 0 : 1);
        }
        close(pipes[j][1]);
    }
    uint32_t *all = calloc((size_t)(per * jobs), sizeof *all);
    long found = 0;
    for (long j = 0; j < jobs; j++) {
        uint32_t *buf = calloc((size_t)per + 1, sizeof *buf);
        if (read_full(pipes[j][0], buf, ((size_t)per + 1) * sizeof *buf)
            != (ssize_t)(((size_t)per + 1) * sizeof *buf)) {
            fprintf(stderr, "lookupbench: a client failed\n");
            return 1;
        }
        memcpy(all + j * per, buf, (size_t)per * sizeof *buf);
        found += buf[per];
        free(buf);
    }
    int status, failed = 0;
    while (wait(&status) > 0)
        failed |= !WIFEXITED(status) || WEXITSTATUS(status) != 0;
    double elapsed = now_s() - start;
    if (failed)
        return 1;
    size_t total = (size_t)(per * jobs);
    qsort(all, total, sizeof *all, cmp_u32);
    printf("lookups_per_s %.0f\nlat_us_p50 %.1f\nlat_us_p99 %.1f\nfound %ld of %zu\n",
           (double)total / elapsed, all[total / 2] / 1000.0, all[total * 99 / 100] / 1000.0,
           found, total);
    return 0;
}
