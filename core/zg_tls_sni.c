/* zg_tls_sni.c - the server block of a TLS connection: the ClientHello's
 * SNI name is matched against the server_name of the blocks sharing the
 * listener's address (zg_server_name.c), and the chosen block's SSL_CTX
 * and settings replace the default block's before OpenSSL picks the
 * version, cipher and certificate. Also the client certificate's subject
 * and verification for api->conn_tls. */
#define _GNU_SOURCE
#include "zg_tls_sni.h"
#include "zg_accept.h"
#include "zg_conn.h"
#include "zg_log.h"
#include "zg_server_name.h"
#include "zg_tls_conf.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZG_SNI_MAX 255 /* a DNS name's length at most */

static int peer_index = -1; /* SSL ex_data: the client's facts, made once */

/* The host_name of the server_name extension (RFC 6066 3), lowercased
 * into out without a final dot; 0 when there is none (or it is malformed:
 * OpenSSL answers that itself). */
static size_t sni_name(SSL *ssl, char *out)
{
    const unsigned char *p;
    size_t len;
    if (!SSL_client_hello_get0_ext(ssl, TLSEXT_TYPE_server_name, &p, &len) || len < 5)
        return 0;
    size_t list = (size_t)p[0] << 8 | p[1], n = (size_t)p[3] << 8 | p[4];
    if (list + 2 != len || p[2] != TLSEXT_NAMETYPE_host_name || n + 5 > len || n > ZG_SNI_MAX)
        return 0;
    for (size_t i = 0; i < n; i++)
        out[i] = (char)(p[5 + i] >= 'A' && p[5 + i] <= 'Z' ? p[5 + i] - 'A' + 'a' : p[5 + i]);
    if (n && out[n - 1] == '.')
        n--;
    out[n] = 0;
    return n;
}

/* The index in l's blocks that name selects: the best match, else 0 (the
 * address's default). */
static size_t pick_block(const zg_listener *l, const char *name, size_t n)
{
    size_t best = 0, pick = 0;
    for (size_t i = 0; n && i < l->nvhosts; i++) {
        size_t rank = zg_server_names_match(&l->servers[i]->server_name, name, n);
        if (rank > best) {
            best = rank;
            pick = i;
        }
    }
    return pick;
}

/* ssl goes on with tc's context: SSL_set_SSL_CTX brings the certificates,
 * the CA list, ALPN and the session id context; what SSL_new copied into
 * ssl from the default block's (verification, options, versions,
 * ciphers) is set here. */
static int use_block(SSL *ssl, const zg_tls_conf *tc)
{
    SSL_CTX *ctx = tc->ctx;
    if (SSL_set_SSL_CTX(ssl, ctx) != ctx)
        return -1;
    SSL_set_verify(ssl, SSL_CTX_get_verify_mode(ctx), SSL_CTX_get_verify_callback(ctx));
    SSL_clear_options(ssl, SSL_get_options(ssl) & ~SSL_CTX_get_options(ctx));
    SSL_set_options(ssl, SSL_CTX_get_options(ctx));
    const char *suites = tc->ciphersuites ? tc->ciphersuites : OSSL_default_ciphersuites();
    if (SSL_set_min_proto_version(ssl, (int)SSL_CTX_get_min_proto_version(ctx)) != 1 ||
        SSL_set_max_proto_version(ssl, (int)SSL_CTX_get_max_proto_version(ctx)) != 1 ||
        SSL_set_cipher_list(ssl, tc->cipher_list) != 1 || SSL_set_ciphersuites(ssl, suites) != 1)
        return -1;
    return 0;
}

