/* zg_upgrade.h - binary upgrade on SIGUSR2, as nginx does it: the master
 * starts the zerg binary found on disk now, hands it the listening sockets,
 * and both serve until one of them is told to go. */
#ifndef ZG_UPGRADE_H
#define ZG_UPGRADE_H

#include "zg_listen.h"

#include <sys/types.h>

/* The path this process was started from (before the file on disk may
 * have been replaced): /proc/self/exe without the " (deleted)" mark. */
int zg_upgrade_self_path(char *buf, size_t len);
/* Fork and execve exe with argv and the current environment plus the
 * sockets of set (ZG_LISTEN_ENV). Returns the child's pid once execve has
 * succeeded; -1 with the reason in err when it could not start. */
pid_t zg_upgrade_exec(const char *exe, char *const argv[], const zg_listen_set *set, char *err,
                      size_t errlen);

#endif
