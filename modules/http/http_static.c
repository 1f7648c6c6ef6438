/* modules/http/http_static.c - the static file handler: safe opening beneath
 * the root (openat2 RESOLVE_BENEATH), index files, conditional and range
 * requests, spliced sends (api->write_file), mapped sends of resident files,
 * and io_uring streaming otherwise. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http.h"
#include "http_out.h"
#include "http_autoindex.h"
#include "http_cache.h"
#include "http_static.h"

#define HTTP_PATH_MAX 4096 /* longer request paths are answered 414 */

enum { HTTP_B_FREE = 0, HTTP_B_READING, HTTP_B_READY, HTTP_B_SENDING };

struct http_file;

typedef struct http_fbuf {
    struct http_file *f;
    uint8_t *p;
    uint64_t off;
    size_t len;
    int state;
} http_fbuf;

typedef struct http_file {
    http_conn *hc; /* NULL once detached (done, or the connection closed) */
    zerg_conn *c;
    int fd;
    uint64_t off, end, send_off;
    size_t bufsz;
    int pending; /* reads and sends in flight */
    http_fbuf b[2];
} http_file;

static int http_openat2_ok = 1;

static int http_open_beneath(int dirfd, const char *rel)
{
    if (http_openat2_ok) {
        struct open_how how;
        memset(&how, 0, sizeof(how));
        how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
        how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
        int fd = (int)syscall(SYS_openat2, dirfd, rel, &how, sizeof(how));
        if (fd >= 0 || errno != ENOSYS)
            return fd;
        http_openat2_ok = 0;
    }
    /* old kernels: no symlinks at all */
    return openat(dirfd, rel, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW);
}

int http_static_server_init(http_srv *s)
{
    for (size_t i = 0; i < s->nlocs; i++) {
        http_location *l = &s->locs[i];
        if (l->kind != HTTP_LOC_STATIC)
            continue;
        l->root_fd = open(l->root, O_PATH | O_DIRECTORY | O_CLOEXEC);
        if (l->root_fd < 0)
            http_api->log(ZERG_LOG_WARN, "location %s: root %s: %s (answering 404)", l->path,
                          l->root, strerror(errno));
    }
    return 0;
}

static int http_errno_to_status(int e)
{
    switch (e) {
    case ENOENT:
    case ENOTDIR:
    case ENAMETOOLONG:
        return 404;
    case EACCES:
    case EPERM:
    case EXDEV: /* would leave the root */
    case ELOOP:
        return 403;
    case EMFILE:
    case ENFILE:
        return 503;
    default:
        return 500;
    }
}

static void http_file_free(http_file *f)
{
    if (f->fd >= 0)
        close(f->fd);
    free(f->b[0].p);
    free(f->b[1].p);
    free(f);
}

static void http_file_maybe_free(http_file *f)
{
    if (!f->hc && f->pending == 0)
        http_file_free(f);
}

static void http_file_fail(http_file *f)
{
    http_conn *hc = f->hc;
    if (!hc)
        return;
    hc->file = NULL;
    f->hc = NULL;
    http_conn_abort(hc);
}

static void http_file_pump(http_file *f);

static void http_file_sent(void *arg)
{
    http_fbuf *b = arg;
    http_file *f = b->f;
    b->state = HTTP_B_FREE;
    f->pending--;
    if (f->hc) {
        http_api->conn_timeout(f->c, f->hc->srv->send_timeout);
        http_file_pump(f);
    } else {
        http_file_maybe_free(f);
    }
}

/* Returns 1 when f may be gone (detached, freed): do not touch it after. */
static int http_file_send_ready(http_file *f)
{
    for (;;) {
        http_fbuf *b = NULL;
        for (int i = 0; i < 2; i++)
            if (f->b[i].state == HTTP_B_READY && f->b[i].off == f->send_off)
                b = &f->b[i];
        if (!b)
            return 0;
        b->state = HTTP_B_SENDING;
        f->pending++;
        f->send_off += b->len;
        if (http_out_write_ext(f->hc, b->p, b->len, http_file_sent, b) != 0) {
            /* done may or may not have run: treat as a failed connection */
            if (b->state == HTTP_B_SENDING) {
                b->state = HTTP_B_FREE;
                f->pending--;
            }
            http_file_fail(f);
            http_file_maybe_free(f);
            return 1;
        }
        if (!f->hc) {
            http_file_maybe_free(f);
            return 1;
        }
        if (f->send_off >= f->end) {
            /* everything queued: the request is answered; buffers live on
             * until their sends are done */
            http_conn *hc = f->hc;
            hc->file = NULL;
            f->hc = NULL;
            http_request_done(hc);
            http_file_maybe_free(f);
            return 1;
        }
    }
}

