/* zg_memory.c - releasing what a quiet period left unused (see zg_memory.h). */
#define _GNU_SOURCE
#include "zg_memory.h"
#include "zg_log.h"
#include "zg_worker.h"

#include <malloc.h>

static void release_tick(zerg_timer *t)
{
    zg_worker *w = t->data;
    size_t freed = zg_pool_trim(&w->conns) + zg_pool_trim(&w->file_ops) +
                   zg_pool_trim(&w->bufs.chunk_pool) + zg_pool_trim(&w->bufs.seg_pool) +
                   zg_bufs_trim(&w->bufs);
    /* connections closed since the last tick left the modules' memory on
     * the heap's free lists: hand its free pages back too */
    if (freed || w->stats.conns_closed != w->closed_at_release)
        malloc_trim(0);
    if (freed)
        zg_log_debug("released %zu bytes of unused pools", freed);
    w->closed_at_release = w->stats.conns_closed;
    zg_timer_set(&w->timers, t, w->now_ms, w->cfg->worker_memory_release);
}

void zg_memory_start(zg_worker *w)
{
    if (!w->cfg->worker_memory_release)
        return;
    w->release_timer.fn = release_tick;
    w->release_timer.data = w;
    zg_timer_set(&w->timers, &w->release_timer, w->now_ms, w->cfg->worker_memory_release);
}
