/* maptext.h - parsers for the two source formats of fixed-key tables:
 *
 *   maptext   postmap(1) input: "key whitespace value" per logical line
 *             (see textlines.h for comments and continuation lines); keys
 *             are folded to lower case unless MAPTEXT_KEEP_CASE.
 *   aliases   aliases(5): "name: value, value, ..." with "quoted names";
 *             the value is stored with its elements separated by ", " as
 *             Postfix's postalias does.
 *
 * Both call `entry` for every good line and report bad lines in err as
 * "FILE, line N: ..." lines; they return the number of bad lines.
 */
#ifndef POSTERN_MAPTEXT_H
#define POSTERN_MAPTEXT_H

#include <stddef.h>

struct strbuf;

#define MAPTEXT_KEEP_CASE 0x01

typedef void (*maptext_entry_fn)(const char *key, const char *value,
                                 int lineno, void *ctx);

int maptext_parse(const char *file, const char *buf, size_t len,
                  unsigned flags, maptext_entry_fn entry, void *ctx,
                  struct strbuf *err);
int aliases_parse(const char *file, const char *buf, size_t len,
                  unsigned flags, maptext_entry_fn entry, void *ctx,
                  struct strbuf *err);

#endif
