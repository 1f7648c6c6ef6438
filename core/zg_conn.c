/* zg_conn.c - a connection's life on the ring, and the one owner of its
 * state: the output queue's sends (SEND_ZC above the threshold), what the
 * module asks for, and a close that waits for every completion before the
 * slot is reused. Reading is zg_conn_read.c's; accept and connect start
 * connections from zg_accept.c and zg_connect.c. */
#define _GNU_SOURCE
#include "zg_conn.h"
#include "zg_climit.h"
#include "zg_connect.h"
#include "zg_log.h"
#include "zg_module.h"
#include "zg_proxyproto.h"
#include "zg_tls_client.h"
#include "zg_uring_compat.h"
#include "zg_worker.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <string.h>
#include <unistd.h>

static void conn_timer_fired(zerg_timer *t);
static void release_slot(zg_conn *c);

zg_conn *zg_conn_new(zg_worker *w, const zerg_module *m, void *conf, int fd, int fixed)
{
    uint32_t idx;
    zg_conn *c = zg_pool_get(&w->conns, &idx);
    if (!c)
        return NULL;
    uint32_t gen = c->gen + 1;
    memset(c, 0, sizeof(*c) + w->cfg->max_conn_ctx);
    c->w = w;
    c->idx = idx;
    c->gen = gen & 0xffffff;
    c->fd = fd;
    c->fixed = fixed;
    c->mod = m;
    c->conf = conf;
    c->out_high = w->cfg->uring.output_high;
    c->out_low = w->cfg->uring.output_low;
    c->in_limit = 64 * 1024;
    c->timer.fn = conn_timer_fired;
    c->timer.data = c;
    zg_list_init(&c->link);
    zg_list_init(&c->wait_link);
    zg_outq_init(&c->out);
    zg_outq_init(&c->in_held);
    w->stats.conns_active++;
    return c;
}

void zg_close_fd(zg_worker *w, int fd, int fixed)
{
    if (fixed) {
        struct io_uring_sqe *sqe = zg_sqe(w);
        io_uring_prep_close_direct(sqe, (unsigned)fd);
        io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_IGNORE, 0, 0));
    } else {
        close(fd);
    }
}

/* max_connections_per_client: count the client in, or close the connection
 * before any module sees it. */
static int admit(zg_conn *c)
{
    zg_worker *w = c->w;
    const zg_server *srv = c->srv;
    if (!srv->climit || !c->peer_len)
        return 1;
    int rc = zg_climit_enter(srv->climit, zg_conn_peer(c), (uint32_t)srv->max_per_client, w->pid);
    if (rc != 0) {
        if (rc > 0)
            c->flags |= ZG_C_COUNTED;
        return 1;
    }
    w->stats.conns_limited++;
    if (w->now_ms - w->limit_logged_ms >= 1000) { /* a flood logs a line a second */
        char peer[64];
        zg_addr_str(zg_conn_peer(c), peer, sizeof(peer));
        zg_log_info("%s: the address of client %s has max_connections_per_client (%lld) "
                    "open: closing a new one (%llu so far in this worker)",
                    c->listener->srv->addrs[c->listener->addr_index].text, peer,
                    (long long)srv->max_per_client, (unsigned long long)w->stats.conns_limited);
        w->limit_logged_ms = w->now_ms;
    }
    zg_conn_teardown(c, -EDQUOT);
    return 0;
}

void zg_conn_open(zg_conn *c)
{
    if (!admit(c))
        return;
    c->flags |= ZG_C_OPEN;
    if (c->mod->on_open)
        c->mod->on_open(c);
}

/* Wait for the PROXY protocol header: the module meets c once it told who
 * the client is, or c closes after timeout_ms. */
void zg_conn_await_proxy_header(zg_conn *c, uint64_t timeout_ms)
{
    c->flags |= ZG_C_PP_WAIT;
    zg_timer_set(&c->w->timers, &c->timer, c->w->now_ms, timeout_ms);
}

/* ---- writing ---- */

void zg_conn_queue_flush(zg_conn *c)
{
    if (!(c->flags & (ZG_C_QUEUED | ZG_C_REAP))) {
        c->flags |= ZG_C_QUEUED;
        zg_list_add_tail(&c->w->flush_list, &c->link);
    }
}

void zg_conn_account(zg_conn *c)
{
    size_t now = zg_conn_unsent(c) + c->in_held.bytes + (c->carry ? c->carry->used : 0);
    c->w->stats.conn_bytes_held += now - c->held; /* modulo 2^64: a decrease too */
    c->held = now;
}

