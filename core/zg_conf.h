/* zg_conf.h - the parsed zerg.yaml: core settings, server blocks, the modules
 * they use, and the directive engine that fills them from YAML. */
#ifndef ZG_CONF_H
#define ZG_CONF_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <yaml.h>
#include <zerg/module.h>

typedef struct zg_module zg_module;

typedef struct zg_uring_conf {
    uint64_t entries;    /* SQ entries */
    uint64_t cq_entries; /* 0: 4 x entries */
    uint64_t buffers;    /* provided buffers (power of two) */
    uint64_t buffer_size;
    uint64_t send_zc_threshold; /* 0 disables SEND_ZC */
    uint64_t output_high, output_low;
    int sqpoll;
    int64_t sqpoll_cpu; /* -1: the worker's own CPU */
    char *incremental;  /* auto | true | false */
    int fixed_files;
    int fixed_outbound;      /* outbound sockets into the fixed-file table too */
    int send_zc_loopback;    /* SEND_ZC for loopback peers too (it only costs there) */
    int64_t batch_wait_usec; /* wait up to this long for batch_size completions */
    int64_t batch_size;
} zg_uring_conf;

typedef struct zg_addr {
    struct sockaddr_storage ss;
    socklen_t len;
    char *text;
} zg_addr;

typedef struct zg_server {
    unsigned index;
    zg_addr *addrs;
    size_t naddrs;
    const char *module_name;
    zg_module *module;
    void *module_conf;
    int64_t backlog;
    int want_peer;                   /* accept into plain fds so conn_peer works */
    int default_server;              /* the default of the blocks sharing its addresses */
    int proxy_protocol;              /* connections start with a PROXY protocol header */
    uint64_t proxy_protocol_timeout; /* ms allowed for that header */
    int64_t unix_mode;               /* chmod of its unix sockets' files; -1: umask */
    int64_t max_per_client;          /* max_connections_per_client; 0: no limit */
    struct zg_climit *climit;        /* its table, in shared memory */
    int lingering_close;             /* ZG_LINGER_*: reading on after a graceful close */
    uint64_t lingering_time;         /* ms it lasts at most */
    uint64_t lingering_timeout;      /* ms it waits for each read */
    struct zg_tls_conf *tls;         /* its tls: key (zg_tls_conf.h), or NULL */
    zerg_str_list server_name;       /* its names (lowercase), for SNI and the module's Host */
} zg_server;

/* lingering_close (as nginx's): never, when input is left unread, always */
enum { ZG_LINGER_OFF, ZG_LINGER_ON, ZG_LINGER_ALWAYS };

typedef struct zg_shm {
    struct zg_shm *next;
    void *ptr;
    size_t size;
} zg_shm;

typedef struct zg_arena_block zg_arena_block;

typedef struct zg_conf_file {
    struct zg_conf_file *next;
    char *path;
} zg_conf_file;

typedef struct zg_config {
    char *file;
    zg_conf_file *included; /* the files include items read, in order (zerg -T) */
    char *prefix;
    int64_t worker_processes; /* 0 = auto, resolved by zg_conf_workers() */
    int *cpus;                /* explicit worker_cpu_affinity, or NULL */
    size_t ncpus;
    int64_t worker_connections;
    int listen_shared; /* listen_sockets: shared (one socket per address) */
    int64_t worker_rlimit_nofile;
    int64_t max_handshakes; /* TLS connections in handshake at once, per worker */
    uint64_t worker_shutdown_timeout;
    uint64_t worker_memory_release; /* ms a pool's spare memory waits; 0: kept */
    char *user, *group;
    char *pid;
    char *error_log_path;
    int error_log_level;
    char *modules_path;
    zerg_str_list load_modules;
    zg_uring_conf uring;
    zg_server *servers;
    size_t nservers;
    zg_module **modules; /* loaded for this config, in load_modules order */
    size_t nmodules;
    size_t max_conn_ctx; /* largest conn_ctx_size among the modules */
    zg_arena_block *arena;
    zg_shm *shm;
    struct zg_tls_conf *tls_confs; /* every block's TLS context, freed with the config */
    /* modules' settings of TLS to upstreams (zg_tls_client.h), freed with it */
    struct zerg_tls_client *tls_clients;
} zg_config;

