/* tests/unit/test_buffers.c - Criterion tests of the object pools, the output
 * queue (copies, reserve/commit, external and held segments, partial sends,
 * zero-copy retirement) and the provided buffer ring with its chunk refs. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zg_bufring.h"
#include "zg_outq.h"
#include "zg_pool.h"

/* ---- zg_pool ---- */

Test(pool, get_put_and_at)
{
    zg_pool p;
    zg_pool_init(&p, 24, 0);
    cr_assert_eq(p.obj_size, 32, "rounded up to 16");
    cr_assert_eq(p.nslabs, 0, "nothing allocated before the first get");
    uint32_t i0, i1;
    char *a = zg_pool_get(&p, &i0);
    char *b = zg_pool_get(&p, &i1);
    cr_assert_not_null(a);
    cr_assert_not_null(b);
    cr_assert_neq(a, b);
    cr_assert_neq(i0, i1);
    cr_assert_eq(zg_pool_at(&p, i0), a);
    cr_assert_eq(zg_pool_at(&p, i1), b);
    cr_assert_eq(p.in_use, 2);
    cr_assert_eq(p.nslabs, 1);
    zg_pool_put(&p, b, i1);
    cr_assert_eq(p.in_use, 1);
    uint32_t i2;
    char *c = zg_pool_get(&p, &i2);
    cr_assert_eq(c, b, "the last object put is the next one handed out");
    cr_assert_eq(i2, i1, "with its index");
    cr_assert_null(zg_pool_at(&p, 1u << ZG_POOL_CHUNK_SHIFT), "no second slab yet");
    zg_pool_put(&p, a, i0);
    zg_pool_put(&p, c, i2);
    cr_assert_eq(p.in_use, 0);
    zg_pool_destroy(&p);
}

Test(pool, index_stability_and_growth)
{
    enum { N = 1000 };
    const uint32_t per = 1u << ZG_POOL_CHUNK_SHIFT;
    zg_pool p;
    zg_pool_init(&p, 40, 0);
    static char *obj[N];
    static uint32_t idx[N];
    for (uint32_t i = 0; i < N; i++) {
        obj[i] = zg_pool_get(&p, &idx[i]);
        cr_assert_not_null(obj[i]);
        cr_assert_lt(idx[i], N, "indices are dense");
        memset(obj[i] + 16, (int)(i & 0xff), 24); /* past the free-list words */
    }
    cr_assert_eq(p.nslabs, (N + per - 1) / per, "one slab per 256 objects");
    cr_assert_eq(p.in_use, N);
    for (uint32_t i = 0; i < N; i++) {
        cr_assert_eq(zg_pool_at(&p, idx[i]), obj[i], "at(%u) moved", idx[i]);
        for (int j = 16; j < 40; j++)
            cr_assert_eq((unsigned char)obj[i][j], i & 0xff, "object %u overwritten", i);
    }
    /* objects never move when slabs are added: put half back, get them again */
    for (uint32_t i = 0; i < N; i += 2)
        zg_pool_put(&p, obj[i], idx[i]);
    cr_assert_eq(p.in_use, N / 2);
    for (uint32_t i = 0; i < N; i += 2) {
        uint32_t k;
        char *o = zg_pool_get(&p, &k);
        cr_assert_eq(zg_pool_at(&p, k), o);
    }
    uint32_t slabs = p.nslabs;
    cr_assert_eq(p.in_use, N);
    cr_assert_eq(zg_pool_get(&p, NULL) != NULL, 1, "grows past its size");
    cr_assert_eq(p.nslabs, slabs + ((N % per) == 0), "a slab only when all are in use");
    zg_pool_destroy(&p);
}

Test(pool, no_growth_on_get_put_cycles)
{
    zg_pool p;
    zg_pool_init(&p, 64, 0);
    uint32_t idx[10];
    void *o[10];
    for (int i = 0; i < 10; i++)
        o[i] = zg_pool_get(&p, &idx[i]);
    cr_assert_eq(p.nslabs, 1);
    for (int round = 0; round < 100000; round++) {
        int k = round % 10;
        zg_pool_put(&p, o[k], idx[k]);
        o[k] = zg_pool_get(&p, &idx[k]);
        cr_assert_not_null(o[k]);
    }
    cr_assert_eq(p.nslabs, 1, "the hot path never allocates");
    cr_assert_eq(p.in_use, 10);
    zg_pool_destroy(&p);
}

