/* zg_conn_linger.c - lingering close (as nginx's lingering_close): a
 * connection closed gracefully while its client may still be sending is
 * half-closed once its output is flushed, and what comes in is read and
 * dropped until the client's FIN, lingering_timeout without a read, or
 * lingering_time in all. Closing at once with unread input makes the kernel
 * reset the connection, and the reset can destroy answers the client has
 * not read yet. */
#define _GNU_SOURCE
#include "zg_conn.h"
#include "zg_event.h"
#include "zg_worker.h"

#include <sys/socket.h>

/* Input the module left unread, or that came after it asked for the close. */
static int input_unread(const zg_conn *c)
{
    return (c->carry && c->carry->used) || c->in_held.bytes || (c->flags & ZG_C_IN_DROPPED);
}

static int wants_linger(const zg_conn *c)
{
    const zg_server *srv = c->srv; /* NULL: an outbound connection */
    if (!srv || srv->lingering_close == ZG_LINGER_OFF || !srv->lingering_time)
        return 0;
    if (c->flags & (ZG_C_EOF | ZG_C_ABORT | ZG_C_PP_WAIT | ZG_C_HANDSHAKE))
        return 0; /* nothing more comes, or no module asked */
    if ((c->flags & ZG_C_SHUT_DONE) && c->shut_how != SHUT_WR)
        return 0; /* reading was shut down */
    return srv->lingering_close == ZG_LINGER_ALWAYS || input_unread(c);
}

/* The next read's deadline: lingering_timeout, within lingering_time. */
static void arm_timer(zg_conn *c)
{
    zg_worker *w = c->w;
    uint64_t left = c->linger_end > w->now_ms ? c->linger_end - w->now_ms : 0;
    uint64_t each = c->srv->lingering_timeout;
    if (!left) {
        zg_conn_teardown(c, 0);
        return;
    }
    zg_timer_set(&w->timers, &c->timer, w->now_ms, each < left ? each : left);
}

int zg_conn_linger_start(zg_conn *c)
{
    zg_worker *w = c->w;
    if (!wants_linger(c))
        return 0;
    c->flags = (c->flags & ~(ZG_C_CLOSE_WANT | ZG_C_EOF_PENDING | ZG_C_WANT_DRAIN)) | ZG_C_LINGER;
    /* what is left unread is dropped, as everything that comes now */
    zg_outq_clear(&w->bufs, &c->in_held);
    if (c->carry) {
        zg_chunk_put(&w->bufs, c->carry);
        c->carry = NULL;
    }
    if (c->flags & ZG_C_OPEN) { /* the module is done with it */
        c->flags &= ~ZG_C_OPEN;
        if (c->mod->on_close)
            c->mod->on_close(c, 0);
    }
    if (!(c->flags & ZG_C_SHUT_DONE)) { /* FIN after the answers */
        struct io_uring_sqe *sqe = zg_sqe(w);
        io_uring_prep_shutdown(sqe, c->fd, SHUT_WR);
        zg_conn_sqe_file(sqe, c);
        io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_SHUTDOWN, c->idx, c->gen));
        c->inflight++;
        c->flags |= ZG_C_SHUT_WANT | ZG_C_SHUT_DONE;
        c->shut_how = SHUT_WR;
    }
    zg_conn_account(c);
    c->linger_end = w->now_ms + c->srv->lingering_time;
    arm_timer(c);
    zg_conn_update_read(c);
    return 1;
}

void zg_conn_linger_input(zg_conn *c)
{
    arm_timer(c);
}
