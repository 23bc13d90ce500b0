/* map.c - `postern map` (postmap(1)) and, with the aliases(5) syntax,
 * `postern alias` (postalias(1)): build indexed tables, query and list any
 * table.
 *
 *   postern map [-fNnprw] [-c DIR] [-o name=value] [type:]FILE ...   build
 *   postern map [-fNn] -q KEY [type:]NAME ...     print the value of KEY
 *   postern map [-fNn] -q - [type:]NAME ...       keys from stdin
 *   postern map -s [type:]NAME ...                list every entry
 *
 * Exit: 0 done / found; 1 not found, or a build that failed; 2 usage or a
 * table that cannot be opened; 75 a table that answers "try again".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "log.h"
#include "map.h"
#include "outcome.h"
#include "map_build.h"
#include "postern.h"
#include "strbuf.h"
#include "xalloc.h"

#define EXIT_NOTFOUND   1
#define EXIT_USAGE      2

struct table_options {
    int aliases;            /* postern alias */
    unsigned build_flags;   /* MAP_BUILD_* */
    const char *query;      /* -q KEY, or "-" */
    int dump;               /* -s */
    const char *default_type;
};

/* Print the usage message and return the usage exit code. */
static int usage(int aliases)
{
    const char *cmd = aliases ? "postern alias" : "postern map";
    fprintf(stderr,
            "usage: %s [-fNnprw] [-c DIR] [-o name=value] [type:]FILE ...\n"
            "       %s [-fNn] [-c DIR] -q KEY|- [type:]NAME ...\n"
            "       %s [-c DIR] -s [type:]NAME ...\n", cmd, cmd, cmd);
    if (aliases)
        fprintf(stderr, "       %s [-c DIR]     (build every alias_database table)\n", cmd);
    return EXIT_USAGE;
}

/* "type:name" for map_open, with default_database_type for a bare file. */
static char *table_spec(const char *arg, const char *default_type)
{
    struct strbuf spec = STRBUF_INIT;
    if (strchr(arg, ':'))
        strbuf_puts(&spec, arg);
    else
        strbuf_printf(&spec, "%s:%s", default_type, arg);
    return strbuf_detach(&spec);
}

