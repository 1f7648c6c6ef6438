/* zg_worker.h - a worker process: its ring, pools, timers, listeners and
 * connections (struct zerg_worker and struct zerg_conn of the ABI). */
#ifndef ZG_WORKER_H
#define ZG_WORKER_H

#include <liburing.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <zerg/module.h>

#include "zg_bufring.h"
#include "zg_conf.h"
#include "zg_metrics.h"
#include "zg_outq.h"
#include "zg_pool.h"
#include "zg_timer.h"
#include "zg_util.h"

/* What a completion is for: the low byte of user_data. */
enum zg_op {
    ZG_OP_IGNORE = 0, /* cancel and close results */
    ZG_OP_ACCEPT,
    ZG_OP_ACCEPT_SWEEP, /* a draining worker takes what its accept left queued */
    ZG_OP_RECV,
    ZG_OP_SEND,
    ZG_OP_CONNECT,
    ZG_OP_LINK_TIMEOUT,
    ZG_OP_SHUTDOWN,
    ZG_OP_FILE,
    ZG_OP_SIGNAL,
    ZG_OP_ABORT_FD, /* a fixed file installed as an fd to reset it */
};

/* user_data: index (32 bits) | generation (24 bits) | op (8 bits). A
 * completion whose generation no longer matches its object is dropped. */
#define ZG_UD(op, idx, gen) (((uint64_t)(idx) << 32) | (((uint64_t)(gen)&0xffffff) << 8) | (op))
#define ZG_UD_OP(ud)        ((unsigned)((ud)&0xff))
#define ZG_UD_GEN(ud)       ((uint32_t)(((ud) >> 8) & 0xffffff))
#define ZG_UD_IDX(ud)       ((uint32_t)((ud) >> 32))

#define ZG_IOV_MAX             64
#define ZG_OP_FIXED_FD_INSTALL 54        /* IORING_OP_FIXED_FD_INSTALL, newer than liburing 2.3 */
#define ZG_ACCEPT_DONTWAIT     (1u << 1) /* IORING_ACCEPT_DONTWAIT (6.10), likewise */

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
    ZG_C_ABORT = 1u << 16,   /* reset the peer on close */
    ZG_C_STARVED = 1u << 17, /* waiting for receive buffers */
    ZG_C_QUEUED = 1u << 18,  /* in the flush list */
    ZG_C_REAP = 1u << 19,    /* in the reap list */
    ZG_C_ZOMBIE = 1u << 20,  /* closed; kept only for a SEND_ZC notification */
    ZG_C_PP_WAIT = 1u << 21, /* reading the PROXY protocol header: not open yet */
    ZG_C_COUNTED = 1u << 22, /* in its server's max_connections_per_client table */
};

typedef struct zg_listener {
    zg_server *srv;
    int fd;
    uint32_t index, gen;
    int armed;
    int sweeping;      /* a drain's non-blocking accept is in flight */
    int direct;        /* accept into fixed files */
    int no_zc;         /* a loopback address: SEND_ZC would only add work */
    size_t addr_index; /* which of srv->addrs */
    void **vhosts;     /* module confs of the blocks sharing the address, */
    size_t nvhosts;    /* the default (srv's) first */
    zerg_timer retry;
    struct zerg_worker *w;
} zg_listener;

struct zerg_conn {
    zg_list link;      /* flush or reap list */
    zg_list wait_link; /* starved list */
    struct zerg_worker *w;
    uint32_t idx, gen;
    uint32_t flags;
    uint32_t inflight; /* operations whose completion is still owed */
    int fd;
    int fixed;
    int no_zc;
    int close_err;
    int shut_how;
    const zerg_module *mod;
    void *conf;
    zg_server *srv;
    zg_outq out;
    zg_outq in_held; /* bytes received while paused */
    zg_seg *zc_retired;
    size_t out_high, out_low, in_limit;
    zg_chunk *carry; /* unconsumed input, presented again */
    zg_chunk *cur;   /* the chunk behind the current on_data range */
    zerg_timer timer;
    struct msghdr msg;
    struct iovec iov[ZG_IOV_MAX];
    struct __kernel_timespec connect_ts;
    struct sockaddr_storage peer;
    socklen_t peer_len;
    struct sockaddr_storage local; /* filled by the first api->conn_local */
    socklen_t local_len;
    const zg_listener *listener; /* accepted connections: where they came in */
    uint32_t busy_epoch;         /* the busy window it last received in */
    _Alignas(16) unsigned char ctx[];
};

typedef struct zg_file_op {
    uint32_t idx, gen;
    zerg_io_fn cb;
    void *arg;
    struct zerg_conn *owner;
} zg_file_op;

/* How many connections received in the current and in the last window of
 * ZG_BUSY_WINDOW_MS: the busy ones, by which a turn's batched wait is sized
 * (zg_event.c), and how many completions came in each, by which it is
 * decided. A connection counts once per window. */
#define ZG_BUSY_WINDOW_MS 10
typedef struct zg_busy {
    uint32_t epoch;       /* the current window's number */
    uint32_t now;         /* connections that received in it so far */
    uint32_t last;        /* in the window before it (0 when that was idle) */
    uint32_t events_now;  /* completions handled in it so far */
    uint32_t events_last; /* in the window before it (0 when that was idle) */
    uint64_t since_ms;
} zg_busy;

