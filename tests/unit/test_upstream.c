/* test_upstream.c - unit tests of the core's upstream groups' pure part: the
 * balancing methods and passive failure accounting. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_upstream.h"

#define NS 8

/* One choice's inputs besides the group. */
typedef struct pick_ctx {
    zerg_upstream *u;
    uint64_t *tried;
    uint64_t now;
    uint32_t hash;
} pick_ctx;

static int pick(const pick_ctx *p)
{
    return zg_up_pick(p->u, p->tried, p->now, p->hash);
}

typedef struct fixture {
    zerg_upstream up;
    zg_up_server servers[NS];
    char names[NS][32];
    zg_up_shm_srv shm[NS];
    int64_t cur[NS];
    uint64_t tried[ZERG_UPSTREAM_MAX_SERVERS / 64];
    pick_ctx p;
} fixture;

static void fx_init(fixture *f, int balance, size_t n, const int *weights)
{
    memset(f, 0, sizeof(*f));
    f->up.balance = balance;
    f->up.nservers = n;
    f->up.servers = f->servers;
    for (size_t i = 0; i < n; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "10.0.0.%zu:6379", i + 1);
        f->servers[i].name = f->names[i];
        f->servers[i].weight = weights ? weights[i] : 1;
        f->servers[i].max_fails = 1;
        f->servers[i].fail_timeout = 10000;
    }
    f->up.shm = f->shm;
    f->up.cur_weight = f->cur;
    f->up.rng = 12345;
    f->p = (pick_ctx){.u = &f->up, .tried = f->tried, .now = 1000000};
}

static void fx_ring(fixture *f)
{
    size_t cap = zg_up_ring_size(&f->up);
    f->up.ring = calloc(cap, sizeof(*f->up.ring));
    f->up.ring_n = zg_up_ring_build(&f->up, f->up.ring, cap);
}

/* A pick that must find a server (its index, never -1). */
static int pick_one(const pick_ctx *p)
{
    int s = pick(p);
    cr_assert(s >= 0, "a pick found no server");
    return s;
}

/* cnt[i] := how many of n picks chose server i */
static void count_picks(fixture *f, int n, int cnt[NS])
{
    memset(cnt, 0, NS * sizeof(*cnt));
    for (int i = 0; i < n; i++)
        cnt[pick_one(&f->p)]++;
}

/* ---- weighted round robin --------------------------------------------- */

Test(rr, weights_exact_per_cycle)
{
    fixture f;
    int w[] = {5, 1, 1};
    fx_init(&f, ZG_UP_RR, 3, w);
    int cnt[NS];
    count_picks(&f, 7000, cnt);
    cr_assert_eq(cnt[0], 5000);
    cr_assert_eq(cnt[1], 1000);
    cr_assert_eq(cnt[2], 1000);
}

Test(rr, smooth_no_long_bursts)
{
    fixture f;
    int w[] = {5, 1, 1};
    fx_init(&f, ZG_UP_RR, 3, w);
    /* nginx's smooth WRR gives a a b a c a a for 5,1,1 */
    int seq[7];
    for (int i = 0; i < 7; i++)
        seq[i] = pick(&f.p);
    int expect[7] = {0, 0, 1, 0, 2, 0, 0};
    for (int i = 0; i < 7; i++)
        cr_assert_eq(seq[i], expect[i], "pick %d: %d", i, seq[i]);
}

Test(rr, skips_down_tried_and_full)
{
    fixture f;
    fx_init(&f, ZG_UP_RR, 4, NULL);
    f.shm[0].hc_down = 1;
    f.shm[1].down_until = f.p.now + 5;
    zg_up_tried_set(f.tried, 2);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(pick(&f.p), 3);
    f.servers[3].max_conns = 2;
    f.shm[3].active = 2;
    cr_assert_eq(pick(&f.p), -1);
    f.p.now += 5; /* passive down over */
    cr_assert_eq(pick(&f.p), 1);
}

Test(rr, backup_only_when_primaries_unusable)
{
    fixture f;
    fx_init(&f, ZG_UP_RR, 3, NULL);
    f.servers[2].backup = 1;
    for (int i = 0; i < 10; i++)
        cr_assert_neq(pick(&f.p), 2);
    f.shm[0].hc_down = 1;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(pick(&f.p), 1);
    f.shm[1].down_until = f.p.now + 1000;
    cr_assert_eq(pick(&f.p), 2);
    f.shm[0].hc_down = 0;
    cr_assert_eq(pick(&f.p), 0);
}

Test(rr, backup_when_primaries_tried)
{
    fixture f;
    fx_init(&f, ZG_UP_RR, 3, NULL);
    f.servers[0].backup = 1;
    zg_up_tried_set(f.tried, 1);
    zg_up_tried_set(f.tried, 2);
    cr_assert_eq(pick(&f.p), 0);
    zg_up_tried_set(f.tried, 0);
    cr_assert_eq(pick(&f.p), -1);
}