/* OpenSSL's first look at a ClientHello, before it chooses anything. */
static int client_hello(SSL *ssl, int *alert, void *arg)
{
    (void)arg;
    const zg_conn *c = SSL_get_app_data(ssl);
    const zg_listener *l = c ? c->listener : NULL;
    if (!l || l->nvhosts < 2)
        return SSL_CLIENT_HELLO_SUCCESS;
    char name[ZG_SNI_MAX + 1] = "";
    const zg_tls_conf *tc = l->servers[pick_block(l, name, sni_name(ssl, name))]->tls;
    if (!tc || tc->ctx == SSL_get_SSL_CTX(ssl) || use_block(ssl, tc) == 0)
        return SSL_CLIENT_HELLO_SUCCESS;
    const char *why = ERR_reason_error_string(ERR_peek_last_error());
    zg_log_warn("TLS: the settings of the server block for \"%s\": %s", name,
                why ? why : "out of memory");
    *alert = SSL_AD_INTERNAL_ERROR;
    return SSL_CLIENT_HELLO_ERROR;
}

static void peer_free(void *parent, void *ptr, CRYPTO_EX_DATA *ad, int idx, long argl, void *argp)
{
    (void)parent, (void)ad, (void)idx, (void)argl, (void)argp;
    free(ptr);
}

void zg_tls_sni_setup(SSL_CTX *ctx)
{
    if (peer_index < 0)
        peer_index = SSL_get_ex_new_index(0, NULL, NULL, NULL, peer_free);
    SSL_CTX_set_client_hello_cb(ctx, client_hello, NULL);
}

void zg_tls_sni_attach(SSL *ssl, zg_conn *c)
{
    SSL_set_app_data(ssl, c);
}

/* ---- the client's certificate ---- */

typedef struct tls_peer {
    const char *dn; /* into text, after verify */
    char text[];    /* "SUCCESS\0CN=..." */
} tls_peer;

/* The subject in RFC 2253 form and the verification, as nginx words them,
 * in one allocation freed with the SSL. */
static tls_peer *describe(SSL *ssl, X509 *x)
{
    char verify[128];
    long rc = SSL_get_verify_result(ssl);
    if (rc == X509_V_OK)
        snprintf(verify, sizeof(verify), "SUCCESS");
    else
        snprintf(verify, sizeof(verify), "FAILED:%s", X509_verify_cert_error_string(rc));
    BIO *b = BIO_new(BIO_s_mem());
    char *dn = NULL;
    long dn_len = 0;
    if (b && X509_NAME_print_ex(b, X509_get_subject_name(x), 0, XN_FLAG_RFC2253) >= 0)
        dn_len = BIO_get_mem_data(b, &dn);
    size_t vn = strlen(verify) + 1;
    tls_peer *p = malloc(sizeof(*p) + vn + (size_t)(dn_len > 0 ? dn_len : 0) + 1);
    if (p) {
        memcpy(p->text, verify, vn);
        p->dn = dn_len > 0 ? p->text + vn : NULL;
        if (dn_len > 0)
            memcpy(p->text + vn, dn, (size_t)dn_len);
        p->text[vn + (size_t)(dn_len > 0 ? dn_len : 0)] = 0;
    }
    BIO_free(b);
    ERR_clear_error();
    return p;
}

static void peer_info(SSL *ssl, zerg_tls_info *got)
{
    X509 *x = SSL_get0_peer_certificate(ssl);
    if (!x) {
        got->client_verify = "NONE";
        return;
    }
    tls_peer *p = peer_index >= 0 ? SSL_get_ex_data(ssl, peer_index) : NULL;
    if (!p && peer_index >= 0 && (p = describe(ssl, x)) && !SSL_set_ex_data(ssl, peer_index, p)) {
        free(p);
        p = NULL;
    }
    got->client_verify = p ? p->text : NULL;
    got->client_s_dn = p ? p->dn : NULL;
}

void zg_tls_sni_info(zg_conn *c, SSL *ssl, zerg_tls_info *got)
{
    const zg_listener *l = c->listener;
    if (l) {
        const SSL_CTX *ctx = SSL_get_SSL_CTX(ssl);
        got->server_tls = l->tls_class;
        for (size_t i = 0; i < l->nvhosts; i++)
            if (l->servers[i]->tls && l->servers[i]->tls->ctx == ctx) {
                got->sni_server = i;
                break;
            }
    }
    peer_info(ssl, got);
}
