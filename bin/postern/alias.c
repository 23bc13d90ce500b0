/* alias.c - `postern alias` (postalias(1), and newaliases without a file):
 * the table command of map.c with the aliases(5) source syntax. */
#include "postern.h"

int cmd_alias(int argc, char **argv)
{
    return table_command(argc, argv, 1);
}
