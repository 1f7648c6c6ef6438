/* modules/http/http2_session.c - a connection that speaks HTTP/2: its
 * nghttp2 server session fed with what zerg receives (mem_recv), its output
 * taken into the connection's queue (mem_send) up to the output high mark,
 * the abuse limits, idle and send timeouts, and the drain's GOAWAY. */
#include <stdlib.h>
#include <string.h>

#include "http2.h"

/* Rapid reset (CVE-2023-44487): a burst of resets, then this many a second. */
#define HTTP2_RESET_BURST 1000
#define HTTP2_RESET_RATE  33
/* A draining worker waits for a pause in a connection's requests (a tick
 * without a new stream), at most HTTP2_DRAIN_BUSY_MS: a GOAWAY stops a
 * client that has more to ask (h2load, and clients that do not retry
 * elsewhere, fail what they had left), while a pause is where clients end
 * their work. Then the shutdown notice goes; the final GOAWAY (with the
 * last stream the worker took) follows once requests already sent have
 * arrived. */
#define HTTP2_DRAIN_TICK_MS  200
#define HTTP2_DRAIN_BUSY_MS  2000
#define HTTP2_DRAIN_GRACE_MS 1000
enum { HTTP2_DRAIN_WAIT = 1, HTTP2_DRAIN_NOTICE, HTTP2_DRAIN_FINAL };

static http2_stream *stream_of(nghttp2_session *ng, int32_t id)
{
    return nghttp2_session_get_stream_user_data(ng, id);
}

static int on_begin_headers(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    http2_session *s = user_data;
    if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0;
    http2_stream *st = http2_stream_new(s, frame->hd.stream_id);
    if (!st || nghttp2_session_set_stream_user_data(ng, frame->hd.stream_id, st) != 0) {
        if (st)
            http2_stream_free(st);
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    }
    if (!s->stall_armed) {
        s->stall_armed = 1;
        http_api->timer_set(http_W.w, &s->stall_timer, s->hc->dsrv->send_timeout);
    }
    s->in_head = st;
    return 0;
}

/* An HPACK bomb: a small header block that decodes to far more than
 * max_header_list_size (a big field put in the dynamic table once, then
 * named again and again by a one-byte index). A list over the limit is
 * answered 431; one this many times over it ends the connection. */
#define HTTP2_HEADER_BOMB 4

static int on_header(nghttp2_session *ng, const nghttp2_frame *frame, const uint8_t *name,
                     size_t nlen, const uint8_t *value, size_t vlen, uint8_t flags, void *user_data)
{
    (void)flags;
    http2_session *s = user_data;
    /* one header block arrives at a time: its stream needs no lookup */
    http2_stream *st = s->in_head && s->in_head->id == frame->hd.stream_id
                           ? s->in_head
                           : stream_of(ng, frame->hd.stream_id);
    if (!st || frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST)
        return 0; /* trailers: not looked at */
    if (http2_stream_header(st, name, nlen, value, vlen))
        return NGHTTP2_ERR_TEMPORAL_CALLBACK_FAILURE;
    if (st->header_bytes > HTTP2_HEADER_BOMB * s->conf->max_header_list_size) {
        s->why = "HPACK bomb (a header list 4 times over max_header_list_size)";
        nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
        return NGHTTP2_ERR_CALLBACK_FAILURE; /* nothing more of it is decoded */
    }
    return 0;
}

/* Empty DATA frames that do not end their stream carry nothing: a flood of
 * them only costs the server (nghttp2 1.52 does not count them). PINGs and
 * SETTINGS each cost an answer: nghttp2 bounds the answers waiting, not
 * the rate of a client that reads them. */
#define HTTP2_EMPTY_DATA_MAX   1000
#define HTTP2_ANSWERED_PER_SEC 1000

/* A frame that only costs the server: the reason to end the session. */
static const char *http2_flood(http2_session *s, const nghttp2_frame *frame)
{
    uint8_t type = frame->hd.type, flags = frame->hd.flags;
    if (type == NGHTTP2_DATA && frame->hd.length == 0 && !(flags & NGHTTP2_FLAG_END_STREAM) &&
        ++s->empty_data > HTTP2_EMPTY_DATA_MAX)
        return "empty DATA flood";
    if ((type == NGHTTP2_PING || type == NGHTTP2_SETTINGS) && !(flags & NGHTTP2_FLAG_ACK)) {
        uint64_t sec = http_api->now_ms(http_W.w) / 1000;
        if (sec != s->answered_sec) {
            s->answered_sec = sec;
            s->answered = 0;
        }
        if (++s->answered > HTTP2_ANSWERED_PER_SEC)
            return "PING or SETTINGS flood";
    }
    return NULL;
}

