/* tests/unit/tls_cert.h - a server SSL_CTX with a self-signed P-256
 * certificate made in memory (no files), for the TLS unit tests and the
 * TLS fuzz target. NULL when OpenSSL fails. */
#ifndef ZG_TEST_TLS_CERT_H
#define ZG_TEST_TLS_CERT_H

#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

static inline SSL_CTX *tls_test_ctx(void)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    EVP_PKEY *key = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    X509 *x = X509_new();
    int ok = ctx && key && x && ASN1_INTEGER_set(X509_get_serialNumber(x), 1) == 1 &&
             X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
             X509_gmtime_adj(X509_getm_notAfter(x), 3600) &&
             X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                        (const unsigned char *)"localhost", -1, -1, 0) == 1 &&
             X509_set_issuer_name(x, X509_get_subject_name(x)) == 1 &&
             X509_set_pubkey(x, key) == 1 && X509_sign(x, key, EVP_sha256()) > 0 &&
             SSL_CTX_use_certificate(ctx, x) == 1 && SSL_CTX_use_PrivateKey(ctx, key) == 1;
    X509_free(x);
    EVP_PKEY_free(key);
    if (!ok) {
        SSL_CTX_free(ctx);
        return NULL;
    }
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    return ctx;
}

#endif
