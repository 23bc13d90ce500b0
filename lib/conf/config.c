/* config.c - the process-wide configuration: main.cf read once, -o
 * overrides on top, declared defaults below, values expanded on first use
 * and cached (config.h).  Parsing is in config_parse.c, expansion in
 * config_expand.c, lists and typed values in config_list.c.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config.h"
#include "config_impl.h"
#include "hugemem.h"
#include "log.h"
#include "lookup_proto.h"
#include "map.h"
#include "mastercf.h"
#include "strbuf.h"
#include "unixservice.h"
#include "xalloc.h"

#ifndef DEF_CONFIG_DIR
#define DEF_CONFIG_DIR "/etc/postern"
#endif

enum source { SRC_DEFAULT, SRC_MAINCF, SRC_OVERRIDE };

/* One parameter known to this process: set, overridden, or a default that
 * has been asked for. */
struct setting {
    char *name;
    char *raw;                  /* as written; NULL while a derived default is computed */
    char *expanded;             /* cache; NULL until first use */
    const char *file;           /* main.cf path or "-o" */
    int line;
    enum source source;
    int expanding;              /* loop detection */
    int referenced;             /* some value says $name */
    const struct param_def *def;
    struct setting *next;       /* hash chain */
};

#define BUCKETS 512
static struct setting *table[BUCKETS];
/* config_expand_all() packs the settings and their strings into one block
 * (see there); what lies in it is never freed on its own */
static char *pack_start, *pack_end;
static int pack_huge;           /* the block is hugemem_alloc's */

/* Free a setting's string, unless it lies in the packed block. */
static void release(char *p)
{
    if (!(p >= pack_start && p < pack_end))
        free(p);
}
static struct conf_entry *entries;      /* main.cf, file order, one per name */
static size_t entry_count;
static char *dir_chosen;                /* -c */
static char *main_cf_path;
static struct strlist overrides = STRLIST_INIT;
/* expansions replaced after a value changed at run time (config_apply_stress):
 * kept until config_clear(), as callers may still hold them */
static char **retired;
static size_t retired_count;

/* FNV-1a hash of a name. */
static unsigned bucket_of(const char *name)
{
    uint32_t h = 2166136261u;
    for (const unsigned char *p = (const unsigned char *)name; *p; p++)
        h = (h ^ *p) * 16777619u;
    return h % BUCKETS;
}

/* The setting of a name, or NULL. */
static struct setting *find_setting(const char *name)
{
    for (struct setting *s = table[bucket_of(name)]; s; s = s->next)
        if (strcmp(s->name, name) == 0)
            return s;
    return NULL;
}

/* Add a setting (the name must not be in the table yet). */
static struct setting *add_setting(const char *name, enum source source)
{
    struct setting *s = xcalloc(1, sizeof *s);
    s->name = xstrdup(name);
    s->source = source;
    s->def = param_find(name);
    unsigned b = bucket_of(name);
    s->next = table[b];
    table[b] = s;
    return s;
}

/* Set a name from main.cf or -o (a later setting replaces an earlier one). */
static struct setting *set_value(const char *name, const char *value, enum source source,
                                 const char *file, int line)
{
    struct setting *s = find_setting(name);
    if (!s)
        s = add_setting(name, source);
    release(s->raw);
    release(s->expanded);
    s->raw = xstrdup(value);
    s->expanded = NULL;
    s->source = source;
    s->file = file;
    s->line = line;
    return s;
}

/* The setting for a name, creating the default of a declared parameter. */
static struct setting *get_setting(const char *name)
{
    struct setting *s = find_setting(name);
    if (s)
        return s;
    const struct param_def *def = param_find(name);
    if (!def)
        return NULL;
    s = add_setting(name, SRC_DEFAULT);
    if (def->derive) {
        struct strbuf value = STRBUF_INIT;
        def->derive(&value);            /* may look other names up; raw stays NULL */
        s->raw = xstrdup(strbuf_str(&value));
        strbuf_free(&value);
    } else {
        s->raw = xstrdup(def->default_value ? def->default_value : "");
    }
    return s;
}

