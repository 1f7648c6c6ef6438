/* zg_upstream.h - upstream groups (api->conf_upstream, api->upstream_*): the
 * servers and their settings, the state every worker shares, and the files
 * that parse, balance, account for failures and run health checks. These
 * files call the core only through the api table (zg_up_api), so the http
 * module's mock core links them as they are. */
#ifndef ZG_UPSTREAM_H
#define ZG_UPSTREAM_H

#include <stdint.h>
#include <stddef.h>
#include <netinet/in.h>
#include <zerg/module.h>

#define ZG_UP_RING_POINTS 100 /* consistent-hash points per unit of weight */

/* The api table these files call: the core's own, or a mock's. */
extern const zerg_api *const zg_up_api;

enum zg_up_balance {
    ZG_UP_RR = 0,
    ZG_UP_LEAST_CONN,
    ZG_UP_HASH,
    ZG_UP_RANDOM,
};

/* A server's counters, kept twice: in its shared slot (upstream_json, and
 * the metrics of groups not registered) and, once conf_upstream_metrics
 * registered them, in the worker's row of the master's shared metrics. */
enum zg_up_counter {
    ZG_UP_C_CONNECTS,
    ZG_UP_C_FAILURES,
    ZG_UP_C_BYTES_IN,
    ZG_UP_C_BYTES_OUT,
    ZG_UP_C_HC_CHECKS,
    ZG_UP_C_HC_FAILED,
    ZG_UP_NCOUNTERS
};

typedef struct zg_up_server {
    struct sockaddr_storage ss;
    socklen_t len;
    char *name;            /* the address as configured */
    int64_t weight;        /* 1..1000, default 1 */
    int64_t max_fails;     /* 0 disables passive accounting, default 1 */
    uint64_t fail_timeout; /* ms, default 10s */
    int backup;
    int64_t max_conns; /* 0: unlimited */
    int down;          /* taken out by hand (maintenance): never picked, not checked */
    int64_t metric[ZG_UP_NCOUNTERS]; /* handles in the shared metrics (registered) */
} zg_up_server;

typedef struct zg_up_hc_conf {
    int enabled;
    uint64_t interval; /* ms */
    uint64_t timeout;  /* ms */
    int64_t rise, fall;
    char *send;
    char *expect;
} zg_up_hc_conf;

typedef struct zg_up_ring_point {
    uint32_t hash;
    uint16_t srv;
} zg_up_ring_point;

/* Shared memory, a slot per server: written with __atomic builtins by every
 * worker, read by all. Each server on its own cache line(s). */
typedef struct zg_up_shm_srv {
    uint32_t hc_down;   /* 1: taken out by the active health check */
    uint32_t hc_streak; /* consecutive results against the current state (checker) */
    uint32_t fails;     /* passive failures in the current window */
    uint32_t _pad0;
    uint64_t fail_start; /* ms: start of the current failure window */
    uint64_t down_until; /* ms: passive down until; kept non-zero while on probation */
    uint64_t active;     /* connections serving now (all workers) */
    uint64_t connects;   /* connections established */
    uint64_t failures;   /* failed connects (refused, timeout, ...) */
    uint64_t bytes_in;   /* bytes received from the server */
    uint64_t bytes_out;  /* bytes sent to the server */
    uint64_t hc_checks, hc_failed;
    uint64_t _pad1[3];
} __attribute__((aligned(64))) zg_up_shm_srv;

typedef struct zg_up_hc zg_up_hc;

struct zerg_upstream {
    const char *name; /* labels log lines and metrics */
    int balance;      /* enum zg_up_balance */
    const char *hash_key;
    size_t nservers;
    zg_up_server *servers;
    zg_up_hc_conf hc;
    zg_up_ring_point *ring; /* balance hash: the primaries' points, sorted */
    size_t ring_n;
    zg_up_shm_srv *shm; /* nservers slots */
    int registered;     /* conf_upstream_metrics: the servers' metric handles are set */
    /* each worker's own (the config is its private copy after the fork) */
    int64_t *cur_weight; /* smooth weighted round robin */
    uint64_t rng;
    uint32_t rr_next; /* least_conn's tie rotation */
    zerg_worker *w;
    uint64_t *mrow;   /* registered: the worker's row of the shared metrics */
    zg_up_hc *checks; /* the checking worker: one per server */
    /* api->upstream_tls: the servers speak TLS (zg_tls_client.h), so the
     * health checks do too; NULL: plain TCP */
    const struct zerg_tls_client *tls;
};

