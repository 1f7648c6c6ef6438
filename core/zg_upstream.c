/* zg_upstream.c - an upstream group at run time (api->upstream_*): its start
 * and stop in a worker, the choice of a server for a connection, and what
 * the module tells of each server (connections, failures, bytes). */
#include <unistd.h>

#include "zg_upstream.h"

#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define SUB(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_RELAXED)

/* Each worker starts at its own point of the rotations, and the checks run
 * in worker 0 only: once per group, their verdict shared. */
void zg_up_start(zerg_worker *w, zerg_upstream *u)
{
    const zerg_api *a = zg_up_api;
    unsigned id = a->worker_id(w);
    u->w = w;
    u->mrow = u->registered ? a->metric_row(w) : NULL;
    u->rng = ((uint64_t)getpid() << 32) ^ id ^ zg_up_clock() ^ (uint64_t)(uintptr_t)u;
    u->rr_next = id;
    if (id == 0 && u->hc.enabled && zg_up_hc_start(w, u) != 0)
        a->log(ZERG_LOG_ERROR, "upstream %s: out of memory for health checks", u->name);
}

void zg_up_stop(zerg_worker *w, zerg_upstream *u)
{
    (void)w;
    zg_up_hc_stop(u);
}

int zg_up_api_pick(zerg_worker *w, zerg_upstream *u, const void *key, size_t key_len,
                   zerg_upstream_tried *tried)
{
    /* the worker's clock, read once per loop turn (CLOCK_MONOTONIC_COARSE,
     * as zg_up_clock: comparable across workers) */
    uint64_t now = zg_up_api->now_ms(w);
    uint32_t hash = u->balance == ZG_UP_HASH ? zg_up_hash_bytes(key, key ? key_len : 0, 0) : 0;
    int i = zg_up_pick(u, tried ? tried->bits : NULL, now, hash);
    if (i >= 0 && tried)
        zg_up_tried_set(tried->bits, (unsigned)i);
    return i;
}

const char *zg_up_server_addr(const zerg_upstream *u, int i, const struct sockaddr **sa,
                              socklen_t *len)
{
    if (i < 0 || (size_t)i >= u->nservers)
        return NULL;
    if (sa)
        *sa = (const struct sockaddr *)&u->servers[i].ss;
    if (len)
        *len = u->servers[i].len;
    return u->servers[i].name;
}

size_t zg_up_size(const zerg_upstream *u)
{
    return u->nservers;
}

const char *zg_up_hash_key(const zerg_upstream *u)
{
    return u->hash_key;
}

int zg_up_note(zerg_upstream *u, int i, int event, uint64_t n)
{
    if (i < 0 || (size_t)i >= u->nservers)
        return 0;
    zg_up_shm_srv *s = &u->shm[i];
    switch (event) {
    case ZERG_UPSTREAM_OPEN:
        ADD(&s->active, 1);
        break;
    case ZERG_UPSTREAM_CLOSE:
        SUB(&s->active, 1);
        break;
    case ZERG_UPSTREAM_OK:
        zg_up_ok_note(s);
        zg_up_count(u, (size_t)i, ZG_UP_C_CONNECTS, 1);
        break;
    case ZERG_UPSTREAM_FAIL:
        zg_up_count(u, (size_t)i, ZG_UP_C_FAILURES, 1);
        if (!zg_up_fail_note(s, &u->servers[i], u->w ? zg_up_api->now_ms(u->w) : zg_up_clock()))
            return 0;
        zg_up_api->log(ZERG_LOG_WARN,
                       "upstream %s: server %s failed %lld times, skipped for %llu ms", u->name,
                       u->servers[i].name, (long long)u->servers[i].max_fails,
                       (unsigned long long)u->servers[i].fail_timeout);
        return 1;
    case ZERG_UPSTREAM_ERROR:
        ADD(&s->failures, 1);
        zg_up_count(u, (size_t)i, ZG_UP_C_FAILURES, 1);
        break;
    case ZERG_UPSTREAM_BYTES_IN:
        ADD(&s->bytes_in, n);
        zg_up_count(u, (size_t)i, ZG_UP_C_BYTES_IN, n);
        break;
    case ZERG_UPSTREAM_BYTES_OUT:
        ADD(&s->bytes_out, n);
        zg_up_count(u, (size_t)i, ZG_UP_C_BYTES_OUT, n);
        break;
    default:
        break;
    }
    return 0;
}