/* expand_lookup_fn over the configuration: expanded, cached, loops caught. */
static int lookup_expanded(const char *name, void *ctx, const char **value, struct strbuf *err)
{
    (void)ctx;
    struct setting *s = find_setting(name);
    if (s && !s->raw) {
        strbuf_printf(err, "expansion loop: the default of $%s depends on itself", name);
        return -1;
    }
    if (!s)
        s = get_setting(name);
    if (!s) {
        *value = NULL;                  /* undefined: empty, as Postfix */
        return 0;
    }
    if (s->expanded) {
        *value = s->expanded;
        return 0;
    }
    if (s->expanding) {
        strbuf_printf(err, "expansion loop: $%s is used in its own value", name);
        return -1;
    }
    s->expanding = 1;
    struct strbuf out = STRBUF_INIT;
    int result = expand_text(s->raw, lookup_expanded, NULL, &out, err);
    s->expanding = 0;
    if (result != 0) {
        strbuf_free(&out);
        return -1;
    }
    strbuf_str(&out);
    s->expanded = out.s ? strbuf_detach(&out) : xstrdup("");
    *value = s->expanded;
    return 0;
}

/* "FILE, line N: " for a setting, or "" for a default. */
static void where(const struct setting *s, struct strbuf *out)
{
    if (s && s->source == SRC_MAINCF)
        strbuf_printf(out, "%s, line %d: ", s->file, s->line);
    else if (s && s->source == SRC_OVERRIDE)
        strbuf_puts(out, "-o: ");
}

/* ---- program start ---- */

void config_set_dir(const char *dir)
{
    free(dir_chosen);
    dir_chosen = xstrdup(dir);
    free(main_cf_path);
    main_cf_path = NULL;
}

void config_add_override(const char *name_eq_value)
{
    const char *eq = strchr(name_eq_value, '=');
    const char *name_end = eq;
    while (name_end && name_end > name_eq_value && (name_end[-1] == ' ' || name_end[-1] == '\t'))
        name_end--;
    const char *name = name_eq_value;
    while (*name == ' ' || *name == '\t')
        name++;
    if (!eq || name_end <= name || !param_name_valid(name, (size_t)(name_end - name)))
        msg_fatal("bad -o argument \"%s\": expected name=value", name_eq_value);
    strlist_add(&overrides, name_eq_value);
}

int config_common_option(int opt, const char *arg)
{
    switch (opt) {
    case 'c': config_set_dir(arg); return 1;
    case 'o': config_add_override(arg); return 1;
    case 'v': log_set_verbose(log_verbose() + 1); return 1;
    default:  return 0;
    }
}

int config_service_options(int argc, char **argv, mode_t *socket_mode)
{
    int opt;
    while ((opt = getopt(argc, argv, "c:m:o:v")) != -1)
        if (!config_common_option(opt, optarg)
            && (opt != 'm' || socket_mode_parse(optarg, socket_mode) < 0))
            return -1;
    return optind == argc ? 0 : -1;
}

const char *config_dir(void)
{
    if (dir_chosen)
        return dir_chosen;
    const char *env = getenv("POSTERN_CONFIG_DIR");
    return env && *env ? env : DEF_CONFIG_DIR;
}

int config_dir_given(void)
{
    const char *env = getenv("POSTERN_CONFIG_DIR");
    return dir_chosen || (env && *env);
}

const char *config_file(void)
{
    if (!main_cf_path) {
        struct strbuf path = STRBUF_INIT;
        strbuf_printf(&path, "%s/main.cf", config_dir());
        main_cf_path = strbuf_detach(&path);
    }
    return main_cf_path;
}

