/* config_list.c - typed values: yes/no, time and size parsing (lists are
 * split by lib/util/strlist.c).
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "config.h"
#include "strbuf.h"
#include "xalloc.h"

int parse_bool(const char *s)
{
    if (strcasecmp(s, "yes") == 0)
        return 1;
    if (strcasecmp(s, "no") == 0)
        return 0;
    return -1;
}

/* Digits with an optional one-letter suffix; the number, or -1.  *suffix
 * gets the suffix ('\0' when none). */
static long long parse_number(const char *s, char *suffix)
{
    if (!isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    long long n = strtoll(s, &end, 10);
    if (errno == ERANGE)
        return -1;
    *suffix = *end;
    if (*end && end[1])
        return -1;
    return n;
}

/* n * factor, or -1 on overflow. */
static long long scale(long long n, long long factor)
{
    if (n > LLONG_MAX / factor)
        return -1;
    return n * factor;
}

long long parse_time(const char *s, char unit)
{
    char suffix;
    long long n = parse_number(s, &suffix);
    if (n < 0)
        return -1;
    switch (suffix ? suffix : unit) {
    case 's': return n;
    case 'm': return scale(n, 60);
    case 'h': return scale(n, 3600);
    case 'd': return scale(n, 86400);
    case 'w': return scale(n, 7 * 86400);
    default:  return -1;
    }
}

long long parse_size(const char *s)
{
    char suffix;
    long long n = parse_number(s, &suffix);
    if (n < 0)
        return -1;
    switch (suffix) {
    case '\0':           return n;
    case 'k': case 'K':  return scale(n, 1024);
    case 'm': case 'M':  return scale(n, 1024 * 1024);
    case 'g': case 'G':  return scale(n, 1024 * 1024 * 1024);
    default:             return -1;
    }
}
