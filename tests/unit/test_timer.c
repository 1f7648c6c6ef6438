/* tests/unit/test_timer.c - Criterion tests of the timer wheel: firing order
 * and time, cancel, re-arming from callbacks, timers past one revolution
 * (16 s), late runs, zg_timers_next and many timers at once. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "zg_timer.h"

typedef struct rec {
    zerg_timer t;
    int id;
    uint64_t deadline;
    int fired;
    uint64_t fired_at;
    int rearm;        /* re-arm this many more times from the callback */
    uint64_t period;  /* ... after this many ms */
    struct rec *kill; /* cancel this one from the callback */
} rec;

static zg_timers tw;
static uint64_t now;
static int order[64];
static int norder;

static void on_fire(zerg_timer *t)
{
    rec *r = t->data;
    cr_assert(!zg_timer_armed(t), "disarmed before its callback");
    cr_assert_geq(now, r->deadline, "timer %d fired early at %llu (deadline %llu)", r->id,
                  (unsigned long long)now, (unsigned long long)r->deadline);
    r->fired++;
    r->fired_at = now;
    if (norder < 64)
        order[norder++] = r->id;
    if (r->kill)
        zg_timer_cancel(&tw, &r->kill->t);
    if (r->rearm > 0) {
        r->rearm--;
        r->deadline = now + r->period;
        zg_timer_set(&tw, t, now, r->period);
    }
}

static void arm(rec *r, int id, uint64_t ms)
{
    if (!r->t.fn) {
        memset(r, 0, sizeof(*r));
        r->t.fn = on_fire;
        r->t.data = r;
        r->id = id;
    }
    r->deadline = now + ms;
    zg_timer_set(&tw, &r->t, now, ms);
}

/* Advance the clock 1 ms at a time up to until, running the wheel each step. */
static int run_until(uint64_t until)
{
    int fired = 0;
    while (now < until) {
        now++;
        fired += zg_timers_run(&tw, now);
    }
    return fired;
}

static void setup(void)
{
    now = 0;
    norder = 0;
    zg_timers_init(&tw, now);
}

TestSuite(timer, .init = setup);

Test(timer, empty_wheel)
{
    cr_assert_eq(zg_timers_next(&tw, 0), -1);
    cr_assert_eq(zg_timers_run(&tw, 100000), 0);
    cr_assert_eq(tw.count, 0);
}

Test(timer, fire_order_and_time)
{
    static rec a, b, c, d;
    arm(&a, 1, 100);
    arm(&b, 2, 20);
    arm(&c, 3, 60);
    arm(&d, 4, 20); /* same deadline as b, armed later */
    cr_assert_eq(tw.count, 4);
    cr_assert(zg_timer_armed(&a.t));
    cr_assert_eq(run_until(19), 0);
    cr_assert_eq(run_until(20), 2);
    cr_assert_eq(run_until(200), 2);
    cr_assert_eq(norder, 4);
    cr_assert_eq(order[0], 2);
    cr_assert_eq(order[1], 4);
    cr_assert_eq(order[2], 3);
    cr_assert_eq(order[3], 1);
    cr_assert_eq(b.fired_at, 20);
    cr_assert_eq(c.fired_at, 60);
    cr_assert_eq(a.fired_at, 100);
    cr_assert_eq(a.fired + b.fired + c.fired + d.fired, 4, "each exactly once");
    cr_assert(!zg_timer_armed(&a.t));
    cr_assert_eq(tw.count, 0);
    cr_assert_eq(zg_timers_next(&tw, now), -1);
}

Test(timer, zero_delay_fires_on_next_run)
{
    static rec a;
    now = 40;
    zg_timers_init(&tw, now);
    arm(&a, 1, 0);
    cr_assert_eq(zg_timers_next(&tw, now), 0);
    cr_assert_eq(zg_timers_run(&tw, now), 1);
    cr_assert_eq(a.fired, 1);
}

Test(timer, fires_at_its_deadline)
{
    /* deadlines that are not multiples of the 4 ms tick: a timer is due at
     * now == deadline, and zg_timers_next() says 0 only when run would fire */
    static rec r[7];
    for (int i = 0; i < 7; i++)
        arm(&r[i], i, (uint64_t)(i * 3 + 1)); /* 1, 4, 7, 10, 13, 16, 19 */
    while (now < 30) {
        now++;
        int64_t next = zg_timers_next(&tw, now);
        int fired = zg_timers_run(&tw, now);
        cr_assert(next != 0 || fired > 0,
                  "zg_timers_next said a timer is due at %llu but none fired (busy loop)",
                  (unsigned long long)now);
    }
    for (int i = 0; i < 7; i++) {
        cr_assert_eq(r[i].fired, 1);
        cr_assert_eq(r[i].fired_at, r[i].deadline, "timer %d due at %llu fired at %llu", i,
                     (unsigned long long)r[i].deadline, (unsigned long long)r[i].fired_at);
    }
}