/* Log every line of a multi-line error report. */
static void report_lines(const struct strbuf *report)
{
    const char *p = strbuf_str(report);
    while (*p) {
        size_t n = strcspn(p, "\n");
        if (n)
            msg_error("%.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
}

/* Open every table named on the command line; exits when one cannot be. */
static struct map **open_tables(char **names, int count, const struct table_options *opt)
{
    struct map **maps = xcalloc((size_t)count, sizeof *maps);
    unsigned open_flags = (opt->build_flags & MAP_BUILD_KEEP_CASE) ? MAP_OPEN_KEEP_CASE : 0;
    for (int i = 0; i < count; i++) {
        struct strbuf err = STRBUF_INIT;
        char *spec = table_spec(names[i], opt->default_type);
        maps[i] = map_open_flags(spec, open_flags, &err);
        if (!maps[i]) {
            report_lines(&err);
            exit(EXIT_USAGE);
        }
        free(spec);
        strbuf_free(&err);
    }
    return maps;
}

/* Look key up in the tables in order: MAP_FOUND, MAP_NOTFOUND or MAP_RETRY
 * (after a message naming the table). */
static int query_tables(struct map **maps, int count, const char *key,
                        struct strbuf *value)
{
    for (int i = 0; i < count; i++) {
        int result = map_lookup(maps[i], key, value);
        if (result == MAP_RETRY) {
            struct strbuf shown = STRBUF_INIT;
            msg_error("table %s: lookup of \"%s\" failed: try again later",
                      map_spec(maps[i]), log_printable(&shown, key, 200));
            strbuf_free(&shown);
        }
        if (result != MAP_NOTFOUND)
            return result;
    }
    return MAP_NOTFOUND;
}

/* -q KEY or -q -: print values; the exit status. */
static int run_queries(struct map **maps, int count, const struct table_options *opt)
{
    struct strbuf value = STRBUF_INIT;
    int status;
    if (strcmp(opt->query, "-") != 0) {
        int result = query_tables(maps, count, opt->query, &value);
        if (result == MAP_FOUND)
            printf("%s\n", strbuf_str(&value));
        status = result == MAP_FOUND ? 0 : result == MAP_RETRY ? EX_TEMPFAIL : EXIT_NOTFOUND;
    } else {
        int found = 0, retry = 0;
        char *line = NULL;
        size_t size = 0;
        ssize_t len;
        while ((len = getline(&line, &size, stdin)) >= 0) {
            while (len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
                line[--len] = '\0';
            int result = query_tables(maps, count, line, &value);
            if (result == MAP_FOUND) {
                found = 1;
                printf("%s\t%s\n", line, strbuf_str(&value));
                fflush(stdout);
            } else if (result == MAP_RETRY) {
                retry = 1;
            }
        }
        free(line);
        status = retry ? EX_TEMPFAIL : found ? 0 : EXIT_NOTFOUND;
    }
    strbuf_free(&value);
    if (fflush(stdout) != 0)
        msg_fatal_errno("write standard output");
    return status;
}

/* Print one entry for -s. */
static int print_entry(const char *key, const char *value, void *ctx)
{
    const struct table_options *opt = ctx;
    printf("%s%s\t%s\n", key, opt->aliases ? ":" : "", value);
    return 0;
}

/* -s: list every table. */
static int run_dump(struct map **maps, int count, const struct table_options *opt)
{
    int status = 0;
    for (int i = 0; i < count; i++) {
        if (!(map_flags(maps[i]) & MAP_CAN_ITERATE)) {
            msg_error("table %s: listing is not supported for this type", map_spec(maps[i]));
            status = EXIT_USAGE;
            continue;
        }
        if (map_iterate(maps[i], print_entry, (void *)opt) != 0) {
            msg_error("table %s: could not list every entry", map_spec(maps[i]));
            status = EX_TEMPFAIL;
        }
    }
    if (fflush(stdout) != 0)
        msg_fatal_errno("write standard output");
    return status;
}

/* Build every table named; the exit status. */
static int run_builds(char **names, int count, const struct table_options *opt)
{
    int status = 0;
    unsigned flags = opt->build_flags | (opt->aliases ? MAP_BUILD_ALIASES : 0);
    for (int i = 0; i < count; i++) {
        struct strbuf err = STRBUF_INIT;
        if (map_build(names[i], opt->default_type, flags, &err) < 0) {
            report_lines(&err);
            status = 1;
        }
        strbuf_free(&err);
    }
    return status;
}

int table_command(int argc, char **argv, int aliases)
{
    struct table_options opt = {.aliases = aliases};
    int c;
    opterr = 0;
    while ((c = getopt(argc, argv, "c:o:vfNnprwq:sid:")) != -1) {
        if (config_common_option(c, optarg))
            continue;
        switch (c) {
        case 'f': opt.build_flags |= MAP_BUILD_KEEP_CASE; break;
        case 'N': opt.build_flags |= MAP_BUILD_WITH_NUL; break;
        case 'n': opt.build_flags &= ~(unsigned)MAP_BUILD_WITH_NUL; break;
        case 'p': opt.build_flags |= MAP_BUILD_PLAIN_MODE; break;
        case 'r': opt.build_flags |= MAP_BUILD_DUP_REPLACE; break;
        case 'w': opt.build_flags |= MAP_BUILD_DUP_QUIET; break;
        case 'q': opt.query = optarg; break;
        case 's': opt.dump = 1; break;
        case 'i':
        case 'd':
            msg_error("-%c is not supported: hash, btree and cdb tables are rebuilt "
                      "from their source file; edit it and run %s FILE", c, argv[0]);
            return EXIT_USAGE;
        default:
            fprintf(stderr, "%s: unknown option or missing argument: -%c\n", argv[0], optopt);
            return usage(aliases);
        }
    }
    if (opt.query && opt.dump)
        return usage(aliases);
    config_load(1);
    opt.default_type = conf_str("default_database_type");
    char **names = argv + optind;
    int count = argc - optind;
    if (count == 0) {
        if (!aliases || opt.query || opt.dump)
            return usage(aliases);
        /* newaliases */
        struct strbuf err = STRBUF_INIT;
        int failed = alias_build_database(conf_str("alias_database"), opt.default_type, &err);
        report_lines(&err);
        strbuf_free(&err);
        return failed ? 1 : 0;
    }
    if (!opt.query && !opt.dump)
        return run_builds(names, count, &opt);
    struct map **maps = open_tables(names, count, &opt);
    int status = opt.query ? run_queries(maps, count, &opt) : run_dump(maps, count, &opt);
    for (int i = 0; i < count; i++)
        map_close(maps[i]);
    free(maps);
    return status;
}

int cmd_map(int argc, char **argv)
{
    return table_command(argc, argv, 0);
}
