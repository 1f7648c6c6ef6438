/* proxy_conf.c - the `proxy:` section of zerg.yaml: its directive table,
 * defaults and cross-key checks, the upstream group (the core parses it:
 * api->conf_upstream) and the block's shared counters (conf_done). */
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <stddef.h>

#include "proxy.h"

/* upstream: the core parses it in conf_done, once the block has its name
 * (and upstream_tls with it) */
static int keep_upstream(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    (void)cx;
    *(const zerg_conf_node **)field = n;
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
    {"upstream", ZERG_CONF_CUSTOM, offsetof(proxy_conf, up_node), keep_upstream, 0, 0},
    {"upstream_tls", ZERG_CONF_CUSTOM, offsetof(proxy_conf, tls_node), keep_upstream, 0, 0},
    {"connect_timeout", ZERG_CONF_MSEC, offsetof(proxy_conf, connect_timeout), NULL, 1, 3600000},
    {"idle_timeout", ZERG_CONF_MSEC, offsetof(proxy_conf, idle_timeout), NULL, 0, 0},
    {"next_upstream_tries", ZERG_CONF_INT, offsetof(proxy_conf, next_upstream_tries), NULL, 0,
     ZERG_UPSTREAM_MAX_SERVERS},
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
    cf->connect_timeout = 5000;
    cf->idle_timeout = 600000;
    cf->next_upstream_tries = 3;
    cf->proxy_protocol = 0;
    cf->max_connections = 0;
    cf->buffer_size = 512 * 1024;
    cf->stats_interval = 1000;
    cf->log_buffer = 64 * 1024;
    cf->log_flush = 1000;
    for (int k = 0; k < PROXY_NCOUNTERS; k++)
        cf->metric[k] = -1;
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
    const zerg_api *a = proxy_api;
    proxy_conf *cf = conf;
    if (!cf->up_node)
        return fail(cx, section, "upstream with at least one server is required");
    if (name_block(cx, section, cf) != 0 || !(cf->up = a->conf_upstream(cx, cf->up_node, cf->name)))
        return -1;
    if (cf->tls_node && !ZERG_API_HAS(a, connect_tls))
        return fail(cx, cf->tls_node, "upstream_tls: this core has no TLS client");
    if (cf->tls_node && !(cf->tls = a->conf_tls_client(cx, cf->tls_node)))
        return -1;
    if (cf->tls && ZERG_API_HAS(a, upstream_tls))
        a->upstream_tls(cf->up, cf->tls); /* its health checks speak TLS too */
    const char *key = a->upstream_hash_key(cf->up);
    if (key && strcmp(key, "$remote_addr") != 0)
        return a->conf_error(cx, a->node_get(cx, cf->up_node, "hash_key"),
                             "proxy: hash_key: only $remote_addr (the client address)");
    /* Client addresses serve hash, proxy_protocol and the access log only:
     * otherwise the listeners keep accepting into fixed files (the core
     * resets those too). */
    if (key || cf->proxy_protocol || cf->access_log)
        a->conf_want_peer_addr(cx);
    cf->shm = a->conf_shm(cx, sizeof(proxy_shm));
    if (!cf->shm)
        return fail(cx, section, "cannot map shared memory for upstream state");
    return proxy_metrics_add(cx, cf);
}
