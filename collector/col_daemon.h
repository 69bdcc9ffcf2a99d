/* col_daemon.h -- the collector daemon: listeners, operator tagging, Kafka producer, spool. */
#ifndef COL_DAEMON_H
#define COL_DAEMON_H

/* Runs the daemon with the full command line; returns the exit code
 * (0 clean shutdown, 1 runtime failure, 2 bad usage or configuration). */
int col_daemon_main(int argc, char **argv);

#endif
