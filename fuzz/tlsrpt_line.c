/* tlsrpt_line.c - fuzz the TLS-RPT result line parser (lib/mail/tlsrpt.c,
 * what `postern tlsrpt` reads from data_directory/tlsrpt/DAY): a line
 * that parses formats back into a line that parses to the same fields,
 * and nothing is read past the bytes given. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* the parser is given exactly the bytes, without a terminating NUL */
    char *copy = malloc(size ? size : 1);
    if (!copy)
        return 0;
    memcpy(copy, data, size);
    static struct tlsrpt_line r, again;
    if (tlsrpt_line_parse(copy, size, &r) == 0) {
        char out[8192];
        int n = tlsrpt_line_format(&r, out, sizeof out);
        if (n <= 0 || out[n - 1] != '\n')
            __builtin_trap();
        if (tlsrpt_line_parse(out, (size_t)n - 1, &again) != 0 || memcmp(&r, &again, sizeof r) != 0)
            __builtin_trap();
    }
    free(copy);
    return 0;
}
