/* zg_accept.c - the worker's listening sockets (as nginx's
 * ngx_event_accept.c): one listener per address, multishot accepts into
 * fixed files or plain fds, a back-off when descriptors run out, and the
 * sweep by which a draining worker serves what its accept left queued. */
#define _GNU_SOURCE
#include "zg_accept.h"
#include "zg_log.h"
#include "zg_module.h"
#include "zg_tls_conf.h"
#include "zg_uring_compat.h"
#include "zg_worker.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#define ZG_ACCEPT_BACKOFF_MS 100

/* ---- listeners ---- */

/* l's blocks and their TLS classes: a block's is the index of the first
 * block with the same settings. */
static void add_vhost(zg_listener *l, zg_server *o)
{
    size_t i = l->nvhosts++;
    l->vhosts[i] = o->module_conf;
    l->servers[i] = o;
    l->tls_class[i] = (uint32_t)i;
    for (size_t k = 0; k < i; k++)
        if (zg_tls_conf_same(l->servers[k]->tls, o->tls)) {
            l->tls_class[i] = (uint32_t)k;
            break;
        }
}

/* The module confs of the blocks listening on l's address, l's block (the
 * address's owner) first. */
static int collect_vhosts(zg_worker *w, zg_listener *l)
{
    const zg_config *cfg = w->cfg;
    const zg_addr *addr = &l->srv->addrs[l->addr_index];
    l->vhosts = calloc(cfg->nservers, sizeof(void *));
    l->servers = calloc(cfg->nservers, sizeof(zg_server *));
    l->tls_class = calloc(cfg->nservers, sizeof(uint32_t));
    if (!l->vhosts || !l->servers || !l->tls_class)
        return -1;
    add_vhost(l, l->srv);
    for (size_t s = 0; s < cfg->nservers; s++) {
        zg_server *o = &cfg->servers[s];
        for (size_t a = 0; a < o->naddrs && o != l->srv; a++)
            if (zg_addr_same(&o->addrs[a], addr)) {
                add_vhost(l, o);
                l->direct = l->direct && !o->want_peer;
            }
    }
    return 0;
}

int zg_accept_init(zg_worker *w, const int *fds)
{
    size_t total = 0;
    for (size_t s = 0; s < w->cfg->nservers; s++)
        total += w->cfg->servers[s].naddrs;
    w->listeners = calloc(total ? total : 1, sizeof(zg_listener));
    if (!w->listeners)
        return -1;
    size_t k = 0, n = 0;
    for (size_t s = 0; s < w->cfg->nservers; s++) {
        zg_server *srv = &w->cfg->servers[s];
        for (size_t a = 0; a < srv->naddrs; a++, k++) {
            if (zg_conf_addr_owner(w->cfg, srv, a) != srv)
                continue;
            zg_listener *l = &w->listeners[n];
            l->srv = srv;
            l->addr_index = a;
            l->fd = fds[k];
            l->index = (uint32_t)n++;
            l->w = w;
            l->direct = w->cfg->uring.fixed_files && !srv->want_peer;
            l->no_zc = zg_addr_no_zc((const struct sockaddr *)&srv->addrs[a].ss,
                                     w->cfg->uring.send_zc_loopback);
            if (l->fd < 0) {
                zg_log_error("no listening socket for %s", srv->addrs[a].text);
                return -1;
            }
            if (collect_vhosts(w, l) < 0)
                return -1;
        }
    }
    w->nlisteners = n;
    return 0;
}

void zg_accept_destroy(zg_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        free(w->listeners[i].vhosts);
        free(w->listeners[i].servers);
        free(w->listeners[i].tls_class);
    }
    free(w->listeners);
    w->listeners = NULL;
    w->nlisteners = 0;
}

/* ---- accepting ---- */

/* Plain descriptors are left blocking, as fixed ones are: io_uring makes
 * each try nonblocking itself, and a send that it hands to a worker thread
 * after a poll has to wait there. On an O_NONBLOCK socket that send fails
 * with EAGAIN instead, which cut proxied streams short. */
