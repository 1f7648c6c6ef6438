/* modules/http/http.h - the http module's internal types and the functions its
 * files share: configuration, per-connection state, per-worker state, and the
 * pure helpers (http_util.c) that the unit tests exercise without sockets. */
#ifndef ZERG_HTTP_H
#define ZERG_HTTP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <time.h>

#include <zerg/module.h>

/* ---- pure helpers (http_util.c) ---------------------------------------- */

/* Incremental validator of a request's head (request line + header fields),
 * run over the raw bytes before llhttp sees them: bare CR/LF, obs-fold, NUL
 * and control bytes, and the size limits. */
typedef struct http_scan {
    uint32_t line_len; /* bytes of the current line so far */
    uint32_t total;    /* bytes of the head so far */
    uint32_t nlines;   /* complete lines (request line included) */
    uint8_t cr;        /* last byte was CR */
    uint8_t done;      /* the empty line ending the head was seen */
} http_scan;

typedef struct http_limits {
    size_t max_line;    /* request line: 414 above */
    size_t max_head;    /* whole head: 431 above */
    size_t max_headers; /* header lines: 431 above */
} http_limits;

/* Scans p[0..n): returns 0 (more to come, or s->done with *used bytes of
 * head in this chunk) or the HTTP status to refuse with (400/414/431). */
int http_scan_head(http_scan *s, const uint8_t *p, size_t n, size_t *used, const http_limits *l);

/* Percent-decodes and normalises an origin-form path (query removed) into
 * out (cap >= len + 2). Returns 0, or 400 (bad encoding, %00, not starting
 * with '/'), 404 (encoded '/'), 403 ('..' above the root). */
int http_path_normalize(const char *in, size_t len, char *out, size_t cap, size_t *outlen);

/* Where the path of a request target starts: 0 for origin-form, after the
 * authority for absolute-form (len when it has no path). */
size_t http_target_path_start(const char *url, size_t len);
/* The path part of a request target (absolute-form reduced to its path,
 * query and fragment cut). */
void http_target_path(const char *url, size_t len, const char **path, size_t *plen);

/* Case-insensitive ASCII compare of n bytes. */
int http_strncaseeq(const char *a, const char *b, size_t n);

/* "Sun, 06 Nov 1994 08:49:37 GMT" (29 bytes + NUL into out[30]). */
void http_fmt_date(time_t t, char out[30]);
/* IMF-fixdate, RFC 850 or asctime; -1 when invalid. */
time_t http_parse_date(const char *s, size_t n);

/* Single byte range against a representation of size bytes: 1 with
 * [*start, *end] (inclusive), 0 to ignore the header (invalid, several
 * ranges), -1 when unsatisfiable (416). */
int http_parse_range(const char *v, size_t n, uint64_t size, uint64_t *start, uint64_t *end);

/* If-None-Match list against an entity tag (weak comparison, "*" matches). */
int http_etag_match(const char *list, size_t n, const char *etag, size_t elen);
/* "\"<mtime hex>-<size hex>\"" like nginx; returns its length. */
size_t http_fmt_etag(char *out, size_t cap, time_t mtime, uint64_t size);

typedef struct http_mime {
    const char *ext;
    const char *type;
} http_mime;
/* The type for path's extension: the extra table first, then the built-in
 * one; NULL when none matches. */
const char *http_mime_lookup(const char *path, size_t len, const http_mime *extra, size_t nextra);

/* A Host field value: uri-host [ ":" port ] (RFC 9112 3.2), empty allowed. */
int http_host_valid(const char *v, size_t n);

/* Percent-encodes s[0..n) for a URL path (unreserved bytes and '/' kept)
 * into out (cap >= 3n + 1); returns the length. */
size_t http_url_encode(const char *s, size_t n, char *out, size_t cap);
/* An IPv4 or IPv6 socket address as text ("[...]" around IPv6 when
 * bracket_v6, as in a URL); 0 and nothing written when sa is neither. */
