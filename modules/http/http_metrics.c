/* http_metrics.c - the http module's metrics: its series in the master's
 * shared metrics (registered per server block at configuration time), the
 * figures each worker publishes there, and the status page. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http2.h"
#include "http_out.h"
#include "http_limit.h"
#include "http_metrics.h"
#include "http_proxy.h"

/* ---- latency_buckets --------------------------------------------------- */

/* Prometheus' default buckets, in milliseconds. */
static const uint64_t http_default_bounds[] = {5,   10,   25,   50,   100,  250,
                                               500, 1000, 2500, 5000, 10000};

/* latency_buckets: [0.005, 0.01, ...] seconds, ascending, 1 ms at least
 * (the clock requests are timed with counts milliseconds). */
static int http_parse_buckets(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    const zerg_api *a = http_api;
    http_srv_metrics *m = field;
    size_t n = a->node_kind(cx, node) == ZERG_NODE_SEQ ? a->node_len(cx, node) : 0;
    if (n < 1 || n > HTTP_BUCKETS_MAX)
        return a->conf_error(cx, node, "latency_buckets: expected a list of 1 to %d bounds",
                             HTTP_BUCKETS_MAX);
    for (size_t i = 0; i < n; i++) {
        const zerg_conf_node *item = a->node_item(cx, node, i);
        const char *v = a->node_scalar(cx, item);
        char *end = NULL;
        double sec = v ? strtod(v, &end) : 0;
        uint64_t ms = (uint64_t)(sec * 1000 + 0.5);
        if (!v || end == v || *end || sec < 0.001 || sec > 86400 || (double)ms != sec * 1000)
            return a->conf_error(cx, item,
                                 "latency_buckets: expected seconds in whole milliseconds "
                                 "(0.001 to 86400)");
        if (i && ms <= m->bounds[i - 1])
            return a->conf_error(cx, item, "latency_buckets: the bounds must ascend");
        m->bounds[i] = ms;
    }
    m->nbounds = n;
    return 0;
}

/* metrics: false - the block's requests are not counted (what the
 * benchmarks compare the per-request cost against). */
static int http_parse_metrics_on(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    int on = 1;
    if (http_api->conf_bool(cx, node, &on) < 0)
        return -1;
    ((http_srv_metrics *)field)->off = !on;
    return 0;
}

const zerg_directive http_metrics_server_directives[] = {
    {"latency_buckets", ZERG_CONF_CUSTOM, offsetof(http_srv, metrics), http_parse_buckets, 0, 0},
    {"metrics", ZERG_CONF_CUSTOM, offsetof(http_srv, metrics), http_parse_metrics_on, 0, 0},
    ZERG_DIRECTIVE_END,
};

/* ---- registration (master) --------------------------------------------- */

/* Per worker, published every second: connections by state, and the
 * counters the rest of the module keeps in http_W. */
enum { HTTP_M_ACTIVE, HTTP_M_READING, HTTP_M_WRITING, HTTP_M_IDLE, HTTP_M_CONNS };
static int64_t http_conns_h[HTTP_M_CONNS];
static int64_t http_body_h, http_parse_h, http_timeouts_h, http_tries_h, http_fails_h,
    http_retries_h, http_h2_conns_h, http_h2_streams_h, http_h2_goaways_h;
static int http_registered; /* a block registered them (none: the module is only loaded) */

static int64_t http_add(zerg_conf_ctx *cx, int type, const char *name, const char *labels,
                        const char *help, const http_srv_metrics *m)
{
    zerg_metric_def d = {.struct_size = sizeof(d),
                         .type = type,
                         .name = name,
                         .labels = labels,
                         .help = help,
                         .bounds = m ? m->bounds : NULL,
                         .nbounds = m ? m->nbounds : 0,
                         .scale = 1e-3};
    return http_api->metric_add(cx, &d);
}