Test(pool, trim_gives_back_what_a_quiet_period_did_not_use)
{
    enum { N = 1000 };
    const uint32_t per = 1u << ZG_POOL_CHUNK_SHIFT;
    zg_pool p;
    zg_pool_init(&p, 48, 0);
    static void *obj[N];
    static uint32_t idx[N];
    for (uint32_t i = 0; i < N; i++)
        obj[i] = zg_pool_get(&p, &idx[i]);
    cr_assert_eq(p.live_slabs, 4);
    for (uint32_t i = 10; i < N; i++) /* the burst is over: 10 stay in use */
        zg_pool_put(&p, obj[i], idx[i]);
    cr_assert_eq(zg_pool_trim(&p), 0, "the period just over needed every slab");
    size_t freed = zg_pool_trim(&p); /* a whole period with 10 in use */
    cr_assert_eq(freed, 3 * per * p.obj_size);
    cr_assert_eq(p.live_slabs, 1);
    cr_assert_eq(zg_pool_bytes(&p), per * p.obj_size);
    for (uint32_t i = 0; i < 10; i++)
        cr_assert_eq(zg_pool_at(&p, idx[i]), obj[i], "objects in use stay");
    cr_assert_null(zg_pool_at(&p, 3 * per), "a released slab");
    /* the next burst reuses the released slots: indices stay dense */
    for (uint32_t i = 10; i < N; i++) {
        obj[i] = zg_pool_get(&p, &idx[i]);
        cr_assert_not_null(obj[i]);
        cr_assert_lt(idx[i], 4 * per);
        cr_assert_eq(zg_pool_at(&p, idx[i]), obj[i]);
    }
    cr_assert_eq(p.nslabs, 4);
    cr_assert_eq(p.live_slabs, 4);
    for (uint32_t i = 0; i < N; i++)
        zg_pool_put(&p, obj[i], idx[i]);
    zg_pool_trim(&p);
    zg_pool_trim(&p);
    cr_assert_eq(p.live_slabs, 1, "one slab is kept");
    cr_assert_eq(p.in_use, 0);
    zg_pool_destroy(&p);
}

Test(pool, bounded)
{
    const uint32_t per = 1u << ZG_POOL_CHUNK_SHIFT;
    zg_pool p;
    zg_pool_init(&p, 16, 10); /* rounded up to a whole slab */
    uint32_t idx = 0;
    for (uint32_t i = 0; i < per; i++)
        cr_assert_not_null(zg_pool_get(&p, &idx), "object %u", i);
    cr_assert_null(zg_pool_get(&p, &idx), "max_objs reached");
    cr_assert_eq(p.nslabs, 1);
    cr_assert_eq(p.in_use, per);
    zg_pool_put(&p, zg_pool_at(&p, 7), 7);
    cr_assert_eq(zg_pool_get(&p, &idx), zg_pool_at(&p, 7));
    cr_assert_eq(idx, 7);
    zg_pool_destroy(&p);
}

/* ---- zg_outq, with pools set up by hand (no ring) ---- */

static zg_bufs b;
static zg_outq q;
static int done_calls[4];

static void done_fn(void *arg)
{
    (*(int *)arg)++;
}

static void outq_setup(void)
{
    memset(&b, 0, sizeof(b));
    memset(done_calls, 0, sizeof(done_calls));
    zg_pool_init(&b.chunk_pool, sizeof(zg_chunk) + ZG_POOL_CHUNK_BYTES, 0);
    zg_pool_init(&b.seg_pool, sizeof(zg_seg), 0);
    zg_outq_init(&q);
}

static void outq_teardown(void)
{
    zg_pool_destroy(&b.chunk_pool);
    zg_pool_destroy(&b.seg_pool);
}

/* Concatenate the queue's iovecs into buf; returns the byte count. */
static size_t flatten(char *buf, size_t cap, int *niov)
{
    struct iovec iov[64];
    int n = zg_outq_iov(&q, iov, 64);
    size_t off = 0;
    for (int i = 0; i < n; i++) {
        cr_assert_leq(off + iov[i].iov_len, cap);
        memcpy(buf + off, iov[i].iov_base, iov[i].iov_len);
        off += iov[i].iov_len;
    }
    if (niov)
        *niov = n;
    return off;
}

TestSuite(outq, .init = outq_setup, .fini = outq_teardown);