struct zerg_worker {
    struct io_uring ring;
    zg_config *cfg;
    unsigned id, count;
    int cpu;
    pid_t pid;                /* this worker's, for shared-memory locks */
    uint64_t limit_logged_ms; /* when max_connections_per_client last logged */
    zg_bufs bufs;
    zg_pool conns;
    zg_pool file_ops;
    zg_timers timers;
    zerg_stats stats;
    uint64_t now_ms;
    int64_t unix_time;
    zg_list flush_list, starved_list, reap_list;
    zerg_logfile *logfiles; /* opened by modules (zg_logfile.c) */
    zg_listener *listeners;
    size_t nlisteners;
    int signal_fd;
    struct signalfd_siginfo siginfo;
    int draining, exiting;
    zerg_timer shutdown_timer;
    int zc_ok;         /* SEND_ZC supported */
    int fd_install_ok; /* IORING_OP_FIXED_FD_INSTALL (6.8): reset fixed sockets */
    int batch_wait_ok; /* min_wait_usec of IORING_ENTER_EXT_ARG (6.12) */
    zg_busy busy;
    uint32_t max_conns;
    uint32_t ring_flags;
    zerg_text metrics_text; /* api->metrics' last answer */
};

typedef struct zerg_worker zg_worker;
typedef struct zerg_conn zg_conn;

/* zg_event.c: the ring and the loop */
int zg_event_init(zg_worker *w);
void zg_event_destroy(zg_worker *w);
void zg_event_loop(zg_worker *w);
/* Close every connection and run the ring until their last completions
 * and those of file operations came (or within_ms passed), so each module
 * sees its on_close and log file writes are done. */
void zg_event_close_all(zg_worker *w, uint64_t within_ms);
/* The completions a loop turn waits for with uring.batch_wait_usec, or 0 for
 * a plain wait for one: half of the busy connections, at most batch_size;
 * none below ZG_BATCH_MIN_CONNS busy connections, nor where the completions
 * of a busy window (window_events in ZG_BUSY_WINDOW_MS) come slower than
 * ZG_BATCH_MIN_EVENTS per batch_wait_usec (light load). */
#define ZG_BATCH_MIN_CONNS  64
#define ZG_BATCH_MIN_EVENTS 8
unsigned zg_batch_target(const zg_uring_conf *u, uint64_t busy_conns, uint64_t window_events);
/* A connection received: count it busy in this window. */
static inline void zg_busy_note(zg_worker *w, zg_conn *c)
{
    if (c->busy_epoch != w->busy.epoch) {
        c->busy_epoch = w->busy.epoch;
        w->busy.now++;
    }
}
/* Start a new window once the current one is over (by w->now_ms); one that
 * ended long ago says nothing of now. */
static inline void zg_busy_roll(zg_worker *w)
{
    uint64_t age = w->now_ms - w->busy.since_ms;
    if (age < ZG_BUSY_WINDOW_MS)
        return;
    int recent = age < 2 * ZG_BUSY_WINDOW_MS; /* else the window before was idle */
    w->busy.last = recent ? w->busy.now : 0;
    w->busy.events_last = recent ? w->busy.events_now : 0;
    w->busy.now = 0;
    w->busy.events_now = 0;
    w->busy.epoch++;
    w->busy.since_ms = w->now_ms;
}
/* A count by the current and the last window: the larger, as the current
 * one has not run its course yet. */
static inline uint32_t zg_busy_max(uint32_t now, uint32_t last)
{
    return now > last ? now : last;
}
/* Busy connections, and completions per window. */
static inline uint32_t zg_busy_conns(const zg_worker *w)
{
    return zg_busy_max(w->busy.now, w->busy.last);
}
static inline uint32_t zg_busy_events(const zg_worker *w)
{
    return zg_busy_max(w->busy.events_now, w->busy.events_last);
}
struct io_uring_sqe *zg_sqe(zg_worker *w);
void zg_arm_accept(zg_worker *w, zg_listener *l);
void zg_worker_drain(zg_worker *w);

/* zg_conn.c: connection life */
zg_conn *zg_conn_new(zg_worker *w, const zerg_module *m, void *conf, int fd, int fixed);
void zg_conn_accepted(zg_worker *w, zg_listener *l, int fd);
void zg_conn_complete(zg_worker *w, struct io_uring_cqe *cqe);
void zg_conn_abort_fd_complete(zg_worker *w, struct io_uring_cqe *cqe);
void zg_conn_update_read(zg_conn *c);
void zg_conn_queue_flush(zg_conn *c);
void zg_conn_flush_all(zg_worker *w);
void zg_conn_feed_starved(zg_worker *w);
void zg_conn_reap_all(zg_worker *w);
void zg_conn_teardown(zg_conn *c, int err);
/* Queue c for its final close once nothing is in flight. */
void zg_conn_settle(zg_conn *c);
void zg_conn_after_write(zg_conn *c);
void zg_conn_deliver_held(zg_conn *c);
void zg_conn_close_all(zg_worker *w);
/* Log every open connection's state (debug level). */
void zg_conn_dump(zg_worker *w);
zg_conn *zg_conn_connect(zg_worker *w, const zerg_module *m, void *conf, const struct sockaddr *sa,
                         socklen_t len, uint64_t timeout_ms);

/* zg_worker.c */
int zg_worker_main(zg_config *cfg, unsigned id, int cpu, int *listen_fds, int ready_fd);
extern zg_worker *zg_current_worker;

#endif
