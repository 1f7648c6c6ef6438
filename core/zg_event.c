/* zg_event.c - the worker's event core: one io_uring, set up with the best
 * flags the kernel takes, and a loop that per turn flushes output, submits
 * and waits in one io_uring_enter, then drains completions in a batch. */
#define _GNU_SOURCE
#include "zg_event.h"
#include "zg_log.h"
#include "zg_logfile.h"
#include "zg_module.h"
#include "zg_uring_compat.h"
#include "zg_worker.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

struct io_uring_sqe *zg_sqe(zg_worker *w)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);
    if (ZG_UNLIKELY(!sqe)) {
        /* the SQ is full mid-turn: push it to the kernel and go on */
        int rc = io_uring_submit(&w->ring);
        if (rc < 0)
            zg_log_error("io_uring_submit: %s", strerror(-rc));
        sqe = io_uring_get_sqe(&w->ring);
    }
    return sqe;
}

/* Try ring flags from the best to the plainest the kernel accepts. */
static int setup_ring(zg_worker *w)
{
    const zg_uring_conf *u = &w->cfg->uring;
    unsigned cq = u->cq_entries ? (unsigned)u->cq_entries : (unsigned)u->entries * 4;
    if (cq < (unsigned)w->max_conns)
        cq = (unsigned)w->max_conns;
    const unsigned base = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL;
    unsigned candidates[4];
    int n = 0;
    if (u->sqpoll) {
        candidates[n++] =
            base | IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF | IORING_SETUP_SINGLE_ISSUER;
        candidates[n++] = base | IORING_SETUP_SQPOLL | IORING_SETUP_SQ_AFF;
    }
    candidates[n++] = base | IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN;
    candidates[n++] = base | IORING_SETUP_COOP_TASKRUN;
    int rc = -EINVAL;
    for (int i = 0; i < n; i++) {
        struct io_uring_params p;
        memset(&p, 0, sizeof(p));
        p.flags = candidates[i];
        p.cq_entries = cq;
        if (p.flags & IORING_SETUP_SQPOLL) {
            p.sq_thread_cpu =
                u->sqpoll_cpu >= 0 ? (unsigned)u->sqpoll_cpu : (unsigned)(w->cpu < 0 ? 0 : w->cpu);
            p.sq_thread_idle = 1000;
        }
        rc = io_uring_queue_init_params((unsigned)u->entries, &w->ring, &p);
        if (rc == 0) {
            w->ring_flags = p.flags;
            if (!(p.features & IORING_FEAT_EXT_ARG))
                zg_log_warn("kernel lacks IORING_FEAT_EXT_ARG: waits cost an extra SQE");
            return 0;
        }
        if (rc != -EINVAL)
            break;
    }
    return rc;
}

static void probe_features(zg_worker *w)
{
    struct io_uring_probe *probe = io_uring_get_probe_ring(&w->ring);
    if (probe) {
        w->zc_ok = io_uring_opcode_supported(probe, IORING_OP_SENDMSG_ZC);
        w->fd_install_ok = io_uring_opcode_supported(probe, ZG_OP_FIXED_FD_INSTALL);
        io_uring_free_probe(probe);
    }
}

static void arm_signal(zg_worker *w)
{
    struct io_uring_sqe *sqe = zg_sqe(w);
    io_uring_prep_read(sqe, w->signal_fd, &w->siginfo, sizeof(w->siginfo), 0);
    io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_SIGNAL, 0, 0));
}

/* Fixed-file slots count against RLIMIT_NOFILE: raise the soft limit toward
 * worker_connections, and serve fewer connections if the hard limit says so. */
static uint32_t fit_connections(int64_t want)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0)
        return (uint32_t)want;
    rlim_t need = (rlim_t)want + 64;
    if (rl.rlim_cur < need && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = need < rl.rlim_max ? need : rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
        getrlimit(RLIMIT_NOFILE, &rl);
    }
    if (rl.rlim_cur >= need)
        return (uint32_t)want;
    uint32_t fit = rl.rlim_cur > 128 ? (uint32_t)(rl.rlim_cur - 64) : (uint32_t)rl.rlim_cur / 2;
    zg_log_warn("worker_connections %lld exceed the open file limit %llu: serving at most %u",
                (long long)want, (unsigned long long)rl.rlim_cur, fit);
    return fit;
}