static int on_frame_recv(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    http2_session *s = user_data;
    const char *flood = http2_flood(s, frame);
    if (flood) {
        s->why = flood;
        return nghttp2_session_terminate_session(ng, NGHTTP2_ENHANCE_YOUR_CALM);
    }
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        s->drain_busy = 1; /* a drain waits for a pause in these */
    if (frame->hd.type != NGHTTP2_HEADERS && frame->hd.type != NGHTTP2_DATA)
        return 0;
    http2_stream *st = stream_of(ng, frame->hd.stream_id);
    if (!st)
        return 0;
    int end = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (frame->hd.type == NGHTTP2_HEADERS && frame->headers.cat == NGHTTP2_HCAT_REQUEST)
        http2_stream_head(st, end); /* proxy_pass starts: the body streams up */
    if (end)
        http2_stream_request(st);
    return 0;
}

static int on_data_chunk(nghttp2_session *ng, uint8_t flags, int32_t id, const uint8_t *data,
                         size_t len, void *user_data)
{
    (void)flags;
    (void)user_data;
    http2_stream *st = stream_of(ng, id);
    if (st)
        http2_stream_body(st, data, len); /* consumed when taken (http2_body.c) */
    else
        nghttp2_session_consume(ng, id, len);
    return 0;
}

static int on_stream_close(nghttp2_session *ng, int32_t id, uint32_t error_code, void *user_data)
{
    (void)error_code;
    (void)user_data;
    http2_stream *st = stream_of(ng, id);
    if (st) {
        nghttp2_session_set_stream_user_data(ng, id, NULL);
        http2_stream_closed(st);
    }
    return 0;
}

/* A GOAWAY for an error (a flood, a protocol error, rapid reset: whether
 * nghttp2 or zerg decided it), or for a send_timeout, is worth a line. */
static int on_frame_send(nghttp2_session *ng, const nghttp2_frame *frame, void *user_data)
{
    (void)ng;
    http2_session *s = user_data;
    if (frame->hd.type == NGHTTP2_GOAWAY &&
        (frame->goaway.error_code != NGHTTP2_NO_ERROR || s->why)) {
        http_W.h2_goaways++;
        char addr[64] = "-";
        socklen_t len;
        const struct sockaddr *sa = http_api->conn_peer(s->hc->c, &len);
        if (sa && sa->sa_family != AF_UNSPEC)
            http_addr_text(sa, addr, sizeof(addr), 1);
        http_api->log(ZERG_LOG_INFO, "http2: closing a connection from %s: GOAWAY %s%s%s", addr,
                      nghttp2_http2_strerror(frame->goaway.error_code), s->why ? ": " : "",
                      s->why ? s->why : "");
    }
    return 0;
}

static nghttp2_session_callbacks *http2_callbacks(void)
{
    static nghttp2_session_callbacks *cbs;
    if (cbs || nghttp2_session_callbacks_new(&cbs) != 0)
        return cbs;
    nghttp2_session_callbacks_set_on_begin_headers_callback(cbs, on_begin_headers);
    nghttp2_session_callbacks_set_on_header_callback(cbs, on_header);
    nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, on_frame_recv);
    nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, on_data_chunk);
    nghttp2_session_callbacks_set_on_stream_close_callback(cbs, on_stream_close);
    nghttp2_session_callbacks_set_send_data_callback(cbs, http2_send_data);
    nghttp2_session_callbacks_set_on_frame_send_callback(cbs, on_frame_send);
    return cbs;
}

static nghttp2_option *http2_options(void)
{
    nghttp2_option *opt;
    if (nghttp2_option_new(&opt) != 0)
        return NULL;
    nghttp2_option_set_max_settings(opt, 32);       /* entries in one SETTINGS frame */
    nghttp2_option_set_max_outbound_ack(opt, 1000); /* SETTINGS/PING floods */
    nghttp2_option_set_max_continuations(opt, 8);   /* CONTINUATION floods */
    nghttp2_option_set_stream_reset_rate_limit(opt, HTTP2_RESET_BURST, HTTP2_RESET_RATE);
    nghttp2_option_set_max_send_header_block_length(opt, 65536);
    nghttp2_option_set_max_deflate_dynamic_table_size(opt, 4096);
    /* request bodies reopen the window once taken (proxy_pass: written
     * upstream), not when received: http2_body.c consumes them */
    nghttp2_option_set_no_auto_window_update(opt, 1);
    nghttp2_option_set_no_closed_streams(opt, 1);
    return opt;
}

/* The connection's window: the streams' windows together, at most 16 MiB
 * (each stream holds at most its own window unconsumed). */