static void http_file_read_done(void *arg, ssize_t res)
{
    http_fbuf *b = arg;
    http_file *f = b->f;
    f->pending--;
    if (!f->hc) {
        b->state = HTTP_B_FREE;
        http_file_maybe_free(f);
        return;
    }
    if (res < 0 || (size_t)res != b->len) {
        http_api->log(ZERG_LOG_ERROR, "file read: %s",
                      res < 0 ? strerror((int)-res) : "short read (file changed?)");
        b->state = HTTP_B_FREE;
        http_file_fail(f);
        http_file_maybe_free(f);
        return;
    }
    b->state = HTTP_B_READY;
    if (http_file_send_ready(f))
        return;
    http_file_pump(f);
}

static void http_file_pump(http_file *f)
{
    if (!f->hc || http_api->conn_closing(f->c))
        return;
    for (int i = 0; i < 2 && f->off < f->end; i++) {
        http_fbuf *b = &f->b[i];
        if (b->state != HTTP_B_FREE)
            continue;
        if (!b->p) {
            b->p = malloc(f->bufsz);
            if (!b->p) {
                http_file_fail(f);
                return;
            }
        }
        uint64_t left = f->end - f->off;
        b->len = left < f->bufsz ? (size_t)left : f->bufsz;
        b->off = f->off;
        b->state = HTTP_B_READING;
        f->off += b->len;
        f->pending++;
        if (http_api->file_io(http_W.w, f->c, 0, f->fd, b->p, b->len, (int64_t)b->off,
                              http_file_read_done, b) != 0) {
            f->pending--;
            b->state = HTTP_B_FREE;
            http_file_fail(f);
            return;
        }
    }
}

void http_file_conn_closed(http_conn *hc)
{
    http_file *f = hc->file;
    if (!f)
        return;
    hc->file = NULL;
    f->hc = NULL;
    http_file_maybe_free(f);
}

typedef struct http_map {
    void *p;
    size_t len;
} http_map;

static void http_map_done(void *arg)
{
    http_map *m = arg;
    munmap(m->p, m->len);
    free(m);
}

/* Files up to file_mmap_max whose pages are all in the page cache are sent
 * straight from a read-only mapping: no read, one copy less, and nothing can
 * block (mincore says no page fault will need the disk). Returns 0 when the
 * body is queued (fd closed), -1 to use the streaming path. */
static int http_send_mapped(http_conn *hc, int fd, uint64_t start, uint64_t clen)
{
    static long pagesz;
    if (!pagesz)
        pagesz = sysconf(_SC_PAGESIZE);
    uint64_t pa = start & ~(uint64_t)(pagesz - 1);
    size_t maplen = (size_t)(start - pa + clen);
    size_t npages = (maplen + (size_t)pagesz - 1) / (size_t)pagesz;
    unsigned char vec[4096];
    if (npages > sizeof(vec))
        return -1;
    void *p = mmap(NULL, maplen, PROT_READ, MAP_SHARED, fd, (off_t)pa);
    if (p == MAP_FAILED)
        return -1;
    int resident = mincore(p, maplen, vec) == 0;
    for (size_t i = 0; resident && i < npages; i++)
        resident = vec[i] & 1;
    http_map *m = resident ? malloc(sizeof(*m)) : NULL;
    if (!m) {
        munmap(p, maplen);
        return -1;
    }
    m->p = p;
    m->len = maplen;
    close(fd);
    if (http_out_write_ext(hc, (char *)p + (start - pa), (size_t)clen, http_map_done, m) != 0) {
        http_map_done(m); /* a refused write_ext does not run done */
        http_conn_abort(hc);
    }
    return 0;
}

