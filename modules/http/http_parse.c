/* modules/http/http_parse.c - request parsing: the head scanner and llhttp run
 * over each connection's bytes, header capture, the RFC 9112 checks that refuse
 * smuggling vectors, and the map from parser errors to statuses. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_limit.h"
#include "http_proxy.h"

const char *http_hbuf(const http_conn *hc, http_span s)
{
    return hc->rq->hbuf + s.off;
}

static int http_hbuf_append(http_conn *hc, const char *at, size_t len)
{
    http_rq *rq = hc->rq;
    size_t need = (size_t)rq->hlen + len;
    if (need > hc->srv->large_client_header_buffers + 64) {
        hc->err_status = 431;
        return -1;
    }
    if (http_buf_append(&rq->hbuf, &rq->hlen, &rq->hcap, at, len) < 0) {
        hc->err_status = 500;
        return -1;
    }
    return 0;
}

/* hc->req was cleared when the request's first byte came (http_process) */
static int http_cb_message_begin(llhttp_t *p)
{
    http_conn *hc = p->data;
    hc->rq->hlen = 0;
    hc->rq->nfields = 0;
    hc->proxy_status = 0;
    return 0;
}

/* llhttp's lenient (non-strict) build lets through what RFC 9112 forbids:
 * SP inside a field name (so "Name : v" too), HTAB in the request-target.
 * The checks below refuse them before anything is kept or sent on. */

/* The request-target: no CTL, SP or DEL, which lenient parsers behind a
 * proxy may take as delimiters. Raw UTF-8 (bytes above 0x7f) is let through
 * as nginx does: browsers and clients send it, and no parser splits on it. */
static int http_target_chars_ok(const char *at, size_t len)
{
    for (size_t i = 0; i < len; i++)
        if ((uint8_t)at[i] <= 0x20 || (uint8_t)at[i] == 0x7f)
            return 0;
    return 1;
}

/* Trailer field values: no CTL but HTAB, no DEL; obs-text is allowed (RFC
 * 9110 5.5). The head scanner checks the head's values, not the trailers. */
static int http_value_chars_ok(const char *at, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        uint8_t c = (uint8_t)at[i];
        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return 0;
    }
    return 1;
}

static int http_refuse(http_conn *hc, int status)
{
    hc->err_status = status;
    return -1;
}

static int http_cb_url(llhttp_t *p, const char *at, size_t len)
{
    http_conn *hc = p->data;
    if (!http_target_chars_ok(at, len))
        return http_refuse(hc, 400);
    if (hc->req.url.len == 0)
        hc->req.url.off = hc->rq->hlen;
    if (hc->req.url.len + len > hc->srv->max_uri_length) {
        hc->err_status = 414;
        return -1;
    }
    hc->req.url.len += (uint32_t)len;
    return http_hbuf_append(hc, at, len);
}

static int http_cb_header_field(llhttp_t *p, const char *at, size_t len)
{
    http_conn *hc = p->data;
    if (!http_all_tchar(at, len))
        return http_refuse(hc, 400); /* RFC 9112 5.1: no whitespace before ':' */
    if (hc->req.cur_name.len == 0)
        hc->req.cur_name.off = hc->rq->hlen;
    hc->req.cur_name.len += (uint32_t)len;
    return http_hbuf_append(hc, at, len);
}

static int http_cb_header_value(llhttp_t *p, const char *at, size_t len)
{
    http_conn *hc = p->data;
    if (hc->phase != HTTP_PH_HEAD && !http_value_chars_ok(at, len))
        return http_refuse(hc, 400);
    if (!hc->req.in_value) {
        hc->req.in_value = 1;
        hc->req.cur_val_off = hc->rq->hlen;
    }
    return http_hbuf_append(hc, at, len);
}

