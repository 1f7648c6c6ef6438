/* zg_tls_client.c - TLS on outbound connections (see zg_tls_client.h): the
 * client context built in the master from a module's tls: settings, the
 * handshake started once the TCP connect is done (on_connect after it),
 * verification of the chain and the name, and the last session per upstream
 * in each worker, offered on its next connection. */
#define _GNU_SOURCE
#include "zg_tls_client.h"
#include "zg_connect.h"
#include "zg_log.h"
#include "zg_worker.h"

#include <arpa/inet.h>
#include <errno.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ZG_TLS_CLIENT_TIMEOUT  10000 /* handshake_timeout's default, ms */
#define ZG_TLS_CLIENT_SESSIONS 1024  /* upstreams with a kept session, per settings */

/* ---- configuration (master) ---- */

static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

static int new_session(SSL *ssl, SSL_SESSION *sess);

/* The system's CA bundle (OpenSSL's default file: on Debian
 * /etc/ssl/certs/ca-certificates.crt), read now. Not OpenSSL's default
 * directory as well: its lookups would read the disk in a worker, during
 * a verification. Without the bundle nothing is trusted: a warning. */
static int load_system_ca(SSL_CTX *ctx)
{
    const char *env = getenv(X509_get_default_cert_file_env());
    const char *file = env && *env ? env : X509_get_default_cert_file();
    if (access(file, R_OK) < 0) {
        zg_log_warn("tls: the system's CA bundle %s: %s: only a ca file makes upstream "
                    "certificates trusted",
                    file, strerror(errno));
        return 0;
    }
    return SSL_CTX_load_verify_locations(ctx, file, NULL) == 1 ? 0 : -1;
}

/* The trusted CAs: the ca file, else the system's bundle. */
static int load_ca(zerg_conf_ctx *cx, const zerg_conf_node *node, zg_tls_client *tc)
{
    if (!tc->ca)
        return load_system_ca(tc->ctx) == 0
                   ? 0
                   : zg_conf_error(cx, node, "tls: the system's CA bundle: %s", ssl_reason());
    const zerg_conf_node *n = zg_node_get(cx, node, "ca");
    FILE *f = fopen(tc->ca, "r");
    if (!f)
        return zg_conf_error(cx, n, "tls: ca %s: cannot read: %s", tc->ca, strerror(errno));
    fclose(f);
    if (SSL_CTX_load_verify_locations(tc->ctx, tc->ca, NULL) != 1)
        return zg_conf_error(cx, n, "tls: ca %s: %s", tc->ca, ssl_reason());
    return 0;
}

/* No renegotiation or compression, TLS 1.2 at least, record buffers
 * released while idle, the chain verified unless verify is off, and new
 * sessions handed to us (new_session) instead of an internal cache. */
static int build_ctx(zerg_conf_ctx *cx, const zerg_conf_node *node, zg_tls_client *tc)
{
    SSL_CTX *ctx = tc->ctx;
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1)
        return zg_conf_error(cx, node, "tls: %s", ssl_reason());
    SSL_CTX_set_verify(ctx, tc->verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
    if (tc->session_reuse) {
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, new_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
        SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
    }
    return tc->verify || tc->ca ? load_ca(cx, node, tc) : 0;
}

/* A context of the config that tc can share (the same verify, ca and
 * session_reuse): each holds its CA store, the system's ~150 roots. */
static SSL_CTX *shared_ctx(const zg_config *cfg, const zg_tls_client *tc)
{
    for (const zg_tls_client *o = cfg->tls_clients; o; o = o->next)
        if (o->verify == tc->verify && o->session_reuse == tc->session_reuse && !o->ca == !tc->ca &&
            (!o->ca || !strcmp(o->ca, tc->ca)) && SSL_CTX_up_ref(o->ctx))
            return o->ctx;
    return NULL;
}

