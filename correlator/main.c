/* pasban-correlator: placeholder until issue 5 lands. */
#include <stdio.h>
#include <string.h>

#include "pasban/util.h"

int main(int argc, char **argv)
{
    if (argc > 1 && strcmp(argv[1], "--version") == 0) {
        printf("pasban-correlator %s\n", PSB_VERSION);
        return 0;
    }
    fprintf(stderr, "pasban-correlator: not built yet\n");
    return 2;
}
