/* zg_conf.c - zerg.yaml: the core's directive tables, server blocks, module
 * sections, and the checks that span keys (duplicate listens, modules). */
#define _GNU_SOURCE
#include "zg_conf.h"
#include "zg_climit.h"
#include "zg_conf_include.h"
#include "zg_log.h"
#include "zg_module.h"
#include "zg_server_name.h"
#include "zg_tls_client.h"
#include "zg_tls_conf.h"
#include "zg_util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define CORE_OFF(f)  offsetof(zg_config, f)
#define URING_OFF(f) offsetof(zg_uring_conf, f)

static int parse_workers(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = zg_node_scalar(cx, n);
    if (s && strcmp(s, "auto") == 0) {
        *(int64_t *)field = 0;
        return 0;
    }
    if (!s || zg_parse_int(s, field) < 0 || *(int64_t *)field < 1 || *(int64_t *)field > 1024)
        return zg_conf_error(cx, n, "worker_processes: expected auto or a number 1..1024");
    return 0;
}

static int parse_affinity(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    (void)field;
    const char *s = zg_node_scalar(cx, n);
    if (s && strcmp(s, "auto") == 0)
        return 0;
    if (zg_node_kind(cx, n) != ZERG_NODE_SEQ || zg_node_len(cx, n) == 0)
        return zg_conf_error(cx, n, "worker_cpu_affinity: expected auto or a list of CPU ids");
    zg_config *cfg = cx->cfg;
    cfg->ncpus = zg_node_len(cx, n);
    if (!(cfg->cpus = zg_conf_alloc(cx, cfg->ncpus * sizeof(int))))
        return -1;
    for (size_t i = 0; i < cfg->ncpus; i++) {
        int64_t v;
        if (zg_conf_int(cx, zg_node_item(cx, n, i), 0, 4095, &v) < 0)
            return -1;
        cfg->cpus[i] = (int)v;
    }
    return 0;
}

static int parse_level(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = zg_node_scalar(cx, n);
    int level = s ? zg_log_level_parse(s) : -1;
    if (level < 0)
        return zg_conf_error(cx, n, "level: expected error, warn, notice, info or debug");
    *(int *)field = level;
    return 0;
}

int zg_conf_parse_path(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = zg_node_scalar(cx, n);
    if (!s || !*s)
        return zg_conf_error(cx, n, "expected a path");
    return (*(char **)field = zg_conf_path(cx, s)) ? 0 : -1;
}

static const zerg_directive error_log_directives[] = {
    {"path", ZERG_CONF_CUSTOM, 0, zg_conf_parse_path, 0, 0},
    {"level", ZERG_CONF_CUSTOM, CORE_OFF(error_log_level) - CORE_OFF(error_log_path), parse_level,
     0, 0},
    ZERG_DIRECTIVE_END,
};

static int parse_error_log(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    if (zg_node_kind(cx, n) == ZERG_NODE_SCALAR)
        return zg_conf_parse_path(cx, n, field);
    return zg_conf_apply(cx, n, error_log_directives, field, NULL);
}

static int parse_incremental(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = zg_node_scalar(cx, n);
    int b;
    if (s && (strcmp(s, "auto") == 0 || zg_parse_bool(s, &b) == 0))
        return (*(char **)field = zg_conf_strdup(cx, s)) ? 0 : -1;
    return zg_conf_error(cx, n, "incremental: expected auto, true or false");
}