/* The module's own series: the same handles from every block. */
static int http_add_module_series(zerg_conf_ctx *cx)
{
    static const char *const state[HTTP_M_CONNS] = {"active", "reading", "writing", "idle"};
    for (int k = 0; k < HTTP_M_CONNS; k++) {
        char l[32];
        snprintf(l, sizeof(l), "state=\"%s\"", state[k]);
        http_conns_h[k] = http_add(cx, ZERG_METRIC_GAUGE, "zerg_http_connections", l,
                                   "HTTP connections open now, by state.", NULL);
        if (http_conns_h[k] < 0)
            return -1;
    }
    const struct {
        int64_t *h;
        const char *name, *help;
    } c[] = {
        {&http_body_h, "zerg_http_body_bytes_sent_total", "Response body bytes sent."},
        {&http_parse_h, "zerg_http_parse_errors_total", "Requests refused as malformed."},
        {&http_timeouts_h, "zerg_http_timeouts_total", "Connections closed by a timeout."},
        {&http_tries_h, "zerg_http_upstream_tries_total", "Requests sent to proxy_pass upstreams."},
        {&http_fails_h, "zerg_http_upstream_failures_total", "Upstream connections that failed."},
        {&http_retries_h, "zerg_http_upstream_retries_total",
         "Requests sent again after a failure."},
        {&http_h2_conns_h, "zerg_http_http2_connections_total", "Connections that spoke HTTP/2."},
        {&http_h2_streams_h, "zerg_http_http2_streams_total", "HTTP/2 streams clients opened."},
        {&http_h2_goaways_h, "zerg_http_http2_goaways_total",
         "HTTP/2 connections ended for an error (a flood, a protocol error)."},
    };
    for (size_t i = 0; i < sizeof(c) / sizeof(c[0]); i++)
        if ((*c[i].h = http_add(cx, ZERG_METRIC_COUNTER, c[i].name, NULL, c[i].help, NULL)) < 0)
            return -1;
    http_registered = 1;
    return 0;
}

/* The block's label: server="its first server_name" ("_" without one),
 * escaped as the text format wants. */
static void http_server_label(const http_srv *s, char *buf, size_t len)
{
    const char *name = s->server_name.n ? s->server_name.items[0] : "_";
    size_t o = (size_t)snprintf(buf, len, "server=\"");
    for (; *name && o + 4 < len; name++) {
        if (*name == '"' || *name == '\\')
            buf[o++] = '\\';
        buf[o++] = *name == '\n' ? 'n' : *name;
    }
    snprintf(buf + o, len - o, "\"");
}

int http_metrics_conf_done(zerg_conf_ctx *cx, http_srv *s)
{
    http_srv_metrics *m = &s->metrics;
    char server[256], l[300];
    if (!m->nbounds) {
        m->nbounds = sizeof(http_default_bounds) / sizeof(http_default_bounds[0]);
        memcpy(m->bounds, http_default_bounds, sizeof(http_default_bounds));
    }
    if (http_add_module_series(cx) < 0)
        return -1;
    http_server_label(s, server, sizeof(server));
    for (int k = 1; k <= 5; k++) {
        snprintf(l, sizeof(l), "%s,class=\"%dxx\"", server, k);
        m->by_class[k] =
            http_add(cx, ZERG_METRIC_COUNTER, "zerg_http_requests_total", l,
                     "HTTP requests answered, by server block and status class.", NULL);
        if (m->by_class[k] < 0)
            return -1;
    }
    m->request_hist =
        http_add(cx, ZERG_METRIC_HISTOGRAM, "zerg_http_request_duration_seconds", server,
                 "Time from a request's first byte to the end of its answer "
                 "(millisecond clock).",
                 m);
    m->upstream_hist =
        http_add(cx, ZERG_METRIC_HISTOGRAM, "zerg_http_upstream_duration_seconds", server,
                 "proxy_pass: time from the first connect to the end of the "
                 "upstream's answer (millisecond clock).",
                 m);
    return m->request_hist < 0 || m->upstream_hist < 0 ? -1 : 0;
}

/* ---- publishing (worker) ----------------------------------------------- */

