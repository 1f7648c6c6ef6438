/* zg_api.c - the api table modules call: thin, checked wrappers over the
 * connection, timer, file and config machinery of the core. */
#define _GNU_SOURCE
#include "zg_connect.h"
#include "zg_log.h"
#include "zg_logfile.h"
#include "zg_module.h"
#include "zg_server_name.h"
#include "zg_tls_client.h"
#include "zg_upstream.h"
#include "zg_worker.h"

#include <errno.h>
#include <stdarg.h>
#include <string.h>

static void api_log(int level, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zg_vlog(level, fmt, ap);
    va_end(ap);
}

static int api_conf_apply(zerg_conf_ctx *cx, const zerg_conf_node *map, const zerg_directive *d,
                          void *conf)
{
    return zg_conf_apply(cx, map, d, conf, NULL);
}

/* ---- worker ---- */

static unsigned api_worker_id(zg_worker *w)
{
    return w->id;
}
static unsigned api_worker_count(zg_worker *w)
{
    return w->count;
}
static int api_worker_draining(zg_worker *w)
{
    return w->draining;
}
static uint64_t api_now_ms(zg_worker *w)
{
    return w->now_ms;
}
static int64_t api_unix_time(zg_worker *w)
{
    return w->unix_time;
}
static const zerg_stats *api_stats(zg_worker *w)
{
    return &w->stats;
}
static void api_timer_set(zg_worker *w, zerg_timer *t, uint64_t ms)
{
    zg_timer_set(&w->timers, t, w->now_ms, ms);
}
static void api_timer_cancel(zg_worker *w, zerg_timer *t)
{
    zg_timer_cancel(&w->timers, t);
}

/* A pooled file operation for cb(arg, res): an sqe for the caller to
 * prepare and *ud to tag it with; NULL when the owner is closing (*err
 * -EINVAL) or the pool is empty (*err -ENOMEM). */
static struct io_uring_sqe *file_op_sqe(zg_worker *w, zg_conn *owner, zerg_io_fn cb, void *arg,
                                        uint64_t *ud, int *err)
{
    *err = -EINVAL;
    if (!cb || (owner && zg_conn_tearing_down(owner)))
        return NULL;
    uint32_t idx;
    zg_file_op *op = zg_pool_get(&w->file_ops, &idx);
    *err = -ENOMEM;
    if (!op)
        return NULL;
    uint32_t gen = (op->gen + 1) & 0xffffff;
    op->idx = idx;
    op->gen = gen;
    op->cb = cb;
    op->arg = arg;
    op->owner = owner;
    if (owner)
        owner->inflight++;
    *ud = ZG_UD(ZG_OP_FILE, idx, gen);
    return zg_sqe(w);
}

