/* clientlist.c - client address-match lists (see clientlist.h): networks,
 * negation, /file includes and lookup tables, first match decides. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clientlist.h"
#include "config.h"
#include "map.h"
#include "strbuf.h"
#include "xalloc.h"

#define INCLUDE_DEPTH_MAX 8

enum item_kind { ITEM_NET, ITEM_TABLE };

struct item {
    enum item_kind kind;
    int negate;
    int family;                 /* AF_INET or AF_INET6 */
    unsigned char net[16];      /* network bytes (host bits zero) */
    int prefix;                 /* bits */
    struct map *table;
};

struct clientlist {
    struct item *items;
    size_t count, size;
};

/* Append an item to the list. */
static void add_item(struct clientlist *list, const struct item *item)
{
    if (list->count == list->size) {
        list->size = list->size ? 2 * list->size : 8;
        list->items = xreallocarray(list->items, list->size, sizeof *list->items);
    }
    list->items[list->count++] = *item;
}

/* Parse "addr" or "addr/len" (IPv6 possibly in brackets) into item; 1 on
 * success, 0 when the text is no address (a host name), -1 on an error. */
static int parse_network(const char *text, const char *what, struct item *item,
                         struct strbuf *err)
{
    char buf[INET6_ADDRSTRLEN + 8];
    const char *addr = text;
    const char *slash = NULL;
    size_t addr_len;
    if (text[0] == '[') {
        const char *close = strchr(text, ']');
        if (!close) {
            strbuf_printf(err, "%s: unbalanced [ in \"%s\"", what, text);
            return -1;
        }
        addr = text + 1;
        addr_len = (size_t)(close - addr);
        if (close[1] == '/')
            slash = close + 1;
        else if (close[1]) {
            strbuf_printf(err, "%s: unexpected text after ] in \"%s\"", what, text);
            return -1;
        }
    } else {
        slash = strchr(text, '/');
        addr_len = slash ? (size_t)(slash - text) : strlen(text);
    }
    if (addr_len == 0 || addr_len >= sizeof buf)
        return text[0] == '[' ? (strbuf_printf(err, "%s: bad address \"%s\"", what, text), -1) : 0;
    memcpy(buf, addr, addr_len);
    buf[addr_len] = '\0';
    memset(item, 0, sizeof *item);
    item->kind = ITEM_NET;
    int maxbits;
    if (inet_pton(AF_INET, buf, item->net) == 1) {
        item->family = AF_INET;
        maxbits = 32;
    } else if (inet_pton(AF_INET6, buf, item->net) == 1) {
        item->family = AF_INET6;
        maxbits = 128;
    } else if (text[0] == '[' || strspn(buf, "0123456789.") == addr_len) {
        strbuf_printf(err, "%s: bad address \"%s\"", what, text);
        return -1;
    } else {
        return 0;
    }
    item->prefix = maxbits;
    if (slash) {
        char *end;
        errno = 0;
        long bits = strtol(slash + 1, &end, 10);
        if (slash[1] == '\0' || *end || errno || bits < 0 || bits > maxbits) {
            strbuf_printf(err, "%s: bad network mask in \"%s\"", what, text);
            return -1;
        }
        item->prefix = (int)bits;
    }
    for (int bit = item->prefix; bit < maxbits; bit++) {
        if (item->net[bit / 8] & (0x80 >> (bit % 8))) {
            strbuf_printf(err, "%s: non-null host address bits in \"%s\"", what, text);
            return -1;
        }
    }
    return 1;
}

static int parse_into(struct clientlist *list, const char *value, const char *what,
                      int depth, struct strbuf *err, struct strbuf *warnings);

/* 1 for "type:name" (a lookup table; addresses were tried first). */
static int is_table_name(const char *word)
{
    size_t n = strspn(word, "abcdefghijklmnopqrstuvwxyz0123456789_-");
    return n > 0 && word[0] >= 'a' && word[0] <= 'z' && word[n] == ':' && word[n + 1];
}

/* Read a /file/name include: its lines are more items. */
static int parse_file(struct clientlist *list, const char *path, const char *what,
                      int depth, struct strbuf *err, struct strbuf *warnings)
{
    if (depth >= INCLUDE_DEPTH_MAX) {
        strbuf_printf(err, "%s: %s: files include each other too deeply", what, path);
        return -1;
    }
    FILE *f = fopen(path, "re");
    if (!f) {
        strbuf_printf(err, "%s: open %s: %s", what, path, strerror(errno));
        return -1;
    }
    struct strbuf text = STRBUF_INIT;
    char line[4096];
    while (fgets(line, sizeof line, f)) {
        char *hash = strchr(line, '#');
        if (hash)
            *hash = '\0';
        strbuf_puts(&text, line);
        strbuf_putc(&text, ' ');
    }
    int failed = ferror(f);
    fclose(f);
    int rc = failed ? (strbuf_printf(err, "%s: read %s: %s", what, path, strerror(EIO)), -1)
                    : parse_into(list, strbuf_str(&text), path, depth + 1, err, warnings);
    strbuf_free(&text);
    return rc;
}