static zerg_timer http_publish_timer;

/* The connection asking for the status page: counted as writing. */
static const http_conn *http_status_asker;

static void http_metrics_publish(void)
{
    const zerg_api *a = http_api;
    uint64_t conns[HTTP_M_CONNS] = {0};
    uint64_t *row = http_W.mrow;
    if (!http_registered)
        return;
    for (http_conn *x = http_W.conns; x; x = x->next) {
        conns[HTTP_M_ACTIVE]++;
        if (x == http_status_asker || x->phase == HTTP_PH_BUSY || a->conn_out_pending(x->c) ||
            http2_busy(x))
            conns[HTTP_M_WRITING]++;
        else if (x->phase == HTTP_PH_HEAD || x->phase == HTTP_PH_BODY)
            conns[HTTP_M_READING]++;
        else
            conns[HTTP_M_IDLE]++;
    }
    for (int k = 0; k < HTTP_M_CONNS; k++)
        row[http_conns_h[k]] = conns[k];
    row[http_body_h] = http_W.body_bytes;
    row[http_parse_h] = http_W.parse_errors;
    row[http_timeouts_h] = http_W.timeouts;
    row[http_tries_h] = http_W.up_tries;
    row[http_fails_h] = http_W.up_failures;
    row[http_retries_h] = http_W.up_retries;
    row[http_h2_conns_h] = http_W.h2_conns;
    row[http_h2_streams_h] = http_W.h2_streams;
    row[http_h2_goaways_h] = http_W.h2_goaways;
}

static void http_publish_fire(zerg_timer *t)
{
    http_metrics_publish();
    http_api->timer_set(http_W.w, t, 1000);
}

void http_metrics_worker_init(zerg_worker *w)
{
    http_W.mrow = http_api->metric_row(w);
    http_publish_timer.fn = http_publish_fire;
    if (http_registered)
        http_api->timer_set(w, &http_publish_timer, 1000);
}

void http_metrics_worker_exit(void)
{
    http_metrics_publish(); /* the last figures, which the master keeps */
    if (http_registered)
        http_api->timer_cancel(http_W.w, &http_publish_timer);
}

/* The module's metrics hook: what is not in the shared rows (the upstream
 * groups' figures, shared already). */
void http_metrics(zerg_worker *w, zerg_text *out)
{
    (void)w;
    http_upstreams_metrics(out);
    http_limit_metrics(out); /* zone totals, kept in shared memory */
}

/* ?per_worker=1 among the request's query parameters. */
static int http_per_worker(http_conn *hc)
{
    static const char key[] = "per_worker=1";
    const size_t kl = sizeof(key) - 1;
    const char *url = http_hbuf(hc, hc->req.url);
    size_t len = hc->req.url.len;
    const char *p = memchr(url, '?', len);
    while (p) {
        p++; /* past '?' or '&' */
        size_t left = len - (size_t)(p - url);
        const char *end = memchr(p, '&', left);
        if ((end ? (size_t)(end - p) : left) == kl && !memcmp(p, key, kl))
            return 1;
        p = end;
    }
    return 0;
}

/* status: true - every metric (api->metrics_ex: the shared ones summed over
 * all workers, then each module's hook, this one's included). */
void http_send_status(http_conn *hc)
{
    size_t n = 0;
    http_status_asker = hc;
    http_metrics_publish();
    http_status_asker = NULL;
    const char *text =
        http_api->metrics_ex(http_W.w, http_per_worker(hc) ? ZERG_METRICS_PER_WORKER : 0, &n);
    if (!text) {
        http_send_error(hc, 500, 0);
        return;
    }
    http_keep(hc);
    static const char ct[] =
        "Content-Type: text/plain; version=0.0.4\r\nCache-Control: no-store\r\n";
    if (http_write_head(hc, 200, ct, sizeof(ct) - 1, (int64_t)n) == 0 && !hc->req.head)
        http_out_write(hc, text, n);
    hc->req.sent = hc->req.head ? 0 : n;
    http_request_done(hc);
}
