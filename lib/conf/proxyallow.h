/* proxyallow.h - which tables the lookup service may answer for:
 * proxy_read_maps read as Postfix's proxymap reads it (proxyallow.c).
 * postern-lookup enforces it; `postern check` warns about a proxy: table
 * it does not list. */
#ifndef POSTERN_PROXYALLOW_H
#define POSTERN_PROXYALLOW_H

struct strlist;

/* The allowed tables ("type:name", without proxy:), from the current
 * configuration: the entries of proxy_read_maps written "proxy:TYPE:NAME",
 * those of the types a static program reaches only through the service
 * ("unix:NAME", "pgsql:NAME", ...; when proxy_read_maps is set, also the
 * pgsql:, mysql: and sqlite: tables of the parameters its default names), and unix:hosts.byname (the resolver's; it tells no more
 * than the name service tells anyone). */
void proxy_allowed_tables(struct strlist *out);
/* 1 when the table (with or without proxy:) is allowed. */
int proxy_table_allowed(const char *table);

#endif