void config_clear(void)
{
    for (size_t b = 0; b < BUCKETS; b++) {
        struct setting *s = table[b];
        while (s) {
            struct setting *next = s->next;
            release(s->name);
            release(s->raw);
            release(s->expanded);
            release((char *)s);
            s = next;
        }
        table[b] = NULL;
    }
    if (pack_huge)
        hugemem_release(pack_start);
    else
        free(pack_start);
    pack_start = pack_end = NULL;
    for (size_t i = 0; i < entry_count; i++) {
        free((char *)entries[i].name);
        free((char *)entries[i].value);
    }
    free(entries);
    entries = NULL;
    entry_count = 0;
    for (size_t i = 0; i < retired_count; i++)
        release(retired[i]);
    free(retired);
    retired = NULL;
    retired_count = 0;
}

/* Where parsed entries go: the table and the file-order list. */
struct parse_ctx {
    const char *file;
    struct strbuf *warnings;
    int duplicates;
};

/* maincf_entry_fn: record one `name = value`. */
static void take_entry(const char *name, const char *value, int line, void *opaque)
{
    struct parse_ctx *ctx = opaque;
    struct setting *old = find_setting(name);
    if (old && old->source == SRC_MAINCF) {
        struct strbuf printable = STRBUF_INIT;
        strbuf_printf(ctx->warnings, "%s, line %d: overriding earlier entry (line %d): %s=%s\n",
                      ctx->file, line, old->line, name, log_printable(&printable, old->raw, 200));
        strbuf_free(&printable);
        ctx->duplicates++;
    }
    struct setting *s = set_value(name, value, SRC_MAINCF, ctx->file, line);
    /* the list owns copies: a -o may later replace the setting's text */
    for (size_t i = 0; i < entry_count; i++) {
        if (strcmp(entries[i].name, name) == 0) {
            free((char *)entries[i].value);
            entries[i].value = xstrdup(value);
            entries[i].line = line;
            return;
        }
    }
    entries = xreallocarray(entries, entry_count + 1, sizeof *entries);
    entries[entry_count++] = (struct conf_entry){xstrdup(s->name), xstrdup(value), s->file, line};
}

/* expand_references callback: mark a set name as used. */
static void mark_referenced(const char *name, size_t len, void *ctx)
{
    (void)ctx;
    char *copy = xstrndup(name, len);
    struct setting *s = find_setting(copy);
    if (s)
        s->referenced = 1;
    free(copy);
}

/* Check a set value against its type; 0, or -1 with the reason in err. */
static int check_type(const struct param_def *def, const char *value, struct strbuf *err)
{
    long long n = 0;
    const char *what = NULL;
    switch (def->type) {
    case PARAM_STR:
        return 0;
    case PARAM_BOOL:
        if (parse_bool(value) >= 0)
            return 0;
        strbuf_printf(err, "bad yes/no value for parameter %s: \"%s\"", def->name, value);
        return -1;
    case PARAM_INT: {
        char *end;
        errno = 0;
        n = strtoll(value, &end, 10);
        if (!(isdigit((unsigned char)value[0]) || (value[0] == '-' && isdigit((unsigned char)value[1])))
            || *end || errno)
            n = -1, what = "integer";
        else if (n < 0 && def->min >= 0)
            what = "integer";
        break;
    }
    case PARAM_TIME:
        if ((n = parse_time(value, def->time_unit)) < 0)
            what = "time (number with unit s, m, h, d or w)";
        break;
    case PARAM_SIZE:
        if ((n = parse_size(value)) < 0)
            what = "size in bytes";
        break;
    }
    if (what) {
        strbuf_printf(err, "bad %s value for parameter %s: \"%s\"", what, def->name, value);
        return -1;
    }
    if ((def->min || def->max) && (n < def->min || n > def->max)) {
        strbuf_printf(err, "value of parameter %s out of range (%lld..%lld): \"%s\"",
                      def->name, def->min, def->max, value);
        return -1;
    }
    return 0;
}

