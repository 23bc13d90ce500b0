/* config.c - main.cf reading and expansion: not written yet (stubs). */
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "log.h"
#include "strbuf.h"
#include "xalloc.h"

/* Split on commas and white space (stub: no brace grouping yet). */
int list_split(const char *value, struct strlist *out, struct strbuf *err)
{
    (void)err;
    const char *p = value;
    while (*p) {
        p += strspn(p, ", \t\r\n");
        size_t n = strcspn(p, ", \t\r\n");
        if (n) {
            char *item = xstrndup(p, n);
            strlist_add(out, item);
            free(item);
        }
        p += n;
    }
    return 0;
}

void strlist_add(struct strlist *list, const char *s)
{
    list->item = xreallocarray(list->item, list->count + 1, sizeof *list->item);
    list->item[list->count++] = xstrdup(s);
}

void strlist_free(struct strlist *list)
{
    for (size_t i = 0; i < list->count; i++)
        free(list->item[i]);
    free(list->item);
    list->item = NULL;
    list->count = 0;
}
