/* modules/http/http_proxy_head.c - proxy_pass's request head: the HTTP/1.1
 * head sent upstream, built from the client's request (HTTP/1.1 fields, or
 * an HTTP/2 stream's pseudo-headers and fields) with hop-by-hop fields
 * dropped, proxy_set_header applied and the body's framing restated. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_proxy.h"

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

/* ---- the request head ----------------------------------------------------- */

int http_name_is(const char *name, size_t n, const char *lit)
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
int http_hop_by_hop(const char *n, size_t l)
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

/* HTTP/2 may split Cookie into several fields (RFC 9113 8.2.3): joined
 * again with "; " for an HTTP/1.1 upstream, where it must be one. */
static void sb_cookies(http_conn *hc)
{
    const char *sep = "Cookie: ";
    for (uint32_t i = 0; i < hc->rq->nfields; i++) {
        const http_field *f = &hc->rq->fields[i];
        if (!http_name_is(http_hbuf(hc, f->name), f->name.len, "cookie"))
            continue;
        sb_str(sep);
        sb_put(http_hbuf(hc, f->value), f->value.len);
        sep = "; ";
    }
    sb_str("\r\n");
}

int http_up_send_head(http_conn *hc, const char *path, size_t plen)
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
    int cookies = 0;
    for (uint32_t i = 0; i < hc->rq->nfields; i++) {
        const http_field *f = &hc->rq->fields[i];
        const char *n = http_hbuf(hc, f->name);
        if (!http_client_field_passes(hc, n, f->name.len))
            continue;
        if (hc->h2 && http_name_is(n, f->name.len, "cookie")) {
            if (!cookies++)
                sb_cookies(hc);
            continue;
        }
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
