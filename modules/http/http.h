/* modules/http/http.h - the http module's shared types and the functions
 * every feature calls: a server block and its locations, a connection and
 * its request, the worker's state, configuration helpers, parsing and
 * answering. Each feature declares the rest in its own header
 * (http_static.h, http_proxy.h, http_access.h, http_log.h, ...). */
#ifndef ZERG_HTTP_H
#define ZERG_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <zerg/module.h>

#include "http_util.h"

/* ---- configuration (http_conf.c) ----------------------------------------- */

enum http_loc_kind {
    HTTP_LOC_NONE = 0,
    HTTP_LOC_STATIC,
    HTTP_LOC_RETURN,
    HTTP_LOC_STATUS,
    HTTP_LOC_PROXY,
};

typedef struct http_header_kv {
    char *name;
    char *value;
} http_header_kv;

typedef struct http_header_list {
    http_header_kv *items;
    size_t n;
} http_header_list;

typedef struct http_return {
    int64_t status;
    char *body;
    http_header_list headers;
    char *location;
} http_return;

/* An allow/deny entry: family 0 is "all", else the first bits of addr. */
typedef struct http_cidr {
    uint8_t family; /* AF_INET, AF_INET6 or 0 */
    uint8_t bits;
    uint8_t addr[16];
} http_cidr;

typedef struct http_cidr_list {
    http_cidr *items;
    size_t n;
} http_cidr_list;

/* A string with $variables, split at load (http_tmpl.c) and expanded per
 * request: return's location (http_redirect.c) and access_log formats
 * (http_log.c), each offering its own set. */
enum http_var {
    HTTP_VAR_TEXT = 0,
    HTTP_VAR_SCHEME,
    HTTP_VAR_HOST,
    HTTP_VAR_REQUEST_URI,
    HTTP_VAR_URI,
    HTTP_VAR_REMOTE_ADDR,
    HTTP_VAR_REMOTE_USER,
    HTTP_VAR_TIME_LOCAL,
    HTTP_VAR_TIME_ISO8601,
    HTTP_VAR_MSEC,
    HTTP_VAR_REQUEST,
    HTTP_VAR_REQUEST_METHOD,
    HTTP_VAR_SERVER_PROTOCOL,
    HTTP_VAR_STATUS,
    HTTP_VAR_BODY_BYTES_SENT,
    HTTP_VAR_HTTP_REFERER,
    HTTP_VAR_HTTP_USER_AGENT,
    HTTP_VAR_REQUEST_TIME,
    HTTP_VAR_UPSTREAM_ADDR,
    HTTP_VAR_UPSTREAM_STATUS,
    HTTP_VAR_UPSTREAM_RESPONSE_TIME,
    HTTP_VAR_PROXY_HOST,
    HTTP_VAR_PROXY_ADD_X_FORWARDED_FOR,
    HTTP_VAR_SSL_PROTOCOL, /* the connection's TLS facts (api->conn_tls) */
    HTTP_VAR_SSL_CIPHER,
    HTTP_VAR_SSL_SERVER_NAME,
    HTTP_VAR_SSL_SESSION_REUSED,
    HTTP_VAR_SSL_ALPN_PROTOCOL,
    HTTP_VAR_SSL_CLIENT_S_DN,
    HTTP_VAR_SSL_CLIENT_VERIFY,
};

enum http_tmpl_use {
    HTTP_TMPL_REDIRECT = 1, /* return's location */
    HTTP_TMPL_LOG = 2,      /* access_log format */
    HTTP_TMPL_PROXY = 4,    /* proxy_set_header values */
};

typedef struct http_tmpl_part {
    int var; /* enum http_var */
    const char *text;
    size_t len;
} http_tmpl_part;

typedef struct http_tmpl {
    http_tmpl_part *parts;
    size_t n; /* 0: no variables */
    size_t text_len;
} http_tmpl;

/* proxy_pass's (http_proxy.h) */
typedef struct http_upstream http_upstream;
typedef struct http_proxy_pass http_proxy_pass;
typedef struct http_proxy_header http_proxy_header;

