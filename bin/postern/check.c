/* check.c - `postern check`: not written yet. */
#include "log.h"
#include "postern.h"

int cmd_check(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    msg_fatal("postern check is not implemented yet");
}