static const zerg_directive uring_directives[] = {
    {"entries", ZERG_CONF_INT, URING_OFF(entries), NULL, 8, 32768},
    {"cq_entries", ZERG_CONF_INT, URING_OFF(cq_entries), NULL, 0, 1 << 20},
    {"buffers", ZERG_CONF_INT, URING_OFF(buffers), NULL, 1, 32768},
    {"buffer_size", ZERG_CONF_SIZE, URING_OFF(buffer_size), NULL, 512, 1 << 24},
    {"sqpoll", ZERG_CONF_BOOL, URING_OFF(sqpoll), NULL, 0, 0},
    {"sqpoll_cpu", ZERG_CONF_INT, URING_OFF(sqpoll_cpu), NULL, -1, 4095},
    {"send_zc_threshold", ZERG_CONF_SIZE, URING_OFF(send_zc_threshold), NULL, 0, 0},
    {"output_high", ZERG_CONF_SIZE, URING_OFF(output_high), NULL, 4096, 1LL << 32},
    {"output_low", ZERG_CONF_SIZE, URING_OFF(output_low), NULL, 0, 1LL << 32},
    {"incremental", ZERG_CONF_CUSTOM, URING_OFF(incremental), parse_incremental, 0, 0},
    {"fixed_files", ZERG_CONF_BOOL, URING_OFF(fixed_files), NULL, 0, 0},
    {"fixed_outbound", ZERG_CONF_BOOL, URING_OFF(fixed_outbound), NULL, 0, 0},
    {"send_zc_loopback", ZERG_CONF_BOOL, URING_OFF(send_zc_loopback), NULL, 0, 0},
    {"batch_wait_usec", ZERG_CONF_INT, URING_OFF(batch_wait_usec), NULL, 0, 100000},
    {"batch_size", ZERG_CONF_INT, URING_OFF(batch_size), NULL, 1, 4096},
    ZERG_DIRECTIVE_END,
};

static int parse_uring(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    return zg_conf_apply(cx, n, uring_directives, field, NULL);
}

static int parse_load_modules(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    return zg_conf_str_list(cx, n, field);
}

static int parse_servers(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field);

static int parse_listen_sockets(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = zg_node_scalar(cx, n);
    if (s && strcmp(s, "per_worker") == 0)
        *(int *)field = 0;
    else if (s && strcmp(s, "shared") == 0)
        *(int *)field = 1;
    else
        return zg_conf_error(cx, n, "listen_sockets: expected per_worker or shared");
    return 0;
}

static const zerg_directive core_directives[] = {
    {"worker_processes", ZERG_CONF_CUSTOM, CORE_OFF(worker_processes), parse_workers, 0, 0},
    {"worker_cpu_affinity", ZERG_CONF_CUSTOM, 0, parse_affinity, 0, 0},
    {"worker_connections", ZERG_CONF_INT, CORE_OFF(worker_connections), NULL, 16, 1 << 20},
    {"max_handshakes", ZERG_CONF_INT, CORE_OFF(max_handshakes), NULL, 1, 1 << 20},
    {"listen_sockets", ZERG_CONF_CUSTOM, CORE_OFF(listen_shared), parse_listen_sockets, 0, 0},
    {"worker_rlimit_nofile", ZERG_CONF_INT, CORE_OFF(worker_rlimit_nofile), NULL, 64, 1 << 24},
    {"worker_shutdown_timeout", ZERG_CONF_MSEC, CORE_OFF(worker_shutdown_timeout), NULL, 0, 0},
    {"worker_memory_release", ZERG_CONF_MSEC, CORE_OFF(worker_memory_release), NULL, 0, 0},
    {"user", ZERG_CONF_STR, CORE_OFF(user), NULL, 0, 0},
    {"group", ZERG_CONF_STR, CORE_OFF(group), NULL, 0, 0},
    {"pid", ZERG_CONF_CUSTOM, CORE_OFF(pid), zg_conf_parse_path, 0, 0},
    {"error_log", ZERG_CONF_CUSTOM, CORE_OFF(error_log_path), parse_error_log, 0, 0},
    {"modules_path", ZERG_CONF_CUSTOM, CORE_OFF(modules_path), zg_conf_parse_path, 0, 0},
    {"load_modules", ZERG_CONF_CUSTOM, CORE_OFF(load_modules), parse_load_modules, 0, 0},
    {"uring", ZERG_CONF_CUSTOM, CORE_OFF(uring), parse_uring, 0, 0},
    ZERG_DIRECTIVE_END,
};

