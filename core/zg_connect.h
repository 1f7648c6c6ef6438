/* zg_connect.h - outbound connections (api->connect, api->connect_with). */
#ifndef ZG_CONNECT_H
#define ZG_CONNECT_H

#include "zg_conn.h"

typedef struct zg_hooked zg_hooked;

/* A connection to sa served by module m's hooks, its connect (and the
 * linked timeout, when timeout_ms) submitted with this turn. NULL with
 * errno set. */
zg_conn *zg_connect(zg_worker *w, const zerg_module *m, void *conf, const struct sockaddr *sa,
                    socklen_t len, uint64_t timeout_ms);
/* api->connect_with: served by hooks instead of a module's. */
zg_conn *zg_connect_with(zg_worker *w, const zerg_conn_hooks *hooks, void *conf,
                         const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms);
/* Free the hook sets' descriptors (at the worker's exit). */
void zg_connect_destroy(zg_worker *w);
/* The ZG_OP_INSTALL completion: the socket is in the fixed-file table (or
 * stays a plain fd where the table is full), and its connect goes out. */
void zg_connect_installed(zg_conn *c, struct io_uring_cqe *cqe);
/* The ZG_OP_CONNECT completion: on_connect, then reading, or the close. */
void zg_connect_complete(zg_conn *c, struct io_uring_cqe *cqe);

#endif