Test(outq, copies_append_to_one_chunk)
{
    cr_assert_eq(zg_outq_copy(&b, &q, "hello", 5), 0);
    cr_assert_eq(zg_outq_copy(&b, &q, " world", 6), 0);
    cr_assert_eq(q.bytes, 11);
    cr_assert_eq(q.head, q.tail, "one segment");
    cr_assert_eq(b.chunk_pool.in_use, 1);
    cr_assert_eq(b.seg_pool.in_use, 1);
    char buf[64];
    int n;
    size_t len = flatten(buf, sizeof(buf), &n);
    cr_assert_eq(n, 1);
    cr_assert_eq(len, 11);
    cr_assert_arr_eq(buf, "hello world", 11);
    zg_outq_clear(&b, &q);
    cr_assert_null(q.head);
    cr_assert_eq(q.bytes, 0);
    cr_assert_eq(b.chunk_pool.in_use, 0);
    cr_assert_eq(b.seg_pool.in_use, 0);
}

Test(outq, large_copy_spans_chunks)
{
    enum { LEN = 2 * ZG_POOL_CHUNK_BYTES + 7232 };
    static char src[LEN], dst[LEN];
    for (size_t i = 0; i < LEN; i++)
        src[i] = (char)(i * 7 + 3);
    cr_assert_eq(zg_outq_copy(&b, &q, src, LEN), 0);
    cr_assert_eq(q.bytes, LEN);
    struct iovec iov[8];
    cr_assert_eq(zg_outq_iov(&q, iov, 8), 3);
    cr_assert_eq(iov[0].iov_len, ZG_POOL_CHUNK_BYTES);
    cr_assert_eq(iov[1].iov_len, ZG_POOL_CHUNK_BYTES);
    cr_assert_eq(iov[2].iov_len, 7232);
    cr_assert_eq(zg_outq_iov(&q, iov, 2), 2, "iov respects max");
    cr_assert_eq(flatten(dst, sizeof(dst), NULL), LEN);
    cr_assert_arr_eq(dst, src, LEN);
    cr_assert_eq(b.chunk_pool.in_use, 3);
    cr_assert_eq(b.seg_pool.in_use, 3);
    zg_outq_clear(&b, &q);
    cr_assert_eq(b.chunk_pool.in_use, 0);
    cr_assert_eq(b.seg_pool.in_use, 0);
}

Test(outq, reserve_commit)
{
    size_t avail = 0;
    char *p = zg_outq_reserve(&b, &q, 100, &avail);
    cr_assert_not_null(p);
    cr_assert_eq(avail, ZG_POOL_CHUNK_BYTES);
    memcpy(p, "0123456789", 10);
    zg_outq_commit(&q, 10);
    cr_assert_eq(q.bytes, 10);
    char *p2 = zg_outq_reserve(&b, &q, 100, &avail);
    cr_assert_eq(p2, p + 10, "continues in the same chunk");
    cr_assert_eq(avail, ZG_POOL_CHUNK_BYTES - 10);
    zg_outq_commit(&q, 0);
    cr_assert_null(zg_outq_reserve(&b, &q, ZG_POOL_CHUNK_BYTES + 1, &avail), "above a chunk");
    /* fill to 16 bytes short of the end: a larger min starts a new chunk */
    p2 = zg_outq_reserve(&b, &q, 1, &avail);
    memset(p2, 'x', avail - 16);
    zg_outq_commit(&q, avail - 16);
    char *p3 = zg_outq_reserve(&b, &q, 17, &avail);
    cr_assert_not_null(p3);
    cr_assert_eq(avail, ZG_POOL_CHUNK_BYTES);
    cr_assert_neq(q.head, q.tail);
    memcpy(p3, "abc", 3);
    zg_outq_commit(&q, 3);
    cr_assert_eq(q.bytes, ZG_POOL_CHUNK_BYTES - 16 + 3);
    struct iovec iov[4];
    cr_assert_eq(zg_outq_iov(&q, iov, 4), 2);
    cr_assert_eq(iov[0].iov_base, p);
    cr_assert_eq(iov[0].iov_len, ZG_POOL_CHUNK_BYTES - 16);
    cr_assert_arr_eq(iov[0].iov_base, "0123456789xx", 12);
    cr_assert_eq(iov[1].iov_base, p3);
    cr_assert_eq(iov[1].iov_len, 3);
    zg_outq_clear(&b, &q);
    cr_assert_eq(b.chunk_pool.in_use, 0);
}