typedef struct http_location {
    char *path; /* as configured, "=/x" for exact */
    const char *match;
    size_t match_len;
    int exact;
    int kind;
    char *root;
    char *alias;    /* as configured; also the root (the files live there) */
    char *fallback; /* normalised: the file for a 404 (an SPA's index) */
    size_t fallback_len;
    const struct http_location *fallback_loc;
    zerg_str_list index;
    int autoindex;
    int gzip_static; /* name.gz for clients that accept gzip */
    int status;
    http_return *ret;
    http_header_list add_header; /* added to its 2xx/3xx answers (nginx's add_header) */
    int expires;                 /* HTTP_EXPIRES_*: Expires and Cache-Control (nginx's) */
    uint64_t expires_sec;        /* HTTP_EXPIRES_AFTER: seconds from now */
    http_cidr_list allow, deny;  /* client addresses (http_access.c) */
    http_proxy_pass *proxy;      /* proxy_pass */
    uint64_t proxy_connect_timeout;
    uint64_t proxy_read_timeout;
    uint64_t proxy_buffer_size; /* the upstream's response head at most */
    int64_t proxy_keepalive;    /* idle upstream connections kept per worker */
    uint64_t proxy_keepalive_timeout;
    int64_t proxy_keepalive_requests; /* a kept connection serves at most this many */
    uint64_t proxy_keepalive_time;    /* ... and is kept no longer than this (ms) */
    http_proxy_header *proxy_set;
    size_t nproxy_set;
    /* proxy_tls: an https proxy_pass's TLS keys, for conf_done */
    const zerg_conf_node *proxy_tls;
    struct http_limit_loc *limit; /* limit_req, limit_conn (http_limit.h) */
    /* derived in conf_done: add_header as "Name: v\r\n..." lines */
    char *add_head;
    size_t add_head_len;
    /* derived in conf_done: the fixed part of a `return` answer after the
     * Date/Connection lines: "Name: v\r\n...Content-Length: N\r\n\r\n" */
    char *ret_head;
    size_t ret_head_len;
    size_t ret_body_len;
    http_tmpl ret_location; /* return's location when it has variables */
    int root_fd;            /* per worker (server_init) */
} http_location;

enum http_expires {
    HTTP_EXPIRES_OFF = 0,
    HTTP_EXPIRES_AFTER, /* now + expires_sec, max-age */
    HTTP_EXPIRES_EPOCH, /* in the past: no-cache */
    HTTP_EXPIRES_MAX,   /* far future */
};

enum http_log_format {
    HTTP_LOG_OFF = 0,
    HTTP_LOG_COMBINED,
    HTTP_LOG_COMMON,
    HTTP_LOG_CUSTOM, /* a format with $variables */
};

typedef struct http_access_log_conf {
    char *path;
    char *format_name;
    int format;
    struct http_tmpl tmpl; /* HTTP_LOG_CUSTOM */
    uint64_t buffer;
    uint64_t flush;
} http_access_log_conf;

struct http_log;

/* error_page: the answer of a status, a file under a root location */
typedef struct http_error_page {
    int status;
    char *uri; /* normalised */
    size_t len;
    const http_location *loc; /* derived in conf_done */
} http_error_page;

#define HTTP_BUCKETS_MAX 32

/* http_metrics.h: a server block's series (handles into the worker's row). */
typedef struct http_srv_metrics {
    int64_t by_class[6]; /* 1xx..5xx at [1..5] */
    int64_t request_hist, upstream_hist;
    uint64_t bounds[HTTP_BUCKETS_MAX]; /* ms */
    size_t nbounds;                    /* 0: the default buckets */
    int off;                           /* metrics: false (for benchmarks) */
} http_srv_metrics;

