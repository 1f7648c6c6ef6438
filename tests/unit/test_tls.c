/* tests/unit/test_tls.c - Criterion tests of a connection's TLS record layer
 * (zg_tls.c): an OpenSSL client over memory BIOs talks to a core connection
 * fed by fake receive completions; the module meets it after the
 * handshake, reads plaintext, is written to in records, holds decrypted
 * input packed while paused, and a close sends close_notify. */
#include <criterion/criterion.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <string.h>

#include "conn_ring.h"
#include "tls_cert.h"
#include "zg_accept.h"
#include "zg_module.h"
#include "zg_tls_conf.h"
#include "zg_worker.h"

#define NBUFS 64

static zg_worker w;
static zg_config cfg;
static zg_server srv;
static zg_addr addr = {.text = "test:443"};
static zg_listener lis;
static zg_tls_conf tc;
static int peer_fd = -1;
static zg_conn *c;
static unsigned next_bid;
static SSL *cli;
static BIO *cli_in, *cli_out; /* what the client reads, what it wrote */

static struct {
    int opens;
    char seen[1 << 16];
    size_t nseen;
    int pause;
} t;

static void t_on_open(zerg_conn *cc)
{
    (void)cc;
    t.opens++;
}

static size_t t_on_data(zerg_conn *cc, const uint8_t *data, size_t len)
{
    cr_assert_leq(t.nseen + len, sizeof(t.seen));
    memcpy(t.seen + t.nseen, data, len);
    t.nseen += len;
    if (t.pause)
        zg_api.pause_read(cc);
    return len;
}

static const zerg_module tmod = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "t",
    .on_open = t_on_open,
    .on_data = t_on_data,
};

static void setup(void)
{
    memset(&t, 0, sizeof(t));
    conn_ring_init(&w, &cfg, NBUFS, 16384);
    tc.ctx = tls_test_ctx();
    cr_assert_not_null(tc.ctx);
    tc.handshake_timeout = 1000;
    srv.tls = &tc;
    srv.addrs = &addr;
    lis.srv = &srv;
    c = conn_ring_conn(&w, &tmod, &peer_fd);
    c->srv = &srv;
    c->listener = &lis;
    cr_assert_eq(zg_tls_start(c), 0);
    next_bid = 0;

    SSL_CTX *cctx = SSL_CTX_new(TLS_client_method());
    cr_assert_not_null(cctx);
    cli = SSL_new(cctx);
    SSL_CTX_free(cctx); /* the SSL keeps a reference */
    cli_in = BIO_new(BIO_s_mem());
    cli_out = BIO_new(BIO_s_mem());
    SSL_set_bio(cli, cli_in, cli_out);
    SSL_set_connect_state(cli);
}

static void teardown(void)
{
    SSL_free(cli);
    cli = NULL;
    if (c) {
        zg_conn_teardown(c, 0);
        c->inflight = 0; /* what was prepared here was never submitted */
        c->flags &= ~(ZG_C_RECV_ARMED | ZG_C_RECV_CANCEL | ZG_C_SENDING);
        zg_conn_settle(c);
        zg_conn_reap_all(&w);
        c = NULL;
    }
    SSL_CTX_free(tc.ctx);
    conn_ring_destroy(&w, peer_fd);
}

/* A multishot receive's completion with n bytes in a ring buffer. */
static void receive(const void *data, size_t n)
{
    struct io_uring_cqe cqe = {0};
    cqe.user_data = ZG_UD(ZG_OP_RECV, c->idx, c->gen);
    cqe.res = (int)n;
    cqe.flags = IORING_CQE_F_MORE;
    if (n) {
        cr_assert_lt(next_bid, NBUFS, "out of ring buffers");
        cr_assert_leq(n, 16384);
        unsigned bid = next_bid++;
        memcpy(w.bufs.ring_chunks[bid].base, data, n);
        cqe.flags |= IORING_CQE_F_BUFFER | (bid << IORING_CQE_BUFFER_SHIFT);
    }
    zg_conn_complete(&w, &cqe);
}