void zg_conn_after_write(zg_conn *c)
{
    zg_conn_account(c);
    if (zg_conn_unsent(c) > c->out_high && !(c->flags & ZG_C_ABOVE_HIGH)) {
        c->flags |= ZG_C_ABOVE_HIGH | ZG_C_PAUSE_OUT;
        zg_conn_update_read(c);
    }
    zg_conn_queue_flush(c);
}

/* The queue is empty: do what waited for it. */
static void output_done(zg_conn *c)
{
    zg_worker *w = c->w;
    if ((c->flags & ZG_C_SHUT_WANT) && !(c->flags & ZG_C_SHUT_DONE)) {
        struct io_uring_sqe *sqe = zg_sqe(w);
        io_uring_prep_shutdown(sqe, c->fd, c->shut_how);
        zg_conn_sqe_file(sqe, c);
        io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_SHUTDOWN, c->idx, c->gen));
        c->inflight++;
        c->flags |= ZG_C_SHUT_DONE;
    }
    if (c->flags & ZG_C_CLOSE_WANT) {
        if (!zg_conn_linger_start(c))
            zg_conn_teardown(c, 0);
        return;
    }
    if (c->flags & ZG_C_WANT_DRAIN) {
        c->flags &= ~ZG_C_WANT_DRAIN;
        if (c->mod->on_drain)
            c->mod->on_drain(c);
    }
}

static void conn_send(zg_conn *c)
{
    zg_worker *w = c->w;
    if (c->flags & (ZG_C_SENDING | ZG_C_ZC_WAIT | ZG_C_CLOSING | ZG_C_CONNECTING))
        return;
    if (c->tls && zg_tls_flush(c) < 0)
        return;
    zg_outq *q = c->tls ? &c->tls->wire : &c->out; /* what goes on the socket */
    if (q->bytes == 0) {
        if (!c->out.bytes || c->tls->established || c->tls->failed)
            output_done(c); /* else an outbound TLS handshake holds them back */
        return;
    }
    zg_seg *file = zg_outq_head_file(q);
    if (file) {
        zg_splice_send(c, file);
        return;
    }
    struct iovec iov[ZG_IOV_MAX];
    int n = zg_outq_iov(q, iov, ZG_IOV_MAX);
    size_t bytes = 0; /* up to a file segment */
    for (int i = 0; i < n; i++)
        bytes += iov[i].iov_len;
    uint64_t zc_min = w->cfg->uring.send_zc_threshold;
    int zc = w->zc_ok && zc_min && !c->no_zc && bytes >= zc_min;
    zg_sendv *v = NULL;
    if (zc || n > 1) { /* headers that must live until the kernel took the SQE */
        if (!(v = zg_sendv_get(w, c))) {
            zg_conn_teardown(c, -ENOMEM);
            return;
        }
        memcpy(v->iov, iov, (size_t)n * sizeof(iov[0]));
        memset(&v->msg, 0, sizeof(v->msg));
        v->msg.msg_iov = v->iov;
        v->msg.msg_iovlen = (size_t)n;
    }
    struct io_uring_sqe *sqe = zg_sqe(w);
    if (zc) {
        io_uring_prep_sendmsg_zc(sqe, c->fd, &v->msg, MSG_NOSIGNAL);
        w->stats.sends_zc++;
    } else if (n == 1) {
        io_uring_prep_send(sqe, c->fd, iov[0].iov_base, iov[0].iov_len, MSG_NOSIGNAL);
    } else {
        io_uring_prep_sendmsg(sqe, c->fd, &v->msg, MSG_NOSIGNAL);
    }
    zg_conn_sqe_file(sqe, c);
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_SEND, c->idx, c->gen));
    c->flags |= ZG_C_SENDING;
    c->inflight++;
}

void zg_conn_flush_all(zg_worker *w)
{
    while (!zg_list_empty(&w->flush_list)) {
        zg_conn *c = ZG_CONTAINER_OF(w->flush_list.next, zg_conn, link);
        zg_list_del(&c->link);
        c->flags &= ~ZG_C_QUEUED;
        conn_send(c);
        zg_conn_settle(c);
    }
}

