/* zerg/module.h - the public, versioned module ABI of zerg.
 * A module is a shared object that exports one `zerg_module` descriptor named
 * `zerg_module_info` and talks to the core only through the `zerg_api` table. */
#ifndef ZERG_MODULE_H
#define ZERG_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/uio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bumped on every incompatible change of this header. The loader refuses a
 * module whose abi_version differs. Compatible growth (new API entries at the
 * end of zerg_api, new hooks at the end of zerg_module or zerg_conn_hooks,
 * meanings for zerg_directive's reserved words) keeps the version and is
 * detected through the struct_size fields (ZERG_API_HAS). 2: zerg_directive
 * gained its reserved words (and so its size changed), so that it can grow
 * from now on without a new version. */
#define ZERG_ABI_VERSION   2
#define ZERG_MODULE_SYMBOL "zerg_module_info"

/* Opaque core objects. */
typedef struct zerg_worker zerg_worker;       /* one per worker process */
typedef struct zerg_conn zerg_conn;           /* one TCP connection */
typedef struct zerg_ref zerg_ref;             /* a held receive buffer */
typedef struct zerg_conf_ctx zerg_conf_ctx;   /* a config being parsed */
typedef struct zerg_conf_node zerg_conf_node; /* one YAML node */
typedef struct zerg_api zerg_api;
typedef struct zerg_text zerg_text;       /* text the core grows as it is written */
typedef struct zerg_logfile zerg_logfile; /* a buffered log file (access logs) */
struct open_how;                          /* <linux/openat2.h> */

/* ---- Timers ------------------------------------------------------------ */

typedef struct zerg_timer zerg_timer;
typedef void (*zerg_timer_fn)(zerg_timer *t);

/* Embed in your own memory; set fn (and data) before timer_set. The _core
 * words belong to the core: zero them once (memset or = {0}). */
struct zerg_timer {
    zerg_timer_fn fn;
    void *data;
    uint64_t _core[4];
};

/* ---- Counters ---------------------------------------------------------- */

/* Per-worker counters, maintained by the core, readable by every module. */
typedef struct zerg_stats {
    uint64_t conns_active;   /* open now, inbound and outbound */
    uint64_t conns_accepted; /* accepted since worker start */
    uint64_t conns_outbound; /* outbound connects started */
    uint64_t conns_closed;
    uint64_t bytes_in;
    uint64_t bytes_out;
    uint64_t enobufs;         /* multishot recv ran out of provided buffers */
    uint64_t accept_backoffs; /* EMFILE/ENFILE pauses of accept */
    uint64_t cq_overflows;    /* completions the kernel had to hold back */
    uint64_t sends_zc;        /* sends done with SEND_ZC */
    uint64_t loop_turns;      /* io_uring_enter calls of the event loop */
    uint64_t conns_limited;   /* closed at once: the client had max_connections_per_client */
    uint64_t bytes_copied;    /* received bytes queued as a copy: receive buffers ran low */
    uint64_t conn_bytes_held; /* gauge: bytes the connections hold now (queued output,
                               * input held while paused or left unconsumed) */
    uint64_t sends_splice;    /* splices of file bytes into sockets (api->write_file) */
    uint64_t bytes_splice;    /* bytes they sent */
} zerg_stats;

/* ---- Logging ----------------------------------------------------------- */

enum zerg_log_level {
    ZERG_LOG_ERROR = 0,
    ZERG_LOG_WARN = 1,
    ZERG_LOG_NOTICE = 2,
    ZERG_LOG_INFO = 3,
    ZERG_LOG_DEBUG = 4,
};

/* ---- Configuration ----------------------------------------------------- */

/* A module declares the keys of its section (servers[].<module name>) as a
 * table of directives, ended by an entry whose key is NULL. The core checks
 * unknown keys and types and reports "file:line:col: message" itself. */
typedef enum zerg_conf_type {
    ZERG_CONF_STR,      /* char *        (copied into the config's arena) */
    ZERG_CONF_INT,      /* int64_t       (range min..max when max > min) */
    ZERG_CONF_BOOL,     /* int           (true/false, on/off, yes/no) */
    ZERG_CONF_SIZE,     /* uint64_t      bytes: 512, 16k, 1m, 2g */
    ZERG_CONF_MSEC,     /* uint64_t      milliseconds: 500ms, 60s, 10m, 1h */
    ZERG_CONF_STR_LIST, /* zerg_str_list (a scalar or a sequence of them) */
    ZERG_CONF_CUSTOM,   /* parse() decides; it gets the node itself */
} zerg_conf_type;

typedef struct zerg_str_list {
    size_t n;
    char **items;
} zerg_str_list;

typedef struct zerg_directive {
    const char *key;
    zerg_conf_type type;
    size_t offset; /* offsetof(your_conf, field) */
    /* CUSTOM only: field = (char *)conf + offset. Return 0, or -1 after
     * api->conf_error(). */
    int (*parse)(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field);
    int64_t min, max; /* INT/SIZE/MSEC bounds, checked when max > min */
    /* Room to grow. Directive tables are arrays, so a longer struct would
     * break every built module: these unnamed words reserve 32 bytes, which
     * initializers skip (no row has to spell them). A later header names
     * a word; its core reads the word only from modules built against that
     * header (as their zerg_module's struct_size tells), never from older
     * ones, so what an older table holds there does not matter. */
    uint64_t : 64;
    uint64_t : 64;
    uint64_t : 64;
    uint64_t : 64;
} zerg_directive;

#define ZERG_DIRECTIVE_END                                                                         \
    {                                                                                              \
        NULL, 0, 0, NULL, 0, 0                                                                     \
    }

enum zerg_node_kind {
    ZERG_NODE_NONE = 0,
    ZERG_NODE_SCALAR,
    ZERG_NODE_SEQ,
    ZERG_NODE_MAP,
};

/* ---- The module descriptor --------------------------------------------- */

/* Hooks run in the worker process on its single thread, never concurrently.
 * Every hook may call any api function. For a given connection the order is:
 *   on_open | on_connect, then any number of on_data / on_eof / on_drain /
 *   on_timeout and file callbacks, then on_close exactly once, last.
 * The conn pointer and its ctx are valid from the first hook to on_close. */
typedef struct zerg_module {
    uint32_t abi_version; /* ZERG_ABI_VERSION */
    uint32_t struct_size; /* sizeof(zerg_module) */
    const char *name;     /* the name used in load_modules and servers[].module */
    const char *version;  /* the module's own version string */

    size_t conn_ctx_size; /* bytes of per-connection state the core reserves
                             (zeroed at open); see api->conn_ctx() */
    size_t conf_size;     /* bytes of per-server config (zeroed, then
                             conf_init, then the directives fill it) */
    const zerg_directive *directives;

    /* Master, right after each dlopen: at start, at every reload and for
     * zerg -t (each config generation maps its own copy). Keep the api
     * pointer. Non-zero refuses the module. */
    int (*load)(const zerg_api *api);
    /* Master: defaults for one server block's conf, before its keys. */
    int (*conf_init)(zerg_conf_ctx *cx, void *conf);
    /* Master: after the keys; check cross-key rules, derive tables.
     * section is the module's own mapping node (may be NULL if absent). */
    int (*conf_done)(zerg_conf_ctx *cx, const zerg_conf_node *section, void *conf);

    /* Worker: once after the ring exists, then once per server block that
     * uses this module (conf is this process's private copy). Non-zero
     * fails the worker's start (a reload then keeps the old workers). */
    int (*worker_init)(zerg_worker *w);
    int (*server_init)(zerg_worker *w, void *conf);
    /* Worker: stop taking new work (reload or graceful stop). The core has
     * stopped accepting; close idle connections, finish busy ones. */
    void (*worker_drain)(zerg_worker *w);
    /* Worker: SIGUSR1, reopen log files. */
    void (*worker_reopen)(zerg_worker *w);
    void (*worker_exit)(zerg_worker *w);

    /* A connection was accepted on one of the module's listeners. */
    void (*on_open)(zerg_conn *c);
    /* An api->connect() finished: status 0, or -errno (-ETIMEDOUT on the
     * connect timeout). On failure on_close follows. */
    void (*on_connect)(zerg_conn *c, int status);
    /* Bytes arrived. Return how many were consumed; the core keeps the rest
     * and presents it again, joined with what comes next (up to
     * api->conn_set_input_limit()), or alone once reading resumes after
     * api->pause_read(): a module that cannot take input now returns what
     * it used and pauses, and keeps none itself. Never called from inside
     * on_data for the same connection. Bytes may be held past the call with
     * api->hold(). */
    size_t (*on_data)(zerg_conn *c, const uint8_t *data, size_t len);
    /* The peer shut its write side (FIN). Default when NULL: close. */
    void (*on_eof)(zerg_conn *c);
    /* The output queue drained below the low-water mark after having been
     * above it, or became empty after api->conn_want_drain(). */
    void (*on_drain)(zerg_conn *c);
    /* api->conn_timeout() expired. Default when NULL: close at once, queued
     * output dropped (on_close gets -ETIMEDOUT). */
    void (*on_timeout)(zerg_conn *c);
    /* Last call for c: err is 0 for an orderly close or -errno (the socket's
     * error, -ETIMEDOUT, -EMSGSIZE when unconsumed input passed the input
     * limit, -ECANCELED when the worker stops). Release what the ctx owns. */
    void (*on_close)(zerg_conn *c, int err);

    /* -- appended during ABI 1 (every ABI 2 core has them; the core reads
     *    them only when struct_size covers them) ---------------------------- */
    uint32_t flags; /* ZERG_MODULE_* */
    /* Worker: append this module's metrics to out (api->text_printf) in the
     * Prometheus text format: for each family a "# HELP" and a "# TYPE" line,
     * then all its samples; names start with zerg_<module name>_. Called
     * when a status page asks (api->metrics), never on its own. */
    void (*metrics)(zerg_worker *w, zerg_text *out);

    /* -- appended during ABI 2 (read only when struct_size covers it) ---- */
    /* The application protocols the module speaks, as TLS's ALPN names
     * them, in its order of preference, ended by NULL (NULL: none): the
     * default of the alpn key of a server block with tls: (zerg.yaml(5)). */
    const char *const *alpn;
    /* Master, after conf_done: the protocols one server block (conf) offers
     * by ALPN when its tls: has no alpn key, as alpn; NULL: alpn's. A
     * block's own keys can change them (the http module's http2 adds h2).
     * May be NULL. Appended during ABI 2 (read only when struct_size
     * covers it). */
    const char *const *(*conf_alpn)(const void *conf);
} zerg_module;

/* Name-based virtual hosts: several server blocks of this module may share a
 * listen address. Connections arrive with the conn_conf of the address's
 * default block (the one with `default_server: true`, else the first); the
 * module picks a block per request among api->conn_servers(). */
#define ZERG_MODULE_VHOSTS (1u << 0)

/* Export the descriptor:
 *   ZERG_MODULE_EXPORT const zerg_module zerg_module_info = { ... };  */
#define ZERG_MODULE_EXPORT __attribute__((visibility("default")))

/* ---- Upstream groups ---------------------------------------------------- */

/* A group of upstream servers with its balancing method, passive failure
 * accounting and active health checks, parsed and kept by the core
 * (api->conf_upstream; zerg-module(3), UPSTREAM GROUPS). */
typedef struct zerg_upstream zerg_upstream;

#define ZERG_UPSTREAM_MAX_SERVERS 256

/* The servers one request (or session) has tried: zero it before the first
 * upstream_pick, which adds each server it returns. */
typedef struct zerg_upstream_tried {
    uint64_t bits[ZERG_UPSTREAM_MAX_SERVERS / 64];
} zerg_upstream_tried;

/* What happened with a server, for api->upstream_note. */
enum zerg_upstream_event {
    ZERG_UPSTREAM_OPEN = 1, /* a connection to it starts serving: counted as active
                               (least_conn, random, max_conns) until CLOSE */
    ZERG_UPSTREAM_CLOSE,    /* that connection ended or went idle */
    ZERG_UPSTREAM_OK,       /* it connected (answered): ends its probation */
    ZERG_UPSTREAM_FAIL,     /* it failed (refused, timed out, reset): counts toward max_fails */
    ZERG_UPSTREAM_ERROR,    /* a connect failed here (no descriptor...): counted, not its fault */
    ZERG_UPSTREAM_BYTES_IN, /* n bytes received from it */
    ZERG_UPSTREAM_BYTES_OUT /* n bytes sent to it */
};

/* ---- Shared metrics ----------------------------------------------------- */

/* A series in the metrics the master keeps in shared memory for its whole
 * life (api->metric_add): every worker has its own row of values, a status
 * page prints their sum, and the counters of workers that exited stay in it. */
enum zerg_metric_type {
    ZERG_METRIC_COUNTER = 1, /* only grows; kept when its worker exits */
    ZERG_METRIC_GAUGE,       /* a level (open connections): gone with its worker */
    ZERG_METRIC_HISTOGRAM,   /* nbounds + 1 bucket counts, then the sum of what was observed */
};

typedef struct zerg_metric_def {
    uint32_t struct_size; /* sizeof(zerg_metric_def) */
    int type;             /* ZERG_METRIC_* */
    const char *name;     /* zerg_<module name>_..., a histogram's without _bucket */
    const char *labels;   /* 'k="v",k2="v2"' (escaped as Prometheus wants), or NULL */
    const char *help;
    /* histograms: the buckets' upper bounds, ascending, in the unit the module
     * observes (at most 32); scale turns that unit into the printed one (1e-3:
     * milliseconds observed, seconds printed; 0 means 1) */
    const uint64_t *bounds;
    size_t nbounds;
    double scale;
} zerg_metric_def;

/* Counts v in histogram h of a row (api->metric_row): one bucket and the sum. */
static inline void zerg_histogram_observe(uint64_t *row, int64_t h, const uint64_t *bounds,
                                          size_t nbounds, uint64_t v)
{
    size_t i = 0;
    while (i < nbounds && v > bounds[i])
        i++;
    row[h + (int64_t)i]++;
    row[h + (int64_t)nbounds + 1] += v;
}

/* ---- TLS ------------------------------------------------------------------ */

/* What api->conn_tls tells of a TLS connection. The caller sets struct_size
 * (sizeof(zerg_tls_info)); the core fills the members it covers, so that
 * members appended later stay out of reach of older modules. The strings
 * stay valid until the connection's on_close. */
typedef struct zerg_tls_info {
    uint32_t struct_size;
    int resumed;             /* the session was resumed (a ticket), not a full handshake */
    const char *version;     /* "TLSv1.2", "TLSv1.3" */
    const char *cipher;      /* OpenSSL's name: "TLS_AES_256_GCM_SHA384" */
    const char *server_name; /* the name the client asked for (SNI), or NULL */
    const char *alpn;        /* the ALPN protocol chosen, alpn_len bytes (no NUL), or NULL */
    size_t alpn_len;
    /* -- appended: name-based virtual hosts and client certificates ---- */
    /* The block whose TLS settings the handshake used (the one the SNI
     * name selected, else the address's default): its index in
     * api->conn_servers(c). */
    size_t sni_server;
    /* For each block of api->conn_servers(c), in that order, a number for
     * its TLS settings: blocks with equal numbers have the same
     * certificates, protocols, ciphers, ALPN list and client verification,
     * so a request for one may be served on a connection made for the other
     * (else 421 Misdirected Request). NULL when unknown. */
    const uint32_t *server_tls;
    /* The client certificate's subject (RFC 2253: "CN=alice,O=Example"),
     * NULL when the client sent none (verify_client off never asks). */
    const char *client_s_dn;
    /* Its verification, as nginx's $ssl_client_verify: "SUCCESS",
     * "FAILED:reason" (verify_client optional) or "NONE". */
    const char *client_verify;
} zerg_tls_info;

/* The settings of TLS connections to upstreams (api->conf_tls_client),
 * kept by the core with the config. */
typedef struct zerg_tls_client zerg_tls_client;

/* ---- The API table ----------------------------------------------------- */

typedef void (*zerg_done_fn)(void *arg);
typedef void (*zerg_io_fn)(void *arg, ssize_t res);

/* The hooks of outbound connections made with api->connect_with, so that
 * they need not share the module's hooks with its inbound connections.
 * Each has the meaning of the zerg_module hook of the same name (NULL:
 * that hook's default). The set must outlive its connections (a static
 * const). Later hooks are only appended; the core reads those that
 * struct_size covers. */
typedef struct zerg_conn_hooks {
    uint32_t struct_size; /* sizeof(zerg_conn_hooks) */
    void (*on_connect)(zerg_conn *c, int status);
    size_t (*on_data)(zerg_conn *c, const uint8_t *data, size_t len);
    void (*on_eof)(zerg_conn *c);
    void (*on_drain)(zerg_conn *c);
    void (*on_timeout)(zerg_conn *c);
    void (*on_close)(zerg_conn *c, int err);
} zerg_conn_hooks;

struct zerg_api {
    uint32_t abi_version; /* ZERG_ABI_VERSION */
    uint32_t struct_size; /* sizeof(zerg_api) of the core: check before using
                             entries newer than your header */

    /* Logging: goes to error_log, tagged with the process ("worker 3");
     * start your message with your module's name. */
    void (*log)(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

    /* -- configuration (master, inside conf hooks and directive parsers) -- */
    int (*conf_error)(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *fmt, ...)
        __attribute__((format(printf, 3, 4))); /* records file:line:col (n NULL: the server
                                                  block's); returns -1 */
    void *(*conf_alloc)(zerg_conf_ctx *cx, size_t size); /* zeroed, lives as long as the config */
    char *(*conf_strdup)(zerg_conf_ctx *cx, const char *s);
    /* Apply a directive table to a mapping node (nested blocks such as
     * locations or upstream servers). Unknown keys are errors. */
    int (*conf_apply)(zerg_conf_ctx *cx, const zerg_conf_node *map, const zerg_directive *d,
                      void *conf);
    int (*node_kind)(zerg_conf_ctx *cx, const zerg_conf_node *n);
    const char *(*node_scalar)(zerg_conf_ctx *cx,
                               const zerg_conf_node *n);            /* NULL if not a scalar */
    size_t (*node_len)(zerg_conf_ctx *cx, const zerg_conf_node *n); /* seq/map items */
    const zerg_conf_node *(*node_item)(zerg_conf_ctx *cx, const zerg_conf_node *n, size_t i);
    const char *(*node_key)(zerg_conf_ctx *cx, const zerg_conf_node *map, size_t i);
    const zerg_conf_node *(*node_get)(zerg_conf_ctx *cx, const zerg_conf_node *map,
                                      const char *key);
    int (*conf_size)(zerg_conf_ctx *cx, const zerg_conf_node *n, uint64_t *out);
    int (*conf_msec)(zerg_conf_ctx *cx, const zerg_conf_node *n, uint64_t *out);
    int (*conf_int)(zerg_conf_ctx *cx, const zerg_conf_node *n, int64_t min, int64_t max,
                    int64_t *out);
    int (*conf_bool)(zerg_conf_ctx *cx, const zerg_conf_node *n, int *out);
    /* "1.2.3.4:80", "[::1]:80", "host:80" (resolved now, first address). */
    int (*conf_addr)(zerg_conf_ctx *cx, const zerg_conf_node *n, struct sockaddr_storage *out,
                     socklen_t *len);
    /* Memory shared by the master and all workers of this config generation
     * (MAP_SHARED, zeroed). Only from conf hooks. */
    void *(*conf_shm)(zerg_conf_ctx *cx, size_t size);
    /* The server block being parsed wants client addresses (api->conn_peer):
     * its listeners accept into plain fds instead of fixed files. */
    void (*conf_want_peer_addr)(zerg_conf_ctx *cx);

    /* -- worker ----------------------------------------------------------- */
    unsigned (*worker_id)(zerg_worker *w); /* 0 .. worker_count-1 */
    unsigned (*worker_count)(zerg_worker *w);
    int (*worker_draining)(zerg_worker *w); /* reload or graceful stop under way */
    uint64_t (*now_ms)(zerg_worker *w);     /* monotonic, cached per loop turn */
    int64_t (*unix_time)(zerg_worker *w);   /* wall clock seconds, cached per turn */
    const zerg_stats *(*stats)(zerg_worker *w);
    void (*timer_set)(zerg_worker *w, zerg_timer *t, uint64_t ms); /* (re)arm, ms from now */
    void (*timer_cancel)(zerg_worker *w, zerg_timer *t);
    /* Asynchronous file I/O through the ring: read (write when is_write) at
     * offset off (-1: current position, for O_APPEND logs). cb(arg, res) with
     * bytes or -errno. When owner is non-NULL, owner stays open until cb ran. */
    int (*file_io)(zerg_worker *w, zerg_conn *owner, int is_write, int fd, void *buf, size_t len,
                   int64_t off, zerg_io_fn cb, void *arg);

    /* -- connections ------------------------------------------------------ */
    void *(*conn_ctx)(zerg_conn *c);  /* conn_ctx_size bytes, zeroed at open */
    void *(*conn_conf)(zerg_conn *c); /* the module conf of its server block */
    zerg_worker *(*conn_worker)(zerg_conn *c);
    /* Client address (only when conf_want_peer_addr was called for the server
     * block, else family AF_UNSPEC); see conn_local for the local end. */
    const struct sockaddr *(*conn_peer)(zerg_conn *c, socklen_t *len);
    int (*conn_closing)(zerg_conn *c);
    size_t (*conn_out_pending)(zerg_conn *c); /* bytes queued, not yet sent */
    /* Output bound: above high the core stops reading c (and calls on_drain
     * once it is back under low). Defaults from uring.output_high/low. */
    void (*conn_set_watermarks)(zerg_conn *c, size_t low, size_t high);
    void (*conn_want_drain)(zerg_conn *c); /* one on_drain when the queue is empty */
    void (*conn_set_input_limit)(zerg_conn *c, size_t max); /* carry-over bound, default 64k */
    void (*conn_timeout)(zerg_conn *c, uint64_t ms);        /* on_timeout in ms; 0 cancels */

    /* Writes return 0, or -EPIPE (closing or shut for writing) or -ENOMEM.
     * Copying writes: the bytes are copied into the output queue. */
    int (*write)(zerg_conn *c, const void *data, size_t len);
    int (*writev)(zerg_conn *c, const struct iovec *iov, int iovcnt);
    /* In-place formatting: a pointer to at least min (<= 4096) writable bytes
     * at the queue tail (*avail says how many), then commit what was used. */
    void *(*write_reserve)(zerg_conn *c, size_t min, size_t *avail);
    void (*write_commit)(zerg_conn *c, size_t used);
    /* Zero-copy writes of memory the caller keeps alive until done(arg) runs
     * (done may be NULL for static memory). done runs after the kernel is
     * finished with the bytes, or when c closes with them unsent. When
     * write_ext fails (returns < 0) done is not called: the memory is yours. */
    int (*write_ext)(zerg_conn *c, const void *data, size_t len, zerg_done_fn done, void *arg);
    /* Receive buffers: hold the buffer containing data (a pointer inside the
     * current on_data range) past the callback... */
    zerg_ref *(*hold)(zerg_conn *c, const void *data);
    void (*release)(zerg_worker *w, zerg_ref *r);
    /* ...and send from it without a copy; consumes one reference of r, also
     * when it fails. hold returns NULL for bytes that are not in a receive
     * buffer (carried-over input joined with new bytes): copy those. While
     * fewer than a quarter of the worker's receive buffers are free,
     * write_ref copies and gives the buffer back at once, so that peers slow
     * to read cannot hold every buffer (stats.bytes_copied counts them). */
    int (*write_ref)(zerg_conn *c, const void *data, size_t len, zerg_ref *r);

    void (*pause_read)(zerg_conn *c); /* no on_data until resume_read */
    /* Presents at once what the core kept: what on_data left (alone, once
     * per resume), then the bytes that came while paused (joined to what
     * is still left), then a FIN that came. Called inside on_data of c, it
     * takes effect when that returns. */
    void (*resume_read)(zerg_conn *c);
    /* After the queued output is sent: shutdown(how) the socket. */
    void (*shutdown)(zerg_conn *c, int how);
    /* Graceful close: send what is queued, then close. */
    void (*close)(zerg_conn *c);
    /* Abortive close: drop the queue, reset the peer (RST) where possible. */
    void (*abort)(zerg_conn *c);
    /* Outbound TCP connection served by module m's hooks, with conf as its
     * conn_conf (may be NULL). Returns the new conn (its ctx zeroed and
     * usable at once) or NULL with errno set; the result comes to
     * on_connect, then on_close if it failed. */
    zerg_conn *(*connect)(zerg_worker *w, const zerg_module *m, void *conf,
                          const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms);

    /* -- appended during ABI 1 (every ABI 2 core has them) --------------- */
    /* A path from the config resolved like the core's own: relative paths
     * are taken from the -p prefix. Lives as long as the config. */
    char *(*conf_path)(zerg_conf_ctx *cx, const char *path);
    /* The local address of c: where an accepted connection came in (the
     * listener's address; the exact one when conf_want_peer_addr was called),
     * or the local end of an outbound one once connected. */
    const struct sockaddr *(*conn_local)(zerg_conn *c, socklen_t *len);
    /* The module confs of every server block listening on c's address, the
     * default first (so confs[0] == conn_conf(c)); returns their number: 1
     * unless the module sets ZERG_MODULE_VHOSTS and blocks share the address,
     * 0 for outbound connections. */
    size_t (*conn_servers)(zerg_conn *c, void *const **confs);
    /* openat2(2) through the ring: cb(arg, fd or -errno), owner as for
     * file_io. path and how are read when the ring takes the request (at the
     * end of the current loop turn): keep both unchanged until cb runs. An
     * open the kernel can answer from its caches completes at once; one that
     * has to read the disk runs in the ring's worker threads, never blocking
     * the loop. */
    int (*file_open)(zerg_worker *w, zerg_conn *owner, int dirfd, const char *path,
                     const struct open_how *how, zerg_io_fn cb, void *arg);
    /* Metrics, for status pages. text_printf appends to a metrics hook's
     * output (out of memory is remembered, and metrics then returns NULL). */
    void (*text_printf)(zerg_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
    /* This worker's metrics in the Prometheus text format (version 0.0.4):
     * the core's counters (zerg_stats), then the metrics hook of each loaded
     * module in load_modules order. The text and *len stay valid until the
     * next call in this worker; NULL when out of memory. */
    const char *(*metrics)(zerg_worker *w, size_t *len);
    /* Buffered log files, for access logs: lines collect in a buffer of
     * buffer bytes that is written through the ring (O_APPEND) once half
     * full, or flush_ms after its first line, so logging never blocks the
     * loop. The core writes out what is buffered when the worker drains,
     * reopens the file on SIGUSR1 (before the modules' worker_reopen) and
     * writes the rest synchronously when the worker exits (after their
     * worker_exit). Opened per worker (worker_init or server_init); NULL with
     * errno set when the file cannot be opened. */
    zerg_logfile *(*logfile_open)(zerg_worker *w, const char *path, size_t buffer,
                                  uint64_t flush_ms);
    /* Room for one line of up to need bytes (need at most buffer / 2), or
     * NULL when the buffer is full while a write is in flight: the line is
     * dropped (and counted: the worker logs the count when it exits). */
    char *(*logfile_reserve)(zerg_logfile *lf, size_t need);
    /* The first n bytes of the room reserve gave are a line (with its '\n'). */
    void (*logfile_commit)(zerg_logfile *lf, size_t n);
    /* -- ABI 2 ------------------------------------------------------------ */
    /* As connect, but the connection is served by hooks instead of its
     * module's hooks (hooks->struct_size must cover on_close, else NULL
     * with errno EINVAL). */
    zerg_conn *(*connect_with)(zerg_worker *w, const zerg_conn_hooks *hooks, void *conf,
                               const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms);

    /* Upstream groups (zerg-module(3), UPSTREAM GROUPS). Master, from conf
     * hooks: parse a group from node (a list of servers, or a mapping with
     * servers, balance, hash_key, max_fails, fail_timeout, health_check),
     * with its shared state; name labels its log lines and metrics. NULL
     * after conf_error. */
    zerg_upstream *(*conf_upstream)(zerg_conf_ctx *cx, const zerg_conf_node *node,
                                    const char *name);
    /* Worker: server_init starts the group in this worker (its health checks
     * run in worker 0 only, once per group); worker_drain stops it. */
    void (*upstream_start)(zerg_worker *w, zerg_upstream *u);
    void (*upstream_stop)(zerg_worker *w, zerg_upstream *u);
    /* The server for the next connection, by the group's balancing method
     * among the servers not in *tried that are up, not down, below max_conns
     * (backups only when no primary is): its index, added to *tried, or -1.
     * key (key_len bytes) is what balance: hash hashes; ignored otherwise. */
    int (*upstream_pick)(zerg_worker *w, zerg_upstream *u, const void *key, size_t key_len,
                         zerg_upstream_tried *tried);
    /* Server i's address, and its name as configured (the return value;
     * NULL when i is out of range). */
    const char *(*upstream_server)(const zerg_upstream *u, int i, const struct sockaddr **sa,
                                   socklen_t *len);
    size_t (*upstream_size)(const zerg_upstream *u); /* its number of servers */
    /* balance: hash's hash_key as configured (default "$remote_addr"), NULL
     * for the other methods: the module says what it names. */
    const char *(*upstream_hash_key)(const zerg_upstream *u);
    /* Accounts event (enum zerg_upstream_event) of server i; n is the bytes
     * of BYTES_IN/OUT. Returns 1 when a FAIL marked the server down. */
    int (*upstream_note)(zerg_upstream *u, int i, int event, uint64_t n);
    /* Per-server metrics of groups (one family each, every group's samples
     * under it): prefix_server_state, _weight, _active, _connects_total,
     * _failures_total, _bytes_in_total, _bytes_out_total,
     * _health_checks_total, _health_checks_failed_total, labelled
     * {label="group name",server="address"}. */
    void (*upstream_metrics)(zerg_text *out, const char *prefix, const char *label,
                             zerg_upstream *const *groups, size_t n);
    /* The servers of u as a JSON list of objects (address, backup, weight,
     * state, active, connects, failures, bytes_in, bytes_out,
     * health_checks, health_failed); returns the length needed, like
     * snprintf (cut at cap). */
    size_t (*upstream_json)(const zerg_upstream *u, char *buf, size_t cap);

    /* -- appended during ABI 2 (check ZERG_API_HAS) ------------------------ */
    /* c's output high-water mark (conn_set_watermarks, else
     * uring.output_high). The core stops reading above it, but input it
     * already read is still presented: a module that starts work for each
     * request it parses (pipelined requests) takes no more while
     * conn_out_pending is above this, and goes on at on_drain. */
    size_t (*conn_out_high)(zerg_conn *c);
    /* shared metrics */
    /* Master, from conf hooks: series def->name{def->labels}, kept in the
     * master's shared metrics for its whole life. Returns its handle, the
     * index of its first value in every worker's row; the same name and
     * labels give the same handle at every reload, so counters go on (a
     * histogram whose bounds changed starts anew). -1 after conf_error (the
     * registry is full, or the name is taken by another type). */
    int64_t (*metric_add)(zerg_conf_ctx *cx, const zerg_metric_def *def);
    /* Worker: this worker's row of values, written only by it, without locks
     * or atomics: row[h] += n for a counter, row[h] = v for a gauge,
     * zerg_histogram_observe(row, h, ...) for a histogram. Never NULL. */
    uint64_t *(*metric_row)(zerg_worker *w);
    /* As metrics, with flags: ZERG_METRICS_PER_WORKER adds each worker's own
     * values (label worker="N",pid="P"; the exited workers' as
     * worker="exited") after the sums. */
    const char *(*metrics_ex)(zerg_worker *w, unsigned flags, size_t *len);
    /* Zero-copy file answers: queue len bytes of the regular file fd from
     * offset off, sent in order with the other writes by splice (file ->
     * pipe -> socket), never copied through user space. fd stays open and
     * yours until done(arg) runs: after the bytes are sent, or when c
     * closes with them unsent. The unsent bytes count toward the output
     * high mark as written bytes do. A file that turns out shorter than
     * off + len closes c. Returns 0; -EAGAIN when no pipe is free now or
     * -EOPNOTSUPP when the kernel cannot splice or c runs over TLS, whose
     * bytes must be encrypted (send the bytes another way: write_ext of a
     * mapping, file_io and write); -EPIPE, -ENOMEM or -EINVAL (len 0) as
     * the other writes. On failure done is not called. */
    int (*write_file)(zerg_conn *c, int fd, uint64_t off, uint64_t len, zerg_done_fn done,
                      void *arg);
    /* Master, from conf hooks, after conf_upstream: u's per-server counters
     * (upstream_metrics' _connects_total ... _health_checks_failed_total)
     * become series of the master's shared metrics, prefix_server_NAME
     * {label="u's name",server="address"}: printed with them, summed over
     * every worker and never going backwards while the master lives (a
     * reload with the same names goes on counting). upstream_metrics then
     * prints only the group's state, weight and active. -1 after conf_error. */
    int (*conf_upstream_metrics)(zerg_conf_ctx *cx, zerg_upstream *u, const char *prefix,
                                 const char *label);
    /* TLS: 1 when c runs over TLS (its server block has a tls: key, or
     * connect_tls made it; once its handshake is done), with
     * *info filled in as far as info->struct_size reaches; 0 for a
     * connection without TLS (*info untouched). */
    int (*conn_tls)(zerg_conn *c, zerg_tls_info *info);
    /* From conf_done: the server block's server_name (a key of the block,
     * which the core matches against a TLS client's SNI). When the block
     * has the key, *names becomes its list (-1 after conf_error when the
     * module's section set one too); when it has none, the block takes
     * *names, a list the module read from its own section (kept as long as
     * the config). */
    int (*conf_server_names)(zerg_conf_ctx *cx, zerg_str_list *names);
    /* How well host (len bytes, lowercase, without port and final dot)
     * matches the best of the server_name patterns names: 0 not at all,
     * higher is better (exact, then *.suffix or .suffix, then prefix.*;
     * a longer wildcard beats a shorter one). The rules the core's SNI
     * choice follows. */
    size_t (*server_names_match)(const zerg_str_list *names, const char *host, size_t len);
    /* TLS to upstreams (zerg-module(3), TLS TO UPSTREAMS). Master, from
     * conf hooks: the client settings of node, a mapping of verify (default
     * true), ca (a PEM file of trusted CAs; default the system's bundle),
     * server_name, session_reuse (default true) and handshake_timeout
     * (default 10s); NULL node: every default. The master builds the client
     * context now: a ca file it cannot load fails the load. NULL after
     * conf_error. */
    zerg_tls_client *(*conf_tls_client)(zerg_conf_ctx *cx, const zerg_conf_node *node);
    /* Worker: as connect_with, but the connection runs TLS as a client with
     * tls's settings. server_name (when tls has none) is sent as SNI and the
     * certificate is verified against it (an IP address literal: against
     * the certificate's addresses, and not sent); NULL: no name. on_connect
     * comes once the handshake is done: 0, or -EPROTO when it failed (the
     * core logged why, with the upstream's address) or -ETIMEDOUT. */
    zerg_conn *(*connect_tls)(zerg_worker *w, const zerg_conn_hooks *hooks, void *conf,
                              const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms,
                              const zerg_tls_client *tls, const char *server_name);
    /* Master, from conf hooks, after conf_upstream: u's servers speak TLS
     * (the module connects to them with connect_tls and tls), so its
     * health checks do too, each server verified against the host of its
     * address as configured (or tls's server_name). */
    void (*upstream_tls)(zerg_upstream *u, const zerg_tls_client *tls);
};

#define ZERG_METRICS_PER_WORKER (1u << 0)

/* Whether the running core's api table has member: a module built against
 * a newer header than the core checks this before it calls an entry added
 * after the first release of its ABI version. */
#define ZERG_API_HAS(api, member)                                                                  \
    ((api)->struct_size >= offsetof(zerg_api, member) + sizeof((api)->member))

#ifdef __cplusplus
}
#endif
#endif /* ZERG_MODULE_H */
