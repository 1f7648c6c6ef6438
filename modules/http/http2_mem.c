/* modules/http/http2_mem.c - the memory of HTTP/2 sessions (nghttp2's, the
 * streams', the body pieces'): small blocks kept on the worker's free lists
 * per size class, bounded, and all given back once no session is left. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http2.h"

/* A request on a connection with one stream in flight allocates and frees
 * the same few sizes (nghttp2's stream, outbound items, header copies; the
 * stream; a piece): 64 connections answered in one loop turn overflow
 * malloc's per-thread cache (7 blocks a size), and each miss costs more
 * than the frames' own work. Sanitizer builds use malloc directly, so that
 * a use after free is still caught. */
#if defined(__SANITIZE_ADDRESS__)
#define HTTP2_MEM_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define HTTP2_MEM_CACHE 0
#endif
#endif
#ifndef HTTP2_MEM_CACHE
#define HTTP2_MEM_CACHE 1
#endif

#define HTTP2_MEM_MIN_SHIFT 6 /* classes of 64, 128, ... 1024 bytes */
#define HTTP2_MEM_CLASSES   5
#define HTTP2_MEM_BIG       HTTP2_MEM_CLASSES /* malloc's own block */
#define HTTP2_MEM_KEEP      128               /* free blocks kept per class */

/* Before each block: its size asked for and its class; on a free list the
 * first word links the next free block. */
typedef struct mem_hdr {
    size_t size;
    size_t cls;
} mem_hdr;

static struct {
    mem_hdr *head;
    unsigned n;
} mem_free[HTTP2_MEM_CLASSES];
static unsigned mem_sessions;

static size_t class_bytes(size_t cls)
{
    return (size_t)1 << (cls + HTTP2_MEM_MIN_SHIFT);
}

static size_t class_of(size_t size)
{
    size_t need = (size + sizeof(mem_hdr) - 1) >> HTTP2_MEM_MIN_SHIFT; /* < 1: 64 bytes do */
    if (!HTTP2_MEM_CACHE || size > class_bytes(HTTP2_MEM_CLASSES - 1) - sizeof(mem_hdr))
        return HTTP2_MEM_BIG;
    return need ? (size_t)(64 - __builtin_clzll((unsigned long long)need)) : 0;
}

static mem_hdr **next_of(mem_hdr *h)
{
    return (mem_hdr **)(void *)h;
}

void *http2_mem_alloc(size_t size)
{
    size_t cls = class_of(size);
    mem_hdr *h = NULL;
    if (cls != HTTP2_MEM_BIG && (h = mem_free[cls].head)) {
        mem_free[cls].head = *next_of(h);
        mem_free[cls].n--;
    } else if (!(h = malloc(cls == HTTP2_MEM_BIG ? sizeof(*h) + size : class_bytes(cls)))) {
        return NULL;
    }
    h->size = size;
    h->cls = cls;
    return h + 1;
}

void http2_mem_free(void *p)
{
    if (!p)
        return;
    mem_hdr *h = (mem_hdr *)p - 1;
    size_t cls = h->cls;
    if (cls != HTTP2_MEM_BIG && mem_free[cls].n < HTTP2_MEM_KEEP && mem_sessions) {
        *next_of(h) = mem_free[cls].head;
        mem_free[cls].head = h;
        mem_free[cls].n++;
        return;
    }
    free(h);
}

void *http2_mem_calloc(size_t n, size_t size)
{
    if (size && n > SIZE_MAX / size)
        return NULL;
    void *p = http2_mem_alloc(n * size);
    return p ? memset(p, 0, n * size) : NULL;
}

void *http2_mem_realloc(void *p, size_t size)
{
    if (!p)
        return http2_mem_alloc(size);
    mem_hdr *h = (mem_hdr *)p - 1;
    if (h->cls == HTTP2_MEM_BIG && class_of(size) == HTTP2_MEM_BIG) {
        if (!(h = realloc(h, sizeof(*h) + size)))
            return NULL;
        h->size = size;
        return h + 1;
    }
    if (h->cls != HTTP2_MEM_BIG && size <= class_bytes(h->cls) - sizeof(*h)) {
        h->size = size;
        return p;
    }
    void *q = http2_mem_alloc(size);
    if (!q)
        return NULL;
    memcpy(q, p, h->size < size ? h->size : size);
    http2_mem_free(p);
    return q;
}

/* A session starts; when the last one ends the kept blocks go back. */
void http2_mem_hold(void)
{
    mem_sessions++;
}

void http2_mem_release(void)
{
    if (--mem_sessions)
        return;
    for (size_t cls = 0; cls < HTTP2_MEM_CLASSES; cls++) {
        while (mem_free[cls].head) {
            mem_hdr *h = mem_free[cls].head;
            mem_free[cls].head = *next_of(h);
            free(h);
        }
        mem_free[cls].n = 0;
    }
}

static void *ng_malloc(size_t size, void *ud)
{
    (void)ud;
    return http2_mem_alloc(size);
}

static void ng_free(void *p, void *ud)
{
    (void)ud;
    http2_mem_free(p);
}

static void *ng_calloc(size_t n, size_t size, void *ud)
{
    (void)ud;
    return http2_mem_calloc(n, size);
}

static void *ng_realloc(void *p, size_t size, void *ud)
{
    (void)ud;
    return http2_mem_realloc(p, size);
}

nghttp2_mem http2_mem = {NULL, ng_malloc, ng_free, ng_calloc, ng_realloc};
