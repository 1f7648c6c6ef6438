/* modules/http/http_response.c - answering: the cached Date line, response
 * heads, error pages, `return` and `status` handlers, request routing and the
 * end-of-request bookkeeping (keep-alive, counters, access log, next request). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_access.h"
#include "http_limit.h"
#include "http_log.h"
#include "http_metrics.h"
#include "http_out.h"
#include "http_proxy.h"
#include "http_redirect.h"
#include "http_static.h"

void http_date_refresh(void)
{
    int64_t now = http_api->unix_time(http_W.w);
    if (now == http_W.date_sec)
        return;
    char d[30];
    http_fmt_date((time_t)now, d);
    http_W.date_line_len =
        (size_t)snprintf(http_W.date_line, sizeof(http_W.date_line), "Date: %s\r\n", d);
    http_W.date_sec = now;
}

int http_keep(http_conn *hc)
{
    http_req *r = &hc->req;
    if (!r->keepalive || http_W.draining || hc->eof || hc->srv->keepalive_timeout == 0 ||
        hc->nreq + 1 >= (uint64_t)hc->srv->keepalive_requests)
        r->keepalive = 0;
    return r->keepalive;
}

static size_t http_fmt_head(http_conn *hc, char *o, int status)
{
    size_t n;
    if (status == 200) {
        memcpy(o, "HTTP/1.1 200 OK\r\n", 17);
        n = 17;
    } else {
        n = (size_t)sprintf(o, "HTTP/1.1 %d %s\r\n", status, http_reason(status));
    }
    memcpy(o + n, hc->srv->server_line, hc->srv->server_line_len);
    n += hc->srv->server_line_len;
    memcpy(o + n, http_W.date_line, http_W.date_line_len);
    n += http_W.date_line_len;
    if (!hc->req.keepalive) {
        memcpy(o + n, "Connection: close\r\n", 19);
        n += 19;
    } else if (hc->req.minor == 0) {
        memcpy(o + n, "Connection: keep-alive\r\n", 24);
        n += 24;
    }
    return n;
}

int http_adds_headers(int status)
{
    switch (status) {
    case 200:
    case 201:
    case 204:
    case 206:
    case 301:
    case 302:
    case 303:
    case 304:
    case 307:
    case 308:
        return 1;
    default:
        return 0;
    }
}

size_t http_fmt_expires(int mode, uint64_t sec, int64_t now, char out[96])
{
    char d[30];
    switch (mode) {
    case HTTP_EXPIRES_AFTER:
        http_fmt_date((time_t)(now + (int64_t)sec), d);
        return (size_t)snprintf(out, 96, "Expires: %s\r\nCache-Control: max-age=%llu\r\n", d,
                                (unsigned long long)sec);
    case HTTP_EXPIRES_EPOCH:
        return (size_t)snprintf(out, 96,
                                "Expires: Thu, 01 Jan 1970 00:00:01 GMT\r\n"
                                "Cache-Control: no-cache\r\n");
    case HTTP_EXPIRES_MAX:
        return (size_t)snprintf(out, 96,
                                "Expires: Thu, 31 Dec 2037 23:55:55 GMT\r\n"
                                "Cache-Control: max-age=315360000\r\n");
    default:
        return 0;
    }
}

int http_write_head(http_conn *hc, int status, const char *extra, size_t extra_len, int64_t clen)
{
    http_date_refresh();
    const http_location *l = hc->req.loc;
    size_t add_len = l && l->add_head_len && http_adds_headers(status) ? l->add_head_len : 0;
    char exp[96];
    size_t exp_len = l && l->expires && http_adds_headers(status)
                         ? http_fmt_expires(l->expires, l->expires_sec, http_W.date_sec, exp)
                         : 0;
    if (hc->h2) {
        const char *blocks[] = {hc->srv->server_line, http_W.date_line, extra,
                                add_len ? l->add_head : NULL, exp};
        const size_t lens[] = {hc->srv->server_line_len, http_W.date_line_len, extra_len, add_len,
                               exp_len};
        return http2_write_head(hc, status, blocks, lens, 5, clen);
    }
    size_t need =
        128 + hc->srv->server_line_len + http_W.date_line_len + extra_len + add_len + exp_len;
    size_t avail;
    char *o;
    char *heap = NULL;
    if (need <= 4096) {
        o = http_api->write_reserve(hc->c, need, &avail);
        if (!o)
            return -1;
    } else {
        heap = o = malloc(need);
        if (!o)
            return -1;
    }
    hc->req.status = status;
    size_t n = http_fmt_head(hc, o, status);
    if (extra_len) /* extra may be NULL then */
        memcpy(o + n, extra, extra_len);
    n += extra_len;
    if (add_len)
        memcpy(o + n, l->add_head, add_len);
    n += add_len;
    memcpy(o + n, exp, exp_len);
    n += exp_len;
    if (clen >= 0)
        n += (size_t)sprintf(o + n, "Content-Length: %lld\r\n", (long long)clen);
    o[n++] = '\r';
    o[n++] = '\n';
    if (heap) {
        int rc = http_api->write(hc->c, heap, n);
        free(heap);
        return rc;
    }
    http_api->write_commit(hc->c, n);
    return 0;
}