Test(outq, ext_done_once_after_consume)
{
    static const char ext[] = "external!";
    cr_assert_eq(zg_outq_ref(&b, &q, ext, 9, NULL, done_fn, &done_calls[0]), 0);
    cr_assert_eq(q.bytes, 9);
    struct iovec iov[2];
    cr_assert_eq(zg_outq_iov(&q, iov, 2), 1);
    cr_assert_eq(iov[0].iov_base, ext, "no copy");
    zg_outq_consume(&b, &q, 4, NULL);
    cr_assert_eq(done_calls[0], 0, "partly sent");
    cr_assert_eq(zg_outq_iov(&q, iov, 2), 1);
    cr_assert_eq(iov[0].iov_base, ext + 4);
    cr_assert_eq(iov[0].iov_len, 5);
    zg_outq_consume(&b, &q, 5, NULL);
    cr_assert_eq(done_calls[0], 1);
    cr_assert_null(q.head);
    cr_assert_eq(q.bytes, 0);
    zg_outq_clear(&b, &q);
    cr_assert_eq(done_calls[0], 1, "exactly once");
    cr_assert_eq(b.seg_pool.in_use, 0);
}

Test(outq, ext_done_once_on_clear)
{
    zg_outq_ref(&b, &q, "aaaa", 4, NULL, done_fn, &done_calls[0]);
    zg_outq_copy(&b, &q, "bb", 2);
    zg_outq_ref(&b, &q, "cccc", 4, NULL, done_fn, &done_calls[1]);
    zg_outq_ref(&b, &q, "static", 6, NULL, NULL, NULL); /* static memory: no done */
    zg_outq_consume(&b, &q, 2, NULL);
    cr_assert_eq(done_calls[0], 0);
    zg_outq_clear(&b, &q);
    cr_assert_eq(done_calls[0], 1);
    cr_assert_eq(done_calls[1], 1);
    cr_assert_eq(b.seg_pool.in_use, 0);
    cr_assert_eq(b.chunk_pool.in_use, 0);
    zg_outq_clear(&b, &q);
    cr_assert_eq(done_calls[0], 1, "a second clear calls nothing");
    cr_assert_eq(done_calls[1], 1);
}

Test(outq, held_chunk_reference)
{
    zg_chunk *c = zg_chunk_new(&b);
    cr_assert_not_null(c);
    cr_assert_eq(c->refs, 1);
    cr_assert_eq(c->kind, ZG_CHUNK_POOL);
    memcpy(c->base, "held bytes", 10);
    c->used = 10;
    zg_chunk_get(c); /* the queue's reference */
    cr_assert_eq(zg_outq_ref(&b, &q, c->base + 5, 5, c, NULL, NULL), 0);
    zg_outq_consume(&b, &q, 5, NULL);
    cr_assert_eq(c->refs, 1, "the queue's reference was released");
    cr_assert_eq(b.chunk_pool.in_use, 1);
    zg_chunk_put(&b, c);
    cr_assert_eq(b.chunk_pool.in_use, 0);
}

Test(outq, partial_consume_across_segments)
{
    zg_outq_copy(&b, &q, "abc", 3);
    zg_outq_ref(&b, &q, "defgh", 5, NULL, done_fn, &done_calls[0]);
    zg_outq_copy(&b, &q, "ij", 2); /* the tail is external: a new chunk */
    cr_assert_eq(q.bytes, 10);
    cr_assert_eq(b.chunk_pool.in_use, 2);
    cr_assert_eq(b.seg_pool.in_use, 3);
    char buf[32];
    int n;
    cr_assert_eq(flatten(buf, sizeof(buf), &n), 10);
    cr_assert_eq(n, 3);
    cr_assert_arr_eq(buf, "abcdefghij", 10);

    zg_outq_consume(&b, &q, 5, NULL); /* "abc" and "de" */
    cr_assert_eq(q.bytes, 5);
    cr_assert_eq(b.chunk_pool.in_use, 1, "the first chunk went back");
    cr_assert_eq(b.seg_pool.in_use, 2);
    cr_assert_eq(done_calls[0], 0);
    cr_assert_eq(flatten(buf, sizeof(buf), &n), 5);
    cr_assert_eq(n, 2);
    cr_assert_arr_eq(buf, "fghij", 5);

    zg_outq_consume(&b, &q, 4, NULL); /* "fgh" and "i" */
    cr_assert_eq(done_calls[0], 1);
    cr_assert_eq(flatten(buf, sizeof(buf), &n), 1);
    cr_assert_eq(buf[0], 'j');

    zg_outq_consume(&b, &q, 1, NULL);
    cr_assert_eq(q.bytes, 0);
    cr_assert_eq(zg_outq_iov(&q, (struct iovec[1]){0}, 1), 0, "nothing to send");
    /* a sent queue holds nothing: an idle connection keeps no chunk */
    cr_assert_null(q.head);
    cr_assert_eq(b.chunk_pool.in_use, 0);
    cr_assert_eq(b.seg_pool.in_use, 0);
    zg_outq_copy(&b, &q, "kl", 2);
    cr_assert_eq(b.chunk_pool.in_use, 1, "a chunk again for the next copies");
    cr_assert_eq(flatten(buf, sizeof(buf), &n), 2);
    cr_assert_eq(n, 1);
    cr_assert_arr_eq(buf, "kl", 2);
    zg_outq_clear(&b, &q);
    cr_assert_eq(done_calls[0], 1);
    cr_assert_eq(b.chunk_pool.in_use, 0);
    cr_assert_eq(b.seg_pool.in_use, 0);
}

