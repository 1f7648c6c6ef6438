/* zg_timer.h - the per-worker timer wheel behind api->timer_set, connection
 * timeouts and accept back-off: O(1) arm and cancel, driven by the ring's
 * wait timeout. */
#ifndef ZG_TIMER_H
#define ZG_TIMER_H

#include "zg_util.h"
#include <zerg/module.h>

#define ZG_TIMER_TICK_MS 4
#define ZG_TIMER_SLOTS   4096 /* one revolution: 16 s; later timers wait rounds */

typedef struct zg_timers {
    zg_list slots[ZG_TIMER_SLOTS];
    uint64_t tick;          /* last tick processed */
    uint64_t next_deadline; /* a lower bound of the earliest deadline */
    size_t count;
} zg_timers;

void zg_timers_init(zg_timers *tw, uint64_t now_ms);
void zg_timer_set(zg_timers *tw, zerg_timer *t, uint64_t now_ms, uint64_t ms);
void zg_timer_cancel(zg_timers *tw, zerg_timer *t);
int zg_timer_armed(const zerg_timer *t);
/* Fire every timer due at now_ms. Returns how many fired. */
int zg_timers_run(zg_timers *tw, uint64_t now_ms);
/* Milliseconds until the next timer may be due, or -1 when none is armed. */
int64_t zg_timers_next(zg_timers *tw, uint64_t now_ms);

#endif
