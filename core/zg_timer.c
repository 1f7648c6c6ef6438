/* zg_timer.c - a hashed timer wheel (see zg_timer.h). The public zerg_timer
 * keeps our node in its _core words: list links, deadline, armed flag. */
#include "zg_timer.h"

#include <string.h>

typedef struct timer_node {
    zg_list link;
    uint64_t deadline;
    uint64_t armed;
} timer_node;

_Static_assert(sizeof(timer_node) <= sizeof(((zerg_timer *)0)->_core), "zerg_timer too small");

static timer_node *node(zerg_timer *t)
{
    return (timer_node *)t->_core;
}

static zerg_timer *timer_of(zg_list *l)
{
    return ZG_CONTAINER_OF((uint64_t *)(void *)l, zerg_timer, _core[0]);
}

void zg_timers_init(zg_timers *tw, uint64_t now_ms)
{
    for (size_t i = 0; i < ZG_TIMER_SLOTS; i++)
        zg_list_init(&tw->slots[i]);
    tw->tick = now_ms / ZG_TIMER_TICK_MS;
    tw->next_deadline = UINT64_MAX;
    tw->count = 0;
}

int zg_timer_armed(const zerg_timer *t)
{
    return ((const timer_node *)t->_core)->armed != 0;
}

static void link_timer(zg_timers *tw, timer_node *n)
{
    uint64_t tick = n->deadline / ZG_TIMER_TICK_MS; /* not due yet: run_slot relinks it */
    if (tick < tw->tick)
        tick = tw->tick;
    zg_list_add_tail(&tw->slots[tick & (ZG_TIMER_SLOTS - 1)], &n->link);
    if (n->deadline < tw->next_deadline)
        tw->next_deadline = n->deadline;
}

void zg_timer_set(zg_timers *tw, zerg_timer *t, uint64_t now_ms, uint64_t ms)
{
    timer_node *n = node(t);
    if (n->armed && ms && n->deadline == now_ms + ms)
        return; /* the deadline it has: it stays where it is linked */
    if (n->armed)
        zg_list_del(&n->link);
    else
        tw->count++;
    n->armed = 1;
    n->deadline = now_ms + ms;
    link_timer(tw, n);
}

void zg_timer_cancel(zg_timers *tw, zerg_timer *t)
{
    timer_node *n = node(t);
    if (!n->armed)
        return;
    zg_list_del(&n->link);
    n->armed = 0;
    tw->count--;
}

/* Fire the due timers of one slot; later ones go back into the wheel. */
static int run_slot(zg_timers *tw, zg_list *slot, uint64_t now_ms)
{
    zg_list due;
    int fired = 0;
    if (zg_list_empty(slot))
        return 0;
    /* detach the slot so timers re-armed by callbacks are not seen twice */
    due = *slot;
    due.next->prev = &due;
    due.prev->next = &due;
    zg_list_init(slot);
    while (!zg_list_empty(&due)) {
        zg_list *l = due.next;
        timer_node *n = (timer_node *)l;
        zg_list_del(l);
        if (n->deadline > now_ms) {
            link_timer(tw, n);
            continue;
        }
        n->armed = 0;
        tw->count--;
        zerg_timer *t = timer_of(l);
        t->fn(t);
        fired++;
    }
    return fired;
}

int zg_timers_run(zg_timers *tw, uint64_t now_ms)
{
    if (tw->count == 0 || now_ms < tw->next_deadline) {
        if (tw->count == 0)
            tw->tick = now_ms / ZG_TIMER_TICK_MS;
        return 0;
    }
    uint64_t target = now_ms / ZG_TIMER_TICK_MS;
    uint64_t from = tw->tick;
    if (target - from >= ZG_TIMER_SLOTS)
        from = target - ZG_TIMER_SLOTS + 1;
    tw->next_deadline = UINT64_MAX;
    int fired = 0;
    for (uint64_t tick = from; tick <= target; tick++) {
        tw->tick = tick;
        fired += run_slot(tw, &tw->slots[tick & (ZG_TIMER_SLOTS - 1)], now_ms);
    }
    /* find the new earliest deadline: the first slot holding a timer of this
     * revolution bounds it */
    tw->next_deadline = UINT64_MAX;
    for (uint64_t i = 0; i < ZG_TIMER_SLOTS && tw->count; i++) {
        zg_list *slot = &tw->slots[(target + i) & (ZG_TIMER_SLOTS - 1)];
        for (zg_list *l = slot->next; l != slot; l = l->next) {
            uint64_t d = ((timer_node *)l)->deadline;
            if (d < tw->next_deadline)
                tw->next_deadline = d;
        }
        if (tw->next_deadline <= (target + i + 1) * ZG_TIMER_TICK_MS)
            break;
    }
    return fired;
}

int64_t zg_timers_next(zg_timers *tw, uint64_t now_ms)
{
    if (tw->count == 0)
        return -1;
    if (tw->next_deadline <= now_ms)
        return 0;
    return (int64_t)(tw->next_deadline - now_ms);
}