Test(outq, retired_for_zero_copy)
{
    zg_outq_copy(&b, &q, "abc", 3);
    zg_outq_ref(&b, &q, "xyz", 3, NULL, done_fn, &done_calls[0]);
    zg_outq_ref(&b, &q, "tail", 4, NULL, done_fn, &done_calls[1]);
    zg_seg *retired = NULL;
    zg_outq_consume(&b, &q, 7, &retired); /* "abc", "xyz", "t" */
    cr_assert_not_null(retired);
    cr_assert_eq(done_calls[0], 0, "the kernel may still read it");
    cr_assert_eq(b.chunk_pool.in_use, 1);
    cr_assert_eq(b.seg_pool.in_use, 3);
    int nret = 0;
    for (zg_seg *s = retired; s; s = s->next)
        nret++;
    cr_assert_eq(nret, 2);
    cr_assert_eq(q.bytes, 3);
    cr_assert_eq(q.head, q.tail);
    cr_assert_arr_eq(q.head->ptr, "ail", 3);

    zg_outq_release_list(&b, retired);
    cr_assert_eq(done_calls[0], 1);
    cr_assert_eq(done_calls[1], 0);
    cr_assert_eq(b.chunk_pool.in_use, 0);
    cr_assert_eq(b.seg_pool.in_use, 1);

    /* a fully sent copy tail is retired too (not kept for appends) */
    retired = NULL;
    zg_outq_consume(&b, &q, 3, &retired);
    zg_outq_copy(&b, &q, "zz", 2);
    zg_outq_consume(&b, &q, 2, &retired);
    cr_assert_null(q.head);
    cr_assert_eq(q.bytes, 0);
    cr_assert_eq(done_calls[1], 0);
    zg_outq_release_list(&b, retired);
    cr_assert_eq(done_calls[1], 1);
    cr_assert_eq(b.chunk_pool.in_use, 0);
    cr_assert_eq(b.seg_pool.in_use, 0);
}

Test(outq, no_pool_growth_in_steady_state)
{
    char buf[1000];
    memset(buf, 'q', sizeof(buf));
    for (int i = 0; i < 5000; i++) {
        zg_outq_copy(&b, &q, buf, sizeof(buf));
        zg_outq_ref(&b, &q, buf, 10, NULL, NULL, NULL);
        zg_outq_consume(&b, &q, q.bytes, NULL);
    }
    cr_assert_eq(b.chunk_pool.nslabs, 1);
    cr_assert_eq(b.seg_pool.nslabs, 1);
    zg_outq_clear(&b, &q);
}

Test(chunk, heap_chunk)
{
    zg_chunk *c = zg_chunk_heap(100);
    cr_assert_not_null(c);
    cr_assert_eq(c->kind, ZG_CHUNK_HEAP);
    cr_assert_eq(c->size, 100);
    cr_assert_eq(c->refs, 1);
    memset(c->base, 1, 100);
    zg_chunk_get(c);
    zg_chunk_put(NULL, c);
    cr_assert_eq(c->refs, 1);
    zg_chunk_put(NULL, c); /* freed: the sanitizer build checks it */
}

/* ---- the provided buffer ring ---- */

