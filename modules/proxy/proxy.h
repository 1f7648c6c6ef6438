/* proxy.h - internal types of the proxy module: configuration, shared-memory
 * layout, per-connection context, and the prototypes shared between its files. */
#ifndef ZERG_PROXY_H
#define ZERG_PROXY_H

#include <stdint.h>
#include <stddef.h>
#include <netinet/in.h>
#include <zerg/module.h>

#define PROXY_MAX_SERVERS 256
#define PROXY_TRIED_WORDS (PROXY_MAX_SERVERS / 64)
#define PROXY_RING_POINTS 100 /* consistent-hash points per unit of weight */
#define PROXY_PENDING_MAX 4   /* client chunks held while the upstream connects */

enum proxy_balance {
    PROXY_BAL_RR = 0,
    PROXY_BAL_LEAST_CONN,
    PROXY_BAL_HASH,
    PROXY_BAL_RANDOM,
};

/* One upstream server from servers[]. */
typedef struct proxy_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char *text;
} proxy_addr;

typedef struct proxy_server {
    proxy_addr addr;
    int64_t weight;        /* 1..1000, default 1 */
    int64_t max_fails;     /* 0 disables passive accounting, default 1 */
    uint64_t fail_timeout; /* ms, default 10s */
    int backup;
    int64_t max_conns; /* 0: unlimited */
    int down;          /* taken out by hand (maintenance): never picked, not checked */
} proxy_server;

typedef struct proxy_hc_conf {
    int enabled;
    uint64_t interval; /* ms */
    uint64_t timeout;  /* ms */
    int64_t rise, fall;
    char *send;
    char *expect;
} proxy_hc_conf;

typedef struct proxy_ring_point {
    uint32_t hash;
    uint16_t srv;
} proxy_ring_point;

typedef struct proxy_upstream {
    int set;
    int balance;
    size_t nservers;
    proxy_server *servers;
    proxy_hc_conf hc;
    /* derived in conf_done */
    proxy_ring_point *ring;
    size_t ring_n;
} proxy_upstream;

/* Shared memory, one per server block: written with __atomic builtins by
 * every worker, read by all. Each server on its own cache line(s). */
typedef struct proxy_shm_srv {
    uint32_t hc_down;   /* 1: taken out by the active health check */
    uint32_t hc_streak; /* consecutive results against the current state (worker 0) */
    uint32_t fails;     /* passive failures in the current window */
    uint32_t _pad0;
    uint64_t fail_start; /* ms: start of the current failure window */
    uint64_t down_until; /* ms: passive down until; kept non-zero while on probation */
    uint64_t active;     /* upstream connections open now (all workers) */
    uint64_t connects;   /* connections established */
    uint64_t failures;   /* failed connects (refused, timeout, ...) */
    uint64_t bytes_in;   /* bytes received from the server */
    uint64_t bytes_out;  /* bytes sent to the server */
    uint64_t hc_checks, hc_failed;
    uint64_t _pad1[3];
} __attribute__((aligned(64))) proxy_shm_srv;

typedef struct proxy_shm {
    uint64_t clients;       /* client connections open now (max_connections) */
    uint64_t clients_total; /* accepted */
    uint64_t rejected;      /* refused by max_connections */
    uint64_t no_server;     /* clients closed because no server was available */
    uint64_t _pad[4];
    proxy_shm_srv srv[];
} proxy_shm;

typedef struct proxy_worker_state proxy_worker_state;

#define PROXY_NAME_MAX 64

typedef struct proxy_conf {
    char *name; /* labels metrics and stats; default "proxyN" (Nth proxy block) */
    proxy_upstream up;
    uint64_t connect_timeout;    /* ms */
    uint64_t idle_timeout;       /* ms, 0: none */
    int64_t next_upstream_tries; /* 0: every server once */
    int proxy_protocol;          /* 0, 1 or 2 */
    int64_t max_connections;     /* 0: unlimited */
    uint64_t buffer_size;        /* per-direction output bound, bytes */
    char *stats_file;
    uint64_t stats_interval; /* ms */
    char *access_log;        /* a line per session (proxy_log.c); NULL: none */
    uint64_t log_buffer;     /* bytes */
    uint64_t log_flush;      /* ms */
    /* derived */
    proxy_shm *shm;
    proxy_worker_state *ws;
    struct proxy_conf *next_named; /* the config's proxy blocks (name check) */
} proxy_conf;

