/* modules/http/http_proxy.h - proxy_pass: upstream groups and their balancing
 * (http_proxy_balance.c), the pass itself (http_proxy.c, its request head
 * http_proxy_head.c, http_proxy_conf.c),
 * its tunnel (http_proxy_tunnel.c), idle connection pool (http_proxy_pool.c)
 * and directives (http_proxy_directives.c). */
#ifndef ZERG_HTTP_PROXY_H
#define ZERG_HTTP_PROXY_H

#include "http.h"

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
    int hash_var;               /* enum http_hash_var, for balance: hash */
    char *hash_header;          /* HTTP_HASH_HEADER: the field's name, lower case */
    struct http_upstream *next; /* the config's groups, every server block's */
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
    /* https: the TLS settings (verify, ca, server_name...) and the name
     * verified and sent as SNI unless they name one: the URL's host */
    zerg_tls_client *tls;
    char *tls_name;
} http_proxy_pass;

/* proxy_set_header: a header for the upstream (an empty value drops it) */
typedef struct http_proxy_header {
    char *name;
    size_t name_len;
    http_tmpl value;
} http_proxy_header;

/* The upstream connection's ctx (the module's conn_ctx_size is that of an
 * http_conn); its connections have hooks of their own (http_proxy.c). */
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
    uint64_t rx, tx; /* bytes from and to its server, not yet in the metrics */
    /* the group's servers this request tried */
    zerg_upstream_tried tried;
} http_up;

/* http_proxy.c: proxy_pass */
int http_parse_proxy_pass(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field);
int http_parse_proxy_set_header(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field);
/* Defaults and checks of a proxy_pass location; sets *want_peer when its
 * headers need the client's address. */
int http_proxy_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, http_srv *s,
                         http_location *l, int *want_peer);
/* http_proxy_balance.c: the upstreams key, and choosing among a group's
 * servers through the core */
int http_parse_upstreams(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field);
/* A config starts being parsed (load): no group is named yet. Group names
 * are the config's, as nginx's upstream blocks are global: one name in two
 * server blocks is refused, so that metric labels name one group. */
void http_upstreams_conf_start(void);
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
/* host:port (or [v6]:port; default_port when absent) resolved now. */
int http_proxy_resolve(const char *auth, size_t len, const char *default_port,
                       struct sockaddr_storage *out, socklen_t *outlen, const char **err);
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
/* Frees what proxy_pass keeps per worker (worker exit). */
void http_proxy_worker_exit(void);
/* http_proxy.c, for the tunnel: relays bytes received on from to `to`
 * (zero-copy where it can; as one chunk when chunked); the callers bound
 * the receiver's output with http_up_bound / http_up_bound_client. */
void http_relay(zerg_conn *from, zerg_conn *to, const char *at, size_t len, int chunked);
/* n bytes received from (BYTES_IN) or sent to (BYTES_OUT) up's server:
 * counted in its group's metrics when its request ends. */
void http_up_bytes(http_up *up, int event, size_t n);
void http_up_bound(http_up *up);        /* upstream -> client */
void http_up_bound_client(http_up *up); /* client -> upstream */
/* The answer is complete (ok) or cut short; the upstream closed (when
 * close_it) and the request done. */
void http_up_finish(http_up *up, int ok, int close_it);

/* http_proxy_head.c: the request head for up (path: the normalised path
 * the request was routed by), written to its connection: 0, or -1. */
int http_up_send_head(http_conn *hc, const char *path, size_t plen);
/* Whether the field name n[0..l) is lit (any case); hop-by-hop (RFC 9110
 * 7.6.1) or one the proxy sets itself. */
int http_name_is(const char *name, size_t n, const char *lit);
int http_hop_by_hop(const char *n, size_t l);

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
/* The most recently parked connection of l to server (-1: l's host),
 * taken out of the pool. */
http_up *http_up_take(const http_location *l, int server);
/* Takes up out of the pool (its on_close). */
void http_up_unpark(http_up *up);
/* Whether up is parked; an event on a parked connection closes it. */
int http_up_idle_event(http_up *up);
/* Closes every parked connection (drain). */
void http_up_close_idle(void);

/* Its directive rows (composed by http_conf.c). */
extern const zerg_directive http_proxy_server_directives[];
extern const zerg_directive http_proxy_location_directives[];

#endif