static const struct {
    const char *name;
    uint8_t len;
    uint8_t id;
} http_known[] = {
    {"host", 4, HTTP_H_HOST},
    {"connection", 10, HTTP_H_CONNECTION},
    {"content-length", 14, HTTP_H_CL},
    {"transfer-encoding", 17, HTTP_H_TE},
    {"expect", 6, HTTP_H_EXPECT},
    {"if-none-match", 13, HTTP_H_INM},
    {"if-modified-since", 17, HTTP_H_IMS},
    {"range", 5, HTTP_H_RANGE},
    {"if-range", 8, HTTP_H_IF_RANGE},
    {"referer", 7, HTTP_H_REFERER},
    {"user-agent", 10, HTTP_H_UA},
    {"accept-encoding", 15, HTTP_H_ACCEPT_ENCODING},
};

/* Every field, in order, for a request that goes to an upstream. */
int http_field_add(http_conn *hc, http_span name, http_span value)
{
    http_rq *rq = hc->rq;
    if (rq->nfields == rq->fields_cap) {
        uint32_t cap = rq->fields_cap ? rq->fields_cap * 2 : 16;
        http_field *nf = realloc(rq->fields, cap * sizeof(*nf));
        if (!nf) {
            hc->err_status = 500;
            return -1;
        }
        rq->fields = nf;
        rq->fields_cap = cap;
    }
    rq->fields[rq->nfields++] = (http_field){name, value};
    return 0;
}

static int http_cb_header_value_complete(llhttp_t *p)
{
    http_conn *hc = p->data;
    http_req *r = &hc->req;
    char *hbuf = hc->rq->hbuf;
    if (!r->in_value)
        r->cur_val_off = hc->rq->hlen; /* empty value */
    if (r->cur_name.len == 0)
        return http_refuse(hc, 400); /* field-name = token: never empty */
    if (hc->phase != HTTP_PH_HEAD) { /* a trailer field: checked, not kept */
        r->cur_name.len = 0;
        r->in_value = 0;
        return 0;
    }
    const char *name = http_hbuf(hc, r->cur_name);
    uint32_t nl = r->cur_name.len;
    http_span v = {r->cur_val_off, hc->rq->hlen - r->cur_val_off};
    /* trim trailing whitespace of the value */
    while (v.len && (hbuf[v.off + v.len - 1] == ' ' || hbuf[v.off + v.len - 1] == '\t'))
        v.len--;
    for (size_t i = 0; i < sizeof(http_known) / sizeof(http_known[0]); i++) {
        if (http_known[i].len == nl && http_strncaseeq(name, http_known[i].name, nl)) {
            uint8_t id = http_known[i].id;
            if (r->hcount[id] < 255)
                r->hcount[id]++;
            if (r->hcount[id] == 1)
                r->hv[id] = v;
            if (id == HTTP_H_TE) {
                int st = http_te_check(hbuf + v.off, v.len, &r->te_chunked);
                if (st) {
                    hc->err_status = st;
                    return -1;
                }
            }
            break;
        }
    }
    if (hc->keep_fields && http_field_add(hc, r->cur_name, v) < 0)
        return -1;
    r->nheaders++;
    r->cur_name.len = 0;
    r->in_value = 0;
    return 0;
}

/* RFC 9112 3: request-line = method SP request-target SP HTTP-version, one
 * SP each (llhttp's lenient build skips runs of them): the line the head
 * scanner measured has exactly the length of its parts. */
static int http_request_line_ok(const http_conn *hc, const llhttp_t *p)
{
    size_t method = strlen(llhttp_method_name((llhttp_method_t)p->method));
    return hc->scan.line1 == method + 1 + hc->req.url.len + 1 + sizeof("HTTP/1.1") - 1;
}

/* An absolute-form target (RFC 9112 3.2.2) names the host in place of Host:
 * its authority must be a valid, non-empty host without userinfo (RFC 9110
 * 4.2.4). */
