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
    uint32_t index; /* in w->listeners, and its completions' user_data */
    int armed;
    int sweeping;        /* a drain's non-blocking accept is in flight */
    int direct;          /* accept into fixed files */
    int no_zc;           /* a loopback address: SEND_ZC would only add work */
    size_t addr_index;   /* which of srv->addrs */
    void **vhosts;       /* module confs of the blocks sharing the address, */
    size_t nvhosts;      /* the default (srv's) first */
    zg_server **servers; /* those blocks, in the same order */
    uint32_t *tls_class; /* of each: equal for equal TLS settings (zerg_tls_info) */
    zerg_timer retry;
    zg_worker *w;
} zg_listener;

/* One listener per distinct address (fds: the worker's listening sockets,
 * server-major then address order), for the block that owns it. */
int zg_accept_init(zg_worker *w, const int *fds);
void zg_accept_destroy(zg_worker *w);
/* Arm every listener's multishot accept (at the loop's start). */
void zg_accept_start(zg_worker *w);
/* A drain: cancel the accepts, then sweep what their queues hold. */
void zg_accept_stop(zg_worker *w);
/* An accept or sweep is in flight: it may still hand over a connection. */
int zg_accept_pending(const zg_worker *w);
/* ZG_OP_ACCEPT and ZG_OP_ACCEPT_SWEEP completions. */
void zg_accept_complete(zg_worker *w, struct io_uring_cqe *cqe);

#endif
