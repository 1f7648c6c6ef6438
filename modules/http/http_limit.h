/* modules/http/http_limit.h - limit_req and limit_conn (nginx's): zones of
 * keys whose state lives in shared memory, so that a limit holds across all
 * workers; a location's rules; the hooks a request passes through. */
#ifndef ZERG_HTTP_LIMIT_H
#define ZERG_HTTP_LIMIT_H

#include "http.h"

#define HTTP_LIMIT_RULES   4   /* limit_req rules, and limit_conn rules, per location */
#define HTTP_LIMIT_KEY_MAX 512 /* a key's value is cut there */

/* What a key is made of ($variables and text between them). */
enum http_limit_var {
    HTTP_LK_TEXT = 0,
    HTTP_LK_REMOTE_ADDR,
    HTTP_LK_SERVER_NAME,
    HTTP_LK_HOST,
    HTTP_LK_HEADER, /* $http_<name>: text is the header's name */
};

typedef struct http_limit_key_part {
    int var; /* enum http_limit_var */
    const char *text;
    size_t len;
} http_limit_key_part;

typedef struct http_limit_shm http_limit_shm;

/* limit_zones: { name: { key, rate, keys } } */
typedef struct http_limit_zone {
    struct http_limit_zone *next; /* every zone of the config (names are global) */
    char *name;
    char *key; /* as configured */
    http_limit_key_part *parts;
    size_t nparts;
    uint64_t rate;  /* milli-requests per second; 0: for limit_conn only */
    int64_t nkeys;  /* keys kept; the least recent goes for a new one */
    char *rate_str; /* as configured */
    http_limit_shm *shm;
    /* per worker: refusals logged at most once a second */
    int64_t log_sec;
    uint64_t log_quiet;
} http_limit_zone;

/* One limit_req or limit_conn rule of a location. */
typedef struct http_limit_rule {
    const zerg_conf_node *node; /* for errors found in conf_done */
    char *zone_name;
    http_limit_zone *zone; /* resolved in conf_done */
    int64_t burst;         /* limit_req: requests over the rate that wait (or pass: nodelay) */
    int64_t delay;         /* limit_req: of those, how many pass at once; -1 unset */
    int nodelay;
    int64_t max;    /* limit_conn: requests in progress per key */
    int64_t status; /* answered with; 0: 429 */
    int dry_run;    /* count and log, never refuse */
} http_limit_rule;

typedef struct http_limit_loc {
    http_limit_rule req[HTTP_LIMIT_RULES], conn[HTTP_LIMIT_RULES];
    size_t nreq, nconn;
} http_limit_loc;

/* A server block's: the zones it declares, and whether its locations limit. */
typedef struct http_limit_srv {
    http_limit_zone *zones;
    size_t nzones;
    int rules;       /* a location has limit_req or limit_conn */
    int want_fields; /* a key names a header: every header field is kept */
} http_limit_srv;

/* ---- configuration (http_limit_conf.c) ----------------------------------- */
extern const zerg_directive http_limit_server_directives[];
extern const zerg_directive http_limit_location_directives[];
/* A new config: zone names start afresh (load). */
void http_limit_conf_start(void);
/* Resolves the locations' zones, maps each zone's shared memory. */
int http_limit_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, http_srv *s,
                         int *want_peer);
/* The value of zone's key for the request, in buf (cut at HTTP_LIMIT_KEY_MAX):
 * $remote_addr as its address bytes (nginx's $binary_remote_addr: no
 * formatting per request), or as text for a log line (as_text). */
size_t http_limit_key(http_conn *hc, const http_limit_zone *z, char *buf, int as_text);
size_t http_limit_shm_size(int64_t nkeys);
void http_limit_shm_init(http_limit_shm *m, int64_t nkeys);

/* ---- per request (http_limit.c) ------------------------------------------ */
enum http_limit_verdict {
    HTTP_LIMIT_PASS = 0,
    HTTP_LIMIT_REFUSE, /* answered at dispatch; the upstream is not asked */
    HTTP_LIMIT_WAIT,   /* delayed: the parser pauses until the timer wakes it */
};

static inline int http_limit_on(const http_srv *s)
{
    return s->limit && s->limit->rules;
}
/* At the end of the head (the server block is known): the location's rules. */
int http_limit_head(http_conn *hc);
/* At dispatch: 1 when the request is refused (answered here) or waiting. */
int http_limit_dispatch(http_conn *hc);
/* The request ends (or its connection does): its limit_conn slots go back. */
void http_limit_done(http_conn *hc);
/* "Retry-After: N\r\n" into buf (cap) when limit_req refused the request
 * with status; else nothing. Returns the length written. */
size_t http_limit_retry_after(const http_conn *hc, int status, char *buf, size_t cap);
/* Worker: the block's zones join the metrics; the zones' counters. */
int http_limit_server_init(http_srv *s);
void http_limit_metrics(zerg_text *out);
void http_limit_worker_exit(void);

#endif