/* The parse context handed to modules as zerg_conf_ctx. */
struct zerg_conf_ctx {
    zg_config *cfg;
    yaml_document_t *doc;
    const char *file;
    char *err; /* first error, "file:line:col: message" */
    size_t errlen;
    int failed;
    zg_server *server;                 /* the server block being parsed */
    const zerg_conf_node *server_node; /* its node: where a NULL-node error points */
    const char *key;                   /* the directive a generic parser reads: errors name it */
};

/* Load and validate a config; modules are dlopened as load_modules says.
 * NULL with a message in err on failure. */
zg_config *zg_conf_load(const char *file, const char *prefix, char *err, size_t errlen);
void zg_conf_free(zg_config *cfg);
/* worker_processes resolved (auto = CPUs allowed to this process). */
int zg_conf_workers(const zg_config *cfg);
/* CPU for worker i: the explicit list, else the i-th allowed CPU. */
int zg_conf_worker_cpu(const zg_config *cfg, int i);
/* Whether two listen addresses are the same socket address. */
int zg_addr_same(const zg_addr *x, const zg_addr *y);
/* The block that accepts for srv's address a: the default_server among the
 * blocks listening there, else the first of them. */
const zg_server *zg_conf_addr_owner(const zg_config *cfg, const zg_server *srv, size_t a);
/* api->conf_server_names: the block's server_name to its module, or the
 * module's (from its own section) to the block. */
int zg_conf_server_names(zerg_conf_ctx *cx, zerg_str_list *names);
/* A path relative to the prefix (or as is when absolute). */
char *zg_conf_path(zerg_conf_ctx *cx, const char *p);
/* The parser of a key naming a file or folder (field: char *): a non-empty
 * string, taken from the prefix when relative. */
int zg_conf_parse_path(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field);

/* The directive engine (zg_conf_parse.c), also behind the api table. */
int zg_conf_apply(zerg_conf_ctx *cx, const zerg_conf_node *map, const zerg_directive *d, void *base,
                  const char *skip_key);
int zg_conf_error(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void *zg_conf_alloc(zerg_conf_ctx *cx, size_t size);
void zg_conf_arena_free(zg_config *cfg);
char *zg_conf_strdup(zerg_conf_ctx *cx, const char *s);
int zg_node_kind(zerg_conf_ctx *cx, const zerg_conf_node *n);
const char *zg_node_scalar(zerg_conf_ctx *cx, const zerg_conf_node *n);
size_t zg_node_len(zerg_conf_ctx *cx, const zerg_conf_node *n);
const zerg_conf_node *zg_node_item(zerg_conf_ctx *cx, const zerg_conf_node *n, size_t i);
const char *zg_node_key(zerg_conf_ctx *cx, const zerg_conf_node *n, size_t i);
const zerg_conf_node *zg_node_get(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *key);
int zg_conf_size(zerg_conf_ctx *cx, const zerg_conf_node *n, uint64_t *out);
int zg_conf_msec(zerg_conf_ctx *cx, const zerg_conf_node *n, uint64_t *out);
int zg_conf_int(zerg_conf_ctx *cx, const zerg_conf_node *n, int64_t min, int64_t max, int64_t *out);
int zg_conf_bool(zerg_conf_ctx *cx, const zerg_conf_node *n, int *out);
int zg_conf_addr(zerg_conf_ctx *cx, const zerg_conf_node *n, struct sockaddr_storage *out,
                 socklen_t *len);
void *zg_conf_shm(zerg_conf_ctx *cx, size_t size);
void zg_conf_want_peer_addr(zerg_conf_ctx *cx);
int zg_conf_str_list(zerg_conf_ctx *cx, const zerg_conf_node *n, zerg_str_list *out);

#endif