size_t http_addr_text(const struct sockaddr *sa, char *buf, size_t cap, int bracket_v6);
/* Whether an Accept-Encoding value lets gzip in (gzip or *, q not 0, and
 * no gzip;q=0). */
int http_accepts_gzip(const char *v, size_t n);

/* The reason phrase of a status code ("Unknown" when none). */
const char *http_reason(int status);
/* Whether an answer with status carries its location's add_header (nginx's
 * list: 200, 201, 204, 206, 301, 302, 303, 304, 307, 308). */
int http_adds_headers(int status);
/* A location's expires as "Expires: ...\r\nCache-Control: ...\r\n" for an
 * answer at unix time now; returns the length (0: off). out holds 96. */
size_t http_fmt_expires(int mode, uint64_t sec, int64_t now, char out[96]);

/* Transfer-Encoding value: 1 when exactly "chunked" (case, OWS tolerated),
 * 0 otherwise. */
int http_te_is_chunked(const char *v, size_t n);
/* Checks one Transfer-Encoding field value (a list of codings), with
 * *chunked telling whether "chunked" came already (updated): 0 when fine,
 * 400 when a coding follows chunked, 501 for an unknown coding or chunked
 * with parameters. Known codings other than chunked are accepted: request
 * bodies are framed by chunked and never decoded by this module. */
int http_te_check(const char *v, size_t n, int *chunked);

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

/* upstreams: a named group of servers a proxy_pass URL may name, kept by
 * the core (api->conf_upstream), and what its hash_key names
 * (http_proxy_balance.c) */
enum http_hash_var {
    HTTP_HASH_REMOTE_ADDR = 0,
    HTTP_HASH_REQUEST_URI,
    HTTP_HASH_URI,
    HTTP_HASH_HOST,
    HTTP_HASH_HEADER, /* $http_<name> */
};

typedef struct http_upstream {
    char *name;
    zerg_upstream *group;
    int hash_var;      /* enum http_hash_var, for balance: hash */
    char *hash_header; /* HTTP_HASH_HEADER: the field's name, lower case */
} http_upstream;

/* proxy_pass (http_proxy.c): where a location's requests go */
typedef struct http_proxy_pass {
    struct sockaddr_storage addr; /* when no group is named */
    socklen_t addr_len;
    http_upstream *group;
    const zerg_conf_node *node; /* for messages until conf_done */
    char *host;                 /* $proxy_host: "host" or "host:port" as written in the URL */
    size_t host_len;
    char *uri; /* the URI part replacing the location's prefix; NULL: none */
    size_t uri_len;
} http_proxy_pass;

/* proxy_set_header: a header for the upstream (an empty value drops it) */
typedef struct http_proxy_header {
    char *name;
    size_t name_len;
    http_tmpl value;
} http_proxy_header;

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
    /* derived */
    char *server_line; /* "Server: x\r\n" or "" */
    size_t server_line_len;
    http_limits limits;
    int configured;
    int has_proxy; /* a location has proxy_pass: requests start it at their head */
    /* per worker */
    struct http_log *log;
} http_srv;

extern const zerg_directive http_directives[];
int http_conf_init(zerg_conf_ctx *cx, void *conf);
int http_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, void *conf);
/* Exact match first, then the longest prefix; NULL when none. */
const http_location *http_find_location(const http_srv *s, const char *path, size_t len);

/* http_access.c: "ADDR", "ADDR/BITS" or "all" into out (-1: not one). */
int http_cidr_parse(const char *s, http_cidr *out);
/* Whether l lets the client at sa in: not denied, and allowed when l has an
 * allow list (sa NULL or not IP: only "all" matches it). */
int http_access_allows(const http_location *l, const struct sockaddr *sa);
int http_parse_cidr_list(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field);

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

