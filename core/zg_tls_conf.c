/* zg_tls_conf.c - a server block's tls: key (see zg_tls_conf.h): parsing,
 * and the SSL_CTX with its certificate and key pairs, protocol range,
 * ciphers, ALPN list and client verification, built in the master at
 * every load and reload. */
#define _GNU_SOURCE
#include "zg_tls_conf.h"
#include "zg_log.h"
#include "zg_module.h"
#include "zg_tls_sni.h"
#include "zg_util.h"
#include "zg_tls_ticket.h"

#include <errno.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

/* Mozilla's "intermediate" TLS 1.2 list: forward secrecy and AEAD only. */
#define ZG_TLS_CIPHERS                                                                             \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                                   \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                                   \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                                   \
    "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:DHE-RSA-CHACHA20-POLY1305"
#define ZG_TLS_KEY_TYPES 8 /* distinct key types (RSA, ECDSA, Ed25519...) at most */

typedef struct tls_pair {
    char *certificate, *key;
} tls_pair;

/* OpenSSL's reason for its last failure (its error queue is cleared). */
static const char *ssl_reason(void)
{
    unsigned long e = ERR_peek_last_error();
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    ERR_clear_error();
    return r ? r : "unknown error";
}

static const zerg_directive pair_directives[] = {
    {"certificate", ZERG_CONF_CUSTOM, offsetof(tls_pair, certificate), zg_conf_parse_path, 0, 0},
    {"key", ZERG_CONF_CUSTOM, offsetof(tls_pair, key), zg_conf_parse_path, 0, 0},
    ZERG_DIRECTIVE_END,
};

/* A file OpenSSL is about to read: a message of ours when it cannot. */
static int readable(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *what, const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f)
        return zg_conf_error(cx, n, "tls: %s %s: cannot read: %s", what, path, strerror(errno));
    fclose(f);
    return 0;
}

/* What does not fail the load but should be fixed soon: a key file other
 * users may read, a certificate that expires within 14 days. */
static void warn_pair(const tls_pair *p, SSL_CTX *ctx)
{
    struct stat st;
    if (stat(p->key, &st) == 0 && (st.st_mode & S_IROTH))
        zg_log_warn("tls: key %s is readable by other users (the master reads it, the workers "
                    "need not): chmod o-r",
                    p->key);
    const ASN1_TIME *end = X509_get0_notAfter(SSL_CTX_get0_certificate(ctx));
    time_t soon = time(NULL) + 14 * 86400;
    if (end && X509_cmp_current_time(end) < 0)
        zg_log_warn("tls: certificate %s has expired", p->certificate);
    else if (end && X509_cmp_time(end, &soon) < 0)
        zg_log_warn("tls: certificate %s expires within 14 days", p->certificate);
}

/* One pair into ctx; types[] has the key types of the pairs before it
 * (OpenSSL keeps one certificate per key type: a second would replace it). */
static int load_pair(zerg_conf_ctx *cx, const zerg_conf_node *n, SSL_CTX *ctx, int *types, size_t i)
{
    tls_pair p = {0};
    if (zg_node_kind(cx, n) != ZERG_NODE_MAP)
        return zg_conf_error(cx, n, "tls: certificates: expected {certificate: FILE, key: FILE}");
    if (zg_conf_apply(cx, n, pair_directives, &p, NULL) < 0)
        return -1;
    if (!p.certificate || !p.key)
        return zg_conf_error(cx, n, "tls: certificates: each entry needs certificate and key");
    if (readable(cx, n, "certificate", p.certificate) < 0 || readable(cx, n, "key", p.key) < 0)
        return -1;
    ERR_clear_error();
    if (SSL_CTX_use_certificate_chain_file(ctx, p.certificate) != 1)
        return zg_conf_error(cx, n, "tls: certificate %s: %s", p.certificate, ssl_reason());
    if (SSL_CTX_use_PrivateKey_file(ctx, p.key, SSL_FILETYPE_PEM) != 1)
        return zg_conf_error(cx, n, "tls: key %s (for certificate %s): %s", p.key, p.certificate,
                             ssl_reason());
    if (SSL_CTX_check_private_key(ctx) != 1)
        return zg_conf_error(cx, n, "tls: key %s does not match certificate %s: %s", p.key,
                             p.certificate, ssl_reason());
    EVP_PKEY *pub = X509_get0_pubkey(SSL_CTX_get0_certificate(ctx));
    int type = pub ? EVP_PKEY_get_base_id(pub) : 0;
    const char *type_name = OBJ_nid2sn(type);
    for (size_t j = 0; j < i; j++)
        if (types[j] == type)
            return zg_conf_error(cx, n,
                                 "tls: certificate %s: a certificate with a key of this type "
                                 "(%s) is listed already: one pair per key type",
                                 p.certificate, type_name ? type_name : "unknown");
    types[i] = type;
    warn_pair(&p, ctx);
    return 0;
}

