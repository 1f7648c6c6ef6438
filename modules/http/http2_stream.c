/* modules/http/http2_stream.c - one HTTP/2 stream: its request head from
 * HPACK's fields into the http_conn the handlers know, and the response
 * layer's HTTP/2 side: the head as a HEADERS frame, body pieces framed as
 * DATA without a copy (NO_COPY: the frame header, then the bytes where they
 * lie), as the peer's flow-control window lets them go. */
#include <stdlib.h>
#include <string.h>

#include "http2.h"
#include "http_limit.h"
#include "http_proxy.h"
#include "http_static.h"

http2_stream *http2_stream_new(http2_session *s, int32_t id)
{
    http2_stream *st = http2_mem_calloc(1, sizeof(*st));
    if (!st)
        return NULL;
    http_conn *hc = &st->hc, *conn = s->hc;
    hc->c = conn->c;
    hc->srv = hc->dsrv = conn->dsrv;
    hc->vhosts = conn->vhosts;
    hc->nvhosts = conn->nvhosts;
    hc->keep_fields = conn->keep_fields;
    hc->h2 = st;
    if (http_rq_get(hc) < 0) {
        http2_mem_free(st);
        return NULL;
    }
    hc->req.start_ms = http_api->now_ms(http_W.w);
    hc->req.major = 2;
    hc->req.keepalive = 1;
    hc->phase = HTTP_PH_HEAD;
    st->sess = s;
    st->id = id;
    http_W.h2_streams++;
    st->next = s->streams;
    if (s->streams)
        s->streams->prev = st;
    s->streams = st;
    /* a stream in progress: the connection is watched by send_timeout */
    http_api->conn_timeout(conn->c, conn->dsrv->send_timeout);
    return st;
}

/* ---- the request head ---------------------------------------------------- */

/* Names with their lengths: a field is compared only with names as long
 * (no strlen per entry and field). */
typedef struct http2_name {
    const char *name;
    uint8_t len;
    uint8_t id;
} http2_name;

#define HTTP2_NAME(s, id) s, sizeof(s) - 1, id

static int name_id(const http2_name *t, size_t n, const uint8_t *name, size_t len)
{
    for (size_t i = 0; i < n; i++)
        if (t[i].len == len && !memcmp(t[i].name, name, len))
            return t[i].id;
    return -1;
}

static const http2_name http2_methods[] = {
#define HTTP2_METHOD(num, name, string) {HTTP2_NAME(#string, HTTP_##name)},
    HTTP_METHOD_MAP(HTTP2_METHOD)
#undef HTTP2_METHOD
};

static int method_of(const uint8_t *v, size_t n)
{
    return name_id(http2_methods, sizeof(http2_methods) / sizeof(http2_methods[0]), v, n);
}

/* The fields the handlers look at (names arrive lowercase in HTTP/2). */
static const http2_name http2_known[] = {
    {HTTP2_NAME("host", HTTP_H_HOST)},
    {HTTP2_NAME("content-length", HTTP_H_CL)},
    {HTTP2_NAME("if-none-match", HTTP_H_INM)},
    {HTTP2_NAME("if-modified-since", HTTP_H_IMS)},
    {HTTP2_NAME("range", HTTP_H_RANGE)},
    {HTTP2_NAME("if-range", HTTP_H_IF_RANGE)},
    {HTTP2_NAME("referer", HTTP_H_REFERER)},
    {HTTP2_NAME("user-agent", HTTP_H_UA)},
    {HTTP2_NAME("accept-encoding", HTTP_H_ACCEPT_ENCODING)},
};

static int known_id(const uint8_t *name, size_t n)
{
    return name_id(http2_known, sizeof(http2_known) / sizeof(http2_known[0]), name, n);
}

static int hbuf_add(http_conn *hc, const uint8_t *p, size_t n, http_span *out)
{
    http_rq *rq = hc->rq;
    out->off = rq->hlen;
    out->len = (uint32_t)n;
    if (http_buf_append(&rq->hbuf, &rq->hlen, &rq->hcap, (const char *)p, n) < 0) {
        hc->err_status = 500;
        return -1;
    }
    return 0;
}

/* A known field's first value, copied unless *kept already holds it (a
 * field kept for proxy_pass); :authority stands for Host. */