typedef struct http_conn {
    llhttp_t parser;
    zerg_conn *c;
    http_srv *srv;       /* the request's server block (Host) */
    http_srv *dsrv;      /* the default one, for what comes before Host */
    void *const *vhosts; /* the blocks sharing the listen address */
    size_t nvhosts;
    struct http_conn *next, *prev; /* the worker's list */
    http_scan scan;
    http_req req;
    char *hbuf; /* copies of URL and header fields */
    uint32_t hlen, hcap;
    uint8_t *stash; /* bytes that came while busy */
    size_t stash_len, stash_cap;
    struct http_file *file;
    struct http_up *up; /* the upstream answering this request (proxy_pass) */
    http_field *fields; /* every header field of the request (for proxy_pass) */
    uint32_t nfields, fields_cap;
    int proxy_status;  /* the upstream failed before the request was complete */
    uint8_t any_proxy; /* a block of this address has proxy_pass: keep fields */
    uint32_t nreq;
    uint8_t phase;
    uint8_t closing;
    uint8_t eof;
    uint8_t paused;
    uint8_t in_process;
    uint8_t want_send_timeout;
    uint8_t head_timer; /* client_header_timeout armed for this head */
    int err_status;     /* set by a parser callback that refuses */
} http_conn;

/* ---- per worker (http_module.c) ------------------------------------------ */

typedef struct http_worker {
    zerg_worker *w;
    const zerg_api *api;
    http_conn *conns;
    int64_t date_sec;
    char date_line[64]; /* "Date: ...\r\n" */
    size_t date_line_len;
    int64_t log_sec;
    char log_time[40]; /* "24/Nov/2026:10:17:10 +0000" */
    char log_iso[40];  /* "2026-11-24T10:17:10+00:00" */
    int draining;
    uint64_t requests;
    uint64_t by_class[6]; /* 1xx..5xx at [1..5] */
    uint64_t body_bytes;
    uint64_t parse_errors;
    uint64_t timeouts;
    uint64_t up_tries;        /* proxy_pass: requests sent upstream (new or kept connection) */
    uint64_t up_failures;     /* upstream failures (connect, timeout, bad or cut answer) */
    uint64_t up_retries;      /* requests sent again after one */
    struct http_up *idle_ups; /* parked upstream connections, newest first */
} http_worker;

extern http_worker http_W;
extern const zerg_api *http_api;

/* http_vhost.c */
int http_server_names_check(zerg_conf_ctx *cx, const zerg_conf_node *section, http_srv *s);
/* hc->srv := the block among hc->vhosts whose server_name matches best. */
void http_select_server(http_conn *hc);
/* The request's host as nginx's $host: the absolute-form target's, else
 * Host's, lowercased, without port or final dot; cap when it does not fit. */
size_t http_request_host(const http_conn *hc, char *buf, size_t cap);

/* http_parse.c */
void http_parser_settings_init(void);
void http_proxy_settings_init(void);
void http_proxy_worker_exit(void);
void http_conn_reset_parser(http_conn *hc);
/* Runs bytes through scanner and parser, answering complete requests. */
void http_process(http_conn *hc, const uint8_t *data, size_t len);
const char *http_hbuf(const http_conn *hc, http_span s);

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
/* http_conf.c: a mapping of header name to value (key: the directive). */
int http_parse_header_list(zerg_conf_ctx *cx, const zerg_conf_node *node, http_header_list *list,
                           const char *key);
/* A header name (token) and value (no control bytes) from the config. */
int http_check_header(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *name,
                      const char *value);
/* A return whose location has variables. */
void http_send_redirect(http_conn *hc, const http_location *loc, const char *path, size_t plen);
void http_send_status(http_conn *hc);
void http_metrics(zerg_worker *w, zerg_text *out);
/* Whether this answer keeps the connection (and marks hc->closing if not). */
int http_keep(http_conn *hc);
/* The request is answered: log, count, then continue with the next. */
void http_request_done(http_conn *hc);
void http_dispatch(http_conn *hc);

/* http_static.c */
/* Returns 0 when answered synchronously, 1 when the answer goes on
 * asynchronously (http_request_done follows). */
int http_serve_static(http_conn *hc, const http_location *loc, const char *path, size_t plen);
void http_file_conn_closed(http_conn *hc);
/* Frees what the static handler keeps for reuse (worker exit). */
void http_static_worker_exit(void);

