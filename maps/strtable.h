/* strtable.h - an in-memory hash table of string keys and values that
 * remembers the order in which keys were added (texthash, inline, and
 * duplicate detection while building cdb files). */
#ifndef POSTERN_STRTABLE_H
#define POSTERN_STRTABLE_H

#include <stddef.h>

struct strtable;

struct strtable *strtable_new(void);
/* Add key with value.  Returns 1 when the key was new, 0 when it was
 * there already (its value is then replaced only when `replace` is set).
 * value may be NULL (a set of keys). */
int strtable_put(struct strtable *table, const char *key, const char *value,
                 int replace);
/* The value of key, or NULL when absent (or stored as NULL). */
const char *strtable_get(const struct strtable *table, const char *key);
size_t strtable_count(const struct strtable *table);
/* The i-th key and value in the order they were first added. */
const char *strtable_key(const struct strtable *table, size_t i);
const char *strtable_value(const struct strtable *table, size_t i);
void strtable_free(struct strtable *table);

#endif