static void http_fd_close(int fd)
{
    if (fd >= 0)
        close(fd);
}

/* Header lines for a file's answer, appended into a fixed buffer. */
typedef struct http_extra {
    char buf[1024];
    size_t len;
} http_extra;

__attribute__((format(printf, 2, 3))) static void http_extra_add(http_extra *x, const char *fmt,
                                                                 ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(x->buf + x->len, sizeof(x->buf) - x->len, fmt, ap);
    va_end(ap);
    if (n > 0)
        x->len += (size_t)n < sizeof(x->buf) - x->len ? (size_t)n : sizeof(x->buf) - x->len - 1;
}

/* A file's validators: its ETag (len 0 when etag is off) and Last-Modified. */
typedef struct http_validators {
    char etag[64];
    size_t etag_len;
    char last_modified[30];
} http_validators;

static void http_validators_of(const http_srv *s, const struct stat *st, http_validators *v)
{
    v->etag_len =
        s->etag ? http_fmt_etag(v->etag, sizeof(v->etag), st->st_mtime, (uint64_t)st->st_size) : 0;
    http_fmt_date(st->st_mtime, v->last_modified);
}

static void http_add_validators(http_extra *x, const http_validators *v)
{
    http_extra_add(x, "Last-Modified: %s\r\n", v->last_modified);
    if (v->etag_len)
        http_extra_add(x, "ETag: %s\r\n", v->etag);
}

/* The conditionals (RFC 9110 13.2.2): If-None-Match, else If-Modified-Since. */
static int http_not_modified(http_conn *hc, const struct stat *st, const http_validators *v)
{
    const http_req *r = &hc->req;
    if (r->hcount[HTTP_H_INM]) {
        http_span s = r->hv[HTTP_H_INM];
        return v->etag_len && http_etag_match(http_hbuf(hc, s), s.len, v->etag, v->etag_len);
    }
    if (r->hcount[HTTP_H_IMS]) {
        http_span s = r->hv[HTTP_H_IMS];
        time_t t = http_parse_date(http_hbuf(hc, s), s.len);
        return t != (time_t)-1 && st->st_mtime <= t;
    }
    return 0;
}

/* If-Range: the range applies while the file is the one it names. */
static int http_if_range_holds(http_conn *hc, const struct stat *st, const http_validators *v)
{
    const http_req *r = &hc->req;
    if (!r->hcount[HTTP_H_IF_RANGE])
        return 1;
    http_span s = r->hv[HTTP_H_IF_RANGE];
    const char *iv = http_hbuf(hc, s);
    if (s.len && iv[0] == '"')
        return v->etag_len && s.len == v->etag_len && memcmp(iv, v->etag, s.len) == 0;
    return http_parse_date(iv, s.len) == st->st_mtime;
}

/* The Range asked for, as http_parse_range: 1 with [*start, *end], 0 for
 * the whole file, -1 when unsatisfiable. */
static int http_file_range(http_conn *hc, const struct stat *st, const http_validators *v,
                           uint64_t *start, uint64_t *end)
{
    const http_req *r = &hc->req;
    if (r->hcount[HTTP_H_RANGE] != 1 || r->method != HTTP_GET || !http_if_range_holds(hc, st, v))
        return 0;
    http_span s = r->hv[HTTP_H_RANGE];
    return http_parse_range(http_hbuf(hc, s), s.len, (uint64_t)st->st_size, start, end);
}

/* The representation's header lines: type and encoding, and for a plain
 * answer (not an error_page's) its validators and Accept-Ranges. */
static void http_add_file_headers(http_conn *hc, http_extra *x, const char *name, size_t nlen,
                                  const http_validators *v)
{
    const http_srv *s = hc->srv;
    int err = hc->req.error_status;
    const char *type = http_mime_lookup(name, nlen, s->mime, s->nmime);
    http_extra_add(x, "Content-Type: %s\r\n", type ? type : s->default_type);
    if (hc->req.gzipped)
        http_extra_add(x, "Content-Encoding: gzip\r\n");
    if (err == 405)
        http_extra_add(x, "Allow: GET, HEAD\r\n");
    if (!err) {
        http_add_validators(x, v);
        http_extra_add(x, "Accept-Ranges: bytes\r\n");
    }
}

