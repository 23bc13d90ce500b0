/* maincf.c - libFuzzer target: main.cf text through the parser, then every
 * value expanded and split as programs would use it.  Must never crash,
 * hang or leak, whatever the bytes. */
#include <stddef.h>
#include <stdint.h>

#include "config.h"
#include "config_impl.h"
#include "log.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int initialized;
    if (!initialized) {
        log_open("fuzz-maincf", 0);
        log_configure("fuzz", "mail", "/dev/null");
        initialized = 1;
    }
    struct strbuf report = STRBUF_INIT, value = STRBUF_INIT, err = STRBUF_INIT;
    config_load_text((const char *)data, size, "fuzz/main.cf", &report);
    const struct conf_entry *entries;
    size_t count = conf_entries(&entries);
    for (size_t i = 0; i < count; i++) {
        strbuf_reset(&value);
        strbuf_reset(&err);
        if (conf_expand(entries[i].value, &value, &err) != 0)
            continue;
        struct strlist items = STRLIST_INIT;
        list_split(strbuf_str(&value), &items, &err);
        strlist_free(&items);
        parse_bool(strbuf_str(&value));
        parse_time(strbuf_str(&value), 's');
        parse_size(strbuf_str(&value));
    }
    config_clear();
    strbuf_free(&report);
    strbuf_free(&value);
    strbuf_free(&err);
    return 0;
}
