/* modules/http/http2.h - HTTP/2 on nghttp2: the http2: settings of a
 * server block (http2_conf.c), a connection's session (http2_session.c)
 * and its streams, each answered by the HTTP/1.1 handlers through the
 * response layer (http2_stream.c), their request bodies (http2_body.c). */
#ifndef ZERG_HTTP2_H
#define ZERG_HTTP2_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include <nghttp2/nghttp2.h>

#include "http.h"

typedef struct http2_conf {
    int64_t max_concurrent_streams;
    uint64_t initial_window_size;
    uint64_t max_header_list_size;
    uint64_t idle_timeout;
} http2_conf;

extern const zerg_directive http2_server_directives[];
/* The settings of a block without http2: (h2 negotiated by ALPN). */
const http2_conf *http2_conf_of(const http_srv *s);

/* A body piece queued on a stream, framed as the peer's window allows. */
typedef struct http2_piece {
    struct http2_piece *next;
    const uint8_t *p; /* the bytes not framed yet */
    size_t len;
    size_t room;   /* a copy: bytes free after p + len (0 for borrowed memory) */
    unsigned refs; /* frames queued on the connection that point into it */
    uint8_t owned; /* a copy, freed with the piece */
    zerg_done_fn done;
    void *arg;
} http2_piece;

typedef struct http2_session http2_session;

typedef struct http2_stream {
    http_conn hc; /* the request as the handlers see it (hc.h2 points back) */
    http2_session *sess;
    struct http2_stream *next, *prev; /* the session's streams */
    int32_t id;
    uint32_t header_bytes;
    http2_piece *head, *tail;
    uint64_t queued;    /* body bytes not framed yet */
    uint64_t wait_ms;   /* since when they wait (the last DATA frame, or the first byte) */
    uint8_t dispatched; /* the request went to a handler */
    uint8_t submitted;  /* the response head is queued */
    uint8_t has_body;   /* ... with a data provider */
    uint8_t done;       /* the handler finished: EOF after the queue */
    uint8_t deferred;   /* the data provider waits for bytes */
    uint8_t closed;     /* nghttp2 closed it; it waits for its handler */
    /* its request body (http2_body.c) */
    uint8_t headed;     /* the request head was taken (HEADERS) */
    uint8_t body_end;   /* END_STREAM came */
    uint8_t waiting;    /* limit_req delays it: its timer dispatches it */
    uint8_t keep_early; /* ...to proxy_pass: the body meanwhile is kept */
    char *early;        /* that body (at most the stream's window) */
    uint32_t early_len, early_cap;
    uint64_t held;         /* body bytes given to proxy_pass, not consumed yet */
    zerg_timer body_timer; /* client_body_timeout while the client sends */
    zerg_timer wake_timer; /* its upstream reads again (after a DATA frame) */
} http2_stream;

struct http2_session {
    nghttp2_session *ng;
    http_conn *hc; /* the connection's own */
    const http2_conf *conf;
    const char *why; /* what ended the session, for the GOAWAY's log line */
    http2_stream *streams;
    zerg_timer flush_timer; /* output of asynchronous answers, next loop turn */
    zerg_timer drain_timer; /* the drain: a pause, the notice, the final GOAWAY */
    zerg_timer stall_timer; /* send_timeout of streams that wait on the client */
    uint8_t in_recv;
    uint8_t flush_armed;
    uint8_t paused;
    uint8_t draining;
    uint8_t gone;     /* being freed: no more output */
    uint8_t ups_held; /* an upstream waits for body_queued to go down */
    uint8_t stall_armed;
    uint64_t body_queued; /* the streams' queued response bodies together */
    uint32_t empty_data;  /* empty DATA frames that did not end a stream */
    uint32_t answered;    /* PING and SETTINGS frames in answered_sec */
    uint64_t answered_sec;
    uint8_t drain_busy;    /* a stream began since the drain's last tick */
    uint32_t drain_waited; /* ms the drain waited for a pause */
    http2_stream *in_head; /* the stream whose header block is arriving */
};