/* Parse every item of a value into list. */
static int parse_into(struct clientlist *list, const char *value, const char *what,
                      int depth, struct strbuf *err, struct strbuf *warnings)
{
    struct strlist words = STRLIST_INIT;
    if (list_split(value, &words, err) < 0) {
        strlist_free(&words);
        return -1;
    }
    int rc = 0;
    for (size_t i = 0; i < words.count && rc == 0; i++) {
        const char *word = words.item[i];
        struct item item;
        memset(&item, 0, sizeof item);
        while (*word == '!') {
            item.negate = !item.negate;
            word++;
        }
        if (word[0] == '/') {
            if (item.negate) {
                strbuf_printf(err, "%s: a file name cannot be negated: \"%s\"", what, words.item[i]);
                rc = -1;
            } else {
                rc = parse_file(list, word, what, depth, err, warnings);
            }
            continue;
        }
        int negate = item.negate;
        int parsed = parse_network(word, what, &item, err);
        item.negate = negate;
        if (parsed < 0) {
            rc = -1;
        } else if (parsed == 1) {
            add_item(list, &item);
        } else if (is_table_name(word)) {
            struct strbuf open_err = STRBUF_INIT;
            item.kind = ITEM_TABLE;
            item.table = map_open(word, &open_err);
            if (!item.table) {
                strbuf_printf(err, "%s: %s", what, strbuf_str(&open_err));
                rc = -1;
            } else {
                add_item(list, &item);
            }
            strbuf_free(&open_err);
        } else if (warnings) {
            strbuf_printf(warnings, "%s: host name pattern \"%s\" is not matched "
                          "(client names are not looked up here)\n", what, word);
        }
    }
    strlist_free(&words);
    return rc;
}

struct clientlist *clientlist_parse(const char *value, const char *what,
                                struct strbuf *err, struct strbuf *warnings)
{
    struct clientlist *list = xcalloc(1, sizeof *list);
    if (parse_into(list, value, what, 0, err, warnings) < 0) {
        clientlist_free(list);
        return NULL;
    }
    return list;
}

/* 1 when the first `bits` bits of a and b agree. */
static int prefix_equal(const unsigned char *a, const unsigned char *b, int bits)
{
    int whole = bits / 8;
    if (memcmp(a, b, (size_t)whole) != 0)
        return 0;
    if (bits % 8 == 0)
        return 1;
    unsigned char mask = (unsigned char)(0xff << (8 - bits % 8));
    return (a[whole] & mask) == (b[whole] & mask);
}

/* The match over a binary address (family, bytes) and its text form. */
static int match_bytes(const struct clientlist *list, int family,
                       const unsigned char *bytes, const char *text)
{
    for (size_t i = 0; i < list->count; i++) {
        const struct item *item = &list->items[i];
        int hit;
        if (item->kind == ITEM_NET) {
            hit = item->family == family && prefix_equal(item->net, bytes, item->prefix);
        } else {
            struct strbuf value = STRBUF_INIT;
            int r = map_lookup(item->table, text, &value);
            strbuf_free(&value);
            if (r == MAP_RETRY)
                return -1;
            hit = r == MAP_FOUND;
        }
        if (hit)
            return item->negate ? 0 : 1;
    }
    return 0;
}

int clientlist_match(const struct clientlist *list, const struct sockaddr *addr)
{
    char text[INET6_ADDRSTRLEN];
    if (list->count == 0)
        return 0;
    if (addr->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)addr;
        inet_ntop(AF_INET, &in->sin_addr, text, sizeof text);
        return match_bytes(list, AF_INET, (const unsigned char *)&in->sin_addr, text);
    }
    if (addr->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)addr;
        if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) {
            const unsigned char *v4 = in6->sin6_addr.s6_addr + 12;
            inet_ntop(AF_INET, v4, text, sizeof text);
            return match_bytes(list, AF_INET, v4, text);
        }
        inet_ntop(AF_INET6, &in6->sin6_addr, text, sizeof text);
        return match_bytes(list, AF_INET6, in6->sin6_addr.s6_addr, text);
    }
    return 0;
}

int clientlist_match_text(const struct clientlist *list, const char *address)
{
    struct sockaddr_in6 in6;
    struct sockaddr_in in;
    memset(&in, 0, sizeof in);
    memset(&in6, 0, sizeof in6);
    if (inet_pton(AF_INET, address, &in.sin_addr) == 1) {
        in.sin_family = AF_INET;
        return clientlist_match(list, (struct sockaddr *)&in);
    }
    if (inet_pton(AF_INET6, address, &in6.sin6_addr) == 1) {
        in6.sin6_family = AF_INET6;
        return clientlist_match(list, (struct sockaddr *)&in6);
    }
    return 0;
}

int clientlist_empty(const struct clientlist *list)
{
    return list->count == 0;
}

void clientlist_free(struct clientlist *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++)
        if (list->items[i].kind == ITEM_TABLE)
            map_close(list->items[i].table);
    free(list->items);
    free(list);
}
