/* zg_conn.h - a connection (struct zerg_conn of the ABI): its state flags,
 * its buffers, and the zg_conn_* functions that own every change of its
 * state (zg_conn.c). */
#ifndef ZG_CONN_H
#define ZG_CONN_H

#include <liburing.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zerg/module.h>

#include "zg_bufring.h"
#include "zg_conf.h"
#include "zg_outq.h"
#include "zg_sendv.h"
#include "zg_splice.h"
#include "zg_timer.h"
#include "zg_tls.h"
#include "zg_util.h"

typedef struct zerg_worker zg_worker;
typedef struct zerg_conn zg_conn;
struct zg_listener;

/* A peer address kept in the connection: IPv4 and IPv6 fit. */
typedef union zg_addr_small {
    struct sockaddr sa;
    struct sockaddr_in in;
    struct sockaddr_in6 in6;
} zg_addr_small;

/* What only some connections need, allocated at the first need and freed
 * at the close (zg_conn_addr.c): an idle connection stays small. */
typedef struct zg_conn_ext {
    struct sockaddr_storage peer;  /* a peer address too long for c->peer */
    struct sockaddr_storage local; /* api->conn_local's answer, once found */
    socklen_t local_len;
    int slot;                            /* uring.fixed_outbound: the socket's fd, then its slot */
    int plain_fd;                        /* ...and its fd, kept until connected, or -1 */
    struct __kernel_timespec connect_ts; /* zero: no connect timeout */
} zg_conn_ext;

enum zg_conn_flags {
    ZG_C_OPEN = 1u << 0,        /* the module knows it: on_close is owed */
    ZG_C_RECV_ARMED = 1u << 1,  /* multishot recv in flight */
    ZG_C_RECV_CANCEL = 1u << 2, /* ... and being cancelled */
    ZG_C_PAUSE_MOD = 1u << 3,   /* api->pause_read */
    ZG_C_PAUSE_OUT = 1u << 4,   /* output above the high watermark */
    ZG_C_SENDING = 1u << 5,
    ZG_C_ZC_WAIT = 1u << 6,     /* a SEND_ZC notification is owed */
    ZG_C_EOF = 1u << 7,         /* the peer sent FIN */
    ZG_C_EOF_PENDING = 1u << 8, /* ... not yet told to the paused module */
    ZG_C_SHUT_WANT = 1u << 9,
    ZG_C_SHUT_DONE = 1u << 10,
    ZG_C_CLOSE_WANT = 1u << 11, /* graceful close after the flush */
    ZG_C_CLOSING = 1u << 12,    /* teardown under way */
    ZG_C_CONNECTING = 1u << 13,
    ZG_C_WANT_DRAIN = 1u << 14,
    ZG_C_ABOVE_HIGH = 1u << 15,
    ZG_C_ABORT = 1u << 16,      /* reset the peer on close */
    ZG_C_STARVED = 1u << 17,    /* waiting for receive buffers */
    ZG_C_QUEUED = 1u << 18,     /* in the flush list */
    ZG_C_REAP = 1u << 19,       /* in the reap list */
    ZG_C_ZOMBIE = 1u << 20,     /* closed; kept only for a SEND_ZC notification */
    ZG_C_PP_WAIT = 1u << 21,    /* reading the PROXY protocol header: not open yet */
    ZG_C_COUNTED = 1u << 22,    /* in its server's max_connections_per_client table */
    ZG_C_LINGER = 1u << 23,     /* closed: reading and dropping input (zg_conn_linger.c) */
    ZG_C_IN_DROPPED = 1u << 24, /* input came after the close was asked for */
    ZG_C_HANDSHAKE = 1u << 25,  /* in its TLS handshake: not open yet (zg_tls.c) */
};

struct zerg_conn {
    zg_list link;      /* flush or reap list */
    zg_list wait_link; /* starved list */
    zg_worker *w;
    uint32_t idx, gen;
    uint32_t flags;
    uint32_t inflight; /* operations whose completion is still owed */
    int fd;
    int close_err;
    uint8_t fixed;    /* fd is a fixed-file slot */
    uint8_t no_zc;    /* no SEND_ZC (a loopback peer) */
    uint8_t shut_how; /* SHUT_RD, SHUT_WR or SHUT_RDWR, once the output is sent */
    const zerg_module *mod;
    void *conf;
    zg_server *srv;
    zg_outq out;
    zg_outq in_held; /* bytes received while paused */
    zg_seg *zc_retired;
    zg_pipe *pipe; /* lent while file segments are queued (zg_splice.c) */
    size_t out_high, out_low, in_limit;
    zg_chunk *carry; /* unconsumed input, presented again */
    zg_chunk *cur;   /* the chunk behind the current on_data range */
    zerg_timer timer;
    zg_addr_small peer; /* longer addresses (unix sockets) are in ext */
    socklen_t peer_len;
    uint32_t busy_epoch;                /* the busy window it last received in */
    uint64_t linger_end;                /* lingering: when it ends at the latest */
    size_t held;                        /* its part of stats.conn_bytes_held */
    struct zg_conn_ext *ext;            /* what few connections need, or NULL */
    struct zg_sendv *sendv;             /* a send's own headers (zg_sendv.h), or NULL */
    const struct zg_listener *listener; /* accepted connections: where they came in */
    struct zg_tls *tls;                 /* its TLS record layer (zg_tls.h), or NULL */
    _Alignas(16) unsigned char ctx[];
};

