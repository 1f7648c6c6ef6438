/* modules/http/http_out.h - the response layer's body writes: a handler
 * answers through these, and the bytes go to an HTTP/1.1 connection's
 * output queue or into an HTTP/2 stream's DATA frames (http2_stream.c).
 * The head goes through http_write_head (http_response.c) either way. */
#ifndef ZERG_HTTP_OUT_H
#define ZERG_HTTP_OUT_H

#include "http.h"
#include "http2.h"

/* As api->write: the bytes are copied. */
static inline int http_out_write(http_conn *hc, const void *p, size_t len)
{
    return hc->h2 ? http2_body_write(hc, p, len, 1, NULL, NULL) : http_api->write(hc->c, p, len);
}

/* As api->write_ext: p stays valid until done(arg) runs (not run when
 * this fails). */
static inline int http_out_write_ext(http_conn *hc, const void *p, size_t len, zerg_done_fn done,
                                     void *arg)
{
    return hc->h2 ? http2_body_write(hc, p, len, 0, done, arg)
                  : http_api->write_ext(hc->c, p, len, done, arg);
}

/* As api->write_file; an HTTP/2 stream's bytes are framed, never spliced:
 * -EOPNOTSUPP sends them another way (a mapping, reads). */
static inline int http_out_write_file(http_conn *hc, int fd, uint64_t off, uint64_t len,
                                      zerg_done_fn done, void *arg)
{
    return hc->h2 ? -EOPNOTSUPP : http_api->write_file(hc->c, fd, off, len, done, arg);
}

#endif
