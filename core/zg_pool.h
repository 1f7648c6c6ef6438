/* zg_pool.h - fixed-size object pools with stable indices: connections,
 * output segments, chunks and file operations come from here, so the hot path
 * never calls malloc once a pool has grown to its working size; and slabs
 * left unused for a while go back (zg_pool_trim). */
#ifndef ZG_POOL_H
#define ZG_POOL_H

#include <stddef.h>
#include <stdint.h>

#define ZG_POOL_CHUNK_SHIFT 8 /* objects per slab: 256 */

typedef struct zg_pool {
    size_t obj_size; /* rounded up to 16 */
    void **slabs;    /* slab i holds objects i*256 .. i*256+255; NULL once released */
    uint32_t nslabs, cap_slabs;
    uint32_t live_slabs; /* slabs not released */
    uint32_t max_objs;   /* 0 = unbounded; rounded up to whole slabs */
    void *free_list;     /* next pointer stored in the object's first word */
    uint32_t in_use;
    uint32_t peak; /* the most in use since the last trim */
} zg_pool;

void zg_pool_init(zg_pool *p, size_t obj_size, uint32_t max_objs);
void zg_pool_destroy(zg_pool *p);
/* An object (not zeroed) and its index, or NULL when max_objs are in use. */
void *zg_pool_get(zg_pool *p, uint32_t *index);
/* Give obj back; index is the one zg_pool_get returned for it. */
void zg_pool_put(zg_pool *p, void *obj, uint32_t index);
/* Free the slabs holding no object in use, beyond those the peak since the
 * last trim needed (so a pool shrinks after a whole quiet period, not between
 * two bursts); returns the bytes released. */
size_t zg_pool_trim(zg_pool *p);
/* Bytes of the slabs held. */
static inline size_t zg_pool_bytes(const zg_pool *p)
{
    return (size_t)p->live_slabs * p->obj_size << ZG_POOL_CHUNK_SHIFT;
}
static inline void *zg_pool_at(const zg_pool *p, uint32_t index)
{
    uint32_t s = index >> ZG_POOL_CHUNK_SHIFT;
    if (s >= p->nslabs || !p->slabs[s])
        return NULL;
    return (char *)p->slabs[s] + (size_t)(index & ((1u << ZG_POOL_CHUNK_SHIFT) - 1)) * p->obj_size;
}

#endif