int zg_event_init(zg_worker *w)
{
    zg_list_init(&w->flush_list);
    zg_list_init(&w->starved_list);
    zg_list_init(&w->reap_list);
    w->max_conns = fit_connections(w->cfg->worker_connections);
    int rc = setup_ring(w);
    if (rc < 0) {
        zg_log_error("io_uring_queue_init: %s", strerror(-rc));
        return rc;
    }
    rc = io_uring_register_ring_fd(&w->ring);
    if (rc < 0 && rc != -EINVAL)
        zg_log_warn("io_uring_register_ring_fd: %s", strerror(-rc));
    rc = io_uring_register_files_sparse(&w->ring, w->max_conns);
    if (rc < 0) {
        zg_log_error("io_uring_register_files_sparse(%u): %s", w->max_conns, strerror(-rc));
        return rc;
    }
    probe_features(w);
    if (zg_sendv_init(w) < 0) {
        zg_log_error("send headers: %s", strerror(ENOMEM));
        return -ENOMEM;
    }
    w->batch_wait_ok = 1; /* until the kernel says EINVAL */
    const char *inc = w->cfg->uring.incremental;
    int want_inc = strcmp(inc, "auto") == 0 ? -1
                                            : (strcmp(inc, "true") == 0 || strcmp(inc, "on") == 0 ||
                                               strcmp(inc, "yes") == 0);
    rc = zg_bufs_init(&w->bufs, &w->ring, (uint32_t)w->cfg->uring.buffers,
                      (uint32_t)w->cfg->uring.buffer_size, want_inc);
    if (rc < 0) {
        zg_log_error("provided buffer ring (%llu x %llu): %s",
                     (unsigned long long)w->cfg->uring.buffers,
                     (unsigned long long)w->cfg->uring.buffer_size, strerror(-rc));
        return rc;
    }
    zg_pool_init(&w->bufs.seg_pool, sizeof(zg_seg), 0);
    zg_pool_init(&w->conns, sizeof(zg_conn) + w->cfg->max_conn_ctx, w->max_conns);
    zg_pool_init(&w->file_ops, sizeof(zg_file_op), 0);
    w->now_ms = zg_monotonic_ms();
    w->unix_time = time(NULL);
    w->busy.epoch = 1; /* a new connection's 0 is no window's */
    w->busy.since_ms = w->now_ms;
    zg_timers_init(&w->timers, w->now_ms);

    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGQUIT);
    sigaddset(&set, SIGUSR1);
    sigaddset(&set, SIGHUP);
    w->signal_fd = signalfd(-1, &set, SFD_CLOEXEC);
    if (w->signal_fd < 0) {
        zg_log_error("signalfd: %s", strerror(errno));
        return -errno;
    }
    arm_signal(w);
    zg_log_info(
        "ring ready:%s%s%s, %llu buffers of %llu bytes%s%s, %u connections",
        w->ring_flags & IORING_SETUP_SQPOLL ? " sqpoll" : "",
        w->ring_flags & IORING_SETUP_SINGLE_ISSUER ? " single-issuer" : "",
        w->ring_flags & IORING_SETUP_DEFER_TASKRUN ? " defer-taskrun" : "",
        (unsigned long long)w->cfg->uring.buffers, (unsigned long long)w->cfg->uring.buffer_size,
        w->bufs.incremental ? ", incremental" : "", w->zc_ok ? ", send-zc" : "", w->max_conns);
    return 0;
}

void zg_event_destroy(zg_worker *w)
{
    zg_bufs_destroy(&w->bufs);
    zg_splice_destroy(w);
    zg_pool_destroy(&w->conns);
    zg_pool_destroy(&w->file_ops);
    zg_sendv_destroy(w);
    if (w->signal_fd >= 0)
        close(w->signal_fd);
    io_uring_queue_exit(&w->ring);
}

