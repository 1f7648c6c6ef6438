/* test_proxy.c - unit tests of the proxy module's pure parts: the balancers,
 * passive failure accounting and PROXY protocol v1/v2 encoding. */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/proxy/proxy.h"
#include "test_addr.h"

#define NS 8

typedef struct fixture {
    proxy_upstream up;
    proxy_server servers[NS];
    char names[NS][32];
    proxy_shm_srv shm[NS];
    int64_t cur[NS];
    uint64_t rng;
    uint32_t rr;
    uint64_t tried[PROXY_TRIED_WORDS];
    proxy_pick_ctx p;
} fixture;

static void fx_init(fixture *f, int balance, size_t n, const int *weights)
{
    memset(f, 0, sizeof(*f));
    f->up.balance = balance;
    f->up.nservers = n;
    f->up.servers = f->servers;
    for (size_t i = 0; i < n; i++) {
        snprintf(f->names[i], sizeof(f->names[i]), "10.0.0.%zu:6379", i + 1);
        f->servers[i].addr.text = f->names[i];
        f->servers[i].weight = weights ? weights[i] : 1;
        f->servers[i].max_fails = 1;
        f->servers[i].fail_timeout = 10000;
    }
    f->rng = 12345;
    f->p = (proxy_pick_ctx){.up = &f->up,
                            .srv = f->shm,
                            .cur_weight = f->cur,
                            .rng = &f->rng,
                            .rr_next = &f->rr,
                            .tried = f->tried,
                            .now = 1000000};
}

static void fx_ring(fixture *f)
{
    size_t cap = proxy_ring_size(&f->up);
    f->up.ring = calloc(cap, sizeof(*f->up.ring));
    f->up.ring_n = proxy_ring_build(&f->up, f->up.ring, cap);
}

/* cnt[s] += the picks of server s in n picks (each pick must find one) */
static void count_picks(fixture *f, int n, int *cnt)
{
    for (int i = 0; i < n; i++) {
        int s = proxy_pick(&f->p);
        cr_assert(s >= 0, "pick %d found no server", i);
        cnt[s]++;
    }
}

/* ---- weighted round robin --------------------------------------------- */

Test(rr, weights_exact_per_cycle)
{
    fixture f;
    int w[] = {5, 1, 1};
    fx_init(&f, PROXY_BAL_RR, 3, w);
    int cnt[3] = {0};
    count_picks(&f, 7000, cnt);
    cr_assert_eq(cnt[0], 5000);
    cr_assert_eq(cnt[1], 1000);
    cr_assert_eq(cnt[2], 1000);
}

Test(rr, smooth_no_long_bursts)
{
    fixture f;
    int w[] = {5, 1, 1};
    fx_init(&f, PROXY_BAL_RR, 3, w);
    /* nginx's smooth WRR gives a a b a c a a for 5,1,1 */
    int seq[7];
    for (int i = 0; i < 7; i++)
        seq[i] = proxy_pick(&f.p);
    int expect[7] = {0, 0, 1, 0, 2, 0, 0};
    for (int i = 0; i < 7; i++)
        cr_assert_eq(seq[i], expect[i], "pick %d: %d", i, seq[i]);
}

Test(rr, skips_down_tried_and_full)
{
    fixture f;
    fx_init(&f, PROXY_BAL_RR, 4, NULL);
    f.shm[0].hc_down = 1;
    f.shm[1].down_until = f.p.now + 5;
    proxy_tried_set(f.tried, 2);
    for (int i = 0; i < 20; i++)
        cr_assert_eq(proxy_pick(&f.p), 3);
    f.servers[3].max_conns = 2;
    f.shm[3].active = 2;
    cr_assert_eq(proxy_pick(&f.p), -1);
    f.p.now += 5; /* passive down over */
    cr_assert_eq(proxy_pick(&f.p), 1);
}

Test(rr, backup_only_when_primaries_unusable)
{
    fixture f;
    fx_init(&f, PROXY_BAL_RR, 3, NULL);
    f.servers[2].backup = 1;
    for (int i = 0; i < 10; i++)
        cr_assert_neq(proxy_pick(&f.p), 2);
    f.shm[0].hc_down = 1;
    for (int i = 0; i < 10; i++)
        cr_assert_eq(proxy_pick(&f.p), 1);
    f.shm[1].down_until = f.p.now + 1000;
    cr_assert_eq(proxy_pick(&f.p), 2);
    f.shm[0].hc_down = 0;
    cr_assert_eq(proxy_pick(&f.p), 0);
}