static void arm_accept(zg_worker *w, zg_listener *l)
{
    if (l->armed || w->draining)
        return;
    struct io_uring_sqe *sqe = zg_sqe(w);
    if (l->direct)
        io_uring_prep_multishot_accept_direct(sqe, l->fd, NULL, NULL, 0);
    else
        io_uring_prep_multishot_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_ACCEPT, l->index, 0));
    l->armed = 1;
}

static void accept_retry(zerg_timer *t)
{
    zg_listener *l = t->data;
    arm_accept(l->w, l);
}

void zg_accept_start(zg_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        zg_listener *l = &w->listeners[i];
        l->retry.fn = accept_retry;
        l->retry.data = l;
        arm_accept(w, l);
    }
}

/* Listening sockets are shared between a draining worker and its successor,
 * and the kernel wakes one waiter per new connection. A wakeup that reaches
 * this worker's accept while it is being cancelled is lost with it, leaving
 * the connection queued until the next one arrives. So once its accept is
 * gone, a draining worker takes what is queued with non-blocking accepts and
 * serves it; later connections wake the successors. */
static void accept_sweep(zg_worker *w, zg_listener *l)
{
    if (l->sweeping || l->armed)
        return;
    struct io_uring_sqe *sqe = zg_sqe(w);
    if (l->direct)
        zg_prep_accept_alloc(sqe, l->fd, 0);
    else
        io_uring_prep_accept(sqe, l->fd, NULL, NULL, SOCK_CLOEXEC);
    sqe->ioprio |= IORING_ACCEPT_DONTWAIT;
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_ACCEPT_SWEEP, l->index, 0));
    l->sweeping = 1;
}

void zg_accept_stop(zg_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++) {
        zg_listener *l = &w->listeners[i];
        zg_timer_cancel(&w->timers, &l->retry);
        if (l->armed) {
            struct io_uring_sqe *sqe = zg_sqe(w);
            io_uring_prep_cancel64(sqe, ZG_UD(ZG_OP_ACCEPT, l->index, 0), 0);
            io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_IGNORE, 0, 0));
        } else {
            accept_sweep(w, l); /* its accept ended before: what is queued? */
        }
    }
}

int zg_accept_pending(const zg_worker *w)
{
    for (size_t i = 0; i < w->nlisteners; i++)
        if (w->listeners[i].armed || w->listeners[i].sweeping)
            return 1;
    return 0;
}

/* ---- accept failures ---- */

/* One line a second at most: a full descriptor table fails every accept
 * retry, and the log should say so once, with how often, not flood. Returns
 * whether to log now; *unlogged is how many were held back before. */
static int accept_log_due(zg_worker *w, uint64_t *unlogged)
{
    if (w->accept_logged_ms && w->now_ms - w->accept_logged_ms < 1000) {
        w->accept_unlogged++;
        return 0;
    }
    *unlogged = w->accept_unlogged;
    w->accept_unlogged = 0;
    w->accept_logged_ms = w->now_ms;
    return 1;
}

static unsigned long long file_max(void)
{
    unsigned long long v = 0;
    FILE *f = fopen("/proc/sys/fs/file-max", "re");
    if (f) {
        if (fscanf(f, "%llu", &v) != 1)
            v = 0;
        fclose(f);
    }
    return v;
}

/* Which limit an accept failure (-err) ran into, in words. */
static void limit_hit(const zg_worker *w, const zg_listener *l, int err, char *buf, size_t cap)
{
    struct rlimit rl;
    int have_rl = getrlimit(RLIMIT_NOFILE, &rl) == 0;
    unsigned long long nofile = have_rl ? (unsigned long long)rl.rlim_cur : 0;
    if (err == EMFILE) {
        snprintf(buf, cap, "the process's open file limit is reached (RLIMIT_NOFILE %llu)", nofile);
    } else if (err == ENFILE && l->direct) { /* what a full fixed-file table answers */
        if (w->max_conns < (uint64_t)w->cfg->worker_connections)
            snprintf(
                buf, cap,
                "the ring's fixed file table is full (%u slots: worker_connections %lld cut to "
                "fit RLIMIT_NOFILE %llu)",
                w->max_conns, (long long)w->cfg->worker_connections, nofile);
        else
            snprintf(buf, cap, "the ring's fixed file table is full (%u slots: worker_connections)",
                     w->max_conns);
    } else if (err == ENFILE) {
        snprintf(buf, cap, "the system's open file limit is reached (fs.file-max %llu)",
                 file_max());
    } else {
        snprintf(buf, cap, "%s", strerror(err));
    }
}

