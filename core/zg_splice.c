/* zg_splice.c - file segments sent by splice (see zg_splice.h): the pool of
 * pipes, the linked file -> pipe -> socket splices and their completions.
 * A pipe goes back to the pool only empty; one left holding bytes (its
 * connection closed mid-file) is closed instead. */
#define _GNU_SOURCE
#include "zg_splice.h"
#include "zg_conn.h"
#include "zg_log.h"
#include "zg_worker.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

/* ---- the pool ---- */

static void probe(zg_worker *w)
{
    struct io_uring_probe *p = io_uring_get_probe_ring(&w->ring);
    w->splice.state = p && io_uring_opcode_supported(p, IORING_OP_SPLICE) ? 1 : -1;
    if (p)
        io_uring_free_probe(p);
}

static void pipe_close(zg_pipe *p)
{
    close(p->rd);
    close(p->wr);
    free(p);
}

/* A new pipe, as large as the system lets an unprivileged process make it
 * (fs.pipe-max-size, and fs.pipe-user-pages-soft across all its pipes). */
static zg_pipe *pipe_new(void)
{
    zg_pipe *p = calloc(1, sizeof(*p));
    int fds[2];
    if (!p)
        return NULL;
    /* nonblocking: a splice from it never waits for bytes that cannot come */
    if (pipe2(fds, O_CLOEXEC | O_NONBLOCK) < 0) {
        free(p);
        return NULL;
    }
    p->rd = fds[0];
    p->wr = fds[1];
    for (int size = ZG_SPLICE_PIPE_SIZE; size >= 256 * 1024; size /= 4)
        if (fcntl(p->wr, F_SETPIPE_SZ, size) >= 0)
            break;
    int size = fcntl(p->wr, F_GETPIPE_SZ);
    if (size <= 0) {
        pipe_close(p);
        return NULL;
    }
    p->size = (uint32_t)size;
    return p;
}

int zg_splice_attach(zg_conn *c)
{
    zg_splice *sp = &c->w->splice;
    if (c->pipe)
        return 0;
    if (!sp->state)
        probe(c->w);
    if (sp->state < 0)
        return -EOPNOTSUPP;
    if (sp->lent >= ZG_SPLICE_PIPES)
        return -EAGAIN;
    zg_pipe *p = sp->nidle ? sp->idle[--sp->nidle] : pipe_new();
    if (!p)
        return -EAGAIN; /* out of descriptors or memory: send another way */
    sp->lent++;
    c->pipe = p;
    return 0;
}

void zg_splice_detach(zg_conn *c)
{
    zg_pipe *p = c->pipe;
    if (!p || p->in_busy || p->out_busy || p->poll_busy)
        return;
    if (c->out.files && !(c->flags & ZG_C_CLOSING))
        return;
    zg_splice *sp = &c->w->splice;
    c->pipe = NULL;
    sp->lent--;
    if (p->fill == 0 && sp->nidle < ZG_SPLICE_IDLE)
        sp->idle[sp->nidle++] = p;
    else
        pipe_close(p); /* bytes of a dropped answer stay in it */
}

void zg_splice_destroy(zg_worker *w)
{
    while (w->splice.nidle)
        pipe_close(w->splice.idle[--w->splice.nidle]);
}

/* ---- sending ---- */

/* pipe -> socket: n bytes, MORE while the file goes on after them. */
static void prep_out(zg_conn *c, uint32_t n, int more)
{
    struct io_uring_sqe *sqe = zg_sqe(c->w);
    io_uring_prep_splice(sqe, c->pipe->rd, -1, c->fd, -1, n, more ? SPLICE_F_MORE : 0);
    zg_conn_sqe_file(sqe, c); /* the output, the socket, may be a fixed file */
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_SPLICE_OUT, c->idx, c->gen));
    c->pipe->out_busy = 1;
    c->inflight++;
}

