/* map.c - `postern map`: not written yet. */
#include "log.h"
#include "postern.h"

int cmd_map(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    msg_fatal("postern map is not implemented yet");
}