zg_tls_client *zg_tls_client_conf(zerg_conf_ctx *cx, const zerg_conf_node *node)
{
    static const zerg_directive directives[] = {
        {"verify", ZERG_CONF_BOOL, offsetof(zg_tls_client, verify), NULL, 0, 0},
        {"ca", ZERG_CONF_CUSTOM, offsetof(zg_tls_client, ca), zg_conf_parse_path, 0, 0},
        {"server_name", ZERG_CONF_STR, offsetof(zg_tls_client, server_name), NULL, 0, 0},
        {"session_reuse", ZERG_CONF_BOOL, offsetof(zg_tls_client, session_reuse), NULL, 0, 0},
        {"handshake_timeout", ZERG_CONF_MSEC, offsetof(zg_tls_client, handshake_timeout), NULL, 1,
         3600000},
        ZERG_DIRECTIVE_END,
    };
    if (node && zg_node_kind(cx, node) != ZERG_NODE_MAP) {
        zg_conf_error(cx, node, "tls: expected a mapping (verify, ca, server_name, ...)");
        return NULL;
    }
    zg_tls_client *tc = zg_conf_alloc(cx, sizeof(*tc));
    if (!tc)
        return NULL;
    tc->verify = 1;
    tc->session_reuse = 1;
    tc->handshake_timeout = ZG_TLS_CLIENT_TIMEOUT;
    if (node && zg_conf_apply(cx, node, directives, tc, NULL) < 0)
        return NULL;
    if (tc->server_name && !*tc->server_name) {
        zg_conf_error(cx, zg_node_get(cx, node, "server_name"), "tls: server_name: empty");
        return NULL;
    }
    SSL_CTX *shared = shared_ctx(cx->cfg, tc);
    ERR_clear_error();
    if (!(tc->ctx = shared ? shared : SSL_CTX_new(TLS_client_method()))) {
        zg_conf_error(cx, node, "tls: %s", ssl_reason());
        return NULL;
    }
    tc->next = cx->cfg->tls_clients; /* freed with the config from here on */
    cx->cfg->tls_clients = tc;
    return shared || build_ctx(cx, node, tc) == 0 ? tc : NULL;
}

void zg_tls_client_free_all(zg_tls_client *list)
{
    for (zg_tls_client *tc = list; tc; tc = tc->next) {
        for (size_t i = 0; i < tc->nsessions; i++) {
            SSL_SESSION_free(tc->sessions[i].sess);
            free(tc->sessions[i].name);
        }
        free(tc->sessions);
        SSL_CTX_free(tc->ctx);
    }
}

/* ---- sessions (worker) ---- */

/* The kept session of the upstream c connects to, under name. */
static zg_tls_sess *session_of(const zg_tls_client *tc, const zg_conn *c, const char *name)
{
    for (size_t i = 0; i < tc->nsessions; i++) {
        zg_tls_sess *s = &tc->sessions[i];
        if (s->addr_len == c->peer_len && !memcmp(&s->addr, zg_conn_peer(c), c->peer_len) &&
            !strcmp(s->name, name))
            return s;
    }
    return NULL;
}

static zg_tls_sess *session_add(zg_tls_client *tc, const zg_conn *c, const char *name)
{
    if (tc->nsessions == tc->cap) {
        if (tc->cap >= ZG_TLS_CLIENT_SESSIONS)
            return NULL; /* that many upstreams: the others do full handshakes */
        size_t cap = tc->cap ? tc->cap * 2 : 8;
        zg_tls_sess *s = realloc(tc->sessions, cap * sizeof(*s));
        if (!s)
            return NULL;
        tc->sessions = s;
        tc->cap = cap;
    }
    zg_tls_sess *s = &tc->sessions[tc->nsessions];
    memset(s, 0, sizeof(*s));
    if (!(s->name = strdup(name)))
        return NULL;
    memcpy(&s->addr, zg_conn_peer(c), c->peer_len);
    s->addr_len = c->peer_len;
    tc->nsessions++;
    return s;
}

/* OpenSSL made a session (after the handshake, or a TLS 1.3 ticket that
 * came later): it replaces the upstream's kept one. 1: it is ours now. */
