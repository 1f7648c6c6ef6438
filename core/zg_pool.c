/* zg_pool.c - slab-backed object pools (see zg_pool.h). */
#include "zg_pool.h"

#include <stdlib.h>
#include <string.h>

void zg_pool_init(zg_pool *p, size_t obj_size, uint32_t max_objs)
{
    memset(p, 0, sizeof(*p));
    if (obj_size < sizeof(void *) + sizeof(uint32_t))
        obj_size = sizeof(void *) + sizeof(uint32_t);
    p->obj_size = (obj_size + 15) & ~(size_t)15;
    p->max_objs = max_objs;
}

void zg_pool_destroy(zg_pool *p)
{
    for (uint32_t i = 0; i < p->nslabs; i++)
        free(p->slabs[i]);
    free(p->slabs);
    memset(p, 0, sizeof(*p));
}

/* Every free object keeps its index right after the free-list pointer. */
struct free_obj {
    void *next;
    uint32_t index;
};

static int grow(zg_pool *p)
{
    const uint32_t per = 1u << ZG_POOL_CHUNK_SHIFT;
    if (p->max_objs && p->nslabs * per >= p->max_objs)
        return -1;
    if (p->nslabs == p->cap_slabs) {
        uint32_t cap = p->cap_slabs ? p->cap_slabs * 2 : 8;
        void **s = realloc(p->slabs, cap * sizeof(void *));
        if (!s)
            return -1;
        p->slabs = s;
        p->cap_slabs = cap;
    }
    char *slab = aligned_alloc(64, ((p->obj_size * per) + 63) & ~(size_t)63);
    if (!slab)
        return -1;
    memset(slab, 0, p->obj_size * per); /* callers may test fields of unused objects */
    uint32_t base = p->nslabs * per;
    p->slabs[p->nslabs++] = slab;
    for (uint32_t i = per; i-- > 0;) {
        struct free_obj *o = (struct free_obj *)(slab + i * p->obj_size);
        o->index = base + i;
        o->next = p->free_list;
        p->free_list = o;
    }
    return 0;
}

void *zg_pool_get(zg_pool *p, uint32_t *index)
{
    if (!p->free_list && grow(p) < 0)
        return NULL;
    struct free_obj *o = p->free_list;
    p->free_list = o->next;
    if (index)
        *index = o->index;
    p->in_use++;
    return o;
}

void zg_pool_put(zg_pool *p, void *obj, uint32_t index)
{
    struct free_obj *o = obj;
    o->index = index;
    o->next = p->free_list;
    p->free_list = o;
    p->in_use--;
}
