/* zg_connect.c - outbound connections (as nginx's ngx_event_connect.c): a
 * socket, a connect on the ring with its linked timeout, and the completion
 * that tells the module (on_connect) and starts reading. */
#define _GNU_SOURCE
#include "zg_connect.h"
#include "zg_log.h"
#include "zg_worker.h"

#include <errno.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* A hook set of api->connect_with, as the module descriptor its connections
 * are dispatched through like any other (c->mod). */
struct zg_hooked {
    struct zg_hooked *next;
    const zerg_conn_hooks *hooks;
    zerg_module desc;
};

/* The connect, linked to a timeout that cancels it (-ECANCELED, which the
 * completion reports as -ETIMEDOUT) when c->connect_ts is set. */
static void submit_connect(zg_worker *w, zg_conn *c)
{
    struct io_uring_sqe *sqe = zg_sqe(w);
    io_uring_prep_connect(sqe, c->fd, zg_conn_peer(c), c->peer_len);
    zg_conn_sqe_file(sqe, c);
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_CONNECT, c->idx, c->gen));
    c->inflight++;
    struct __kernel_timespec *ts = &c->ext->connect_ts;
    if (!ts->tv_sec && !ts->tv_nsec)
        return;
    sqe->flags |= IOSQE_IO_LINK;
    struct io_uring_sqe *t = zg_sqe(w);
    io_uring_prep_link_timeout(t, ts, 0); /* copied as the kernel takes it */
    io_uring_sqe_set_data64(t, ZG_UD(ZG_OP_LINK_TIMEOUT, c->idx, c->gen));
    c->inflight++;
}

/* uring.fixed_outbound: put the socket into the fixed-file table, as
 * accepted ones are (no file lookup per operation). A FILES_UPDATE into a
 * slot the kernel picks (IORING_FILE_INDEX_ALLOC, kernel 5.19) writes the
 * slot over the fd in c->slot; the connect follows at its completion. The
 * socket is made by socket(2) first, as TCP_NODELAY needs an fd (setsockopt
 * on a fixed file takes kernel 6.7). */
static void submit_install(zg_worker *w, zg_conn *c)
{
    struct io_uring_sqe *sqe = zg_sqe(w);
    c->ext->slot = c->fd;
    io_uring_prep_files_update(sqe, &c->ext->slot, 1, (int)IORING_FILE_INDEX_ALLOC);
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_INSTALL, c->idx, c->gen));
    c->inflight++;
}

zg_conn *zg_connect(zg_worker *w, const zerg_module *m, void *conf, const struct sockaddr *sa,
                    socklen_t len, uint64_t timeout_ms)
{
    if (len > sizeof(struct sockaddr_storage)) {
        errno = EINVAL;
        return NULL;
    }
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0); /* blocking: see arm_accept */
    if (fd < 0)
        return NULL;
    int one = 1;
    if (sa->sa_family != AF_UNIX && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) < 0)
        zg_log_debug("TCP_NODELAY: %s", strerror(errno)); /* only slower: go on */
    zg_conn *c = zg_conn_new(w, m, conf, fd, 0);
    if (!c) {
        close(fd);
        errno = EMFILE;
        return NULL;
    }
    zg_conn_ext *x = zg_conn_ext_get(c); /* the connect state, freed once connected */
    if (!x || zg_conn_set_peer(c, sa, len) < 0) {
        zg_conn_ext_free(c);
        zg_pool_put(&w->conns, c, c->idx);
        w->stats.conns_active--;
        close(fd);
        errno = ENOMEM;
        return NULL;
    }
    c->no_zc = zg_addr_no_zc(sa, w->cfg->uring.send_zc_loopback);
    x->connect_ts.tv_sec = (long long)(timeout_ms / 1000);
    x->connect_ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    zg_conn_connecting(c);
    w->stats.conns_outbound++;
    if (w->cfg->uring.fixed_files && w->cfg->uring.fixed_outbound)
        submit_install(w, c);
    else
        submit_connect(w, c);
    return c;
}

void zg_connect_installed(zg_conn *c, struct io_uring_cqe *cqe)
{
    c->inflight--;
    if (cqe->res == 1) {
        c->ext->plain_fd = c->fd; /* for getsockname once connected */
        c->fd = c->ext->slot;
        c->fixed = 1;
    }
    if (!zg_conn_tearing_down(c)) /* else the close takes what c holds */
        submit_connect(c->w, c);
}

void zg_connect_complete(zg_conn *c, struct io_uring_cqe *cqe)
{
    c->inflight--;
    int res = cqe->res == -ECANCELED ? -ETIMEDOUT : cqe->res;
    zg_conn_ext *x = c->ext;
    if (x->plain_fd >= 0) {
        /* api->conn_local's answer, while an fd can still tell it */
        x->local_len = sizeof(x->local);
        if (res < 0 || getsockname(x->plain_fd, (struct sockaddr *)&x->local, &x->local_len) < 0)
            x->local_len = 0;
        close(x->plain_fd);
        x->plain_fd = -1;
    }
    if (!x->local_len && c->peer_len <= sizeof(c->peer))
        zg_conn_ext_free(c); /* nothing in it is needed any more */
    zg_conn_connected(c, res);
}

/* The descriptor of hook set h, made at its first connection in this worker
 * and kept to the worker's exit (modules keep a few static sets). */
static const zerg_module *hooked_module(zg_worker *w, const zerg_conn_hooks *h)
{
    for (zg_hooked *x = w->hooked; x; x = x->next)
        if (x->hooks == h)
            return &x->desc;
    zg_hooked *x = calloc(1, sizeof(*x));
    if (!x)
        return NULL;
    zerg_conn_hooks hk = {0};
    memcpy(&hk, h, h->struct_size < sizeof(hk) ? h->struct_size : sizeof(hk));
    x->hooks = h;
    x->desc = (zerg_module){
        .abi_version = ZERG_ABI_VERSION,
        .struct_size = sizeof(zerg_module),
        .name = "outbound",
        .on_connect = hk.on_connect,
        .on_data = hk.on_data,
        .on_eof = hk.on_eof,
        .on_drain = hk.on_drain,
        .on_timeout = hk.on_timeout,
        .on_close = hk.on_close,
    };
    x->next = w->hooked;
    w->hooked = x;
    return &x->desc;
}

zg_conn *zg_connect_with(zg_worker *w, const zerg_conn_hooks *hooks, void *conf,
                         const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms)
{
    if (!hooks ||
        hooks->struct_size < offsetof(zerg_conn_hooks, on_close) + sizeof(hooks->on_close)) {
        errno = EINVAL;
        return NULL;
    }
    const zerg_module *m = hooked_module(w, hooks);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    return zg_connect(w, m, conf, sa, len, timeout_ms);
}

void zg_connect_destroy(zg_worker *w)
{
    while (w->hooked) {
        zg_hooked *x = w->hooked;
        w->hooked = x->next;
        free(x);
    }
}
