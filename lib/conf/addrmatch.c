/* addrmatch.c - client address-match lists (see addrmatch.h). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "addrmatch.h"
#include "config.h"
#include "log.h"
#include "map.h"
#include "strbuf.h"
#include "xalloc.h"

#define ADDRMATCH_FILE_MAX  (1024 * 1024)   /* bytes of a /file list */
#define ADDRMATCH_DEPTH_MAX 8               /* /file nesting */

enum item_kind { ITEM_NET, ITEM_TABLE, ITEM_NAME };

struct item {
    enum item_kind kind;
    int negate;
    int family;
    unsigned char net[16];
    int prefix;                 /* ITEM_NET: bits */
    struct map *table;          /* ITEM_TABLE */
    char *name;                 /* ITEM_NAME, lower case */
};

struct addrmatch {
    struct item *items;
    size_t count;
    int parent_matches;
};

int addr_parse(const char *text, unsigned char bytes[16])
{
    char buf[INET6_ADDRSTRLEN + 2];
    size_t len = strlen(text);
    if (len >= sizeof buf)
        return 0;
    if (text[0] == '[' && len >= 2 && text[len - 1] == ']') {
        memcpy(buf, text + 1, len - 2);
        buf[len - 2] = '\0';
    } else {
        memcpy(buf, text, len + 1);
    }
    if (strncasecmp(buf, "ipv6:", 5) == 0)
        memmove(buf, buf + 5, strlen(buf + 5) + 1);
    memset(bytes, 0, 16);
    if (inet_pton(AF_INET, buf, bytes) == 1)
        return AF_INET;
    unsigned char v6[16];
    if (inet_pton(AF_INET6, buf, v6) != 1)
        return 0;
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (memcmp(v6, mapped, 12) == 0) {
        memcpy(bytes, v6 + 12, 4);
        return AF_INET;
    }
    memcpy(bytes, v6, 16);
    return AF_INET6;
}

int addr_normalize(const char *text, char *out, unsigned long size)
{
    unsigned char bytes[16];
    int family = addr_parse(text, bytes);
    if (!family || !inet_ntop(family, bytes, out, (socklen_t)size))
        return -1;
    return 0;
}

/* 1 when the first `prefix` bits of a and b agree. */
static int prefix_equal(const unsigned char *a, const unsigned char *b, int prefix)
{
    int whole = prefix / 8, rest = prefix % 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - rest));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* Parse "addr" or "addr/len" (brackets around IPv6 allowed) into an item;
 * 1 when it is one, 0 when it is not an address, -1 when malformed. */
static int parse_network(const char *text, struct item *item, struct strbuf *err,
                         const char *param_name)
{
    char buf[INET6_ADDRSTRLEN + 16];
    if (strlen(text) >= sizeof buf)
        return 0;
    strcpy(buf, text);
    char *slash = strrchr(buf, '/');
    if (slash && slash != buf && (slash[-1] == ']' || !strchr(slash, ']')))
        *slash++ = '\0';
    else
        slash = NULL;
    item->family = addr_parse(buf, item->net);
    if (!item->family)
        return 0;
    int max = item->family == AF_INET ? 32 : 128;
    item->prefix = max;
    if (slash) {
        char *end;
        errno = 0;
        long n = strtol(slash, &end, 10);
        if (!*slash || *end || n < 0 || n > max) {
            strbuf_printf(err, "%s: bad address pattern: \"%s\"", param_name, text);
            return -1;
        }
        item->prefix = (int)n;
        unsigned char masked[16];
        memcpy(masked, item->net, 16);
        for (int i = 0; i < 16; i++) {
            int keep = item->prefix - i * 8;
            if (keep <= 0)
                masked[i] = 0;
            else if (keep < 8)
                masked[i] &= (unsigned char)(0xff << (8 - keep));
        }
        if (memcmp(masked, item->net, 16) != 0) {
            /* Postfix refuses a network with host bits set */
            strbuf_printf(err, "%s: non-null host address bits in \"%s\", perhaps you should use \"%s\" instead",
                          param_name, text, text);
            return -1;
        }
    }
    item->kind = ITEM_NET;
    return 1;
}

static int add_items(struct addrmatch *list, const char *param_name, const char *value,
                     int depth, struct strbuf *err);

/* Read a /file list: its words are items. */
static int add_file(struct addrmatch *list, const char *param_name, const char *path,
                    int depth, struct strbuf *err)
{
    if (depth >= ADDRMATCH_DEPTH_MAX) {
        strbuf_printf(err, "%s: %s: files nested too deeply", param_name, path);
        return -1;
    }
    FILE *fp = fopen(path, "r");
    if (!fp) {
        strbuf_printf(err, "%s: open %s: %s", param_name, path, strerror(errno));
        return -1;
    }
    struct strbuf text = STRBUF_INIT;
    char line[4096];
    while (fgets(line, sizeof line, fp)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        strbuf_puts(&text, line);
        strbuf_putc(&text, ' ');
        if (text.len > ADDRMATCH_FILE_MAX) {
            strbuf_printf(err, "%s: %s: file too large", param_name, path);
            break;
        }
    }
    int bad = ferror(fp) || err->len;
    fclose(fp);
    if (!bad)
        bad = add_items(list, param_name, strbuf_str(&text), depth + 1, err) != 0;
    strbuf_free(&text);
    return bad ? -1 : 0;
}

