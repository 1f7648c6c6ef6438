/* zg_logfile.h - buffered log files written through the ring, for modules'
 * access logs (api->logfile_open and friends). */
#ifndef ZG_LOGFILE_H
#define ZG_LOGFILE_H

#include "zg_worker.h"

zerg_logfile *zg_logfile_open(zg_worker *w, const char *path, size_t buffer, uint64_t flush_ms);
char *zg_logfile_reserve(zerg_logfile *lf, size_t need);
void zg_logfile_commit(zerg_logfile *lf, size_t n);
/* The worker's side: a drain writes out, SIGUSR1 reopens, exit closes. */
void zg_logfile_flush_all(zg_worker *w);
void zg_logfile_reopen_all(zg_worker *w);
void zg_logfile_close_all(zg_worker *w);

#endif
