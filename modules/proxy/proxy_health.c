/* proxy_health.c - active health checks, run only in worker 0: one timer per
 * server, a connect (plus optional send/expect) through the core, and the
 * rise/fall verdict published in shared memory for every worker. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "proxy.h"

#define PROXY_HC_BUF 512

struct proxy_hc {
    zerg_timer timer;
    proxy_worker_state *ws;
    zerg_conn *conn;
    uint16_t srv;
    uint8_t resolved;
    uint8_t stopping;
    size_t got;
    char buf[PROXY_HC_BUF];
};

static void hc_result(proxy_hc *hc, int ok, const char *why)
{
    proxy_conf *cf = hc->ws->conf;
    const proxy_hc_conf *hcc = &cf->up.hc;
    proxy_shm_srv *s = &cf->shm->srv[hc->srv];
    const char *name = cf->up.servers[hc->srv].addr.text;
    if (hc->resolved)
        return;
    hc->resolved = 1;
    __atomic_add_fetch(&s->hc_checks, 1, __ATOMIC_RELAXED);
    if (!ok)
        __atomic_add_fetch(&s->hc_failed, 1, __ATOMIC_RELAXED);
    uint32_t down = __atomic_load_n(&s->hc_down, __ATOMIC_RELAXED);
    if (down == (uint32_t)!ok) { /* result agrees with the state */
        s->hc_streak = 0;
        return;
    }
    s->hc_streak++;
    if (down && s->hc_streak >= (uint64_t)hcc->rise) {
        s->hc_streak = 0;
        __atomic_store_n(&s->down_until, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->fails, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->hc_down, 0, __ATOMIC_RELEASE);
        proxy_api->log(ZERG_LOG_NOTICE, "proxy: server %s is up (health check passed %lld times)",
                       name, (long long)hcc->rise);
    } else if (!down && s->hc_streak >= (uint64_t)hcc->fall) {
        s->hc_streak = 0;
        __atomic_store_n(&s->hc_down, 1, __ATOMIC_RELEASE);
        proxy_api->log(ZERG_LOG_WARN,
                       "proxy: server %s is down (health check failed %lld times: %s)", name,
                       (long long)hcc->fall, why);
    }
}

static void hc_fire(zerg_timer *t)
{
    const zerg_api *a = proxy_api;
    proxy_hc *hc = t->data;
    proxy_worker_state *ws = hc->ws;
    proxy_conf *cf = ws->conf;
    if (hc->stopping)
        return;
    a->timer_set(ws->w, &hc->timer, cf->up.hc.interval);
    if (hc->conn) /* the previous check is still running */
        return;
    const proxy_server *s = &cf->up.servers[hc->srv];
    hc->resolved = 0;
    hc->got = 0;
    zerg_conn *c = a->connect(ws->w, &zerg_module_info, cf, (const struct sockaddr *)&s->addr.ss,
                              s->addr.len, cf->up.hc.timeout);
    if (!c) {
        hc_result(hc, 0, strerror(errno));
        return;
    }
    proxy_ctx *x = a->conn_ctx(c);
    x->kind = PROXY_K_HEALTH;
    x->conf = cf;
    x->hc = hc;
    hc->conn = c;
    a->conn_timeout(c, cf->up.hc.timeout);
}

int proxy_hc_start(zerg_worker *w, proxy_worker_state *ws)
{
    proxy_conf *cf = ws->conf;
    size_t n = cf->up.nservers;
    ws->hc = calloc(n, sizeof(*ws->hc));
    if (!ws->hc)
        return -1;
    for (size_t i = 0; i < n; i++) {
        proxy_hc *hc = &ws->hc[i];
        hc->ws = ws;
        hc->srv = (uint16_t)i;
        hc->timer.fn = hc_fire;
        hc->timer.data = hc;
        if (cf->up.servers[i].down) { /* in maintenance: nothing to check, nothing to log */
            hc->stopping = 1;
            continue;
        }
        /* first round soon, spread over a little time */
        proxy_api->timer_set(w, &hc->timer, 5 + (uint64_t)i * 3);
    }
    return 0;
}

void proxy_hc_stop(proxy_worker_state *ws)
{
    if (!ws->hc)
        return;
    for (size_t i = 0; i < ws->conf->up.nservers; i++) {
        proxy_hc *hc = &ws->hc[i];
        if (hc->stopping)
            continue;
        hc->stopping = 1;
        proxy_api->timer_cancel(ws->w, &hc->timer);
        if (hc->conn) {
            proxy_ctx *x = proxy_api->conn_ctx(hc->conn);
            hc->resolved = 1; /* not a verdict */
            if (!x->closing) {
                x->closing = 1;
                proxy_api->abort(hc->conn);
            }
        }
    }
}

static void hc_finish(zerg_conn *c, proxy_ctx *x, int ok, const char *why)
{
    hc_result(x->hc, ok, why);
    if (!x->closing) { /* like HAProxy: no TIME_WAIT left behind by checks */
        x->closing = 1;
        proxy_api->abort(c);
    }
}

void proxy_hc_on_connect(zerg_conn *c, proxy_ctx *x, int status)
{
    proxy_hc *hc = x->hc;
    const proxy_hc_conf *hcc = &x->conf->up.hc;
    if (status != 0) {
        hc_result(hc, 0, strerror(-status));
        return; /* on_close follows */
    }
    if (hc->stopping) {
        hc_finish(c, x, 0, "stopping");
        return;
    }
    if (hcc->send)
        proxy_api->write(c, hcc->send, strlen(hcc->send));
    if (!hcc->expect)
        hc_finish(c, x, 1, "connected");
}

size_t proxy_hc_on_data(zerg_conn *c, proxy_ctx *x, const uint8_t *data, size_t len)
{
    proxy_hc *hc = x->hc;
    const char *expect = x->conf->up.hc.expect;
    if (hc->resolved || !expect)
        return len;
    size_t room = sizeof(hc->buf) - hc->got;
    size_t n = len < room ? len : room;
    memcpy(hc->buf + hc->got, data, n);
    hc->got += n;
    if (memmem(hc->buf, hc->got, expect, strlen(expect)))
        hc_finish(c, x, 1, "expected reply");
    else if (hc->got == sizeof(hc->buf))
        hc_finish(c, x, 0, "unexpected reply");
    return len;
}

void proxy_hc_on_timeout(zerg_conn *c, proxy_ctx *x)
{
    hc_finish(c, x, 0, x->hc->got ? "unexpected reply" : "no reply");
}

void proxy_hc_on_close(zerg_conn *c, proxy_ctx *x, int err)
{
    proxy_hc *hc = x->hc;
    (void)c;
    if (!hc)
        return;
    if (!hc->resolved)
        hc_result(hc, 0, err ? strerror(-err) : "closed");
    hc->conn = NULL;
}
