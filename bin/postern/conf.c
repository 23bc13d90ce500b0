/* conf.c - `postern conf`: print or change main.cf parameters, as postconf(1).
 *
 *   postern conf [-c DIR] [-o name=value] [-n|-d] [-h] [-x] [name ...]
 *   postern conf [-c DIR] -e 'name = value' ...     edit main.cf in place
 *   postern conf [-c DIR] -X name ...               remove from main.cf
 *   postern conf -m                                 lookup table types
 * Values are printed with runs of white space folded to one space, as
 * postconf prints them; -n lists what main.cf (or -o) sets, sorted.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"
#include "config_impl.h"
#include "log.h"
#include "map.h"
#include "postern.h"
#include "strbuf.h"

#define SHOW_NONDEFAULT 0x01    /* -n */
#define SHOW_DEFAULT    0x02    /* -d */
#define SHOW_VALUE_ONLY 0x04    /* -h */
#define SHOW_EXPANDED   0x08    /* -x */

static int usage(void)
{
    fprintf(stderr, "usage: postern conf [-c DIR] [-o name=value] [-n | -d] [-h] [-x] [name ...]\n"
                    "       postern conf [-c DIR] -e 'name = value' ...\n"
                    "       postern conf [-c DIR] -X name ...\n"
                    "       postern conf -m\n");
    return 2;
}

/* strcmp for qsort over char *. */
static int compare_strings(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Print one parameter; 0, or 1 when its value does not expand. */
static int print_param(const char *name, const char *raw, unsigned flags)
{
    struct strbuf value = STRBUF_INIT, err = STRBUF_INIT, line = STRBUF_INIT;
    int status = 0;
    if (flags & SHOW_EXPANDED) {
        if (conf_expand(raw, &value, &err) != 0) {
            msg_warn("parameter %s: %s", name, strbuf_str(&err));
            status = 1;
            strbuf_set(&value, raw);
        }
    } else {
        strbuf_set(&value, raw);
    }
    if (!(flags & SHOW_VALUE_ONLY))
        strbuf_printf(&line, "%s =", name);
    /* fold white space as postconf does */
    int pending_space = !(flags & SHOW_VALUE_ONLY);
    for (const char *p = strbuf_str(&value); *p; p++) {
        if (isspace((unsigned char)*p)) {
            pending_space = line.len > 0;
            continue;
        }
        if (pending_space)
            strbuf_putc(&line, ' ');
        pending_space = 0;
        strbuf_putc(&line, *p);
    }
    printf("%s\n", strbuf_str(&line));
    strbuf_free(&value);
    strbuf_free(&err);
    strbuf_free(&line);
    return status;
}

/* May `postern conf` print a name that postern does not declare? (Postfix
 * prints its own parameters and user variables, not unknown names.) */
static int printable_undeclared(const char *name)
{
    return conf_is_set(name) && (param_is_postfix_name(name) || config_is_referenced(name));
}

/* The names to print when none are given, sorted and unique. */
static void default_names(unsigned flags, struct strlist *names)
{
    struct strlist set = STRLIST_INIT;
    if (!(flags & SHOW_DEFAULT))
        config_set_names(&set);
    if (!(flags & SHOW_NONDEFAULT)) {
        size_t count;
        const struct param_def *table = param_table(&count);
        for (size_t i = 0; i < count; i++)
            strlist_add(names, table[i].name);
    }
    for (size_t i = 0; i < set.count; i++)
        if (param_find(set.item[i]) ? (flags & SHOW_NONDEFAULT) != 0 : printable_undeclared(set.item[i]))
            strlist_add(names, set.item[i]);
    strlist_free(&set);
    if (names->count)
        qsort(names->item, names->count, sizeof *names->item, compare_strings);
    size_t kept = 0;
    for (size_t i = 0; i < names->count; i++) {
        if (kept && strcmp(names->item[kept - 1], names->item[i]) == 0)
            free(names->item[i]);
        else
            names->item[kept++] = names->item[i];
    }
    names->count = kept;
}

/* Print the named parameters (or all); the exit status. */
static int print_params(unsigned flags, int argc, char **argv)
{
    struct strlist names = STRLIST_INIT;
    if (argc == 0)
        default_names(flags, &names);
    else
        for (int i = 0; i < argc; i++)
            strlist_add(&names, argv[i]);
    int status = 0;
    for (size_t i = 0; i < names.count; i++) {
        const char *name = names.item[i];
        const struct param_def *def = param_find(name);
        if (flags & SHOW_DEFAULT) {
            if (!def) {
                msg_warn("%s: unknown parameter", name);
                continue;
            }
            struct strbuf value = STRBUF_INIT;
            config_default(def, &value);
            status |= print_param(name, strbuf_str(&value), flags);
            strbuf_free(&value);
        } else if (def || printable_undeclared(name)) {
            if ((flags & SHOW_NONDEFAULT) && !conf_is_set(name))
                continue;
            status |= print_param(name, conf_raw(name), flags);
        } else if (param_is_postfix_name(name)) {
            msg_warn("%s: Postfix parameter not implemented by postern", name);
        } else {
            msg_warn("%s: unknown parameter", name);
        }
    }
    strlist_free(&names);
    return status;
}

/* Read main.cf as postconf does: a display tool shows a configuration with
 * bad values (so they can be seen and fixed), warning about each; only an
 * unreadable main.cf is fatal. */
static void load_for_display(void)
{
    if (access(config_file(), R_OK) != 0)
        msg_fatal_errno("open %s", config_file());
    struct strbuf report = STRBUF_INIT;
    config_load_report(0, &report);
    for (const char *p = strbuf_str(&report); *p;) {
        size_t n = strcspn(p, "\n");
        msg_warn("%.*s", (int)n, p);
        p += n + (p[n] == '\n');
    }
    strbuf_free(&report);
}

/* -m: the lookup table types, one a line, sorted. */
static int print_map_types(void)
{
    struct strlist types = STRLIST_INIT;
    for (const char *const *t = map_type_names(); *t; t++)
        strlist_add(&types, *t);
    if (types.count)
        qsort(types.item, types.count, sizeof *types.item, compare_strings);
    for (size_t i = 0; i < types.count; i++)
        printf("%s\n", types.item[i]);
    strlist_free(&types);
    return 0;
}

int cmd_conf(int argc, char **argv)
{
    unsigned flags = 0;
    int edit = 0, remove = 0, map_types = 0, opt;
    while ((opt = getopt(argc, argv, "c:dehmno:vxX")) != -1) {
        switch (opt) {
        case 'd': flags |= SHOW_DEFAULT; break;
        case 'e': edit = 1; break;
        case 'h': flags |= SHOW_VALUE_ONLY; break;
        case 'm': map_types = 1; break;
        case 'n': flags |= SHOW_NONDEFAULT; break;
        case 'x': flags |= SHOW_EXPANDED; break;
        case 'X': remove = 1; break;
        default:
            if (!config_common_option(opt, optarg))
                return usage();
        }
    }
    argc -= optind;
    argv += optind;
    if ((flags & SHOW_DEFAULT) && (flags & SHOW_NONDEFAULT)) {
        msg_warn("-d and -n cannot be used together");
        return usage();
    }
    if (map_types)
        return print_map_types();
    if (edit || remove) {
        if (edit && remove)
            return usage();
        if (argc == 0)
            return usage();
        return conf_edit_main_cf(remove, argc, argv);
    }
    if (!(flags & SHOW_DEFAULT))
        load_for_display();
    return print_params(flags, argc, argv);
}
