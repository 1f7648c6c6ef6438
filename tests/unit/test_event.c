/* tests/unit/test_event.c - Criterion tests of the event loop's waiting
 * policy: how many completions a turn waits for (zg_batch_target), and the
 * busy connections and completions it is sized and decided by (zg_busy_*). */
#include <criterion/criterion.h>

#include "zg_event.h"

#include <string.h>

/* Completions per busy window at 50 us waits: 2000 in 10 ms is 10 in 50 us */
#define HEAVY 2000

static zg_uring_conf conf(int64_t wait_usec, int64_t size)
{
    zg_uring_conf u = {0};
    u.batch_wait_usec = wait_usec;
    u.batch_size = size;
    return u;
}

Test(batch, few_connections_wait_for_one)
{
    zg_uring_conf u = conf(50, 32);
    for (uint64_t n = 0; n < ZG_BATCH_MIN_CONNS; n++)
        cr_assert_eq(zg_batch_target(&u, n, 100000), 0, "%llu connections: a plain wait",
                     (unsigned long long)n);
}

Test(batch, half_of_the_connections)
{
    zg_uring_conf u = conf(50, 100);
    cr_assert_eq(zg_batch_target(&u, 64, HEAVY), 32);
    cr_assert_eq(zg_batch_target(&u, 101, HEAVY), 50);
    cr_assert_eq(zg_batch_target(&u, 199, HEAVY), 99);
}

Test(batch, at_most_batch_size)
{
    zg_uring_conf u = conf(50, 32);
    cr_assert_eq(zg_batch_target(&u, 64, HEAVY), 32);
    cr_assert_eq(zg_batch_target(&u, 100000, HEAVY), 32);
    u = conf(50, 8);
    cr_assert_eq(zg_batch_target(&u, 100, HEAVY), 8);
}

Test(batch, light_load_waits_for_one)
{
    zg_uring_conf u = conf(50, 32);
    const uint64_t t = 1600; /* in 10 ms: 8, ZG_BATCH_MIN_EVENTS, in 50 us */
    for (uint64_t e = 0; e < t; e += 7)
        cr_assert_eq(zg_batch_target(&u, 1000, e), 0,
                     "%llu completions a window: fewer than %d in 50 us, a plain wait",
                     (unsigned long long)e, ZG_BATCH_MIN_EVENTS);
    cr_assert_eq(zg_batch_target(&u, 1000, t - 1), 0);
    cr_assert_eq(zg_batch_target(&u, 1000, t), 32);
}

Test(batch, the_same_rate_fills_a_longer_wait)
{
    /* 100 completions a window: 1 in 100 us, 8 in 800 us */
    zg_uring_conf u = conf(100, 64);
    cr_assert_eq(zg_batch_target(&u, 200, 100), 0);
    u = conf(800, 64);
    cr_assert_eq(zg_batch_target(&u, 200, 100), 64);
    u = conf(100000, 64);
    cr_assert_eq(zg_batch_target(&u, 200, 1), 64, "the longest wait: 1 a window is 10 in it");
}

Test(batch, off)
{
    zg_uring_conf u = conf(0, 32);
    cr_assert_eq(zg_batch_target(&u, 1000, HEAVY), 0, "batch_wait_usec 0 turns it off");
    u = conf(50, 1);
    cr_assert_eq(zg_batch_target(&u, 1000, HEAVY), 0, "batch_size 1 is a plain wait");
}

static zg_busy b;
static uint32_t conns[3]; /* the window each connection last received in */

static void busy_setup(void)
{
    memset(&b, 0, sizeof(b));
    memset(conns, 0, sizeof(conns));
    b.since_ms = 1000;
    b.epoch = 1;
}

static void at(uint64_t ms)
{
    zg_busy_roll(&b, 1000 + ms);
}

Test(busy, a_connection_counts_once_per_window, .init = busy_setup)
{
    zg_busy_note(&b, &conns[0]);
    zg_busy_note(&b, &conns[0]);
    zg_busy_note(&b, &conns[1]);
    cr_assert_eq(zg_busy_conns(&b), 2);
    at(ZG_BUSY_WINDOW_MS - 1);
    zg_busy_note(&b, &conns[1]);
    cr_assert_eq(zg_busy_conns(&b), 2, "still the same window");
}

Test(busy, the_last_window_counts_until_the_next_ends, .init = busy_setup)
{
    for (int i = 0; i < 3; i++)
        zg_busy_note(&b, &conns[i]);
    at(ZG_BUSY_WINDOW_MS);
    cr_assert_eq(b.now, 0);
    cr_assert_eq(zg_busy_conns(&b), 3, "a new window starts from the last one's count");
    zg_busy_note(&b, &conns[0]);
    cr_assert_eq(b.now, 1, "counted again in the new window");
    cr_assert_eq(zg_busy_conns(&b), 3);
    at(2 * ZG_BUSY_WINDOW_MS);
    cr_assert_eq(zg_busy_conns(&b), 1, "the window before held only one");
}

Test(busy, an_idle_stretch_forgets, .init = busy_setup)
{
    for (int i = 0; i < 3; i++)
        zg_busy_note(&b, &conns[i]);
    at(5 * ZG_BUSY_WINDOW_MS);
    cr_assert_eq(zg_busy_conns(&b), 0, "a window that ended long ago says nothing of now");
}

Test(busy, completions_by_window, .init = busy_setup)
{
    b.events_now += 40;
    cr_assert_eq(zg_busy_events(&b), 40);
    at(ZG_BUSY_WINDOW_MS);
    cr_assert_eq(zg_busy_events(&b), 40, "the last window's count until this one passes it");
    b.events_now += 50;
    cr_assert_eq(zg_busy_events(&b), 50);
    at(2 * ZG_BUSY_WINDOW_MS);
    b.events_now += 1;
    cr_assert_eq(zg_busy_events(&b), 50);
    at(6 * ZG_BUSY_WINDOW_MS);
    cr_assert_eq(zg_busy_events(&b), 0, "an idle stretch forgets the rate");
}
