/* test_climit.c - the max_connections_per_client table: counting per
 * address family and address, the limit, and removals that shift probe
 * chains back, checked against a plain reference under random churn. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test_addr.h"
#include "zg_climit.h"

static zg_climit *table(uint32_t capacity)
{
    zg_climit *t = malloc(zg_climit_size(capacity));
    cr_assert_not_null(t);
    zg_climit_init(t, capacity);
    return t;
}

#define SA(x) ((const struct sockaddr *)&(x))

/* sa has exactly n connections counted: none more fits under a limit of n,
 * one more under n + 1 (the probe's own connection is taken back). */
static int holds(zg_climit *t, const struct sockaddr *sa, uint32_t n, pid_t me)
{
    if (n > 0 && zg_climit_enter(t, sa, n, me) != 0)
        return 0;
    if (zg_climit_enter(t, sa, n + 1, me) != 1)
        return 0;
    zg_climit_leave(t, sa, me);
    return 1;
}

Test(climit, counts_per_address_up_to_the_limit)
{
    zg_climit *t = table(100);
    pid_t me = getpid();
    struct sockaddr_storage a1 = test_addr("10.0.0.1", 1000), a2 = test_addr("10.0.0.1", 2000);
    struct sockaddr_storage b = test_addr("10.0.0.2", 1000), m = test_addr("::ffff:10.0.0.1", 0);
    struct sockaddr_storage c = test_addr("2001:db8::1", 0);
    cr_assert_eq(zg_climit_enter(t, SA(a1), 2, me), 1);
    cr_assert_eq(zg_climit_enter(t, SA(a2), 2, me), 1, "the port does not matter");
    cr_assert_eq(zg_climit_enter(t, SA(a1), 2, me), 0, "over the limit");
    cr_assert_eq(zg_climit_enter(t, SA(m), 2, me), 0, "a mapped IPv4 client is that client");
    cr_assert_eq(zg_climit_enter(t, SA(b), 2, me), 1);
    cr_assert_eq(zg_climit_enter(t, SA(c), 2, me), 1);
    cr_assert(holds(t, SA(a1), 2, me));
    zg_climit_leave(t, SA(a2), me);
    cr_assert(holds(t, SA(a1), 1, me));
    cr_assert_eq(zg_climit_enter(t, SA(a1), 2, me), 1);
    zg_climit_leave(t, SA(a1), me);
    zg_climit_leave(t, SA(a1), me);
    cr_assert(holds(t, SA(a1), 0, me));
    zg_climit_leave(t, SA(a1), me); /* not counted: nothing happens */
    cr_assert(holds(t, SA(b), 1, me));
    cr_assert(holds(t, SA(c), 1, me));
    struct sockaddr_un un = {.sun_family = AF_UNIX};
    cr_assert_eq(zg_climit_enter(t, (const struct sockaddr *)&un, 2, me), -1, "unix: not counted");
    free(t);
}

/* Random opens and closes over many addresses (long probe chains in a small
 * table), checked against a reference count after every step. */
Test(climit, random_churn_matches_a_reference)
{
    enum { CLIENTS = 300, STEPS = 200000, MAX = 3 };
    zg_climit *t = table(CLIENTS); /* 1024 slots: chains and wrap-around */
    pid_t me = getpid();
    static uint32_t ref[CLIENTS];
    struct sockaddr_storage addrs[CLIENTS];
    for (int i = 0; i < CLIENTS; i++) {
        char ip[32];
        snprintf(ip, sizeof(ip), "10.%d.%d.1", i / 200, i % 200);
        addrs[i] = test_addr(ip, 1);
    }
    srand(42);
    for (int s = 0; s < STEPS; s++) {
        int i = rand() % CLIENTS;
        if (rand() % 2) {
            int rc = zg_climit_enter(t, SA(addrs[i]), MAX, me);
            cr_assert_eq(rc, ref[i] < MAX ? 1 : 0, "step %d client %d", s, i);
            if (rc == 1)
                ref[i]++;
        } else if (ref[i]) {
            zg_climit_leave(t, SA(addrs[i]), me);
            ref[i]--;
        }
        int j = rand() % CLIENTS;
        cr_assert(holds(t, SA(addrs[j]), ref[j], me), "step %d client %d", s, j);
    }
    for (int i = 0; i < CLIENTS; i++)
        cr_assert(holds(t, SA(addrs[i]), ref[i], me));
    free(t);
}

/* A lock left by a process that died is taken over, not waited on forever. */
Test(climit, lock_of_a_dead_holder_is_taken, .timeout = 10)
{
    zg_climit *t = table(10);
    pid_t child = fork();
    if (child == 0)
        _exit(0);
    cr_assert_gt(child, 0);
    cr_assert_eq(waitpid(child, NULL, 0), child);
    memcpy((void *)t, &(uint32_t){(uint32_t)child}, sizeof(uint32_t)); /* its lock word */
    struct sockaddr_storage a = test_addr("10.0.0.9", 1);
    cr_assert_eq(zg_climit_enter(t, SA(a), 1, getpid()), 1);
    free(t);
}
