/* tests/unit/conn_env.h - the worker state a connection needs besides its
 * ring (pools, lists, timers, output marks), for the unit tests and fuzz
 * targets that drive zg_conn and zg_tls without an event loop. The caller
 * sets up w->bufs' receive buffers or chunk pool itself. */
#ifndef ZG_TEST_CONN_ENV_H
#define ZG_TEST_CONN_ENV_H

#include "zg_worker.h"

static inline void conn_env_init(zg_worker *w, zg_config *cfg)
{
    zg_pool_init(&w->bufs.seg_pool, sizeof(zg_seg), 0); /* as zg_event_init */
    cfg->uring.output_high = 1 << 20;
    cfg->uring.output_low = 1 << 19;
    w->cfg = cfg;
    zg_pool_init(&w->conns, sizeof(zg_conn), 4);
    zg_list_init(&w->flush_list);
    zg_list_init(&w->starved_list);
    zg_list_init(&w->reap_list);
    zg_timers_init(&w->timers, 0);
}

#endif