static void send_complete(zg_conn *c, struct io_uring_cqe *cqe)
{
    zg_worker *w = c->w;
    if (cqe->flags & IORING_CQE_F_NOTIF) {
        /* SEND_ZC: the kernel no longer reads the sent memory */
        c->inflight--;
        c->flags &= ~ZG_C_ZC_WAIT;
        zg_outq_release_list(&w->bufs, c->zc_retired);
        c->zc_retired = NULL;
        if (c->flags & ZG_C_ZOMBIE) {
            release_slot(c);
            return;
        }
        if (!(c->flags & ZG_C_CLOSING))
            zg_conn_queue_flush(c);
        return;
    }
    c->flags &= ~ZG_C_SENDING;
    zg_sendv_done(c);
    if (cqe->flags & IORING_CQE_F_MORE)
        c->flags |= ZG_C_ZC_WAIT; /* the notification keeps our inflight count */
    else
        c->inflight--;
    if (cqe->res < 0) {
        zg_conn_teardown(c, cqe->res);
        return;
    }
    w->stats.bytes_out += (uint64_t)cqe->res;
    zg_outq_consume(&w->bufs, c->tls ? &c->tls->wire : &c->out, (size_t)cqe->res,
                    (c->flags & ZG_C_ZC_WAIT) ? &c->zc_retired : NULL);
    zg_conn_sent(c);
}

void zg_conn_sent(zg_conn *c)
{
    if (c->flags & ZG_C_CLOSING)
        return;
    if ((c->flags & ZG_C_ABOVE_HIGH) && zg_conn_unsent(c) <= c->out_low) {
        c->flags &= ~(ZG_C_ABOVE_HIGH | ZG_C_PAUSE_OUT);
        if (c->mod->on_drain)
            c->mod->on_drain(c);
        if (!(c->flags & ZG_C_CLOSING))
            zg_conn_deliver_held(c);
    } else if (zg_conn_unsent(c) == 0 && (c->flags & ZG_C_WANT_DRAIN)) {
        c->flags &= ~ZG_C_WANT_DRAIN;
        if (c->mod->on_drain)
            c->mod->on_drain(c);
    }
    if (!(c->flags & ZG_C_CLOSING))
        zg_conn_queue_flush(c);
}

/* ---- outbound connections (zg_connect.c) ---- */

void zg_conn_connecting(zg_conn *c)
{
    c->flags |= ZG_C_OPEN | ZG_C_CONNECTING;
}

void zg_conn_connected(zg_conn *c, int res)
{
    c->flags &= ~ZG_C_CONNECTING;
    if (c->flags & ZG_C_CLOSING)
        return;
    if (res == 0 && c->tls && !c->tls->established) {
        zg_tls_client_begin(c); /* on_connect once the handshake is done */
        return;
    }
    if (c->mod->on_connect)
        c->mod->on_connect(c, res);
    if (res < 0) {
        zg_conn_teardown(c, res);
        return;
    }
    zg_conn_update_read(c);
    zg_conn_queue_flush(c);
}

/* ---- what the module asks for (the api table forwards here) ---- */

int zg_conn_closing(zg_conn *c)
{
    return (c->flags & (ZG_C_CLOSING | ZG_C_CLOSE_WANT | ZG_C_LINGER)) != 0;
}

int zg_conn_tearing_down(const zg_conn *c)
{
    return (c->flags & ZG_C_CLOSING) != 0;
}

int zg_conn_writable(zg_conn *c)
{
    if (zg_conn_closing(c))
        return 0;
    /* after shutdown(SHUT_RD) the write side stays open */
    return !(c->flags & ZG_C_SHUT_WANT) || c->shut_how == SHUT_RD;
}

void zg_conn_close(zg_conn *c)
{
    if (zg_conn_closing(c))
        return;
    c->flags |= ZG_C_CLOSE_WANT;
    zg_conn_update_read(c);
    zg_conn_queue_flush(c);
}

void zg_conn_abort(zg_conn *c)
{
    if (c->flags & ZG_C_CLOSING)
        return;
    c->flags |= ZG_C_ABORT;
    zg_conn_teardown(c, 0);
}

void zg_conn_shutdown(zg_conn *c, int how)
{
    if (c->flags & (ZG_C_CLOSING | ZG_C_SHUT_WANT))
        return;
    c->flags |= ZG_C_SHUT_WANT;
    c->shut_how = how;
    zg_conn_queue_flush(c);
}

void zg_conn_pause_read(zg_conn *c)
{
    c->flags |= ZG_C_PAUSE_MOD;
    zg_conn_update_read(c);
}