Test(rr, backup_when_primaries_tried)
{
    fixture f;
    fx_init(&f, PROXY_BAL_RR, 3, NULL);
    f.servers[0].backup = 1;
    proxy_tried_set(f.tried, 1);
    proxy_tried_set(f.tried, 2);
    cr_assert_eq(proxy_pick(&f.p), 0);
    proxy_tried_set(f.tried, 0);
    cr_assert_eq(proxy_pick(&f.p), -1);
}

/* ---- least connections ------------------------------------------------ */

Test(least_conn, picks_fewest_weighted)
{
    fixture f;
    int w[] = {1, 1, 4};
    fx_init(&f, PROXY_BAL_LEAST_CONN, 3, w);
    f.shm[0].active = 3;
    f.shm[1].active = 1;
    f.shm[2].active = 8; /* 8/4 = 2 > 1/1 */
    cr_assert_eq(proxy_pick(&f.p), 1);
    f.shm[2].active = 3; /* 3/4 < 1 */
    cr_assert_eq(proxy_pick(&f.p), 2);
}

Test(least_conn, ties_rotate_and_balance)
{
    fixture f;
    fx_init(&f, PROXY_BAL_LEAST_CONN, 3, NULL);
    int cnt[3] = {0};
    for (int i = 0; i < 300; i++) {
        int s = proxy_pick(&f.p);
        cnt[s]++;
        f.shm[s].active++; /* connections stay open */
    }
    cr_assert_eq(cnt[0], 100);
    cr_assert_eq(cnt[1], 100);
    cr_assert_eq(cnt[2], 100);
    /* with no one staying, ties still rotate */
    memset(cnt, 0, sizeof(cnt));
    for (int i = 0; i < 3; i++)
        f.shm[i].active = 0;
    count_picks(&f, 30, cnt);
    cr_assert_eq(cnt[0], 10);
    cr_assert_eq(cnt[1], 10);
}

/* ---- consistent hash --------------------------------------------------- */

static uint32_t client_hash(uint32_t i)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    a.sin_addr.s_addr = htonl(0xC0A80000u + i);
    return proxy_hash_sockaddr((struct sockaddr *)&a);
}

#define NCLIENTS 20000

/* before[i]: the server picked for client i */
static void pick_per_client(fixture *f, int *before)
{
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f->p.hash = client_hash(i);
        before[i] = proxy_pick(&f->p);
    }
}

Test(hash, stable_and_spread)
{
    fixture f;
    fx_init(&f, PROXY_BAL_HASH, 5, NULL);
    fx_ring(&f);
    int cnt[5] = {0};
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        int s = proxy_pick(&f.p);
        cr_assert(s >= 0);
        cr_assert_eq(proxy_pick(&f.p), s, "same client, same server");
        cnt[s]++;
    }
    for (int i = 0; i < 5; i++)
        cr_assert(cnt[i] > NCLIENTS / 5 * 0.7 && cnt[i] < NCLIENTS / 5 * 1.3, "server %d got %d", i,
                  cnt[i]);
}

Test(hash, removal_moves_only_its_clients)
{
    static int before[NCLIENTS];
    fixture f, g;
    fx_init(&f, PROXY_BAL_HASH, 5, NULL);
    fx_ring(&f);
    pick_per_client(&f, before);
    /* the config without server 2 (10.0.0.3): indexes shift, names stay */
    fx_init(&g, PROXY_BAL_HASH, 4, NULL);
    const char *names[4] = {"10.0.0.1:6379", "10.0.0.2:6379", "10.0.0.4:6379", "10.0.0.5:6379"};
    int map[4] = {0, 1, 3, 4};
    for (int i = 0; i < 4; i++)
        g.servers[i].addr.text = (char *)names[i];
    fx_ring(&g);
    int moved = 0;
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        g.p.hash = client_hash(i);
        int now = map[proxy_pick(&g.p)];
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
        int s = proxy_pick(&f.p);
        if (s != before[i]) {
            moved2++;
            cr_assert_eq(before[i], 4);
        }
    }
    cr_assert(moved2 > 0 && moved2 < NCLIENTS * 0.3);
}

/* down: true (maintenance) takes a server out of every policy, and with
 * hash only its own clients move: its points stay on the ring. */
