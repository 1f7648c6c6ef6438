/* zg_splice.h - file segments of the output queue sent without a copy
 * through user space: IORING_OP_SPLICE from the file into a pipe, then from
 * the pipe into the socket, with pipes from a small per-worker pool. */
#ifndef ZG_SPLICE_H
#define ZG_SPLICE_H

#include <liburing.h>
#include <stdint.h>

#include "zg_outq.h"

typedef struct zerg_worker zg_worker;
typedef struct zerg_conn zg_conn;

#define ZG_SPLICE_PIPES     64        /* pipes lent at once per worker */
#define ZG_SPLICE_IDLE      4         /* pipes kept open while none is lent */
#define ZG_SPLICE_PIPE_SIZE (1 << 20) /* asked of F_SETPIPE_SZ (pipe-max-size) */

/* A pipe lent to one connection while it has file segments queued. */
typedef struct zg_pipe {
    int rd, wr;
    uint32_t size;    /* its capacity */
    uint32_t fill;    /* bytes in it not yet spliced into the socket */
    uint32_t in_want; /* the file -> pipe splice in flight asked this many */
    uint8_t in_busy, out_busy, poll_busy;
} zg_pipe;

/* The worker's pool. */
typedef struct zg_splice {
    int state; /* 0: not probed yet, 1: the ring splices, -1: it does not */
    uint32_t lent;
    uint32_t nidle;
    zg_pipe *idle[ZG_SPLICE_IDLE];
} zg_splice;

/* Lend c a pipe for its file segments (it keeps the one it has): 0,
 * -EOPNOTSUPP when the kernel cannot splice, -EAGAIN when no pipe is free
 * (the caller sends another way). */
int zg_splice_attach(zg_conn *c);
/* Give c's pipe back once it has no file segment queued and nothing in
 * flight (called after each splice and by finalize). */
void zg_splice_detach(zg_conn *c);
/* Send the file segment s at the head of c's queue (c is not sending). */
void zg_splice_send(zg_conn *c, zg_seg *s);
/* A completion of c's ZG_OP_SPLICE_IN, _OUT or _POLL. */
void zg_splice_complete(zg_conn *c, struct io_uring_cqe *cqe);
/* c is torn down: wake a splice that waits on the socket. */
void zg_splice_teardown(zg_conn *c);
/* Close the idle pipes (worker exit). */
void zg_splice_destroy(zg_worker *w);

#endif