/* certificates: a list of pairs (or one pair); field is the zg_tls_conf. */
static int parse_certificates(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    zg_tls_conf *tc = field;
    int seq = zg_node_kind(cx, n) == ZERG_NODE_SEQ;
    size_t count = seq ? zg_node_len(cx, n) : 1;
    int types[ZG_TLS_KEY_TYPES];
    if (count == 0)
        return zg_conf_error(cx, n, "tls: certificates: expected at least one pair");
    if (count > ZG_TLS_KEY_TYPES)
        return zg_conf_error(cx, n, "tls: certificates: at most %d pairs (one per key type)",
                             ZG_TLS_KEY_TYPES);
    for (size_t i = 0; i < count; i++)
        if (load_pair(cx, seq ? zg_node_item(cx, n, i) : n, tc->ctx, types, i) < 0)
            return -1;
    return 0;
}

static int version_of(const char *name)
{
    static const struct {
        const char *name;
        int version;
    } v[] = {{"TLSv1", TLS1_VERSION},
             {"TLSv1.1", TLS1_1_VERSION},
             {"TLSv1.2", TLS1_2_VERSION},
             {"TLSv1.3", TLS1_3_VERSION}};
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++)
        if (strcmp(name, v[i].name) == 0)
            return v[i].version;
    return 0;
}

/* protocols: a range of versions without a gap (OpenSSL sets a min and max). */
static int set_protocols(zerg_conf_ctx *cx, const zerg_conf_node *n, zg_tls_conf *tc)
{
    int lo = TLS1_2_VERSION, hi = TLS1_3_VERSION;
    if (tc->protocols.n) {
        unsigned seen = 0;
        lo = TLS1_3_VERSION, hi = TLS1_VERSION;
        for (size_t i = 0; i < tc->protocols.n; i++) {
            int v = version_of(tc->protocols.items[i]);
            if (!v)
                return zg_conf_error(cx, n,
                                     "tls: protocols: unknown \"%s\" (TLSv1, TLSv1.1, TLSv1.2 "
                                     "or TLSv1.3)",
                                     tc->protocols.items[i]);
            seen |= 1u << (v - TLS1_VERSION);
            lo = v < lo ? v : lo;
            hi = v > hi ? v : hi;
        }
        for (int v = lo; v <= hi; v++)
            if (!(seen & (1u << (v - TLS1_VERSION))))
                return zg_conf_error(cx, n, "tls: protocols: a range without a gap, please");
    }
    if (SSL_CTX_set_min_proto_version(tc->ctx, lo) != 1 ||
        SSL_CTX_set_max_proto_version(tc->ctx, hi) != 1)
        return zg_conf_error(cx, n, "tls: protocols: %s", ssl_reason());
    return 0;
}

static int set_ciphers(zerg_conf_ctx *cx, const zerg_conf_node *block, zg_tls_conf *tc)
{
    const char *list = tc->cipher_list = tc->ciphers ? tc->ciphers : ZG_TLS_CIPHERS;
    if (SSL_CTX_set_cipher_list(tc->ctx, list) != 1)
        return zg_conf_error(cx, zg_node_get(cx, block, "ciphers"), "tls: ciphers \"%s\": %s", list,
                             ssl_reason());
    if (tc->ciphersuites && SSL_CTX_set_ciphersuites(tc->ctx, tc->ciphersuites) != 1)
        return zg_conf_error(cx, zg_node_get(cx, block, "ciphersuites"),
                             "tls: ciphersuites \"%s\": %s", tc->ciphersuites, ssl_reason());
    return 0;
}

