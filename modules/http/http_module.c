/* modules/http/http_module.c - the http module's descriptor and its hooks:
 * load, worker and server setup, drain and exit, and the per-connection
 * life cycle (open, data, eof, drain, timeouts, close). */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http2.h"
#include "http_cache.h"
#include "http_limit.h"
#include "http_log.h"
#include "http_metrics.h"
#include "http_proxy.h"
#include "http_static.h"

http_worker http_W;
const zerg_api *http_api;

static int http_load(const zerg_api *api)
{
    if (api->abi_version != ZERG_ABI_VERSION || api->struct_size < sizeof(zerg_api))
        return -1;
    http_api = api;
    http_upstreams_conf_start();
    http_limit_conf_start();
    return http_conf_compose();
}

static int http_worker_init(zerg_worker *w)
{
    http_W.w = w;
    http_W.date_sec = -1;
    http_W.log_sec = -1;
    http_metrics_worker_init(w);
    return 0;
}

static int http_server_init(zerg_worker *w, void *conf)
{
    http_srv *s = conf;
    if (http_static_server_init(s))
        return -1;
    if (s->access_log.path && http_log_open(s))
        return -1;
    if (http_limit_server_init(s))
        return -1;
    http_upstreams_start(w, s);
    return 0;
}

/* Drain (reload or graceful stop). Closing an idle keep-alive connection at
 * once races with the request its client may be sending right now (that is
 * how nginx loses them at every reload): an idle connection gets a short
 * grace instead; a request that comes in it is answered with
 * "Connection: close", and the client reconnects to the new workers. */
#define HTTP_DRAIN_IDLE_GRACE_MS 1000

static void http_worker_drain(zerg_worker *w)
{
    http_W.draining = 1;
    http_up_close_idle();
    http_upstreams_stop(w);
    for (http_conn *x = http_W.conns; x; x = x->next) {
        if (x->h2s && !x->closing) {
            http2_drain(x); /* GOAWAY: its streams in flight finish */
            continue;
        }
        if (x->phase != HTTP_PH_IDLE || x->closing)
            continue;
        uint64_t grace = x->srv->keepalive_timeout;
        if (grace == 0 || grace > HTTP_DRAIN_IDLE_GRACE_MS)
            grace = HTTP_DRAIN_IDLE_GRACE_MS;
        http_api->conn_timeout(x->c, grace);
    }
}

static void http_worker_exit(zerg_worker *w)
{
    http_log_free_all();
    http_rq_free_all();
    http_ofc_clear();
    http_metrics_worker_exit();
    http_static_worker_exit();
    http_proxy_worker_exit();
    http_limit_worker_exit();
}

/* TLS chose h2 by ALPN (the block's tls: alpn offered it). */
static int http_alpn_h2(zerg_conn *c)
{
    zerg_tls_info ti = {.struct_size = sizeof(ti)};
    return ZERG_API_HAS(http_api, conn_tls) && http_api->conn_tls(c, &ti) && ti.alpn &&
           ti.alpn_len == 2 && !memcmp(ti.alpn, "h2", 2);
}

static void http_on_open(zerg_conn *c)
{
    http_conn *hc = http_api->conn_ctx(c);
    hc->c = c;
    hc->srv = hc->dsrv = http_api->conn_conf(c);
    hc->nvhosts = 1;
    if (ZERG_API_HAS(http_api, conn_servers))
        hc->nvhosts = http_api->conn_servers(c, &hc->vhosts);
    for (size_t i = 0; i < hc->nvhosts; i++) { /* proxy_pass or limit keys need fields */
        const http_srv *s = i ? hc->vhosts[i] : hc->srv;
        hc->keep_fields |= (uint8_t)(s->has_proxy || (s->limit && s->limit->want_fields));
    }
    hc->next = http_W.conns;
    hc->prev = NULL;
    if (http_W.conns)
        http_W.conns->prev = hc;
    http_W.conns = hc;
    hc->phase = HTTP_PH_IDLE;
    http_api->conn_timeout(c, hc->srv->client_header_timeout);
    if (http_alpn_h2(c) && http2_session_start(hc) != 0)
        http_conn_abort(hc);
}

size_t http_out_high(zerg_conn *c)
{
    if (ZERG_API_HAS(http_api, conn_out_high))
        return http_api->conn_out_high(c);
    return (size_t)256 << 10; /* an older core: uring.output_high's default */
}

void http_conn_close(http_conn *hc)
{
    if (hc->h2) { /* a stream: ended, not its connection */
        http2_stream_abort(hc);
        return;
    }
    hc->closing = 1;
    http_api->close(hc->c);
}

void http_conn_abort(http_conn *hc)
{
    if (hc->h2) {
        http2_stream_abort(hc);
        return;
    }
    hc->closing = 1;
    http_api->abort(hc->c);
}

/* h2c with prior knowledge (RFC 9113 3.3): the connection's first bytes
 * are the client preface, on a block with http2: on. -1: not HTTP/2; 0:
 * too few bytes to tell; 1: HTTP/2 now. */