char *zg_conf_path(zerg_conf_ctx *cx, const char *p)
{
    if (p[0] == '/' || strcmp(p, "stderr") == 0 || !cx->cfg->prefix)
        return zg_conf_strdup(cx, p);
    char buf[4096];
    snprintf(buf, sizeof(buf), "%s/%s", cx->cfg->prefix, p);
    return zg_conf_strdup(cx, buf);
}

/* ---- servers ---- */

int zg_addr_same(const zg_addr *x, const zg_addr *y)
{
    return x->len == y->len && memcmp(&x->ss, &y->ss, x->len) == 0;
}

/* A setting of the listener itself that two blocks of one address set
 * differently (what: the other block's, as the message words it). */
static int disagree(zerg_conf_ctx *cx, const zerg_conf_node *a, const zg_addr *addr,
                    const zg_server *o, const char *what)
{
    return zg_conf_error(cx, a,
                         "listen address \"%s\": servers[%u] shares it with %s: the blocks of "
                         "one address must agree",
                         addr->text, o->index, what);
}

/* Address i of srv against this block's earlier ones and earlier blocks':
 * blocks of one module that takes virtual hosts may share an address (one
 * of them the default), nothing else may. */
static int check_shared_addr(zerg_conf_ctx *cx, const zerg_conf_node *a, const zg_server *srv,
                             size_t i)
{
    const zg_addr *addr = &srv->addrs[i];
    for (size_t j = 0; j < i; j++)
        if (zg_addr_same(&srv->addrs[j], addr))
            return zg_conf_error(cx, a, "duplicate listen address \"%s\"", addr->text);
    for (size_t s = 0; s < srv->index; s++) {
        const zg_server *o = &cx->cfg->servers[s];
        for (size_t j = 0; j < o->naddrs; j++) {
            if (!zg_addr_same(&o->addrs[j], addr))
                continue;
            if (o->module != srv->module || !(zg_module_flags(srv->module) & ZERG_MODULE_VHOSTS))
                return zg_conf_error(cx, a,
                                     "listen address \"%s\" is also in servers[%u]: only blocks "
                                     "of one module with virtual hosts (http) may share one",
                                     addr->text, o->index);
            if (o->proxy_protocol != srv->proxy_protocol)
                return disagree(cx, a, addr, o,
                                o->proxy_protocol ? "proxy_protocol on" : "proxy_protocol off");
            if (o->max_per_client != srv->max_per_client)
                return disagree(cx, a, addr, o, "another max_connections_per_client");
            if (o->unix_mode != srv->unix_mode)
                return disagree(cx, a, addr, o, "another unix_mode");
            if (!o->tls != !srv->tls)
                return disagree(cx, a, addr, o, o->tls ? "tls on" : "tls off");
            if (o->default_server && srv->default_server)
                return zg_conf_error(cx, a,
                                     "listen address \"%s\": servers[%u] is its default_server "
                                     "already",
                                     addr->text, o->index);
        }
    }
    return 0;
}

const zg_server *zg_conf_addr_owner(const zg_config *cfg, const zg_server *srv, size_t a)
{
    const zg_server *first = NULL;
    for (size_t s = 0; s < cfg->nservers; s++) {
        const zg_server *o = &cfg->servers[s];
        for (size_t j = 0; j < o->naddrs; j++) {
            if (!zg_addr_same(&o->addrs[j], &srv->addrs[a]))
                continue;
            if (o->default_server)
                return o;
            if (!first)
                first = o;
        }
    }
    return first;
}

static int parse_listen(zerg_conf_ctx *cx, const zerg_conf_node *n, zg_server *srv)
{
    int seq = zg_node_kind(cx, n) == ZERG_NODE_SEQ;
    size_t count = seq ? zg_node_len(cx, n) : 1;
    if (count == 0)
        return zg_conf_error(cx, n, "listen: expected at least one address");
    if (!(srv->addrs = zg_conf_alloc(cx, count * sizeof(zg_addr))))
        return -1;
    for (size_t i = 0; i < count; i++) {
        const zerg_conf_node *a = seq ? zg_node_item(cx, n, i) : n;
        zg_addr *addr = &srv->addrs[i];
        if (zg_conf_addr(cx, a, &addr->ss, &addr->len) < 0)
            return -1;
        addr->text = zg_conf_strdup(cx, zg_node_scalar(cx, a));
        if (check_shared_addr(cx, a, srv, i) < 0)
            return -1;
        srv->naddrs = i + 1;
    }
    return 0;
}

