/* modules/http/http_proxy.c - proxy_pass: a request for such a location goes
 * as HTTP/1.1 to its upstream (a kept connection, or a new one to the host or
 * to its group's next server), its body streamed as it comes; the answer is
 * parsed by llhttp and relayed with hop-by-hop fields replaced, its body sent
 * from the receive buffers; a failure is answered 502/504 or sent again. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_access.h"
#include "http_out.h"
#include "http_proxy.h"

_Static_assert(sizeof(http_up) <= sizeof(http_conn), "http_up lives in an http_conn ctx");

static const llhttp_settings_t http_up_settings; /* the answer parser's: below */
static const zerg_conn_hooks http_up_hooks;      /* the upstream connections': below */
static int http_up_can_retry(const http_up *up);
static void http_up_retry(http_up *up, int abort_it);

static http_up *up_of(zerg_conn *c)
{
    return http_api->conn_ctx(c);
}

/* n bytes received from (BYTES_IN) or sent to (BYTES_OUT) up's server: kept
 * in up and added to its group's shared metrics once per request, when it
 * stops counting as active there (http_upstream_count), not once per chunk. */
void http_up_bytes(http_up *up, int event, size_t n)
{
    if (event == ZERG_UPSTREAM_BYTES_IN)
        up->rx += n;
    else
        up->tx += n;
}

/* ---- the life of an upstream ---------------------------------------------- */

static void http_up_log(http_up *up, int level, const char *what)
{
    http_conn *hc = up->hc;
    const char *ru = "", *m = "";
    size_t rl = 0;
    if (hc) {
        http_request_uri(hc, &ru, &rl);
        m = llhttp_method_name((llhttp_method_t)hc->req.method);
    }
    const http_upstream *g = up->loc->proxy->group;
    const char *name = g ? http_api->upstream_server(g->group, up->server, NULL, NULL) : NULL;
    http_api->log(level, "http: upstream %s: %s, for \"%s %.*s\"",
                  name ? name : up->loc->proxy->host, what, m, (int)(rl > 200 ? 200 : rl), ru);
}

/* The client's body flows again: an HTTP/1.1 connection reads again, an
 * HTTP/2 stream's window reopens for what the upstream took. */
static void http_up_client_resume(http_up *up, http_conn *hc)
{
    up->client_paused = 0;
    if (hc->h2)
        http2_stream_consume(hc);
    else
        http_api->resume_read(hc->c);
}

static http_conn *http_up_detach(http_up *up)
{
    http_conn *hc = up->hc;
    http_upstream_count(up, 0); /* its server serves no request of ours now */
    if (hc) {
        hc->up = NULL;
        up->hc = NULL;
        if (up->client_paused) /* its body goes nowhere now: read on */
            http_up_client_resume(up, hc);
        up->client_paused = 0;
    }
    return hc;
}

/* $upstream_response_time: from the first connect to now. */
static void http_up_timed(http_conn *hc)
{
    uint64_t now = http_api->now_ms(http_W.w);
    hc->req.up_ms = now > hc->req.up_start_ms ? now - hc->req.up_start_ms : 0;
}

/* The answer is complete (ok) or cut short after its head went out; the
 * upstream is closed unless it is closing already. */
void http_up_finish(http_up *up, int ok, int close_it)
{
    http_conn *hc = http_up_detach(up);
    if (close_it && ok && !http_up_park(up))
        http_api->close(up->c);
    else if (close_it && !ok)
        http_api->abort(up->c);
    if (!hc)
        return;
    http_up_timed(hc);
    if (!ok) { /* the client sees the answer end short */
        hc->req.keepalive = 0;
        if (hc->h2)
            http2_stream_abort(hc); /* reset, not a clean END_STREAM */
    }
    http_request_done(hc);
}

/* The upstream failed: an error page when nothing was sent yet. why NULL:
 * its TLS handshake failed, which the core logged with the reason. */