/* Read the whole of main.cf into text; 0, 1 when missing, or -1 (err set). */
static int read_main_cf(struct strbuf *text, struct strbuf *err)
{
    int fd = open(config_file(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        if (errno == ENOENT)
            return 1;
        strbuf_printf(err, "open %s: %s", config_file(), strerror(errno));
        return -1;
    }
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size > MAINCF_MAX_BYTES) {
        strbuf_printf(err, "%s: not a regular file of at most %d bytes", config_file(),
                      MAINCF_MAX_BYTES);
        close(fd);
        return -1;
    }
    strbuf_grow(text, (size_t)st.st_size);
    for (;;) {
        strbuf_grow(text, 65536);
        ssize_t n = read(fd, text->s + text->len, 65536);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            strbuf_printf(err, "read %s: %s", config_file(), strerror(errno));
            close(fd);
            return -1;
        }
        if (n == 0)
            break;
        text->len += (size_t)n;
        text->s[text->len] = '\0';
        if (text->len > MAINCF_MAX_BYTES) {
            strbuf_printf(err, "%s: larger than %d bytes", config_file(), MAINCF_MAX_BYTES);
            close(fd);
            return -1;
        }
    }
    close(fd);
    return 0;
}

/* Postfix's per-transport limits, TRANSPORT_destination_concurrency_limit,
 * TRANSPORT_destination_recipient_limit and TRANSPORT_time_limit, which
 * qmgr (and postern-pipe) read for whatever transport a message takes:
 * used when TRANSPORT is a service of master.cf (beside main.cf), as
 * postconf says, though they are not in the registry. */
static int per_transport_parameter(const char *name);

/* A parameter named in smtpd_restriction_classes: its value is a
 * restriction list that smtpd reads by that name. */
static int restriction_class(const char *name)
{
    const char *value;
    struct strbuf err = STRBUF_INIT;
    struct strlist classes = STRLIST_INIT;
    int found = 0;
    if (lookup_expanded("smtpd_restriction_classes", NULL, &value, &err) == 0 && value
        && list_split(value, &classes, &err) == 0)
        for (size_t i = 0; i < classes.count && !found; i++)
            found = strcmp(classes.item[i], name) == 0;
    strlist_free(&classes);
    strbuf_free(&err);
    return found;
}

/* Whether name is such a per-transport limit of a master.cf service. */
static int per_transport_parameter(const char *name)
{
    static const char *const suffixes[] = {
        "_destination_concurrency_limit", "_destination_recipient_limit", "_time_limit",
    };
    size_t len = strlen(name), prefix = 0;
    for (size_t i = 0; !prefix && i < sizeof suffixes / sizeof suffixes[0]; i++) {
        size_t n = strlen(suffixes[i]);
        if (len > n && strcmp(name + len - n, suffixes[i]) == 0)
            prefix = len - n;
    }
    if (!prefix)
        return 0;
    /* master.cf is read once per check, not once per such parameter */
    static struct master_table services;
    static struct strbuf read_from = STRBUF_INIT;
    struct strbuf path = STRBUF_INIT, err = STRBUF_INIT;
    strbuf_printf(&path, "%s/master.cf", config_dir());
    if (!read_from.len || strcmp(read_from.s, path.s) != 0) {
        master_free(&services);
        memset(&services, 0, sizeof services);
        if (master_read(path.s, 1, &services, &err) != 0) {
            master_free(&services);
            memset(&services, 0, sizeof services);
        }
        strbuf_set(&read_from, path.s);
    }
    int found = 0;
    for (size_t i = 0; !found && i < services.count; i++)
        found = strlen(services.service[i].service) == prefix
                && strncmp(services.service[i].service, name, prefix) == 0;
    strbuf_free(&path);
    strbuf_free(&err);
    return found;
}

/* A setting that has no effect in postern yet: a Postfix parameter that
 * postern does not declare, or one whose value it does not act on
 * (lib/conf/unimplemented.c).  Appends the warning and returns 1. */
