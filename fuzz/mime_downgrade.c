/* mime_downgrade.c - fuzz the 8-bit to 7-bit converter of the smtp runner
 * (lib/mail/mime_downgrade.c over lib/mail/rewrite_mime.c).  The first
 * byte gives the nesting limit, the boundary length limit and where the
 * input is cut.  Checked: the output does not depend on how the input
 * was cut into pieces; a message that declares no encoding comes out as
 * it went in. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mime_downgrade.h"
#include "strbuf.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void collect(void *context, const char *bytes, size_t n)
{
    strbuf_append(context, bytes, n);
}

/* Convert data in pieces of `cut` bytes; the MIME errors. */
static unsigned convert(const struct mime_downgrade_limits *limits, const uint8_t *data,
                        size_t size, size_t cut, struct strbuf *out)
{
    struct mime_downgrade *d = mime_downgrade_begin(limits, collect, out);
    unsigned errors = 0;
    for (size_t at = 0; at < size && !errors; at += cut)
        errors = mime_downgrade_feed(d, (const char *)data + at, size - at < cut ? size - at : cut);
    if (errors) {
        mime_downgrade_free(d);
        return errors;
    }
    return mime_downgrade_end(d, NULL);
}

/* 1 when the bytes contain `word` in any case. */
static int contains(const uint8_t *data, size_t size, const char *word)
{
    size_t n = strlen(word);
    for (size_t i = 0; i + n <= size; i++) {
        size_t k = 0;
        while (k < n && (data[i + k] | 0x20) == (word[k] | 0x20))
            k++;
        if (k == n)
            return 1;
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    struct mime_downgrade_limits limits = {data[0] % 6, (size_t)(data[0] >> 3 & 7) + 1, 1024};
    size_t cut = (size_t)(data[0] >> 5) * 3 + 1;
    data++, size--;
    struct strbuf whole = STRBUF_INIT, pieces = STRBUF_INIT;
    unsigned e1 = convert(&limits, data, size, size ? size : 1, &whole);
    unsigned e2 = convert(&limits, data, size, cut, &pieces);
    if (e1 != e2)
        abort();
    if (!e1 && (whole.len != pieces.len || (whole.len && memcmp(whole.s, pieces.s, whole.len) != 0)))
        abort();
    if (!e1 && !contains(data, size, "transfer-encoding") && !contains(data, size, "content-type")
        && !contains(data, size, ":") && size && data[size - 1] == '\n') {
        /* no header at all: every line is body, copied unchanged */
        if (whole.len != size)
            abort();
    }
    strbuf_free(&whole);
    strbuf_free(&pieces);
    return 0;
}