Test(hash, down_server_moves_only_its_clients)
{
    static int before[NCLIENTS];
    fixture f;
    fx_init(&f, PROXY_BAL_HASH, 5, NULL);
    fx_ring(&f);
    pick_per_client(&f, before);
    f.servers[1].down = 1;
    int moved = 0;
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        int s = proxy_pick(&f.p);
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
    static const int balances[] = {PROXY_BAL_RR, PROXY_BAL_LEAST_CONN, PROXY_BAL_RANDOM};
    for (size_t b = 0; b < sizeof(balances) / sizeof(balances[0]); b++) {
        fixture f;
        fx_init(&f, balances[b], 3, NULL);
        f.servers[0].down = 1;
        for (int i = 0; i < 300; i++)
            cr_assert_neq(proxy_pick(&f.p), 0, "policy %d picked a server marked down",
                          balances[b]);
        f.servers[1].down = f.servers[2].down = 1;
        cr_assert_eq(proxy_pick(&f.p), -1);
    }
}

Test(hash, weight_doubles_share)
{
    fixture f;
    int w[] = {1, 2, 1};
    fx_init(&f, PROXY_BAL_HASH, 3, w);
    fx_ring(&f);
    int cnt[3] = {0};
    for (uint32_t i = 0; i < NCLIENTS; i++) {
        f.p.hash = client_hash(i);
        cnt[proxy_pick(&f.p)]++;
    }
    cr_assert(cnt[1] > cnt[0] * 1.5 && cnt[1] > cnt[2] * 1.5, "%d %d %d", cnt[0], cnt[1], cnt[2]);
}

Test(hash, v4_mapped_same_as_v4)
{
    struct sockaddr_in a = {.sin_family = AF_INET};
    struct sockaddr_in6 b = {.sin6_family = AF_INET6};
    inet_pton(AF_INET, "192.0.2.7", &a.sin_addr);
    inet_pton(AF_INET6, "::ffff:192.0.2.7", &b.sin6_addr);
    a.sin_port = htons(1000);
    b.sin6_port = htons(2000);
    cr_assert_eq(proxy_hash_sockaddr((struct sockaddr *)&a),
                 proxy_hash_sockaddr((struct sockaddr *)&b));
}

/* ---- random, two choices ----------------------------------------------- */

Test(random, avoids_loaded_and_follows_weights)
{
    fixture f;
    int w[] = {1, 1, 2};
    fx_init(&f, PROXY_BAL_RANDOM, 3, w);
    int cnt[3] = {0};
    count_picks(&f, 40000, cnt);
    /* equal load: the first (weighted) draw wins: 1/4, 1/4, 1/2 */
    cr_assert(cnt[2] > 17000 && cnt[2] < 23000, "%d", cnt[2]);
    cr_assert(cnt[0] > 8500 && cnt[0] < 11500, "%d", cnt[0]);
    /* a loaded server is never chosen over an idle one */
    f.shm[0].active = 50;
    memset(cnt, 0, sizeof(cnt));
    count_picks(&f, 10000, cnt);
    cr_assert_eq(cnt[0], 0);
    /* only one usable */
    f.shm[1].hc_down = 1;
    f.shm[2].hc_down = 1;
    cr_assert_eq(proxy_pick(&f.p), 0);
}

/* ---- passive failures ---------------------------------------------------- */

Test(passive, max_fails_within_window)
{
    proxy_shm_srv s = {0};
    proxy_server c = {.max_fails = 3, .fail_timeout = 1000};
    uint64_t t = 50000;
    cr_assert_eq(proxy_fail_note(&s, &c, t), 0);
    cr_assert_eq(proxy_fail_note(&s, &c, t + 100), 0);
    cr_assert(!proxy_passive_down(&s, t + 100));
    cr_assert_eq(proxy_fail_note(&s, &c, t + 200), 1);
    cr_assert(proxy_passive_down(&s, t + 200));
    cr_assert(proxy_passive_down(&s, t + 1199));
    cr_assert(!proxy_passive_down(&s, t + 1200));
    /* probation: one failure marks it down again */
    cr_assert_eq(proxy_fail_note(&s, &c, t + 1300), 1);
    cr_assert(proxy_passive_down(&s, t + 1300));
    /* a success after recovery ends probation */
    proxy_ok_note(&s);
    cr_assert(!proxy_passive_down(&s, t + 1301));
    cr_assert_eq(proxy_fail_note(&s, &c, t + 1400), 0);
    cr_assert_eq(s.failures, 5);
    cr_assert_eq(s.connects, 1);
}

Test(passive, window_expires)
{
    proxy_shm_srv s = {0};
    proxy_server c = {.max_fails = 2, .fail_timeout = 1000};
    uint64_t t = 50000;
    cr_assert_eq(proxy_fail_note(&s, &c, t), 0);
    cr_assert_eq(proxy_fail_note(&s, &c, t + 1500), 0); /* new window */
    cr_assert(!proxy_passive_down(&s, t + 1500));
    cr_assert_eq(proxy_fail_note(&s, &c, t + 1600), 1);
}

