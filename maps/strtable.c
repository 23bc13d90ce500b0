/* strtable.c - string hash table in insertion order (see strtable.h).
 * Open addressing with linear probing over indexes into the entry array;
 * the slot array doubles when it is half full. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "strtable.h"
#include "xalloc.h"

struct strtable_entry {
    char *key;
    char *value;
};

struct strtable {
    struct strtable_entry *entries;
    size_t count, allocated;
    size_t *slots;          /* entry index + 1; 0 = empty */
    size_t slot_count;      /* a power of two */
};

/* FNV-1a over the key. */
static size_t hash_key(const char *key)
{
    uint64_t h = 1469598103934665603ULL;
    for (const unsigned char *p = (const unsigned char *)key; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return (size_t)(h ^ (h >> 32));
}

struct strtable *strtable_new(void)
{
    struct strtable *table = xcalloc(1, sizeof *table);
    table->slot_count = 64;
    table->slots = xcalloc(table->slot_count, sizeof *table->slots);
    return table;
}

/* The slot holding key, or the empty slot where it would go. */
static size_t find_slot(const struct strtable *table, const char *key)
{
    size_t mask = table->slot_count - 1;
    size_t i = hash_key(key) & mask;
    while (table->slots[i]
           && strcmp(table->entries[table->slots[i] - 1].key, key) != 0)
        i = (i + 1) & mask;
    return i;
}

/* Double the slot array and re-insert every entry. */
static void grow_slots(struct strtable *table)
{
    free(table->slots);
    table->slot_count *= 2;
    table->slots = xcalloc(table->slot_count, sizeof *table->slots);
    for (size_t e = 0; e < table->count; e++)
        table->slots[find_slot(table, table->entries[e].key)] = e + 1;
}

int strtable_put(struct strtable *table, const char *key, const char *value,
                 int replace)
{
    size_t slot = find_slot(table, key);
    if (table->slots[slot]) {
        struct strtable_entry *old = &table->entries[table->slots[slot] - 1];
        if (replace) {
            free(old->value);
            old->value = value ? xstrdup(value) : NULL;
        }
        return 0;
    }
    if (table->count == table->allocated) {
        table->allocated = table->allocated ? table->allocated * 2 : 16;
        table->entries = xreallocarray(table->entries, table->allocated,
                                       sizeof *table->entries);
    }
    table->entries[table->count].key = xstrdup(key);
    table->entries[table->count].value = value ? xstrdup(value) : NULL;
    table->count++;
    table->slots[slot] = table->count;
    if (table->count * 2 > table->slot_count)
        grow_slots(table);
    return 1;
}

const char *strtable_get(const struct strtable *table, const char *key)
{
    size_t slot = find_slot(table, key);
    return table->slots[slot] ? table->entries[table->slots[slot] - 1].value : NULL;
}

size_t strtable_count(const struct strtable *table)
{
    return table->count;
}

const char *strtable_key(const struct strtable *table, size_t i)
{
    return i < table->count ? table->entries[i].key : NULL;
}

const char *strtable_value(const struct strtable *table, size_t i)
{
    return i < table->count ? table->entries[i].value : NULL;
}

void strtable_free(struct strtable *table)
{
    if (!table)
        return;
    for (size_t i = 0; i < table->count; i++) {
        free(table->entries[i].key);
        free(table->entries[i].value);
    }
    free(table->entries);
    free(table->slots);
    free(table);
}