int zg_conf_server_names(zerg_conf_ctx *cx, zerg_str_list *names)
{
    zg_server *srv = cx->server;
    if (!srv)
        return 0;
    if (!srv->server_name.n) {
        srv->server_name = *names; /* an older config: server_name under the module's key */
        return 0;
    }
    if (names->n)
        return zg_conf_error(cx, zg_node_get(cx, cx->server_node, "server_name"),
                             "server_name: set for the block and in its %s section: keep one",
                             srv->module_name);
    *names = srv->server_name;
    return 0;
}

/* unix_mode: permission bits in octal, as chmod(1) takes them ("0660"). */
static int parse_unix_mode(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = zg_node_scalar(cx, n);
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > 4 || strspn(s, "01234567") != len || strtol(s, NULL, 8) > 0777)
        return zg_conf_error(cx, n,
                             "unix_mode: expected octal permission bits, 0 to 0777 "
                             "(\"0660\")");
    *(int64_t *)field = strtol(s, NULL, 8);
    return 0;
}

static int has_unix_file(const zg_server *srv)
{
    for (size_t i = 0; i < srv->naddrs; i++)
        if (zg_addr_unix_path(&srv->addrs[i].ss))
            return 1;
    return 0;
}

/* Keys handled outside the directive table (listen needs the server index). */
static int parse_later(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    (void)cx, (void)n, (void)field;
    return 0;
}

static zg_module *find_module(zg_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->nmodules; i++)
        if (strcmp(cfg->modules[i]->desc->name, name) == 0)
            return cfg->modules[i];
    return NULL;
}

/* max_connections_per_client: a table in shared memory with room for every
 * connection all the workers can hold, and plain accepted fds (the client's
 * address comes from getpeername). */
static int setup_climit(zerg_conf_ctx *cx, zg_server *srv)
{
    uint64_t capacity = (uint64_t)cx->cfg->worker_connections * (uint64_t)zg_conf_workers(cx->cfg);
    if (capacity > (1u << 29))
        capacity = 1u << 29;
    srv->climit = zg_conf_shm(cx, zg_climit_size((uint32_t)capacity));
    if (!srv->climit)
        return -1;
    zg_climit_init(srv->climit, (uint32_t)capacity);
    srv->want_peer = 1;
    return 0;
}

static int parse_lingering_close(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    static const char *const names[][3] = {
        [ZG_LINGER_OFF] = {"off", "false", "no"},
        [ZG_LINGER_ON] = {"on", "true", "yes"},
        [ZG_LINGER_ALWAYS] = {"always", "always", "always"},
    };
    const char *s = zg_node_scalar(cx, n);
    for (int mode = 0; s && mode < (int)ZG_ARRAY_SIZE(names); mode++)
        for (int k = 0; k < 3; k++)
            if (strcmp(s, names[mode][k]) == 0) {
                *(int *)field = mode;
                return 0;
            }
    return zg_conf_error(cx, n, "lingering_close: expected off, on or always");
}