/* ---- signals and file I/O ---- */

static void signal_complete(zg_worker *w, struct io_uring_cqe *cqe)
{
    if (cqe->res == (int)sizeof(w->siginfo)) {
        switch (w->siginfo.ssi_signo) {
        case SIGQUIT:
            zg_log_notice("graceful stop: draining");
            zg_worker_drain(w);
            break;
        case SIGTERM:
        case SIGINT:
            w->exiting = 1;
            break;
        case SIGUSR1:
            zg_log_reopen();
            zg_logfile_reopen_all(w);
            for (size_t i = 0; i < w->cfg->nmodules; i++)
                if (w->cfg->modules[i]->desc->worker_reopen)
                    w->cfg->modules[i]->desc->worker_reopen(w);
            break;
        default:
            break;
        }
    } else if (cqe->res < 0 && cqe->res != -EAGAIN && cqe->res != -EINTR) {
        zg_log_error("signalfd read: %s", strerror(-cqe->res));
        return;
    }
    if (!w->exiting)
        arm_signal(w);
}

static void file_complete(zg_worker *w, struct io_uring_cqe *cqe)
{
    zg_file_op *op = zg_pool_at(&w->file_ops, ZG_UD_IDX(cqe->user_data));
    if (!op || op->gen != ZG_UD_GEN(cqe->user_data))
        return;
    zg_conn *owner = op->owner;
    zerg_io_fn cb = op->cb;
    void *arg = op->arg;
    op->gen++;
    zg_pool_put(&w->file_ops, op, op->idx);
    cb(arg, cqe->res);
    if (owner) {
        owner->inflight--;
        zg_conn_settle(owner);
    }
}

/* ---- the loop ---- */

static void dispatch(zg_worker *w, struct io_uring_cqe *cqe)
{
    switch (ZG_UD_OP(cqe->user_data)) {
    case ZG_OP_ACCEPT:
    case ZG_OP_ACCEPT_SWEEP:
        zg_accept_complete(w, cqe);
        break;
    case ZG_OP_SIGNAL:
        signal_complete(w, cqe);
        break;
    case ZG_OP_FILE:
        file_complete(w, cqe);
        break;
    case ZG_OP_ABORT_FD:
        zg_conn_abort_fd_complete(w, cqe);
        break;
    case ZG_OP_IGNORE:
        break;
    default:
        zg_conn_complete(w, cqe);
        break;
    }
}

static void update_clock(zg_worker *w)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    w->now_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
    w->unix_time = time(NULL);
    zg_busy_roll(&w->busy, w->now_ms);
}

/* Settle what waits for the end of the turn: flushes, closes, buffers. */
static void prepare_turn(zg_worker *w)
{
    /* flushing can finish a graceful close, and closing can write to other
     * connections: settle both before sleeping */
    do {
        zg_conn_flush_all(w);
        zg_conn_reap_all(w);
    } while (!zg_list_empty(&w->flush_list));
    zg_bufs_commit(&w->bufs);
    zg_conn_feed_starved(w);
}

/* Waiting for more completions than one pays only while many connections
 * are busy: with a few clients each waiting for its answer, a batch fills
 * only when they all have sent again, so each is held up by the others.
 * So a turn waits for half of the busy connections (those that received in
 * the last window or two, not the open ones: idle ones never fill a batch),
 * at most batch_size, and only from ZG_BATCH_MIN_CONNS of them on; and not
 * at all where completions come too slowly for ZG_BATCH_MIN_EVENTS to
 * arrive within batch_wait_usec, where the wait would only add its length
 * to each request. The rate is that of the busy windows, not the last
 * turn's count: a plain wait returns at the first completion, so its turns
 * are small at any load and would keep a worker in plain waits. (The
 * measurements behind this are in the commit messages of e8d29c3 and
 * 1bb6eb6.) */
