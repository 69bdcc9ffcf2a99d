/* col_parse_cmd.h -- `pasban-collector --parse`: framed input to ECS JSON lines. */
#ifndef COL_PARSE_CMD_H
#define COL_PARSE_CMD_H

/* Runs the --parse mode with the full command line; returns the exit code
 * (0 ok, 1 an input could not be read, 2 bad usage). */
int col_parse_main(int argc, char **argv);

#endif