static void set_known(http_conn *hc, int id, const uint8_t *v, size_t vlen, const http_span *kept)
{
    http_req *r = &hc->req;
    if (r->hcount[id] < 255)
        r->hcount[id]++;
    if (r->hcount[id] != 1)
        return;
    if (kept)
        r->hv[id] = *kept;
    else
        hbuf_add(hc, v, vlen, &r->hv[id]);
}

int http2_stream_header(http2_stream *st, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen)
{
    http_conn *hc = &st->hc;
    http_req *r = &hc->req;
    /* RFC 9113 6.5.2: each field counts its name, value and 32 bytes */
    st->header_bytes += (uint32_t)(nlen + vlen + 32);
    if (st->header_bytes > st->sess->conf->max_header_list_size)
        hc->err_status = 431;
    if (hc->err_status)
        return 0; /* answered once the head is complete */
    r->nheaders++;
    if (nlen && name[0] == ':') {
        if (nlen == 7 && !memcmp(name, ":method", 7)) {
            int m = method_of(value, vlen);
            if (m < 0)
                hc->err_status = 400;
            r->method = (uint8_t)(m < 0 ? 0 : m);
        } else if (nlen == 5 && !memcmp(name, ":path", 5)) {
            if (vlen > hc->srv->max_uri_length)
                hc->err_status = 414;
            else
                hbuf_add(hc, value, vlen, &r->url);
        } else if (nlen == 10 && !memcmp(name, ":authority", 10)) {
            if (!r->hcount[HTTP_H_HOST])
                set_known(hc, HTTP_H_HOST, value, vlen, NULL);
        }
        return 0;
    }
    int id = known_id(name, nlen);
    http_span n, v;
    if (hc->keep_fields) { /* every field, for proxy_pass or limits (nghttp2 checked them) */
        if (hbuf_add(hc, name, nlen, &n) < 0 || hbuf_add(hc, value, vlen, &v) < 0 ||
            http_field_add(hc, n, v) < 0)
            return 0; /* err_status says why */
    }
    if (id == HTTP_H_HOST && r->hcount[HTTP_H_HOST])
        return 0; /* :authority came first and wins (RFC 9113 8.3.1) */
    if (id >= 0)
        set_known(hc, id, value, vlen, hc->keep_fields ? &v : NULL);
    return 0;
}

/* Content-Length's value (nghttp2 checked its syntax), -1 without one. */
static int64_t content_length(const http_conn *hc)
{
    const http_req *r = &hc->req;
    if (!r->hcount[HTTP_H_CL])
        return -1;
    const char *v = http_hbuf(hc, r->hv[HTTP_H_CL]);
    int64_t n = 0;
    for (uint32_t i = 0; i < r->hv[HTTP_H_CL].len && n < INT64_MAX / 10 - 9; i++)
        n = n * 10 + (v[i] - '0');
    return n;
}

/* The request head is complete: checked and routed as HTTP/1.1's; a
 * proxy_pass request starts its upstream now, so that its body streams
 * up as it comes (http2_body.c); a body of unknown length goes up chunked. */
void http2_stream_head(http2_stream *st, int end)
{
    http_conn *hc = &st->hc;
    http_req *r = &hc->req;
    if (st->headed || st->closed)
        return;
    st->headed = 1;
    hc->phase = HTTP_PH_BODY;
    r->head = r->method == HTTP_HEAD;
    if (!hc->err_status && (r->method == HTTP_CONNECT || r->method == HTTP_PRI))
        hc->err_status = 405;
    if (!hc->err_status && !r->url.len)
        hc->err_status = 400;
    if (!hc->err_status && r->hcount[HTTP_H_HOST] &&
        !http_host_valid(http_hbuf(hc, r->hv[HTTP_H_HOST]), r->hv[HTTP_H_HOST].len))
        hc->err_status = 400;
    if (!hc->err_status)
        http_select_server(hc);
    int64_t cl = content_length(hc);
    uint64_t max = hc->srv->client_max_body_size;
    if (!hc->err_status && max && cl > 0 && (uint64_t)cl > max)
        hc->err_status = 413;
    if (hc->err_status) {
        if (hc->err_status != 413)
            http_W.parse_errors++;
        st->dispatched = 1;
        http_send_error(hc, hc->err_status, 0);
        return;
    }
    if (!end) {
        r->te_chunked = cl < 0;
        http2_stream_body_wait(st);
    }
    int limited = http_limit_on(hc->srv) ? http_limit_head(hc) : HTTP_LIMIT_PASS;
    if (limited == HTTP_LIMIT_WAIT) { /* its timer dispatches it (http_limit.c) */
        const char *path;
        size_t plen;
        int status;
        const http_location *l = http_route(hc, &path, &plen, &status);
        st->waiting = 1;
        st->keep_early = !end && l && l->kind == HTTP_LOC_PROXY;
    } else if (limited == HTTP_LIMIT_PASS && hc->srv->has_proxy) {
        http_proxy_begin(hc);
    }
}

