/* zg_accept.h - the worker's side of its listening sockets: multishot
 * accepts, their back-off, and the sweep of a draining worker's queue. */
#ifndef ZG_ACCEPT_H
#define ZG_ACCEPT_H

#include <liburing.h>
#include <zerg/module.h>

#include "zg_conf.h"

typedef struct zerg_worker zg_worker;

typedef struct zg_listener {
    zg_server *srv;
    int fd;
    uint32_t index, gen;
    int armed;
    int sweeping;      /* a drain's non-blocking accept is in flight */
    int direct;        /* accept into fixed files */
    int no_zc;         /* a loopback address: SEND_ZC would only add work */
    size_t addr_index; /* which of srv->addrs */
    void **vhosts;     /* module confs of the blocks sharing the address, */
    size_t nvhosts;    /* the default (srv's) first */
    zerg_timer retry;
    zg_worker *w;
} zg_listener;

void zg_arm_accept(zg_worker *w, zg_listener *l);
void zg_conn_accepted(zg_worker *w, zg_listener *l, int fd);

#endif