typedef struct http_srv {
    zerg_str_list server_name;
    char *server_header; /* NULL: no Server line */
    http_access_log_conf access_log;
    uint64_t keepalive_timeout;
    int64_t keepalive_requests;
    uint64_t client_header_timeout;
    uint64_t client_body_timeout;
    uint64_t send_timeout;
    uint64_t client_max_body_size;
    uint64_t large_client_header_buffers;
    uint64_t max_uri_length;
    int64_t max_headers;
    uint64_t file_buffer;
    uint64_t file_mmap_max;
    int sendfile;          /* file bodies by api->write_file (splice)... */
    uint64_t sendfile_min; /* ...from this size on */
    uint64_t open_file_cache_valid;
    char *default_type;
    int etag;
    http_mime *mime;
    size_t nmime;
    http_location *locs;
    size_t nlocs;
    http_error_page *error_pages;
    size_t nerror_pages;
    http_upstream *upstreams;
    size_t nupstreams;
    struct http_limit_srv *limit; /* limit_zones, and whether a location limits */
    struct http2_conf *http2;     /* http2: h2c by prior knowledge (NULL: off), h2 settings */
    /* derived */
    char *server_line; /* "Server: x\r\n" or "" */
    size_t server_line_len;
    http_limits limits;
    int has_proxy; /* a location has proxy_pass: requests start it at their head */
    /* per worker */
    struct http_log *log;
    http_srv_metrics metrics;
} http_srv;

/* The server block's directives, composed at load from each feature's rows
 * (http_conf_compose); the locations' likewise. */
extern zerg_directive http_directives[];
int http_conf_compose(void);
int http_conf_init(zerg_conf_ctx *cx, void *conf);
int http_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, void *conf);
/* Exact match first, then the longest prefix; NULL when none. */
const http_location *http_find_location(const http_srv *s, const char *path, size_t len);

#define HTTP_CONTAINER(ptr, type, member) ((type *)(void *)((char *)(ptr)-offsetof(type, member)))
/* One item of a mapping of name: value: its index i in arr, its key and
 * value (NULL when not scalars; v for messages). 0, or -1 after reporting
 * an error. */
typedef int (*http_map_item_fn)(zerg_conf_ctx *cx, void *arr, size_t i, const char *key,
                                const zerg_conf_node *v, const char *value, void *arg);
/* The array (*n entries of elem bytes) for a mapping node's items, each
 * filled by item(..., arg). NULL after reporting the error: not a mapping
 * (what says what was expected), out of memory, or an item refused. */
void *http_map_array(zerg_conf_ctx *cx, const zerg_conf_node *node, size_t elem, size_t *n,
                     const char *what, http_map_item_fn item, void *arg);
/* off, false, no or empty. */
int http_conf_is_off(const char *v);
/* The normalised copy of uri when it names a file by path (/x/y.html: no
 * query, no final slash); NULL when it does not. */
char *http_file_path(zerg_conf_ctx *cx, const char *uri, size_t *len);

/* ---- per connection ------------------------------------------------------ */

#include "llhttp.h"

#define HTTP_MAX_HDRS 128

enum http_phase {
    HTTP_PH_IDLE = 0, /* between requests */
    HTTP_PH_HEAD,     /* reading the request head */
    HTTP_PH_BODY,     /* reading the body */
    HTTP_PH_BUSY,     /* answering asynchronously (file) */
};

/* Header slots the module looks at (index into http_req.hv). */
enum http_hdr_id {
    HTTP_H_HOST = 0,
    HTTP_H_CONNECTION,
    HTTP_H_CL,
    HTTP_H_TE,
    HTTP_H_EXPECT,
    HTTP_H_INM,
    HTTP_H_IMS,
    HTTP_H_RANGE,
    HTTP_H_IF_RANGE,
    HTTP_H_REFERER,
    HTTP_H_UA,
    HTTP_H_ACCEPT_ENCODING,
    HTTP_H_COUNT
};

typedef struct http_span {
    uint32_t off, len;
} http_span;

typedef struct http_req {
    /* zeroed at each message begin: */
    uint8_t hcount[HTTP_H_COUNT];
    http_span url;
    uint32_t nheaders;
    http_span cur_name; /* the field being read */
    uint32_t cur_val_off;
    uint8_t in_value;
    uint8_t method;
    uint8_t major, minor;
    uint8_t keepalive;
    uint8_t head;
    uint8_t upgrade;
    int te_chunked;
    uint64_t body_bytes;
    int status;                      /* answered with */
    uint64_t sent;                   /* body bytes sent (access log) */
    const struct http_location *loc; /* the location answering, once known */
    int error_status;                /* answering with the error_page of this status */
    uint8_t fell_back;               /* answering with the location's fallback */
    uint8_t gzip_ok;                 /* gzip_static here and the client accepts gzip */
    uint8_t gzipped;                 /* the body is a name.gz */
    uint64_t start_ms;               /* its first byte was parsed ($request_time) */
    const char *up_addr;             /* proxy_pass: the (last) server asked ($upstream_addr) */
    int up_status;                   /* its answer's status, or 502/504 when it failed */
    uint64_t up_start_ms, up_ms;     /* first connect to the end of the answer */
    /* not zeroed (valid where hcount says so): */
    http_span hv[HTTP_H_COUNT]; /* values of known headers */
} http_req;

