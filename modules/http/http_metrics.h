/* http_metrics.h - the http module's series in the master's shared metrics:
 * requests by server block and status class, request and upstream latency
 * histograms (latency_buckets), and what each request adds to them. */
#ifndef HTTP_METRICS_H
#define HTTP_METRICS_H

#include "http.h"

extern const zerg_directive http_metrics_server_directives[];

/* Master: s's series (conf_done). */
int http_metrics_conf_done(zerg_conf_ctx *cx, http_srv *s);
/* Worker: its row, and the figures it publishes every second (its
 * connections by state, the counters other files keep in http_W). */
void http_metrics_worker_init(zerg_worker *w);
void http_metrics_worker_exit(void);

/* The answer of hc's request, counted where it ended (no lock, no atomic). */
static inline void http_metrics_request(const http_conn *hc, uint64_t now)
{
    const http_req *r = &hc->req;
    const http_srv_metrics *m = &hc->srv->metrics;
    uint64_t *row = http_W.mrow;
    int cls = r->status / 100;
    if (m->off)
        return;
    if (cls >= 1 && cls <= 5)
        row[m->by_class[cls]]++;
    zerg_histogram_observe(row, m->request_hist, m->bounds, m->nbounds,
                           r->start_ms && now > r->start_ms ? now - r->start_ms : 0);
    if (r->up_addr)
        zerg_histogram_observe(row, m->upstream_hist, m->bounds, m->nbounds, r->up_ms);
}

#endif