/* The request is complete (END_STREAM): answered as HTTP/1.1's. */
void http2_stream_request(http2_stream *st)
{
    if (st->closed)
        return;
    http2_stream_head(st, 1);
    http2_stream_body_end(st);
    if (st->waiting && st->hc.up && !st->hc.up->dispatched)
        http_proxy_dispatch(&st->hc); /* limit_req's delay ended before the body */
    if (st->dispatched || st->waiting || st->closed)
        return;
    st->dispatched = 1;
    http_dispatch(&st->hc);
}

/* ---- the response head ----------------------------------------------------- */

#define HTTP2_NV_MAX    64
#define HTTP2_NAMES_MAX 2048

/* Connection-specific fields mean nothing in HTTP/2 (RFC 9113 8.2.2). */
static int hop_by_hop(const char *n, size_t len)
{
    if (len != 7 && len != 10 && len != 16 && len != 17)
        return 0; /* most fields: no comparison */
    static const http2_name hop[] = {
        {HTTP2_NAME("connection", 1)},        {HTTP2_NAME("keep-alive", 1)},
        {HTTP2_NAME("transfer-encoding", 1)}, {HTTP2_NAME("upgrade", 1)},
        {HTTP2_NAME("proxy-connection", 1)},
    };
    return name_id(hop, sizeof(hop) / sizeof(hop[0]), (const uint8_t *)n, len) > 0;
}

typedef struct http2_head {
    nghttp2_nv nv[HTTP2_NV_MAX];
    size_t n;
    char names[HTTP2_NAMES_MAX]; /* lowercased names */
    size_t used;
} http2_head;

/* A field whose name is lowercase already (and no hop-by-hop one). */
static void head_put(http2_head *h, const char *name, size_t nlen, const char *v, size_t vlen)
{
    if (h->n < HTTP2_NV_MAX)
        h->nv[h->n++] = (nghttp2_nv){(uint8_t *)(uintptr_t)name, (uint8_t *)(uintptr_t)v, nlen,
                                     vlen, NGHTTP2_NV_FLAG_NONE};
}

/* "Name: value\r\n" lines, as the HTTP/1.1 side formats them: each name
 * is lowercased into h->names on the way to its colon (one pass). */
static void head_add_lines(http2_head *h, const char *p, size_t len)
{
    const char *end = p + len;
    while (p < end) {
        char *lc = h->names + h->used;
        size_t room = sizeof(h->names) - h->used, n = 0;
        for (; p + n < end && p[n] != ':' && p[n] != '\r'; n++)
            if (n < room)
                lc[n] = (char)(p[n] | ((unsigned)((unsigned char)p[n] - 'A') < 26u) << 5);
        const char *at = p + n, *eol = at;
        if (at < end && *at == ':' && !(eol = memchr(at, '\r', (size_t)(end - at))))
            eol = end;
        if (at < end && *at == ':' && n <= room && !hop_by_hop(lc, n)) {
            const char *v = at + 1;
            while (v < eol && (*v == ' ' || *v == '\t'))
                v++;
            h->used += n;
            head_put(h, lc, n, v, (size_t)(eol - v));
        }
        p = eol + 2 <= end ? eol + 2 : end;
    }
}

/* The blocks of a head repeat from one answer to the next (the server
 * line, a location's fields, the Date line within its second): the fields
 * parsed from a block are kept with a copy of its text under its address,
 * and a block equal to the one kept there is not parsed again. */
#define HTTP2_BLOCK_SLOTS  16
#define HTTP2_BLOCK_MAX    256
#define HTTP2_BLOCK_FIELDS 8