/* Streams clen bytes from start of fd through file_buffer sized reads on
 * the ring: 1 (the answer goes on asynchronously), 0 after an abort. */
static int http_stream_file(http_conn *hc, int fd, uint64_t start, uint64_t clen)
{
    const http_srv *s = hc->srv;
    http_file *f = calloc(1, sizeof(*f));
    if (!f) {
        http_fd_close(fd);
        http_conn_abort(hc);
        return 0;
    }
    f->hc = hc;
    f->c = hc->c;
    f->fd = fd;
    f->off = f->send_off = start;
    f->end = start + clen;
    f->bufsz = clen < s->file_buffer ? (size_t)clen : (size_t)s->file_buffer;
    f->b[0].f = f->b[1].f = f;
    hc->file = f;
    hc->phase = HTTP_PH_BUSY;
    http_api->conn_timeout(hc->c, s->send_timeout);
    http_file_pump(f);
    return 1;
}

/* A body spliced from fd (api->write_file), queued at once in pieces: each
 * piece sent restarts send_timeout, which (as nginx's) bounds the time
 * between two writes, not the whole answer; the last one closes fd. At
 * most HTTP_SPLICE_PIECES pieces, of at least HTTP_SPLICE_PIECE bytes. */
#define HTTP_SPLICE_PIECE  (1u << 20)
#define HTTP_SPLICE_PIECES 256

typedef struct http_spliced {
    zerg_conn *c;
    uint64_t send_timeout;
    int fd;
    unsigned pieces; /* queued and not sent yet, plus one while queueing */
} http_spliced;

static void http_spliced_done(void *arg)
{
    http_spliced *sp = arg;
    if (--sp->pieces) {
        http_api->conn_timeout(sp->c, sp->send_timeout); /* a no-op once closing */
        return;
    }
    close(sp->fd);
    free(sp);
}

/* Queues the body to be spliced from fd (then closed once sent): 0 when
 * queued or aborted, -1 to send it another way (no pipe free now, a kernel
 * without splice). */
static int http_send_spliced(http_conn *hc, int fd, uint64_t start, uint64_t clen)
{
    http_spliced *sp = malloc(sizeof(*sp));
    if (!sp)
        return -1;
    *sp = (http_spliced){.c = hc->c, .send_timeout = hc->srv->send_timeout, .fd = fd, .pieces = 1};
    uint64_t piece = clen / HTTP_SPLICE_PIECES;
    if (piece < HTTP_SPLICE_PIECE)
        piece = HTTP_SPLICE_PIECE;
    int rc = 0;
    for (uint64_t at = 0; at < clen && rc == 0; at += piece) {
        uint64_t n = clen - at < piece ? clen - at : piece;
        rc = http_out_write_file(hc, fd, start + at, n, http_spliced_done, sp);
        if (rc == 0)
            sp->pieces++;
        else if (at == 0 && (rc == -EAGAIN || rc == -EOPNOTSUPP)) {
            free(sp);
            return -1;
        }
    }
    if (rc != 0)
        http_conn_abort(hc);
    http_spliced_done(sp); /* queueing is over */
    return 0;
}

/* The body: from the open file cache, spliced, a resident mapping, or
 * streamed. */
static int http_send_body(http_conn *hc, int fd, http_ofc *e, uint64_t start, uint64_t clen)
{
    if (e) {
        if (http_ofc_send(hc, e, start, clen) != 0)
            http_conn_abort(hc);
        return 0;
    }
    if (http_sendfile_wanted(hc, clen) && http_send_spliced(hc, fd, start, clen) == 0)
        return 0;
    if (clen >= 16384 && clen <= hc->srv->file_mmap_max &&
        http_send_mapped(hc, fd, start, clen) == 0)
        return 0;
    return http_stream_file(hc, fd, start, clen);
}

/* Answers with fd (an open regular file) or the cached file e (fd -1); name
 * gives the MIME type. An error_page answers with its error status, whole
 * and unconditionally. */