static struct io_uring ring;
static int ring_ok;
static zg_bufs rb;

static void ring_setup(void)
{
    int rc = io_uring_queue_init(64, &ring, 0);
    if (rc < 0)
        cr_skip_test("io_uring unavailable: %s", strerror(-rc));
    ring_ok = 1;
}

static void ring_teardown(void)
{
    if (!ring_ok)
        return;
    zg_bufs_destroy(&rb);
    io_uring_queue_exit(&ring);
}

/* rb: nbufs buffers of 4 KiB on the suite's ring */
static void bufs_init(uint32_t nbufs, int want_inc)
{
    int rc = zg_bufs_init(&rb, &ring, nbufs, 4096, want_inc);
    cr_assert_eq(rc, 0, "zg_bufs_init: %s", strerror(-rc));
}

TestSuite(bufring, .init = ring_setup, .fini = ring_teardown);

Test(bufring, recv_and_give_back)
{
    bufs_init(8, 0);
    cr_assert_eq(rb.in_ring, 8);
    cr_assert_eq(rb.nbufs, 8);
    cr_assert_eq(rb.buf_size, 4096);
    cr_assert_eq(rb.incremental, 0);
    cr_assert_eq(rb.br->tail, 8, "all buffers published");
    for (uint32_t i = 0; i < 8; i++) {
        cr_assert_eq(rb.ring_chunks[i].refs, 1, "the kernel's reference");
        cr_assert_eq(rb.ring_chunks[i].kind, ZG_CHUNK_RING);
        cr_assert_eq(rb.br->bufs[i].bid, i);
        cr_assert_eq(rb.br->bufs[i].addr, (uint64_t)(uintptr_t)(rb.mem + i * 4096));
        cr_assert_eq(rb.br->bufs[i].len, 4096);
    }

    uint8_t *data = NULL;
    zg_chunk *c = zg_bufs_recv(&rb, 3u << IORING_CQE_BUFFER_SHIFT, 100, &data);
    cr_assert_eq(c, &rb.ring_chunks[3]);
    cr_assert_eq(data, rb.mem + 3 * 4096);
    cr_assert_eq(c->refs, 1, "only the caller's reference is left");
    cr_assert_eq(rb.in_ring, 7);

    zg_chunk_get(c); /* held by an output segment, say */
    zg_chunk_put(&rb, c);
    cr_assert_eq(c->refs, 1);
    cr_assert_eq(rb.in_ring, 7, "still held");
    cr_assert_eq(rb.pending_adds, 0);
    zg_chunk_put(&rb, c);
    cr_assert_eq(rb.in_ring, 7, "free, not yet in the ring");
    cr_assert_eq(rb.nspare, 1);
    cr_assert_eq(c->refs, 1, "the stack's reference, the kernel's again later");
    cr_assert_eq(rb.pending_adds, 0);
    cr_assert_eq(rb.br->tail, 8);
    zg_bufs_commit(&rb);
    cr_assert_eq(rb.in_ring, 8, "back to the kernel");
    cr_assert_eq(rb.nspare, 0);
    cr_assert_eq(rb.pending_adds, 0);
    cr_assert_eq(rb.br->tail, 9);
    cr_assert_eq(rb.br->bufs[0].bid, 3, "queued at the tail slot");
    cr_assert_eq(rb.br->bufs[0].addr, (uint64_t)(uintptr_t)(rb.mem + 3 * 4096));
    cr_assert_eq(rb.br->bufs[0].len, 4096);
    zg_bufs_commit(&rb);
    cr_assert_eq(rb.br->tail, 9, "nothing more to publish");
}