Test(timer, cancel)
{
    static rec a, b, c;
    arm(&a, 1, 40);
    arm(&b, 2, 40);
    arm(&c, 3, 80);
    zg_timer_cancel(&tw, &a.t);
    cr_assert(!zg_timer_armed(&a.t));
    cr_assert_eq(tw.count, 2);
    zg_timer_cancel(&tw, &a.t); /* twice is harmless */
    cr_assert_eq(tw.count, 2);
    cr_assert_eq(run_until(50), 1);
    cr_assert_eq(b.fired, 1);
    cr_assert_eq(a.fired, 0);
    zg_timer_cancel(&tw, &c.t);
    cr_assert_eq(tw.count, 0);
    cr_assert_eq(zg_timers_next(&tw, now), -1);
    cr_assert_eq(run_until(200), 0);
    cr_assert_eq(c.fired, 0);
    /* a cancelled timer can be armed again */
    arm(&a, 1, 8);
    cr_assert_eq(run_until(208), 1);
    cr_assert_eq(a.fired, 1);
    cr_assert_eq(a.fired_at, 208);
}

Test(timer, set_again_moves_the_timer)
{
    static rec a;
    arm(&a, 1, 40);
    arm(&a, 1, 400); /* re-arming an armed timer moves it */
    cr_assert_eq(tw.count, 1);
    cr_assert_eq(run_until(399), 0);
    cr_assert_eq(run_until(500), 1);
    cr_assert_eq(a.fired_at, 400);
    arm(&a, 1, 1000);
    arm(&a, 1, 12); /* and earlier */
    cr_assert_eq(run_until(512), 1);
    cr_assert_eq(a.fired_at, 512);
    cr_assert_eq(run_until(2000), 0);
}

Test(timer, rearm_from_callback)
{
    static rec p;
    arm(&p, 1, 8);
    p.rearm = 4;
    p.period = 8;
    cr_assert_eq(run_until(100), 5);
    cr_assert_eq(p.fired, 5);
    cr_assert_eq(p.fired_at, 40);
    cr_assert_eq(tw.count, 0);
}

Test(timer, rearm_zero_from_callback_does_not_loop)
{
    static rec p;
    now = 64;
    zg_timers_init(&tw, now);
    arm(&p, 1, 0);
    p.rearm = 1000;
    p.period = 0;
    cr_assert_eq(zg_timers_run(&tw, now), 1, "a timer re-armed for now waits for the next run");
    cr_assert(zg_timer_armed(&p.t));
    cr_assert_eq(zg_timers_next(&tw, now), 0);
    cr_assert_eq(zg_timers_run(&tw, now), 1);
    cr_assert_eq(p.fired, 2);
}

Test(timer, callback_cancels_a_due_timer)
{
    static rec a, b;
    arm(&a, 1, 20);
    arm(&b, 2, 20); /* same slot, due in the same run */
    a.kill = &b;
    cr_assert_eq(run_until(40), 1);
    cr_assert_eq(a.fired, 1);
    cr_assert_eq(b.fired, 0, "cancelled by a before its turn");
    cr_assert_eq(tw.count, 0);
}

Test(timer, beyond_one_revolution)
{
    static rec lng, lng2, shrt, same_slot;
    const uint64_t rev = (uint64_t)ZG_TIMER_SLOTS * ZG_TIMER_TICK_MS; /* 16384 ms */
    arm(&lng, 1, 20000);
    arm(&lng2, 2, 2 * rev + 3616);   /* the same slot, two rounds later */
    arm(&same_slot, 3, 20000 - rev); /* 3616: the same slot, this round */
    arm(&shrt, 4, 100);
    shrt.rearm = 1000;
    shrt.period = 100; /* keeps the wheel turning */
    cr_assert_eq(zg_timers_next(&tw, 0), 100);
    run_until(3616);
    cr_assert_eq(same_slot.fired, 1);
    cr_assert_eq(same_slot.fired_at, 3616);
    cr_assert_eq(lng.fired, 0, "a later round of the same slot must wait");
    run_until(19999);
    cr_assert_eq(lng.fired, 0, "not early");
    run_until(20000);
    cr_assert_eq(lng.fired, 1);
    cr_assert_eq(lng.fired_at, 20000);
    run_until(2 * rev + 3615);
    cr_assert_eq(lng2.fired, 0, "not early");
    run_until(2 * rev + 4000);
    cr_assert_eq(lng2.fired, 1);
    cr_assert_eq(lng2.fired_at, 2 * rev + 3616);
    cr_assert_eq(shrt.fired, (int)((2 * rev + 4000) / 100));
}