static int http_serve_fd(http_conn *hc, int fd, http_ofc *e, const struct stat *st,
                         const char *name, size_t nlen)
{
    http_req *r = &hc->req;
    int err = r->error_status;
    uint64_t size = (uint64_t)st->st_size;
    http_validators v;
    http_validators_of(hc->srv, st, &v);
    http_extra x = {.len = 0};
    /* gzip_static: caches must key on Accept-Encoding, 304s included */
    if (r->loc && r->loc->gzip_static)
        http_extra_add(&x, "Vary: Accept-Encoding\r\n");
    if (!err && http_not_modified(hc, st, &v)) {
        http_add_validators(&x, &v);
        http_write_head(hc, 304, x.buf, x.len, -1);
        http_fd_close(fd);
        return 0;
    }
    uint64_t start = 0, end = size ? size - 1 : 0;
    int ranged = err ? 0 : http_file_range(hc, st, &v, &start, &end);
    if (ranged < 0) {
        http_extra_add(&x, "Content-Range: bytes */%llu\r\n", (unsigned long long)size);
        http_write_head(hc, 416, x.buf, x.len, 0);
        http_fd_close(fd);
        return 0;
    }
    if (ranged)
        http_extra_add(&x, "Content-Range: bytes %llu-%llu/%llu\r\n", (unsigned long long)start,
                       (unsigned long long)end, (unsigned long long)size);
    http_add_file_headers(hc, &x, name, nlen, &v);
    uint64_t clen = size ? end - start + 1 : 0;
    int status = err ? err : ranged ? 206 : 200;
    if (http_write_head(hc, status, x.buf, x.len, (int64_t)clen) != 0) {
        http_fd_close(fd);
        http_conn_abort(hc);
        return 0;
    }
    if (r->head || clen == 0) {
        http_fd_close(fd);
        return 0;
    }
    r->sent = clen;
    return http_send_body(hc, fd, e, start, clen);
}

/* Serves the opened file, through the open file cache when it is on. */
static int http_serve_open(http_conn *hc, const http_location *loc, const char *path, size_t plen,
                           int fd, const struct stat *st, const char *name, size_t nlen)
{
    http_srv *s = hc->srv;
    if (s->open_file_cache_valid && !loc->gzip_static) { /* one cache entry per path */
        http_ofc *e =
            http_ofc_put(loc, path, plen, fd, st, name, nlen, s->open_file_cache_valid,
                         s->file_mmap_max, http_sendfile_wanted(hc, (uint64_t)st->st_size));
        if (e) {
            close(fd);
            return http_serve_fd(hc, -1, e, http_ofc_stat(e), name, nlen);
        }
    }
    return http_serve_fd(hc, fd, NULL, st, name, nlen);
}

/* A static request from its path to its file: the target is opened beneath
 * the root, then, for a directory, each index name in turn. Opens go through
 * the ring when the core can (a cold path lookup never blocks the loop), or
 * happen here; either way every step ends in open_step(). */
typedef struct http_open {
    struct http_open *next_free;
    http_conn *hc;
    const http_location *loc;
    int dfd;           /* the directory while its index names are tried */
    uint8_t gz;        /* gzip_static: 1 trying name.gz, 2 it failed: the name */
    size_t gz_at;      /* where ".gz" was appended to rel */
    size_t next_index; /* the next index name to try */
    size_t rl;         /* length of the directory part of rel */
    size_t plen;
    struct open_how how;
    char rel[HTTP_PATH_MAX + 260]; /* beneath the root, room for an index name + .gz */
    char path[HTTP_PATH_MAX];      /* the request path */
} http_open;

/* Finished sequences wait here for the next request: no allocation per
 * request once as many as run at once have been made. */
static http_open *http_open_free;

static http_open *open_get(void)
{
    http_open *o = http_open_free;
    if (o)
        http_open_free = o->next_free;
    else
        o = malloc(sizeof(*o));
    return o;
}

void http_static_worker_exit(void)
{
    while (http_open_free) {
        http_open *o = http_open_free;
        http_open_free = o->next_free;
        free(o);
    }
}

static int open_step(http_open *o, int fd, int err);