static int not_implemented(struct setting *s, struct strbuf *warnings)
{
    const char *value = s->raw;
    struct strbuf err = STRBUF_INIT, printable = STRBUF_INIT;
    if (s->def && lookup_expanded(s->name, NULL, &value, &err) != 0)
        value = NULL;               /* reported as an error */
    const char *what = value ? setting_not_implemented(s->name, value) : NULL;
    if (!what && !s->def && value && *value && param_is_postfix_name(s->name))
        what = "";
    if (what) {
        if (s->source == SRC_MAINCF)
            strbuf_printf(warnings, "%s, line %d: ", s->file, s->line);
        else
            strbuf_puts(warnings, "-o option: ");
        strbuf_printf(warnings, "not implemented by postern: %s=%s%s%s\n", s->name,
                      log_printable(&printable, s->raw, 200), *what ? ": " : "", what);
    }
    strbuf_free(&err);
    strbuf_free(&printable);
    return what != NULL;
}

/* After parsing: overrides, references, types.  Appends errors and
 * warnings (unused parameters, duplicates); returns the error count. */
static int finish_load(struct strbuf *errors, struct strbuf *warnings)
{
    int problems = 0;
    for (size_t i = 0; i < overrides.count; i++) {
        const char *arg = overrides.item[i];
        const char *eq = strchr(arg, '=');
        const char *name = arg, *name_end = eq, *value = eq + 1;
        while (*name == ' ' || *name == '\t')
            name++;
        while (name_end > name && (name_end[-1] == ' ' || name_end[-1] == '\t'))
            name_end--;
        while (*value == ' ' || *value == '\t')
            value++;
        char *copy = xstrndup(name, (size_t)(name_end - name));
        set_value(copy, value, SRC_OVERRIDE, "-o", 0);
        free(copy);
    }
    /* -c DIR (or $POSTERN_CONFIG_DIR) sets config_directory, as in Postfix */
    if (config_dir_given() && !find_setting("config_directory"))
        set_value("config_directory", config_dir(), SRC_OVERRIDE, "-c", 0);
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct setting *s = table[b]; s; s = s->next)
            expand_references(s->raw, mark_referenced, NULL);
    struct strbuf err = STRBUF_INIT, printable = STRBUF_INIT;
    /* every set value: does it expand, is it of the right type?  main.cf
     * in file order, then -o */
    size_t total = 0;
    struct setting **order = xcalloc(entry_count + overrides.count + 2, sizeof *order);
    for (size_t i = 0; i < entry_count; i++) {
        struct setting *s = find_setting(entries[i].name);
        if (s->source == SRC_MAINCF)
            order[total++] = s;
    }
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct setting *s = table[b]; s; s = s->next)
            if (s->source == SRC_OVERRIDE)
                order[total++] = s;
    for (size_t i = 0; i < total; i++) {
        struct setting *s = order[i];
        const char *value;
        strbuf_reset(&err);
        if (lookup_expanded(s->name, NULL, &value, &err) != 0
            || (s->def && check_type(s->def, value, &err) != 0)) {
            where(s, errors);
            if (!s->def || !strstr(strbuf_str(&err), s->name))
                strbuf_printf(errors, "parameter %s: ", s->name);
            strbuf_printf(errors, "%s\n", strbuf_str(&err));
            problems++;
        }
    }
    free(order);
    for (size_t i = 0; i < entry_count; i++) {
        struct setting *s = find_setting(entries[i].name);
        if (s->source == SRC_MAINCF && not_implemented(s, warnings))
            continue;
        if (s->def || s->referenced || per_transport_parameter(s->name) || restriction_class(s->name))
            continue;
        strbuf_reset(&printable);
        strbuf_printf(warnings, "%s, line %d: unused parameter: %s=%s\n", entries[i].file,
                      entries[i].line, s->name, log_printable(&printable, entries[i].value, 200));
    }
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct setting *s = table[b]; s; s = s->next)
            if (s->source == SRC_OVERRIDE && strcmp(s->file, "-o") == 0
                && !not_implemented(s, warnings) && !s->def && !s->referenced
                && !per_transport_parameter(s->name) && !restriction_class(s->name)) {
                strbuf_reset(&printable);
                strbuf_printf(warnings, "-o option: unused parameter: %s=%s\n", s->name,
                              log_printable(&printable, s->raw, 200));
            }
    strbuf_free(&err);
    strbuf_free(&printable);
    return problems;
}

