/* zg_bufring.c - the provided buffer ring and pooled chunks (see zg_bufring.h).
 * liburing 2.3 lacks io_uring_setup_buf_ring: mapped and registered by hand. */
#define _GNU_SOURCE
#include "zg_bufring.h"
#include "zg_log.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#define ZG_BUFS_MIN_TARGET 64   /* buffers kept in the ring at the least */
#define ZG_BUFS_WINDOW     1024 /* turns between reconsidering the target */

int zg_bufs_init(zg_bufs *b, struct io_uring *ring, uint32_t nbufs, uint32_t buf_size, int want_inc)
{
    memset(b, 0, sizeof(*b));
    b->ring = ring;
    b->nbufs = nbufs;
    b->buf_size = buf_size;
    b->bgid = 0;
    b->br_bytes = (size_t)nbufs * sizeof(struct io_uring_buf);
    b->br = mmap(NULL, b->br_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->br == MAP_FAILED)
        return -errno;
    b->mem_bytes = (size_t)nbufs * buf_size;
    b->mem = mmap(NULL, b->mem_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (b->mem == MAP_FAILED) {
        int e = -errno;
        munmap(b->br, b->br_bytes);
        return e;
    }
    b->ring_chunks = calloc(nbufs, sizeof(zg_chunk));
    b->spare = calloc(nbufs, sizeof(uint32_t));
    if (!b->ring_chunks || !b->spare)
        return -ENOMEM;

    struct io_uring_buf_reg reg;
    int rc = -EINVAL;
    for (int inc = want_inc != 0; inc >= 0; inc--) {
        memset(&reg, 0, sizeof(reg));
        reg.ring_addr = (uintptr_t)b->br;
        reg.ring_entries = nbufs;
        reg.bgid = b->bgid;
        zg_buf_reg_set_flags(&reg, inc ? IOU_PBUF_RING_INC : 0);
        rc = io_uring_register_buf_ring(ring, &reg, 0);
        if (rc == 0) {
            b->incremental = inc;
            break;
        }
        if (want_inc > 0 && inc)
            zg_log_warn("incremental buffer consumption unavailable (%s), using whole buffers",
                        strerror(-rc));
    }
    if (rc < 0)
        return rc;
    io_uring_buf_ring_init(b->br);
    for (uint32_t i = 0; i < nbufs; i++) {
        zg_chunk *c = &b->ring_chunks[i];
        c->base = b->mem + (size_t)i * buf_size;
        c->size = buf_size;
        c->index = i;
        c->kind = ZG_CHUNK_RING;
        c->refs = 1;                           /* the kernel's, or the stack's while spare */
        b->spare[b->nspare++] = nbufs - 1 - i; /* buffer 0 on top */
    }
    b->target = nbufs < ZG_BUFS_MIN_TARGET ? nbufs : ZG_BUFS_MIN_TARGET;
    zg_bufs_commit(b);
    zg_pool_init(&b->chunk_pool, sizeof(zg_chunk) + ZG_POOL_CHUNK_BYTES, 0);
    return 0;
}

void zg_bufs_destroy(zg_bufs *b)
{
    if (b->br && b->br != MAP_FAILED) {
        io_uring_unregister_buf_ring(b->ring, b->bgid);
        munmap(b->br, b->br_bytes);
    }
    if (b->mem && b->mem != MAP_FAILED)
        munmap(b->mem, b->mem_bytes);
    free(b->ring_chunks);
    free(b->spare);
    zg_pool_destroy(&b->chunk_pool);
    zg_pool_destroy(&b->seg_pool);
    memset(b, 0, sizeof(*b));
}

/* The target follows the load: twice the most buffers taken in a turn, at
 * once when that grows, halved when a window of turns needed far less. */
static void adapt_target(zg_bufs *b)
{
    uint32_t want = b->taken * 2;
    if (want > b->target)
        b->target = want < b->nbufs ? want : b->nbufs;
    if (b->taken > b->peak)
        b->peak = b->taken;
    b->taken = 0;
    if (++b->turns < ZG_BUFS_WINDOW)
        return;
    uint32_t floor = b->nbufs < ZG_BUFS_MIN_TARGET ? b->nbufs : ZG_BUFS_MIN_TARGET;
    if (b->peak * 4 < b->target && b->target / 2 >= floor)
        b->target /= 2;
    b->peak = 0;
    b->turns = 0;
}

void zg_bufs_starved(zg_bufs *b)
{
    b->target = b->target * 2 < b->nbufs ? b->target * 2 : b->nbufs;
}

void zg_bufs_commit(zg_bufs *b)
{
    adapt_target(b);
    while (b->in_ring < b->target && b->nspare) {
        zg_chunk *c = &b->ring_chunks[b->spare[--b->nspare]];
        c->dropped = 0;
        io_uring_buf_ring_add(b->br, c->base, b->buf_size, (unsigned short)c->index, b->nbufs - 1,
                              (int)b->pending_adds++);
        b->in_ring++;
    }
    if (b->pending_adds) {
        io_uring_buf_ring_advance(b->br, (int)b->pending_adds);
        b->pending_adds = 0;
    }
}

zg_chunk *zg_bufs_recv(zg_bufs *b, unsigned cqe_flags, uint32_t len, uint8_t **data)
{
    uint32_t bid = cqe_flags >> IORING_CQE_BUFFER_SHIFT;
    if (bid >= b->nbufs)
        return NULL;
    zg_chunk *c = &b->ring_chunks[bid];
    if (b->incremental) {
        *data = c->base + c->used;
        c->used += len;
    } else {
        *data = c->base;
    }
    c->refs++; /* the caller's */
    if (!b->incremental || !(cqe_flags & IORING_CQE_F_BUF_MORE)) {
        b->in_ring--;
        b->taken++;
        zg_chunk_put(b, c); /* the kernel is done with this buffer */
    }
    return c;
}

size_t zg_bufs_trim(zg_bufs *b)
{
    const uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uint32_t keep = b->target > ZG_BUFS_MIN_TARGET ? b->target : ZG_BUFS_MIN_TARGET;
    size_t freed = 0;
    for (uint32_t i = 0; i + keep < b->nspare; i++) { /* the bottom of the stack */
        zg_chunk *c = &b->ring_chunks[b->spare[i]];
        uintptr_t lo = ((uintptr_t)c->base + page - 1) & ~(page - 1);
        uintptr_t hi = ((uintptr_t)c->base + c->size) & ~(page - 1);
        if (c->dropped || hi <= lo)
            continue;
        if (madvise((void *)lo, hi - lo, MADV_DONTNEED) == 0)
            freed += hi - lo;
        c->dropped = 1;
    }
    return freed;
}

zg_chunk *zg_chunk_new(zg_bufs *b)
{
    uint32_t idx;
    zg_chunk *c = zg_pool_get(&b->chunk_pool, &idx);
    if (!c)
        return NULL;
    c->base = (uint8_t *)(c + 1);
    c->size = ZG_POOL_CHUNK_BYTES;
    c->refs = 1;
    c->used = 0;
    c->index = idx;
    c->kind = ZG_CHUNK_POOL;
    return c;
}

zg_chunk *zg_chunk_heap(size_t cap)
{
    zg_chunk *c = malloc(sizeof(*c) + cap);
    if (!c)
        return NULL;
    c->base = (uint8_t *)(c + 1);
    c->size = (uint32_t)cap;
    c->refs = 1;
    c->used = 0;
    c->index = 0;
    c->kind = ZG_CHUNK_HEAP;
    return c;
}

void zg_chunk_put(zg_bufs *b, zg_chunk *c)
{
    if (--c->refs > 0)
        return;
    if (c->kind == ZG_CHUNK_HEAP) {
        free(c);
        return;
    }
    if (c->kind == ZG_CHUNK_POOL) {
        zg_pool_put(&b->chunk_pool, c, c->index);
        return;
    }
    /* free again, whole: on top of the stack, the first to go back */
    c->used = 0;
    c->refs = 1;
    b->spare[b->nspare++] = c->index;
}