/* The server's ALPN choice: its own first protocol the client offers. A
 * client that offers only others gets the no_application_protocol alert
 * (RFC 7301, section 3.2). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned inlen, void *arg)
{
    (void)ssl;
    const zg_tls_conf *tc = arg;
    unsigned char *chosen = NULL;
    if (SSL_select_next_proto(&chosen, outlen, tc->alpn_wire, tc->alpn_wire_len, in, inlen) !=
        OPENSSL_NPN_NEGOTIATED)
        return SSL_TLSEXT_ERR_ALERT_FATAL;
    *out = chosen;
    return SSL_TLSEXT_ERR_OK;
}

/* tc->alpn in the wire format, and the callback that chooses from it (at:
 * the alpn key, for messages). */
static int alpn_wire(zerg_conf_ctx *cx, const zerg_conf_node *at, zg_tls_conf *tc)
{
    size_t len = 0;
    for (size_t i = 0; i < tc->alpn.n; i++) {
        size_t n = strlen(tc->alpn.items[i]);
        if (n == 0 || n > 255)
            return zg_conf_error(cx, at, "tls: alpn: a protocol name has 1 to 255 bytes");
        len += 1 + n;
    }
    if (!len)
        return 0;
    if (len > 65535)
        return zg_conf_error(cx, at, "tls: alpn: list too long");
    if (!(tc->alpn_wire = zg_conf_alloc(cx, len)))
        return -1;
    unsigned char *p = tc->alpn_wire;
    for (size_t i = 0; i < tc->alpn.n; i++) {
        size_t n = strlen(tc->alpn.items[i]);
        *p++ = (unsigned char)n;
        memcpy(p, tc->alpn.items[i], n);
        p += n;
    }
    tc->alpn_wire_len = (unsigned)len;
    SSL_CTX_set_alpn_select_cb(tc->ctx, alpn_select, tc);
    return 0;
}

static int parse_verify_client(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = zg_node_scalar(cx, n);
    int on;
    if (s && strcmp(s, "optional") == 0)
        *(int *)field = ZG_TLS_VERIFY_OPTIONAL;
    else if (s && zg_parse_bool(s, &on) == 0)
        *(int *)field = on ? ZG_TLS_VERIFY_ON : ZG_TLS_VERIFY_OFF;
    else
        return zg_conf_error(cx, n, "tls: verify_client: expected off, optional or on");
    return 0;
}

/* verify_client optional: the handshake goes on whatever the verification
 * said; its result stays for api->conn_tls (SSL_get_verify_result). */
static int verify_optional(int preverify_ok, X509_STORE_CTX *store)
{
    (void)preverify_ok, (void)store;
    return 1;
}

/* client_ca: read at every load (so a reload takes a changed file), the CAs
 * trusted for client certificates and named in the CertificateRequest. */
