/* dynamic_types.c - map_register_dynamic_types(): the table types whose
 * code calls the name service or a client library (unix:, pgsql:, mysql:,
 * sqlite:, ldap:), for the dynamically linked programs that may open
 * them themselves.  A program that never calls it never links that code:
 * the static per-connection programs reach such tables only through the
 * lookup service (maps/proxy.c, doc/lookup.md). */
#include <stddef.h>

#include "map_impl.h"

void map_register_dynamic_types(void)
{
    static const struct map_type *const types[] = {
        &map_type_unix, &map_type_pgsql, &map_type_mysql, &map_type_sqlite, &map_type_ldap, NULL,
    };
    map_set_dynamic_types(types);
}
