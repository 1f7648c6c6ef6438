/* zg_upstream_pick.c - choosing a group's server (smooth weighted round
 * robin, least_conn, consistent hash, random two choices) and passive
 * failure accounting: pure functions over the group and its shared slots. */
#include <string.h>
#include <stdlib.h>
#include <time.h>

#include "zg_upstream.h"

#define LOAD(p)     __atomic_load_n((p), __ATOMIC_RELAXED)
#define STORE(p, v) __atomic_store_n((p), (v), __ATOMIC_RELAXED)

/* One choice: the group, what the request tried, the time and its hash. */
typedef struct zg_pick {
    zerg_upstream *u;
    const uint64_t *tried; /* bitmap or NULL */
    uint64_t now;          /* ms, zg_up_clock() */
    uint32_t hash;         /* balance hash: the key's */
} zg_pick;

uint64_t zg_up_clock(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- passive failures ------------------------------------------------- */

int zg_up_passive_down(const zg_up_shm_srv *s, uint64_t now)
{
    return now < LOAD(&s->down_until);
}

/* A failed connect: count it in the window of fail_timeout that began with
 * the first failure; max_fails of them mark the server down for
 * fail_timeout. A server that comes back from being down is on probation:
 * its first failure marks it down again at once. */
int zg_up_fail_note(zg_up_shm_srv *s, const zg_up_server *cf, uint64_t now)
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
void zg_up_ok_note(zg_up_shm_srv *s)
{
    __atomic_add_fetch(&s->connects, 1, __ATOMIC_RELAXED);
    if (LOAD(&s->down_until) != 0)
        STORE(&s->down_until, 0);
}

/* ---- eligibility ------------------------------------------------------ */

int zg_up_usable(const zerg_upstream *u, const uint64_t *tried, size_t i, uint64_t now)
{
    const zg_up_server *cf = &u->servers[i];
    const zg_up_shm_srv *s = &u->shm[i];
    if (cf->down)
        return 0; /* its points stay on the hash ring: no other client moves */
    if (tried && zg_up_tried_get(tried, (unsigned)i))
        return 0;
    if (LOAD(&s->hc_down))
        return 0;
    if (zg_up_passive_down(s, now))
        return 0;
    if (cf->max_conns > 0 && LOAD(&s->active) >= (uint64_t)cf->max_conns)
        return 0;
    return 1;
}

static int usable(const zg_pick *p, size_t i)
{
    return zg_up_usable(p->u, p->tried, i, p->now);
}

static int in_set(const zg_pick *p, size_t i, int backup)
{
    return (p->u->servers[i].backup != 0) == (backup != 0);
}

/* ---- smooth weighted round robin (as nginx) ---------------------------- */

static int pick_rr(const zg_pick *p, int backup)
{
    int best = -1;
    int64_t total = 0;
    for (size_t i = 0; i < p->u->nservers; i++) {
        if (!in_set(p, i, backup) || !usable(p, i))
            continue;
        int64_t w = p->u->servers[i].weight;
        p->u->cur_weight[i] += w;
        total += w;
        if (best < 0 || p->u->cur_weight[i] > p->u->cur_weight[best])
            best = (int)i;
    }
    if (best >= 0)
        p->u->cur_weight[best] -= total;
    return best;
}

/* ---- least connections (weighted), ties rotate ------------------------- */

static int pick_least_conn(const zg_pick *p, int backup)
{
    size_t n = p->u->nservers;
    int best = -1;
    uint64_t ba = 0;
    int64_t bw = 1;
    size_t start = p->u->rr_next % n;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!in_set(p, i, backup) || !usable(p, i))
            continue;
        uint64_t a = LOAD(&p->u->shm[i].active);
        int64_t w = p->u->servers[i].weight;
        /* a / w < ba / bw */
        if (best < 0 || (unsigned __int128)a * (uint64_t)bw < (unsigned __int128)ba * (uint64_t)w) {
            best = (int)i;
            ba = a;
            bw = w;
        }
    }
    if (best >= 0)
        p->u->rr_next = (uint32_t)(best + 1);
    return best;
}

/* ---- random with two choices (weighted draw, fewer connections wins) --- */

uint64_t zg_up_rand(uint64_t *state)
{
    /* xorshift64* */
    uint64_t x = *state ? *state : 0x9E3779B97F4A7C15ull;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    *state = x;
    return x * 0x2545F4914F6CDD1Dull;
}

