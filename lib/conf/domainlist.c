/* domainlist.c - Postfix domain lists (names, type:table, /file/name,
 * !negation) with the parent_domain_matches_subdomains rule; see
 * domainlist.h. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "domainlist.h"
#include "map.h"
#include "strbuf.h"
#include "xalloc.h"

enum item_kind { ITEM_NAME, ITEM_TABLE };

struct domain_item {
    enum item_kind kind;
    int negated;
    char *name;             /* ITEM_NAME, lower case */
    struct maplist *table;  /* ITEM_TABLE */
};

struct domainlist {
    struct domain_item *items;
    size_t count;
    int parent_matches;
    int exact;              /* a string list: the domain itself only */
};

/* The domain lists that Postfix matches as string lists (match_string):
 * a name or a table key equal to the domain, never a subdomain, whatever
 * parent_domain_matches_subdomains says (t/50-qmgr-resolve.t compares
 * with Postfix 3.7). */
static int string_list(const char *param_name)
{
    static const char *const names[] = {
        "mydestination", "virtual_alias_domains", "virtual_mailbox_domains",
    };
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(param_name, names[i]) == 0)
            return 1;
    return 0;
}

int domain_parent_matches(const char *param_name)
{
    struct strlist names = STRLIST_INIT;
    conf_list("parent_domain_matches_subdomains", &names);
    int found = 0;
    for (size_t i = 0; i < names.count && !found; i++)
        found = strcmp(names.item[i], param_name) == 0;
    strlist_free(&names);
    return found;
}

/* Append one item; files are read and their words added in place. */
static int add_item(struct domainlist *list, const char *param_name,
                    const char *word, int depth, struct strbuf *err)
{
    int negated = 0;
    while (*word == '!') {
        negated = !negated;
        word++;
    }
    if (*word == '\0')
        return 0;
    if (word[0] == '/') {
        if (depth > 4) {
            strbuf_printf(err, "%s: files nested too deep at %s", param_name, word);
            return -1;
        }
        FILE *f = fopen(word, "r");
        if (!f) {
            strbuf_printf(err, "%s: open %s: %s", param_name, word, strerror(errno));
            return -1;
        }
        char *line = NULL;
        size_t cap = 0;
        int result = 0;
        while (result == 0 && getline(&line, &cap, f) >= 0) {
            char *hash = strchr(line, '#');
            if (hash)
                *hash = '\0';
            struct strlist words = STRLIST_INIT;
            list_split(line, &words, err);
            for (size_t i = 0; i < words.count && result == 0; i++) {
                struct strbuf item = STRBUF_INIT;
                if (negated)
                    strbuf_putc(&item, '!');
                strbuf_puts(&item, words.item[i]);
                result = add_item(list, param_name, strbuf_str(&item), depth + 1, err);
                strbuf_free(&item);
            }
            strlist_free(&words);
        }
        free(line);
        fclose(f);
        return result;
    }
    list->items = xreallocarray(list->items, list->count + 1, sizeof *list->items);
    struct domain_item *item = &list->items[list->count];
    memset(item, 0, sizeof *item);
    item->negated = negated;
    const char *colon = strchr(word, ':');
    if (colon && colon != word && word[0] != '[') {
        struct strbuf table_err = STRBUF_INIT;
        item->table = maplist_open(word, &table_err);
        if (!item->table) {
            strbuf_printf(err, "%s: %s", param_name, strbuf_str(&table_err));
            strbuf_free(&table_err);
            return -1;
        }
        strbuf_free(&table_err);
        item->kind = ITEM_TABLE;
    } else {
        item->kind = ITEM_NAME;
        item->name = xstrdup(word);
        for (char *p = item->name; *p; p++)
            *p = (char)tolower((unsigned char)*p);
    }
    list->count++;
    return 0;
}

struct domainlist *domainlist_open(const char *param_name, const char *value,
                                   struct strbuf *err)
{
    struct domainlist *list = xcalloc(1, sizeof *list);
    list->exact = string_list(param_name);
    list->parent_matches = !list->exact && domain_parent_matches(param_name);
    struct strlist words = STRLIST_INIT;
    if (list_split(value, &words, err) != 0) {
        strlist_free(&words);
        domainlist_free(list);
        return NULL;
    }
    for (size_t i = 0; i < words.count; i++) {
        if (add_item(list, param_name, words.item[i], 0, err) != 0) {
            strlist_free(&words);
            domainlist_free(list);
            return NULL;
        }
    }
    strlist_free(&words);
    return list;
}

struct domainlist *domainlist_from_param(const char *param_name,
                                         struct strbuf *err)
{
    return domainlist_open(param_name, conf_str(param_name), err);
}

/* Does a name item match the (lower-case) domain? */
static int name_matches(const struct domainlist *list, const char *pattern,
                        const char *domain)
{
    if (list->exact)
        return strcmp(pattern, domain) == 0;
    if (pattern[0] == '.') {
        /* ".example.com": every subdomain of example.com */
        size_t plen = strlen(pattern), dlen = strlen(domain);
        return dlen > plen && strcmp(domain + dlen - plen, pattern) == 0;
    }
    if (strcmp(pattern, domain) == 0)
        return 1;
    if (!list->parent_matches)
        return 0;
    size_t plen = strlen(pattern), dlen = strlen(domain);
    return dlen > plen && domain[dlen - plen - 1] == '.'
           && strcmp(domain + dlen - plen, pattern) == 0;
}

int domainlist_match(struct domainlist *list, const char *domain)
{
    char *folded = xstrdup(domain);
    size_t n = strlen(folded);
    while (n && folded[n - 1] == '.')
        folded[--n] = '\0';
    for (char *p = folded; *p; p++)
        *p = (char)tolower((unsigned char)*p);
    int result = 0;
    struct strbuf value = STRBUF_INIT;
    for (size_t i = 0; i < list->count; i++) {
        struct domain_item *item = &list->items[i];
        int hit;
        if (item->kind == ITEM_NAME)
            hit = name_matches(list, item->name, folded);
        else if (list->exact)
            hit = maplist_lookup(item->table, folded, &value);
        else
            hit = map_search_domain(item->table, folded, list->parent_matches, &value);
        if (hit == MAP_RETRY) {
            result = MAP_RETRY;
            break;
        }
        if (hit) {
            result = item->negated ? 0 : 1;
            break;
        }
    }
    strbuf_free(&value);
    free(folded);
    return result;
}

int domainlist_empty(const struct domainlist *list)
{
    return list->count == 0;
}

int domainlist_changed(const struct domainlist *list)
{
    for (size_t i = 0; list && i < list->count; i++)
        if (list->items[i].table && maplist_changed(list->items[i].table))
            return 1;
    return 0;
}

void domainlist_free(struct domainlist *list)
{
    if (!list)
        return;
    for (size_t i = 0; i < list->count; i++) {
        free(list->items[i].name);
        maplist_close(list->items[i].table);
    }
    free(list->items);
    free(list);
}