static int parse_server(zerg_conf_ctx *cx, const zerg_conf_node *n, zg_server *srv)
{
    if (zg_node_kind(cx, n) != ZERG_NODE_MAP)
        return zg_conf_error(cx, n, "servers: each entry must be a mapping (listen, module, ...)");
    cx->server = srv;
    cx->server_node = n;
    srv->backlog = 511;
    srv->proxy_protocol_timeout = 5000;
    srv->unix_mode = -1;
    srv->lingering_close = ZG_LINGER_ON;
    srv->lingering_time = 30000;
    srv->lingering_timeout = 5000;
    const zerg_conf_node *mod = zg_node_get(cx, n, "module");
    const zerg_conf_node *listen = zg_node_get(cx, n, "listen");
    if (!mod)
        return zg_conf_error(cx, n, "server: missing key \"module\"");
    if (!listen)
        return zg_conf_error(cx, n, "server: missing key \"listen\"");
    const char *name = zg_node_scalar(cx, mod);
    if (!name)
        return zg_conf_error(cx, mod, "module: expected a module name");
    srv->module = find_module(cx->cfg, name);
    if (!srv->module)
        return zg_conf_error(cx, mod, "unknown module \"%s\" (not in load_modules)", name);
    srv->module_name = srv->module->desc->name;
    const zerg_module *d = srv->module->desc;

    const zerg_directive server_directives[] = {
        {"module", ZERG_CONF_STR, offsetof(zg_server, module_name), NULL, 0, 0},
        {"listen", ZERG_CONF_CUSTOM, 0, parse_later, 0, 0},
        {"backlog", ZERG_CONF_INT, offsetof(zg_server, backlog), NULL, 1, 65535},
        {"default_server", ZERG_CONF_BOOL, offsetof(zg_server, default_server), NULL, 0, 0},
        {"proxy_protocol", ZERG_CONF_BOOL, offsetof(zg_server, proxy_protocol), NULL, 0, 0},
        {"proxy_protocol_timeout", ZERG_CONF_MSEC, offsetof(zg_server, proxy_protocol_timeout),
         NULL, 1, 3600000},
        {"unix_mode", ZERG_CONF_CUSTOM, offsetof(zg_server, unix_mode), parse_unix_mode, 0, 0},
        {"max_connections_per_client", ZERG_CONF_INT, offsetof(zg_server, max_per_client), NULL, 0,
         1000000},
        {"lingering_close", ZERG_CONF_CUSTOM, offsetof(zg_server, lingering_close),
         parse_lingering_close, 0, 0},
        {"lingering_time", ZERG_CONF_MSEC, offsetof(zg_server, lingering_time), NULL, 0, 86400000},
        {"lingering_timeout", ZERG_CONF_MSEC, offsetof(zg_server, lingering_timeout), NULL, 1,
         86400000},
        {"tls", ZERG_CONF_CUSTOM, offsetof(zg_server, tls), zg_tls_conf_parse, 0, 0},
        {"server_name", ZERG_CONF_STR_LIST, offsetof(zg_server, server_name), NULL, 0, 0},
        ZERG_DIRECTIVE_END,
    };
    zg_server scratch = *srv; /* module/listen land here; kept fields copied back */
    if (zg_conf_apply(cx, n, server_directives, &scratch, d->name) < 0)
        return -1;
    srv->backlog = scratch.backlog;
    srv->default_server = scratch.default_server;
    srv->proxy_protocol = scratch.proxy_protocol;
    srv->proxy_protocol_timeout = scratch.proxy_protocol_timeout;
    srv->unix_mode = scratch.unix_mode;
    srv->max_per_client = scratch.max_per_client;
    srv->lingering_close = scratch.lingering_close;
    srv->lingering_time = scratch.lingering_time;
    srv->lingering_timeout = scratch.lingering_timeout;
    srv->tls = scratch.tls;
    srv->server_name = scratch.server_name;
    zg_server_names_lower(&srv->server_name);
    if (srv->server_name.n && !(zg_module_flags(srv->module) & ZERG_MODULE_VHOSTS))
        return zg_conf_error(cx, zg_node_get(cx, n, "server_name"),
                             "server_name: module %s has no virtual hosts", d->name);
    if (srv->max_per_client > 0 && setup_climit(cx, srv) < 0)
        return -1;
    if (parse_listen(cx, listen, srv) < 0)
        return -1;
    if (srv->unix_mode >= 0 && !has_unix_file(srv))
        return zg_conf_error(cx, zg_node_get(cx, n, "unix_mode"),
                             "unix_mode: the block listens on no \"unix:/path\" address");

    srv->module_conf = d->conf_size ? zg_conf_alloc(cx, d->conf_size) : NULL;
    if (d->conf_size && !srv->module_conf)
        return -1;
    if (d->conf_init && d->conf_init(cx, srv->module_conf) < 0)
        return cx->failed ? -1 : zg_conf_error(cx, n, "module %s: bad defaults", d->name);
    const zerg_conf_node *section = zg_node_get(cx, n, d->name);
    if (section) {
        static const zerg_directive none[] = {ZERG_DIRECTIVE_END};
        if (zg_conf_apply(cx, section, d->directives ? d->directives : none, srv->module_conf,
                          NULL) < 0)
            return -1;
    }
    if (d->conf_done && d->conf_done(cx, section, srv->module_conf) < 0)
        return cx->failed ? -1
                          : zg_conf_error(cx, section ? section : n, "module %s: invalid", d->name);
    if (srv->tls &&
        zg_tls_conf_finish(cx, srv->tls, zg_module_conf_alpn(srv->module, srv->module_conf)) < 0)
        return -1;
    cx->server = NULL;
    cx->server_node = NULL;
    return 0;
}

