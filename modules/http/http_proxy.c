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
#include "http_proxy.h"

_Static_assert(sizeof(http_up) <= sizeof(http_conn), "http_up lives in an http_conn ctx");

static const llhttp_settings_t http_up_settings; /* the answer parser's: below */
static const zerg_conn_hooks http_up_hooks;      /* the upstream connections': below */
static int http_up_can_retry(const http_up *up);
static void http_up_retry(http_up *up, int abort_it);

/* A growing buffer for the request heads sent upstream (one per worker). */
static http_sbuf http_sb;

static char *sb_room(size_t n)
{
    return http_sb_room(&http_sb, n);
}

static void sb_put(const void *s, size_t n)
{
    http_sb_put(&http_sb, s, n);
}

static void sb_str(const char *s)
{
    sb_put(s, strlen(s));
}

void http_proxy_worker_exit(void)
{
    free(http_sb.p);
    http_sb.p = NULL;
    http_sb.cap = http_sb.n = 0;
}

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

/* ---- the request head ----------------------------------------------------- */

static int http_name_is(const char *name, size_t n, const char *lit)
{
    return strlen(lit) == n && http_strncaseeq(name, lit, n);
}

/* Whether the comma-separated list v[0..n) has the token t[0..tn). */
static int http_list_has(const char *v, size_t n, const char *t, size_t tn)
{
    size_t i = 0;
    while (i < n) {
        while (i < n && (v[i] == ' ' || v[i] == '\t' || v[i] == ','))
            i++;
        size_t j = i;
        while (j < n && v[j] != ',')
            j++;
        size_t e = j;
        while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
            e--;
        if (e - i == tn && http_strncaseeq(v + i, t, tn))
            return 1;
        i = j;
    }
    return 0;
}

/* Hop-by-hop fields (RFC 9110 7.6.1) and those the proxy sets itself. */
static int http_hop_by_hop(const char *n, size_t l)
{
    static const char *const hop[] = {"connection", "keep-alive", "proxy-connection", "te",
                                      "trailer",    "upgrade",    "transfer-encoding"};
    for (size_t i = 0; i < sizeof(hop) / sizeof(hop[0]); i++)
        if (http_name_is(n, l, hop[i]))
            return 1;
    return 0;
}

static int http_client_field_passes(http_conn *hc, const char *n, size_t l)
{
    const http_location *loc = hc->up->loc;
    if (http_hop_by_hop(n, l) || http_name_is(n, l, "host") || http_name_is(n, l, "expect"))
        return 0;
    for (size_t i = 0; i < loc->nproxy_set; i++)
        if (loc->proxy_set[i].name_len == l && http_strncaseeq(loc->proxy_set[i].name, n, l))
            return 0;
    http_req *r = &hc->req;
    if (r->hcount[HTTP_H_CONNECTION])
        return !http_list_has(http_hbuf(hc, r->hv[HTTP_H_CONNECTION]), r->hv[HTTP_H_CONNECTION].len,
                              n, l);
    return 1;
}

static void sb_addr(http_conn *hc)
{
    char a[64];
    socklen_t alen;
    sb_put(a, http_addr_text(http_api->conn_peer(hc->c, &alen), a, sizeof(a), 0));
}

static void sb_expand(http_conn *hc, const http_tmpl *t)
{
    const http_proxy_pass *pass = hc->up->loc->proxy;
    for (size_t i = 0; i < t->n; i++) {
        const http_tmpl_part *p = &t->parts[i];
        char buf[300];
        const char *s;
        size_t n;
        switch (p->var) {
        case HTTP_VAR_TEXT:
            sb_put(p->text, p->len);
            break;
        case HTTP_VAR_HOST:
            n = http_request_host(hc, buf, sizeof(buf));
            if (n == 0 || n >= sizeof(buf))
                n = http_default_host(hc, buf, sizeof(buf));
            sb_put(buf, n < sizeof(buf) ? n : 0);
            break;
        case HTTP_VAR_REMOTE_ADDR:
            sb_addr(hc);
            break;
        case HTTP_VAR_SCHEME:
            sb_str(http_scheme(hc));
            break;
        case HTTP_VAR_REQUEST_URI:
            http_request_uri(hc, &s, &n);
            sb_put(s, n);
            break;
        case HTTP_VAR_PROXY_HOST:
            sb_put(pass->host, pass->host_len);
            break;
        case HTTP_VAR_PROXY_ADD_X_FORWARDED_FOR:
            for (uint32_t k = 0; k < hc->rq->nfields; k++) {
                const http_field *f = &hc->rq->fields[k];
                if (http_name_is(http_hbuf(hc, f->name), f->name.len, "x-forwarded-for")) {
                    sb_put(http_hbuf(hc, f->value), f->value.len);
                    sb_str(", ");
                }
            }
            sb_addr(hc);
            break;
        default:
            break;
        }
    }
}

/* The target for the upstream: the client's, or with a URI in proxy_pass,
 * that URI in place of the location's prefix (path as nginx's $uri,
 * encoded again, then the query). */
static void sb_target(http_conn *hc, const char *path, size_t plen)
{
    const http_location *l = hc->up->loc;
    const char *ru;
    size_t rl;
    http_request_uri(hc, &ru, &rl);
    if (!l->proxy->uri) {
        sb_put(ru, rl);
        return;
    }
    sb_put(l->proxy->uri, l->proxy->uri_len);
    size_t skip = l->exact ? plen : l->match_len;
    if (plen > skip) {
        size_t need = 3 * (plen - skip) + 1;
        char *o = sb_room(need);
        if (o)
            http_sb.n += http_url_encode(path + skip, plen - skip, o, need);
    }
    const char *q = memchr(ru, '?', rl);
    if (q)
        sb_put(q, (size_t)(ru + rl - q));
}

