/* xalloc.h - memory allocation that never returns NULL.
 *
 * Running out of memory is a temporary condition for a mail system: the
 * program logs it and exits with its temporary-failure code (log.h), so
 * that the message is retried rather than lost.
 */
#ifndef POSTERN_XALLOC_H
#define POSTERN_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t n);
void *xcalloc(size_t count, size_t n);
void *xrealloc(void *p, size_t n);
/* reallocarray(3) that dies instead of failing (overflow-checked). */
void *xreallocarray(void *p, size_t count, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
/* A copy of n bytes, NUL bytes among them kept, with a NUL after them. */
char *xmemdup0(const void *p, size_t n);
/* Log "out of memory" and exit with the temporary-failure code. */
_Noreturn void die_nomem(void);

#endif
