/* mastercf.c - fuzz the master.cf reader (lib/conf/mastercf.c) and its
 * -o settings (master_service_overrides). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mastercf.h"
#include "strbuf.h"
#include "strlist.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct master_table table;
    struct strbuf err = STRBUF_INIT;
    int rc = master_parse("fuzz", (const char *)data, size, &table, &err);
    if ((rc < 0) != (err.len > 0))
        __builtin_trap();
    for (size_t i = 0; rc == 0 && i < table.count; i++) {
        const struct master_service *s = &table.service[i];
        if (!s->service || !s->type || !s->command || s->args[s->arg_count] != NULL || s->line < 1)
            __builtin_trap();
        (void)master_maxproc(s, 100);
        /* the -o settings: each from one argument, never more than there are */
        struct strlist overrides = STRLIST_INIT;
        master_service_overrides(s, &overrides);
        if (overrides.count > s->arg_count)
            __builtin_trap();
        strlist_free(&overrides);
    }
    if (rc == 0)
        master_free(&table);
    strbuf_free(&err);
    return 0;
}