Test(passive, disabled_with_zero)
{
    proxy_shm_srv s = {0};
    proxy_server c = {.max_fails = 0, .fail_timeout = 1000};
    for (int i = 0; i < 100; i++)
        cr_assert_eq(proxy_fail_note(&s, &c, 1000 + i), 0);
    cr_assert(!proxy_passive_down(&s, 1100));
    cr_assert_eq(s.failures, 100);
}

Test(passive, marks_server_out_of_rotation)
{
    fixture f;
    fx_init(&f, PROXY_BAL_RR, 2, NULL);
    cr_assert_eq(proxy_fail_note(&f.shm[0], &f.servers[0], f.p.now), 1);
    for (int i = 0; i < 5; i++)
        cr_assert_eq(proxy_pick(&f.p), 1);
    f.p.now += 10000;
    int seen0 = 0;
    for (int i = 0; i < 4; i++)
        seen0 |= proxy_pick(&f.p) == 0;
    cr_assert(seen0);
}

/* ---- PROXY protocol ----------------------------------------------------- */

Test(pp, v1_ipv4)
{
    uint8_t out[PROXY_PP_MAX];
    struct sockaddr_storage s = test_addr("192.0.2.1", 56324), d = test_addr("198.51.100.2", 443);
    size_t n = proxy_pp_encode(1, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out));
    const char *want = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    cr_assert_eq(n, strlen(want));
    cr_assert(memcmp(out, want, n) == 0);
}

Test(pp, v1_ipv6_and_unknown_dst)
{
    uint8_t out[PROXY_PP_MAX];
    struct sockaddr_storage s = test_addr("2001:db8::1", 1234);
    size_t n = proxy_pp_encode(1, (struct sockaddr *)&s, NULL, out, sizeof(out));
    const char *want = "PROXY TCP6 2001:db8::1 :: 1234 0\r\n";
    cr_assert_eq(n, strlen(want), "%.*s", (int)n, out);
    cr_assert(memcmp(out, want, n) == 0);
}

Test(pp, v1_unknown_src)
{
    uint8_t out[PROXY_PP_MAX];
    size_t n = proxy_pp_encode(1, NULL, NULL, out, sizeof(out));
    cr_assert_eq(n, 15);
    cr_assert(memcmp(out, "PROXY UNKNOWN\r\n", 15) == 0);
    struct sockaddr_storage s = test_addr("192.0.2.1", 1);
    cr_assert_eq(proxy_pp_encode(1, (struct sockaddr *)&s, NULL, out, 10), 0);
}

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

Test(pp, v2_ipv4)
{
    uint8_t out[PROXY_PP_MAX];
    struct sockaddr_storage s = test_addr("192.0.2.1", 0x1234), d = test_addr("198.51.100.2", 443);
    size_t n = proxy_pp_encode(2, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out));
    cr_assert_eq(n, 28);
    cr_assert(memcmp(out, sig, 12) == 0);
    cr_assert_eq(out[12], 0x21);
    cr_assert_eq(out[13], 0x11);
    cr_assert_eq(out[14], 0);
    cr_assert_eq(out[15], 12);
    uint8_t addrs[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0x12, 0x34, 0x01, 0xBB};
    cr_assert(memcmp(out + 16, addrs, 12) == 0);
}

Test(pp, v2_ipv6_and_local)
{
    uint8_t out[PROXY_PP_MAX];
    struct sockaddr_storage s = test_addr("2001:db8::1", 80), d = test_addr("10.0.0.1", 90);
    size_t n = proxy_pp_encode(2, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out));
    cr_assert_eq(n, 52);
    cr_assert_eq(out[12], 0x21);
    cr_assert_eq(out[13], 0x21);
    cr_assert_eq(out[15], 36);
    cr_assert_eq(out[15 + 16], 0x01); /* last byte of 2001:db8::1 */
    for (int i = 0; i < 16; i++)      /* dst of the other family: :: */
        cr_assert_eq(out[32 + i], 0);
    cr_assert_eq(out[48], 0);
    cr_assert_eq(out[49], 80);
    n = proxy_pp_encode(2, NULL, NULL, out, sizeof(out));
    cr_assert_eq(n, 16);
    cr_assert_eq(out[12], 0x20);
    cr_assert_eq(out[13], 0x00);
    cr_assert_eq(out[15], 0);
    cr_assert_eq(proxy_pp_encode(3, NULL, NULL, out, sizeof(out)), 0);
    cr_assert_eq(proxy_pp_encode(2, (struct sockaddr *)&s, NULL, out, 40), 0);
}