static int set_client_verify(zerg_conf_ctx *cx, const zerg_conf_node *block, zg_tls_conf *tc)
{
    const zerg_conf_node *ca = zg_node_get(cx, block, "client_ca");
    if (tc->verify_client != ZG_TLS_VERIFY_OFF && !tc->client_ca)
        return zg_conf_error(cx, zg_node_get(cx, block, "verify_client"),
                             "tls: verify_client: needs client_ca");
    if (!tc->client_ca)
        return 0;
    if (readable(cx, ca, "client_ca", tc->client_ca) < 0)
        return -1;
    ERR_clear_error();
    STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(tc->client_ca);
    if (!names || SSL_CTX_load_verify_locations(tc->ctx, tc->client_ca, NULL) != 1) {
        sk_X509_NAME_pop_free(names, X509_NAME_free);
        return zg_conf_error(cx, ca, "tls: client_ca %s: %s", tc->client_ca,
                             names ? ssl_reason() : "no certificate in it");
    }
    SSL_CTX_set_client_CA_list(tc->ctx, names);
    if (tc->verify_client == ZG_TLS_VERIFY_ON)
        SSL_CTX_set_verify(tc->ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    else if (tc->verify_client == ZG_TLS_VERIFY_OPTIONAL)
        SSL_CTX_set_verify(tc->ctx, SSL_VERIFY_PEER, verify_optional);
    return 0;
}

static void digest_str(EVP_MD_CTX *md, const char *s)
{
    EVP_DigestUpdate(md, s ? s : "", s ? strlen(s) + 1 : 1);
}

/* The digest of what a client meets: the certificates themselves, the
 * protocol range, ciphers, ALPN list and client verification. Blocks with
 * equal digests may serve each other's requests (no 421), and it is the
 * session id context, so a session made under other settings is not
 * resumed under these. */
static int set_digest(zg_tls_conf *tc)
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1;
    for (long r = SSL_CTX_set_current_cert(tc->ctx, SSL_CERT_SET_FIRST); ok && r == 1;
         r = SSL_CTX_set_current_cert(tc->ctx, SSL_CERT_SET_NEXT)) {
        unsigned char fp[EVP_MAX_MD_SIZE];
        unsigned fn = 0;
        X509 *x = SSL_CTX_get0_certificate(tc->ctx);
        ok = x && X509_digest(x, EVP_sha256(), fp, &fn) == 1;
        if (ok)
            EVP_DigestUpdate(md, fp, fn);
    }
    long range[2] = {SSL_CTX_get_min_proto_version(tc->ctx),
                     SSL_CTX_get_max_proto_version(tc->ctx)};
    if (ok) {
        EVP_DigestUpdate(md, range, sizeof(range));
        digest_str(md, tc->cipher_list);
        digest_str(md, tc->ciphersuites);
        EVP_DigestUpdate(md, tc->alpn_wire ? tc->alpn_wire : (unsigned char *)"",
                         tc->alpn_wire_len);
        digest_str(md, tc->client_ca);
        EVP_DigestUpdate(md, &tc->verify_client, sizeof(tc->verify_client));
        ok = EVP_DigestFinal_ex(md, tc->digest, NULL) == 1 &&
             SSL_CTX_set_session_id_context(tc->ctx, tc->digest, sizeof(tc->digest)) == 1;
    }
    EVP_MD_CTX_free(md);
    return ok ? 0 : -1;
}

int zg_tls_conf_same(const zg_tls_conf *a, const zg_tls_conf *b)
{
    if (!a || !b)
        return a == b;
    return memcmp(a->digest, b->digest, sizeof(a->digest)) == 0;
}

static int set_alpn(zerg_conf_ctx *cx, const zerg_conf_node *block, zg_tls_conf *tc)
{
    const zerg_conf_node *key = zg_node_get(cx, block, "alpn");
    tc->alpn_key = key != NULL;
    return key ? alpn_wire(cx, key, tc) : 0; /* else the module's (zg_tls_conf_finish) */
}

/* What every zerg TLS context does: no renegotiation, compression or
 * early data; record buffers released while a connection is idle; sessions
 * resumed by tickets only (no per-worker session cache to grow). */
static int set_policy(SSL_CTX *ctx)
{
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    if (SSL_CTX_set_max_early_data(ctx, 0) != 1 || SSL_CTX_set_recv_max_early_data(ctx, 0) != 1 ||
        SSL_CTX_set_dh_auto(ctx, 1) != 1)
        return -1;
    return 0;
}