int config_load_text(const char *text, size_t len, const char *file, struct strbuf *report)
{
    config_clear();
    struct strbuf warnings = STRBUF_INIT;
    struct parse_ctx ctx = {file, &warnings, 0};
    int problems = maincf_parse(text, len, file, take_entry, &ctx, report, &warnings);
    problems += finish_load(report, &warnings);
    strbuf_puts(report, strbuf_str(&warnings));
    for (const char *p = strbuf_str(&warnings); (p = strchr(p, '\n')); p++)
        problems++;
    strbuf_free(&warnings);
    return problems;
}

/* Load main.cf: errors (syntax, types, loops) and warnings (unused
 * parameters, duplicates) kept apart. */
static int load(int allow_missing, struct strbuf *errors, struct strbuf *warnings)
{
    config_clear();
    struct strbuf text = STRBUF_INIT, err = STRBUF_INIT;
    int problems = 0;
    int result = read_main_cf(&text, &err);
    if (result < 0 || (result == 1 && !allow_missing)) {
        if (result == 1)
            strbuf_printf(&err, "open %s: %s", config_file(), strerror(ENOENT));
        strbuf_printf(errors, "%s\n", strbuf_str(&err));
        problems++;
    }
    if (result == 0) {
        struct parse_ctx ctx = {config_file(), warnings, 0};
        problems += maincf_parse(strbuf_str(&text), text.len, config_file(), take_entry, &ctx,
                                 errors, warnings);
    }
    problems += finish_load(errors, warnings);
    /* proxy: tables ask the lookup service of this queue */
    strbuf_reset(&text);
    strbuf_printf(&text, "%s/%s", config_value_or("queue_directory", "."), LOOKUP_SOCKET);
    map_set_lookup_socket(text.s);
    strbuf_free(&text);
    strbuf_free(&err);
    return problems;
}

int config_apply_stress(void)
{
    const char *value = getenv(CONFIG_STRESS_VARIABLE);
    if (!value || strcmp(value, "yes") != 0)
        return 0;
    /* every cached expansion may depend on $stress: retire them all */
    size_t cached = 0;
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct setting *s = table[b]; s; s = s->next)
            cached += s->expanded != NULL;
    retired = xreallocarray(retired, retired_count + cached + 1, sizeof *retired);
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct setting *s = table[b]; s; s = s->next)
            if (s->expanded) {
                retired[retired_count++] = s->expanded;
                s->expanded = NULL;
            }
    set_value("stress", "yes", SRC_OVERRIDE, "-o", 0);
    return 1;
}

/* Copy one string into the packed block at *at. */
static char *pack_string(char **at, const char *from)
{
    if (!from)
        return NULL;
    size_t n = strlen(from) + 1;
    char *to = memcpy(*at, from, n);
    *at += n;
    return to;
}

/* Move every setting, with its name and values, into one block, each
 * chain's settings one after another.  The ~1,000 settings and their
 * ~3,000 strings were spread over ~40 pages of the heap among everything
 * else, and a child of the zygote that read 30 of them per session paid
 * for each page it touched first (~5-7 us on this project's VMs: the
 * find_setting() of smtpd's sessions cost 0.15 ms, bench/README).  In a
 * zygote the block is in a huge page its children share (hugemem.h), and
 * they read it for nothing more than their fork; a child that writes to
 * it (config_apply_stress) pays once for the huge page's split.  The old
 * copies stay (retired). */