static int32_t http2_conn_window(const http2_conf *c)
{
    uint64_t w = (uint64_t)c->max_concurrent_streams * c->initial_window_size;
    if (w < NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE)
        w = NGHTTP2_INITIAL_CONNECTION_WINDOW_SIZE;
    return (int32_t)(w > (16u << 20) ? 16u << 20 : w);
}

static void http2_flush(http2_session *s);

static void flush_timer_fired(zerg_timer *t)
{
    http2_session *s = t->data;
    s->flush_armed = 0;
    http2_flush(s);
}

/* send_timeout per stream: response bytes that wait on the client (a
 * window it never opens, a connection it does not read) longer than that
 * end the connection, whatever its other streams do (new streams, or
 * progress elsewhere, would keep the connection's own timer from firing). */
static void stall_timer_fired(zerg_timer *t)
{
    http2_session *s = t->data;
    uint64_t now = http_api->now_ms(http_W.w), next = 0;
    for (http2_stream *st = s->streams; st; st = st->next) {
        uint64_t limit = st->hc.srv->send_timeout, waited = now - st->wait_ms;
        if (!st->queued)
            continue;
        if (waited >= limit) {
            s->why = "send_timeout: a stream's answer waited on the client";
            http_W.timeouts++;
            nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
            http2_flush(s);
            if (!s->hc->closing)
                http_conn_close(s->hc);
            return;
        }
        if (!next || limit - waited < next)
            next = limit - waited;
    }
    s->stall_armed = s->streams != NULL;
    if (s->stall_armed)
        http_api->timer_set(http_W.w, &s->stall_timer, next ? next : s->hc->dsrv->send_timeout);
}

static void drain_timer_fired(zerg_timer *t)
{
    http2_session *s = t->data;
    if (s->draining == HTTP2_DRAIN_WAIT) {
        int busy = s->drain_busy;
        s->drain_busy = 0;
        s->drain_waited += HTTP2_DRAIN_TICK_MS;
        if (busy && s->drain_waited < HTTP2_DRAIN_BUSY_MS) {
            http_api->timer_set(http_W.w, &s->drain_timer, HTTP2_DRAIN_TICK_MS);
            return;
        }
        s->draining = HTTP2_DRAIN_NOTICE;
        nghttp2_submit_shutdown_notice(s->ng);
        http_api->timer_set(http_W.w, &s->drain_timer, HTTP2_DRAIN_GRACE_MS);
        http2_flush(s);
        return;
    }
    s->draining = HTTP2_DRAIN_FINAL;
    nghttp2_submit_goaway(s->ng, NGHTTP2_FLAG_NONE, nghttp2_session_get_last_proc_stream_id(s->ng),
                          NGHTTP2_NO_ERROR, NULL, 0);
    http2_flush(s);
}