void zg_conn_resume_read(zg_conn *c)
{
    if (!(c->flags & ZG_C_PAUSE_MOD))
        return;
    c->flags &= ~ZG_C_PAUSE_MOD;
    zg_conn_deliver_held(c);
}

void zg_conn_set_watermarks(zg_conn *c, size_t low, size_t high)
{
    c->out_low = low < high ? low : high;
    c->out_high = high;
}

void zg_conn_want_drain(zg_conn *c)
{
    c->flags |= ZG_C_WANT_DRAIN;
    if (zg_conn_unsent(c) == 0)
        zg_conn_queue_flush(c); /* the flush turn reports it */
}

void zg_conn_set_input_limit(zg_conn *c, size_t max)
{
    c->in_limit = max;
}

void zg_conn_set_timeout(zg_conn *c, uint64_t ms)
{
    if (c->flags & ZG_C_CLOSING)
        return;
    if (ms)
        zg_timer_set(&c->w->timers, &c->timer, c->w->now_ms, ms);
    else
        zg_timer_cancel(&c->w->timers, &c->timer);
}

/* ---- timeouts ---- */

static void conn_timer_fired(zerg_timer *t)
{
    zg_conn *c = t->data;
    if (c->flags & ZG_C_CLOSING)
        return;
    if (c->flags & ZG_C_LINGER)
        zg_conn_teardown(c, 0); /* lingering_timeout or lingering_time */
    else if (c->flags & ZG_C_PP_WAIT)
        zg_conn_proxy_header_timeout(c);
    else if (c->flags & ZG_C_HANDSHAKE)
        zg_tls_handshake_timeout(c);
    else if (c->mod->on_timeout)
        c->mod->on_timeout(c);
    else
        zg_conn_teardown(c, -ETIMEDOUT);
    zg_conn_settle(c);
}

/* ---- closing ---- */

void zg_conn_teardown(zg_conn *c, int err)
{
    zg_worker *w = c->w;
    if (c->flags & ZG_C_CLOSING)
        return;
    c->flags |= ZG_C_CLOSING;
    c->flags &= ~ZG_C_CLOSE_WANT;
    c->close_err = err;
    zg_timer_cancel(&w->timers, &c->timer);
    if (c->flags & ZG_C_STARVED) {
        zg_list_del(&c->wait_link);
        c->flags &= ~ZG_C_STARVED;
    }
    if (c->flags & (ZG_C_RECV_ARMED | ZG_C_SENDING | ZG_C_CONNECTING) ||
        ((c->flags & ZG_C_SHUT_DONE) && c->inflight)) {
        struct io_uring_sqe *sqe = zg_sqe(w);
        io_uring_prep_cancel_fd(
            sqe, c->fd, IORING_ASYNC_CANCEL_ALL | (c->fixed ? IORING_ASYNC_CANCEL_FD_FIXED : 0));
        io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_IGNORE, 0, 0));
    }
    zg_splice_teardown(c);
    zg_conn_settle(c);
}

void zg_conn_settle(zg_conn *c)
{
    /* a pending SEND_ZC notification does not hold the close back: the peer
     * may never read, and only closing the socket frees what it holds */
    uint32_t owed = c->inflight - ((c->flags & ZG_C_ZC_WAIT) ? 1 : 0);
    if ((c->flags & (ZG_C_CLOSING | ZG_C_REAP)) != ZG_C_CLOSING || owed)
        return;
    if (c->flags & ZG_C_QUEUED) {
        zg_list_del(&c->link);
        c->flags &= ~ZG_C_QUEUED;
    }
    c->flags |= ZG_C_REAP;
    zg_list_add_tail(&c->w->reap_list, &c->link);
}

/* The conn object goes back to the pool; late completions see a new gen. */
static void release_slot(zg_conn *c)
{
    zg_worker *w = c->w;
    c->w = NULL;
    c->gen = (c->gen + 1) & 0xffffff;
    zg_pool_put(&w->conns, c, c->idx);
}

static void set_linger_zero(int fd)
{
    struct linger lg = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
}

/* The fd installed for an aborted fixed socket: SO_LINGER 0, then closing
 * both the fd and the slot sends the RST. */
void zg_conn_abort_fd_complete(zg_worker *w, struct io_uring_cqe *cqe)
{
    if (cqe->res >= 0) {
        set_linger_zero(cqe->res);
        close(cqe->res);
    }
    zg_close_fd(w, (int)ZG_UD_IDX(cqe->user_data), 1);
}