static void http_up_fail(http_up *up, int status, const char *why, int abort_it)
{
    http_W.up_failures++;
    if (!up->head_sent && !up->reused)
        http_upstream_result(up, 0);
    if (http_up_can_retry(up)) {
        char msg[160];
        snprintf(msg, sizeof(msg), "%s, sent again on a new connection",
                 up->reused ? "kept-alive connection lost"
                 : why      ? why
                            : "TLS handshake failed");
        http_up_log(up, up->reused ? ZERG_LOG_INFO : ZERG_LOG_ERROR, msg);
        http_W.up_retries++;
        http_up_retry(up, abort_it);
        return;
    }
    if (why)
        http_up_log(up, ZERG_LOG_ERROR, why);
    if (up->head_sent) {
        up->done = 1;
        http_up_finish(up, 0, abort_it);
        return;
    }
    http_conn *hc = http_up_detach(up);
    if (abort_it)
        http_api->abort(up->c);
    if (!hc)
        return;
    hc->req.up_status = status;
    http_up_timed(hc);
    if (hc->phase == HTTP_PH_BUSY)
        http_send_error(hc, status, 0);
    else
        hc->proxy_status = status; /* answered once the request is complete */
}

/* Sends len bytes at `at`, received on from, to `to`: from the receive
 * buffer itself where it can be held (else copied), as one chunk when
 * chunked. */
void http_relay(zerg_conn *from, zerg_conn *to, const char *at, size_t len, int chunked)
{
    char h[24];
    if (chunked)
        http_api->write(to, h, (size_t)snprintf(h, sizeof(h), "%zx\r\n", len));
    zerg_ref *ref = http_api->hold(from, at);
    if (ref)
        http_api->write_ref(to, at, len, ref);
    else
        http_api->write(to, at, len);
    if (chunked)
        http_api->write(to, "\r\n", 2);
}

/* A parked connection to server of l made ready for a new request. */
static http_up *http_up_reuse(const http_location *l, int server)
{
    http_up *up = http_up_take(l, server);
    if (!up)
        return NULL;
    zerg_conn *uc = up->c;
    http_up kept = *up;
    memset(up, 0, sizeof(*up));
    up->c = uc;
    up->head = kept.head;
    up->hcap = kept.hcap;
    up->server = kept.server;
    up->loc = l;
    http_upstream_count(up, 1);
    up->requests = kept.requests;
    up->opened_ms = kept.opened_ms;
    up->connected = up->reused = 1;
    http_api->conn_timeout(uc, 0);
    return up;
}

/* A new connection to server of l (-1: its proxy_pass host); NULL
 * (hc->proxy_status set) when it cannot be made. */
static http_up *http_up_connect(http_conn *hc, const http_location *l, int server)
{
    const http_proxy_pass *p = l->proxy;
    const struct sockaddr *sa = (const struct sockaddr *)&p->addr;
    socklen_t salen = p->addr_len;
    if (p->group)
        http_api->upstream_server(p->group->group, server, &sa, &salen);
    zerg_conn *uc = p->tls ? http_api->connect_tls(http_W.w, &http_up_hooks, NULL, sa, salen,
                                                   l->proxy_connect_timeout, p->tls, p->tls_name)
                           : http_api->connect_with(http_W.w, &http_up_hooks, NULL, sa, salen,
                                                    l->proxy_connect_timeout);
    if (!uc) {
        http_api->log(ZERG_LOG_ERROR, "http: upstream %s: connect: %s", p->host, strerror(errno));
        if (p->group)
            http_api->upstream_note(p->group->group, server, ZERG_UPSTREAM_ERROR, 0);
        hc->proxy_status = 502;
        return NULL;
    }
    http_up *up = up_of(uc);
    up->c = uc;
    up->server = server;
    up->opened_ms = http_api->now_ms(http_W.w);
    up->loc = l;
    http_upstream_count(up, 1);
    return up;
}

/* A connection for hc's request to l (path: its normalised path, as routed):
 * the balancing method picks the server first (among those not in *tried),
 * then a connection parked to that server serves when allowed (as nginx's
 * keepalive), else a new one; the request head goes out on it. NULL
 * (hc->proxy_status set) when none can be had. */