/* http_cache.c: the open file cache (see the file's header). */
struct stat;
typedef struct http_ofc http_ofc;
http_ofc *http_ofc_get(const http_location *loc, const char *key, size_t klen);
/* Caches fd (not taken) when its pages are all resident; NULL otherwise. */
http_ofc *http_ofc_put(const http_location *loc, const char *key, size_t klen, int fd,
                       const struct stat *st, const char *name, size_t nlen, uint64_t valid,
                       uint64_t max_size);
const struct stat *http_ofc_stat(const http_ofc *e);
const char *http_ofc_name(const http_ofc *e, size_t *nlen);
/* Queues len bytes from start of the cached file (zero-copy). */
int http_ofc_send(http_conn *hc, http_ofc *e, uint64_t start, uint64_t len);
void http_ofc_unref(http_ofc *e);
void http_ofc_clear(void);

/* http_autoindex.c: a listing of the open directory dfd (closed here) for
 * the request path; returns like http_serve_static. */
int http_autoindex(http_conn *hc, int dfd, const char *path, size_t plen);
int http_static_server_init(http_srv *s);

/* The upstream connection's ctx (the module's conn_ctx_size is that of an
 * http_conn; conn_conf NULL tells the two apart). */
typedef struct http_up {
    llhttp_t parser; /* the response */
    zerg_conn *c;
    http_conn *hc; /* the client; NULL once detached */
    const http_location *loc;
    char *head; /* the relayed header lines of the answer */
    uint32_t hlen, hcap;
    uint32_t line_start; /* of the field being read, in head */
    uint32_t name_end;
    uint8_t in_name;
    uint8_t connected;
    uint8_t dispatched;    /* the request is complete: the answer may flow */
    uint8_t head_sent;     /* the answer's head went to the client */
    uint8_t done;          /* the answer is complete */
    uint8_t rechunk;       /* chunked to the upstream's chunked body */
    uint8_t client_paused; /* the client's body waits for the upstream */
    uint8_t up_paused;     /* the answer waits for the client */
    uint8_t reused;        /* taken from the idle pool (proxy_keepalive) */
    uint8_t got_bytes;     /* the upstream answered something to this request */
    uint8_t idle;          /* in the pool, between requests */
    uint8_t spent;         /* it sent more than its answer: not reusable */
    uint8_t upgrade_req;   /* the request asks for a protocol switch */
    uint8_t tunnel;        /* switched (101): bytes flow as they are */
    uint8_t eof_in[2];     /* FIN seen in the tunnel: [0] upstream, [1] client */
    uint8_t counted;       /* counted active at its server (upstream_note) */
    int server;            /* in the location's upstream group, -1: none */
    int err_status;        /* refused by a parser callback */
    uint32_t requests;     /* sent on this connection, this one included */
    uint64_t opened_ms;    /* when it was connected */
    struct http_up *idle_next, *idle_prev;
    /* the group's servers this request tried */
    zerg_upstream_tried tried;
} http_up;

/* http_proxy.c: proxy_pass */
extern const zerg_module zerg_module_info;
int http_parse_proxy_pass(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field);
int http_parse_proxy_set_header(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field);
/* Defaults and checks of a proxy_pass location; sets *want_peer when its
 * headers need the client's address. */
int http_proxy_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, http_srv *s,
                         http_location *l, int *want_peer);
/* http_proxy_balance.c: the upstreams key, and choosing among a group's
 * servers through the core */
int http_parse_upstreams(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field);
/* The server of g for hc's request (-1: none left), added to *tried; path
 * is its normalised path ($uri). */
int http_upstream_pick(http_conn *hc, const http_upstream *g, const char *path, size_t plen,
                       zerg_upstream_tried *tried);
/* Its server answered (ok) or failed; a server up->counted opens or ends. */
void http_upstream_result(http_up *up, int ok);
void http_upstream_count(http_up *up, int on);
/* Servers of the group this request has not tried yet. */
int http_upstream_untried(const http_up *up);
/* The groups of a block start in this worker (server_init); all stop
 * (worker_drain); their per-server metrics (the metrics hook). */
