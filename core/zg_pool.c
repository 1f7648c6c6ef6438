/* zg_pool.c - slab-backed object pools (see zg_pool.h). */
#include "zg_pool.h"

#include <stdlib.h>
#include <string.h>

#define PER (1u << ZG_POOL_CHUNK_SHIFT)

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

/* A slot for a new slab: one released before, or a new one at the end. */
static int64_t slab_slot(zg_pool *p)
{
    for (uint32_t i = 0; i < p->nslabs && p->live_slabs < p->nslabs; i++)
        if (!p->slabs[i])
            return i;
    if (p->nslabs == p->cap_slabs) {
        uint32_t cap = p->cap_slabs ? p->cap_slabs * 2 : 8;
        void **s = realloc(p->slabs, cap * sizeof(void *));
        if (!s)
            return -1;
        p->slabs = s;
        p->cap_slabs = cap;
    }
    p->slabs[p->nslabs] = NULL;
    return p->nslabs++;
}

static int grow(zg_pool *p)
{
    if (p->max_objs && p->live_slabs * PER >= p->max_objs)
        return -1;
    char *slab = aligned_alloc(64, ((p->obj_size * PER) + 63) & ~(size_t)63);
    if (!slab)
        return -1;
    int64_t at = slab_slot(p);
    if (at < 0) {
        free(slab);
        return -1;
    }
    memset(slab, 0, p->obj_size * PER); /* callers may test fields of unused objects */
    uint32_t base = (uint32_t)at * PER;
    p->slabs[at] = slab;
    p->live_slabs++;
    for (uint32_t i = PER; i-- > 0;) {
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
    if (++p->in_use > p->peak)
        p->peak = p->in_use;
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

/* Which slabs go: wholly free ones, from the highest index down, while the
 * rest still hold the peak. Returns how many were marked in gone. */
static uint32_t pick_free_slabs(zg_pool *p, uint8_t *gone)
{
    uint32_t *nfree = calloc(p->nslabs, sizeof(uint32_t));
    if (!nfree)
        return 0;
    for (struct free_obj *o = p->free_list; o; o = o->next)
        nfree[o->index >> ZG_POOL_CHUNK_SHIFT]++;
    uint32_t live = p->live_slabs, n = 0;
    for (uint32_t i = p->nslabs; i-- > 0 && (live - 1) * PER >= p->peak && live > 1;) {
        if (p->slabs[i] && nfree[i] == PER) {
            gone[i] = 1;
            live--;
            n++;
        }
    }
    free(nfree);
    return n;
}

size_t zg_pool_trim(zg_pool *p)
{
    size_t released = 0;
    uint8_t *gone = p->nslabs ? calloc(p->nslabs, 1) : NULL;
    if (gone && pick_free_slabs(p, gone)) {
        struct free_obj **link = (struct free_obj **)&p->free_list;
        while (*link) { /* unthread the objects of the slabs that go */
            if (gone[(*link)->index >> ZG_POOL_CHUNK_SHIFT])
                *link = (*link)->next;
            else
                link = (struct free_obj **)&(*link)->next;
        }
        for (uint32_t i = 0; i < p->nslabs; i++)
            if (gone[i]) {
                free(p->slabs[i]);
                p->slabs[i] = NULL;
                p->live_slabs--;
                released += p->obj_size * PER;
            }
    }
    free(gone);
    p->peak = p->in_use;
    return released;
}