static http_up *http_up_open(http_conn *hc, const http_location *l, const char *path, size_t plen,
                             int reuse, const zerg_upstream_tried *tried)
{
    const http_proxy_pass *p = l->proxy;
    int server = -1;
    zerg_upstream_tried now_tried = {{0}};
    if (tried)
        now_tried = *tried;
    if (p->group) {
        server = http_upstream_pick(hc, p->group, path, plen, &now_tried);
        if (server < 0) {
            http_api->log(ZERG_LOG_ERROR, "http: upstream %s: no live server left to try",
                          p->group->name);
            hc->proxy_status = 502;
            return NULL;
        }
    }
    http_up *up = reuse ? http_up_reuse(l, server) : NULL;
    if (!up && !(up = http_up_connect(hc, l, server)))
        return NULL;
    up->tried = now_tried;
    up->hc = hc;
    http_req *r = &hc->req;
    r->up_addr =
        p->group ? http_api->upstream_server(p->group->group, up->server, NULL, NULL) : NULL;
    if (!r->up_addr)
        r->up_addr = p->host;
    if (!r->up_start_ms)
        r->up_start_ms = http_api->now_ms(http_W.w);
    llhttp_init(&up->parser, HTTP_RESPONSE, &http_up_settings);
    up->parser.data = up;
    hc->up = up;
    up->requests++;
    http_api->pause_read(up->c); /* the answer waits for the whole request */
    http_W.up_tries++;
    if (http_up_send_head(hc, path, plen) < 0) {
        http_up_fail(up, 500, "out of memory", 1);
        return NULL;
    }
    return up;
}

/* The request is complete: its answer may come. */
static void http_up_go(http_up *up)
{
    up->dispatched = 1;
    if (up->connected)
        http_api->conn_timeout(up->c, up->loc->proxy_read_timeout);
    http_api->resume_read(up->c);
}

/* A request whose upstream failed before any answer goes again on a new
 * connection when none of its body went out, and either the connection was
 * a kept one the upstream had closed, or it names a group with a server
 * this request has not tried (nginx's proxy_next_upstream error timeout);
 * not when the request may have reached the upstream and its method is one
 * nginx does not send twice (POST, PATCH, LOCK). */
static int http_up_can_retry(const http_up *up)
{
    const http_conn *hc = up->hc;
    if (up->got_bytes || up->head_sent || !hc || hc->req.body_bytes || hc->req.te_chunked)
        return 0;
    uint8_t m = hc->req.method;
    if (up->connected && (m == HTTP_POST || m == HTTP_PATCH || m == HTTP_LOCK))
        return 0;
    return up->reused || http_upstream_untried(up);
}

static void http_up_retry(http_up *up, int abort_it)
{
    http_conn *hc = http_up_detach(up);
    if (abort_it)
        http_api->abort(up->c);
    const char *path;
    size_t plen;
    int st;
    http_route(hc, &path, &plen, &st); /* the same location as at the head */
    /* a kept connection lost is not its server's fault: any may serve */
    http_up *fresh = http_up_open(hc, up->loc, path, plen, 0, up->reused ? NULL : &up->tried);
    if (fresh && hc->phase == HTTP_PH_BUSY)
        http_up_go(fresh);
    else if (!fresh && hc->phase == HTTP_PH_BUSY)
        http_send_error(hc, hc->proxy_status, 0);
}

void http_proxy_begin(http_conn *hc)
{
    const char *path;
    size_t plen;
    int st;
    const http_location *l = http_route(hc, &path, &plen, &st);
    if (!l || l->kind != HTTP_LOC_PROXY)
        return;
    socklen_t alen;
    if ((l->allow.n || l->deny.n) && !http_access_allows(l, http_api->conn_peer(hc->c, &alen)))
        return; /* refused at dispatch */
    http_up_open(hc, l, path, plen, 1, NULL);
}

void http_proxy_body(http_conn *hc, const char *at, size_t len)
{
    http_up *up = hc->up;
    http_relay(hc->c, up->c, at, len, hc->req.te_chunked);
    http_up_bytes(up, ZERG_UPSTREAM_BYTES_OUT, len);
    http_up_bound_client(up);
}