static int http_prior_knowledge(http_conn *hc, const uint8_t *data, size_t len)
{
    if (!hc->dsrv->http2 || hc->nreq || hc->phase != HTTP_PH_IDLE || hc->rq)
        return -1;
    size_t n = len < HTTP2_PREFACE_LEN ? len : HTTP2_PREFACE_LEN;
    if (memcmp(data, HTTP2_PREFACE, n) != 0)
        return -1;
    if (n < HTTP2_PREFACE_LEN)
        return 0;
    if (http2_session_start(hc) != 0) {
        http_conn_abort(hc);
        return 0;
    }
    return 1;
}

static size_t http_on_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    http_conn *hc = http_api->conn_ctx(c);
    if (hc->h2s)
        return http2_on_data(hc, data, len);
    if (hc->dsrv->http2 && !hc->up) {
        int h2 = http_prior_knowledge(hc, data, len);
        if (h2 == 0)
            return 0; /* the core keeps the bytes until more come */
        if (h2 == 1)
            return http2_on_data(hc, data, len);
    }
    if (!hc->up || !hc->up->tunnel)
        return http_process(hc, data, len);
    http_tunnel_relay(hc->up, 1, data, len);
    return len;
}

static void http_on_eof(zerg_conn *c)
{
    http_conn *hc = http_api->conn_ctx(c);
    hc->eof = 1;
    if (hc->closing)
        return;
    if (hc->h2s) {
        http2_on_eof(hc);
        return;
    }
    if (hc->up && hc->up->tunnel) {
        http_tunnel_eof(hc->up, 1);
        return;
    }
    if (hc->phase == HTTP_PH_BUSY)
        return; /* closed once the answer in progress is done */
    http_conn_close(hc);
}

static void http_on_drain(zerg_conn *c)
{
    http_conn *hc = http_api->conn_ctx(c);
    if (hc->h2s) {
        http2_on_drain(hc);
        return;
    }
    if (hc->out_wait) {
        http_output_drained(hc);
        return;
    }
    if (hc->up) {
        http_proxy_client_drained(hc);
        return;
    }
    if (hc->want_send_timeout && !hc->closing && hc->phase == HTTP_PH_IDLE) {
        hc->want_send_timeout = 0;
        http_api->conn_timeout(c, hc->srv->keepalive_timeout);
    }
}

static void http_on_timeout(zerg_conn *c)
{
    http_conn *hc = http_api->conn_ctx(c);
    if (hc->closing)
        return;
    if (hc->h2s) {
        http2_on_timeout(hc);
        return;
    }
    http_W.timeouts++;
    switch (hc->phase) {
    case HTTP_PH_IDLE:
        if (hc->want_send_timeout)
            http_conn_abort(hc);
        else
            http_conn_close(hc);
        return;
    case HTTP_PH_HEAD:
    case HTTP_PH_BODY:
        /* client_header_timeout / client_body_timeout */
        if (hc->scan.total == 0) {
            http_conn_close(hc);
            return;
        }
        http_send_error(hc, 408, 1);
        return;
    default:
        /* send_timeout while streaming */
        http_conn_abort(hc);
        return;
    }
}

static void http_on_close(zerg_conn *c, int err)
{
    http_conn *hc = http_api->conn_ctx(c);
    if (hc->prev)
        hc->prev->next = hc->next;
    else if (http_W.conns == hc)
        http_W.conns = hc->next;
    if (hc->next)
        hc->next->prev = hc->prev;
    hc->next = hc->prev = NULL;
    hc->closing = 1;
    http_file_conn_closed(hc);
    if (hc->up)
        http_proxy_abandon(hc);
    if (hc->limit)
        http_limit_done(hc);
    http_rq_put(hc);
    http2_session_free(hc);
}

/* what a TLS server block offers by ALPN unless its tls: alpn says */
static const char *const http_alpn[] = {"http/1.1", NULL};

/* ...and what a block with http2 on offers: h2 first */
static const char *const *http_conf_alpn(const void *conf)
{
    static const char *const h2_first[] = {"h2", "http/1.1", NULL};
    const http_srv *s = conf;
    return s->http2 ? h2_first : NULL;
}

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "http",
    .version = "0.1.0",
    .conn_ctx_size = sizeof(http_conn),
    .conf_size = sizeof(http_srv),
    .directives = http_directives,
    .load = http_load,
    .conf_init = http_conf_init,
    .conf_done = http_conf_done,
    .worker_init = http_worker_init,
    .server_init = http_server_init,
    .worker_drain = http_worker_drain,
    .worker_exit = http_worker_exit,
    .on_open = http_on_open,
    .on_data = http_on_data,
    .on_eof = http_on_eof,
    .on_drain = http_on_drain,
    .on_timeout = http_on_timeout,
    .on_close = http_on_close,
    .flags = ZERG_MODULE_VHOSTS,
    .metrics = http_metrics,
    .alpn = http_alpn,
    .conf_alpn = http_conf_alpn,
};
