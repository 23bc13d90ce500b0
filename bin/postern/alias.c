/* alias.c - `postern alias`: not written yet. */
#include "log.h"
#include "postern.h"

int cmd_alias(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    msg_fatal("postern alias is not implemented yet");
}