void http_up_bound_client(http_up *up)
{
    if (!up->client_paused && http_api->conn_out_pending(up->c) > http_out_high(up->c)) {
        up->client_paused = 1; /* resumed when the upstream's output drains */
        if (!up->hc->h2)       /* an HTTP/2 stream's window stays shut instead */
            http_api->pause_read(up->hc->c);
        http_api->conn_want_drain(up->c);
    }
}

void http_up_bound(http_up *up)
{
    http_conn *hc = up->hc;
    if (up->up_paused || (hc->h2 ? !http2_stream_full(hc)
                                 : http_api->conn_out_pending(hc->c) <= http_out_high(hc->c)))
        return;
    up->up_paused = 1; /* resumed when the client's output drains */
    http_api->pause_read(up->c);
    http_api->conn_timeout(up->c, 0);
    if (hc->h2)
        return; /* ...when the stream's DATA go out (http2_stream_sent) */
    http_api->conn_want_drain(hc->c);
    http_api->conn_timeout(hc->c, hc->srv->send_timeout);
}

void http_proxy_body_end(http_conn *hc)
{
    if (hc->req.te_chunked)
        http_api->write(hc->up->c, "0\r\n\r\n", 5);
}

void http_proxy_dispatch(http_conn *hc)
{
    if (!hc->up && hc->h2 && hc->h2->waiting && !hc->proxy_status) {
        /* a stream limit_req delayed: its upstream starts now... */
        if (http2_stream_late_begin(hc))
            return;
        if (hc->up && !hc->h2->body_end)
            return; /* ...and its answer is read after END_STREAM */
    }
    http_up *up = hc->up;
    if (!up) {
        http_send_error(hc, hc->proxy_status ? hc->proxy_status : 502, 0);
        return;
    }
    hc->phase = HTTP_PH_BUSY;
    if (hc->h2) { /* the connection's timer is the session's */
        if (up->client_paused)
            http_up_client_resume(up, hc);
    } else {
        http_api->conn_timeout(hc->c, 0);
        if (up->client_paused) { /* what comes now is the next request: it waits */
            up->client_paused = 0;
            hc->paused = 1;
        }
    }
    http_up_go(up);
}

void http_proxy_abandon(http_conn *hc)
{
    http_up *up = hc->up;
    http_up_detach(up);
    http_api->abort(up->c);
}

void http_proxy_client_drained(http_conn *hc)
{
    http_up *up = hc->up;
    if (!up->up_paused)
        return;
    up->up_paused = 0;
    if (!hc->h2)
        http_api->conn_timeout(hc->c, 0);
    http_api->conn_timeout(up->c, up->loc->proxy_read_timeout);
    http_api->resume_read(up->c);
}

/* ---- upstream hooks -------------------------------------------------------- */

static void http_up_on_connect(zerg_conn *c, int status)
{
    http_up *up = up_of(c);
    if (status < 0) {
        char why[96];
        snprintf(why, sizeof(why), "connect: %s", strerror(-status));
        if (up->hc) /* -EPROTO: TLS, logged by the core */
            http_up_fail(up, status == -ETIMEDOUT ? 504 : 502,
                         status == -EPROTO && up->loc->proxy->tls ? NULL : why, 0);
        return;
    }
    up->connected = 1;
    http_upstream_result(up, 1);
    if (up->dispatched)
        http_api->conn_timeout(c, up->loc->proxy_read_timeout);
}

static size_t http_up_on_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    http_up *up = up_of(c);
    http_conn *hc = up->hc;
    http_up_bytes(up, ZERG_UPSTREAM_BYTES_IN, len);
    if (http_up_idle_event(up) || !hc || up->done)
        return len;
    up->got_bytes = 1;
    http_api->conn_timeout(c, up->loc->proxy_read_timeout);
    if (up->tunnel) {
        http_tunnel_relay(up, 0, data, len);
        return len;
    }
    llhttp_errno_t e = llhttp_execute(&up->parser, (const char *)data, len);
    if (e == HPE_PAUSED_UPGRADE && up->head_sent) {
        const uint8_t *rest = (const uint8_t *)llhttp_get_error_pos(&up->parser);
        http_tunnel_start(up, rest, (size_t)(data + len - rest));
        return len;
    }
    if (e == HPE_PAUSED) {
        /* bytes past the answer: the connection cannot serve another */
        up->spent = llhttp_get_error_pos(&up->parser) != (const char *)data + len;
        http_up_finish(up, 1, 1);
        return len;
    }
    if (e != HPE_OK) {
        char why[160];
        snprintf(why, sizeof(why), "invalid response (%s)",
                 up->err_status ? "head too big" : llhttp_get_error_reason(&up->parser));
        http_up_fail(up, 502, why, 1);
        return len;
    }
    http_up_bound(up);
    return len;
}