static int parse_servers(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    (void)field;
    zg_config *cfg = cx->cfg;
    zg_conf_blocks blocks;
    int rc = zg_conf_collect_blocks(cx, n, &blocks);
    if (rc == 0 && blocks.n == 0)
        rc = zg_conf_error(cx, n, "servers: no server block (here or in the files included)");
    cfg->nservers = rc == 0 ? blocks.n : 0;
    if (rc == 0 && !(cfg->servers = zg_conf_alloc(cx, cfg->nservers * sizeof(zg_server))))
        rc = -1;
    for (size_t i = 0; rc == 0 && i < cfg->nservers; i++)
        cfg->servers[i].index = (unsigned)i;
    yaml_document_t *doc = cx->doc;
    const char *file = cx->file;
    for (size_t i = 0; rc == 0 && i < cfg->nservers; i++) {
        cx->doc = blocks.v[i].doc; /* an included file's block: errors name that file */
        cx->file = blocks.v[i].file;
        rc = parse_server(cx, blocks.v[i].node, &cfg->servers[i]);
    }
    cx->doc = doc;
    cx->file = file;
    zg_conf_blocks_free(&blocks);
    return rc;
}

/* ---- loading ---- */

static void set_defaults(zg_config *cfg)
{
    cfg->worker_processes = 0;
    cfg->worker_connections = 16384;
    cfg->max_handshakes = 1024;
    cfg->worker_shutdown_timeout = 30000;
    cfg->worker_memory_release = 10000;
    cfg->error_log_path = "stderr";
    cfg->error_log_level = ZERG_LOG_INFO;
    cfg->modules_path = ZG_MODULES_PATH;
    cfg->pid = "/run/zerg.pid";
    cfg->uring = (zg_uring_conf){
        .entries = 4096,
        .buffers = 4096,
        .buffer_size = 16384,
        .send_zc_threshold = 16384,
        .output_high = 256 * 1024,
        .output_low = 64 * 1024,
        .sqpoll_cpu = -1,
        .incremental = "auto",
        .fixed_files = 1,
        .fixed_outbound = 1,
        .batch_wait_usec = 100,
        .batch_size = 64,
    };
}

static int load_modules(zerg_conf_ctx *cx, const zerg_conf_node *root)
{
    zg_config *cfg = cx->cfg;
    const zerg_conf_node *n = zg_node_get(cx, root, "load_modules");
    if (!(cfg->modules = calloc(cfg->load_modules.n + 1, sizeof(zg_module *))))
        return zg_conf_error(cx, NULL, "out of memory");
    for (size_t i = 0; i < cfg->load_modules.n; i++) {
        const char *name = cfg->load_modules.items[i];
        const zerg_conf_node *item =
            zg_node_kind(cx, n) == ZERG_NODE_SEQ ? zg_node_item(cx, n, i) : n;
        if (find_module(cfg, name))
            return zg_conf_error(cx, item, "module \"%s\" is loaded twice", name);
        char why[1024];
        zg_module *m = zg_module_load(cfg->modules_path, name, why, sizeof(why));
        if (!m)
            return zg_conf_error(cx, item, "%s", why);
        cfg->modules[cfg->nmodules++] = m;
        if (m->desc->conn_ctx_size > cfg->max_conn_ctx)
            cfg->max_conn_ctx = m->desc->conn_ctx_size;
    }
    return 0;
}