typedef struct http2_block {
    const char *at; /* the block's address */
    size_t len;     /* of text */
    char text[HTTP2_BLOCK_MAX];
    char names[HTTP2_BLOCK_MAX]; /* lowercased, one after another */
    size_t names_len;
    size_t n;
    struct {
        uint16_t name_len, value_off, value_len;
    } f[HTTP2_BLOCK_FIELDS];
} http2_block;

static http2_block http2_blocks[HTTP2_BLOCK_SLOTS];
static size_t http2_block_next; /* the slot a new address takes */

/* Parses p into a slot's fields; 0 where they do not fit one. */
static int block_parse(http2_block *b, const char *p, size_t len)
{
    static http2_head one;
    one.n = one.used = 0;
    head_add_lines(&one, p, len);
    if (one.n > HTTP2_BLOCK_FIELDS || one.used > sizeof(b->names))
        return 0;
    b->at = p;
    memcpy(b->text, p, len);
    memcpy(b->names, one.names, one.used);
    b->len = len;
    b->names_len = one.used;
    b->n = one.n;
    for (size_t i = 0; i < one.n; i++) {
        b->f[i].name_len = (uint16_t)one.nv[i].namelen;
        b->f[i].value_off = (uint16_t)((const char *)one.nv[i].value - p);
        b->f[i].value_len = (uint16_t)one.nv[i].valuelen;
    }
    return 1;
}

/* The fields of block p, its values pointing into p. */
static void head_add_block(http2_head *h, const char *p, size_t len)
{
    http2_block *b = NULL;
    for (size_t i = 0; i < HTTP2_BLOCK_SLOTS && !b && len <= HTTP2_BLOCK_MAX; i++)
        if (http2_blocks[i].at == p)
            b = &http2_blocks[i];
    if (!b && len <= HTTP2_BLOCK_MAX) { /* a new address: the oldest one's slot */
        b = &http2_blocks[http2_block_next];
        http2_block_next = (http2_block_next + 1) % HTTP2_BLOCK_SLOTS;
        b->at = NULL;
        b->len = 0;
    }
    if (!b || ((b->len != len || memcmp(b->text, p, len)) && !block_parse(b, p, len)) ||
        h->used + b->names_len > sizeof(h->names)) {
        head_add_lines(h, p, len); /* as it is: too big for a slot */
        return;
    }
    char *names = h->names + h->used;
    memcpy(names, b->names, b->names_len);
    h->used += b->names_len;
    for (size_t i = 0; i < b->n; i++) {
        head_put(h, names, b->f[i].name_len, p + b->f[i].value_off, b->f[i].value_len);
        names += b->f[i].name_len;
    }
}

/* Decimal digits of v (a status, a length): snprintf costs more than the
 * rest of a small response's head. */
static size_t fmt_u64(char out[20], uint64_t v)
{
    char t[20];
    size_t n = 0;
    do
        t[n++] = (char)('0' + v % 10);
    while (v /= 10);
    for (size_t i = 0; i < n; i++)
        out[i] = t[n - 1 - i];
    return n;
}

int http2_write_head(http_conn *hc, int status, const char *const *blocks, const size_t *lens,
                     size_t nblocks, int64_t clen)
{
    http2_stream *st = hc->h2;
    http2_session *s = st->sess;
    hc->req.status = status;
    if (st->submitted || st->closed)
        return -1;
    static http2_head h;
    h.n = h.used = 0;
    char code[20], cl[20];
    head_put(&h, ":status", 7, code, fmt_u64(code, (uint64_t)status));
    for (size_t i = 0; i < nblocks; i++)
        if (lens[i])
            head_add_block(&h, blocks[i], lens[i]);
    if (clen >= 0)
        head_put(&h, "content-length", 14, cl, fmt_u64(cl, (uint64_t)clen));
    st->has_body = !hc->req.head && clen != 0 && status >= 200 && status != 204 && status != 304;
    nghttp2_data_provider prd = {.source.ptr = st, .read_callback = http2_data_read};
    if (nghttp2_submit_response(s->ng, st->id, h.nv, h.n, st->has_body ? &prd : NULL) != 0)
        return -1;
    st->submitted = 1;
    http2_want_flush(s);
    return 0;
}

/* ---- body pieces ------------------------------------------------------- */

