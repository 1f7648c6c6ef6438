/* zg_upstream_health.c - a group's active health checks, run in one worker
 * only: a timer per server, a connect (plus optional send/expect) through
 * the api, and the rise/fall verdict published in the shared slots that
 * every worker's choice reads. The checks' connections have hooks of their
 * own (hc_hooks); each one's conn_conf is its check. */
#define _GNU_SOURCE
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_upstream.h"

#define ZG_UP_HC_BUF 512

struct zg_up_hc {
    zerg_timer timer;
    zerg_upstream *u;
    zerg_conn *conn;
    uint16_t srv;
    uint8_t resolved; /* this round's verdict is in */
    uint8_t stopping;
    uint8_t closing; /* its conn is being closed */
    size_t got;
    char buf[ZG_UP_HC_BUF];
};

static void hc_result(zg_up_hc *hc, int ok, const char *why)
{
    zerg_upstream *u = hc->u;
    const zg_up_hc_conf *hcc = &u->hc;
    zg_up_shm_srv *s = &u->shm[hc->srv];
    const char *name = u->servers[hc->srv].name;
    if (hc->resolved)
        return;
    hc->resolved = 1;
    __atomic_add_fetch(&s->hc_checks, 1, __ATOMIC_RELAXED);
    zg_up_count(u, hc->srv, ZG_UP_C_HC_CHECKS, 1);
    if (!ok) {
        __atomic_add_fetch(&s->hc_failed, 1, __ATOMIC_RELAXED);
        zg_up_count(u, hc->srv, ZG_UP_C_HC_FAILED, 1);
    }
    uint32_t down = __atomic_load_n(&s->hc_down, __ATOMIC_RELAXED);
    if (down == (uint32_t)!ok) { /* the result agrees with the state */
        s->hc_streak = 0;
        return;
    }
    s->hc_streak++;
    if (down && s->hc_streak >= (uint64_t)hcc->rise) {
        s->hc_streak = 0;
        __atomic_store_n(&s->down_until, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->fails, 0, __ATOMIC_RELAXED);
        __atomic_store_n(&s->hc_down, 0, __ATOMIC_RELEASE);
        zg_up_api->log(ZERG_LOG_NOTICE,
                       "upstream %s: server %s is up (health check passed %lld times)", u->name,
                       name, (long long)hcc->rise);
    } else if (!down && s->hc_streak >= (uint64_t)hcc->fall) {
        s->hc_streak = 0;
        __atomic_store_n(&s->hc_down, 1, __ATOMIC_RELEASE);
        zg_up_api->log(ZERG_LOG_WARN,
                       "upstream %s: server %s is down (health check failed %lld times: %s)",
                       u->name, name, (long long)hcc->fall, why);
    }
}

/* Like HAProxy: no TIME_WAIT left behind by checks. */
static void hc_close(zg_up_hc *hc)
{
    if (hc->conn && !hc->closing) {
        hc->closing = 1;
        zg_up_api->abort(hc->conn);
    }
}

static void hc_finish(zg_up_hc *hc, int ok, const char *why)
{
    hc_result(hc, ok, why);
    hc_close(hc);
}

static zg_up_hc *hc_of(zerg_conn *c)
{
    return zg_up_api->conn_conf(c);
}

static void hc_on_connect(zerg_conn *c, int status)
{
    zg_up_hc *hc = hc_of(c);
    const zg_up_hc_conf *hcc = &hc->u->hc;
    if (status != 0) {
        hc_result(hc, 0, strerror(-status));
        return; /* on_close follows */
    }
    if (hc->stopping) {
        hc_finish(hc, 0, "stopping");
        return;
    }
    if (hcc->send)
        zg_up_api->write(c, hcc->send, strlen(hcc->send));
    if (!hcc->expect)
        hc_finish(hc, 1, "connected");
}