int zg_tls_conf_parse(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    static const zerg_directive tls_directives[] = {
        {"certificates", ZERG_CONF_CUSTOM, 0, parse_certificates, 0, 0},
        {"protocols", ZERG_CONF_STR_LIST, offsetof(zg_tls_conf, protocols), NULL, 0, 0},
        {"ciphers", ZERG_CONF_STR, offsetof(zg_tls_conf, ciphers), NULL, 0, 0},
        {"ciphersuites", ZERG_CONF_STR, offsetof(zg_tls_conf, ciphersuites), NULL, 0, 0},
        {"handshake_timeout", ZERG_CONF_MSEC, offsetof(zg_tls_conf, handshake_timeout), NULL, 1,
         3600000},
        {"alpn", ZERG_CONF_STR_LIST, offsetof(zg_tls_conf, alpn), NULL, 0, 0},
        {"client_ca", ZERG_CONF_CUSTOM, offsetof(zg_tls_conf, client_ca), zg_conf_parse_path, 0, 0},
        {"verify_client", ZERG_CONF_CUSTOM, offsetof(zg_tls_conf, verify_client),
         parse_verify_client, 0, 0},
        {"session_tickets", ZERG_CONF_BOOL, offsetof(zg_tls_conf, session_tickets), NULL, 0, 0},
        {"session_timeout", ZERG_CONF_MSEC, offsetof(zg_tls_conf, session_timeout), NULL, 1000,
         7 * 86400000},
        ZERG_DIRECTIVE_END,
    };
    if (zg_node_kind(cx, n) != ZERG_NODE_MAP)
        return zg_conf_error(cx, n, "tls: expected a mapping (certificates, protocols, ...)");
    if (!zg_node_get(cx, n, "certificates"))
        return zg_conf_error(cx, n, "tls: missing key \"certificates\"");
    zg_tls_conf *tc = zg_conf_alloc(cx, sizeof(*tc));
    if (!tc)
        return -1;
    tc->handshake_timeout = 10000;
    tc->session_tickets = 1;
    tc->session_timeout = 3600000;
    ERR_clear_error();
    if (!(tc->ctx = SSL_CTX_new(TLS_server_method())))
        return zg_conf_error(cx, n, "tls: %s", ssl_reason());
    tc->next = cx->cfg->tls_confs; /* freed with the config from here on */
    cx->cfg->tls_confs = tc;
    if (set_policy(tc->ctx) < 0)
        return zg_conf_error(cx, n, "tls: %s", ssl_reason());
    if (zg_conf_apply(cx, n, tls_directives, tc, NULL) < 0 ||
        set_protocols(cx, zg_node_get(cx, n, "protocols"), tc) < 0 || set_ciphers(cx, n, tc) < 0 ||
        set_alpn(cx, n, tc) < 0 || set_client_verify(cx, n, tc) < 0)
        return -1;
    if (zg_tls_ticket_setup(tc->ctx, tc->session_tickets, tc->session_timeout) < 0)
        return zg_conf_error(cx, n, "tls: session tickets: %s", ssl_reason());
    zg_tls_sni_setup(tc->ctx);
    *(zg_tls_conf **)field = tc;
    return 0;
}

/* Each certificate's chain, built once here as OpenSSL would otherwise
 * build it at every full handshake: for a certificate loaded without
 * intermediates it runs X509_verify_cert over the context's store (the
 * client_ca certificates) for each Certificate message it sends, a store
 * context, lookups and an error pushed and cleared each time (profiled:
 * nginx, which sets a chain, never does). The chain is the same: the
 * issuers found in that store, root included. A certificate file with
 * intermediates keeps them; a chain that cannot be built here (a CA key
 * below the security level) is left to OpenSSL, which fails as before. */
static void build_chains(SSL_CTX *ctx)
{
    for (long r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_FIRST); r == 1;
         r = SSL_CTX_set_current_cert(ctx, SSL_CERT_SET_NEXT)) {
        STACK_OF(X509) *chain = NULL;
        if (SSL_CTX_get0_chain_certs(ctx, &chain) == 1 && chain)
            continue;
        (void)SSL_CTX_build_cert_chain(ctx, SSL_BUILD_CHAIN_FLAG_IGNORE_ERROR |
                                                SSL_BUILD_CHAIN_FLAG_CLEAR_ERROR);
    }
    ERR_clear_error();
}

int zg_tls_conf_finish(zerg_conf_ctx *cx, zg_tls_conf *tc, const char *const *names)
{
    if (!tc->alpn_key) { /* the module's protocols: the list is read, not kept */
        size_t n = 0;
        while (names && names[n])
            n++;
        tc->alpn.n = n;
        tc->alpn.items = (char **)names;
        if (alpn_wire(cx, NULL, tc) < 0)
            return -1;
    }
    build_chains(tc->ctx); /* with client_ca in the store */
    /* last, with the ALPN list known; it replaces the tickets' session id
     * context (zg_tls_ticket_setup) */
    if (set_digest(tc) < 0)
        return zg_conf_error(cx, NULL, "tls: %s", ssl_reason());
    return 0;
}

void zg_tls_conf_free_all(zg_tls_conf *list)
{
    for (zg_tls_conf *tc = list; tc; tc = tc->next)
        SSL_CTX_free(tc->ctx);
}
