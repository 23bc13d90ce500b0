/* tls_policy.c - fuzz the smtp runner's reading of an smtp_tls_policy_maps
 * answer (bin/postern-smtp/tlspolicy.c, apply_entry): a level and
 * name=value attributes, as a table gives them.  An answer either makes
 * the policy invalid or yields a known level; nothing it says crashes or
 * leaks. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "../bin/postern-smtp/tlspolicy.c"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* tls_policy_find() reports through these; the fuzzer never calls it */
void batch_result_open(struct smtp_batch *b, const char *relay, int final, const char *dsn,
                       const char *fmt, ...)
{
    (void)b, (void)relay, (void)final, (void)dsn, (void)fmt;
}

/* dane_init() records a bogus TLSA answer for TLS-RPT (tlsrpt.c) */
void tlsrpt_record(const struct smtp_session *s, const char *result)
{
    (void)s, (void)result;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int quiet;
    if (!quiet) {
        log_open("fuzz-tls-policy", 0);
        log_configure("fuzz", "mail", "/dev/null");
        quiet = 1;
    }
    char *text = xmemdup0(data, size);
    /* tafile= opens files: not what a fuzzer should reach (/dev/zero) */
    if (strlen(text) == size && !strcasestr(text, "tafile")) {
        struct tls_policy p;
        memset(&p, 0, sizeof p);
        enum tls_level level = TLS_MAY;
        apply_entry(&p, &level, text, "fuzz");
        if (!p.invalid && (level < TLS_NONE || level > TLS_SECURE || level == TLS_HALF_DANE))
            __builtin_trap();
        if (p.invalid && strcmp(p.dsn, "4.7.5") != 0)
            __builtin_trap();
        tls_policy_free(&p);
    }
    free(text);
    return 0;
}