void http_upstreams_start(zerg_worker *w, http_srv *s);
void http_upstreams_stop(zerg_worker *w);
void http_upstreams_metrics(zerg_text *out);
/* host:port (or [v6]:port; port 80 when absent) resolved now. */
int http_proxy_resolve(const char *auth, size_t len, struct sockaddr_storage *out,
                       socklen_t *outlen, const char **err);
/* At the end of a request head: a request for a proxy_pass location starts
 * its upstream now, so its body streams through as it comes. */
void http_proxy_begin(http_conn *hc);
/* Each piece of the request body, and its end. */
void http_proxy_body(http_conn *hc, const char *at, size_t len);
void http_proxy_body_end(http_conn *hc);
/* The request is complete: the upstream's answer goes on asynchronously. */
void http_proxy_dispatch(http_conn *hc);
/* The client connection ends, or its request is answered otherwise. */
void http_proxy_abandon(http_conn *hc);
/* The client's output drained (its upstream may read again). */
void http_proxy_client_drained(http_conn *hc);
/* http_proxy.c, for the tunnel: relays bytes received on from to `to`
 * (zero-copy where it can; as one chunk when chunked), and pauses the
 * sender while the receiver's output is over the bound. */
void http_relay(zerg_conn *from, zerg_conn *to, const char *at, size_t len, int chunked);
void http_up_bound(http_up *up);        /* upstream -> client */
void http_up_bound_client(http_up *up); /* client -> upstream */
/* The answer is complete (ok) or cut short; the upstream closed (when
 * close_it) and the request done. */
void http_up_finish(http_up *up, int ok, int close_it);

/* http_proxy_tunnel.c: a protocol switch (101, WebSocket) through a
 * proxy_pass location, after which bytes flow both ways as they are. */
/* The Upgrade field of a request that asks for a switch, else NULL. */
const http_field *http_proxy_upgrade_field(http_conn *hc);
/* After the 101: rest (bytes after its head) and what the client sent
 * meanwhile go through; from now on each side's bytes go to the other. */
void http_tunnel_start(http_up *up, const uint8_t *rest, size_t n);
/* Bytes from the upstream (from_client 0) or the client (1). */
void http_tunnel_relay(http_up *up, int from_client, const uint8_t *data, size_t len);
/* A FIN from one side: passed on as a shutdown; both: the end. */
void http_tunnel_eof(http_up *up, int from_client);

/* http_proxy_pool.c: idle upstream connections kept per worker for the
 * locations with proxy_keepalive. */
/* Keeps up (its answer complete, detached) for a later request: 1, or 0
 * when it may not be kept (then close it). */
int http_up_park(http_up *up);
/* The most recently parked connection of l, taken out of the pool. */
http_up *http_up_take(const http_location *l);
/* Takes up out of the pool (its on_close). */
void http_up_unpark(http_up *up);
/* Whether up is parked; an event on a parked connection closes it. */
int http_up_idle_event(http_up *up);
/* Closes every parked connection (drain). */
void http_up_close_idle(void);
/* Hooks for upstream connections (conn_conf NULL). */
int http_is_upstream(zerg_conn *c);
void http_up_on_connect(zerg_conn *c, int status);
size_t http_up_on_data(zerg_conn *c, const uint8_t *data, size_t len);
void http_up_on_eof(zerg_conn *c);
void http_up_on_drain(zerg_conn *c);
void http_up_on_timeout(zerg_conn *c);
void http_up_on_close(zerg_conn *c, int err);

/* http_response.c: the location for the request's target, with the
 * normalised path in a per-worker buffer (*path, *plen); NULL with *status
 * (400, 403, 404, 500) when there is none. */
const http_location *http_route(http_conn *hc, const char **path, size_t *plen, int *status);

/* http_log.c */
int http_log_open(http_srv *s);
void http_log_request(http_conn *hc);
void http_log_free_all(void);

#endif
