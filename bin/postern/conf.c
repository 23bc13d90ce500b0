/* conf.c - `postern conf`: not written yet. */
#include "log.h"
#include "postern.h"

int cmd_conf(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    msg_fatal("postern conf is not implemented yet");
}