static void http_up_on_eof(zerg_conn *c)
{
    http_up *up = up_of(c);
    if (http_up_idle_event(up) || !up->hc || up->done)
        return;
    if (up->tunnel) {
        http_tunnel_eof(up, 0);
        return;
    }
    llhttp_finish(&up->parser); /* ends a body that lasts until the close */
    if (up->done)
        http_up_finish(up, 1, 1);
    else
        http_up_fail(up, 502, "closed before the end of its response", 1);
}

static void http_up_on_drain(zerg_conn *c)
{
    http_up *up = up_of(c);
    if (!up->client_paused || !up->hc)
        return;
    http_up_client_resume(up, up->hc);
}

static void http_up_on_timeout(zerg_conn *c)
{
    http_up *up = up_of(c);
    if (http_up_idle_event(up))
        return;
    if (up->hc)
        http_up_fail(up, 504,
                     up->tunnel ? "tunnel idle for proxy_read_timeout"
                                : "timed out reading the response",
                     1);
    else
        http_api->abort(c);
}

static void http_up_on_close(zerg_conn *c, int err)
{
    http_up *up = up_of(c);
    if (up->idle)
        http_up_unpark(up);
    http_upstream_count(up, 0);
    if (up->hc && !up->done) {
        char why[96];
        snprintf(why, sizeof(why), "connection lost: %s",
                 err ? strerror(-err) : "closed before the response");
        http_up_fail(up, err == -ETIMEDOUT ? 504 : 502, why, 0);
    }
    free(up->head);
    up->head = NULL;
}

static const zerg_conn_hooks http_up_hooks = {
    .struct_size = sizeof(zerg_conn_hooks),
    .on_connect = http_up_on_connect,
    .on_data = http_up_on_data,
    .on_eof = http_up_on_eof,
    .on_drain = http_up_on_drain,
    .on_timeout = http_up_on_timeout,
    .on_close = http_up_on_close,
};

/* ---- the answer: llhttp callbacks ---------------------------------------- */

static int up_put(http_up *up, const char *s, size_t n)
{
    size_t need = (size_t)up->hlen + n;
    if (need > up->loc->proxy_buffer_size) {
        up->err_status = 502;
        return -1;
    }
    return http_buf_append(&up->head, &up->hlen, &up->hcap, s, n);
}

static int up_cb_message_begin(llhttp_t *p)
{
    http_up *up = p->data;
    up->hlen = 0;
    up->in_name = 0;
    return 0;
}

static int up_cb_header_field(llhttp_t *p, const char *at, size_t len)
{
    http_up *up = p->data;
    if (!up->in_name) {
        up->in_name = 1;
        up->line_start = up->hlen;
    }
    return up_put(up, at, len);
}

/* RFC 9112 5.1: whitespace before the colon is removed (llhttp's lenient
 * build keeps it in the name); a name that is still no token (empty, a
 * space inside) makes the answer invalid: 502. */
static int up_cb_header_field_complete(llhttp_t *p)
{
    http_up *up = p->data;
    if (!up->in_name)
        up->line_start = up->hlen; /* an empty name */
    up->in_name = 0;
    while (up->hlen > up->line_start &&
           (up->head[up->hlen - 1] == ' ' || up->head[up->hlen - 1] == '\t'))
        up->hlen--;
    if (up->hlen == up->line_start ||
        !http_all_tchar(up->head + up->line_start, up->hlen - up->line_start))
        return -1;
    up->name_end = up->hlen;
    return up_put(up, ": ", 2);
}

static int up_cb_header_value(llhttp_t *p, const char *at, size_t len)
{
    return up_put(p->data, at, len);
}