/* What the client wrote goes to the server, 16 KiB a receive. */
static void client_to_server(void)
{
    char buf[16384];
    int n;
    while ((n = BIO_read(cli_out, buf, sizeof(buf))) > 0)
        receive(buf, (size_t)n);
}

/* The ciphertext the server queued goes to the client (as if sent). */
static size_t server_to_client(void)
{
    if (c->tls && zg_tls_flush(c) < 0)
        return 0;
    size_t moved = 0;
    while (c->tls && c->tls->wire.head) {
        zg_seg *s = c->tls->wire.head;
        size_t n = s->len;
        cr_assert_eq(BIO_write(cli_in, s->ptr, (int)n), (int)n);
        zg_outq_consume(&w.bufs, &c->tls->wire, n, NULL);
        moved += n;
        zg_tls_flush(c); /* more of the module's output, once room is made */
    }
    return moved;
}

static void handshake(void)
{
    for (int i = 0; i < 10 && SSL_do_handshake(cli) != 1; i++) {
        client_to_server();
        server_to_client();
    }
    cr_assert(SSL_is_init_finished(cli), "the client's handshake did not finish");
    client_to_server(); /* its Finished */
    server_to_client(); /* tickets */
    cr_assert_eq(t.opens, 1, "the module meets the connection after the handshake");
    cr_assert_eq(c->flags & ZG_C_HANDSHAKE, 0u);
}

static void client_send(const char *s)
{
    size_t n = 0;
    cr_assert_eq(SSL_write_ex(cli, s, strlen(s), &n), 1);
    client_to_server();
}

TestSuite(tls, .init = setup, .fini = teardown);

Test(tls, the_module_meets_it_after_the_handshake_and_reads_plaintext)
{
    cr_assert_eq(t.opens, 0);
    handshake();
    client_send("hello ");
    client_send("world");
    cr_assert_eq(t.nseen, 11);
    cr_assert_eq(memcmp(t.seen, "hello world", 11), 0);
}

Test(tls, writes_are_encrypted_and_gathered)
{
    handshake();
    char big[100000];
    memset(big, 'x', sizeof(big));
    cr_assert_eq(zg_api.write(c, "head ", 5), 0);
    cr_assert_eq(zg_api.write_ext(c, big, sizeof(big), NULL, NULL), 0);
    cr_assert_eq(zg_conn_unsent(c), sizeof(big) + 5);
    cr_assert_gt(server_to_client(), sizeof(big));
    cr_assert_eq(zg_conn_unsent(c), 0u, "everything encrypted and sent");
    static char got[sizeof(big) + 5];
    size_t total = 0, n = 0;
    while (total < sizeof(got) && SSL_read_ex(cli, got + total, sizeof(got) - total, &n) == 1)
        total += n;
    cr_assert_eq(total, sizeof(got));
    cr_assert_eq(memcmp(got, "head x", 6), 0, "the small write shares the first record");
    cr_assert_eq(got[sizeof(got) - 1], 'x');
}

Test(tls, decrypted_input_is_held_packed_while_paused)
{
    handshake();
    t.pause = 1;
    client_send("a"); /* the module takes it and pauses */
    t.pause = 0;
    for (int i = 0; i < 20; i++)
        client_send("b"); /* twenty records of one byte each */
    cr_assert_eq(t.nseen, 1);
    cr_assert_eq(c->in_held.bytes, 20u);
    cr_assert_eq(c->in_held.head, c->in_held.tail, "held in one chunk, not one per record");
    zg_api.resume_read(c);
    cr_assert_eq(t.nseen, 21);
    cr_assert_eq(c->in_held.bytes, 0u);
}