/* ---- least connections ------------------------------------------------ */

Test(least_conn, picks_fewest_weighted)
{
    fixture f;
    int w[] = {1, 1, 4};
    fx_init(&f, ZG_UP_LEAST_CONN, 3, w);
    f.shm[0].active = 3;
    f.shm[1].active = 1;
    f.shm[2].active = 8; /* 8/4 = 2 > 1/1 */
    cr_assert_eq(pick(&f.p), 1);
    f.shm[2].active = 3; /* 3/4 < 1 */
    cr_assert_eq(pick(&f.p), 2);
}

Test(least_conn, ties_rotate_and_balance)
{
    fixture f;
    fx_init(&f, ZG_UP_LEAST_CONN, 3, NULL);
    int cnt[NS] = {0};
    for (int i = 0; i < 300; i++) {
        int s = pick(&f.p);
        cnt[s]++;
        f.shm[s].active++; /* connections stay open */
    }
    cr_assert_eq(cnt[0], 100);
    cr_assert_eq(cnt[1], 100);
    cr_assert_eq(cnt[2], 100);
    /* with no one staying, ties still rotate */
    for (int i = 0; i < 3; i++)
        f.shm[i].active = 0;
    count_picks(&f, 30, cnt);
    cr_assert_eq(cnt[0], 10);
    cr_assert_eq(cnt[1], 10);
}

/* ---- consistent hash --------------------------------------------------- */

static uint32_t client_hash(uint32_t i)
{
    uint32_t addr = htonl(0xC0A80000u + i);
    return zg_up_hash_bytes(&addr, 4, 0);
}

#define NCLIENTS 20000

Test(hash, stable_and_spread)
{
    fixture f;
    fx_init(&f, ZG_UP_HASH, 5, NULL);
    fx_ring(&f);
    int cnt[5] = {0};
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        int s = pick(&f.p);
        cr_assert(s >= 0);
        cr_assert_eq(pick(&f.p), s, "same client, same server");
        cnt[s]++;
    }
    for (int i = 0; i < 5; i++)
        cr_assert(cnt[i] > NCLIENTS / 5 * 0.7 && cnt[i] < NCLIENTS / 5 * 1.3, "server %d got %d", i,
                  cnt[i]);
    free(f.up.ring);
}

Test(hash, removal_moves_only_its_clients)
{
    static int before[NCLIENTS];
    fixture f, g;
    fx_init(&f, ZG_UP_HASH, 5, NULL);
    fx_ring(&f);
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        before[i] = pick(&f.p);
    }
    /* the config without server 2 (10.0.0.3): indexes shift, names stay */
    fx_init(&g, ZG_UP_HASH, 4, NULL);
    const char *names[4] = {"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.4:6379", "10.0.0.5:6379"};
    int map[4] = {0, 1, 3, 4};
    for (int i = 0; i < 4; i++)
        g.servers[i].name = (char *)names[i];
    fx_ring(&g);
    int moved = 0;
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        g.p.hash = client_hash(i);
        int now = map[pick_one(&g.p)];
        if (now != before[i]) {
            moved++;
            cr_assert_eq(before[i], 2, "client %u moved from a server that stayed", i);
        }
    }
    cr_assert(moved < NCLIENTS * 0.3, "moved %d", moved);
    cr_assert(moved > NCLIENTS * 0.1, "moved %d", moved);

    /* a server going down (not removed) moves only its own clients too */
    int moved2 = 0;
    f.shm[4].hc_down = 1;
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        int s = pick(&f.p);
        if (s != before[i]) {
            moved2++;
            cr_assert_eq(before[i], 4);
        }
    }
    cr_assert(moved2 > 0 && moved2 < NCLIENTS * 0.3);
    free(f.up.ring);
    free(g.up.ring);
}

/* down: true (maintenance) takes a server out of every policy, and with
 * hash only its own clients move: its points stay on the ring. */
Test(hash, down_server_moves_only_its_clients)
{
    static int before[NCLIENTS];
    fixture f;
    fx_init(&f, ZG_UP_HASH, 5, NULL);
    fx_ring(&f);
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        before[i] = pick(&f.p);
    }
    f.servers[1].down = 1;
    int moved = 0;
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        int s = pick(&f.p);
        cr_assert_neq(s, 1, "a server marked down was picked");
        if (s != before[i]) {
            moved++;
            cr_assert_eq(before[i], 1, "client %u moved from a server that stayed", i);
        }
    }
    cr_assert(moved > 0 && moved < NCLIENTS * 0.3, "moved %d", moved);
    free(f.up.ring);
}