static int http_absolute_target_ok(const http_conn *hc)
{
    const char *url = http_hbuf(hc, hc->req.url);
    size_t len = hc->req.url.len, a;
    if (len >= 7 && http_strncaseeq(url, "http://", 7))
        a = 7;
    else if (len >= 8 && http_strncaseeq(url, "https://", 8))
        a = 8;
    else
        return 1; /* origin-form or asterisk-form */
    size_t e = a;
    while (e < len && url[e] != '/' && url[e] != '?' && url[e] != '#')
        e++;
    return e > a && !memchr(url + a, '@', e - a) && http_host_valid(url + a, e - a);
}

static int http_cb_headers_complete(llhttp_t *p)
{
    http_conn *hc = p->data;
    http_req *r = &hc->req;
    r->method = (uint8_t)p->method;
    r->major = p->http_major;
    r->minor = p->http_minor;
    r->head = p->method == HTTP_HEAD;
    if (r->major != 1) {
        hc->err_status = 505;
        return -1;
    }
    if (r->minor > 1)
        r->minor = 1; /* a later HTTP/1.x is served as 1.1 (RFC 9110 2.5) */
    if (p->method == HTTP_CONNECT || p->method == HTTP_PRI) {
        hc->err_status = p->method == HTTP_PRI ? 505 : 405;
        return -1;
    }
    if (!http_request_line_ok(hc, p) || !http_absolute_target_ok(hc))
        return http_refuse(hc, 400);
    if (r->hcount[HTTP_H_HOST] > 1 || (r->minor >= 1 && r->hcount[HTTP_H_HOST] == 0) ||
        (r->hcount[HTTP_H_HOST] &&
         !http_host_valid(http_hbuf(hc, r->hv[HTTP_H_HOST]), r->hv[HTTP_H_HOST].len))) {
        hc->err_status = 400;
        return -1;
    }
    if (http_select_server(hc) < 0)
        return -1; /* 421: a block of other TLS settings */
    if (r->hcount[HTTP_H_CL] > 1 || (r->hcount[HTTP_H_CL] && r->hcount[HTTP_H_TE])) {
        hc->err_status = 400;
        return -1;
    }
    if (r->hcount[HTTP_H_TE]) {
        if (r->minor == 0) {
            hc->err_status = 400; /* RFC 9112 6.1: TE in a 1.0 request is faulty */
            return -1;
        }
        if (!r->te_chunked || !(p->flags & F_CHUNKED)) {
            hc->err_status = 400; /* RFC 9112 6.3: chunked is not the final coding */
            return -1;
        }
    }
    if (r->hcount[HTTP_H_CL] && hc->srv->client_max_body_size &&
        p->content_length > hc->srv->client_max_body_size) {
        hc->err_status = 413;
        return -1;
    }
    if (r->hcount[HTTP_H_EXPECT]) {
        http_span e = r->hv[HTTP_H_EXPECT];
        if (e.len != 12 || !http_strncaseeq(http_hbuf(hc, e), "100-continue", 12)) {
            hc->err_status = 417;
            return -1;
        }
        if (r->minor >= 1 &&
            ((r->hcount[HTTP_H_CL] && p->content_length > 0) || (p->flags & F_CHUNKED))) {
            static const char cont[] = "HTTP/1.1 100 Continue\r\n\r\n";
            http_api->write_ext(hc->c, cont, sizeof(cont) - 1, NULL, NULL);
        }
    }
    r->keepalive = (uint8_t)llhttp_should_keep_alive(p);
    r->upgrade = p->upgrade;
    p->upgrade = 0; /* no protocol switch: answer as a plain request */
    hc->phase = HTTP_PH_BODY;
    int limited = http_limit_on(hc->srv) ? http_limit_head(hc) : HTTP_LIMIT_PASS;
    if (limited == HTTP_LIMIT_WAIT)
        return HPE_PAUSED; /* the limit's timer goes on (http_limit.c) */
    if (hc->srv->has_proxy && limited == HTTP_LIMIT_PASS)
        http_proxy_begin(hc);
    return 0;
}

