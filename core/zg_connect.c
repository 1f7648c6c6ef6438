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
 * completion reports as -ETIMEDOUT). */
static void submit_connect(zg_worker *w, zg_conn *c, uint64_t timeout_ms)
{
    struct io_uring_sqe *sqe = zg_sqe(w);
    io_uring_prep_connect(sqe, c->fd, (struct sockaddr *)&c->peer, c->peer_len);
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_CONNECT, c->idx, c->gen));
    c->inflight++;
    if (!timeout_ms)
        return;
    sqe->flags |= IOSQE_IO_LINK;
    c->connect_ts.tv_sec = (long long)(timeout_ms / 1000);
    c->connect_ts.tv_nsec = (long long)(timeout_ms % 1000) * 1000000;
    struct io_uring_sqe *t = zg_sqe(w);
    io_uring_prep_link_timeout(t, &c->connect_ts, 0);
    io_uring_sqe_set_data64(t, ZG_UD(ZG_OP_LINK_TIMEOUT, c->idx, c->gen));
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
    memcpy(&c->peer, sa, len);
    c->peer_len = len;
    c->no_zc = zg_addr_no_zc(sa, w->cfg->uring.send_zc_loopback);
    zg_conn_connecting(c);
    w->stats.conns_outbound++;
    submit_connect(w, c, timeout_ms);
    return c;
}

void zg_connect_complete(zg_conn *c, struct io_uring_cqe *cqe)
{
    c->inflight--;
    zg_conn_connected(c, cqe->res == -ECANCELED ? -ETIMEDOUT : cqe->res);
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