/* The request's transfer codings for the upstream: its body goes up chunked
 * again but otherwise as the client coded it, so the codings before chunked
 * (gzip, ...) go up too, each once, empty list elements dropped. */
static void sb_transfer_codings(http_conn *hc)
{
    sb_str("Transfer-Encoding: ");
    for (uint32_t k = 0; k < hc->rq->nfields; k++) {
        const http_field *f = &hc->rq->fields[k];
        const char *v = http_hbuf(hc, f->value);
        if (!http_name_is(http_hbuf(hc, f->name), f->name.len, "transfer-encoding"))
            continue;
        for (size_t i = 0, j; i < f->value.len; i = j + 1) {
            while (i < f->value.len && (v[i] == ' ' || v[i] == '\t'))
                i++;
            for (j = i; j < f->value.len && v[j] != ','; j++)
                ;
            size_t e = j;
            while (e > i && (v[e - 1] == ' ' || v[e - 1] == '\t'))
                e--;
            if (e > i && !http_name_is(v + i, e - i, "chunked")) {
                sb_put(v + i, e - i);
                sb_str(", ");
            }
        }
    }
    sb_str("chunked\r\n");
}

static int http_up_send_head(http_conn *hc, const char *path, size_t plen)
{
    http_up *up = hc->up;
    const http_location *l = up->loc;
    http_req *r = &hc->req;
    http_sb.n = 0;
    http_sb.failed = 0;
    sb_str(llhttp_method_name((llhttp_method_t)r->method));
    sb_str(" ");
    sb_target(hc, path, plen);
    sb_str(" HTTP/1.1\r\n");
    int host_set = 0;
    for (size_t i = 0; i < l->nproxy_set; i++)
        host_set |= http_name_is(l->proxy_set[i].name, l->proxy_set[i].name_len, "host");
    if (!host_set) {
        sb_str("Host: ");
        sb_put(l->proxy->host, l->proxy->host_len);
        sb_str("\r\n");
    }
    for (size_t i = 0; i < l->nproxy_set; i++) {
        const http_proxy_header *h = &l->proxy_set[i];
        size_t at = http_sb.n;
        sb_put(h->name, h->name_len);
        sb_str(": ");
        size_t vat = http_sb.n;
        sb_expand(hc, &h->value);
        if (http_sb.n == vat)
            http_sb.n = at; /* empty: not sent */
        else
            sb_str("\r\n");
    }
    const http_field *upg = http_proxy_upgrade_field(hc);
    if (upg) { /* a protocol switch (WebSocket): asked of the upstream too */
        sb_str("Connection: upgrade\r\nUpgrade: ");
        sb_put(http_hbuf(hc, upg->value), upg->value.len);
        sb_str("\r\n");
        up->upgrade_req = 1;
    } else if (!l->proxy_keepalive) {
        sb_str("Connection: close\r\n");
    }
    for (uint32_t i = 0; i < hc->rq->nfields; i++) {
        const http_field *f = &hc->rq->fields[i];
        const char *n = http_hbuf(hc, f->name);
        if (!http_client_field_passes(hc, n, f->name.len))
            continue;
        sb_put(n, f->name.len);
        sb_str(": ");
        sb_put(http_hbuf(hc, f->value), f->value.len);
        sb_str("\r\n");
    }
    if (r->te_chunked)
        sb_transfer_codings(hc);
    sb_str("\r\n");
    if (http_sb.failed)
        return -1;
    http_up_bytes(up, ZERG_UPSTREAM_BYTES_OUT, http_sb.n);
    return http_api->write(up->c, http_sb.p, http_sb.n);
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

static http_conn *http_up_detach(http_up *up)
{
    http_conn *hc = up->hc;
    http_upstream_count(up, 0); /* its server serves no request of ours now */
    if (hc) {
        hc->up = NULL;
        up->hc = NULL;
        if (up->client_paused) /* its body goes nowhere now: read on */
            http_api->resume_read(hc->c);
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
    if (!ok)
        hc->req.keepalive = 0; /* the client sees the answer end short */
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
        http_api->pause_read(up->hc->c);
        http_api->conn_want_drain(up->c);
    }
}

void http_up_bound(http_up *up)
{
    http_conn *hc = up->hc;
    if (!up->up_paused && http_api->conn_out_pending(hc->c) > http_out_high(hc->c)) {
        up->up_paused = 1; /* resumed when the client's output drains */
        http_api->pause_read(up->c);
        http_api->conn_timeout(up->c, 0);
        http_api->conn_want_drain(hc->c);
        http_api->conn_timeout(hc->c, hc->srv->send_timeout);
    }
}

void http_proxy_body_end(http_conn *hc)
{
    if (hc->req.te_chunked)
        http_api->write(hc->up->c, "0\r\n\r\n", 5);
}

void http_proxy_dispatch(http_conn *hc)
{
    http_up *up = hc->up;
    if (!up) {
        http_send_error(hc, hc->proxy_status ? hc->proxy_status : 502, 0);
        return;
    }
    hc->phase = HTTP_PH_BUSY;
    http_api->conn_timeout(hc->c, 0);
    if (up->client_paused) { /* what comes now is the next request: it waits */
        up->client_paused = 0;
        hc->paused = 1;
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
    up->client_paused = 0;
    http_api->resume_read(up->hc->c);
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
    http_relay(up->c, hc->c, at, len, up->rechunk);
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
