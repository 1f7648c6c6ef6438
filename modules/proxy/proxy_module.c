/* proxy_module.c - the exported descriptor of the proxy module and its
 * process-level hooks: load, per-worker state of each server block (its
 * upstream group started), stats timers in worker 0, drain and exit. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

const zerg_api *proxy_api;
static proxy_worker_state *proxy_states; /* this worker's server blocks */

static int proxy_load(const zerg_api *api)
{
    if (!api || api->abi_version != ZERG_ABI_VERSION || !ZERG_API_HAS(api, upstream_json))
        return -1;
    proxy_api = api;
    proxy_conf_start();
    return 0;
}

static int proxy_worker_init(zerg_worker *w)
{
    (void)w;
    proxy_states = NULL;
    return 0;
}

static int proxy_server_init(zerg_worker *w, void *conf)
{
    const zerg_api *a = proxy_api;
    proxy_conf *cf = conf;
    proxy_worker_state *ws = calloc(1, sizeof(*ws));
    if (!ws)
        return -1;
    ws->w = w;
    ws->conf = cf;
    ws->mrow = cf->metric[PROXY_C_CLIENTS] >= 0 ? a->metric_row(w) : NULL;
    cf->ws = ws;
    proxy_worker_state **tail = &proxy_states; /* kept in config order */
    while (*tail)
        tail = &(*tail)->next;
    *tail = ws;
    if (proxy_log_open(ws) != 0)
        return -1;
    a->upstream_start(w, cf->up); /* its health checks run in worker 0 */
    if (a->worker_id(w) == 0)
        proxy_stats_start(ws);
    return 0;
}

static void proxy_worker_drain(zerg_worker *w)
{
    static int drained;
    (void)w;
    if (drained)
        return;
    drained = 1;
    for (proxy_worker_state *ws = proxy_states; ws; ws = ws->next) {
        proxy_api->upstream_stop(ws->w, ws->conf->up);
        if (proxy_api->worker_id(ws->w) == 0)
            proxy_stats_stop(ws);
    }
}

const proxy_worker_state *proxy_worker_states(void)
{
    return proxy_states;
}

/* For a status page in another module (found with dlsym): the JSON stats of
 * every proxy server block of this worker, as a JSON list. Returns the length
 * it needed (like snprintf); the output is cut at cap. */
ZERG_MODULE_EXPORT size_t zerg_proxy_status(char *buf, size_t cap)
{
    size_t off = 0;
    if (cap)
        buf[0] = '\0';
    off += (size_t)snprintf(buf, cap, "[");
    for (proxy_worker_state *ws = proxy_states; ws; ws = ws->next) {
        if (ws != proxy_states)
            off += (size_t)snprintf(buf + (off < cap ? off : cap), off < cap ? cap - off : 0, ",");
        off +=
            proxy_stats_format(ws->conf, buf + (off < cap ? off : cap), off < cap ? cap - off : 0);
    }
    off += (size_t)snprintf(buf + (off < cap ? off : cap), off < cap ? cap - off : 0, "]");
    return off;
}

/* The per-worker states stay reachable from proxy_states until the process
 * ends: conns the core closes after this hook may still use them. */
static void proxy_worker_exit(zerg_worker *w)
{
    proxy_worker_drain(w);
}

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "proxy",
    .version = "0.1.0",
    .conn_ctx_size = sizeof(proxy_ctx),
    .conf_size = sizeof(proxy_conf),
    .directives = proxy_directives,
    .load = proxy_load,
    .conf_init = proxy_conf_init,
    .conf_done = proxy_conf_done,
    .worker_init = proxy_worker_init,
    .server_init = proxy_server_init,
    .worker_drain = proxy_worker_drain,
    .worker_reopen = NULL,
    .worker_exit = proxy_worker_exit,
    .on_open = proxy_on_open,
    .on_data = proxy_on_data,
    .on_eof = proxy_on_eof,
    .on_drain = proxy_on_drain,
    .on_timeout = proxy_on_timeout,
    .on_close = proxy_on_close,
    .metrics = proxy_metrics,
};
