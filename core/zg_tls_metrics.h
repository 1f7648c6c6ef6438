/* zg_tls_metrics.h - what the TLS handshakes of a worker count in the
 * shared metrics (full and resumed, failures by reason, connections by
 * protocol version), and the bound on connections in handshake at once
 * (max_handshakes), so that a flood of them cannot exhaust memory. */
#ifndef ZG_TLS_METRICS_H
#define ZG_TLS_METRICS_H

typedef struct zerg_conn zg_conn;
struct ssl_st;

/* Why a handshake failed: the values of the reason label. */
enum zg_tls_failure {
    ZG_TLS_FAIL_PROTOCOL,         /* not TLS, or TLS broken */
    ZG_TLS_FAIL_VERSION,          /* no protocol version in common */
    ZG_TLS_FAIL_NO_SHARED_CIPHER, /* nor cipher, group or signature algorithm */
    ZG_TLS_FAIL_CERTIFICATE,      /* a certificate refused, by either side */
    ZG_TLS_FAIL_ALPN,             /* no application protocol in common */
    ZG_TLS_FAIL_TIMEOUT,          /* handshake_timeout */
    ZG_TLS_FAIL_EOF,              /* the client closed */
    ZG_TLS_FAIL_OTHER,
    ZG_TLS_FAIL_COUNT
};

/* Master: the series in the shared registry (zg_metrics_register_core). */
void zg_tls_metrics_register(void);

/* A new TLS connection of c's worker: 1 when it may start its handshake,
 * 0 when max_handshakes are in progress (counted, logged at most once a
 * second: the caller closes c). */
int zg_tls_hs_admit(zg_conn *c);
/* Its handshake started (after admit), ended well (ssl is established),
 * or its connection closed before it did. */
void zg_tls_hs_enter(void);
void zg_tls_hs_done(struct ssl_st *ssl);
void zg_tls_hs_abandoned(void);
/* A handshake failed: why, from SSL_get_error's e and OpenSSL's error
 * code (before the error queue is cleared). */
enum zg_tls_failure zg_tls_failure_of(int e, unsigned long code);
void zg_tls_hs_failed(enum zg_tls_failure why);

#endif
