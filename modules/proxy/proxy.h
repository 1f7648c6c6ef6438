/* proxy.h - internal types of the proxy module: configuration, shared-memory
 * layout, per-connection context, and the prototypes shared between its files. */
#ifndef ZERG_PROXY_H
#define ZERG_PROXY_H

#include <stdint.h>
#include <stddef.h>
#include <netinet/in.h>
#include <zerg/module.h>

#define PROXY_PENDING_MAX 4 /* client chunks held while the upstream connects */

/* Shared memory, one per server block: the block's own counters (its
 * servers' are the upstream group's). The configuration's: a reload starts
 * them anew, so the metrics count the totals in the master's shared metrics
 * too (proxy_count). */
typedef struct proxy_shm {
    uint64_t clients;       /* client connections open now (max_connections) */
    uint64_t clients_total; /* accepted */
    uint64_t rejected;      /* refused by max_connections */
    uint64_t no_server;     /* clients closed because no server was available */
} proxy_shm;

typedef struct proxy_worker_state proxy_worker_state;

/* The block's counters in the master's shared metrics. */
enum proxy_counter { PROXY_C_CLIENTS, PROXY_C_REJECTED, PROXY_C_NO_SERVER, PROXY_NCOUNTERS };

#define PROXY_NAME_MAX 64

typedef struct proxy_conf {
    char *name;        /* labels metrics and stats; default "proxyN" (Nth proxy block) */
    zerg_upstream *up; /* the core's group (conf_done) */
    const zerg_conf_node *up_node; /* upstream:, parsed in conf_done */
    uint64_t connect_timeout;      /* ms */
    uint64_t idle_timeout;         /* ms, 0: none */
    int64_t next_upstream_tries;   /* 0: every server once */
    int proxy_protocol;            /* 0, 1 or 2 */
    int64_t max_connections;       /* 0: unlimited */
    uint64_t buffer_size;          /* per-direction output bound, bytes */
    char *stats_file;
    uint64_t stats_interval; /* ms */
    char *access_log;        /* a line per session (proxy_log.c); NULL: none */
    uint64_t log_buffer;     /* bytes */
    uint64_t log_flush;      /* ms */
    /* upstream_tls: its node (parsed in conf_done), then the core's client
     * settings: the upstream connections run TLS; NULL: plain TCP */
    const zerg_conf_node *tls_node;
    zerg_tls_client *tls;
    /* derived */
    proxy_shm *shm;
    int64_t metric[PROXY_NCOUNTERS]; /* handles; -1: a core without shared metrics */
    proxy_worker_state *ws;
    struct proxy_conf *next_named; /* the config's proxy blocks (name check) */
} proxy_conf;

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

/* Per-connection context (conn_ctx_size), of a client or an upstream. */
typedef struct proxy_ctx {
    uint8_t connected; /* UPSTREAM: on_connect(0) seen */
    uint8_t eof_in;    /* FIN received from this conn */
    uint8_t shut_out;  /* SHUT_WR queued on this conn */
    uint8_t paused;    /* reading paused by us (peer output full, or connecting) */
    uint8_t closing;   /* we called close/abort on it */
    uint8_t counted;   /* UPSTREAM: counted in shm active */
    uint8_t npending;  /* CLIENT: held chunks not yet forwarded */
    uint8_t admitted;  /* CLIENT: counted in shm clients */
    uint8_t want_key;  /* CLIENT: balance hash keys on the client address */
    uint16_t tries;    /* CLIENT: connect attempts made */
    int16_t srv;       /* UPSTREAM: server index */
    zerg_conn *peer;
    proxy_conf *conf;
    uint64_t rx, tx; /* bytes received from / queued to this conn */
    uint64_t last_ms;
    /* CLIENT, for its access log line */
    uint8_t end;                 /* enum proxy_end */
    int16_t last_srv;            /* the server last tried, -1: none */
    int64_t connect_ms;          /* from open to the upstream connected, -1: never */
    uint64_t open_ms;            /* proxy_now() at open */
    int64_t open_unix;           /* seconds since the epoch at open */
    struct proxy_connecting *cn; /* CLIENT: until its upstream connects */
} proxy_ctx;

/* What a client needs only until its upstream connects (allocated at open,
 * freed then): an idle session holds two small ctxs and nothing else. */
typedef struct proxy_connecting {
    zerg_upstream_tried tried;
    proxy_pending pending[PROXY_PENDING_MAX];
} proxy_connecting;

/* Per-worker state of one server block (private memory). */
struct proxy_worker_state {
    zerg_worker *w;
    proxy_conf *conf;
    uint64_t last_nolog_ms;
    zerg_timer stats_timer;
    uint64_t *mrow;    /* this worker's row of the shared metrics */
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

/* proxy_conn.c: the client side's hooks (the upstream side has its own) */
void proxy_on_open(zerg_conn *c);
size_t proxy_on_data(zerg_conn *c, const uint8_t *data, size_t len);
void proxy_on_eof(zerg_conn *c);
void proxy_on_drain(zerg_conn *c);
void proxy_on_timeout(zerg_conn *c);
void proxy_on_close(zerg_conn *c, int err);

/* proxy_module.c: this worker's server blocks, in config order */
const proxy_worker_state *proxy_worker_states(void);
/* proxy_log.c: the access log (a line per session) */
int proxy_parse_access_log(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field);
int proxy_log_open(proxy_worker_state *ws);
void proxy_log_session(zerg_conn *c, proxy_ctx *x);
/* The block's counter k, by one, in this worker's row (a plain add). */
static inline void proxy_count(const proxy_conf *cf, int k)
{
    if (cf->ws && cf->ws->mrow && cf->metric[k] >= 0)
        cf->ws->mrow[cf->metric[k]]++;
}

/* proxy_stats.c */
int proxy_metrics_add(zerg_conf_ctx *cx, proxy_conf *cf);
void proxy_metrics(zerg_worker *w, zerg_text *out);
size_t proxy_stats_format(const proxy_conf *cf, char *buf, size_t cap);
void proxy_stats_start(proxy_worker_state *ws);
void proxy_stats_stop(proxy_worker_state *ws);
/* proxy_module.c: exported for status pages (dlsym "zerg_proxy_status") */
ZERG_MODULE_EXPORT size_t zerg_proxy_status(char *buf, size_t cap);

#endif
