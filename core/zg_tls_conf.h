/* zg_tls_conf.h - a server block's tls: key: its settings and the SSL_CTX
 * the master builds from them (certificates and keys read at every load, so
 * before the workers fork and drop privileges). */
#ifndef ZG_TLS_CONF_H
#define ZG_TLS_CONF_H

#include <stdint.h>

#include "zg_conf.h"

struct ssl_ctx_st;

typedef struct zg_tls_conf {
    struct zg_tls_conf *next;   /* the config's list, freed with it */
    struct ssl_ctx_st *ctx;     /* certificates, keys, protocols, ciphers */
    uint64_t handshake_timeout; /* ms a client has to finish its handshake */
    uint64_t session_timeout;   /* ms a session resumes for (zg_tls_ticket.c) */
    int session_tickets;        /* resumption by tickets, with the master's keys */
    zerg_str_list protocols;
    zerg_str_list alpn;
    char *ciphers, *ciphersuites;
    unsigned char *alpn_wire; /* alpn in the wire format, or NULL */
    unsigned alpn_wire_len;
    char *client_ca;          /* client_ca: the CAs of client certificates, or NULL */
    int verify_client;        /* ZG_TLS_VERIFY_*: verify_client */
    const char *cipher_list;  /* ciphers in effect (the key's or the default) */
    unsigned char digest[32]; /* of the settings above: equal digests, equal settings */
    int alpn_key;             /* alpn came from the block's alpn key, not its module */
} zg_tls_conf;

/* verify_client: no client certificate asked for; asked for and checked
 * when sent (the module sees the result); required and valid. */
enum { ZG_TLS_VERIFY_OFF, ZG_TLS_VERIFY_OPTIONAL, ZG_TLS_VERIFY_ON };

/* The parser of a server block's tls: key (field: zg_tls_conf *). */
int zg_tls_conf_parse(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field);
/* Whether two blocks' TLS settings are the same (or neither has TLS). */
int zg_tls_conf_same(const zg_tls_conf *a, const zg_tls_conf *b);
/* After the block's module conf: the protocols its module offers for it
 * (names: zg_module_conf_alpn) unless the alpn key named them, then
 * the digest of the settings (zg_tls_conf_same, the session id context). */
int zg_tls_conf_finish(zerg_conf_ctx *cx, zg_tls_conf *tc, const char *const *names);
/* Free the contexts of a config (its tls_confs list). */
void zg_tls_conf_free_all(zg_tls_conf *list);

#endif