Test(timer, alone_beyond_one_revolution)
{
    static rec a;
    now = 1000;
    zg_timers_init(&tw, now);
    arm(&a, 1, 30000);
    cr_assert_eq(zg_timers_next(&tw, now), 30000);
    /* runs at the times that share its slot in earlier rounds */
    const uint64_t rev = (uint64_t)ZG_TIMER_SLOTS * ZG_TIMER_TICK_MS;
    now = 31000 - rev;
    cr_assert_eq(zg_timers_run(&tw, now), 0);
    now = 30999;
    cr_assert_eq(zg_timers_run(&tw, now), 0);
    cr_assert_eq(zg_timers_next(&tw, now), 1);
    now = 31000;
    cr_assert_eq(zg_timers_run(&tw, now), 1);
    cr_assert_eq(a.fired, 1);
}

Test(timer, late_run_catches_up)
{
    static rec a, b, c, far;
    arm(&a, 1, 10);
    arm(&b, 2, 17000);
    arm(&c, 3, 33000);
    arm(&far, 4, 60000);
    now = 50000; /* the loop slept through three revolutions */
    cr_assert_eq(zg_timers_run(&tw, now), 3);
    cr_assert_eq(a.fired + b.fired + c.fired, 3);
    cr_assert_eq(far.fired, 0);
    cr_assert_eq(tw.count, 1);
    cr_assert_eq(zg_timers_next(&tw, now), 10000);
    cr_assert_eq(zg_timers_run(&tw, 59999), 0);
    now = 60000;
    cr_assert_eq(zg_timers_run(&tw, now), 1);
    cr_assert_eq(far.fired, 1);
}

Test(timer, next_values)
{
    static rec a, b;
    cr_assert_eq(zg_timers_next(&tw, 0), -1);
    arm(&a, 1, 40);
    arm(&b, 2, 200);
    cr_assert_eq(zg_timers_next(&tw, 0), 40);
    cr_assert_eq(zg_timers_next(&tw, 30), 10);
    cr_assert_eq(zg_timers_next(&tw, 40), 0);
    cr_assert_eq(zg_timers_next(&tw, 1000), 0, "overdue");
    now = 40;
    cr_assert_eq(zg_timers_run(&tw, now), 1);
    cr_assert_eq(zg_timers_next(&tw, now), 160, "the next one after the first fired");
    /* an earlier timer lowers it */
    static rec c;
    arm(&c, 3, 20);
    cr_assert_eq(zg_timers_next(&tw, now), 20);
    zg_timer_cancel(&tw, &c.t);
    int64_t n = zg_timers_next(&tw, now);
    cr_assert(n >= 0 && n <= 160, "a lower bound after a cancel, got %lld", (long long)n);
    zg_timer_cancel(&tw, &b.t);
    cr_assert_eq(zg_timers_next(&tw, now), -1);
}

Test(timer, many_timers)
{
    enum { N = 5000, END = 70000 };
    static rec r[N];
    srand(12345);
    for (int i = 0; i < N; i++)
        arm(&r[i], i, (uint64_t)(rand() % 60000));
    cr_assert_eq(tw.count, N);
    /* cancel every third and move every fifth, a little into the run */
    now = 0;
    run_until(1000);
    int cancelled = 0;
    for (int i = 0; i < N; i++) {
        if (r[i].fired)
            continue;
        if (i % 3 == 0) {
            zg_timer_cancel(&tw, &r[i].t);
            cancelled++;
        } else if (i % 5 == 0) {
            arm(&r[i], i, (uint64_t)(rand() % 40000));
        }
    }
    int fired = 0;
    for (int i = 0; i < N; i++)
        fired += r[i].fired;
    while (now < END) {
        now++;
        int64_t next = zg_timers_next(&tw, now);
        int f = zg_timers_run(&tw, now);
        fired += f;
        if (next > 0)
            cr_assert_eq(f, 0, "fired %d at %llu, %lld ms before zg_timers_next said", f,
                         (unsigned long long)now, (long long)next);
    }
    cr_assert_eq(fired, N - cancelled);
    cr_assert_eq(tw.count, 0);
    cr_assert_eq(zg_timers_next(&tw, now), -1);
    for (int i = 0; i < N; i++) {
        cr_assert_leq(r[i].fired, 1, "timer %d fired %d times", i, r[i].fired);
        if (!r[i].fired)
            continue;
        cr_assert_geq(r[i].fired_at, r[i].deadline);
        cr_assert_lt(r[i].fired_at - r[i].deadline, ZG_TIMER_TICK_MS,
                     "timer %d due at %llu fired at %llu", i, (unsigned long long)r[i].deadline,
                     (unsigned long long)r[i].fired_at);
    }
}
