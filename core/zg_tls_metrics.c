/* zg_tls_metrics.c - TLS handshake metrics and the bound on handshakes in
 * progress (see zg_tls_metrics.h): series registered by the master before
 * it forks, counted by each worker into its own row of the shared metrics,
 * so that a status page shows the sums over every worker. */
#define _GNU_SOURCE
#include "zg_tls_metrics.h"
#include "zg_conn.h"
#include "zg_log.h"
#include "zg_metrics_shm.h"
#include "zg_worker.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdio.h>

#define VERSIONS 4 /* TLSv1 .. TLSv1.3 */

static const char *const failure_names[ZG_TLS_FAIL_COUNT] = {
    "protocol", "version", "no_shared_cipher", "certificate", "alpn", "timeout", "eof", "other"};
static const char *const version_names[VERSIONS] = {"TLSv1", "TLSv1.1", "TLSv1.2", "TLSv1.3"};

/* Value indexes in a row (-1: not registered, nothing counted). */
static int64_t m_full = -1, m_resumed = -1, m_refused = -1, m_in_progress = -1;
static int64_t m_failures[ZG_TLS_FAIL_COUNT] = {-1, -1, -1, -1, -1, -1, -1, -1};
static int64_t m_versions[VERSIONS] = {-1, -1, -1, -1};

/* The worker's own counts (one thread per worker process). */
static uint64_t in_progress, refused_unlogged, refused_logged_ms;

static int64_t add(int type, const char *name, const char *labels, const char *help)
{
    char err[256];
    zerg_metric_def d = {
        .struct_size = sizeof(d), .type = type, .name = name, .labels = labels, .help = help};
    return zg_mshm_add(&d, -1, err, sizeof(err));
}

void zg_tls_metrics_register(void)
{
    static const char hs_help[] = "TLS handshakes completed: full, or resumed from a ticket.";
    char labels[64];
    m_full = add(ZERG_METRIC_COUNTER, "zerg_tls_handshakes_total", "type=\"full\"", hs_help);
    m_resumed = add(ZERG_METRIC_COUNTER, "zerg_tls_handshakes_total", "type=\"resumed\"", hs_help);
    for (int i = 0; i < ZG_TLS_FAIL_COUNT; i++) {
        snprintf(labels, sizeof(labels), "reason=\"%s\"", failure_names[i]);
        m_failures[i] = add(ZERG_METRIC_COUNTER, "zerg_tls_handshake_failures_total", labels,
                            "TLS handshakes that failed, by reason.");
    }
    for (int i = 0; i < VERSIONS; i++) {
        snprintf(labels, sizeof(labels), "version=\"%s\"", version_names[i]);
        m_versions[i] = add(ZERG_METRIC_COUNTER, "zerg_tls_connections_total", labels,
                            "TLS connections established, by protocol version.");
    }
    m_refused = add(ZERG_METRIC_COUNTER, "zerg_tls_handshakes_refused_total", NULL,
                    "TLS connections closed at once: max_handshakes were in progress.");
    m_in_progress = add(ZERG_METRIC_GAUGE, "zerg_tls_handshakes_in_progress", NULL,
                        "TLS connections accepted whose handshake is not done yet.");
}

static void count(int64_t v)
{
    if (v >= 0)
        zg_mshm_row()[v]++;
}

static void set_in_progress(uint64_t n)
{
    in_progress = n;
    if (m_in_progress >= 0)
        __atomic_store_n(&zg_mshm_row()[m_in_progress], n, __ATOMIC_RELAXED);
}

int zg_tls_hs_admit(zg_conn *c)
{
    zg_worker *w = c->w;
    if (in_progress < (uint64_t)w->cfg->max_handshakes || w->cfg->max_handshakes <= 0)
        return 1; /* 0: a configuration not loaded from a file (tests) */
    count(m_refused);
    if (refused_logged_ms && w->now_ms - refused_logged_ms < 1000) {
        refused_unlogged++;
        return 0;
    }
    zg_log_warn("%s: max_handshakes (%lld) in progress: closing a new TLS connection (%llu more "
                "since the last line)",
                c->listener->srv->addrs[c->listener->addr_index].text,
                (long long)w->cfg->max_handshakes, (unsigned long long)refused_unlogged);
    refused_unlogged = 0;
    refused_logged_ms = w->now_ms ? w->now_ms : 1;
    return 0;
}

void zg_tls_hs_enter(void)
{
    set_in_progress(in_progress + 1);
}

void zg_tls_hs_abandoned(void)
{
    set_in_progress(in_progress ? in_progress - 1 : 0);
}

void zg_tls_hs_done(SSL *ssl)
{
    zg_tls_hs_abandoned();
    count(SSL_session_reused(ssl) == 1 ? m_resumed : m_full);
    int v = SSL_version(ssl) - TLS1_VERSION;
    if (v >= 0 && v < VERSIONS)
        count(m_versions[v]);
}

void zg_tls_hs_failed(enum zg_tls_failure why)
{
    count(m_failures[why < ZG_TLS_FAIL_COUNT ? why : ZG_TLS_FAIL_OTHER]);
}

enum zg_tls_failure zg_tls_failure_of(int e, unsigned long code)
{
    if (e == SSL_ERROR_SYSCALL && !code)
        return ZG_TLS_FAIL_EOF;
    if (e != SSL_ERROR_SSL || ERR_GET_LIB(code) != ERR_LIB_SSL)
        return ZG_TLS_FAIL_OTHER;
    switch (ERR_GET_REASON(code)) {
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_VERSION_TOO_LOW:
    case SSL_R_VERSION_TOO_HIGH:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
        return ZG_TLS_FAIL_VERSION;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_NO_SHARED_GROUPS:
    case SSL_R_NO_SHARED_SIGNATURE_ALGORITHMS:
    case SSL_R_NO_SUITABLE_SIGNATURE_ALGORITHM:
        return ZG_TLS_FAIL_NO_SHARED_CIPHER;
    case SSL_R_CERTIFICATE_VERIFY_FAILED:
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_BAD_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
    case SSL_R_SSLV3_ALERT_CERTIFICATE_UNKNOWN:
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        return ZG_TLS_FAIL_CERTIFICATE;
    case SSL_R_NO_APPLICATION_PROTOCOL:
        return ZG_TLS_FAIL_ALPN;
    default:
        return ZG_TLS_FAIL_PROTOCOL;
    }
}
