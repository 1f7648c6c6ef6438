/* zg_connect.h - outbound connections (api->connect). */
#ifndef ZG_CONNECT_H
#define ZG_CONNECT_H

#include "zg_conn.h"

/* A connection to sa served by module m's hooks, its connect (and the
 * linked timeout, when timeout_ms) submitted with this turn. NULL with
 * errno set. */
zg_conn *zg_connect(zg_worker *w, const zerg_module *m, void *conf, const struct sockaddr *sa,
                    socklen_t len, uint64_t timeout_ms);
/* The ZG_OP_CONNECT completion: on_connect, then reading, or the close. */
void zg_connect_complete(zg_conn *c, struct io_uring_cqe *cqe);

#endif