void zg_splice_send(zg_conn *c, zg_seg *s)
{
    zg_pipe *p = c->pipe;
    if (!p) { /* write_file lends the pipe first: never here */
        zg_conn_teardown(c, -EIO);
        return;
    }
    c->flags |= ZG_C_SENDING;
    if (p->fill) { /* what a short splice into the socket left */
        prep_out(c, p->fill, s->fleft > p->fill);
        return;
    }
    uint32_t n = s->fleft < p->size ? (uint32_t)s->fleft : p->size;
    /* file -> pipe, linked to pipe -> socket: one turn per chunk. A short
     * splice from the file breaks the link (the second ends -ECANCELED) and
     * what it brought is sent on the next turn. */
    struct io_uring_sqe *sqe = zg_sqe(c->w);
    io_uring_prep_splice(sqe, s->fd, (int64_t)s->foff, p->wr, -1, n, SPLICE_F_MOVE);
    sqe->flags |= IOSQE_IO_LINK;
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_SPLICE_IN, c->idx, c->gen));
    p->in_busy = 1;
    p->in_want = n;
    c->inflight++;
    prep_out(c, n, s->fleft > n);
}

/* The socket took no bytes for now (a nonblocking one): wait until it can. */
static void wait_writable(zg_conn *c)
{
    struct io_uring_sqe *sqe = zg_sqe(c->w);
    io_uring_prep_poll_add(sqe, c->fd, POLLOUT);
    zg_conn_sqe_file(sqe, c);
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_SPLICE_POLL, c->idx, c->gen));
    c->pipe->poll_busy = 1;
    c->inflight++;
}

static void in_complete(zg_conn *c, int res)
{
    zg_pipe *p = c->pipe;
    p->in_busy = 0;
    if (res > 0)
        p->fill += (uint32_t)res;
    if (res > 0 || (c->flags & ZG_C_CLOSING))
        return; /* a short one: its bytes go on the next turn */
    /* 0: the file ended before the answer did (it shrank under us) */
    zg_log_info("splice from a file: %s: closing the connection",
                res ? strerror(-res) : "the file is shorter than the answer");
    zg_conn_teardown(c, res ? res : -EIO);
}

static void out_complete(zg_conn *c, int res)
{
    zg_worker *w = c->w;
    zg_pipe *p = c->pipe;
    p->out_busy = 0;
    if (res > 0) {
        p->fill -= (uint32_t)res;
        w->stats.bytes_out += (uint64_t)res;
        w->stats.sends_splice++;
        w->stats.bytes_splice += (uint64_t)res;
        zg_outq_consume(&w->bufs, &c->out, (size_t)res, NULL);
    } else if (c->flags & ZG_C_CLOSING) {
        return;
    } else if (res == -EAGAIN) {
        wait_writable(c);
        return;
    } else if (res == -ECANCELED && p->fill < p->in_want) {
        /* the splice from the file before it was short */
    } else {
        zg_conn_teardown(c, res ? res : -EPIPE); /* 0: it cannot move on */
        return;
    }
    if (c->flags & ZG_C_CLOSING)
        return;
    c->flags &= ~ZG_C_SENDING;
    zg_splice_detach(c);
    zg_conn_sent(c);
}

void zg_splice_complete(zg_conn *c, struct io_uring_cqe *cqe)
{
    c->inflight--;
    switch (ZG_UD_OP(cqe->user_data)) {
    case ZG_OP_SPLICE_IN:
        in_complete(c, cqe->res);
        break;
    case ZG_OP_SPLICE_OUT:
        out_complete(c, cqe->res);
        break;
    default: /* ZG_OP_SPLICE_POLL */
        c->pipe->poll_busy = 0;
        if (c->flags & ZG_C_CLOSING)
            break;
        c->flags &= ~ZG_C_SENDING;
        if (cqe->res < 0 && cqe->res != -EINTR)
            zg_conn_teardown(c, cqe->res);
        else
            zg_conn_queue_flush(c);
        break;
    }
}

void zg_splice_teardown(zg_conn *c)
{
    zg_pipe *p = c->pipe;
    if (!p || !(p->in_busy || p->out_busy))
        return;
    /* A splice into a socket runs in an io-wq thread and may wait there for
     * a peer that never reads; one linked behind a splice from the file has
     * no file yet for the cancel by fd to match. Shutting the socket down
     * wakes the first and fails the second at once. Counted in flight, so
     * that the slot is not closed (and reused) before it ran. */
    struct io_uring_sqe *sqe = zg_sqe(c->w);
    io_uring_prep_shutdown(sqe, c->fd, SHUT_RDWR);
    zg_conn_sqe_file(sqe, c);
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_SHUTDOWN, c->idx, c->gen));
    c->inflight++;
}