/* Connection kinds (ctx->kind). */
enum { PROXY_K_NONE = 0, PROXY_K_CLIENT, PROXY_K_UPSTREAM, PROXY_K_HEALTH };

/* How a session ended, as its access log line says (the first cause seen). */
enum proxy_end {
    PROXY_END_NONE = 0,
    PROXY_END_CLIENT,    /* the client closed (or half-closed) first */
    PROXY_END_SERVER,    /* the server did */
    PROXY_END_ERROR,     /* a reset or an error on either side */
    PROXY_END_TIMEOUT,   /* idle_timeout */
    PROXY_END_NO_SERVER, /* no server could be reached */
    PROXY_END_REJECTED,  /* max_connections */
};

typedef struct proxy_pending {
    const uint8_t *data;
    size_t len;
    zerg_ref *ref;
} proxy_pending;

typedef struct proxy_hc proxy_hc;

/* Per-connection context (conn_ctx_size), for every kind. */
typedef struct proxy_ctx {
    uint8_t kind;
    uint8_t connected; /* UPSTREAM: on_connect(0) seen */
    uint8_t eof_in;    /* FIN received from this conn */
    uint8_t shut_out;  /* SHUT_WR queued on this conn */
    uint8_t paused;    /* reading paused by us (peer output full, or connecting) */
    uint8_t closing;   /* we called close/abort on it */
    uint8_t counted;   /* UPSTREAM: counted in shm active */
    uint8_t npending;  /* CLIENT: held chunks not yet forwarded */
    uint8_t admitted;  /* CLIENT: counted in shm clients */
    uint16_t tries;    /* CLIENT: connect attempts made */
    int16_t srv;       /* UPSTREAM: server index */
    uint32_t hash;     /* CLIENT: hash of the client address */
    zerg_conn *peer;
    proxy_conf *conf;
    proxy_hc *hc;    /* HEALTH */
    uint64_t rx, tx; /* bytes received from / queued to this conn */
    uint64_t last_ms;
    /* CLIENT, for its access log line */
    uint8_t end;        /* enum proxy_end */
    int16_t last_srv;   /* the server last tried, -1: none */
    int64_t connect_ms; /* from open to the upstream connected, -1: never */
    uint64_t open_ms;   /* proxy_now() at open */
    int64_t open_unix;  /* seconds since the epoch at open */
    uint64_t tried[PROXY_TRIED_WORDS];
    proxy_pending pending[PROXY_PENDING_MAX];
} proxy_ctx;

/* Per-worker state of one server block (private memory). */
struct proxy_worker_state {
    zerg_worker *w;
    proxy_conf *conf;
    int64_t *cur_weight; /* smooth weighted round robin */
    uint64_t rng;
    uint32_t rr_next;
    uint64_t last_nolog_ms;
    proxy_hc *hc; /* worker 0 with health checks: one per server */
    zerg_timer stats_timer;
    zerg_logfile *log; /* access_log, in this worker */
    int64_t log_sec;   /* log_time is for this second */
    char log_time[32];
    proxy_worker_state *next;
};

/* The first cause a session ends by is the one it is logged with. */
static inline void proxy_end_by(proxy_ctx *client, int why)
{
    if (client && !client->end)
        client->end = (uint8_t)why;
}

/* ---- proxy_balance.c: pure functions, no zerg api ---------------------- */

typedef struct proxy_pick_ctx {
    const proxy_upstream *up;
    proxy_shm_srv *srv;    /* shm array, nservers */
    int64_t *cur_weight;   /* nservers, SWRR state */
    uint64_t *rng;         /* xorshift state */
    uint32_t *rr_next;     /* tie rotation */
    const uint64_t *tried; /* bitmap or NULL */
    uint64_t now;          /* ms, CLOCK_MONOTONIC */
    uint32_t hash;         /* client hash (balance hash) */
} proxy_pick_ctx;

