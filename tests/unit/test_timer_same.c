/* tests/unit/test_timer_same.c - Criterion tests of re-arming a timer for
 * the deadline it has (zg_timer_set leaves it where it is): it still fires
 * once, at that deadline, also after a cancel or with the clock moved. */
#include <criterion/criterion.h>

#include "zg_timer.h"

static zg_timers tw;
static uint64_t now;
static int fired;
static uint64_t fired_at;

static void on_fire(zerg_timer *t)
{
    (void)t;
    fired++;
    fired_at = now;
}

static int run_until(uint64_t until)
{
    int n = 0;
    while (now < until)
        n += zg_timers_run(&tw, ++now);
    return n;
}

static void setup(void)
{
    now = 0;
    fired = 0;
    fired_at = 0;
    zg_timers_init(&tw, now);
}

TestSuite(timer_same, .init = setup);

Test(timer_same, same_deadline_twice_fires_once)
{
    static zerg_timer t = {.fn = on_fire};
    zg_timer_set(&tw, &t, now, 40);
    zg_timer_set(&tw, &t, now, 40);
    cr_assert_eq(tw.count, 1);
    cr_assert_eq(run_until(39), 0);
    cr_assert_eq(run_until(100), 1);
    cr_assert_eq(fired_at, 40);
    cr_assert_eq(tw.count, 0);
}

Test(timer_same, same_deadline_with_the_clock_moved)
{
    static zerg_timer t = {.fn = on_fire};
    zg_timer_set(&tw, &t, now, 40);
    cr_assert_eq(run_until(25), 0);
    zg_timer_set(&tw, &t, now, 15); /* 25 + 15: the deadline it has */
    cr_assert_eq(run_until(100), 1);
    cr_assert_eq(fired_at, 40);
}

Test(timer_same, cancelled_then_set_for_its_old_deadline)
{
    static zerg_timer t = {.fn = on_fire};
    zg_timer_set(&tw, &t, now, 40);
    zg_timer_cancel(&tw, &t);
    cr_assert_eq(tw.count, 0);
    zg_timer_set(&tw, &t, now, 40); /* not armed: linked again */
    cr_assert(zg_timer_armed(&t));
    cr_assert_eq(tw.count, 1);
    cr_assert_eq(run_until(100), 1);
    cr_assert_eq(fired_at, 40);
}

Test(timer_same, zero_delay_twice_fires_once_on_next_run)
{
    static zerg_timer t = {.fn = on_fire};
    now = 10;
    zg_timers_init(&tw, now);
    zg_timer_set(&tw, &t, now, 0);
    zg_timer_set(&tw, &t, now, 0);
    cr_assert_eq(tw.count, 1);
    cr_assert_eq(run_until(11), 1);
    cr_assert_eq(fired_at, 11);
}
