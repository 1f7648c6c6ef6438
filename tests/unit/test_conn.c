/* tests/unit/test_conn.c - Criterion tests of a connection's input path
 * (zg_conn.c): what on_data leaves is kept by the core and presented again
 * when reading resumes, with new bytes or alone, once per resume; a FIN
 * waits behind it; resume_read inside on_data does not nest a delivery. */
#include <criterion/criterion.h>
#include <string.h>

#include "conn_ring.h"
#include "zg_module.h"
#include "zg_worker.h"

static zg_worker w;
static zg_config cfg;
static int peer_fd = -1;
static zg_conn *c;
static unsigned next_bid;

/* The test module records each presentation; each test says how much its
 * on_data takes and whether it pauses. */
static struct {
    char seen[10][64];
    int nseen;
    size_t take; /* bytes on_data consumes (at most what it got) */
    size_t need; /* ... once it got this many, else none */
    int pause;   /* on_data pauses reading */
    int bounce;  /* on_data pauses and resumes inside itself */
    int depth, deepest;
    int eofs, eof_after; /* on_eof calls, and presentations before the first */
} t;

static size_t t_on_data(zerg_conn *cc, const uint8_t *data, size_t len)
{
    cr_assert_lt(t.nseen, 10, "presented over and over");
    t.depth++;
    if (t.depth > t.deepest)
        t.deepest = t.depth;
    snprintf(t.seen[t.nseen++], sizeof(t.seen[0]), "%.*s", (int)len, (const char *)data);
    if (t.pause)
        zg_api.pause_read(cc);
    if (t.bounce) {
        zg_api.pause_read(cc);
        zg_api.resume_read(cc);
    }
    t.depth--;
    if (len < t.need)
        return 0;
    return t.take < len ? t.take : len;
}

static void t_on_eof(zerg_conn *cc)
{
    if (!t.eofs++)
        t.eof_after = t.nseen;
}

static const zerg_module tmod = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "t",
    .on_data = t_on_data,
    .on_eof = t_on_eof,
};

static void setup(void)
{
    memset(&t, 0, sizeof(t));
    conn_ring_init(&w, &cfg, 8, 4096);
    c = conn_ring_conn(&w, &tmod, &peer_fd);
    c->flags |= ZG_C_OPEN;
    next_bid = 0;
}

static void teardown(void)
{
    if (!c)
        return;
    zg_conn_teardown(c, 0);
    c->inflight = 0; /* the recv prepared here was never submitted */
    c->flags &= ~(ZG_C_RECV_ARMED | ZG_C_RECV_CANCEL);
    zg_conn_settle(c);
    zg_conn_reap_all(&w);
    c = NULL;
    conn_ring_destroy(&w, peer_fd);
}

/* A multishot receive's completion with s in a ring buffer (res 0: FIN). */
static void receive(const char *s)
{
    struct io_uring_cqe cqe = {0};
    size_t n = strlen(s);
    cqe.user_data = ZG_UD(ZG_OP_RECV, c->idx, c->gen);
    cqe.res = (int)n;
    cqe.flags = IORING_CQE_F_MORE;
    if (n) {
        cr_assert_lt(next_bid, 8u, "out of ring buffers");
        unsigned bid = next_bid++;
        memcpy(w.bufs.ring_chunks[bid].base, s, n);
        cqe.flags |= IORING_CQE_F_BUFFER | (bid << IORING_CQE_BUFFER_SHIFT);
    }
    zg_conn_complete(&w, &cqe);
}

TestSuite(conn_input, .init = setup, .fini = teardown);

Test(conn_input, the_rest_alone_comes_again_on_resume)
{
    t.pause = 1; /* busy: takes nothing now */
    receive("GET /b");
    cr_assert_eq(t.nseen, 1);
    t.pause = 0;
    t.take = 4;
    zg_api.resume_read(c);
    cr_assert_eq(t.nseen, 2, "the rest is presented on resume, without new bytes");
    cr_assert_str_eq(t.seen[1], "GET /b");
    receive("ig");
    cr_assert_eq(t.nseen, 3);
    cr_assert_str_eq(t.seen[2], "/big", "what it left, joined with the next bytes");
}

Test(conn_input, an_unchanged_rest_is_not_presented_in_a_loop)
{
    t.pause = 1;
    receive("abc");
    t.pause = 0; /* takes nothing, and does not pause: waits for more */
    zg_api.resume_read(c);
    cr_assert_eq(t.nseen, 2, "once per resume");
    zg_api.resume_read(c); /* not paused: nothing to do */
    cr_assert_eq(t.nseen, 2);
    receive("d");
    cr_assert_eq(t.nseen, 3);
    cr_assert_str_eq(t.seen[2], "abcd");
}

Test(conn_input, held_bytes_join_a_rest_that_needs_more)
{
    t.pause = 1;
    t.take = 1;
    receive("abc");
    receive("de"); /* paused: held */
    cr_assert_eq(t.nseen, 1);
    t.pause = 0;
    t.take = 100;
    t.need = 4; /* "bc" alone is not enough */
    zg_api.resume_read(c);
    cr_assert_eq(t.nseen, 3, "the rest alone, then joined with the held bytes");
    cr_assert_str_eq(t.seen[1], "bc");
    cr_assert_str_eq(t.seen[2], "bcde");
    cr_assert_null(c->carry);
}

Test(conn_input, held_bytes_wait_while_the_rest_keeps_the_module_busy)
{
    c->in_limit = 8;
    t.pause = 1; /* one request at a time, then busy */
    t.take = 1;
    receive("abcdef");
    receive("ghijkl"); /* held */
    for (int i = 0; i < 5; i++)
        zg_api.resume_read(c);
    cr_assert_eq(c->flags & ZG_C_CLOSING, 0, "rest and held bytes joined past the input limit");
    cr_assert_eq(t.nseen, 6);
    cr_assert_str_eq(t.seen[1], "bcdef", "the rest alone first");
    cr_assert_str_eq(t.seen[5], "f");
    cr_assert_eq(c->in_held.bytes, 6, "the held bytes wait for it");
    zg_api.resume_read(c);
    cr_assert_str_eq(t.seen[6], "ghijkl");
}

Test(conn_input, a_fin_waits_behind_the_rest)
{
    t.pause = 1;
    receive("abc");
    receive(""); /* FIN while paused */
    cr_assert_eq(t.eofs, 0);
    t.pause = 0;
    t.take = 100;
    zg_api.resume_read(c);
    cr_assert_eq(t.nseen, 2);
    cr_assert_eq(t.eofs, 1);
    cr_assert_eq(t.eof_after, 2, "the rest is presented before the FIN");
}

Test(conn_input, resume_inside_on_data_does_not_nest)
{
    zg_api.pause_read(c);
    receive("a");
    receive("b");
    t.bounce = 1;
    t.take = 1;
    zg_api.resume_read(c);
    cr_assert_eq(t.nseen, 2);
    cr_assert_str_eq(t.seen[0], "a");
    cr_assert_str_eq(t.seen[1], "b");
    cr_assert_eq(t.deepest, 1, "on_data was called from inside on_data");
}