int http2_session_start(http_conn *hc)
{
    http2_session *s = calloc(1, sizeof(*s));
    nghttp2_option *opt = NULL;
    nghttp2_session_callbacks *cbs = http2_callbacks();
    http2_mem_hold();
    if (!s || !cbs)
        goto fail;
    s->hc = hc;
    s->conf = http2_conf_of(hc->dsrv);
    if (!(opt = http2_options()) ||
        nghttp2_session_server_new3(&s->ng, cbs, s, opt, &http2_mem) != 0)
        goto fail;
    nghttp2_option_del(opt);
    opt = NULL;
    nghttp2_settings_entry iv[] = {
        {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, (uint32_t)s->conf->max_concurrent_streams},
        {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, (uint32_t)s->conf->initial_window_size},
        {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, (uint32_t)s->conf->max_header_list_size},
        {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
    };
    if (nghttp2_submit_settings(s->ng, NGHTTP2_FLAG_NONE, iv, sizeof(iv) / sizeof(iv[0])) != 0)
        goto fail;
    /* the connection's window: room for many streams' windows, so that one
     * stream whose upstream is slow does not stop the others' bodies */
    if (nghttp2_session_set_local_window_size(s->ng, NGHTTP2_FLAG_NONE, 0,
                                              http2_conn_window(s->conf)) != 0)
        goto fail;
    s->flush_timer.fn = flush_timer_fired;
    s->flush_timer.data = s;
    s->drain_timer.fn = drain_timer_fired;
    s->drain_timer.data = s;
    s->stall_timer.fn = stall_timer_fired;
    s->stall_timer.data = s;
    hc->h2s = s;
    http_W.h2_conns++;
    hc->req.major = 2; /* what the connection speaks, for its own log lines */
    http_api->conn_timeout(hc->c, s->conf->idle_timeout);
    if (http_W.draining)
        http2_drain(hc);
    return 0;
fail:
    if (opt)
        nghttp2_option_del(opt);
    if (s && s->ng)
        nghttp2_session_del(s->ng);
    free(s);
    http2_mem_release();
    return -1;
}

static int output_full(http2_session *s)
{
    return http_api->conn_out_pending(s->hc->c) > http_out_high(s->hc->c);
}

/* The connection's timer: idle_timeout without streams, else send_timeout
 * (moved on by every DATA frame sent: http2_send_data). */
static void arm_idle(http2_session *s)
{
    if (!s->streams)
        http_api->conn_timeout(s->hc->c, s->conf->idle_timeout);
}

/* What nghttp2 has to send, into the connection's queue, up to its high
 * mark (the rest waits for on_drain); the connection ends once the session
 * wants neither to read nor to write (after GOAWAY). */
static void http2_flush(http2_session *s)
{
    http_conn *hc = s->hc;
    if (s->gone || hc->closing)
        return;
    while (!output_full(s)) {
        const uint8_t *p;
        ssize_t n = nghttp2_session_mem_send(s->ng, &p);
        if (n < 0) {
            http_api->log(ZERG_LOG_WARN, "http2: %s", nghttp2_strerror((int)n));
            http_conn_abort(hc);
            return;
        }
        if (n == 0)
            break;
        if (http_api->write(hc->c, p, (size_t)n) != 0) {
            http_conn_abort(hc);
            return;
        }
    }
    if (hc->closing)
        return;
    if (output_full(s))
        http_api->conn_want_drain(hc->c);
    else if (!nghttp2_session_want_read(s->ng) && !nghttp2_session_want_write(s->ng))
        http_conn_close(hc);
    else
        arm_idle(s);
}

void http2_want_flush(http2_session *s)
{
    if (s->in_recv || s->gone)
        return; /* on_data flushes when nghttp2 is done with the bytes */
    if (s->flush_armed)
        return;
    s->flush_armed = 1;
    http_api->timer_set(http_W.w, &s->flush_timer, 0);
}

size_t http2_on_data(http_conn *hc, const uint8_t *data, size_t len)
{
    http2_session *s = hc->h2s;
    if (hc->closing)
        return len;
    if (output_full(s)) { /* a peer that does not read: nothing more taken */
        s->paused = 1;
        http_api->pause_read(hc->c);
        return 0;
    }
    s->in_recv = 1;
    ssize_t n = nghttp2_session_mem_recv(s->ng, data, len);
    s->in_recv = 0;
    if (n < 0) {
        http_W.parse_errors++;
        if (!s->why) /* else a callback ended the session, and said why */
            s->why = nghttp2_strerror((int)n);
        nghttp2_session_terminate_session(
            s->ng, n == NGHTTP2_ERR_FLOODED ? NGHTTP2_ENHANCE_YOUR_CALM : NGHTTP2_PROTOCOL_ERROR);
    }
    http2_flush(s);
    return len;
}

void http2_on_drain(http_conn *hc)
{
    http2_session *s = hc->h2s;
    if (s->paused && !hc->closing) {
        s->paused = 0;
        http_api->resume_read(hc->c);
    }
    http2_flush(s);
}

void http2_on_timeout(http_conn *hc)
{
    http2_session *s = hc->h2s;
    if (http2_waits_upstream(s)) { /* proxy_read_timeout bounds that wait */
        http_api->conn_timeout(hc->c, hc->dsrv->send_timeout);
        return;
    }
    http_W.timeouts++;
    /* idle, or a peer that took nothing for send_timeout (a window never
     * opened): that one is worth a line */
    if (s->streams)
        s->why = "send_timeout with streams in progress";
    nghttp2_session_terminate_session(s->ng, NGHTTP2_NO_ERROR);
    http2_flush(s);
    if (!hc->closing)
        http_conn_close(hc);
}

void http2_on_eof(http_conn *hc)
{
    http_conn_close(hc);
}

void http2_drain(http_conn *hc)
{
    http2_session *s = hc->h2s;
    if (s->draining)
        return;
    s->draining = HTTP2_DRAIN_WAIT;
    s->drain_busy = 0; /* only streams from now on count */
    http_api->timer_set(http_W.w, &s->drain_timer, HTTP2_DRAIN_TICK_MS);
}

void http2_session_free(http_conn *hc)
{
    http2_session *s = hc->h2s;
    if (!s)
        return;
    s->gone = 1;
    http_api->timer_cancel(http_W.w, &s->flush_timer);
    http_api->timer_cancel(http_W.w, &s->drain_timer);
    http_api->timer_cancel(http_W.w, &s->stall_timer);
    while (s->streams)
        http2_stream_free(s->streams);
    nghttp2_session_del(s->ng);
    free(s);
    hc->h2s = NULL;
    http2_mem_release();
}
