/* zg_tls.h - the TLS record layer of a connection whose server block has a
 * tls: key, between its socket and its module: ciphertext from the receive
 * buffers is decrypted for on_data, the module's output queue is encrypted
 * into a queue of ciphertext that the ring sends (zg_tls.c). OpenSSL never
 * touches the socket. */
#ifndef ZG_TLS_H
#define ZG_TLS_H

#include <stdint.h>

#include "zg_outq.h"
#include "zg_util.h"

typedef struct zerg_conn zg_conn;
struct ssl_st;
struct ssl_ctx_st;

/* A TLS connection's state (allocated only for those: c->tls). The
 * transport is OpenSSL in user space; a kernel TLS transport would hand the
 * keys to the socket after the handshake and bypass wire. */
typedef struct zg_tls {
    struct ssl_st *ssl;
    zg_outq wire;      /* ciphertext to send, before anything of c->out */
    const uint8_t *in; /* ciphertext OpenSSL reads next (its BIO's window) */
    size_t in_len;
    uint64_t plain_out;  /* plaintext encrypted so far (record sizes) */
    uint64_t busy_ms;    /* when it last did TLS work (zg_tls.c's sweep) */
    zg_list busy_link;   /* in the worker's list while it keeps record buffers */
    uint8_t established; /* handshake done: the module knows c */
    uint8_t failed;      /* a fatal error: no more OpenSSL calls but SSL_free */
    uint8_t notify_sent; /* our close_notify is queued */
    /* an outbound connection's client settings (zg_tls_client.c), NULL
     * for an accepted one: the switch between the two sides */
    const struct zerg_tls_client *client;
} zg_tls;

/* The TLS state of c with a new SSL of ctx, reading and writing through
 * c's queues (either side; the caller sets the side). 0, or -1 after a
 * warning when memory ran out. */
int zg_tls_attach(zg_conn *c, struct ssl_ctx_st *ctx);

/* An accepted connection of a TLS server block starts its handshake (the
 * module meets it once it is done). 0, or -1 when memory ran out. */
int zg_tls_start(zg_conn *c);
/* Ciphertext that came in: the handshake, then plaintext to the module. */
void zg_tls_input(zg_conn *c, const uint8_t *data, size_t len);
/* The peer's FIN: 1 when it is dealt with here, 0 when it goes on to the
 * module as an end of stream. */
int zg_tls_eof(zg_conn *c);
/* Before a send: encrypt what the module queued into wire (a bounded
 * amount), and once all is encrypted while a close is due, the
 * close_notify.
 * -1 when that failed (c is closing). */
int zg_tls_flush(zg_conn *c);
/* handshake_timeout expired. */
void zg_tls_handshake_timeout(zg_conn *c);
/* The close: free the state. */
void zg_tls_free(zg_conn *c);
/* api->conn_tls */
int zg_tls_info(zg_conn *c, zerg_tls_info *info);

#endif