#define HTTP2_COPY_MIN 4096

static void piece_finish(http2_piece *pc)
{
    if (pc->done)
        pc->done(pc->arg);
    http2_mem_free(pc);
}

/* Framed whole (or dropped): finished once the frames using it are sent. */
static void piece_release(http2_piece *pc)
{
    pc->len = 0;
    if (pc->refs == 0)
        piece_finish(pc);
}

static void piece_sent(void *arg)
{
    http2_piece *pc = arg;
    if (--pc->refs == 0 && pc->len == 0)
        piece_finish(pc);
}

static void drop_pieces(http2_stream *st)
{
    while (st->head) {
        http2_piece *pc = st->head;
        st->head = pc->next;
        piece_release(pc);
    }
    st->tail = NULL;
    st->sess->body_queued -= st->queued;
    st->queued = 0;
}

int http2_body_write(http_conn *hc, const void *p, size_t len, int copy, zerg_done_fn done,
                     void *arg)
{
    http2_stream *st = hc->h2;
    if (st->closed || !st->has_body || st->done)
        return -EPIPE;
    if (!len) {
        if (done)
            done(arg);
        return 0;
    }
    http2_piece *pc = st->tail;
    if (copy && pc && pc->owned && pc->room >= len) {
        memcpy((uint8_t *)(uintptr_t)pc->p + pc->len, p, len);
        pc->len += len;
        pc->room -= len;
    } else {
        size_t cap = copy ? (len < HTTP2_COPY_MIN ? HTTP2_COPY_MIN : len) : 0;
        if (!(pc = http2_mem_alloc(sizeof(*pc) + cap)))
            return -ENOMEM;
        *pc = (http2_piece){.p = p, .len = len, .done = done, .arg = arg};
        if (copy) {
            pc->owned = 1;
            pc->p = memcpy(pc + 1, p, len);
            pc->room = cap - len;
        }
        if (st->tail)
            st->tail->next = pc;
        else
            st->head = pc;
        st->tail = pc;
    }
    if (!st->queued)
        st->wait_ms = http_api->now_ms(http_W.w);
    st->queued += len;
    st->sess->body_queued += len;
    if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->sess->ng, st->id);
    }
    http2_want_flush(st->sess);
    return 0;
}

static ssize_t data_read(nghttp2_session *ng, int32_t id, uint8_t *buf, size_t length,
                         uint32_t *flags, nghttp2_data_source *source, void *user_data)
{
    (void)ng;
    (void)id;
    (void)buf;
    (void)user_data;
    http2_stream *st = source->ptr;
    if (!st->queued) {
        if (st->done) {
            *flags |= NGHTTP2_DATA_FLAG_EOF;
            return 0;
        }
        st->deferred = 1;
        return NGHTTP2_ERR_DEFERRED;
    }
    size_t n = st->queued < length ? (size_t)st->queued : length;
    *flags |= NGHTTP2_DATA_FLAG_NO_COPY;
    if (n == st->queued && st->done)
        *flags |= NGHTTP2_DATA_FLAG_EOF;
    return (ssize_t)n;
}

const nghttp2_data_source_read_callback http2_data_read = data_read;

/* n bytes of the stream's first piece are framed. */
static void piece_take(http2_stream *st, http2_piece *pc, size_t n)
{
    pc->p += n;
    pc->len -= n;
    st->queued -= n;
    st->sess->body_queued -= n;
    if (pc->len == 0) {
        st->head = pc->next;
        if (!st->head)
            st->tail = NULL;
        piece_release(pc);
    }
}

/* The first n bytes of a piece into the connection's queue: copies
 * copied, the rest referenced where they lie. */
static int piece_write(zerg_conn *c, http2_piece *pc, size_t n)
{
    if (pc->owned)
        return http_api->write(c, pc->p, n);
    if (!pc->done)
        return http_api->write_ext(c, pc->p, n, NULL, NULL);
    pc->refs++;
    int rc = http_api->write_ext(c, pc->p, n, piece_sent, pc);
    if (rc != 0)
        pc->refs--;
    return rc;
}

/* A frame this small (a `return` body, an error page) is copied whole
 * after its header: one stretch of the queue, where a reference would
 * cost a segment of its own and an iovec (a TLS record's gathering copy). */