Test(bufring, ring_holds_the_target_most_recent_first)
{
    bufs_init(256, 0);
    cr_assert_eq(rb.target, 64);
    cr_assert_eq(rb.in_ring, 64);
    cr_assert_eq(rb.nspare, 192);
    cr_assert_eq(rb.br->tail, 64);
    uint8_t *data;
    zg_chunk *a = zg_bufs_recv(&rb, 5u << IORING_CQE_BUFFER_SHIFT, 10, &data);
    zg_chunk *b2 = zg_bufs_recv(&rb, 9u << IORING_CQE_BUFFER_SHIFT, 10, &data);
    zg_chunk_put(&rb, a);
    zg_chunk_put(&rb, b2);
    cr_assert_eq(zg_bufs_available(&rb), 256);
    zg_bufs_commit(&rb);
    cr_assert_eq(rb.in_ring, 64);
    cr_assert_eq(rb.br->tail, 66);
    cr_assert_eq(rb.br->bufs[64].bid, 9, "the buffer used last goes back first");
    cr_assert_eq(rb.br->bufs[65].bid, 5);
    /* running dry doubles the target */
    zg_bufs_starved(&rb);
    zg_bufs_commit(&rb);
    cr_assert_eq(rb.target, 128);
    cr_assert_eq(rb.in_ring, 128);
    cr_assert_eq(rb.nspare, 128);
    /* a window of quiet turns halves it again, not below the minimum */
    for (int i = 0; i < 3 * 1024; i++)
        zg_bufs_commit(&rb);
    cr_assert_eq(rb.target, 64);
    cr_assert_eq(rb.in_ring, 128, "buffers already given stay in the ring");
}

Test(bufring, several_buffers_and_bad_id)
{
    bufs_init(8, 0);
    uint8_t *data;
    zg_chunk *cs[8];
    for (uint32_t i = 0; i < 8; i++) {
        cs[i] = zg_bufs_recv(&rb, (7 - i) << IORING_CQE_BUFFER_SHIFT, 10, &data);
        cr_assert_eq(cs[i]->index, 7 - i);
    }
    cr_assert_eq(rb.in_ring, 0);
    cr_assert_null(zg_bufs_recv(&rb, 8u << IORING_CQE_BUFFER_SHIFT, 10, &data), "bid >= nbufs");
    cr_assert_eq(rb.in_ring, 0);
    for (uint32_t i = 0; i < 8; i++)
        zg_chunk_put(&rb, cs[i]);
    cr_assert_eq(rb.in_ring, 0);
    cr_assert_eq(rb.nspare, 8);
    zg_bufs_commit(&rb);
    cr_assert_eq(rb.in_ring, 8);
    cr_assert_eq(rb.br->tail, 16);
    for (uint32_t i = 0; i < 8; i++)
        cr_assert_eq(rb.br->bufs[i].bid, i, "given back last put first");
}

Test(bufring, incremental_consumption)
{
    bufs_init(8, 1);
    if (!rb.incremental)
        cr_skip_test("the kernel lacks IOU_PBUF_RING_INC");
    uint8_t *d1, *d2, *d3;
    unsigned more = (2u << IORING_CQE_BUFFER_SHIFT) | IORING_CQE_F_BUF_MORE;
    zg_chunk *c1 = zg_bufs_recv(&rb, more, 100, &d1);
    zg_chunk *c2 = zg_bufs_recv(&rb, more, 50, &d2);
    cr_assert_eq(c1, c2);
    cr_assert_eq(d1, rb.mem + 2 * 4096);
    cr_assert_eq(d2, d1 + 100, "the kernel goes on where it stopped");
    cr_assert_eq(rb.in_ring, 8, "the kernel still fills this buffer");
    cr_assert_eq(c1->refs, 3);
    zg_chunk *c3 = zg_bufs_recv(&rb, 2u << IORING_CQE_BUFFER_SHIFT, 10, &d3);
    cr_assert_eq(d3, d1 + 150);
    cr_assert_eq(rb.in_ring, 7, "done with it");
    cr_assert_eq(c3->refs, 3);
    zg_chunk_put(&rb, c1);
    zg_chunk_put(&rb, c2);
    zg_chunk_put(&rb, c3);
    cr_assert_eq(rb.in_ring, 7);
    cr_assert_eq(c1->used, 0, "whole again");
    zg_bufs_commit(&rb);
    cr_assert_eq(rb.in_ring, 8);
    cr_assert_eq(rb.br->tail, 9);
}

Test(bufring, pool_chunks)
{
    bufs_init(8, 0);
    zg_chunk *c = zg_chunk_new(&rb);
    cr_assert_not_null(c);
    cr_assert_eq(c->size, ZG_POOL_CHUNK_BYTES);
    cr_assert_eq(c->base, (uint8_t *)(c + 1));
    cr_assert_eq(rb.chunk_pool.in_use, 1);
    memset(c->base, 0xab, ZG_POOL_CHUNK_BYTES);
    zg_chunk_put(&rb, c);
    cr_assert_eq(rb.chunk_pool.in_use, 0);
    cr_assert_eq(rb.in_ring, 8, "pool chunks never touch the ring");
}