static int new_session(SSL *ssl, SSL_SESSION *sess)
{
    BIO *b = SSL_get_rbio(ssl);
    zg_conn *c = b ? BIO_get_data(b) : NULL;
    if (!c || !c->tls || !c->tls->client)
        return 0;
    zg_tls_client *tc = (zg_tls_client *)c->tls->client; /* this worker's copy */
    const char *name = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name);
    zg_tls_sess *s = session_of(tc, c, name ? name : "");
    if (!s && !(s = session_add(tc, c, name ? name : "")))
        return 0;
    SSL_SESSION_free(s->sess);
    s->sess = sess;
    return 1;
}

/* ---- connections (worker) ---- */

static int is_ip(const char *name)
{
    unsigned char buf[sizeof(struct in6_addr)];
    return inet_pton(AF_INET, name, buf) == 1 || inet_pton(AF_INET6, name, buf) == 1;
}

/* The client side of c's TLS: SNI, the name to verify, a kept session. */
static int setup(zg_conn *c, const zg_tls_client *tc, const char *name)
{
    if (zg_tls_attach(c, tc->ctx) < 0)
        return -1;
    SSL *ssl = c->tls->ssl;
    c->tls->client = tc;
    SSL_set_connect_state(ssl);
    int ip = name && is_ip(name);
    if (name && !ip && SSL_set_tlsext_host_name(ssl, name) != 1)
        return -1;
    if (tc->verify && name) {
        SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), name) != 1
               : SSL_set1_host(ssl, name) != 1)
            return -1;
    }
    zg_tls_sess *s = tc->session_reuse ? session_of(tc, c, name && !ip ? name : "") : NULL;
    if (s && s->sess && SSL_SESSION_is_resumable(s->sess) && SSL_set_session(ssl, s->sess) != 1)
        return -1;
    return 0;
}

zg_conn *zg_connect_tls(zg_worker *w, const zerg_conn_hooks *hooks, void *conf,
                        const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms,
                        const zg_tls_client *tls, const char *server_name)
{
    if (!tls) {
        errno = EINVAL;
        return NULL;
    }
    zg_conn *c = zg_connect_with(w, hooks, conf, sa, len, timeout_ms);
    if (!c)
        return NULL;
    ERR_clear_error();
    if (setup(c, tls, tls->server_name ? tls->server_name : server_name) < 0) {
        zg_log_warn("TLS: a connection to an upstream: %s", ssl_reason());
        c->flags &= ~ZG_C_OPEN; /* the module never hears of it */
        zg_conn_teardown(c, -ENOMEM);
        errno = ENOMEM;
        return NULL;
    }
    return c;
}

void zg_tls_client_begin(zg_conn *c)
{
    c->flags |= ZG_C_HANDSHAKE; /* reading goes on even while the module pauses */
    zg_timer_set(&c->w->timers, &c->timer, c->w->now_ms, c->tls->client->handshake_timeout);
    zg_tls_input(c, NULL, 0); /* the ClientHello, queued to go out */
    if (!(c->flags & ZG_C_CLOSING)) {
        zg_conn_update_read(c);
        zg_conn_queue_flush(c);
    }
}

void zg_tls_client_refuse(zg_conn *c, int err, const char *why)
{
    zg_tls *t = c->tls;
    char peer[64];
    zg_addr_str(zg_conn_peer(c), peer, sizeof(peer));
    t->failed = 1;
    if (t->established) {
        zg_log_info("upstream %s: TLS: %s: closing", peer, why);
        zg_conn_teardown(c, err ? err : -EPROTO);
        return;
    }
    const char *name = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    long v = SSL_get_verify_result(t->ssl);
    if (err != -ETIMEDOUT && v != X509_V_OK)
        zg_log_error("upstream %s%s%s: TLS handshake: certificate verify failed: %s", peer,
                     name ? ", server_name " : "", name ? name : "",
                     X509_verify_cert_error_string(v));
    else
        zg_log_error("upstream %s%s%s: TLS handshake: %s", peer, name ? ", server_name " : "",
                     name ? name : "", why);
    zg_conn_connected(c, err == -ETIMEDOUT ? -ETIMEDOUT : -EPROTO); /* on_connect, the close */
}
