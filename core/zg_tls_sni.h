/* zg_tls_sni.h - name-based virtual hosts over TLS: the server block a
 * ClientHello's SNI names among those sharing the listener's address
 * brings its certificates and settings (zg_tls_sni.c), and what
 * api->conn_tls tells of that choice and of the client's certificate. */
#ifndef ZG_TLS_SNI_H
#define ZG_TLS_SNI_H

#include <zerg/module.h>

typedef struct zerg_conn zg_conn;
struct ssl_ctx_st;
struct ssl_st;

/* At load, for each block's context: its ClientHellos go through the
 * choice of a block (once per process: the index of the client's facts). */
void zg_tls_sni_setup(struct ssl_ctx_st *ctx);
/* A connection's SSL knows its connection (SSL_get_app_data). */
void zg_tls_sni_attach(struct ssl_st *ssl, zg_conn *c);
/* api->conn_tls's members for the block SNI chose and the client's
 * certificate (after the handshake). */
void zg_tls_sni_info(zg_conn *c, struct ssl_st *ssl, zerg_tls_info *got);

#endif