zg_conn *zg_conn_new(zg_worker *w, const zerg_module *m, void *conf, int fd, int fixed);
/* Close a socket that has no connection (fixed: a fixed-file slot). */
void zg_close_fd(zg_worker *w, int fd, int fixed);
/* An accepted connection meets its module (on_open), after the check of
 * max_connections_per_client, which may close it instead... */
void zg_conn_open(zg_conn *c);
/* ...or first reads a PROXY protocol header, for at most timeout_ms. */
void zg_conn_await_proxy_header(zg_conn *c, uint64_t timeout_ms);
/* ...which did not come in time: c closes (zg_conn_read.c). */
void zg_conn_proxy_header_timeout(zg_conn *c);
/* An outbound connection's connect was submitted; its result (0 or
 * -errno) goes to on_connect, then to reading or the close. */
void zg_conn_connecting(zg_conn *c);
void zg_conn_connected(zg_conn *c, int res);
void zg_conn_complete(zg_worker *w, struct io_uring_cqe *cqe);
void zg_conn_abort_fd_complete(zg_worker *w, struct io_uring_cqe *cqe);
/* zg_conn_read.c: arm or cancel the multishot recv as c's state wants */
void zg_conn_update_read(zg_conn *c);
/* ... and a recv completion of c */
void zg_conn_recv_complete(zg_conn *c, struct io_uring_cqe *cqe);
/* Input for the module (bytes of chunk k): presented now, or held while it
 * pauses (copied, unless k is a receive buffer)... */
void zg_conn_input(zg_conn *c, zg_chunk *k, const uint8_t *data, size_t len);
/* ...and the end of its stream. */
void zg_conn_eof(zg_conn *c);
void zg_conn_queue_flush(zg_conn *c);
void zg_conn_flush_all(zg_worker *w);
void zg_conn_feed_starved(zg_worker *w);
void zg_conn_reap_all(zg_worker *w);
void zg_conn_teardown(zg_conn *c, int err);
/* Queue c for its final close once nothing is in flight. */
void zg_conn_settle(zg_conn *c);
void zg_conn_after_write(zg_conn *c);
/* Bytes of c's queue were sent: on_drain, reading and the next send. */
void zg_conn_sent(zg_conn *c);
void zg_conn_deliver_held(zg_conn *c);
void zg_conn_close_all(zg_worker *w);
/* Log every open connection's state (debug level). */
void zg_conn_dump(zg_worker *w);
/* An operation on c's socket: through its fixed-file slot when it has one. */
static inline void zg_conn_sqe_file(struct io_uring_sqe *sqe, const zg_conn *c)
{
    if (c->fixed)
        sqe->flags |= IOSQE_FIXED_FILE;
}
/* Output not sent yet: the module's bytes and, under TLS, ciphertext. */
static inline size_t zg_conn_unsent(const zg_conn *c)
{
    return c->out.bytes + (c->tls ? c->tls->wire.bytes : 0);
}
/* What c holds now goes into the worker's gauge (stats.conn_bytes_held),
 * kept as connections change, never summed over them. */
void zg_conn_account(zg_conn *c);
/* zg_conn_linger.c: after the flush of a graceful close, linger (1) or not
 * (0: close now); input that came while lingering (dropped). */
int zg_conn_linger_start(zg_conn *c);
void zg_conn_linger_input(zg_conn *c);
/* zg_conn_addr.c: the side allocation, created on demand (NULL: no memory) */
zg_conn_ext *zg_conn_ext_get(zg_conn *c);
void zg_conn_ext_free(zg_conn *c);
/* The peer address (family AF_UNSPEC, length 0 when unknown). */
int zg_conn_set_peer(zg_conn *c, const struct sockaddr *sa, socklen_t len);
static inline const struct sockaddr *zg_conn_peer(const zg_conn *c)
{
    if (c->peer_len > sizeof(c->peer) && c->ext)
        return (const struct sockaddr *)&c->ext->peer;
    return &c->peer.sa;
}
/* The local address: found at the first call, kept in ext. */
const struct sockaddr *zg_conn_local(zg_conn *c, socklen_t *len);
void zg_conn_set_local(zg_conn *c, const struct sockaddr *sa, socklen_t len);
/* What the module asks for through the api table (api->close, ...). */
int zg_conn_closing(zg_conn *c);            /* closed, or closing once flushed */
int zg_conn_tearing_down(const zg_conn *c); /* closed: waiting for completions */
int zg_conn_writable(zg_conn *c);           /* output is still taken */
void zg_conn_close(zg_conn *c);             /* graceful: flush, then close */
void zg_conn_abort(zg_conn *c);             /* drop the output, reset the peer */
void zg_conn_shutdown(zg_conn *c, int how); /* after the flush */
void zg_conn_pause_read(zg_conn *c);
void zg_conn_resume_read(zg_conn *c); /* presents what was held meanwhile */
void zg_conn_set_watermarks(zg_conn *c, size_t low, size_t high);
void zg_conn_want_drain(zg_conn *c); /* one on_drain once the output is empty */
void zg_conn_set_input_limit(zg_conn *c, size_t max);
void zg_conn_set_timeout(zg_conn *c, uint64_t ms); /* 0 cancels */

#endif