static int http_cb_body(llhttp_t *p, const char *at, size_t len)
{
    http_conn *hc = p->data;
    hc->req.body_bytes += len;
    if (hc->req.body_bytes > hc->srv->client_max_body_size && hc->srv->client_max_body_size) {
        hc->err_status = 413;
        return -1;
    }
    if (hc->up)
        http_proxy_body(hc, at, len);
    return 0;
}

static int http_cb_message_complete(llhttp_t *p)
{
    http_conn *hc = p->data;
    if (hc->up)
        http_proxy_body_end(hc);
    return HPE_PAUSED;
}

/* The request parser's callbacks. */
static const llhttp_settings_t http_settings = {
    .on_message_begin = http_cb_message_begin,
    .on_url = http_cb_url,
    .on_header_field = http_cb_header_field,
    .on_header_value = http_cb_header_value,
    .on_header_value_complete = http_cb_header_value_complete,
    .on_headers_complete = http_cb_headers_complete,
    .on_body = http_cb_body,
    .on_message_complete = http_cb_message_complete,
};

void http_parser_init(http_conn *hc, llhttp_t *p)
{
    llhttp_init(p, HTTP_REQUEST, &http_settings);
    /* llhttp knows 0.9, 1.0, 1.1 and 2.0 only; leniently it takes any
     * DIGIT.DIGIT, and http_cb_headers_complete decides */
    p->lenient_flags |= LENIENT_VERSION;
    p->data = hc;
}

/* Whether the bytes of a refused request line start with a method that is a
 * token followed by SP: a method llhttp does not know (501, RFC 9110 9.1),
 * not a malformed line (400). */
static int http_unknown_method(const uint8_t *p, const uint8_t *end)
{
    while (p < end && (*p == '\r' || *p == '\n'))
        p++;
    const uint8_t *m = p;
    while (p < end && http_tchar[*p])
        p++;
    return p > m && p < end && *p == ' ';
}

static int http_errno_status(http_conn *hc, llhttp_errno_t e, const uint8_t *p, const uint8_t *end)
{
    if (hc->err_status)
        return hc->err_status;
    switch (e) {
    case HPE_INVALID_VERSION:
        /* well-formed but not one llhttp knows (HTTP/1.2, 3.0): 505; the
         * rest is a malformed request line */
        return strcmp(llhttp_get_error_reason(&hc->rq->parser), "Invalid HTTP version") ? 400 : 505;
    case HPE_INVALID_METHOD:
        return http_unknown_method(p, end) ? 501 : 400;
    case HPE_PAUSED_H2_UPGRADE:
        return 505;
    default:
        return 400; /* HPE_INVALID_TRANSFER_ENCODING too: RFC 9112 6.3 */
    }
}

/* A request is answered asynchronously (or on_data came back in while it
 * runs): what follows waits in the core, which presents it again once
 * reading resumes (http_request_done). */
static size_t http_wait(http_conn *hc, size_t used)
{
    if (!hc->paused) {
        hc->paused = 1;
        http_api->pause_read(hc->c);
    }
    return used;
}

/* Whether hc's queued output is above its high mark: the next pipelined
 * request waits for on_drain, so that a client that sends requests and
 * never reads makes the worker hold one answer past the mark, not one per
 * request (nginx answers one request at a time). */
static int http_output_full(http_conn *hc)
{
    return http_api->conn_out_pending(hc->c) > http_out_high(hc->c);
}

static void http_output_wait(http_conn *hc)
{
    hc->out_wait = 1;
    hc->want_send_timeout = 1; /* the client must read within send_timeout */
    http_api->conn_timeout(hc->c, hc->srv->send_timeout);
    http_api->conn_want_drain(hc->c);
}

void http_output_drained(http_conn *hc)
{
    hc->out_wait = 0;
    if (hc->paused && !hc->closing && hc->phase == HTTP_PH_IDLE) {
        hc->paused = 0;
        http_api->resume_read(hc->c); /* presents the held requests now */
    }
}