#define HTTP2_DATA_COPY_MAX 1024

static int frame_copy(zerg_conn *c, const http2_stream *st, const uint8_t *framehd, size_t length)
{
    size_t avail, at = 9, end = 9 + length;
    uint8_t *o = http_api->write_reserve(c, end, &avail);
    if (!o)
        return -1;
    memcpy(o, framehd, 9);
    for (const http2_piece *pc = st->head; at < end; pc = pc->next) {
        size_t n = pc->len < end - at ? pc->len : end - at;
        memcpy(o + at, pc->p, n);
        at += n;
    }
    http_api->write_commit(c, end);
    return 0;
}

/* A DATA frame: its header, then the bytes of the pieces it takes (the
 * pieces are released once the queue holds what it needs of them). */
int http2_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                    size_t length, nghttp2_data_source *source, void *user_data)
{
    (void)ng;
    (void)frame; /* no padding is ever asked for */
    (void)user_data;
    http2_stream *st = source->ptr;
    zerg_conn *c = st->hc.c;
    int copied = length <= HTTP2_DATA_COPY_MAX;
    if (copied ? frame_copy(c, st, framehd, length) != 0 : http_api->write(c, framehd, 9) != 0)
        return NGHTTP2_ERR_CALLBACK_FAILURE;
    while (length) {
        http2_piece *pc = st->head;
        size_t n = pc->len < length ? pc->len : length;
        if (!copied && piece_write(c, pc, n) != 0)
            return NGHTTP2_ERR_CALLBACK_FAILURE;
        piece_take(st, pc, n);
        length -= n;
    }
    http_api->conn_timeout(c, st->hc.srv->send_timeout); /* progress */
    if (st->hc.up || st->sess->ups_held)
        http2_stream_sent(st); /* upstreams may read again */
    st->wait_ms = http_api->now_ms(http_W.w);
    return 0;
}

/* ---- the end of a stream ----------------------------------------------- */

void http2_stream_done(http_conn *hc)
{
    http2_stream *st = hc->h2;
    st->done = 1;
    hc->phase = HTTP_PH_IDLE;
    if (st->closed)
        return;
    if (!st->submitted)
        nghttp2_submit_rst_stream(st->sess->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    else if (st->deferred) {
        st->deferred = 0;
        nghttp2_session_resume_data(st->sess->ng, st->id);
    }
    http2_want_flush(st->sess);
}

void http2_stream_abort(http_conn *hc)
{
    http2_stream *st = hc->h2;
    hc->closing = 1;
    if (!st->closed)
        nghttp2_submit_rst_stream(st->sess->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_INTERNAL_ERROR);
    http2_want_flush(st->sess);
}

/* What the stream's handler holds goes; it stays while a file open it
 * started is in flight (that open's completion frees it). */
static void stream_release(http2_stream *st)
{
    http_conn *hc = &st->hc;
    hc->closing = 1;
    if (hc->up) /* reset mid-request: its upstream connection ends */
        http_proxy_abandon(hc);
    http2_stream_body_free(st);
    http_file_conn_closed(hc);
    if (hc->limit)
        http_limit_done(hc);
    drop_pieces(st);
}

/* Unlinked from its session and freed; release: what it holds goes first. */
static void stream_free(http2_stream *st, int release)
{
    http2_session *s = st->sess;
    if (s->in_head == st)
        s->in_head = NULL;
    if (st->prev)
        st->prev->next = st->next;
    else
        s->streams = st->next;
    if (st->next)
        st->next->prev = st->prev;
    if (release)
        stream_release(st);
    http_rq_put(&st->hc);
    http2_mem_free(st);
}

void http2_stream_closed(http2_stream *st)
{
    http_conn *hc = &st->hc;
    int streaming = hc->file != NULL || hc->up != NULL;
    st->closed = 1;
    stream_release(st);
    if (hc->phase == HTTP_PH_BUSY && !streaming && !st->done)
        return; /* an open in flight: http2_stream_unbusy */
    /* released above: a second stream_release would find nothing */
    stream_free(st, 0);
}

void http2_stream_unbusy(http_conn *hc)
{
    http2_stream *st = hc->h2;
    if (st->closed)
        http2_stream_free(st);
}

void http2_stream_free(http2_stream *st)
{
    stream_free(st, 1);
}
