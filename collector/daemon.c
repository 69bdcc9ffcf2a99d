/* daemon.c -- placeholder until the daemon lands (issue 4). */
#include <stdio.h>

#include "col_daemon.h"

int col_daemon_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pasban-collector: the daemon is not built yet; see --parse\n");
    return 2;
}
