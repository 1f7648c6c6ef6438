/* proxy_conf.c - the `proxy:` section of zerg.yaml: directive tables, the
 * nested upstream/servers/health_check parsers, defaults and cross-key checks,
 * the consistent-hash ring and the shared-memory block (conf_done). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>
#include <arpa/inet.h>

#include "proxy.h"

/* ---- per-server keys -------------------------------------------------- */

static int parse_address(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    proxy_addr *a = field;
    const char *s = proxy_api->node_scalar(cx, n);
    if (!s)
        return proxy_api->conf_error(cx, n, "address: expected \"host:port\"");
    if (proxy_api->conf_addr(cx, n, &a->ss, &a->len) != 0)
        return -1;
    a->text = proxy_api->conf_strdup(cx, s);
    return 0;
}

static const zerg_directive server_directives[] = {
    {"address", ZERG_CONF_CUSTOM, offsetof(proxy_server, addr), parse_address, 0, 0},
    {"weight", ZERG_CONF_INT, offsetof(proxy_server, weight), NULL, 1, 1000},
    {"max_fails", ZERG_CONF_INT, offsetof(proxy_server, max_fails), NULL, 0, 1000000},
    {"fail_timeout", ZERG_CONF_MSEC, offsetof(proxy_server, fail_timeout), NULL, 1, 86400000},
    {"backup", ZERG_CONF_BOOL, offsetof(proxy_server, backup), NULL, 0, 0},
    {"max_conns", ZERG_CONF_INT, offsetof(proxy_server, max_conns), NULL, 0, 100000000},
    {"down", ZERG_CONF_BOOL, offsetof(proxy_server, down), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};

static int parse_servers(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    proxy_upstream *up = (proxy_upstream *)((char *)field - offsetof(proxy_upstream, servers));
    const zerg_api *a = proxy_api;
    int kind = a->node_kind(cx, n);
    size_t cnt = kind == ZERG_NODE_SEQ ? a->node_len(cx, n) : 1;
    if (kind != ZERG_NODE_SEQ && kind != ZERG_NODE_MAP && kind != ZERG_NODE_SCALAR)
        return a->conf_error(cx, n, "servers: expected a list of servers");
    if (cnt == 0)
        return a->conf_error(cx, n, "servers: at least one server is needed");
    if (cnt > PROXY_MAX_SERVERS)
        return a->conf_error(cx, n, "servers: at most %d servers", PROXY_MAX_SERVERS);
    proxy_server *sv = a->conf_alloc(cx, cnt * sizeof(*sv));
    if (!sv)
        return a->conf_error(cx, n, "out of memory");
    for (size_t i = 0; i < cnt; i++) {
        const zerg_conf_node *it = kind == ZERG_NODE_SEQ ? a->node_item(cx, n, i) : n;
        proxy_server *s = &sv[i];
        s->weight = 1;
        s->max_fails = 1;
        s->fail_timeout = 10000;
        int k = a->node_kind(cx, it);
        if (k == ZERG_NODE_SCALAR) { /* - "127.0.0.1:6379" */
            if (parse_address(cx, it, &s->addr) != 0)
                return -1;
            continue;
        }
        if (k != ZERG_NODE_MAP)
            return a->conf_error(cx, it, "servers: each server is \"host:port\" or a mapping");
        if (a->conf_apply(cx, it, server_directives, s) != 0)
            return -1;
        if (s->addr.len == 0)
            return a->conf_error(cx, it, "servers: address is required");
    }
    up->servers = sv;
    up->nservers = cnt;
    return 0;
}

/* ---- health_check ----------------------------------------------------- */

static const zerg_directive hc_directives[] = {
    {"interval", ZERG_CONF_MSEC, offsetof(proxy_hc_conf, interval), NULL, 10, 86400000},
    {"timeout", ZERG_CONF_MSEC, offsetof(proxy_hc_conf, timeout), NULL, 1, 3600000},
    {"rise", ZERG_CONF_INT, offsetof(proxy_hc_conf, rise), NULL, 1, 1000},
    {"fall", ZERG_CONF_INT, offsetof(proxy_hc_conf, fall), NULL, 1, 1000},
    {"send", ZERG_CONF_STR, offsetof(proxy_hc_conf, send), NULL, 0, 0},
    {"expect", ZERG_CONF_STR, offsetof(proxy_hc_conf, expect), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};

#define PROXY_HC_EXPECT_MAX 256

static int parse_hc(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    proxy_hc_conf *hc = field;
    const zerg_api *a = proxy_api;
    if (a->node_kind(cx, n) == ZERG_NODE_SCALAR) { /* health_check: false / true */
        int on = 0;
        if (a->conf_bool(cx, n, &on) != 0)
            return -1;
        hc->enabled = on;
        return 0;
    }
    if (a->node_kind(cx, n) != ZERG_NODE_MAP)
        return a->conf_error(cx, n, "health_check: expected a mapping");
    if (a->conf_apply(cx, n, hc_directives, hc) != 0)
        return -1;
    if (hc->expect && strlen(hc->expect) > PROXY_HC_EXPECT_MAX)
        return a->conf_error(cx, n, "health_check: expect is longer than %d bytes",
                             PROXY_HC_EXPECT_MAX);
    if (hc->send && !*hc->send)
        hc->send = NULL;
    if (hc->expect && !*hc->expect)
        hc->expect = NULL;
    hc->enabled = 1;
    return 0;
}

/* ---- upstream --------------------------------------------------------- */

static int parse_balance(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    int *b = field;
    const char *s = proxy_api->node_scalar(cx, n);
    if (!s)
        return proxy_api->conf_error(cx, n, "balance: expected a name");
    if (!strcmp(s, "round_robin") || !strcmp(s, "roundrobin"))
        *b = PROXY_BAL_RR;
    else if (!strcmp(s, "least_conn") || !strcmp(s, "leastconn"))
        *b = PROXY_BAL_LEAST_CONN;
    else if (!strcmp(s, "hash") || !strcmp(s, "source"))
        *b = PROXY_BAL_HASH;
    else if (!strcmp(s, "random"))
        *b = PROXY_BAL_RANDOM;
    else
        return proxy_api->conf_error(
            cx, n, "balance: unknown \"%s\" (round_robin, least_conn, hash, random)", s);
    return 0;
}

static const zerg_directive upstream_directives[] = {
    {"balance", ZERG_CONF_CUSTOM, offsetof(proxy_upstream, balance), parse_balance, 0, 0},
    {"servers", ZERG_CONF_CUSTOM, offsetof(proxy_upstream, servers), parse_servers, 0, 0},
    {"health_check", ZERG_CONF_CUSTOM, offsetof(proxy_upstream, hc), parse_hc, 0, 0},
    ZERG_DIRECTIVE_END,
};

static int parse_upstream(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    proxy_upstream *up = field;
    if (proxy_api->node_kind(cx, n) != ZERG_NODE_MAP)
        return proxy_api->conf_error(cx, n, "upstream: expected a mapping with servers");
    if (proxy_api->conf_apply(cx, n, upstream_directives, up) != 0)
        return -1;
    if (up->nservers == 0)
        return proxy_api->conf_error(cx, n, "upstream: servers is required");
    up->set = 1;
    return 0;
}

static int parse_pp(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    int *v = field;
    const char *s = proxy_api->node_scalar(cx, n);
    if (!s)
        return proxy_api->conf_error(cx, n, "proxy_protocol: expected false, v1 or v2");
    if (!strcasecmp(s, "v1") || !strcmp(s, "1")) {
        *v = 1;
    } else if (!strcasecmp(s, "v2") || !strcmp(s, "2")) {
        *v = 2;
    } else {
        int on = 0;
        if (proxy_api->conf_bool(cx, n, &on) != 0)
            return -1;
        *v = on ? 1 : 0;
    }
    return 0;
}

/* ---- the section ------------------------------------------------------ */

/* The block's name labels its metrics and stats: letters, digits, _ . : - */
static int parse_name(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = proxy_api->node_scalar(cx, n);
    size_t len = s ? strlen(s) : 0;
    if (len == 0 || len > PROXY_NAME_MAX)
        return proxy_api->conf_error(cx, n, "name: expected a name of 1 to %d characters",
                                     PROXY_NAME_MAX);
    if (strspn(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.:-") != len)
        return proxy_api->conf_error(cx, n, "name: \"%s\" may hold only letters, digits, _ . : -",
                                     s);
    *(char **)field = proxy_api->conf_strdup(cx, s);
    return *(char **)field ? 0 : proxy_api->conf_error(cx, n, "name: out of memory");
}

const zerg_directive proxy_directives[] = {
    {"name", ZERG_CONF_CUSTOM, offsetof(proxy_conf, name), parse_name, 0, 0},
    {"upstream", ZERG_CONF_CUSTOM, offsetof(proxy_conf, up), parse_upstream, 0, 0},
    {"connect_timeout", ZERG_CONF_MSEC, offsetof(proxy_conf, connect_timeout), NULL, 1, 3600000},
    {"idle_timeout", ZERG_CONF_MSEC, offsetof(proxy_conf, idle_timeout), NULL, 0, 0},
    {"next_upstream_tries", ZERG_CONF_INT, offsetof(proxy_conf, next_upstream_tries), NULL, 0,
     PROXY_MAX_SERVERS},
    {"proxy_protocol", ZERG_CONF_CUSTOM, offsetof(proxy_conf, proxy_protocol), parse_pp, 0, 0},
    {"max_connections", ZERG_CONF_INT, offsetof(proxy_conf, max_connections), NULL, 0, 100000000},
    {"buffer_size", ZERG_CONF_SIZE, offsetof(proxy_conf, buffer_size), NULL, 4096,
     (int64_t)1 << 30},
    {"stats_file", ZERG_CONF_STR, offsetof(proxy_conf, stats_file), NULL, 0, 0},
    {"stats_interval", ZERG_CONF_MSEC, offsetof(proxy_conf, stats_interval), NULL, 10, 86400000},
    {"access_log", ZERG_CONF_CUSTOM, offsetof(proxy_conf, access_log), proxy_parse_access_log, 0,
     0},
    ZERG_DIRECTIVE_END,
};

int proxy_conf_init(zerg_conf_ctx *cx, void *conf)
{
    proxy_conf *cf = conf;
    (void)cx;
    cf->up.balance = PROXY_BAL_RR;
    cf->up.hc.interval = 2000;
    cf->up.hc.timeout = 1000;
    cf->up.hc.rise = 2;
    cf->up.hc.fall = 3;
    cf->connect_timeout = 5000;
    cf->idle_timeout = 600000;
    cf->next_upstream_tries = 3;
    cf->proxy_protocol = 0;
    cf->max_connections = 0;
    cf->buffer_size = 512 * 1024;
    cf->stats_interval = 1000;
    cf->log_buffer = 64 * 1024;
    cf->log_flush = 1000;
    return 0;
}

/* section is NULL when the server block has no proxy: key; conf_error then
 * points at the block */
static int fail(zerg_conf_ctx *cx, const zerg_conf_node *section, const char *msg)
{
    return proxy_api->conf_error(cx, section, "proxy: %s", msg);
}

/* The proxy blocks of the config being parsed, newest first. Each config
 * generation loads its own copy of the module, and proxy_conf_start empties
 * the list anyway, for a loader that hands the same copy a second config. */
static proxy_conf *named_blocks;

void proxy_conf_start(void)
{
    named_blocks = NULL;
}

static int name_block(zerg_conf_ctx *cx, const zerg_conf_node *section, proxy_conf *cf)
{
    if (!cf->name) {
        unsigned nth = 0; /* this block's place among the proxy blocks */
        for (const proxy_conf *o = named_blocks; o; o = o->next_named)
            nth++;
        char def[32];
        snprintf(def, sizeof(def), "proxy%u", nth);
        cf->name = proxy_api->conf_strdup(cx, def);
        if (!cf->name)
            return fail(cx, section, "out of memory");
    }
    for (const proxy_conf *o = named_blocks; o; o = o->next_named)
        if (!strcmp(o->name, cf->name))
            return proxy_api->conf_error(
                cx, section ? proxy_api->node_get(cx, section, "name") : NULL,
                "proxy: name \"%s\" is used by another proxy block", cf->name);
    cf->next_named = named_blocks;
    named_blocks = cf;
    return 0;
}

int proxy_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, void *conf)
{
    proxy_conf *cf = conf;
    proxy_upstream *up = &cf->up;
    if (!up->set || up->nservers == 0)
        return fail(cx, section, "upstream with at least one server is required");
    size_t primaries = 0;
    for (size_t i = 0; i < up->nservers; i++)
        if (!up->servers[i].backup)
            primaries++;
    if (primaries == 0)
        return fail(cx, section, "every upstream server is a backup: at least one must not be");
    if (up->hc.enabled && up->hc.timeout >= up->hc.interval)
        up->hc.timeout = up->hc.interval > 1 ? up->hc.interval - 1 : 1;

    if (up->balance == PROXY_BAL_HASH) {
        size_t cap = proxy_ring_size(up);
        up->ring = proxy_api->conf_alloc(cx, cap * sizeof(*up->ring));
        if (!up->ring)
            return fail(cx, section, "out of memory for the hash ring");
        up->ring_n = proxy_ring_build(up, up->ring, cap);
    }
    /* Client addresses serve hash, proxy_protocol and the access log only:
     * otherwise the listeners keep accepting into fixed files (the core
     * resets those too). */
    if (up->balance == PROXY_BAL_HASH || cf->proxy_protocol || cf->access_log)
        proxy_api->conf_want_peer_addr(cx);

    cf->shm = proxy_api->conf_shm(cx, sizeof(proxy_shm) + up->nservers * sizeof(proxy_shm_srv));
    if (!cf->shm)
        return fail(cx, section, "cannot map shared memory for upstream state");
    return name_block(cx, section, cf);
}
