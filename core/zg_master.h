/* zg_master.h - the master process: listening sockets, worker processes,
 * signals, reload and respawn. */
#ifndef ZG_MASTER_H
#define ZG_MASTER_H

#include "zg_conf.h"

#include <signal.h>

typedef struct zg_master_opts {
    const char *conf_file;
    const char *prefix;
    int daemonize;
    char *const *argv; /* the command line, for the new binary of an upgrade */
} zg_master_opts;

/* Hold back the signals the master acts on (and store them in *set when
 * set is not NULL). main() calls it first thing, so a SIGHUP or SIGTERM that
 * arrives while the configuration loads waits for the master's loop instead
 * of killing the process. */
void zg_master_block_signals(sigset_t *set);
/* Run until stopped; returns the process exit code. Takes cfg. */
int zg_master_run(zg_config *cfg, const zg_master_opts *opts);

#endif
