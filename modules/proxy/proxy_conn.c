/* proxy_conn.c - one proxied session: a client conn and its upstream conn
 * linked through their ctxs; server choice and retries, zero-copy forwarding
 * with bounded output, half-close, reset propagation, idle timeout. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sys/socket.h>

#include "proxy.h"

#define ADD(p, v) __atomic_add_fetch((p), (v), __ATOMIC_RELAXED)
#define SUB(p, v) __atomic_sub_fetch((p), (v), __ATOMIC_RELAXED)

/* The core's own watermark would stop reading the conn whose output is full,
 * which couples the two directions; we bound each direction ourselves. */
#define PROXY_CORE_HIGH ((size_t)1 << 62)

uint64_t proxy_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static inline proxy_ctx *ctx_of(zerg_conn *c)
{
    return proxy_api->conn_ctx(c);
}

static const zerg_conn_hooks proxy_up_hooks; /* the upstream side's: below */

static const char *srv_name(const proxy_conf *cf, int i)
{
    const char *name = proxy_api->upstream_server(cf->up, i, NULL, NULL);
    return name ? name : "?";
}

/* What balance hash keys on: the client's address, the IPv4 one also when
 * it came mapped into IPv6. */
static const void *client_key(zerg_conn *c, size_t *len)
{
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    socklen_t slen = 0;
    const struct sockaddr *sa = proxy_api->conn_peer(c, &slen);
    *len = 0;
    if (sa && sa->sa_family == AF_INET) {
        *len = 4;
        return &((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    }
    if (sa && sa->sa_family == AF_INET6) {
        const uint8_t *b = ((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr.s6_addr;
        if (memcmp(b, v4mapped, 12) == 0) {
            *len = 4;
            return b + 12;
        }
        *len = 16;
        return b;
    }
    return NULL;
}

/* The connecting state goes, with the bytes it still holds. */
static void connecting_end(zerg_conn *c, proxy_ctx *x)
{
    zerg_worker *w = proxy_api->conn_worker(c);
    proxy_connecting *cn = x->cn;
    if (!cn)
        return;
    for (unsigned i = 0; i < x->npending; i++)
        if (cn->pending[i].ref)
            proxy_api->release(w, cn->pending[i].ref);
    x->npending = 0;
    free(cn);
    x->cn = NULL;
}

static void close_conn(zerg_conn *c, proxy_ctx *x, int abortive)
{
    if (x->closing)
        return;
    x->closing = 1;
    if (abortive) {
        proxy_api->abort(c);
    } else {
        /* a peer that never reads must not keep it open: reset it after this */
        uint64_t linger = x->conf && x->conf->idle_timeout && x->conf->idle_timeout < 30000
                              ? x->conf->idle_timeout
                              : 30000;
        proxy_api->conn_timeout(c, linger);
        proxy_api->close(c);
    }
}

/* Both directions are done, or the session ends: close both gracefully. */
static void close_session(zerg_conn *c, proxy_ctx *x)
{
    zerg_conn *peer = x->peer;
    if (peer)
        close_conn(peer, ctx_of(peer), 0);
    close_conn(c, x, 0);
}

/* ---- choosing a server and connecting --------------------------------- */

static void no_server(zerg_conn *c, proxy_ctx *x)
{
    proxy_conf *cf = x->conf;
    proxy_worker_state *ws = cf->ws;
    ADD(&cf->shm->no_server, 1);
    proxy_count(cf, PROXY_C_NO_SERVER);
    uint64_t now = proxy_now();
    if (!ws || now - ws->last_nolog_ms >= 1000) {
        if (ws)
            ws->last_nolog_ms = now;
        proxy_api->log(ZERG_LOG_WARN,
                       "proxy: no upstream server available (%u tried), closing client",
                       (unsigned)x->tries);
    }
    connecting_end(c, x);
    proxy_end_by(x, PROXY_END_NO_SERVER);
    close_conn(c, x, 0);
}

/* The host of a server named "host:port" or "[v6]:port", to verify its
 * certificate against and send as SNI (unless upstream_tls names one). */
static const char *host_of(const char *name, char *buf, size_t len)
{
    const char *end = name[0] == '[' ? strchr(name, ']') : strrchr(name, ':');
    size_t n = end ? (size_t)(end - name) : strlen(name);
    if (name[0] == '[')
        name++, n--;
    snprintf(buf, len, "%.*s", (int)n, name);
    return buf;
}

/* A connection to server i (sa, named name): over TLS with upstream_tls. */
static zerg_conn *connect_to(zerg_worker *w, proxy_conf *cf, const char *name,
                             const struct sockaddr *sa, socklen_t salen)
{
    const zerg_api *a = proxy_api;
    if (!cf->tls)
        return a->connect_with(w, &proxy_up_hooks, cf, sa, salen, cf->connect_timeout);
    char host[256];
    return a->connect_tls(w, &proxy_up_hooks, cf, sa, salen, cf->connect_timeout, cf->tls,
                          host_of(name, host, sizeof(host)));
}

/* Picks the next eligible server and starts connecting to it. Returns 0 when
 * a connect is under way, -1 after closing the client. */
static int session_connect(zerg_conn *c, proxy_ctx *x)
{
    const zerg_api *a = proxy_api;
    proxy_conf *cf = x->conf;
    zerg_worker *w = a->conn_worker(c);
    size_t nservers = a->upstream_size(cf->up);
    unsigned max =
        cf->next_upstream_tries > 0 ? (unsigned)cf->next_upstream_tries : (unsigned)nservers;
    size_t klen = 0;
    const void *key = x->want_key ? client_key(c, &klen) : NULL;

    while (x->tries < max) {
        int i = a->upstream_pick(w, cf->up, key, klen, &x->cn->tried);
        if (i < 0)
            break;
        x->tries++;
        x->last_srv = (int16_t)i;
        const struct sockaddr *sa;
        socklen_t salen;
        const char *name = a->upstream_server(cf->up, i, &sa, &salen);
        zerg_conn *up = connect_to(w, cf, name, sa, salen);
        if (!up) {
            int e = errno;
            a->upstream_note(cf->up, i, ZERG_UPSTREAM_ERROR, 0);
            a->log(ZERG_LOG_WARN, "proxy: connect to %s: %s", name, strerror(e));
            continue;
        }
        proxy_ctx *u = ctx_of(up);
        u->conf = cf;
        u->srv = (int16_t)i;
        u->peer = c;
        u->counted = 1;
        a->upstream_note(cf->up, i, ZERG_UPSTREAM_OPEN, 0);
        x->peer = up;
        return 0;
    }
    no_server(c, x);
    return -1;
}

void proxy_on_open(zerg_conn *c)
{
    const zerg_api *a = proxy_api;
    proxy_ctx *x = ctx_of(c);
    proxy_conf *cf = a->conn_conf(c);
    x->conf = cf;
    x->srv = -1;
    x->last_srv = -1;
    x->connect_ms = -1;
    x->open_ms = proxy_now();
    x->open_unix = a->unix_time(a->conn_worker(c));
    ADD(&cf->shm->clients_total, 1);
    proxy_count(cf, PROXY_C_CLIENTS);
    uint64_t n = ADD(&cf->shm->clients, 1);
    x->admitted = 1;
    if (cf->max_connections > 0 && n > (uint64_t)cf->max_connections) {
        ADD(&cf->shm->rejected, 1);
        proxy_count(cf, PROXY_C_REJECTED);
        proxy_worker_state *ws = cf->ws;
        uint64_t now = proxy_now();
        if (!ws || now - ws->last_nolog_ms >= 1000) {
            if (ws)
                ws->last_nolog_ms = now;
            a->log(ZERG_LOG_WARN, "proxy: max_connections (%lld) reached, closing client",
                   (long long)cf->max_connections);
        }
        proxy_end_by(x, PROXY_END_REJECTED);
        close_conn(c, x, 0);
        return;
    }
    if (!(x->cn = calloc(1, sizeof(*x->cn)))) {
        a->log(ZERG_LOG_ERROR, "proxy: out of memory, closing client");
        proxy_end_by(x, PROXY_END_ERROR);
        close_conn(c, x, 0);
        return;
    }
    x->want_key = a->upstream_hash_key(cf->up) != NULL;
    x->last_ms = a->now_ms(a->conn_worker(c));
    if (cf->idle_timeout)
        a->conn_timeout(c, cf->idle_timeout);
    session_connect(c, x);
}

/* ---- the upstream answered -------------------------------------------- */

static void upstream_ready(zerg_conn *up, proxy_ctx *u)
{
    const zerg_api *a = proxy_api;
    proxy_conf *cf = u->conf;
    zerg_conn *c = u->peer;
    proxy_ctx *x = ctx_of(c);
    size_t low = cf->buffer_size / 2;

    a->conn_set_watermarks(up, low, PROXY_CORE_HIGH);
    a->conn_set_watermarks(c, low, PROXY_CORE_HIGH);
    if (cf->proxy_protocol) {
        uint8_t hdr[PROXY_PP_MAX];
        socklen_t len = 0;
        const struct sockaddr *src = a->conn_peer(c, &len);
        const struct sockaddr *dst = ZERG_API_HAS(a, conn_local) ? a->conn_local(c, &len) : NULL;
        size_t n = proxy_pp_encode(cf->proxy_protocol, src, dst, hdr, sizeof(hdr));
        if (n)
            a->write(up, hdr, n);
    }
    for (unsigned i = 0; i < x->npending; i++) {
        proxy_pending *p = &x->cn->pending[i];
        if (p->ref)
            a->write_ref(up, p->data, p->len, p->ref);
        u->tx += p->len;
    }
    x->npending = 0; /* write_ref took the references */
    connecting_end(c, x);
    if (x->eof_in) {
        a->shutdown(up, SHUT_WR);
        u->shut_out = 1;
    }
    if (x->paused && !x->eof_in) {
        x->paused = 0;
        a->resume_read(c);
    }
}

static void up_on_connect(zerg_conn *c, int status)
{
    proxy_ctx *x = ctx_of(c);
    if (status != 0)
        return; /* a failure: on_close follows and retries */
    x->connected = 1;
    proxy_api->upstream_note(x->conf->up, x->srv, ZERG_UPSTREAM_OK, 0);
    if (!x->peer) { /* the client left meanwhile */
        close_conn(c, x, 1);
        return;
    }
    proxy_ctx *cl = ctx_of(x->peer);
    cl->connect_ms = (int64_t)(proxy_now() - cl->open_ms);
    upstream_ready(c, x);
}

/* ---- forwarding -------------------------------------------------------- */

/* Bytes of c (ctx x) for its peer, the session's client ctx being cl. */
static size_t forward(zerg_conn *c, proxy_ctx *x, proxy_ctx *cl, const uint8_t *data, size_t len)
{
    const zerg_api *a = proxy_api;
    zerg_conn *peer = x->peer;
    proxy_ctx *px = ctx_of(peer);
    cl->last_ms = a->now_ms(a->conn_worker(c));
    if (px->closing || px->shut_out) {
        x->rx += len;
        return len; /* nowhere to go */
    }
    zerg_ref *r = a->hold(c, data);
    if (r)
        a->write_ref(peer, data, len, r);
    else
        a->write(peer, data, len);
    x->rx += len;
    px->tx += len;
    if (a->conn_out_pending(peer) > x->conf->buffer_size) {
        a->pause_read(c);
        x->paused = 1;
        a->conn_want_drain(peer);
    }
    return len;
}

/* Bytes from the client, held while its upstream connects. */
size_t proxy_on_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    const zerg_api *a = proxy_api;
    proxy_ctx *x = ctx_of(c);
    if (!x->peer) {
        x->rx += len;
        return len;
    }
    proxy_ctx *px = ctx_of(x->peer);
    if (!px->connected && !px->closing && !px->shut_out) {
        x->last_ms = a->now_ms(a->conn_worker(c));
        /* hold the bytes until the upstream answers */
        if (x->npending >= PROXY_PENDING_MAX) {
            a->pause_read(c);
            x->paused = 1;
            return 0;
        }
        proxy_pending *p = &x->cn->pending[x->npending++];
        p->data = data;
        p->len = len;
        p->ref = a->hold(c, data);
        if (!p->ref) { /* cannot hold it: leave it to the core's carry-over */
            x->npending--;
            a->pause_read(c);
            x->paused = 1;
            return 0;
        }
        if (x->npending == PROXY_PENDING_MAX) {
            a->pause_read(c);
            x->paused = 1;
        }
        x->rx += len;
        return len;
    }
    return forward(c, x, x, data, len);
}

/* Bytes from the upstream. */
static size_t up_on_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    proxy_ctx *x = ctx_of(c);
    if (!x->peer) {
        x->rx += len;
        return len;
    }
    return forward(c, x, ctx_of(x->peer), data, len);
}

/* c's output queue emptied: resume the conn that feeds it. */
void proxy_on_drain(zerg_conn *c)
{
    proxy_ctx *x = ctx_of(c);
    if (!x->peer)
        return;
    zerg_conn *src = x->peer;
    proxy_ctx *s = ctx_of(src);
    if (!s->paused || s->closing || s->eof_in)
        return;
    if (proxy_api->conn_out_pending(c) > x->conf->buffer_size / 2) {
        proxy_api->conn_want_drain(c);
        return;
    }
    s->paused = 0;
    proxy_api->resume_read(src);
}

/* ---- half-close, timeouts, close --------------------------------------- */

/* A FIN from c goes on to its peer; the session ends when both sent one. */
static void forward_eof(zerg_conn *c, proxy_ctx *x)
{
    zerg_conn *peer = x->peer;
    proxy_ctx *px = ctx_of(peer);
    if (!px->shut_out && !px->closing) {
        proxy_api->shutdown(peer, SHUT_WR);
        px->shut_out = 1;
    }
    if (px->eof_in)
        close_session(c, x);
}

void proxy_on_eof(zerg_conn *c)
{
    proxy_ctx *x = ctx_of(c);
    x->eof_in = 1;
    proxy_end_by(x, PROXY_END_CLIENT);
    if (!x->peer) {
        close_conn(c, x, 0);
        return;
    }
    if (!ctx_of(x->peer)->connected)
        return; /* upstream_ready() forwards the FIN */
    forward_eof(c, x);
}

static void up_on_eof(zerg_conn *c)
{
    proxy_ctx *x = ctx_of(c);
    x->eof_in = 1;
    if (!x->peer) {
        close_conn(c, x, 0);
        return;
    }
    proxy_end_by(ctx_of(x->peer), PROXY_END_SERVER);
    forward_eof(c, x);
}

/* A graceful close of c that could not flush in time: 1 when it was. */
static int close_timed_out(zerg_conn *c, proxy_ctx *x)
{
    if (!x->closing)
        return 0;
    proxy_api->log(ZERG_LOG_DEBUG, "proxy: close timed out with %zu bytes unsent, resetting",
                   proxy_api->conn_out_pending(c));
    proxy_api->abort(c);
    return 1;
}

void proxy_on_timeout(zerg_conn *c)
{
    const zerg_api *a = proxy_api;
    proxy_ctx *x = ctx_of(c);
    if (close_timed_out(c, x))
        return;
    proxy_conf *cf = x->conf;
    if (cf->idle_timeout) {
        uint64_t now = a->now_ms(a->conn_worker(c));
        uint64_t idle = now - x->last_ms;
        if (idle + 1 < cf->idle_timeout) {
            a->conn_timeout(c, cf->idle_timeout - idle);
            return;
        }
        a->log(ZERG_LOG_INFO, "proxy: idle timeout (%llu ms), closing session",
               (unsigned long long)cf->idle_timeout);
    }
    proxy_end_by(x, PROXY_END_TIMEOUT);
    close_session(c, x);
}

static void up_on_timeout(zerg_conn *c)
{
    proxy_ctx *x = ctx_of(c);
    if (close_timed_out(c, x))
        return;
    proxy_end_by(x->peer ? ctx_of(x->peer) : NULL, PROXY_END_TIMEOUT);
    close_session(c, x);
}

static void close_debug(const char *who, proxy_ctx *x, int err)
{
    proxy_api->log(ZERG_LOG_DEBUG, "proxy: %s closed, err %d rx %llu tx %llu", who, err,
                   (unsigned long long)x->rx, (unsigned long long)x->tx);
}

static void upstream_closed(proxy_ctx *u, int err)
{
    const zerg_api *a = proxy_api;
    proxy_conf *cf = u->conf;
    /* the bytes first: a reader that sees the connection no longer active
     * (stats file, metrics of another worker) then sees them counted */
    if (u->rx)
        a->upstream_note(cf->up, u->srv, ZERG_UPSTREAM_BYTES_IN, u->rx);
    if (u->tx)
        a->upstream_note(cf->up, u->srv, ZERG_UPSTREAM_BYTES_OUT, u->tx);
    if (u->counted) {
        a->upstream_note(cf->up, u->srv, ZERG_UPSTREAM_CLOSE, 0);
        u->counted = 0;
    }
    zerg_conn *c = u->peer;
    if (!u->connected) {
        if (!c)
            return; /* cancelled because the client left */
        int down = a->upstream_note(cf->up, u->srv, ZERG_UPSTREAM_FAIL, 0);
        proxy_api->log(down ? ZERG_LOG_WARN : ZERG_LOG_INFO, "proxy: connect to %s failed: %s%s",
                       srv_name(cf, u->srv), strerror(err < 0 ? -err : EIO),
                       down ? "; server marked down" : "");
        proxy_ctx *x = ctx_of(c);
        x->peer = NULL;
        if (!x->closing)
            session_connect(c, x);
        return;
    }
    if (c) {
        proxy_ctx *x = ctx_of(c);
        x->peer = NULL;
        proxy_end_by(x, err != 0 ? PROXY_END_ERROR : PROXY_END_SERVER);
        if (err != 0 && !x->closing)
            proxy_api->log(ZERG_LOG_INFO, "proxy: upstream %s: %s, resetting the client",
                           srv_name(cf, u->srv), strerror(-err));
        close_conn(c, x, err != 0);
    }
}

static void up_on_close(zerg_conn *c, int err)
{
    proxy_ctx *u = ctx_of(c);
    close_debug("upstream", u, err);
    upstream_closed(u, err);
    u->peer = NULL;
    u->closing = 1;
}

void proxy_on_close(zerg_conn *c, int err)
{
    proxy_ctx *x = ctx_of(c);
    close_debug("client", x, err);
    connecting_end(c, x);
    if (x->admitted)
        SUB(&x->conf->shm->clients, 1);
    proxy_end_by(x, err != 0 ? PROXY_END_ERROR : PROXY_END_CLIENT);
    proxy_log_session(c, x);
    zerg_conn *peer = x->peer;
    if (peer) {
        proxy_ctx *px = ctx_of(peer);
        px->peer = NULL;
        close_conn(peer, px, err != 0 || !px->connected);
    }
    x->peer = NULL;
    x->closing = 1;
}

/* The upstream side of a session: data, drain and connect as above. */
static const zerg_conn_hooks proxy_up_hooks = {
    .struct_size = sizeof(zerg_conn_hooks),
    .on_connect = up_on_connect,
    .on_data = up_on_data,
    .on_eof = up_on_eof,
    .on_drain = proxy_on_drain,
    .on_timeout = up_on_timeout,
    .on_close = up_on_close,
};
