/* modules/http/http_cache.h - the open file cache (http_cache.c). */
#ifndef ZERG_HTTP_CACHE_H
#define ZERG_HTTP_CACHE_H

#include "http.h"

struct stat;
typedef struct http_ofc http_ofc;
http_ofc *http_ofc_get(const http_location *loc, const char *key, size_t klen);
/* Caches fd (not taken) when its pages are all resident; NULL otherwise.
 * With keep_fd it keeps a duplicate of fd too, to splice from. */
http_ofc *http_ofc_put(const http_location *loc, const char *key, size_t klen, int fd,
                       const struct stat *st, const char *name, size_t nlen, uint64_t valid,
                       uint64_t max_size, int keep_fd);
const struct stat *http_ofc_stat(const http_ofc *e);
const char *http_ofc_name(const http_ofc *e, size_t *nlen);
/* Whether a body of len bytes goes by api->write_file (sendfile,
 * sendfile_min): splicing costs two io-wq handoffs per chunk, more than
 * copying a small body. */
static inline int http_sendfile_wanted(const http_conn *hc, uint64_t len)
{
    const http_srv *s = hc->srv;
    return s->sendfile && len >= s->sendfile_min && len && ZERG_API_HAS(http_api, write_file);
}
/* Queues len bytes from start of the cached file (zero-copy: spliced from
 * its descriptor when it kept one, else from its mapping). */
int http_ofc_send(http_conn *hc, http_ofc *e, uint64_t start, uint64_t len);
void http_ofc_unref(http_ofc *e);
void http_ofc_clear(void);

/* Its directive rows (composed by http_conf.c). */
extern const zerg_directive http_cache_server_directives[];

#endif
