/* zg_outq.c - the output queue (see zg_outq.h). */
#include "zg_outq.h"

#include <string.h>

static zg_seg *seg_new(zg_bufs *b, zg_outq *q)
{
    uint32_t idx;
    zg_seg *s = zg_pool_get(&b->seg_pool, &idx);
    if (!s)
        return NULL;
    memset(s, 0, sizeof(*s));
    s->idx = idx;
    if (q->tail)
        q->tail->next = s;
    else
        q->head = s;
    q->tail = s;
    return s;
}

static void seg_release(zg_bufs *b, zg_outq *q, zg_seg *s)
{
    if (s->is_file && q)
        q->files--;
    if (s->chunk)
        zg_chunk_put(b, s->chunk);
    if (s->done)
        s->done(s->arg);
    zg_pool_put(&b->seg_pool, s, s->idx);
}

/* The tail segment when it is a pool chunk of ours with free room. */
static zg_chunk *tail_chunk(zg_outq *q)
{
    zg_seg *t = q->tail;
    if (!t || !t->chunk || t->chunk->kind != ZG_CHUNK_POOL || t->chunk->refs != 1 || t->done)
        return NULL;
    if (t->ptr + t->len != t->chunk->base + t->chunk->used)
        return NULL;
    return t->chunk->used < t->chunk->size ? t->chunk : NULL;
}

void *zg_outq_reserve(zg_bufs *b, zg_outq *q, size_t min, size_t *avail)
{
    if (min > ZG_POOL_CHUNK_BYTES)
        return NULL;
    zg_chunk *c = tail_chunk(q);
    if (!c || c->size - c->used < min) {
        zg_seg *s = seg_new(b, q);
        if (!s)
            return NULL;
        if (!(c = zg_chunk_new(b))) {
            s->ptr = NULL; /* an empty segment, dropped by consume */
            return NULL;
        }
        s->chunk = c;
        s->ptr = c->base;
    }
    if (avail)
        *avail = c->size - c->used;
    return c->base + c->used;
}

void zg_outq_commit(zg_outq *q, size_t used)
{
    q->tail->chunk->used += used;
    q->tail->len += used;
    q->bytes += used;
}

int zg_outq_copy(zg_bufs *b, zg_outq *q, const void *data, size_t len)
{
    const uint8_t *p = data;
    while (len) {
        size_t avail;
        uint8_t *dst = zg_outq_reserve(b, q, 1, &avail);
        if (!dst)
            return -1;
        size_t n = len < avail ? len : avail;
        memcpy(dst, p, n);
        zg_outq_commit(q, n);
        p += n;
        len -= n;
    }
    return 0;
}

int zg_outq_ref(zg_bufs *b, zg_outq *q, const void *data, size_t len, zg_chunk *ref,
                zerg_done_fn done, void *arg)
{
    zg_seg *s = seg_new(b, q);
    if (!s)
        return -1;
    s->ptr = data;
    s->len = (uint32_t)len;
    s->chunk = ref;
    s->done = done;
    s->arg = arg;
    q->bytes += len;
    return 0;
}

int zg_outq_file(zg_bufs *b, zg_outq *q, int fd, uint64_t off, uint64_t len, zerg_done_fn done,
                 void *arg)
{
    zg_seg *s = seg_new(b, q);
    if (!s)
        return -1;
    s->is_file = 1;
    s->fd = fd;
    s->foff = off;
    s->fleft = len;
    s->done = done;
    s->arg = arg;
    q->bytes += len;
    q->files++;
    return 0;
}

zg_seg *zg_outq_head_file(const zg_outq *q)
{
    for (zg_seg *s = q->head; s; s = s->next) {
        if (s->is_file)
            return s->fleft ? s : NULL;
        if (s->len)
            return NULL;
    }
    return NULL;
}

int zg_outq_iov(const zg_outq *q, struct iovec *iov, int max)
{
    int n = 0;
    for (const zg_seg *s = q->head; s && n < max && !s->is_file; s = s->next) {
        if (!s->len)
            continue;
        iov[n].iov_base = (void *)s->ptr;
        iov[n].iov_len = s->len;
        n++;
    }
    return n;
}

void zg_outq_consume(zg_bufs *b, zg_outq *q, size_t n, zg_seg **retired)
{
    q->bytes -= n;
    while (q->head) {
        zg_seg *s = q->head;
        if (s->is_file && s->fleft > n) {
            s->foff += n;
            s->fleft -= n;
            return;
        }
        if (!s->is_file && s->len > n) {
            s->ptr += n;
            s->len -= (uint32_t)n;
            return;
        }
        n -= s->is_file ? s->fleft : s->len;
        q->head = s->next;
        if (!q->head)
            q->tail = NULL;
        if (s->is_file) { /* never in a SEND_ZC's iov: nothing to wait for */
            seg_release(b, q, s);
        } else if (retired) {
            s->next = *retired;
            *retired = s;
        } else {
            seg_release(b, q, s);
        }
    }
}

void zg_outq_release_list(zg_bufs *b, zg_seg *list)
{
    while (list) {
        zg_seg *next = list->next;
        seg_release(b, NULL, list);
        list = next;
    }
}

void zg_outq_clear(zg_bufs *b, zg_outq *q)
{
    zg_seg *s = q->head;
    while (s) {
        zg_seg *next = s->next;
        seg_release(b, q, s);
        s = next;
    }
    zg_outq_init(q);
}

int zg_outq_keep(zg_bufs *b, zg_outq *q, const void *data, size_t len, zg_chunk *k,
                 uint64_t *copied)
{
    if (k->kind != ZG_CHUNK_RING || !zg_bufs_low(b)) {
        if (zg_outq_ref(b, q, data, len, k, NULL, NULL) == 0)
            return 0;
        zg_chunk_put(b, k);
        return -1;
    }
    int rc = zg_outq_copy(b, q, data, len);
    zg_chunk_put(b, k);
    if (rc < 0)
        return -1;
    *copied += len;
    return 0;
}