static int http_ring_open_ok = 1; /* cleared when the ring lacks OPENAT2 */

static int http_async_open(void)
{
    return http_ring_open_ok && http_openat2_ok && ZERG_API_HAS(http_api, file_open);
}

/* Ends the sequence with status code (0/1/2 as http_serve_static). */
static int open_end(http_open *o, int code)
{
    if (o->dfd >= 0)
        close(o->dfd);
    o->next_free = http_open_free;
    http_open_free = o;
    return code;
}

static void open_done(void *arg, ssize_t res)
{
    http_open *o = arg;
    http_conn *hc = o->hc;
    if (hc->closing || http_api->conn_closing(hc->c)) {
        if (res >= 0)
            close((int)res);
        open_end(o, 2);
        if (hc->h2)
            http2_stream_unbusy(hc); /* a reset stream waited for this */
        return;
    }
    int code;
    if (res == -EINVAL) { /* a ring without openat2: open here from now on */
        http_ring_open_ok = 0;
        int fd = http_open_beneath(o->loc->root_fd, o->rel);
        code = open_step(o, fd, fd < 0 ? errno : 0);
    } else {
        code = open_step(o, res < 0 ? -1 : (int)res, res < 0 ? (int)-res : 0);
    }
    if (code == 0 && !hc->closing)
        http_request_done(hc);
    /* an answer queued whole (spliced, mapped) is watched by send_timeout
     * until it drains, as http_parse does for those given at once */
    if (code == 0 && !hc->closing && hc->phase == HTTP_PH_IDLE &&
        http_api->conn_out_pending(hc->c) > 65536) {
        hc->want_send_timeout = 1;
        http_api->conn_timeout(hc->c, hc->srv->send_timeout);
        http_api->conn_want_drain(hc->c);
    }
}

/* Whether o->rel could have a name.gz to try first (gzip_static). */
static int open_gz_candidate(const http_open *o)
{
    size_t n = strlen(o->rel);
    return o->hc->req.gzip_ok && o->gz == 0 && n && o->rel[n - 1] != '/' &&
           strcmp(o->rel, ".") != 0 && !(n > 3 && !strcmp(o->rel + n - 3, ".gz"));
}

/* Opens o->rel (name.gz first where gzip_static says so): through the ring
 * (1: goes on in open_done), else here. */
static int open_start(http_open *o)
{
    if (open_gz_candidate(o)) {
        o->gz_at = strlen(o->rel);
        memcpy(o->rel + o->gz_at, ".gz", 4);
        o->gz = 1;
    }
    if (http_async_open() &&
        http_api->file_open(http_api->conn_worker(o->hc->c), o->hc->c, o->loc->root_fd, o->rel,
                            &o->how, open_done, o) == 0) {
        o->hc->phase = HTTP_PH_BUSY; /* pipelined requests wait in the core */
        return 1;
    }
    int fd = http_open_beneath(o->loc->root_fd, o->rel);
    return open_step(o, fd, fd < 0 ? errno : 0);
}

/* The next index name of the directory, or what a directory without one
 * gets: a listing (autoindex) or 403. */
static int open_next_index(http_open *o)
{
    const http_location *loc = o->loc;
    while (o->next_index < loc->index.n) {
        const char *ix = loc->index.items[o->next_index++];
        size_t il = strlen(ix);
        if (il > 255)
            continue;
        memcpy(o->rel + o->rl, ix, il + 1);
        o->gz = 0;
        return open_start(o);
    }
    if (loc->autoindex) {
        int dfd = o->dfd;
        o->dfd = -1;
        int code = http_autoindex(o->hc, dfd, o->path, o->plen); /* takes dfd */
        return open_end(o, code);
    }
    http_send_error(o->hc, 403, 0);
    return open_end(o, 2);
}

/* A directory named without its final slash: redirect to it. */
static int redirect_to_dir(http_conn *hc, const char *path, size_t plen)
{
    /* a relative Location (RFC 9110 10.2.2) needs no Host */
    char extra[3 * HTTP_PATH_MAX + 64];
    size_t n = 10;
    memcpy(extra, "Location: ", 10);
    n += http_url_encode(path, plen, extra + n, sizeof(extra) - n - 8);
    memcpy(extra + n, "/\r\n", 3);
    n += 3;
    http_write_head(hc, 301, extra, n, 0);
    return 0;
}

