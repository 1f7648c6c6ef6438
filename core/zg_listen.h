/* zg_listen.h - the master's listening sockets: one SO_REUSEPORT socket per
 * (TCP address, worker slot), one shared socket per unix address, kept open
 * across reloads so no accept queue holding connections is ever closed while
 * its address stays configured. */
#ifndef ZG_LISTEN_H
#define ZG_LISTEN_H

#include "zg_conf.h"

typedef struct zg_lsock {
    struct sockaddr_storage ss;
    socklen_t len;
    unsigned slot;
    int fd;
    int mark;
    int inherited; /* handed over by the master this one upgraded (zg_listen_inherit) */
} zg_lsock;

typedef struct zg_listen_set {
    zg_lsock *socks;
    size_t n, cap;
    int keep_files; /* a new binary serves these sockets: never remove their files */
    pid_t parent;   /* the master that handed sockets over (inherited ones) */
} zg_listen_set;

/* Make sure every address of cfg has a socket for slots 0..nworkers-1,
 * reusing open ones. On failure, sockets opened by this call are closed. */
int zg_listen_open(zg_listen_set *set, const zg_config *cfg, int nworkers, char *err,
                   size_t errlen);
/* The socket of addr for a slot, or -1. */
int zg_listen_fd(const zg_listen_set *set, const zg_addr *addr, unsigned slot);
/* Close the sockets cfg (with nworkers) does not use. */
void zg_listen_prune(zg_listen_set *set, const zg_config *cfg, int nworkers);
void zg_listen_close_all(zg_listen_set *set);
/* Binary upgrade. The old master exports its sockets as "fd:slot;..." into
 * the environment of the new binary (ZG_LISTEN_ENV), after making them
 * survive execve; the new master adopts each one that is a listening socket
 * and reuses it for the address getsockname() reports, so no connection in
 * an accept queue is lost. A unix socket's file belongs to the old master
 * while it lives. zg_listen_export returns -1 when buf is too small;
 * zg_listen_inherit returns the number of sockets adopted and logs a warning
 * for each entry it refuses. */
#define ZG_LISTEN_ENV "ZERG_LISTEN_FDS"
int zg_listen_export(const zg_listen_set *set, char *buf, size_t len);
int zg_listen_keep_on_exec(const zg_listen_set *set);
int zg_listen_inherit(zg_listen_set *set, const char *spec);

/* The fds a worker of cfg in slot uses, server-major then address order.
 * Returns a malloc'd array of cfg's address count, then -1. */
int *zg_listen_worker_fds(const zg_listen_set *set, const zg_config *cfg, unsigned slot);
/* In a new worker: close the descriptors of every socket but keep's (as
 * zg_listen_worker_fds gives them). A socket a reload is about to drop, or
 * another slot's, must not stay open in a worker that never accepts on it:
 * connections would queue there unserved. */
void zg_listen_close_others(const zg_listen_set *set, const int *keep);

#endif