struct http_file;
struct http_up;

/* One header field of the request: name and value in hbuf. */
typedef struct http_field {
    http_span name, value;
} http_field;

/* What a request needs only while it is read and answered: its parser and
 * the copies of its head. From a per-worker free list (http_rq.c), taken at
 * the request's first byte, given back when the connection is idle again. */
typedef struct http_rq {
    llhttp_t parser;
    char *hbuf; /* copies of URL and header fields */
    uint32_t hlen, hcap;
    http_field *fields; /* every header field (when keep_fields: proxy_pass, limits) */
    uint32_t nfields, fields_cap;
    struct http_rq *next; /* the free list */
} http_rq;

typedef struct http_conn {
    zerg_conn *c;
    http_srv *srv;       /* the request's server block (Host) */
    http_srv *dsrv;      /* the default one, for what comes before Host */
    void *const *vhosts; /* the blocks sharing the listen address */
    size_t nvhosts;
    struct http_conn *next, *prev; /* the worker's list */
    http_scan scan;
    http_req req;
    struct http_rq *rq; /* while a request is read or answered (http_rq.c) */
    struct http_file *file;
    struct http_up *up;  /* the upstream answering this request (proxy_pass) */
    int proxy_status;    /* the upstream failed before the request was complete */
    uint8_t keep_fields; /* keep every field: proxy_pass or a limit key names one */
    uint32_t nreq;
    uint8_t phase;
    uint8_t closing;
    uint8_t eof;
    uint8_t paused;
    uint8_t out_wait; /* paused: the output is above its high mark */
    uint8_t in_process;
    uint8_t want_send_timeout;
    uint8_t head_timer; /* client_header_timeout armed for this head */
    int err_status;     /* set by a parser callback that refuses */
    /* the request's limit_req / limit_conn state, when it has one */
    struct http_limit_hold *limit;
    struct http2_stream *h2;   /* an HTTP/2 stream's request: its answer goes there */
    struct http2_session *h2s; /* the connection speaks HTTP/2 (http2_session.c) */
} http_conn;

/* ---- per worker (http_module.c) ------------------------------------------ */

typedef struct http_worker {
    zerg_worker *w;
    http_conn *conns;
    int64_t date_sec;
    char date_line[64]; /* "Date: ...\r\n" */
    size_t date_line_len;
    int64_t log_sec;
    char log_time[40]; /* "24/Nov/2026:10:17:10 +0000" */
    char log_iso[40];  /* "2026-11-24T10:17:10+00:00" */
    int draining;
    uint64_t body_bytes;
    uint64_t parse_errors;
    uint64_t timeouts;
    uint64_t up_tries;        /* proxy_pass: requests sent upstream (new or kept connection) */
    uint64_t up_failures;     /* upstream failures (connect, timeout, bad or cut answer) */
    uint64_t up_retries;      /* requests sent again after one */
    struct http_up *idle_ups; /* parked upstream connections, newest first */
    uint64_t h2_conns;        /* connections that spoke HTTP/2 */
    uint64_t h2_streams;      /* HTTP/2 streams opened by clients */
    uint64_t h2_goaways;      /* HTTP/2 connections ended for an error (GOAWAY) */
    uint64_t *mrow;           /* this worker's row of the shared metrics (http_metrics.c) */
} http_worker;

extern http_worker http_W;
extern const zerg_api *http_api;

/* http_module.c: the client connection ends, gracefully (what is queued is
 * sent first) or abortively (reset); either way its input is dropped. */
