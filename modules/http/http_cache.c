/* modules/http/http_cache.c - the open file cache (open_file_cache_valid): per
 * worker, small files' stat and a mapping of their (resident) pages (and a
 * descriptor to splice from, for those sendfile takes), by location and path,
 * trusted for a while and shared by the answers sending from them. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "http_out.h"
#include "http_cache.h"

#define HTTP_OFC_SLOTS 1024

struct http_ofc {
    const http_location *loc;
    char *key;
    size_t klen;
    void *map;
    size_t maplen;
    int fd; /* a duplicate to splice from, or -1 */
    struct stat st;
    char *name;
    size_t nlen;
    uint64_t expires;
    int refs; /* the table's own, plus one per answer sending from map */
};

static http_ofc *http_ofc_table[HTTP_OFC_SLOTS];

static uint32_t http_ofc_hash(const http_location *loc, const char *k, size_t n)
{
    uint32_t h = 2166136261u ^ (uint32_t)(uintptr_t)loc;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)k[i]) * 16777619u;
    return h;
}

void http_ofc_unref(http_ofc *e)
{
    if (--e->refs > 0)
        return;
    if (e->map)
        munmap(e->map, e->maplen);
    if (e->fd >= 0)
        close(e->fd);
    free(e->key);
    free(e);
}

static void http_ofc_done(void *arg)
{
    http_ofc_unref(arg);
}

http_ofc *http_ofc_get(const http_location *loc, const char *key, size_t klen)
{
    uint32_t slot = http_ofc_hash(loc, key, klen) % HTTP_OFC_SLOTS;
    http_ofc *e = http_ofc_table[slot];
    if (!e || e->loc != loc || e->klen != klen || memcmp(e->key, key, klen) != 0)
        return NULL;
    if (http_api->now_ms(http_W.w) >= e->expires) {
        http_ofc_table[slot] = NULL;
        http_ofc_unref(e);
        return NULL;
    }
    return e;
}

http_ofc *http_ofc_put(const http_location *loc, const char *key, size_t klen, int fd,
                       const struct stat *st, const char *name, size_t nlen, uint64_t valid,
                       uint64_t max_size, int keep_fd)
{
    static long pagesz;
    if (!pagesz)
        pagesz = sysconf(_SC_PAGESIZE);
    size_t size = (size_t)st->st_size;
    if ((uint64_t)st->st_size > max_size)
        return NULL;
    size_t npages = (size + (size_t)pagesz - 1) / (size_t)pagesz;
    unsigned char vec[4096];
    if (npages > sizeof(vec))
        return NULL;
    void *map = NULL;
    if (size) {
        map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
        if (map == MAP_FAILED)
            return NULL;
        int resident = mincore(map, size, vec) == 0;
        for (size_t i = 0; resident && i < npages; i++)
            resident = vec[i] & 1;
        if (!resident) {
            munmap(map, size);
            return NULL;
        }
    }
    http_ofc *e = calloc(1, sizeof(*e));
    char *k = e ? malloc(klen + nlen + 2) : NULL;
    if (!k) {
        free(e);
        if (map)
            munmap(map, size);
        return NULL;
    }
    memcpy(k, key, klen);
    k[klen] = 0;
    memcpy(k + klen + 1, name, nlen);
    k[klen + 1 + nlen] = 0;
    e->loc = loc;
    e->key = k;
    e->klen = klen;
    e->name = k + klen + 1;
    e->nlen = nlen;
    e->map = map;
    e->maplen = size;
    e->fd = keep_fd ? fcntl(fd, F_DUPFD_CLOEXEC, 0) : -1; /* none: sent from the map */
    e->st = *st;
    e->expires = http_api->now_ms(http_W.w) + valid;
    e->refs = 1;
    uint32_t slot = http_ofc_hash(loc, key, klen) % HTTP_OFC_SLOTS;
    if (http_ofc_table[slot])
        http_ofc_unref(http_ofc_table[slot]);
    http_ofc_table[slot] = e;
    return e;
}

const struct stat *http_ofc_stat(const http_ofc *e)
{
    return &e->st;
}

const char *http_ofc_name(const http_ofc *e, size_t *nlen)
{
    *nlen = e->nlen;
    return e->name;
}

int http_ofc_send(http_conn *hc, http_ofc *e, uint64_t start, uint64_t len)
{
    e->refs++;
    if (e->fd >= 0 && http_sendfile_wanted(hc, len)) {
        int rc = http_out_write_file(hc, e->fd, start, len, http_ofc_done, e);
        if (rc == 0)
            return 0;
        if (rc != -EAGAIN && rc != -EOPNOTSUPP) {
            http_ofc_unref(e);
            return rc;
        }
    }
    int rc = http_out_write_ext(hc, (const char *)e->map + start, (size_t)len, http_ofc_done, e);
    if (rc != 0)
        http_ofc_unref(e); /* a refused write_ext does not run done */
    return rc;
}

void http_ofc_clear(void)
{
    for (size_t i = 0; i < HTTP_OFC_SLOTS; i++) {
        if (http_ofc_table[i]) {
            http_ofc_unref(http_ofc_table[i]);
            http_ofc_table[i] = NULL;
        }
    }
}

const zerg_directive http_cache_server_directives[] = {
    {"open_file_cache_valid", ZERG_CONF_MSEC, offsetof(http_srv, open_file_cache_valid), NULL, 0,
     0},
    ZERG_DIRECTIVE_END,
};
