/* modules/http/http2_body.c - an HTTP/2 stream's request body: its DATA
 * handed to proxy_pass and consumed (the flow-control window reopened) only
 * once its upstream's output took them, so that a slow upstream stops the
 * client with bounded memory; client_body_timeout per stream; and the bound
 * on a stream's queued response body above which its upstream pauses. */
#include <stdlib.h>

#include "http2.h"
#include "http_proxy.h"

static void body_timer_fired(zerg_timer *t);

void http2_stream_body_wait(http2_stream *st)
{
    uint64_t ms = st->hc.srv->client_body_timeout;
    if (st->body_end || st->closed || !ms)
        return;
    st->body_timer.fn = body_timer_fired;
    st->body_timer.data = st;
    http_api->timer_set(http_W.w, &st->body_timer, ms);
}

void http2_stream_consume(http_conn *hc)
{
    http2_stream *st = hc->h2;
    if (!st->held)
        return;
    nghttp2_session_consume(st->sess->ng, st->id, st->held);
    st->held = 0;
    http2_stream_body_wait(st); /* the client may send again: its time runs anew */
    http2_want_flush(st->sess);
}

static int too_big(const http_conn *hc)
{
    uint64_t max = hc->srv->client_max_body_size;
    return max && hc->req.body_bytes > max;
}

/* Body bytes for the stream's upstream, or dropped without one. */
static void body_take(http2_stream *st, const char *data, size_t len)
{
    http_conn *hc = &st->hc;
    if (!hc->up) { /* no handler reads it: consumed at once */
        nghttp2_session_consume(st->sess->ng, st->id, len);
        return;
    }
    http_proxy_body(hc, data, len);
    st->held += len;
    if (!hc->up || !hc->up->client_paused)
        http2_stream_consume(hc); /* else once the upstream's output drains */
}

void http2_stream_body(http2_stream *st, const uint8_t *data, size_t len)
{
    http_conn *hc = &st->hc;
    hc->req.body_bytes += len;
    if (too_big(hc) && !st->dispatched && !st->waiting) {
        st->dispatched = 1;
        hc->phase = HTTP_PH_BODY;
        http_send_error(hc, 413, 0); /* its upstream, if any, is abandoned */
    }
    http2_stream_body_wait(st);
    if (st->keep_early && !too_big(hc) &&
        http_buf_append(&st->early, &st->early_len, &st->early_cap, (const char *)data, len) == 0)
        return; /* not consumed: the stream's window bounds it */
    body_take(st, (const char *)data, len);
}

int http2_stream_late_begin(http_conn *hc)
{
    http2_stream *st = hc->h2;
    st->keep_early = 0;
    if (too_big(hc)) {
        http2_stream_body_free(st);
        http_send_error(hc, 413, 0);
        return 1;
    }
    http_proxy_begin(hc);
    if (st->early_len)
        body_take(st, st->early, st->early_len);
    free(st->early);
    st->early = NULL;
    st->early_len = st->early_cap = 0;
    if (st->body_end && hc->up)
        http_proxy_body_end(hc);
    else if (hc->up)
        hc->phase = HTTP_PH_BODY; /* dispatched at END_STREAM, as HTTP/1.1's */
    return 0;
}

void http2_stream_body_end(http2_stream *st)
{
    if (st->body_end)
        return;
    st->body_end = 1;
    http_api->timer_cancel(http_W.w, &st->body_timer);
    if (st->hc.up)
        http_proxy_body_end(&st->hc);
}

/* The client sent nothing for client_body_timeout (an upstream that does
 * not take the body is no fault of the client's: its time runs anew): the
 * stream is reset, its upstream request abandoned; the connection stays. */
static void body_timer_fired(zerg_timer *t)
{
    http2_stream *st = t->data;
    http_conn *hc = &st->hc;
    if (st->body_end || st->closed || hc->closing)
        return;
    if ((hc->up && hc->up->client_paused) || st->keep_early) {
        http2_stream_body_wait(st); /* held back by us, not by the client */
        return;
    }
    http_W.timeouts++;
    if (hc->up)
        http_proxy_abandon(hc);
    st->dispatched = 1;
    nghttp2_submit_rst_stream(st->sess->ng, NGHTTP2_FLAG_NONE, st->id, NGHTTP2_CANCEL);
    http2_want_flush(st->sess);
}

/* ---- the response body's bound ---------------------------------------------- */

/* A stream queues at most the connection's output high mark of response
 * body (as an HTTP/1.1 connection does), the connection's streams together
 * HTTP2_CONN_BODY_HIGHS times that; an upstream reads again once its
 * stream's DATA took both below half. */
#define HTTP2_CONN_BODY_HIGHS 8

int http2_stream_full(http_conn *hc)
{
    http2_stream *st = hc->h2;
    size_t high = http_out_high(hc->c);
    if (st->sess->body_queued > HTTP2_CONN_BODY_HIGHS * high) {
        st->sess->ups_held = 1; /* any stream's DATA may free it */
        return 1;
    }
    return st->queued > high;
}

static int conn_low(const http2_session *s, size_t high)
{
    return s->body_queued <= HTTP2_CONN_BODY_HIGHS * high / 2;
}

static int stream_low(const http2_stream *st)
{
    size_t high = http_out_high(st->hc.c);
    return st->queued <= high / 2 && conn_low(st->sess, high);
}

static void wake_timer_fired(zerg_timer *t)
{
    http2_stream *st = t->data;
    if (st->hc.up && !st->closed)
        http_proxy_client_drained(&st->hc);
}

static void stream_wake(http2_stream *st)
{
    if (!st->hc.up || !st->hc.up->up_paused || st->closed || !stream_low(st))
        return;
    st->wake_timer.fn = wake_timer_fired;
    st->wake_timer.data = st;
    http_api->timer_set(http_W.w, &st->wake_timer, 0);
}

/* Called from nghttp2's send callback: upstreams resume at the next loop
 * turn, not inside it; all of them when the connection's bound held some. */
void http2_stream_sent(http2_stream *st)
{
    http2_session *s = st->sess;
    if (s->ups_held && conn_low(s, http_out_high(st->hc.c))) {
        s->ups_held = 0;
        for (http2_stream *x = s->streams; x; x = x->next)
            stream_wake(x);
        return;
    }
    stream_wake(st);
}

int http2_waits_upstream(http2_session *s)
{
    int waits = 0;
    if (http_api->conn_out_pending(s->hc->c))
        return 0;
    for (http2_stream *st = s->streams; st; st = st->next) {
        if (st->queued)
            return 0;
        waits |= st->hc.up != NULL;
    }
    return waits;
}

void http2_stream_body_free(http2_stream *st)
{
    http_api->timer_cancel(http_W.w, &st->body_timer);
    http_api->timer_cancel(http_W.w, &st->wake_timer);
    size_t unconsumed = st->held + st->early_len;
    if (unconsumed) /* the connection's window gets them back */
        nghttp2_session_consume(st->sess->ng, st->id, unconsumed);
    st->held = 0;
    free(st->early);
    st->early = NULL;
    st->early_len = st->early_cap = 0;
}
