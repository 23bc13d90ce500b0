/* map_build.h - building the indexed tables (hash, btree and cdb: the file
 * NAME.cdb) from their source files, for `postern map`, `postern alias` and
 * `sendmail -bi` (newaliases).
 *
 * The new file is written beside the old one under a temporary name,
 * fsynced and renamed over NAME.cdb, so a reader sees the old table or the
 * new one, never half a file.  A source with errors (every bad line is
 * reported as "FILE, line N: ...") leaves the old table in place.
 */
#ifndef POSTERN_MAP_BUILD_H
#define POSTERN_MAP_BUILD_H

struct strbuf;

#define MAP_BUILD_KEEP_CASE   0x01  /* -f: do not fold keys to lower case */
#define MAP_BUILD_WITH_NUL    0x02  /* -N: store keys and values with a NUL */
#define MAP_BUILD_DUP_REPLACE 0x04  /* -r: a repeated key replaces, quietly */
#define MAP_BUILD_DUP_QUIET   0x08  /* -w: a repeated key is ignored, quietly */
#define MAP_BUILD_PLAIN_MODE  0x10  /* -p: mode 0644, not the source's mode */
#define MAP_BUILD_ALIASES     0x20  /* the source is in aliases(5) syntax */

/* Build the table "type:/path" ("/path" alone means default_type:/path)
 * from the source file /path.  Returns the number of entries written, or
 * -1 with the problems in err (one per line).  Duplicate keys are warned
 * about through the log (FILE, line N: duplicate entry) unless -w/-r. */
long map_build(const char *spec, const char *default_type, unsigned flags,
               struct strbuf *err);

/* newaliases: build every table named in alias_database (its expanded
 * value, e.g. "hash:/etc/aliases, cdb:/etc/more").  Returns 0, or -1 with
 * err set when one of them failed (the others are still built). */
int alias_build_database(const char *alias_database, const char *default_type,
                         struct strbuf *err);

/* Is `type` one of the types map_build() writes (hash, btree, cdb)? */
int map_build_type_ok(const char *type);

#endif