Test(tls, garbage_closes_it_before_the_module_sees_it)
{
    receive("GET / HTTP/1.1\r\n\r\n", 18);
    cr_assert(c->flags & (ZG_C_CLOSING | ZG_C_CLOSE_WANT), "closing");
    cr_assert_eq(t.opens, 0);
    cr_assert(c->tls->failed);
}

Test(tls, a_close_sends_close_notify)
{
    handshake();
    zg_api.close(c);
    server_to_client();
    char b[8];
    size_t n;
    cr_assert_eq(SSL_read_ex(cli, b, sizeof(b), &n), 0);
    cr_assert_eq(SSL_get_error(cli, 0), SSL_ERROR_ZERO_RETURN, "a close_notify came");
    ERR_clear_error();
}

Test(tls, a_close_notify_is_the_end_of_the_stream)
{
    handshake();
    client_send("x");
    cr_assert_eq(SSL_shutdown(cli), 0);
    client_to_server();
    cr_assert(c->flags & ZG_C_EOF);
    cr_assert(c->flags & (ZG_C_CLOSE_WANT | ZG_C_CLOSING), "on_eof's default: close");
    cr_assert_eq(t.nseen, 1);
}

/* The sweep of idle connections' record buffers runs on the worker's
 * timers: ms later, whatever is due. */
static void later(uint64_t ms)
{
    w.now_ms += ms;
    zg_timers_run(&w.timers, w.now_ms);
}

Test(tls, a_busy_connection_keeps_its_buffers_and_record_size)
{
    handshake();
    static char big[100000];
    cr_assert_eq(zg_api.write(c, big, sizeof(big)), 0);
    server_to_client();
    cr_assert_gt(c->tls->plain_out, 64u * 1024, "full records by now");
    later(500);
    client_send("x"); /* busy again before the sweep's second was up */
    later(700);
    cr_assert_gt(c->tls->plain_out, 64u * 1024, "still busy: full records");
    cr_assert_eq(w.timers.count, 1u, "the sweep still watches it");
}

Test(tls, a_quiet_connection_gives_its_buffers_back)
{
    handshake();
    char b[32];
    size_t n = 0;
    cr_assert_eq(zg_api.write(c, "first", 5), 0);
    server_to_client();
    cr_assert_eq(SSL_read_ex(cli, b, sizeof(b), &n), 1);
    cr_assert_eq(c->tls->plain_out, 5u);
    cr_assert_eq(w.timers.count, 1u, "the sweep of busy connections is armed");
    later(2100);
    cr_assert_eq(c->tls->plain_out, 0u, "after a pause: small records first again");
    cr_assert_eq(w.timers.count, 0u, "none busy: the sweep stopped");
    client_send("after the pause"); /* buffers come back as needed */
    cr_assert_eq(zg_api.write(c, "answer", 6), 0);
    server_to_client();
    cr_assert_eq(SSL_read_ex(cli, b, sizeof(b), &n), 1);
    cr_assert_eq(n, 6u);
    cr_assert_eq(memcmp(b, "answer", 6), 0);
    cr_assert_eq(w.timers.count, 1u, "busy again");
}

Test(tls, an_error_left_in_the_queue_by_others_does_not_fail_it)
{
    handshake();
    size_t n = 0;
    cr_assert_eq(SSL_write_ex(cli, "hello", 5, &n), 1);
    char rec[256];
    int len = BIO_read(cli_out, rec, sizeof(rec));
    cr_assert_gt(len, 8);
    ERR_raise(ERR_LIB_SSL, SSL_R_BAD_LENGTH); /* as a module's failed OpenSSL call may leave */
    receive(rec, 3); /* part of a record: OpenSSL wants more, which is no error */
    cr_assert_eq(c->flags & (ZG_C_CLOSING | ZG_C_CLOSE_WANT), 0u, "still open");
    receive(rec + 3, (size_t)len - 3);
    cr_assert_eq(t.nseen, 5);
    cr_assert_eq(memcmp(t.seen, "hello", 5), 0);
}