static size_t hc_on_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    zg_up_hc *hc = hc_of(c);
    const char *expect = hc->u->hc.expect;
    if (hc->resolved || !expect)
        return len;
    size_t room = sizeof(hc->buf) - hc->got;
    size_t n = len < room ? len : room;
    memcpy(hc->buf + hc->got, data, n);
    hc->got += n;
    if (memmem(hc->buf, hc->got, expect, strlen(expect)))
        hc_finish(hc, 1, "expected reply");
    else if (hc->got == sizeof(hc->buf))
        hc_finish(hc, 0, "unexpected reply");
    return len;
}

/* A timeout, or the server closed first: the check ends without the
 * expected reply. */
static void hc_on_timeout(zerg_conn *c)
{
    zg_up_hc *hc = hc_of(c);
    hc_finish(hc, 0, hc->got ? "unexpected reply" : "no reply");
}

static void hc_on_close(zerg_conn *c, int err)
{
    zg_up_hc *hc = hc_of(c);
    if (!hc->resolved)
        hc_result(hc, 0, err ? strerror(-err) : "closed");
    hc->conn = NULL;
    hc->closing = 0;
}

static const zerg_conn_hooks hc_hooks = {
    .struct_size = sizeof(zerg_conn_hooks),
    .on_connect = hc_on_connect,
    .on_data = hc_on_data,
    .on_eof = hc_on_timeout,
    .on_timeout = hc_on_timeout,
    .on_close = hc_on_close,
};

void zg_up_tls(zerg_upstream *u, const zerg_tls_client *tls)
{
    u->tls = tls;
}

/* The host of a server's address as configured ("host:port", "[v6]:port"):
 * the name its certificate is verified against. */
static const char *host_of(const char *addr, char *buf, size_t len)
{
    const char *end = addr[0] == '[' ? strchr(addr, ']') : strrchr(addr, ':');
    size_t n = end ? (size_t)(end - addr) : strlen(addr);
    if (addr[0] == '[')
        addr++, n--;
    snprintf(buf, len, "%.*s", (int)n, addr);
    return buf;
}

static void hc_fire(zerg_timer *t)
{
    const zerg_api *a = zg_up_api;
    zg_up_hc *hc = t->data;
    zerg_upstream *u = hc->u;
    if (hc->stopping)
        return;
    a->timer_set(u->w, &hc->timer, u->hc.interval);
    if (hc->conn) /* the previous check is still running */
        return;
    const zg_up_server *s = &u->servers[hc->srv];
    hc->resolved = 0;
    hc->got = 0;
    const struct sockaddr *sa = (const struct sockaddr *)&s->ss;
    char host[256];
    zerg_conn *c = u->tls ? a->connect_tls(u->w, &hc_hooks, hc, sa, s->len, u->hc.timeout, u->tls,
                                           host_of(s->name, host, sizeof(host)))
                          : a->connect_with(u->w, &hc_hooks, hc, sa, s->len, u->hc.timeout);
    if (!c) {
        hc_result(hc, 0, strerror(errno));
        return;
    }
    hc->conn = c;
    a->conn_timeout(c, u->hc.timeout);
}

int zg_up_hc_start(zerg_worker *w, zerg_upstream *u)
{
    u->checks = calloc(u->nservers, sizeof(*u->checks));
    if (!u->checks)
        return -1;
    for (size_t i = 0; i < u->nservers; i++) {
        zg_up_hc *hc = &u->checks[i];
        hc->u = u;
        hc->srv = (uint16_t)i;
        hc->timer.fn = hc_fire;
        hc->timer.data = hc;
        if (u->servers[i].down) { /* in maintenance: nothing to check, nothing to log */
            hc->stopping = 1;
            continue;
        }
        /* the first round soon, spread over a little time */
        zg_up_api->timer_set(w, &hc->timer, 5 + (uint64_t)i * 3);
    }
    return 0;
}

/* The checks stay allocated: a check's conn the core closes later still
 * reaches it through on_close. */
void zg_up_hc_stop(zerg_upstream *u)
{
    for (size_t i = 0; u->checks && i < u->nservers; i++) {
        zg_up_hc *hc = &u->checks[i];
        if (hc->stopping)
            continue;
        hc->stopping = 1;
        zg_up_api->timer_cancel(u->w, &hc->timer);
        hc->resolved = 1; /* not a verdict */
        hc_close(hc);
    }
}
