/* zg_ctl.h - `zerg -s`: signal the running master and, for a reload or a
 * binary upgrade, wait for its verdict. */
#ifndef ZG_CTL_H
#define ZG_CTL_H

#include "zg_conf.h"

/* Exit codes of `zerg -s` (zerg(8), EXIT STATUS). */
enum {
    ZG_CTL_OK = 0,        /* signalled; a reload or upgrade took effect */
    ZG_CTL_ERROR = 1,     /* bad usage, or the configuration does not load */
    ZG_CTL_REJECTED = 2,  /* the master kept the running configuration or binary */
    ZG_CTL_TIMEOUT = 3,   /* no verdict within the wait */
    ZG_CTL_NO_MASTER = 4, /* no master to signal, or it exited before its verdict */
};

#define ZG_CTL_WAIT_DEFAULT_S 30

/* Signal the master named in cfg's pid file with action (reload, stop, quit,
 * reopen, upgrade); for reload and upgrade wait up to wait_s seconds (0: do
 * not wait) for the verdict. Returns one of the codes above. */
int zg_ctl_signal(const zg_config *cfg, const char *action, int wait_s);

#endif
