/* pasban-collector: receives operators' logs and writes them to Kafka.
 * Two modes share this binary: the daemon (daemon.c) and --parse (parse_cmd.c),
 * which runs the same framing and parsers over files for tests and replays. */
#include <stdio.h>
#include <string.h>

#include "col_daemon.h"
#include "col_parse_cmd.h"
#include "pasban/util.h"

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--") == 0)
            break;
        if (strcmp(argv[i], "--version") == 0) {
            printf("pasban-collector %s\n", PSB_VERSION);
            return 0;
        }
        if (strcmp(argv[i], "--parse") == 0)
            return col_parse_main(argc, argv);
    }
    return col_daemon_main(argc, argv);
}