static int api_file_io(zg_worker *w, zg_conn *owner, int is_write, int fd, void *buf, size_t len,
                       int64_t off, zerg_io_fn cb, void *arg)
{
    int err;
    uint64_t ud;
    struct io_uring_sqe *sqe = file_op_sqe(w, owner, cb, arg, &ud, &err);
    if (!sqe)
        return err;
    if (is_write)
        io_uring_prep_write(sqe, fd, buf, (unsigned)len, (uint64_t)off);
    else
        io_uring_prep_read(sqe, fd, buf, (unsigned)len, (uint64_t)off);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

static int api_file_open(zg_worker *w, zg_conn *owner, int dirfd, const char *path,
                         const struct open_how *how, zerg_io_fn cb, void *arg)
{
    int err;
    uint64_t ud;
    struct io_uring_sqe *sqe = file_op_sqe(w, owner, cb, arg, &ud, &err);
    if (!sqe)
        return err;
    /* the kernel copies path and how when it takes the sqe, at this turn's
     * submit; an open the dentry cache can answer completes inline there,
     * one that must read the disk goes to the ring's worker threads */
    io_uring_prep_openat2(sqe, dirfd, path, (struct open_how *)how);
    io_uring_sqe_set_data64(sqe, ud);
    return 0;
}

/* ---- connections ---- */

static void *api_conn_ctx(zg_conn *c)
{
    return c->ctx;
}
static void *api_conn_conf(zg_conn *c)
{
    return c->conf;
}
static zg_worker *api_conn_worker(zg_conn *c)
{
    return c->w;
}
static const struct sockaddr *api_conn_peer(zg_conn *c, socklen_t *len)
{
    if (len)
        *len = c->peer_len;
    return zg_conn_peer(c);
}
static const struct sockaddr *api_conn_local(zg_conn *c, socklen_t *len)
{
    return zg_conn_local(c, len);
}
static size_t api_conn_servers(zg_conn *c, void *const **confs)
{
    if (!c->listener) {
        *confs = NULL;
        return 0;
    }
    *confs = c->listener->vhosts;
    return c->listener->nvhosts;
}
static size_t api_conn_out_pending(zg_conn *c)
{
    return zg_conn_unsent(c);
}

static size_t api_conn_out_high(zg_conn *c)
{
    return c->out_high;
}

static int api_write(zg_conn *c, const void *data, size_t len)
{
    if (!zg_conn_writable(c))
        return -EPIPE;
    if (zg_outq_copy(&c->w->bufs, &c->out, data, len) < 0)
        return -ENOMEM;
    zg_conn_after_write(c);
    return 0;
}

static int api_writev(zg_conn *c, const struct iovec *iov, int iovcnt)
{
    if (!zg_conn_writable(c))
        return -EPIPE;
    for (int i = 0; i < iovcnt; i++)
        if (zg_outq_copy(&c->w->bufs, &c->out, iov[i].iov_base, iov[i].iov_len) < 0)
            return -ENOMEM;
    zg_conn_after_write(c);
    return 0;
}

static void *api_write_reserve(zg_conn *c, size_t min, size_t *avail)
{
    if (!zg_conn_writable(c))
        return NULL;
    return zg_outq_reserve(&c->w->bufs, &c->out, min, avail);
}

static void api_write_commit(zg_conn *c, size_t used)
{
    if (!zg_conn_writable(c) || !c->out.tail)
        return;
    zg_outq_commit(&c->out, used);
    zg_conn_after_write(c);
}

static int api_write_ext(zg_conn *c, const void *data, size_t len, zerg_done_fn done, void *arg)
{
    if (!zg_conn_writable(c))
        return -EPIPE;
    if (zg_outq_ref(&c->w->bufs, &c->out, data, len, NULL, done, arg) < 0)
        return -ENOMEM;
    zg_conn_after_write(c);
    return 0;
}

static int api_write_file(zg_conn *c, int fd, uint64_t off, uint64_t len, zerg_done_fn done,
                          void *arg)
{
    if (!zg_conn_writable(c))
        return -EPIPE;
    if (!len || fd < 0)
        return -EINVAL;
    if (c->tls)
        return -EOPNOTSUPP; /* file bytes must be encrypted: the caller copies them */
    int rc = zg_splice_attach(c);
    if (rc < 0)
        return rc;
    if (zg_outq_file(&c->w->bufs, &c->out, fd, off, len, done, arg) < 0) {
        zg_splice_detach(c);
        return -ENOMEM;
    }
    zg_conn_after_write(c);
    return 0;
}

static zerg_ref *api_hold(zg_conn *c, const void *data)
{
    zg_chunk *k = c->cur;
    const uint8_t *p = data;
    if (!k || p < k->base || p >= k->base + k->size)
        return NULL;
    zg_chunk_get(k);
    return (zerg_ref *)k;
}

static void api_release(zg_worker *w, zerg_ref *r)
{
    if (r)
        zg_chunk_put(&w->bufs, (zg_chunk *)r);
}

/* zg_outq_keep copies instead of referencing while receive buffers are
 * short: peers slow to read would otherwise hold every receive buffer and
 * starve the whole worker. */
static int api_write_ref(zg_conn *c, const void *data, size_t len, zerg_ref *r)
{
    zg_bufs *b = &c->w->bufs;
    if (!zg_conn_writable(c)) {
        zg_chunk_put(b, (zg_chunk *)r);
        return -EPIPE;
    }
    if (zg_outq_keep(b, &c->out, data, len, (zg_chunk *)r, &c->w->stats.bytes_copied) < 0)
        return -ENOMEM;
    zg_conn_after_write(c);
    return 0;
}

const zerg_api zg_api = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_api),
    .log = api_log,
    .conf_error = zg_conf_error,
    .conf_alloc = zg_conf_alloc,
    .conf_strdup = zg_conf_strdup,
    .conf_apply = api_conf_apply,
    .node_kind = zg_node_kind,
    .node_scalar = zg_node_scalar,
    .node_len = zg_node_len,
    .node_item = zg_node_item,
    .node_key = zg_node_key,
    .node_get = zg_node_get,
    .conf_size = zg_conf_size,
    .conf_msec = zg_conf_msec,
    .conf_int = zg_conf_int,
    .conf_bool = zg_conf_bool,
    .conf_addr = zg_conf_addr,
    .conf_shm = zg_conf_shm,
    .conf_want_peer_addr = zg_conf_want_peer_addr,
    .worker_id = api_worker_id,
    .worker_count = api_worker_count,
    .worker_draining = api_worker_draining,
    .now_ms = api_now_ms,
    .unix_time = api_unix_time,
    .stats = api_stats,
    .timer_set = api_timer_set,
    .timer_cancel = api_timer_cancel,
    .file_io = api_file_io,
    .conn_ctx = api_conn_ctx,
    .conn_conf = api_conn_conf,
    .conn_worker = api_conn_worker,
    .conn_peer = api_conn_peer,
    .conn_closing = zg_conn_closing,
    .conn_out_pending = api_conn_out_pending,
    .conn_set_watermarks = zg_conn_set_watermarks,
    .conn_want_drain = zg_conn_want_drain,
    .conn_set_input_limit = zg_conn_set_input_limit,
    .conn_timeout = zg_conn_set_timeout,
    .write = api_write,
    .writev = api_writev,
    .write_reserve = api_write_reserve,
    .write_commit = api_write_commit,
    .write_ext = api_write_ext,
    .hold = api_hold,
    .release = api_release,
    .write_ref = api_write_ref,
    .pause_read = zg_conn_pause_read,
    .resume_read = zg_conn_resume_read,
    .shutdown = zg_conn_shutdown,
    .close = zg_conn_close,
    .abort = zg_conn_abort,
    .connect = zg_connect,
    .conf_path = zg_conf_path,
    .conn_local = api_conn_local,
    .conn_servers = api_conn_servers,
    .file_open = api_file_open,
    .text_printf = zg_text_printf,
    .metrics = zg_metrics,
    .logfile_open = zg_logfile_open,
    .logfile_reserve = zg_logfile_reserve,
    .logfile_commit = zg_logfile_commit,
    .connect_with = zg_connect_with,
    ZG_UPSTREAM_API_ENTRIES, /* zg_upstream.h */
    .conn_out_high = api_conn_out_high,
    .metric_add = zg_metrics_add,
    .metric_row = zg_metrics_row,
    .metrics_ex = zg_metrics_ex,
    .write_file = api_write_file,
    .conn_tls = zg_tls_info,
    .conf_server_names = zg_conf_server_names,
    .server_names_match = zg_server_names_match,
    .conf_tls_client = zg_tls_client_conf,
    .connect_tls = zg_connect_tls,
};

/* the table the upstream groups' files call (zg_upstream.h) */
const zerg_api *const zg_up_api = &zg_api;
