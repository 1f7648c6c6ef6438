/* tests/unit/test_tls_ticket.c - Criterion tests of the shared session
 * ticket keys (zg_tls_ticket.c): an OpenSSL client resumes on another
 * context (another load) with the same keys, by the previous period's key
 * (and gets a new ticket), not two periods on, and not at all with tickets
 * off; it resumes where client certificates are verified too. The clock
 * the keys rotate by is the test's. */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

#include "tls_cert.h"
#include "zg_tls_ticket.h"

#define PERIOD 60 /* seconds */

static uint64_t now;
static SSL_CTX *client_ctx;

static uint64_t test_clock(void)
{
    return now;
}

static SSL_CTX *server_ctx(int tickets)
{
    SSL_CTX *ctx = tls_test_ctx();
    cr_assert_not_null(ctx);
    SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF); /* as every zerg context */
    cr_assert_eq(zg_tls_ticket_setup(ctx, tickets, PERIOD * 1000), 0);
    return ctx;
}

static void setup(void)
{
    now = 1000 * PERIOD + PERIOD / 2;
    zg_tls_ticket_clock(test_clock);
    client_ctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(client_ctx);
}

static void teardown(void)
{
    SSL_CTX_free(client_ctx);
    zg_tls_ticket_clock(NULL);
}

/* A handshake of version (resuming sess when not NULL) on a BIO pair; the
 * client's session afterwards (its tickets read), and whether it resumed. */
static SSL_SESSION *handshake(SSL_CTX *sctx, int version, SSL_SESSION *sess, int *reused)
{
    SSL *cli = SSL_new(client_ctx), *srv = SSL_new(sctx);
    BIO *a, *b;
    cr_assert(cli && srv && BIO_new_bio_pair(&a, 0, &b, 0) == 1);
    SSL_set_bio(cli, a, a);
    SSL_set_bio(srv, b, b);
    SSL_set_connect_state(cli);
    SSL_set_accept_state(srv);
    cr_assert_eq(SSL_set_min_proto_version(cli, version), 1);
    cr_assert_eq(SSL_set_max_proto_version(cli, version), 1);
    if (sess)
        cr_assert_eq(SSL_set_session(cli, sess), 1);
    int done_c = 0, done_s = 0;
    for (int i = 0; i < 20 && !(done_c && done_s); i++) {
        done_c = done_c || SSL_do_handshake(cli) == 1;
        done_s = done_s || SSL_do_handshake(srv) == 1;
    }
    cr_assert(done_c && done_s, "handshake: %s", ERR_reason_error_string(ERR_get_error()));
    char byte;
    cr_assert_leq(SSL_read(cli, &byte, 1), 0); /* TLS 1.3: the tickets come after */
    *reused = SSL_session_reused(cli) == 1;
    SSL_SESSION *got = SSL_get1_session(cli);
    SSL_shutdown(cli); /* freed without it, the session would not resume */
    SSL_free(cli);
    SSL_free(srv);
    ERR_clear_error();
    return got;
}

static int has_ticket(const SSL_SESSION *s)
{
    return SSL_SESSION_has_ticket(s) == 1;
}

static void ticket_of(const SSL_SESSION *s, unsigned char *out, size_t *len)
{
    const unsigned char *t;
    SSL_SESSION_get0_ticket(s, &t, len);
    cr_assert_leq(*len, 1024);
    memcpy(out, t, *len);
}

TestSuite(tls_ticket, .init = setup, .fini = teardown);

Test(tls_ticket, another_context_resumes_with_the_same_keys)
{
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    SSL_CTX *first = server_ctx(1), *reloaded = server_ctx(1);
    for (size_t i = 0; i < 2; i++) {
        int reused;
        SSL_SESSION *s = handshake(first, versions[i], NULL, &reused);
        cr_assert(!reused && has_ticket(s));
        SSL_SESSION_free(handshake(reloaded, versions[i], s, &reused));
        cr_assert(reused, "version %x", versions[i]);
        SSL_SESSION_free(s);
    }
    SSL_CTX_free(first);
    SSL_CTX_free(reloaded);
}

Test(tls_ticket, the_previous_key_decrypts_and_renews_the_ticket)
{
    SSL_CTX *ctx = server_ctx(1);
    int reused;
    SSL_SESSION *s = handshake(ctx, TLS1_2_VERSION, NULL, &reused);
    unsigned char old[1024], renewed[1024];
    size_t old_len, renewed_len;
    ticket_of(s, old, &old_len);
    now += PERIOD; /* the next period: a new key seals, the old one still opens */
    SSL_SESSION *again = handshake(ctx, TLS1_2_VERSION, s, &reused);
    cr_assert(reused);
    ticket_of(again, renewed, &renewed_len);
    cr_assert(renewed_len != old_len || memcmp(old, renewed, old_len) != 0, "not renewed");
    SSL_SESSION_free(s);
    SSL_SESSION_free(again);
    SSL_CTX_free(ctx);
}

Test(tls_ticket, two_periods_on_no_key_opens_it)
{
    SSL_CTX *ctx = server_ctx(1);
    int reused;
    SSL_SESSION *s = handshake(ctx, TLS1_3_VERSION, NULL, &reused);
    now += 2 * PERIOD;
    SSL_SESSION_free(handshake(ctx, TLS1_3_VERSION, s, &reused));
    cr_assert(!reused);
    SSL_SESSION_free(s);
    SSL_CTX_free(ctx);
}

Test(tls_ticket, tickets_off_resume_nothing)
{
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    SSL_CTX *ctx = server_ctx(0);
    for (size_t i = 0; i < 2; i++) {
        int reused;
        SSL_SESSION *s = handshake(ctx, versions[i], NULL, &reused);
        cr_assert(!has_ticket(s));
        SSL_SESSION_free(handshake(ctx, versions[i], s, &reused));
        cr_assert(!reused);
        SSL_SESSION_free(s);
    }
    SSL_CTX_free(ctx);
}

Test(tls_ticket, a_block_that_verifies_clients_resumes_too)
{
    static const int versions[] = {TLS1_2_VERSION, TLS1_3_VERSION};
    SSL_CTX *ctx = server_ctx(1);
    SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER, NULL); /* a client without a certificate passes */
    for (size_t i = 0; i < 2; i++) {
        int reused;
        SSL_SESSION *s = handshake(ctx, versions[i], NULL, &reused);
        SSL_SESSION_free(handshake(ctx, versions[i], s, &reused));
        cr_assert(reused, "version %x", versions[i]);
        SSL_SESSION_free(s);
    }
    SSL_CTX_free(ctx);
}
