/* proxy_balance.c - server selection (weighted round robin, least_conn,
 * consistent hash, random two choices) and passive failure accounting.
 * Pure functions over the config and the shared counters: no zerg api calls. */
#include <string.h>
#include <stdlib.h>
#include <netinet/in.h>

#include "proxy.h"

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* ---- passive failures ------------------------------------------------- */

int proxy_passive_down(const proxy_shm_srv *s, uint64_t now)
{
    return now < LOAD(&s->down_until);
}

/* A failed connect: count it in the window of fail_timeout that began with
 * the first failure; max_fails of them mark the server down for
 * fail_timeout. A server that comes back from being down is on probation:
 * its first failure marks it down again at once. */
int proxy_fail_note(proxy_shm_srv *s, const proxy_server *cf, uint64_t now)
{
    __atomic_add_fetch(&s->failures, 1, __ATOMIC_RELAXED);
    if (cf->max_fails <= 0)
        return 0;
    uint64_t down = LOAD(&s->down_until);
    if (down != 0) {
        if (now >= down) { /* probation failed */
            STORE(&s->down_until, now + cf->fail_timeout);
            return 1;
        }
        return 0;
    }
    uint64_t start = LOAD(&s->fail_start);
    if (start == 0 || now - start >= cf->fail_timeout) {
        if (__atomic_compare_exchange_n(&s->fail_start, &start, now ? now : 1, 0, __ATOMIC_RELAXED,
                                        __ATOMIC_RELAXED))
            STORE(&s->fails, 0);
    }
    uint32_t n = __atomic_add_fetch(&s->fails, 1, __ATOMIC_RELAXED);
    if (n >= (uint64_t)cf->max_fails) {
        STORE(&s->down_until, now + cf->fail_timeout);
        STORE(&s->fails, 0);
        STORE(&s->fail_start, 0);
        return 1;
    }
    return 0;
}

/* A successful connect ends probation. */
void proxy_ok_note(proxy_shm_srv *s)
{
    __atomic_add_fetch(&s->connects, 1, __ATOMIC_RELAXED);
    if (LOAD(&s->down_until) != 0)
        STORE(&s->down_until, 0);
}

/* ---- eligibility ------------------------------------------------------ */

int proxy_usable(const proxy_pick_ctx *p, size_t i)
{
    const proxy_server *cf = &p->up->servers[i];
    const proxy_shm_srv *s = &p->srv[i];
    if (cf->down)
        return 0; /* its points stay on the hash ring: no other client moves */
    if (p->tried && proxy_tried_get(p->tried, (unsigned)i))
        return 0;
    if (LOAD(&s->hc_down))
        return 0;
    if (proxy_passive_down(s, p->now))
        return 0;
    if (cf->max_conns > 0 && LOAD(&s->active) >= (uint64_t)cf->max_conns)
        return 0;
    return 1;
}

static int in_set(const proxy_pick_ctx *p, size_t i, int backup)
{
    return (p->up->servers[i].backup != 0) == (backup != 0);
}

/* ---- smooth weighted round robin (as nginx) ---------------------------- */

int proxy_pick_rr(const proxy_pick_ctx *p, int backup)
{
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < p->up->nservers; i++) {
        if (!in_set(p, i, backup) || !proxy_usable(p, i))
            continue;
        int64_t w = p->up->servers[i].weight;
        p->cur_weight[i] += w;
        total += w;
        if (best < 0 || p->cur_weight[i] > p->cur_weight[best])
            best = (int)i;
    }
    if (best >= 0)
        p->cur_weight[best] -= total;
    return best;
}

/* ---- least connections (weighted), ties rotate ------------------------- */

int proxy_pick_least_conn(const proxy_pick_ctx *p, int backup)
{
    size_t n = p->up->nservers;
    int best = -1;
    uint64_t ba = 0;
    int64_t bw = 1;
    size_t start = p->rr_next ? *p->rr_next % n : 0;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!in_set(p, i, backup) || !proxy_usable(p, i))
            continue;
        uint64_t a = LOAD(&p->srv[i].active);
        int64_t w = p->up->servers[i].weight;
        /* a / w < ba / bw */
        if (best < 0 || (unsigned __int128)a * (uint64_t)bw < (unsigned __int128)ba * (uint64_t)w) {
            best = (int)i;
            ba = a;
            bw = w;
        }
    }
    if (best >= 0 && p->rr_next)
        *p->rr_next = (uint32_t)(best + 1);
    return best;
}

/* ---- random with two choices (weighted draw, fewer connections wins) --- */