static int check_config(zerg_conf_ctx *cx, const zerg_conf_node *root)
{
    zg_uring_conf *u = &cx->cfg->uring;
    if (u->buffers & (u->buffers - 1))
        return zg_conf_error(cx, zg_node_get(cx, root, "uring"),
                             "uring.buffers: %llu is not a power of two",
                             (unsigned long long)u->buffers);
    if (u->output_low > u->output_high)
        return zg_conf_error(cx, zg_node_get(cx, root, "uring"),
                             "uring.output_low is above uring.output_high");
    if (!zg_node_get(cx, root, "servers"))
        return zg_conf_error(cx, root, "missing key \"servers\": nothing to serve");
    return 0;
}

static int parse_document(zerg_conf_ctx *cx, const zerg_conf_node *root)
{
    if (zg_node_kind(cx, root) != ZERG_NODE_MAP)
        return zg_conf_error(cx, root, "expected a mapping of settings at the top level");
    if (zg_conf_apply(cx, root, core_directives, cx->cfg, "servers") < 0 ||
        check_config(cx, root) < 0 || load_modules(cx, root) < 0)
        return -1;
    return parse_servers(cx, zg_node_get(cx, root, "servers"), NULL);
}

zg_config *zg_conf_load(const char *file, const char *prefix, char *err, size_t errlen)
{
    zg_config *cfg = calloc(1, sizeof(*cfg));
    if (!cfg) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    set_defaults(cfg);
    zerg_conf_ctx cx = {.cfg = cfg, .file = file, .err = err, .errlen = errlen};
    cfg->file = zg_conf_strdup(&cx, file);
    cfg->prefix = prefix ? zg_conf_strdup(&cx, prefix) : NULL;

    FILE *f = fopen(file, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", file, strerror(errno));
        zg_conf_free(cfg);
        return NULL;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int ok = yaml_parser_load(&parser, &doc);
    if (!ok) {
        snprintf(err, errlen, "%s:%zu:%zu: %s%s%s", file, parser.problem_mark.line + 1,
                 parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error",
                 parser.context ? " " : "", parser.context ? parser.context : "");
    } else {
        cx.doc = &doc;
        const yaml_node_t *root = yaml_document_get_root_node(&doc);
        if (!root)
            ok = (zg_conf_error(&cx, NULL, "empty configuration"), 0);
        else
            ok = parse_document(&cx, (const zerg_conf_node *)root) == 0 &&
                 !cx.failed; /* an error a parser reported (out of memory) but did not return */
        yaml_document_delete(&doc);
    }
    yaml_parser_delete(&parser);
    fclose(f);
    if (!ok) {
        zg_conf_free(cfg);
        return NULL;
    }
    return cfg;
}

void zg_conf_free(zg_config *cfg)
{
    if (!cfg)
        return;
    for (zg_shm *s = cfg->shm; s; s = s->next)
        munmap(s->ptr, s->size);
    zg_tls_conf_free_all(cfg->tls_confs);
    zg_tls_client_free_all(cfg->tls_clients);
    for (size_t i = 0; i < cfg->nmodules; i++)
        zg_module_unload(cfg->modules[i]);
    free(cfg->modules);
    zg_conf_arena_free(cfg);
    free(cfg);
}

int zg_conf_workers(const zg_config *cfg)
{
    if (cfg->worker_processes > 0)
        return (int)cfg->worker_processes;
    int cpus[1024];
    int n = zg_cpus_allowed(cpus, 1024);
    return n > 0 ? n : 1;
}

int zg_conf_worker_cpu(const zg_config *cfg, int i)
{
    if (cfg->cpus)
        return cfg->cpus[i % cfg->ncpus];
    int cpus[1024];
    int n = zg_cpus_allowed(cpus, 1024);
    return n > 0 ? cpus[i % n] : -1;
}