static int weighted_draw(const zg_pick *p, int backup, int skip, int64_t total)
{
    if (total <= 0)
        return -1;
    int64_t r = (int64_t)(zg_up_rand(&p->u->rng) % (uint64_t)total);
    int last = -1;
    for (size_t i = 0; i < p->u->nservers; i++) {
        if ((int)i == skip || !in_set(p, i, backup) || !usable(p, i))
            continue;
        last = (int)i;
        r -= p->u->servers[i].weight;
        if (r < 0)
            return (int)i;
    }
    return last;
}

static int pick_random(const zg_pick *p, int backup)
{
    int64_t total = 0;
    int n = 0;
    for (size_t i = 0; i < p->u->nservers; i++) {
        if (in_set(p, i, backup) && usable(p, i)) {
            total += p->u->servers[i].weight;
            n++;
        }
    }
    if (n == 0)
        return -1;
    int a = weighted_draw(p, backup, -1, total);
    if (n == 1 || a < 0)
        return a;
    int b = weighted_draw(p, backup, a, total - p->u->servers[a].weight);
    if (b < 0)
        return a;
    uint64_t aa = LOAD(&p->u->shm[a].active), ab = LOAD(&p->u->shm[b].active);
    uint64_t wa = (uint64_t)p->u->servers[a].weight, wb = (uint64_t)p->u->servers[b].weight;
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

uint32_t zg_up_hash_bytes(const void *data, size_t len, uint64_t seed)
{
    const uint8_t *d = data;
    uint64_t h = 0xcbf29ce484222325ull ^ mix64(seed + 1);
    for (size_t i = 0; i < len; i++) {
        h ^= d[i];
        h *= 0x100000001b3ull;
    }
    return (uint32_t)(mix64(h) >> 32);
}

size_t zg_up_ring_size(const zerg_upstream *up)
{
    size_t n = 0;
    for (size_t i = 0; i < up->nservers; i++)
        if (!up->servers[i].backup)
            n += (size_t)up->servers[i].weight * ZG_UP_RING_POINTS;
    return n;
}

static int ring_cmp(const void *a, const void *b)
{
    const zg_up_ring_point *x = a, *y = b;
    if (x->hash != y->hash)
        return x->hash < y->hash ? -1 : 1;
    return (int)x->srv - (int)y->srv;
}

/* A server's points depend only on its address text, so removing or adding
 * another server leaves them where they were. */
size_t zg_up_ring_build(const zerg_upstream *up, zg_up_ring_point *out, size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < up->nservers; i++) {
        const zg_up_server *s = &up->servers[i];
        if (s->backup)
            continue;
        const char *key = s->name ? s->name : "";
        size_t klen = strlen(key);
        size_t pts = (size_t)s->weight * ZG_UP_RING_POINTS;
        for (size_t j = 0; j < pts && n < cap; j++) {
            out[n].hash = zg_up_hash_bytes(key, klen, j);
            out[n].srv = (uint16_t)i;
            n++;
        }
    }
    qsort(out, n, sizeof(*out), ring_cmp);
    return n;
}

static int pick_hash(const zg_pick *p, int backup)
{
    const zerg_upstream *up = p->u;
    if (backup || up->ring_n == 0)
        return pick_rr(p, backup);
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
        if (usable(p, up->ring[i].srv))
            return up->ring[i].srv;
    }
    return -1;
}

/* ---- the choice: primaries first, backups only when no primary is usable */

int zg_up_pick(zerg_upstream *u, const uint64_t *tried, uint64_t now, uint32_t hash)
{
    const zg_pick pk = {.u = u, .tried = tried, .now = now, .hash = hash}, *p = &pk;
    for (int backup = 0; backup <= 1; backup++) {
        int i;
        switch (p->u->balance) {
        case ZG_UP_LEAST_CONN:
            i = pick_least_conn(p, backup);
            break;
        case ZG_UP_HASH:
            i = pick_hash(p, backup);
            break;
        case ZG_UP_RANDOM:
            i = pick_random(p, backup);
            break;
        default:
            i = pick_rr(p, backup);
            break;
        }
        if (i >= 0)
            return i;
    }
    return -1;
}

/* ---- what the stats and metrics call the server's state ---------------- */

const char *zg_up_state(const zg_up_server *cf, const zg_up_shm_srv *s, uint64_t now)
{
    if (cf->down)
        return "maint";
    if (LOAD(&s->hc_down))
        return "down";
    uint64_t d = LOAD(&s->down_until);
    if (d && now < d)
        return "failed";
    return "up";
}