static int open_step(http_open *o, int fd, int err)
{
    http_conn *hc = o->hc;
    struct stat st;
    /* fstat of an open file reads no disk: the open brought its inode in */
    int ok = fd >= 0 && fstat(fd, &st) == 0;
    if (o->gz == 1) { /* name.gz: served as name when it is a file, else name */
        o->rel[o->gz_at] = 0;
        if (ok && S_ISREG(st.st_mode)) {
            hc->req.gzipped = 1;
            return open_end(
                o, http_serve_open(hc, o->loc, o->path, o->plen, fd, &st, o->rel, o->gz_at));
        }
        if (fd >= 0)
            close(fd);
        o->gz = 2;
        return open_start(o);
    }
    if (o->dfd >= 0) { /* trying index names: a miss tries the next */
        if (!ok || !S_ISREG(st.st_mode)) {
            if (fd >= 0)
                close(fd);
            return open_next_index(o);
        }
    } else if (!ok) {
        if (fd >= 0)
            close(fd);
        http_send_error(hc, fd < 0 ? http_errno_to_status(err) : 500, 0);
        return open_end(o, 2);
    } else if (S_ISDIR(st.st_mode)) {
        if (hc->req.error_status) { /* an error_page must be a file */
            close(fd);
            http_send_error(hc, 404, 0);
            return open_end(o, 2);
        }
        if (o->path[o->plen - 1] != '/') {
            close(fd);
            return open_end(o, redirect_to_dir(hc, o->path, o->plen));
        }
        o->dfd = fd;
        return open_next_index(o);
    } else if (!S_ISREG(st.st_mode)) {
        close(fd);
        http_send_error(hc, 403, 0);
        return open_end(o, 2);
    }
    size_t nlen = strlen(o->rel);
    int code = http_serve_open(hc, o->loc, o->path, o->plen, fd, &st, o->rel, nlen);
    return open_end(o, code);
}

int http_serve_static(http_conn *hc, const http_location *loc, const char *path, size_t plen)
{
    if (loc->root_fd < 0) {
        http_send_error(hc, 404, 0);
        return 2;
    }
    http_req *r = &hc->req;
    r->gzip_ok = loc->gzip_static && r->hcount[HTTP_H_ACCEPT_ENCODING] == 1 &&
                 http_accepts_gzip(http_hbuf(hc, r->hv[HTTP_H_ACCEPT_ENCODING]),
                                   r->hv[HTTP_H_ACCEPT_ENCODING].len);
    r->gzipped = 0;
    if (hc->srv->open_file_cache_valid && !loc->gzip_static) {
        http_ofc *e = http_ofc_get(loc, path, plen);
        if (e) {
            size_t nl;
            const char *nm = http_ofc_name(e, &nl);
            return http_serve_fd(hc, -1, e, http_ofc_stat(e), nm, nl);
        }
    }
    if (plen > HTTP_PATH_MAX) {
        http_send_error(hc, 414, 0);
        return 2;
    }
    /* path is normalised: starts with '/', no "." or ".." segments */
    http_open *o = open_get();
    if (!o) {
        http_send_error(hc, 500, 0);
        return 2;
    }
    o->hc = hc;
    o->loc = loc;
    o->dfd = -1;
    o->gz = 0;
    o->next_index = 0;
    /* the file name drops the leading '/', or for alias the whole prefix
     * (which matched, so plen >= strip) */
    size_t strip = loc->alias ? loc->match_len : 1;
    o->rl = plen - strip;
    o->plen = plen;
    memcpy(o->path, path, plen);
    memcpy(o->rel, path + strip, o->rl);
    o->rel[o->rl] = 0;
    if (o->rl == 0)
        strcpy(o->rel, ".");
    memset(&o->how, 0, sizeof(o->how));
    o->how.flags = O_RDONLY | O_CLOEXEC | O_NONBLOCK;
    o->how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS;
    return open_start(o);
}
