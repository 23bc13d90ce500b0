/* xalloc.c - allocation that ends the program on failure (see xalloc.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <bsd/stdlib.h>

#include "log.h"
#include "xalloc.h"

void die_nomem(void)
{
    msg_fatal_temp("out of memory");
}

void *xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (!p)
        die_nomem();
    return p;
}

void *xcalloc(size_t count, size_t n)
{
    void *p = calloc(count ? count : 1, n ? n : 1);
    if (!p)
        die_nomem();
    return p;
}

void *xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (!q)
        die_nomem();
    return q;
}

void *xreallocarray(void *p, size_t count, size_t n)
{
    void *q = reallocarray(p, count ? count : 1, n ? n : 1);
    if (!q)
        die_nomem();
    return q;
}

char *xstrdup(const char *s)
{
    char *d = strdup(s);
    if (!d)
        die_nomem();
    return d;
}

char *xstrndup(const char *s, size_t n)
{
    char *d = strndup(s, n);
    if (!d)
        die_nomem();
    return d;
}

char *xmemdup0(const void *p, size_t n)
{
    if (n == SIZE_MAX)
        die_nomem();
    char *d = xmalloc(n + 1);
    if (n)
        memcpy(d, p, n);
    d[n] = '\0';
    return d;
}
