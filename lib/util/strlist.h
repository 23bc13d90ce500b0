/* strlist.h - a list of strings, and splitting a value into one the way
 * Postfix splits a list-valued parameter: on commas and white space, with
 * `{ ... }` grouping one item (braces removed, inner text kept).  Knows
 * nothing of main.cf: config (conf_list), maps and the programs share it.
 */
#ifndef POSTERN_STRLIST_H
#define POSTERN_STRLIST_H

#include <stddef.h>

struct strbuf;

struct strlist {
    char **item;
    size_t count;
};
#define STRLIST_INIT { NULL, 0 }
/* Split an already expanded value, appending to out.  Returns 0, or -1
 * with err set for an unbalanced brace (out then holds what it held before). */
int list_split(const char *value, struct strlist *out, struct strbuf *err);
void strlist_add(struct strlist *list, const char *s);
void strlist_free(struct strlist *list);

#endif
