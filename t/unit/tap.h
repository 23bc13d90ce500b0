/* tap.h - TAP output for unit tests written in C (t/unit/NAME.c).
 *
 * The Makefile links each t/unit/NAME.c with libpostern.a into
 * $(BUILD)/t/NAME; a t/NN-name.t script runs it and prove reads the TAP
 * it prints.  Use ok(), is_str(), is_int(), diag(), then
 * `return tap_done();` from main.
 */
#ifndef POSTERN_TAP_H
#define POSTERN_TAP_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static int tap_count, tap_failed;

/* One test: prints "ok N - name" or "not ok N - name". */
static inline int ok(int pass, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static inline int ok(int pass, const char *fmt, ...)
{
    va_list ap;
    tap_count++;
    if (!pass)
        tap_failed++;
    printf("%s %d - ", pass ? "ok" : "not ok", tap_count);
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf("\n");
    fflush(stdout);
    return pass;
}

/* A comment line in the TAP stream. */
static inline void diag(const char *what, const char *text)
{
    printf("#   %s: %s\n", what, text ? text : "(null)");
}

/* Two strings must be equal (NULL equals only NULL). */
static inline int is_str(const char *got, const char *want, const char *name)
{
    int pass = (got == NULL || want == NULL) ? got == want : strcmp(got, want) == 0;
    if (!ok(pass, "%s", name)) {
        diag("     got", got);
        diag("expected", want);
    }
    return pass;
}

/* Two numbers must be equal. */
static inline int is_int(long got, long want, const char *name)
{
    if (!ok(got == want, "%s", name))
        printf("#        got: %ld\n#   expected: %ld\n", got, want);
    return got == want;
}

/* Print the plan; the exit code is the number of failures (at most 254). */
static inline int tap_done(void)
{
    printf("1..%d\n", tap_count);
    return tap_failed > 254 ? 254 : tap_failed;
}

#endif
