/* zg_tls_client.h - TLS on outbound connections (api->conf_tls_client,
 * api->connect_tls): the client settings and context the master builds,
 * the client side of a connection's handshake through the record layer of
 * zg_tls.c, and the last session per upstream, offered again. */
#ifndef ZG_TLS_CLIENT_H
#define ZG_TLS_CLIENT_H

#include <stdint.h>

#include "zg_conf.h"
#include "zg_conn.h"

struct ssl_ctx_st;
struct ssl_session_st;

/* The session kept for an upstream: its address and the name asked for. */
typedef struct zg_tls_sess {
    struct sockaddr_storage addr;
    socklen_t addr_len;
    char *name; /* "" when none was sent */
    struct ssl_session_st *sess;
} zg_tls_sess;

struct zerg_tls_client {
    struct zerg_tls_client *next; /* the config's list, freed with it */
    struct ssl_ctx_st *ctx;       /* verification, CA store, session cache mode */
    int verify;                   /* the peer's chain and name are checked */
    int session_reuse;            /* offer the last session of the upstream */
    char *ca;                     /* the CA file, NULL: the system's bundle */
    char *server_name;            /* overrides the module's name */
    uint64_t handshake_timeout;   /* ms, from the TCP connect's end */
    zg_tls_sess *sessions;        /* this worker's, one per upstream (a process's copy) */
    size_t nsessions, cap;
};
typedef struct zerg_tls_client zg_tls_client;

/* api->conf_tls_client */
zg_tls_client *zg_tls_client_conf(zerg_conf_ctx *cx, const zerg_conf_node *node);
/* Free the contexts and sessions of a config (its tls_clients list). */
void zg_tls_client_free_all(zg_tls_client *list);
/* api->connect_tls */
zg_conn *zg_connect_tls(zg_worker *w, const zerg_conn_hooks *hooks, void *conf,
                        const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms,
                        const zg_tls_client *tls, const char *server_name);
/* The TCP connect of a TLS connection succeeded: the handshake starts
 * (on_connect once it is done). */
void zg_tls_client_begin(zg_conn *c);
/* The record layer failed (zg_tls.c): why, for the log line. Before the
 * handshake's end the module hears it through on_connect. */
void zg_tls_client_refuse(zg_conn *c, int err, const char *why);

#endif
