/* tests/fuzz/fuzz_tls.c - fuzz target for the TLS intake (core/zg_tls.c):
 * arbitrary bytes as a client's ciphertext, in pieces as receives deliver
 * them, through the core's glue into OpenSSL's server side, then an end of
 * stream or the handshake timeout. Besides memory safety: a connection
 * the record layer refused is closing, and the module never met one whose
 * handshake did not complete. */
#include <string.h>

#include "conn_env.h"
#include "fuzz.h"
#include "tls_cert.h"
#include "zg_accept.h"
#include "zg_log.h"
#include "zg_module.h"
#include "zg_tls_conf.h"
#include "zg_worker.h"

static zg_worker w;
static zg_config cfg;
static zg_server srv;
static zg_addr addr = {.text = "fuzz:443"};
static zg_listener lis;
static zg_tls_conf tc;
static int opened;

static void f_on_open(zerg_conn *c)
{
    (void)c;
    opened = 1;
}

static size_t f_on_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    zg_api.write(c, data, len); /* echoed: encrypted on the next flush */
    return len;
}

static const zerg_module fuzz_mod = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "fuzz",
    .on_open = f_on_open,
    .on_data = f_on_data,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    zg_log_level = ZERG_LOG_ERROR; /* a refused stream logs at info */
    zg_pool_init(&w.bufs.chunk_pool, sizeof(zg_chunk) + ZG_POOL_CHUNK_BYTES, 0);
    conn_env_init(&w, &cfg);
    tc.ctx = tls_test_ctx();
    TEST_CHECK(tc.ctx != NULL, "no TLS context");
    tc.handshake_timeout = 1000;
    srv.tls = &tc;
    srv.addrs = &addr;
    lis.srv = &srv;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint32_t closing = ZG_C_CLOSING | ZG_C_CLOSE_WANT;
    opened = 0;
    zg_conn *c = zg_conn_new(&w, &fuzz_mod, NULL, -1, 0); /* no socket: nothing is sent */
    TEST_CHECK(c != NULL, "no connection");
    c->srv = &srv;
    c->listener = &lis;
    TEST_CHECK(zg_tls_start(c) == 0, "zg_tls_start failed");
    unsigned seed = (unsigned)size;
    for (size_t off = 0; off < size && !(c->flags & closing);) {
        size_t n = fuzz_piece(&seed, size - off);
        zg_tls_input(c, data + off, n);
        off += n;
        if (c->tls && !(c->flags & ZG_C_CLOSING))
            zg_tls_flush(c); /* as the flush turn would */
        TEST_CHECK(!c->tls->failed || (c->flags & closing), "refused but not closing");
    }
    TEST_CHECK(!opened || !(c->flags & ZG_C_HANDSHAKE), "the module met a handshake");
    if (!(c->flags & closing)) {
        if (c->flags & ZG_C_HANDSHAKE)
            zg_tls_handshake_timeout(c);
        else if (!zg_tls_eof(c))
            zg_conn_eof(c);
    }
    zg_conn_teardown(c, 0);
    zg_conn_reap_all(&w);
    return 0;
}