Test(rr, down_server_never_picked)
{
    static const int balances[] = {ZG_UP_RR, ZG_UP_LEAST_CONN, ZG_UP_RANDOM};
    for (size_t b = 0; b < sizeof(balances) / sizeof(balances[0]); b++) {
        fixture f;
        fx_init(&f, balances[b], 3, NULL);
        f.servers[0].down = 1;
        for (int i = 0; i < 300; i++)
            cr_assert_neq(pick(&f.p), 0, "policy %d picked a server marked down", balances[b]);
        f.servers[1].down = f.servers[2].down = 1;
        cr_assert_eq(pick(&f.p), -1);
    }
}

Test(hash, weight_doubles_share)
{
    fixture f;
    int w[] = {1, 2, 1};
    fx_init(&f, ZG_UP_HASH, 3, w);
    fx_ring(&f);
    int cnt[3] = {0};
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        cnt[pick_one(&f.p)]++;
    }
    cr_assert(cnt[1] > cnt[0] * 1.5 && cnt[1] > cnt[2] * 1.5, "%d %d %d", cnt[0], cnt[1], cnt[2]);
    free(f.up.ring);
}

/* ---- random, two choices ----------------------------------------------- */

Test(random, avoids_loaded_and_follows_weights)
{
    fixture f;
    int w[] = {1, 1, 2};
    fx_init(&f, ZG_UP_RANDOM, 3, w);
    int cnt[NS];
    count_picks(&f, 40000, cnt);
    /* equal load: the first (weighted) draw wins: 1/4, 1/4, 1/2 */
    cr_assert(cnt[2] > 17000 && cnt[2] < 23000, "%d", cnt[2]);
    cr_assert(cnt[0] > 8500 && cnt[0] < 11500, "%d", cnt[0]);
    /* a loaded server is never chosen over an idle one */
    f.shm[0].active = 50;
    count_picks(&f, 10000, cnt);
    cr_assert_eq(cnt[0], 0);
    /* only one usable */
    f.shm[1].hc_down = 1;
    f.shm[2].hc_down = 1;
    cr_assert_eq(pick(&f.p), 0);
}

/* ---- passive failures ---------------------------------------------------- */

Test(passive, max_fails_within_window)
{
    zg_up_shm_srv s = {0};
    zg_up_server c = {.max_fails = 3, .fail_timeout = 1000};
    uint64_t t = 50000;
    cr_assert_eq(zg_up_fail_note(&s, &c, t), 0);
    cr_assert_eq(zg_up_fail_note(&s, &c, t + 100), 0);
    cr_assert(!zg_up_passive_down(&s, t + 100));
    cr_assert_eq(zg_up_fail_note(&s, &c, t + 200), 1);
    cr_assert(zg_up_passive_down(&s, t + 200));
    cr_assert(zg_up_passive_down(&s, t + 1199));
    cr_assert(!zg_up_passive_down(&s, t + 1200));
    /* probation: one failure marks it down again */
    cr_assert_eq(zg_up_fail_note(&s, &c, t + 1300), 1);
    cr_assert(zg_up_passive_down(&s, t + 1300));
    /* a success after recovery ends probation */
    zg_up_ok_note(&s);
    cr_assert(!zg_up_passive_down(&s, t + 1301));
    cr_assert_eq(zg_up_fail_note(&s, &c, t + 1400), 0);
    cr_assert_eq(s.failures, 5);
    cr_assert_eq(s.connects, 1);
}

Test(passive, window_expires)
{
    zg_up_shm_srv s = {0};
    zg_up_server c = {.max_fails = 2, .fail_timeout = 1000};
    uint64_t t = 50000;
    cr_assert_eq(zg_up_fail_note(&s, &c, t), 0);
    cr_assert_eq(zg_up_fail_note(&s, &c, t + 1500), 0); /* new window */
    cr_assert(!zg_up_passive_down(&s, t + 1500));
    cr_assert_eq(zg_up_fail_note(&s, &c, t + 1600), 1);
}

Test(passive, disabled_with_zero)
{
    zg_up_shm_srv s = {0};
    zg_up_server c = {.max_fails = 0, .fail_timeout = 1000};
    for (int i = 0; i < 100; i++)
        cr_assert_eq(zg_up_fail_note(&s, &c, 1000 + i), 0);
    cr_assert(!zg_up_passive_down(&s, 1100));
    cr_assert_eq(s.failures, 100);
}

Test(passive, marks_server_out_of_rotation)
{
    fixture f;
    fx_init(&f, ZG_UP_RR, 2, NULL);
    cr_assert_eq(zg_up_fail_note(&f.shm[0], &f.servers[0], f.p.now), 1);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(pick(&f.p), 1);
    f.p.now += 10000;
    int seen0 = 0;
    for (int i = 0; i < 4; i++)
        seen0 |= pick(&f.p) == 0;
    cr_assert(seen0);
}