unsigned zg_batch_target(const zg_uring_conf *u, uint64_t busy_conns, uint64_t window_events)
{
    uint64_t nr = busy_conns / 2;
    uint64_t expected = window_events * (uint64_t)u->batch_wait_usec / (ZG_BUSY_WINDOW_MS * 1000);
    if (!u->batch_wait_usec || busy_conns < ZG_BATCH_MIN_CONNS || expected < ZG_BATCH_MIN_EVENTS)
        return 0;
    if (nr > (uint64_t)u->batch_size)
        nr = (uint64_t)u->batch_size;
    return nr > 1 ? (unsigned)nr : 0;
}

static int submit_and_wait(zg_worker *w, int64_t wait_ms)
{
    struct __kernel_timespec ts = {.tv_sec = wait_ms / 1000, .tv_nsec = (wait_ms % 1000) * 1000000};
    unsigned nr = w->batch_wait_ok ? zg_batch_target(&w->cfg->uring, zg_busy_conns(&w->busy),
                                                     zg_busy_events(&w->busy))
                                   : 0;
    if (nr) {
        int rc = zg_uring_submit_and_wait_min(&w->ring, nr, wait_ms >= 0 ? &ts : NULL,
                                              (unsigned)w->cfg->uring.batch_wait_usec);
        if (rc != -EINVAL)
            return rc;
        zg_log_warn("uring.batch_wait_usec needs kernel 6.12: waiting for one completion");
        w->batch_wait_ok = 0;
    }
    struct io_uring_cqe *first;
    return io_uring_submit_and_wait_timeout(&w->ring, &first, 1, wait_ms >= 0 ? &ts : NULL, NULL);
}

/* One turn: submit and wait in one io_uring_enter (at most wait_ms, -1 for
 * no limit), then drain the completions in batches. Returns -1 when the
 * ring is broken. */
static int run_turn(zg_worker *w, int64_t wait_ms)
{
    struct io_uring_cqe *cqes[256];
    int rc = submit_and_wait(w, wait_ms);
    w->stats.loop_turns++;
    if (rc < 0 && rc != -ETIME && rc != -EINTR && rc != -EAGAIN && rc != -EBUSY) {
        zg_log_error("io_uring_submit_and_wait: %s", strerror(-rc));
        return -1;
    }
    zg_sendv_submitted(w);
    update_clock(w);
    unsigned n;
    while ((n = io_uring_peek_batch_cqe(&w->ring, cqes, ZG_ARRAY_SIZE(cqes))) > 0) {
        for (unsigned i = 0; i < n; i++)
            dispatch(w, cqes[i]);
        io_uring_cq_advance(&w->ring, n);
        w->busy.events_now += n;
        if (n < ZG_ARRAY_SIZE(cqes))
            break;
    }
    w->stats.cq_overflows = zg_uring_cq_overflows(&w->ring);
    zg_conn_reap_all(w);
    zg_timers_run(&w->timers, w->now_ms);
    zg_conn_reap_all(w);
    zg_metrics_publish(&w->stats); /* for the status page of any worker */
    return 0;
}

void zg_event_loop(zg_worker *w)
{
    zg_accept_start(w);
    zg_memory_start(w);
    while (!w->exiting) {
        prepare_turn(w);
        if (w->draining && !zg_accept_pending(w))
            zg_worker_accepts_over(w); /* the master's reload is done */
        if (w->draining && w->stats.conns_active == 0 && !zg_accept_pending(w))
            break; /* drained: and no accept can still hand us a connection */
        if (run_turn(w, zg_timers_next(&w->timers, w->now_ms)) < 0)
            break;
    }
}

/* Connections still open, or file operations in flight: a log file's
 * buffer is the kernel's until its write completes. */
static int completions_owed(const zg_worker *w)
{
    return w->stats.conns_active > 0 || w->file_ops.in_use > 0;
}

void zg_event_close_all(zg_worker *w, uint64_t within_ms)
{
    zg_conn_close_all(w);
    uint64_t deadline = zg_monotonic_ms() + within_ms;
    while (completions_owed(w) && zg_monotonic_ms() < deadline) {
        prepare_turn(w);
        if (!completions_owed(w) || run_turn(w, 10) < 0)
            break;
    }
}