static void log_accept_failure(zg_worker *w, const zg_listener *l, int err)
{
    uint64_t unlogged;
    if (!accept_log_due(w, &unlogged))
        return;
    char why[160], more[64] = "";
    limit_hit(w, l, err, why, sizeof(why));
    if (unlogged)
        snprintf(more, sizeof(more), " (%llu more failures since the last line)",
                 (unsigned long long)unlogged);
    zg_log_warn("accept on %s: %s; retrying in %d ms%s", l->srv->addrs[l->addr_index].text, why,
                ZG_ACCEPT_BACKOFF_MS, more);
}

/* A new connection: to its module, or first through the PROXY protocol
 * header or the TLS handshake when its server block wants one. */
static void accepted(zg_worker *w, zg_listener *l, int fd)
{
    zg_conn *c = zg_conn_new(w, l->srv->module->desc, l->srv->module_conf, fd, l->direct);
    if (!c) {
        uint64_t unlogged;
        if (accept_log_due(w, &unlogged))
            zg_log_warn("worker_connections (%u) reached: closing a new connection (%llu more "
                        "since the last line)",
                        w->max_conns, (unsigned long long)unlogged);
        zg_close_fd(w, fd, l->direct);
        return;
    }
    c->srv = l->srv;
    c->no_zc = l->no_zc;
    c->listener = l;
    w->stats.conns_accepted++;
    if (!l->direct) {
        struct sockaddr_storage ss;
        socklen_t len = sizeof(ss);
        if (getpeername(fd, (struct sockaddr *)&ss, &len) == 0)
            zg_conn_set_peer(c, (const struct sockaddr *)&ss, len); /* else unknown */
    }
    if (l->srv->proxy_protocol) { /* before a TLS handshake too */
        zg_conn_await_proxy_header(c, l->srv->proxy_protocol_timeout);
    } else if (l->srv->tls) { /* the module meets it after the handshake */
        if (zg_tls_start(c) < 0)
            zg_conn_teardown(c, -ENOMEM);
    } else {
        zg_conn_open(c);
    }
    zg_conn_update_read(c);
    zg_conn_settle(c);
}

void zg_accept_complete(zg_worker *w, struct io_uring_cqe *cqe)
{
    uint32_t idx = ZG_UD_IDX(cqe->user_data);
    if (idx >= w->nlisteners)
        return;
    zg_listener *l = &w->listeners[idx];
    int sweep = ZG_UD_OP(cqe->user_data) == ZG_OP_ACCEPT_SWEEP;
    if (sweep)
        l->sweeping = 0;
    else if (!(cqe->flags & IORING_CQE_F_MORE))
        l->armed = 0;
    if (cqe->res >= 0)
        accepted(w, l, cqe->res);
    if (w->draining) {
        /* swept until the queue is empty (-EAGAIN), or the kernel is older
         * than the flag (-EINVAL) */
        int more = cqe->res >= 0 || cqe->res == -ECONNABORTED || cqe->res == -EINTR;
        if (!l->armed && (!sweep || more))
            accept_sweep(w, l);
        return;
    }
    if (cqe->res == -ECANCELED)
        return;
    if (cqe->res < 0 && cqe->res != -ECONNABORTED && cqe->res != -EAGAIN && cqe->res != -EINTR) {
        /* out of descriptors or fixed slots, or worse: pause, never spin */
        w->stats.accept_backoffs++;
        if (!l->armed) {
            log_accept_failure(w, l, -cqe->res);
            zg_timer_set(&w->timers, &l->retry, w->now_ms, ZG_ACCEPT_BACKOFF_MS);
        }
        return;
    }
    if (!l->armed)
        arm_accept(w, l);
}