/* http2_session.c */
/* The client preface (24 bytes) of h2c with prior knowledge. */
#define HTTP2_PREFACE     "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
#define HTTP2_PREFACE_LEN 24
int http2_session_start(http_conn *hc);
size_t http2_on_data(http_conn *hc, const uint8_t *data, size_t len);
void http2_on_drain(http_conn *hc);
void http2_on_timeout(http_conn *hc);
void http2_on_eof(http_conn *hc);
void http2_session_free(http_conn *hc);
void http2_drain(http_conn *hc);
/* hc speaks HTTP/2 and has streams open (the connections' gauge). */
static inline int http2_busy(const http_conn *hc)
{
    return hc->h2s && hc->h2s->streams;
}
/* Output waits: taken at the end of on_data, or at the next loop turn. */
void http2_want_flush(http2_session *s);

/* http2_stream.c */
http2_stream *http2_stream_new(http2_session *s, int32_t id);
int http2_stream_header(http2_stream *st, const uint8_t *name, size_t nlen, const uint8_t *value,
                        size_t vlen);
/* The request head is complete (HEADERS; end: END_STREAM with it). */
void http2_stream_head(http2_stream *st, int end);
void http2_stream_request(http2_stream *st);
void http2_stream_closed(http2_stream *st);
void http2_stream_free(http2_stream *st);
extern const nghttp2_data_source_read_callback http2_data_read;
int http2_send_data(nghttp2_session *ng, nghttp2_frame *frame, const uint8_t *framehd,
                    size_t length, nghttp2_data_source *source, void *user_data);
/* the response layer's HTTP/2 side */
int http2_write_head(http_conn *hc, int status, const char *const *blocks, const size_t *lens,
                     size_t nblocks, int64_t clen);
int http2_body_write(http_conn *hc, const void *p, size_t len, int copy, zerg_done_fn done,
                     void *arg);
void http2_stream_done(http_conn *hc);
void http2_stream_abort(http_conn *hc);
/* An asynchronous step (a file open) of a reset stream came back. */
void http2_stream_unbusy(http_conn *hc);

/* http2_body.c: a stream's request body, streamed to proxy_pass under
 * flow control (consumed only once written upstream), client_body_timeout,
 * and the bound on its queued response body. */
void http2_stream_body(http2_stream *st, const uint8_t *data, size_t len);
/* A stream limit_req delayed goes to its upstream now, with the body that
 * came meanwhile; 1 when it was answered instead (413). */
int http2_stream_late_begin(http_conn *hc);
/* A body follows the head: client_body_timeout runs. */
void http2_stream_body_wait(http2_stream *st);
/* END_STREAM: the body is complete. */
void http2_stream_body_end(http2_stream *st);
/* The body bytes held for the upstream are written: the window reopens. */
void http2_stream_consume(http_conn *hc);
/* The stream's queued response body is above its bound (its upstream
 * pauses), and its DATA went out (its upstream may read again). */
int http2_stream_full(http_conn *hc);
void http2_stream_sent(http2_stream *st);
/* Nothing waits to be sent, and a stream waits for its upstream's answer:
 * send_timeout is not the client's fault then. */
int http2_waits_upstream(http2_session *s);
/* What a stream's body holds goes (its end). */
void http2_stream_body_free(http2_stream *st);

/* http2_mem.c: nghttp2's allocator and the streams' and pieces' blocks,
 * from free lists kept while a session (http2_mem_hold) lives. */
extern nghttp2_mem http2_mem;
void *http2_mem_alloc(size_t size);
void *http2_mem_calloc(size_t n, size_t size);
void *http2_mem_realloc(void *p, size_t size);
void http2_mem_free(void *p);
void http2_mem_hold(void);
void http2_mem_release(void);

#endif
