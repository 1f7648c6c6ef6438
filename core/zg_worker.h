/* zg_worker.h - a worker process (struct zerg_worker of the ABI): its ring,
 * pools, timers, listeners and connections, and its entry point. The
 * connection is in zg_conn.h, the ring and loop in zg_event.h, the
 * listeners in zg_accept.h. */
#ifndef ZG_WORKER_H
#define ZG_WORKER_H

#include <liburing.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <zerg/module.h>

#include "zg_accept.h"
#include "zg_bufring.h"
#include "zg_conf.h"
#include "zg_conn.h"
#include "zg_event.h"
#include "zg_memory.h"
#include "zg_metrics.h"
#include "zg_pool.h"
#include "zg_sendv.h"
#include "zg_splice.h"
#include "zg_timer.h"
#include "zg_util.h"

struct zerg_worker {
    struct io_uring ring;
    zg_config *cfg;
    unsigned id, count;
    int cpu;
    pid_t pid;                 /* this worker's, for shared-memory locks */
    uint64_t limit_logged_ms;  /* when max_connections_per_client last logged */
    uint64_t accept_logged_ms; /* when an accept failure last logged */
    uint64_t accept_unlogged;  /* failures since, not logged */
    zg_bufs bufs;
    zg_pool conns;
    zg_pool file_ops;
    zg_sendv_slots sendv; /* send headers until the kernel takes them */
    zg_timers timers;
    zerg_stats stats;
    uint64_t now_ms;
    int64_t unix_time;
    zg_list flush_list, starved_list, reap_list;
    zerg_logfile *logfiles; /* opened by modules (zg_logfile.c) */
    zg_listener *listeners;
    size_t nlisteners;
    int signal_fd;
    int master_fd; /* pipe to the master: 'R' once ready, 'D' once no accept is left */
    struct signalfd_siginfo siginfo;
    int draining, exiting;
    zerg_timer shutdown_timer;
    zerg_timer release_timer;   /* zg_memory.c */
    uint64_t closed_at_release; /* conns_closed at its last tick */
    int zc_ok;                  /* SEND_ZC supported */
    int fd_install_ok;          /* IORING_OP_FIXED_FD_INSTALL (6.8): reset fixed sockets */
    int batch_wait_ok;          /* min_wait_usec of IORING_ENTER_EXT_ARG (6.12) */
    zg_busy busy;
    uint32_t max_conns;
    uint32_t ring_flags;
    zerg_text metrics_text;   /* api->metrics' last answer */
    struct zg_hooked *hooked; /* api->connect_with's hook sets (zg_connect.c) */
    zg_splice splice;         /* pipes for file segments (zg_splice.c) */
};

/* Stop accepting and let the connections finish (reload, graceful stop). */
void zg_worker_drain(zg_worker *w);
/* Draining and no accept left: tell the master (once), whose reload waits
 * for it. */
void zg_worker_accepts_over(zg_worker *w);

/* zg_worker.c */
int zg_worker_main(zg_config *cfg, unsigned id, int cpu, int *listen_fds, int ready_fd);

#endif