/* Parse and append the items of a value. */
static int add_items(struct addrmatch *list, const char *param_name, const char *value,
                     int depth, struct strbuf *err)
{
    struct strlist words = STRLIST_INIT;
    if (list_split(value, &words, err) != 0) {
        strlist_free(&words);
        return -1;
    }
    int status = 0;
    for (size_t i = 0; i < words.count && status == 0; i++) {
        const char *word = words.item[i];
        int negate = 0;
        while (*word == '!') {
            negate = !negate;
            word++;
        }
        if (!*word)
            continue;
        if (*word == '/') {
            status = add_file(list, param_name, word, depth, err);
            continue;
        }
        struct item item;
        memset(&item, 0, sizeof item);
        item.negate = negate;
        int net = parse_network(word, &item, err, param_name);
        if (net < 0) {
            status = -1;
            continue;
        }
        if (net == 0 && strchr(word, ':') && word[0] != '[') {
            struct strbuf why = STRBUF_INIT;
            item.table = map_open(word, &why);
            if (!item.table) {
                strbuf_printf(err, "%s: %s", param_name, strbuf_str(&why));
                strbuf_free(&why);
                status = -1;
                continue;
            }
            strbuf_free(&why);
            item.kind = ITEM_TABLE;
        } else if (net == 0) {
            item.kind = ITEM_NAME;
            item.name = xstrdup(word);
            for (char *p = item.name; *p; p++)
                *p = (char)tolower((unsigned char)*p);
        }
        list->items = xreallocarray(list->items, list->count + 1, sizeof *list->items);
        list->items[list->count++] = item;
    }
    strlist_free(&words);
    return status;
}

struct addrmatch *addrmatch_open(const char *param_name, const char *value,
                                 struct strbuf *err)
{
    struct addrmatch *list = xcalloc(1, sizeof *list);
    struct strlist parents = STRLIST_INIT;
    struct strbuf ignore = STRBUF_INIT;
    if (list_split(conf_str("parent_domain_matches_subdomains"), &parents, &ignore) == 0)
        for (size_t i = 0; i < parents.count; i++)
            if (strcmp(parents.item[i], param_name) == 0)
                list->parent_matches = 1;
    strlist_free(&parents);
    strbuf_free(&ignore);
    if (add_items(list, param_name, value, 0, err) != 0) {
        addrmatch_free(list);
        return NULL;
    }
    return list;
}

/* 1 when a host name matches a name item. */
static int name_matches(const struct item *item, const char *name, int parent_matches)
{
    if (strcasecmp(name, "unknown") == 0)
        return 0;
    size_t nlen = strlen(name), plen = strlen(item->name);
    if (item->name[0] == '.')
        return nlen > plen && strcasecmp(name + nlen - plen, item->name) == 0;
    if (strcasecmp(name, item->name) == 0)
        return 1;
    return parent_matches && nlen > plen && name[nlen - plen - 1] == '.'
           && strcasecmp(name + nlen - plen, item->name) == 0;
}

int addrmatch_match(struct addrmatch *list, const char *name, const char *address)
{
    unsigned char bytes[16];
    int family = addr_parse(address, bytes);
    char plain[INET6_ADDRSTRLEN];
    if (!family || !inet_ntop(family, bytes, plain, sizeof plain))
        snprintf(plain, sizeof plain, "%s", address);
    struct strbuf value = STRBUF_INIT;
    int answer = 0;
    for (size_t i = 0; i < list->count; i++) {
        struct item *item = &list->items[i];
        int hit = 0;
        switch (item->kind) {
        case ITEM_NET:
            hit = family == item->family && prefix_equal(bytes, item->net, item->prefix);
            break;
        case ITEM_NAME:
            hit = name_matches(item, name, list->parent_matches);
            break;
        case ITEM_TABLE: {
            int r = map_lookup(item->table, plain, &value);
            if (r == MAP_NOTFOUND && strcasecmp(name, "unknown") != 0)
                r = map_lookup(item->table, name, &value);
            if (r == MAP_RETRY) {
                strbuf_free(&value);
                return -1;
            }
            hit = r == MAP_FOUND;
            break;
        }
        }
        if (hit) {
            answer = !item->negate;
            break;
        }
    }
    strbuf_free(&value);
    return answer;
}

int addrmatch_changed(const struct addrmatch *list)
{
    for (size_t i = 0; list && i < list->count; i++)
        if (list->items[i].table && map_changed(list->items[i].table))
            return 1;
    return 0;
}

void addrmatch_free(struct addrmatch *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++) {
        if (list->items[i].table)
            map_close(list->items[i].table);
        free(list->items[i].name);
    }
    free(list->items);
    free(list);
}
