/* parse_cmd.c -- placeholder until --parse lands (issue 3). */
#include <stdio.h>

#include "col_parse_cmd.h"

int col_parse_main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    fprintf(stderr, "pasban-collector: --parse is not built yet\n");
    return 2;
}