uint64_t proxy_rand(uint64_t *state)
{
    /* xorshift64* */
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int weighted_draw(const proxy_pick_ctx *p, int backup, int skip, int64_t total)
{
    if (total <= 0)
        return -1;
    int64_t r = (int64_t)(proxy_rand(p->rng) % (uint64_t)total);
    int last = -1;
    for (size_t i = 0; i < p->up->nservers; i++) {
        if ((int)i == skip || !in_set(p, i, backup) || !proxy_usable(p, i))
            continue;
        last = (int)i;
        r -= p->up->servers[i].weight;
        if (r < 0)
            return (int)i;
    }
    return last;
}

int proxy_pick_random(const proxy_pick_ctx *p, int backup)
{
    int64_t total = 0;
    int n = 0;
    for (size_t i = 0; i < p->up->nservers; i++) {
        if (in_set(p, i, backup) && proxy_usable(p, i)) {
            total += p->up->servers[i].weight;
            n++;
        }
    }
    if (n == 0)
        return -1;
    int a = weighted_draw(p, backup, -1, total);
    if (n == 1 || a < 0)
        return a;
    int b = weighted_draw(p, backup, a, total - p->up->servers[a].weight);
    if (b < 0)
        return a;
    uint64_t aa = LOAD(&p->srv[a].active), ab = LOAD(&p->srv[b].active);
    uint64_t wa = (uint64_t)p->up->servers[a].weight, wb = (uint64_t)p->up->servers[b].weight;
    /* ab / wb < aa / wa: b is less loaded */
    return (unsigned __int128)ab * wa < (unsigned __int128)aa * wb ? b : a;
}

/* ---- consistent hash (ketama-style ring over the primaries) ------------ */

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdull;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    return x;
}

uint32_t proxy_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *d = data;
    uint64_t h = 0xcbf29ce484222325ull ^ mix64(seed + 1);
    for (size_t i = 0; i < len; i++) {
        h ^= d[i];
        h *= 0x100000001b3ull;
    }
    return (uint32_t)(mix64(h) >> 32);
}

uint32_t proxy_hash_sockaddr(const struct sockaddr *sa)
{
    if (!sa)
        return 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;
        return proxy_hash_bytes(&s4->sin_addr, 4, 0);
    }
    if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;
        const uint8_t *b = s6->sin6_addr.s6_addr;
        static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
        if (memcmp(b, v4mapped, 12) == 0) /* same bucket as the plain IPv4 form */
            return proxy_hash_bytes(b + 12, 4, 0);
        return proxy_hash_bytes(b, 16, 0);
    }
    return 0;
}

size_t proxy_ring_size(const proxy_upstream *up)
{
    size_t n = 0;
    for (size_t i = 0; i < up->nservers; i++)
        if (!up->servers[i].backup)
            n += (size_t)up->servers[i].weight * PROXY_RING_POINTS;
    return n;
}

static int ring_cmp(const void *a, const void *b)
{
    const proxy_ring_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (int)x->srv - (int)y->srv;
}

/* A server's points depend only on its address text, so removing or adding
 * another server leaves them where they were. */
size_t proxy_ring_build(const proxy_upstream *up, proxy_ring_point *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < up->nservers; i++) {
        const proxy_server *s = &up->servers[i];
        if (s->backup)
            continue;
        const char *key = s->addr.text ? s->addr.text : "";
        size_t klen = strlen(key);
        size_t pts = (size_t)s->weight * PROXY_RING_POINTS;
        for (size_t j = 0; j < pts && n < cap; j++) {
            out[n].hash = proxy_hash_bytes(key, klen, j);
            out[n].srv = (uint16_t)i;
            n++;
        }
    }
    qsort(out, n, sizeof(*out), ring_cmp);
    return n;
}

int proxy_pick_hash(const proxy_pick_ctx *p, int backup)
{
    const proxy_upstream *up = p->up;
    if (backup || up->ring_n == 0)
        return proxy_pick_rr(p, backup);
    /* first point at or after the hash, wrapping */
    size_t lo = 0, hi = up->ring_n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (up->ring[mid].hash < p->hash)
            lo = mid + 1;
        else
            hi = mid;
    }
    for (size_t k = 0; k < up->ring_n; k++) {
        size_t i = (lo + k) % up->ring_n;
        if (proxy_usable(p, up->ring[i].srv))
            return up->ring[i].srv;
    }
    return -1;
}

/* ---- the choice: primaries first, backups only when no primary is usable */

int proxy_pick(const proxy_pick_ctx *p)
{
    for (int backup = 0; backup <= 1; backup++) {
        int i;
        switch (p->up->balance) {
        case PROXY_BAL_LEAST_CONN:
            i = proxy_pick_least_conn(p, backup);
            break;
        case PROXY_BAL_HASH:
            i = proxy_pick_hash(p, backup);
            break;
        case PROXY_BAL_RANDOM:
            i = proxy_pick_random(p, backup);
            break;
        default:
            i = proxy_pick_rr(p, backup);
            break;
        }
        if (i >= 0)
            return i;
    }
    return -1;
}