/* zg_upstream_pick.c: pure functions over the group and its shared slots */
uint64_t zg_up_clock(void); /* ms, CLOCK_MONOTONIC_COARSE: comparable across workers */
int zg_up_pick(zerg_upstream *u, const uint64_t *tried, uint64_t now, uint32_t hash);
int zg_up_usable(const zerg_upstream *u, const uint64_t *tried, size_t i, uint64_t now);
uint64_t zg_up_rand(uint64_t *state);
uint32_t zg_up_hash_bytes(const void *data, size_t len, uint64_t seed);
size_t zg_up_ring_size(const zerg_upstream *u);
size_t zg_up_ring_build(const zerg_upstream *u, zg_up_ring_point *out, size_t cap);
/* Passive failures: fail_note returns 1 when this failure marked it down. */
int zg_up_fail_note(zg_up_shm_srv *s, const zg_up_server *cf, uint64_t now);
void zg_up_ok_note(zg_up_shm_srv *s);
int zg_up_passive_down(const zg_up_shm_srv *s, uint64_t now);
const char *zg_up_state(const zg_up_server *cf, const zg_up_shm_srv *s, uint64_t now);

static inline void zg_up_tried_set(uint64_t *t, unsigned i)
{
    t[i >> 6] |= (uint64_t)1 << (i & 63);
}
static inline int zg_up_tried_get(const uint64_t *t, unsigned i)
{
    return (int)((t[i >> 6] >> (i & 63)) & 1);
}

/* zg_upstream_conf.c */
zerg_upstream *zg_up_conf(zerg_conf_ctx *cx, const zerg_conf_node *node, const char *name);

/* zg_upstream.c: the api entries */
void zg_up_start(zerg_worker *w, zerg_upstream *u);
void zg_up_stop(zerg_worker *w, zerg_upstream *u);
int zg_up_api_pick(zerg_worker *w, zerg_upstream *u, const void *key, size_t key_len,
                   zerg_upstream_tried *tried);
const char *zg_up_server_addr(const zerg_upstream *u, int i, const struct sockaddr **sa,
                              socklen_t *len);
size_t zg_up_size(const zerg_upstream *u);
const char *zg_up_hash_key(const zerg_upstream *u);
int zg_up_note(zerg_upstream *u, int i, int event, uint64_t n);

/* Counts n in counter k of server i: a plain add to the worker's row (it
 * alone writes it), when the group is registered. */
static inline void zg_up_count(zerg_upstream *u, size_t i, int k, uint64_t n)
{
    if (u->mrow)
        u->mrow[u->servers[i].metric[k]] += n;
}

/* The api table's entries for upstream groups: the core's table and a
 * mock's take them alike. */
#define ZG_UPSTREAM_API_ENTRIES                                                                    \
    .conf_upstream = zg_up_conf, .upstream_start = zg_up_start, .upstream_stop = zg_up_stop,       \
    .upstream_pick = zg_up_api_pick, .upstream_server = zg_up_server_addr,                         \
    .upstream_size = zg_up_size, .upstream_hash_key = zg_up_hash_key, .upstream_note = zg_up_note, \
    .upstream_metrics = zg_up_metrics, .upstream_json = zg_up_json,                                \
    .conf_upstream_metrics = zg_up_metrics_add, .upstream_tls = zg_up_tls

/* zg_upstream_stats.c */
void zg_up_metrics(zerg_text *out, const char *prefix, const char *label,
                   zerg_upstream *const *groups, size_t n);
size_t zg_up_json(const zerg_upstream *u, char *buf, size_t cap);
int zg_up_metrics_add(zerg_conf_ctx *cx, zerg_upstream *u, const char *prefix, const char *label);

/* zg_upstream_health.c: active checks, in one worker */
int zg_up_hc_start(zerg_worker *w, zerg_upstream *u);
void zg_up_hc_stop(zerg_upstream *u);
/* api->upstream_tls: the checks connect with connect_tls */
void zg_up_tls(zerg_upstream *u, const zerg_tls_client *tls);

#endif