static void finalize(zg_conn *c)
{
    zg_worker *w = c->w;
    zg_bufs *b = &w->bufs;
    zg_outq_clear(b, &c->out);
    zg_outq_clear(b, &c->in_held);
    zg_tls_free(c);
    zg_splice_detach(c);
    if (!(c->flags & ZG_C_ZC_WAIT)) {
        zg_outq_release_list(b, c->zc_retired);
        c->zc_retired = NULL;
    }
    if (c->carry) {
        zg_chunk_put(b, c->carry);
        c->carry = NULL;
    }
    if (c->flags & ZG_C_OPEN) {
        c->flags &= ~ZG_C_OPEN;
        if (c->mod->on_close)
            c->mod->on_close(c, c->close_err);
    }
    zg_conn_account(c); /* nothing held any more */
    if (c->flags & ZG_C_COUNTED) {
        c->flags &= ~ZG_C_COUNTED;
        zg_climit_leave(c->srv->climit, zg_conn_peer(c), w->pid);
    }
    zg_timer_cancel(&w->timers, &c->timer); /* on_close may have armed it */
    zg_conn_ext_free(c); /* closes an outbound socket's fd kept while connecting */
    zg_sendv_done(c);
    if ((c->flags & ZG_C_ABORT) && !c->fixed) {
        set_linger_zero(c->fd);
        zg_close_fd(w, c->fd, 0);
    } else if ((c->flags & ZG_C_ABORT) && w->fd_install_ok) {
        /* a fixed file has no fd for setsockopt: install one, then reset */
        struct io_uring_sqe *sqe = zg_sqe(w);
        io_uring_prep_rw(ZG_OP_FIXED_FD_INSTALL, sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_FIXED_FILE;
        io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_ABORT_FD, (uint32_t)c->fd, 0));
    } else {
        zg_close_fd(w, c->fd, c->fixed);
    }
    w->stats.conns_active--;
    w->stats.conns_closed++;
    if (c->flags & ZG_C_ZC_WAIT)
        c->flags |= ZG_C_ZOMBIE; /* the notification frees it */
    else
        release_slot(c);
}

void zg_conn_reap_all(zg_worker *w)
{
    while (!zg_list_empty(&w->reap_list)) {
        zg_conn *c = ZG_CONTAINER_OF(w->reap_list.next, zg_conn, link);
        zg_list_del(&c->link);
        finalize(c);
    }
}

void zg_conn_close_all(zg_worker *w)
{
    uint32_t n = w->conns.nslabs << ZG_POOL_CHUNK_SHIFT;
    for (uint32_t i = 0; i < n; i++) {
        zg_conn *c = zg_pool_at(&w->conns, i);
        if (c && c->w && !(c->flags & ZG_C_CLOSING))
            zg_conn_teardown(c, -ECANCELED);
    }
}

void zg_conn_complete(zg_worker *w, struct io_uring_cqe *cqe)
{
    zg_conn *c = zg_pool_at(&w->conns, ZG_UD_IDX(cqe->user_data));
    if (!c || !c->w || c->gen != ZG_UD_GEN(cqe->user_data))
        return; /* a completion for a connection that is gone */
    switch (ZG_UD_OP(cqe->user_data)) {
    case ZG_OP_RECV:
        zg_conn_recv_complete(c, cqe);
        break;
    case ZG_OP_SEND:
        send_complete(c, cqe);
        break;
    case ZG_OP_CONNECT:
        zg_connect_complete(c, cqe);
        break;
    case ZG_OP_INSTALL:
        zg_connect_installed(c, cqe);
        break;
    case ZG_OP_SPLICE_IN:
    case ZG_OP_SPLICE_OUT:
    case ZG_OP_SPLICE_POLL:
        zg_splice_complete(c, cqe);
        break;
    case ZG_OP_LINK_TIMEOUT:
    case ZG_OP_SHUTDOWN:
        c->inflight--;
        break;
    default:
        break;
    }
    if (c->w) {
        zg_conn_account(c);
        zg_conn_settle(c);
    }
}

void zg_conn_dump(zg_worker *w)
{
    uint32_t n = w->conns.nslabs << ZG_POOL_CHUNK_SHIFT;
    for (uint32_t i = 0; i < n; i++) {
        zg_conn *c = zg_pool_at(&w->conns, i);
        if (c && c->w)
            zg_log_debug("conn %u: flags %#x inflight %u out %zu held %zu", i, c->flags,
                         c->inflight, zg_conn_unsent(c), c->in_held.bytes);
    }
}