static void pack_settings(void)
{
    if (pack_start)
        return;
    size_t total = 0, count = 0;
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct setting *s = table[b]; s; s = s->next) {
            total += sizeof *s + strlen(s->name) + 1 + (s->raw ? strlen(s->raw) + 1 : 0)
                     + (s->expanded ? strlen(s->expanded) + 1 : 0);
            count += 4;
        }
    total += BUCKETS * _Alignof(struct setting);
    /* in a zygote, in a huge page its children share (hugemem.h) */
    char *block = hugemem_alloc(total), *at;
    pack_huge = block != NULL;
    if (!block)
        block = xmalloc(total);
    at = block;
    retired = xreallocarray(retired, retired_count + count + 1, sizeof *retired);
    for (size_t b = 0; b < BUCKETS; b++) {
        struct setting **link = &table[b];
        for (struct setting *s = table[b]; s;) {
            size_t pad = (size_t)(at - block) % _Alignof(struct setting);
            at += pad ? _Alignof(struct setting) - pad : 0;
            struct setting *copy = memcpy(at, s, sizeof *s);
            at += sizeof *s;
            copy->name = pack_string(&at, s->name);
            copy->raw = pack_string(&at, s->raw);
            copy->expanded = pack_string(&at, s->expanded);
            /* callers may hold the values; the node and its name are
             * not freed either: the heap's free lists would fill with
             * chunks all over it, and a child's malloc would then write
             * (copy-on-write) to those pages instead of the top chunk */
            if (s->raw)
                retired[retired_count++] = s->raw;
            if (s->expanded)
                retired[retired_count++] = s->expanded;
            retired[retired_count++] = s->name;
            retired[retired_count++] = (char *)s;
            struct setting *next = s->next;
            *link = copy;
            link = &copy->next;
            s = next;
        }
    }
    pack_start = block;
    pack_end = at;
}

void config_expand_all(void)
{
    struct strbuf err = STRBUF_INIT;
    const char *value;
    size_t count;
    const struct param_def *defs = param_table(&count);
    for (size_t i = 0; i < count; i++) {
        (void)lookup_expanded(defs[i].name, NULL, &value, &err);
        strbuf_reset(&err);     /* config_load has reported what is wrong */
    }
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct setting *s = table[b]; s; s = s->next)
            if (!s->expanded && s->raw) {
                (void)lookup_expanded(s->name, NULL, &value, &err);
                strbuf_reset(&err);
            }
    strbuf_free(&err);
    pack_settings();
}

const char *config_value_or(const char *name, const char *fallback)
{
    struct strbuf err = STRBUF_INIT;
    const char *value;
    if (lookup_expanded(name, NULL, &value, &err) != 0 || !value)
        value = fallback;
    strbuf_free(&err);
    return value;
}

/* Log each line of text as a warning. */
static void warn_lines(const char *text)
{
    for (const char *p = text; *p;) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        msg_warn("%.*s", (int)n, p);
        p += n + (nl != NULL);
    }
}

static int last_allow_missing;

void config_load(int allow_missing)
{
    last_allow_missing = allow_missing;
    struct strbuf errors = STRBUF_INIT, warnings = STRBUF_INIT;
    int problems = load(allow_missing, &errors, &warnings);
    log_configure(config_value_or("syslog_name", "postern"),
                  config_value_or("syslog_facility", "mail"),
                  config_value_or("maillog_file", ""));
    warn_lines(strbuf_str(&warnings));
    if (problems) {
        const char *text = strbuf_str(&errors);
        const char *last = text;
        for (const char *p = text; *p;) {
            const char *nl = strchr(p, '\n');
            size_t n = nl ? (size_t)(nl - p) : strlen(p);
            const char *next = p + n + (nl != NULL);
            if (*next)
                msg_error("%.*s", (int)n, p);
            else
                last = p;
            p = next;
        }
        size_t n = strcspn(last, "\n");
        msg_fatal("%.*s", (int)n, last);
    }
    strbuf_free(&errors);
    strbuf_free(&warnings);
}

int config_load_split(int allow_missing, struct strbuf *errors, struct strbuf *warnings)
{
    return load(allow_missing, errors, warnings);
}