int proxy_pick(const proxy_pick_ctx *p);
int proxy_usable(const proxy_pick_ctx *p, size_t i);
int proxy_pick_rr(const proxy_pick_ctx *p, int backup);
int proxy_pick_least_conn(const proxy_pick_ctx *p, int backup);
int proxy_pick_hash(const proxy_pick_ctx *p, int backup);
int proxy_pick_random(const proxy_pick_ctx *p, int backup);
uint64_t proxy_rand(uint64_t *state);

uint32_t proxy_hash_bytes(const void *data, size_t len, uint64_t seed);
uint32_t proxy_hash_sockaddr(const struct sockaddr *sa);
/* Builds the ring for the primary servers into out (capacity cap points);
 * returns the number of points. proxy_ring_size() says how many are needed. */
size_t proxy_ring_size(const proxy_upstream *up);
size_t proxy_ring_build(const proxy_upstream *up, proxy_ring_point *out, size_t cap);

/* Passive failure accounting on one server's shared slot. */
/* Returns 1 when this failure marked the server down. */
int proxy_fail_note(proxy_shm_srv *s, const proxy_server *cf, uint64_t now);
void proxy_ok_note(proxy_shm_srv *s);
int proxy_passive_down(const proxy_shm_srv *s, uint64_t now);

static inline void proxy_tried_set(uint64_t *t, unsigned i)
{
    t[i >> 6] |= (uint64_t)1 << (i & 63);
}
static inline int proxy_tried_get(const uint64_t *t, unsigned i)
{
    return (int)((t[i >> 6] >> (i & 63)) & 1);
}

/* ---- proxy_pp.c: PROXY protocol headers (pure) ------------------------ */

#define PROXY_PP_MAX 232 /* v2 with two IPv6 addresses is 52; v1 at most 107 */
/* Encodes a v1 or v2 header for a connection from src to dst (either may be
 * NULL or AF_UNSPEC: v1 then says UNKNOWN, v2 uses the LOCAL command).
 * Returns the length, or 0 if cap is too small or version is unknown. */
size_t proxy_pp_encode(int version, const struct sockaddr *src, const struct sockaddr *dst,
                       uint8_t *out, size_t cap);

/* ---- the rest uses the core ------------------------------------------- */

extern const zerg_api *proxy_api;
extern const zerg_module zerg_module_info;
extern const zerg_directive proxy_directives[];

uint64_t proxy_now(void);

/* A config starts being parsed (from the load hook). */
void proxy_conf_start(void);
int proxy_conf_init(zerg_conf_ctx *cx, void *conf);
int proxy_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, void *conf);

void proxy_on_open(zerg_conn *c);
void proxy_on_connect(zerg_conn *c, int status);
size_t proxy_on_data(zerg_conn *c, const uint8_t *data, size_t len);
void proxy_on_eof(zerg_conn *c);
void proxy_on_drain(zerg_conn *c);
void proxy_on_timeout(zerg_conn *c);
void proxy_on_close(zerg_conn *c, int err);

/* proxy_health.c */
int proxy_hc_start(zerg_worker *w, proxy_worker_state *ws);
void proxy_hc_stop(proxy_worker_state *ws);
void proxy_hc_on_connect(zerg_conn *c, proxy_ctx *x, int status);
size_t proxy_hc_on_data(zerg_conn *c, proxy_ctx *x, const uint8_t *data, size_t len);
void proxy_hc_on_timeout(zerg_conn *c, proxy_ctx *x);
void proxy_hc_on_close(zerg_conn *c, proxy_ctx *x, int err);

/* proxy_module.c: this worker's server blocks, in config order */
const proxy_worker_state *proxy_worker_states(void);
/* proxy_log.c: the access log (a line per session) */
int proxy_parse_access_log(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field);
int proxy_log_open(proxy_worker_state *ws);
void proxy_log_session(zerg_conn *c, proxy_ctx *x);
/* proxy_stats.c */
void proxy_metrics(zerg_worker *w, zerg_text *out);
size_t proxy_stats_format(const proxy_conf *cf, char *buf, size_t cap);
void proxy_stats_start(proxy_worker_state *ws);
void proxy_stats_stop(proxy_worker_state *ws);
/* proxy_module.c: exported for status pages (dlsym "zerg_proxy_status") */
ZERG_MODULE_EXPORT size_t zerg_proxy_status(char *buf, size_t cap);

#endif