void http_conn_close(http_conn *hc);
/* c's output high-water mark: no more work is started for c above it. */
size_t http_out_high(zerg_conn *c);
void http_conn_abort(http_conn *hc);

/* http_vhost.c */
int http_server_names_check(zerg_conf_ctx *cx, const zerg_conf_node *section, http_srv *s);
/* hc->srv := the block among hc->vhosts whose server_name matches best;
 * -1 with hc->err_status 421 when the connection's TLS settings are not
 * that block's. */
int http_select_server(http_conn *hc);
/* The request's host as nginx's $host: the absolute-form target's, else
 * Host's, lowercased, without port or final dot; cap when it does not fit. */
size_t http_request_host(const http_conn *hc, char *buf, size_t cap);

/* http_parse.c: a field of the request kept (hc->rq->fields; spans in its
 * hbuf), for proxy_pass and limit keys that name a header (-1: no memory,
 * hc->err_status 500). */
int http_field_add(http_conn *hc, http_span name, http_span value);

/* http_rq.c: hc->rq from the free list (-1: out of memory), its parser
 * ready for a request; back to the list (no-op without one); all freed
 * (worker exit). */
int http_rq_get(http_conn *hc);
void http_rq_put(http_conn *hc);
void http_rq_free_all(void);

/* http_parse.c */
void http_parser_init(http_conn *hc, llhttp_t *p);
/* Runs bytes through scanner and parser, answering complete requests. */
size_t http_process(http_conn *hc, const uint8_t *data, size_t len);
/* on_drain: the next pipelined request may start if output held it back. */
void http_output_drained(http_conn *hc);
const char *http_hbuf(const http_conn *hc, http_span s);
/* A field of the request (in hbuf) kept for proxy_pass: 0, or -1 (500). */
int http_field_add(http_conn *hc, http_span name, http_span value);

/* http_response.c */
void http_date_refresh(void);
/* The status line, Server, Date and Connection lines, then extra (already
 * formatted header lines), then Content-Length when clen >= 0, then CRLF.
 * Returns 0 or -1. */
int http_write_head(http_conn *hc, int status, const char *extra, size_t extra_len, int64_t clen);
/* A complete answer for an error status: the server's error_page for it
 * when there is one and the connection stays open, else a small built-in
 * HTML body; close forces Connection: close. Either way the request is
 * answered (or goes on asynchronously, like a static file). */
void http_send_error(http_conn *hc, int status, int close);
/* path: the request's normalised path ($uri). */
void http_send_return(http_conn *hc, const http_location *loc, const char *path, size_t plen);
/* http_tmpl.c: t from s with the variables of use (enum http_tmpl_use), or
 * -1 after conf_error at n naming what (an unknown variable). */
int http_tmpl_parse(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *s, http_tmpl *t,
                    int use, const char *what);
/* $host when the request names none: the first plain server_name, else the
 * address the client reached. */
size_t http_default_host(http_conn *hc, char *buf, size_t cap);
/* nginx's $request_uri: the target from its path on, without a fragment. */
void http_request_uri(http_conn *hc, const char **p, size_t *len);
/* $scheme: "https" on a TLS connection (api->conn_tls), else "http". */
const char *http_scheme(http_conn *hc);
/* http_conf.c: a mapping of header name to value (key: the directive). */
int http_parse_header_list(zerg_conf_ctx *cx, const zerg_conf_node *node, http_header_list *list,
                           const char *key);
/* A header name (token) and value (no control bytes) from the config. */
int http_check_header(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *name,
                      const char *value);
void http_send_status(http_conn *hc);
void http_metrics(zerg_worker *w, zerg_text *out);
/* Whether this answer keeps the connection (and marks hc->closing if not). */
int http_keep(http_conn *hc);
/* The request is answered: log, count, then continue with the next. */
void http_request_done(http_conn *hc);
void http_dispatch(http_conn *hc);

/* http_response.c: the location for the request's target, with the
 * normalised path in a per-worker buffer (*path, *plen); NULL with *status
 * (400, 403, 404, 500) when there is none. */
const http_location *http_route(http_conn *hc, const char **path, size_t *plen, int *status);

#endif
