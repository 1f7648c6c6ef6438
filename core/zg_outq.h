/* zg_outq.h - a connection's output queue: segments of copied bytes (pool
 * chunks), external memory (done callbacks), held receive buffers and file
 * ranges (sent by splice, zg_splice.c), consumed in order by partial sends. */
#ifndef ZG_OUTQ_H
#define ZG_OUTQ_H

#include <stddef.h>
#include <sys/uio.h>
#include <zerg/module.h>

#include "zg_bufring.h"

typedef struct zg_seg {
    struct zg_seg *next;
    uint32_t idx; /* pool index (kept after the free-list word) */
    uint32_t len;
    const uint8_t *ptr;
    zg_chunk *chunk;   /* a reference, or NULL */
    zerg_done_fn done; /* external memory, or the file's owner */
    void *arg;
    uint64_t foff, fleft; /* a file segment (len 0): fleft bytes of fd from foff */
    int fd;
    uint8_t is_file;
} zg_seg;

typedef struct zg_outq {
    zg_seg *head, *tail;
    size_t bytes;   /* unsent bytes, file segments' included */
    uint32_t files; /* file segments queued */
} zg_outq;

static inline void zg_outq_init(zg_outq *q)
{
    q->head = q->tail = NULL;
    q->bytes = 0;
    q->files = 0;
}
/* Copy bytes in (appending to the tail chunk while it has room). */
int zg_outq_copy(zg_bufs *b, zg_outq *q, const void *data, size_t len);
/* Room for at least min bytes at the tail; commit what was written. */
void *zg_outq_reserve(zg_bufs *b, zg_outq *q, size_t min, size_t *avail);
void zg_outq_commit(zg_outq *q, size_t used);
/* Queue memory the queue does not own: a held chunk (ref consumed) or
 * external memory released through done(arg). */
int zg_outq_ref(zg_bufs *b, zg_outq *q, const void *data, size_t len, zg_chunk *ref,
                zerg_done_fn done, void *arg);
/* Queue bytes of chunk k as zg_outq_ref does, consuming one reference of
 * k (also when it fails); but while k is a receive buffer and few of those
 * are free, copy them and add len to *copied (a queue may wait long for a
 * slow peer, and queues holding every buffer would starve all
 * connections). 0, or -1 when memory ran out. */
int zg_outq_keep(zg_bufs *b, zg_outq *q, const void *data, size_t len, zg_chunk *k,
                 uint64_t *copied);
/* Queue len bytes of the file fd from off; done(arg) runs once they are
 * sent or dropped (fd stays the caller's until then). 0, or -1. */
int zg_outq_file(zg_bufs *b, zg_outq *q, int fd, uint64_t off, uint64_t len, zerg_done_fn done,
                 void *arg);
/* The first segment with bytes left when it is a file segment, else NULL. */
zg_seg *zg_outq_head_file(const zg_outq *q);
/* Fill iov from the head, up to the first file segment; returns the count
 * (<= max). */
int zg_outq_iov(const zg_outq *q, struct iovec *iov, int max);
/* Drop n sent bytes from the head. Fully sent segments are released, or
 * moved to *retired (kept until a SEND_ZC notification) when retired is set. */
void zg_outq_consume(zg_bufs *b, zg_outq *q, size_t n, zg_seg **retired);
/* Release a list of retired segments. */
void zg_outq_release_list(zg_bufs *b, zg_seg *list);
/* Release everything queued (connection closing). */
void zg_outq_clear(zg_bufs *b, zg_outq *q);

#endif
