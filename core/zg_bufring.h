/* zg_bufring.h - receive and send memory of a worker: the provided buffer
 * ring the kernel receives into, pooled chunks for copied writes, and the
 * reference counts that return each buffer once nobody uses it. */
#ifndef ZG_BUFRING_H
#define ZG_BUFRING_H

#include <liburing.h>
#include <stdint.h>

#include "zg_pool.h"
#include "zg_uring_compat.h"

enum { ZG_CHUNK_RING = 1, ZG_CHUNK_POOL = 2, ZG_CHUNK_HEAP = 3 };

/* A reference-counted piece of memory; zerg_ref is this. */
typedef struct zg_chunk {
    uint8_t *base;
    uint32_t size;
    uint32_t refs;
    uint32_t used;  /* POOL: bytes written; RING+incremental: bytes the kernel consumed */
    uint32_t index; /* RING: buffer id; POOL: pool index */
    uint8_t kind;
    uint8_t dropped; /* RING: its pages were given back (zg_bufs_trim) */
} zg_chunk;

#define ZG_POOL_CHUNK_BYTES 16384

typedef struct zg_bufs {
    struct io_uring *ring;
    struct io_uring_buf_ring *br;
    size_t br_bytes;
    uint8_t *mem;
    size_t mem_bytes;
    zg_chunk *ring_chunks;
    uint32_t nbufs, buf_size;
    uint16_t bgid;
    int incremental;
    uint32_t pending_adds; /* buffers added since the last advance */
    uint32_t in_ring;      /* buffers the kernel may fill */
    /* Free buffers wait on a stack and the ring gets only as many as the
     * load needs (target), the most recently used first: the kernel then
     * receives into memory still in the CPU's cache, not into the coldest
     * buffer of a ring cycling through all of them. */
    uint32_t *spare;
    uint32_t nspare;
    uint32_t target;    /* buffers to keep in the ring */
    uint32_t taken;     /* buffers the kernel finished this turn */
    uint32_t peak;      /* the most taken in one turn, this window */
    uint32_t turns;     /* commits in this window */
    zg_pool chunk_pool; /* zg_chunk header + ZG_POOL_CHUNK_BYTES */
    zg_pool seg_pool;   /* output segments */
} zg_bufs;

/* Register the ring (incremental consumption when want_inc and the kernel
 * takes it; want_inc < 0 = auto). 0 or -errno. */
int zg_bufs_init(zg_bufs *b, struct io_uring *ring, uint32_t nbufs, uint32_t buf_size,
                 int want_inc);
void zg_bufs_destroy(zg_bufs *b);
/* Top the ring up to its target from the free buffers, most recently used
 * first, and publish (once per loop turn). */
void zg_bufs_commit(zg_bufs *b);
/* A receive found the ring empty: keep more buffers in it. */
void zg_bufs_starved(zg_bufs *b);
/* Buffers the kernel may fill now or at the next commit. */
static inline uint32_t zg_bufs_available(const zg_bufs *b)
{
    return b->in_ring + b->nspare;
}
/* Fewer than a quarter of the receive buffers are free: a reference that a
 * slow peer may keep for long should be a copy instead. */
static inline int zg_bufs_low(const zg_bufs *b)
{
    return zg_bufs_available(b) < b->nbufs / 4;
}
/* The chunk and data of a receive completion with buffer id bid, len bytes.
 * The caller gets one reference (the kernel's, when it is done with the
 * buffer, is released here). */
zg_chunk *zg_bufs_recv(zg_bufs *b, unsigned cqe_flags, uint32_t len, uint8_t **data);
/* Give back the pages of the spare buffers the ring will not need soon
 * (those below the top of the spare stack); returns the bytes. */
size_t zg_bufs_trim(zg_bufs *b);
/* A fresh pool chunk, refs = 1, used = 0; NULL when memory is exhausted. */
zg_chunk *zg_chunk_new(zg_bufs *b);
/* A malloc'd chunk of cap bytes (connection carry-over input), refs = 1. */
zg_chunk *zg_chunk_heap(size_t cap);
static inline void zg_chunk_get(zg_chunk *c)
{
    c->refs++;
}
void zg_chunk_put(zg_bufs *b, zg_chunk *c);

#endif