int config_load_report(int allow_missing, struct strbuf *report)
{
    struct strbuf warnings = STRBUF_INIT;
    int problems = load(allow_missing, report, &warnings);
    strbuf_puts(report, strbuf_str(&warnings));
    for (const char *p = strbuf_str(&warnings); (p = strchr(p, '\n')); p++)
        problems++;
    strbuf_free(&warnings);
    return problems;
}

void config_reload(void)
{
    config_load(last_allow_missing);
}

/* ---- values ---- */

/* The setting of a name a program asks for; fatal when undeclared and unset. */
static struct setting *wanted(const char *name)
{
    struct setting *s = get_setting(name);
    if (!s)
        msg_fatal("conf: parameter %s is not declared in lib/conf/params.c", name);
    return s;
}

const char *conf_str(const char *name)
{
    struct setting *s = wanted(name);
    const char *value;
    struct strbuf err = STRBUF_INIT;
    if (lookup_expanded(name, NULL, &value, &err) != 0) {
        struct strbuf at = STRBUF_INIT;
        where(s, &at);
        msg_fatal("%sparameter %s: %s", strbuf_str(&at), name, strbuf_str(&err));
    }
    strbuf_free(&err);
    return value ? value : "";
}

/* The typed value of a declared parameter: fatal when malformed. */
static long long conf_number(const char *name, enum param_type type)
{
    const char *value = conf_str(name);
    struct setting *s = find_setting(name);
    const struct param_def *def = s->def;
    struct strbuf err = STRBUF_INIT;
    if (!def || def->type != type)
        msg_fatal("conf: parameter %s is not declared with this type", name);
    if (check_type(def, value, &err) != 0) {
        struct strbuf at = STRBUF_INIT;
        where(s, &at);
        msg_fatal("%s%s", strbuf_str(&at), strbuf_str(&err));
    }
    strbuf_free(&err);
    switch (type) {
    case PARAM_BOOL: return parse_bool(value);
    case PARAM_TIME: return parse_time(value, def->time_unit);
    case PARAM_SIZE: return parse_size(value);
    default:         return strtoll(value, NULL, 10);
    }
}

int conf_bool(const char *name) { return (int)conf_number(name, PARAM_BOOL); }
long long conf_int(const char *name) { return conf_number(name, PARAM_INT); }
long long conf_time(const char *name) { return conf_number(name, PARAM_TIME); }
long long conf_size(const char *name) { return conf_number(name, PARAM_SIZE); }

const char *conf_raw(const char *name)
{
    struct setting *s = get_setting(name);
    return s ? s->raw : NULL;
}

int conf_is_set(const char *name)
{
    struct setting *s = find_setting(name);
    return s && s->source != SRC_DEFAULT;
}

int config_is_referenced(const char *name)
{
    struct setting *s = find_setting(name);
    return s && s->referenced;
}

int conf_expand(const char *text, struct strbuf *out, struct strbuf *err)
{
    return expand_text(text, lookup_expanded, NULL, out, err);
}

size_t conf_entries(const struct conf_entry **list)
{
    *list = entries;
    return entry_count;
}

void conf_list(const char *name, struct strlist *out)
{
    struct strbuf err = STRBUF_INIT;
    if (list_split(conf_str(name), out, &err) != 0) {
        struct strbuf at = STRBUF_INIT;
        where(find_setting(name), &at);
        msg_fatal("%sparameter %s: %s", strbuf_str(&at), name, strbuf_str(&err));
    }
    strbuf_free(&err);
}

void config_set_names(struct strlist *out)
{
    for (size_t b = 0; b < BUCKETS; b++)
        for (struct setting *s = table[b]; s; s = s->next)
            if (s->source != SRC_DEFAULT)
                strlist_add(out, s->name);
}

void config_default(const struct param_def *def, struct strbuf *out)
{
    if (def->derive)
        def->derive(out);
    else
        strbuf_puts(out, def->default_value ? def->default_value : "");
}