size_t http_process(http_conn *hc, const uint8_t *data, size_t len)
{
    const uint8_t *p = data, *end = data + len;
    if (hc->closing)
        return len;
    if (hc->phase == HTTP_PH_BUSY || hc->in_process)
        return http_wait(hc, 0);
    hc->in_process = 1;
    while (p < end && !hc->closing) {
        if (hc->phase == HTTP_PH_BUSY)
            break;
        if (hc->phase == HTTP_PH_IDLE) {
            if (http_output_full(hc)) {
                http_output_wait(hc);
                break;
            }
            if (!hc->rq && http_rq_get(hc) < 0) {
                http_conn_abort(hc); /* out of memory */
                break;
            }
            memset(&hc->scan, 0, sizeof(hc->scan));
            hc->phase = HTTP_PH_HEAD;
            hc->srv = hc->dsrv; /* until the head names its host */
            hc->err_status = 0;
            /* nothing of the last request stays in hc->req (its spans point
             * into a head buffer that is gone), so that an answer given
             * before llhttp meets this one (the scanner refused its head)
             * logs this one */
            memset(&hc->req, 0, offsetof(http_req, hv));
            hc->req.start_ms = http_api->now_ms(http_W.w);
            /* HTTP/2 prior knowledge: "PRI * HTTP/2.0" */
            if (end - p >= 3 && memcmp(p, "PRI", 3) == 0 &&
                ((size_t)(end - p) < 14 || memcmp(p, "PRI * HTTP/2.0", 14) == 0)) {
                http_send_error(hc, 505, 1);
                break;
            }
            hc->head_timer = 0; /* armed below only if the head stays incomplete */
        }
        if (hc->phase == HTTP_PH_HEAD && !hc->scan.done) {
            size_t used;
            int st = http_scan_head(&hc->scan, p, (size_t)(end - p), &used, &hc->srv->limits);
            if (st) {
                http_W.parse_errors++;
                http_send_error(hc, st, 1);
                break;
            }
        }
        llhttp_t *parser = &hc->rq->parser;
        llhttp_errno_t e = llhttp_execute(parser, (const char *)p, (size_t)(end - p));
        if (e == HPE_OK) {
            p = end;
            break;
        }
        if (e == HPE_PAUSED) {
            const char *pos = llhttp_get_error_pos(parser);
            llhttp_resume(parser);
            p = (const uint8_t *)pos;
            http_dispatch(hc);
            continue;
        }
        http_W.parse_errors++;
        http_send_error(hc, http_errno_status(hc, e, p, end), 1);
        break;
    }
    hc->in_process = 0;
    if (hc->closing)
        return len;
    if (p < end) { /* busy or output full: the rest is the next request */
        if (hc->phase == HTTP_PH_IDLE)
            http_rq_put(hc);
        return http_wait(hc, (size_t)(p - data));
    }
    switch (hc->phase) {
    case HTTP_PH_IDLE:
        http_rq_put(hc); /* the next request takes one when it starts */
        /* small answers leave at once; a big backlog is watched by send_timeout
         * until the queue drains (on_drain) */
        if (hc->want_send_timeout || http_api->conn_out_pending(hc->c) > 65536) {
            hc->want_send_timeout = 1;
            http_api->conn_timeout(hc->c, hc->srv->send_timeout);
            http_api->conn_want_drain(hc->c);
        } else {
            http_api->conn_timeout(hc->c, hc->srv->keepalive_timeout);
        }
        break;
    case HTTP_PH_HEAD:
        /* client_header_timeout runs from the first byte of the head: armed
         * once, not moved by later pieces (slow clients) */
        if (!hc->head_timer) {
            hc->head_timer = 1;
            http_api->conn_timeout(hc->c, hc->srv->client_header_timeout);
        }
        break;
    case HTTP_PH_BODY:
        http_api->conn_timeout(hc->c, hc->srv->client_body_timeout);
        break;
    default:
        break;
    }
    return len;
}
