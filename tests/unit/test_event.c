/* tests/unit/test_event.c - Criterion tests of the event loop's waiting
 * policy: how many completions a turn waits for (zg_batch_target). */
#include <criterion/criterion.h>

#include "zg_worker.h"

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
        cr_assert_eq(zg_batch_target(&u, n), 0, "%llu connections: a plain wait",
                     (unsigned long long)n);
}

Test(batch, half_of_the_connections)
{
    zg_uring_conf u = conf(50, 100);
    cr_assert_eq(zg_batch_target(&u, 64), 32);
    cr_assert_eq(zg_batch_target(&u, 101), 50);
    cr_assert_eq(zg_batch_target(&u, 199), 99);
}

Test(batch, at_most_batch_size)
{
    zg_uring_conf u = conf(50, 32);
    cr_assert_eq(zg_batch_target(&u, 64), 32);
    cr_assert_eq(zg_batch_target(&u, 100000), 32);
    u = conf(50, 8);
    cr_assert_eq(zg_batch_target(&u, 100), 8);
}

Test(batch, off)
{
    zg_uring_conf u = conf(0, 32);
    cr_assert_eq(zg_batch_target(&u, 1000), 0, "batch_wait_usec 0 turns it off");
    u = conf(50, 1);
    cr_assert_eq(zg_batch_target(&u, 1000), 0, "batch_size 1 is a plain wait");
}
