/* zg_climit.c - a table of client addresses and their open connections in
 * memory the workers share: open addressing with linear probing, entries
 * removed by shifting back (no tombstones), one spin lock held for a few
 * dozen instructions. A worker that dies holding it cannot block the others:
 * the lock names its holder, and a waiter that finds the holder gone takes
 * it. */
#define _GNU_SOURCE
#include "zg_climit.h"

#include <errno.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <string.h>
#include <time.h>

typedef struct zg_climit_slot {
    uint8_t key[16]; /* the IPv6 address, or the IPv4 one mapped (::ffff:a.b.c.d) */
    uint32_t count;  /* 0: free */
    uint32_t home;   /* the slot the key hashes to */
} zg_climit_slot;

struct zg_climit {
    uint32_t lock; /* the pid holding it, 0 when free */
    uint32_t mask; /* slots - 1 */
    uint64_t seed;
    zg_climit_slot slots[];
};

static uint32_t slots_for(uint32_t capacity)
{
    uint32_t n = 64;
    while (n < 2 * (uint64_t)capacity && n < (1u << 30))
        n <<= 1;
    return n;
}

size_t zg_climit_size(uint32_t capacity)
{
    return sizeof(zg_climit) + (size_t)slots_for(capacity) * sizeof(zg_climit_slot);
}

void zg_climit_init(zg_climit *t, uint32_t capacity)
{
    memset(t, 0, zg_climit_size(capacity));
    t->mask = slots_for(capacity) - 1;
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* a seed no client can guess in advance */
    t->seed = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ull ^ (uint64_t)ts.tv_sec;
}

static int key_of(const struct sockaddr *sa, uint8_t key[16])
{
    if (sa->sa_family == AF_INET6) {
        memcpy(key, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
        return 0;
    }
    if (sa->sa_family == AF_INET) {
        memset(key, 0, 10);
        key[10] = key[11] = 0xff;
        memcpy(key + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
        return 0;
    }
    return -1; /* unix sockets: no client address to count */
}

static uint32_t hash_key(const zg_climit *t, const uint8_t key[16])
{
    uint64_t a, b;
    memcpy(&a, key, 8);
    memcpy(&b, key + 8, 8);
    uint64_t h = (a ^ t->seed) * 0xff51afd7ed558ccdull;
    h ^= h >> 33;
    h = (h ^ b) * 0xc4ceb9fe1a85ec53ull;
    h ^= h >> 29;
    return (uint32_t)h & t->mask;
}

static void lock(zg_climit *t, pid_t self)
{
    for (unsigned spins = 1;; spins++) {
        uint32_t holder = 0;
        if (__atomic_compare_exchange_n(&t->lock, &holder, (uint32_t)self, 0, __ATOMIC_ACQUIRE,
                                        __ATOMIC_RELAXED))
            return;
        if (spins % 1024 == 0) {
            /* a long wait: the holder was preempted, or died holding it */
            if (kill((pid_t)holder, 0) < 0 && errno == ESRCH)
                __atomic_compare_exchange_n(&t->lock, &holder, 0, 0, __ATOMIC_RELAXED,
                                            __ATOMIC_RELAXED);
            sched_yield();
        }
    }
}

static void unlock(zg_climit *t)
{
    __atomic_store_n(&t->lock, 0, __ATOMIC_RELEASE);
}

/* The slot holding key, or the free slot where it would go; -1 when the
 * table is full and key is not in it. */
static int64_t find(zg_climit *t, const uint8_t key[16], uint32_t home)
{
    for (uint32_t n = 0, i = home; n <= t->mask; n++, i = (i + 1) & t->mask) {
        zg_climit_slot *s = &t->slots[i];
        if (s->count == 0 || memcmp(s->key, key, 16) == 0)
            return i;
    }
    return -1;
}

/* Empty slot i, shifting back the entries after it that probed past it. */
static void remove_at(zg_climit *t, uint32_t i)
{
    for (uint32_t n = 0, j = (i + 1) & t->mask; n < t->mask; n++, j = (j + 1) & t->mask) {
        zg_climit_slot *s = &t->slots[j];
        if (s->count == 0)
            break;
        /* s may move to i when i lies on its probe path: from home to j */
        uint32_t dist_i = (i - s->home) & t->mask, dist_j = (j - s->home) & t->mask;
        if (dist_i < dist_j) {
            t->slots[i] = *s;
            i = j;
        }
    }
    memset(&t->slots[i], 0, sizeof(t->slots[i]));
}

int zg_climit_enter(zg_climit *t, const struct sockaddr *sa, uint32_t max, pid_t self)
{
    uint8_t key[16];
    if (key_of(sa, key) < 0)
        return -1;
    uint32_t home = hash_key(t, key);
    int rc;
    lock(t, self);
    int64_t i = find(t, key, home);
    if (i < 0) {
        rc = -1; /* full: cannot happen while it has room for every connection */
    } else if (t->slots[i].count >= max) {
        rc = 0;
    } else {
        zg_climit_slot *s = &t->slots[i];
        if (s->count == 0) {
            memcpy(s->key, key, 16);
            s->home = home;
        }
        s->count++;
        rc = 1;
    }
    unlock(t);
    return rc;
}

void zg_climit_leave(zg_climit *t, const struct sockaddr *sa, pid_t self)
{
    uint8_t key[16];
    if (key_of(sa, key) < 0)
        return;
    lock(t, self);
    int64_t i = find(t, key, hash_key(t, key));
    if (i >= 0 && t->slots[i].count > 0 && --t->slots[i].count == 0)
        remove_at(t, (uint32_t)i);
    unlock(t);
}
