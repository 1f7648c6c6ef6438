/* tests/unit/conn_ring.h - for the Criterion tests that drive a connection
 * without an event loop (test_conn, test_tls): a worker's ring and receive
 * buffers, a connection on one end of a socketpair, and their teardown. */
#ifndef ZG_TEST_CONN_RING_H
#define ZG_TEST_CONN_RING_H

#include <criterion/criterion.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "conn_env.h"
#include "zg_module.h"
#include "zg_worker.h"

/* w zeroed, its ring and nbufs receive buffers of size bytes, then
 * conn_env_init; the test is skipped where io_uring is unavailable. */
static inline void conn_ring_init(zg_worker *w, zg_config *cfg, uint32_t nbufs, uint32_t size)
{
    memset(w, 0, sizeof(*w));
    int rc = io_uring_queue_init(256, &w->ring, 0);
    if (rc < 0)
        cr_skip_test("io_uring unavailable: %s", strerror(-rc));
    rc = zg_bufs_init(&w->bufs, &w->ring, nbufs, size, 0);
    cr_assert_eq(rc, 0, "zg_bufs_init: %s", strerror(-rc));
    conn_env_init(w, cfg);
}

/* A connection of module m on one end of a new socketpair; *peer_fd is
 * the other end. */
static inline zg_conn *conn_ring_conn(zg_worker *w, const zerg_module *m, int *peer_fd)
{
    int sv[2];
    cr_assert_eq(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv), 0);
    *peer_fd = sv[1];
    zg_conn *c = zg_conn_new(w, m, NULL, sv[0], 0);
    cr_assert_not_null(c);
    return c;
}

/* What conn_ring_init and conn_ring_conn made, once the connection is
 * reaped. */
static inline void conn_ring_destroy(zg_worker *w, int peer_fd)
{
    zg_pool_destroy(&w->conns);
    zg_bufs_destroy(&w->bufs);
    io_uring_queue_exit(&w->ring);
    close(peer_fd);
}

#endif