/* Answers the request with another file (a fallback, an error page). */
static void http_serve_instead(http_conn *hc, const http_location *loc, const char *path,
                               size_t len)
{
    hc->req.loc = loc;
    http_keep(hc);
    if (http_serve_static(hc, loc, path, len) == 0 && !hc->closing)
        http_request_done(hc);
}

/* Instead of the built-in page for status: the location's fallback for a
 * 404 (once), else the server's error_page for status. 0: neither. */
static int http_error_instead(http_conn *hc, int status)
{
    http_req *r = &hc->req;
    const http_location *l = r->loc;
    if (status == 404 && l && l->fallback && !r->fell_back) {
        r->fell_back = 1;
        http_serve_instead(hc, l->fallback_loc, l->fallback, l->fallback_len);
        return 1;
    }
    const http_srv *s = hc->srv;
    for (size_t i = 0; i < s->nerror_pages; i++) {
        const http_error_page *p = &s->error_pages[i];
        if (p->status == status) {
            r->error_status = status;
            http_serve_instead(hc, p->loc, p->uri, p->len);
            return 1;
        }
    }
    return 0;
}

void http_send_error(http_conn *hc, int status, int close)
{
    if (hc->up)
        http_proxy_abandon(hc); /* answered here: the upstream is not needed */
    if (hc->req.error_status)
        status = hc->req.error_status; /* the error page failed: built-in page */
    else if (!close && http_error_instead(hc, status))
        return;
    char body[256], extra[128];
    size_t el = 0;
    if (close)
        hc->req.keepalive = 0;
    else
        http_keep(hc);
    int bl = snprintf(body, sizeof(body),
                      "<html>\r\n<head><title>%d %s</title></head>\r\n<body>\r\n<center><h1>%d "
                      "%s</h1></center>\r\n</body>\r\n</html>\r\n",
                      status, http_reason(status), status, http_reason(status));
    el += (size_t)sprintf(extra + el, "Content-Type: text/html\r\n");
    if (status == 405)
        el += (size_t)sprintf(extra + el, "Allow: GET, HEAD\r\n");
    el += http_limit_retry_after(hc, status, extra + el, sizeof(extra) - el);
    if (http_write_head(hc, status, extra, el, bl) == 0 && !hc->req.head)
        http_out_write(hc, body, (size_t)bl);
    hc->req.sent = hc->req.head ? 0 : (uint64_t)bl;
    http_request_done(hc);
}

#define HTTP_RETURN_COPY_MAX 16384

void http_send_return(http_conn *hc, const http_location *l, const char *path, size_t plen)
{
    if (l->ret_location.n) {
        http_send_redirect(hc, l, path, plen);
        return;
    }
    http_date_refresh();
    size_t body = hc->req.head ? 0 : l->ret_body_len;
    if (hc->h2) { /* the head as fields, the body where it lies */
        hc->req.sent = body;
        if (http_write_head(hc, (int)l->ret->status, l->ret_head, l->ret_head_len - 2, -1) == 0 &&
            body)
            http_out_write_ext(hc, l->ret->body, body, NULL, NULL);
        return;
    }
    size_t need = 64 + hc->srv->server_line_len + http_W.date_line_len + l->ret_head_len;
    size_t inl = need + body <= 4096 ? body : 0;
    size_t avail;
    int status = (int)l->ret->status;
    hc->req.status = status;
    hc->req.sent = body;
    if (need + inl > 4096) {
        http_write_head(hc, status, l->ret_head, l->ret_head_len - 2, -1);
    } else {
        char *o = http_api->write_reserve(hc->c, need + inl, &avail);
        if (!o) {
            http_conn_abort(hc);
            return;
        }
        size_t n = http_fmt_head(hc, o, status);
        memcpy(o + n, l->ret_head, l->ret_head_len);
        n += l->ret_head_len;
        if (inl) {
            memcpy(o + n, l->ret->body, inl);
            n += inl;
        }
        http_api->write_commit(hc->c, n);
    }
    /* a body referenced where it lies costs a queue buffer for the head
     * of each answer: pipelined answers of small bodies are copied instead,
     * so that the queue's memory stays what it counts (the output bound) */
    if (body && !inl && body <= HTTP_RETURN_COPY_MAX)
        http_api->write(hc->c, l->ret->body, body);
    else if (body && !inl)
        http_api->write_ext(hc->c, l->ret->body, body, NULL, NULL);
}