/* A field of the answer is complete: relayed, or dropped when hop-by-hop or
 * one the server writes itself. */
static int up_cb_header_value_complete(llhttp_t *p)
{
    http_up *up = p->data;
    const char *name = up->head + up->line_start;
    size_t nl = up->name_end - up->line_start;
    int keep_upgrade = p->status_code == 101 && http_name_is(name, nl, "upgrade");
    if ((http_hop_by_hop(name, nl) && !keep_upgrade) || http_name_is(name, nl, "date") ||
        http_name_is(name, nl, "server")) {
        up->hlen = up->line_start;
        return 0;
    }
    while (up->hlen > up->name_end + 2 &&
           (up->head[up->hlen - 1] == ' ' || up->head[up->hlen - 1] == '\t'))
        up->hlen--;
    return up_put(up, "\r\n", 2);
}

static int up_cb_headers_complete(llhttp_t *p)
{
    http_up *up = p->data;
    http_conn *hc = up->hc;
    http_req *r = &hc->req;
    int st = p->status_code;
    if (st == 101) { /* llhttp pauses after it: the tunnel starts */
        if (!up->upgrade_req || up_put(up, "Connection: upgrade\r\n", 21) < 0)
            return -1; /* no switch was asked for */
        r->keepalive = 1;
        r->up_status = st;
        if (http_write_head(hc, st, up->head, up->hlen, -1) < 0)
            return -1;
        r->keepalive = 0; /* the connection ends with the tunnel */
        up->head_sent = 1;
        return 0;
    }
    if (st == 100 || st == 102 || st == 103) {
        up->hlen = 0; /* an interim answer (no body, llhttp knows): dropped */
        return 0;
    }
    if (st < 200 || st > 599)
        return -1; /* not a status a client can be given */
    r->up_status = st;
    int nobody = r->head || st == 204 || st == 304;
    int chunked = (p->flags & F_CHUNKED) != 0;
    http_keep(hc);
    if (!nobody && !chunked && !(p->flags & F_CONTENT_LENGTH))
        r->keepalive = 0; /* the body ends when the upstream closes: so must we */
    if (chunked && r->minor == 0)
        r->keepalive = 0; /* an HTTP/1.0 client gets the body as it is, then the close */
    up->rechunk = chunked && r->minor >= 1 && !nobody;
    if (chunked && r->minor >= 1 && st != 204 && st != 304 &&
        up_put(up, "Transfer-Encoding: chunked\r\n", 28) < 0)
        return -1;
    if (http_write_head(hc, st, up->head, up->hlen, -1) < 0)
        return -1;
    up->head_sent = 1;
    /* 1: no body follows, whatever Content-Length or Transfer-Encoding say
     * (a 304 may give the length of the representation it stands for) */
    return nobody ? 1 : 0;
}

static int up_cb_body(llhttp_t *p, const char *at, size_t len)
{
    http_up *up = p->data;
    http_conn *hc = up->hc;
    if (!up->head_sent)
        return -1; /* a body before any head went out: never relayed */
    if (hc->h2) {  /* copied into the stream's DATA (bounded: http2_stream_full) */
        if (http_out_write(hc, at, len) < 0)
            return -1;
    } else {
        http_relay(up->c, hc->c, at, len, up->rechunk);
    }
    hc->req.sent += len;
    return 0;
}

static int up_cb_message_complete(llhttp_t *p)
{
    http_up *up = p->data;
    if (p->status_code < 200)
        return 0; /* an interim answer: the final one follows; 101: the tunnel */
    if (up->rechunk)
        http_api->write(up->hc->c, "0\r\n\r\n", 5);
    up->done = 1;
    return HPE_PAUSED;
}

static const llhttp_settings_t http_up_settings = {
    .on_message_begin = up_cb_message_begin,
    .on_header_field = up_cb_header_field,
    .on_header_field_complete = up_cb_header_field_complete,
    .on_header_value = up_cb_header_value,
    .on_header_value_complete = up_cb_header_value_complete,
    .on_headers_complete = up_cb_headers_complete,
    .on_body = up_cb_body,
    .on_message_complete = up_cb_message_complete,
};