static char *http_pathbuf;
static size_t http_pathcap;

const http_location *http_route(http_conn *hc, const char **path, size_t *plen, int *status)
{
    http_req *r = &hc->req;
    const char *url = http_hbuf(hc, r->url), *p;
    size_t len;
    http_target_path(url, r->url.len, &p, &len);
    if (http_pathcap < len + 2) {
        size_t cap = len + 2 < 4096 ? 4096 : len + 2;
        char *nb = realloc(http_pathbuf, cap);
        if (!nb) {
            *status = 500;
            return NULL;
        }
        http_pathbuf = nb;
        http_pathcap = cap;
    }
    *status = http_path_normalize(p, len, http_pathbuf, http_pathcap, plen);
    if (*status)
        return NULL;
    *path = http_pathbuf;
    const http_location *l = http_find_location(hc->srv, http_pathbuf, *plen);
    if (!l)
        *status = 404;
    return l;
}

void http_dispatch(http_conn *hc)
{
    http_req *r = &hc->req;
    const char *url = http_hbuf(hc, r->url), *path;
    size_t nlen;
    int st;
    if (r->method == HTTP_OPTIONS && r->url.len == 1 && url[0] == '*') {
        http_keep(hc);
        static const char allow[] = "Allow: GET, HEAD, OPTIONS\r\n";
        http_write_head(hc, 200, allow, sizeof(allow) - 1, 0);
        http_request_done(hc);
        return;
    }
    const http_location *l = http_route(hc, &path, &nlen, &st);
    if (!l) {
        http_send_error(hc, st, st == 400 || st == 500);
        return;
    }
    r->loc = l;
    if (hc->limit && http_limit_dispatch(hc))
        return; /* refused, or waiting for its turn */
    if (l->allow.n || l->deny.n) {
        socklen_t alen;
        if (!http_access_allows(l, http_api->conn_peer(hc->c, &alen))) {
            http_send_error(hc, 403, 0);
            return;
        }
    }
    /* status pages and files answer GET and HEAD only */
    if (l->kind != HTTP_LOC_RETURN && l->kind != HTTP_LOC_PROXY && r->method != HTTP_GET &&
        r->method != HTTP_HEAD) {
        http_send_error(hc, 405, 0);
        return;
    }
    switch (l->kind) {
    case HTTP_LOC_RETURN:
        http_keep(hc);
        http_send_return(hc, l, path, nlen);
        if (!hc->closing)
            http_request_done(hc);
        return;
    case HTTP_LOC_STATUS:
        http_send_status(hc);
        return;
    case HTTP_LOC_STATIC:
        http_keep(hc);
        /* 0: answered here; 1: goes on asynchronously; 2: already done */
        if (http_serve_static(hc, l, path, nlen) == 0 && !hc->closing)
            http_request_done(hc);
        return;
    case HTTP_LOC_PROXY:
        http_proxy_dispatch(hc);
        return;
    default:
        http_send_error(hc, 404, 0);
        return;
    }
}

void http_request_done(http_conn *hc)
{
    http_req *r = &hc->req;
    int async = hc->phase == HTTP_PH_BUSY;
    http_metrics_request(hc, http_api->now_ms(http_W.w));
    http_W.body_bytes += r->sent;
    if (hc->srv->log)
        http_log_request(hc);
    if (hc->h2) {
        http2_stream_done(hc);
        return;
    }
    hc->nreq++;
    hc->phase = HTTP_PH_IDLE;
    if (!r->keepalive) {
        http_conn_close(hc);
        return;
    }
    if (!async)
        return;
    /* an asynchronous answer ended: what came meanwhile waits in the core,
     * which presents it at once when reading resumes */
    http_api->conn_timeout(hc->c, hc->srv->keepalive_timeout);
    if (hc->paused && !hc->closing) {
        hc->paused = 0;
        http_api->resume_read(hc->c);
    }
    if (!hc->closing && hc->eof && hc->phase == HTTP_PH_IDLE) {
        http_conn_close(hc);
    }
    if (hc->phase == HTTP_PH_IDLE && !hc->in_process)
        http_rq_put(hc); /* no request started meanwhile */
}
