/* tests/unit/test_http_proto.c - the http module driven through its hooks by a
 * mock core (a fake zerg_api that records output): keep-alive, pipelining,
 * errors and smuggling refusals, HEAD, return and static answers. */
#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http.h"

extern const zerg_module zerg_module_info;

/* ---- the mock core ---- */

struct zerg_conn {
    char ctx[sizeof(http_conn)] __attribute__((aligned(16)));
    void *conf;
    void *const *vhosts; /* blocks sharing the address; NULL: conf alone */
    size_t nvhosts;
    int closed, aborted, closing, paused;
    uint64_t timeout;
    char out[1 << 20];
    size_t outlen;
};
struct zerg_worker {
    int dummy;
};
struct zerg_conf_ctx {
    int errors;
};

static struct zerg_worker mw;
static zerg_stats mstats;

typedef struct mock_op {
    int kind; /* 0 io, 1 done */
    zerg_io_fn io;
    zerg_done_fn done;
    void *arg;
    ssize_t res;
} mock_op;
static mock_op ops[256];
static int nops;

static void m_log(int level, const char *fmt, ...)
{
    (void)level;
    (void)fmt;
}
static int m_conf_error(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *fmt, ...)
{
    cx->errors++;
    return -1;
}
static void *m_conf_alloc(zerg_conf_ctx *cx, size_t size)
{
    return calloc(1, size);
}
static char *m_conf_strdup(zerg_conf_ctx *cx, const char *s)
{
    return strdup(s);
}
static void m_want_peer(zerg_conf_ctx *cx)
{
}
static unsigned m_worker_id(zerg_worker *w)
{
    return 0;
}
static int m_draining(zerg_worker *w)
{
    return 0;
}
static uint64_t m_now_ms(zerg_worker *w)
{
    return 1000000;
}
static int64_t m_unix_time(zerg_worker *w)
{
    return 784111777;
}
static const zerg_stats *m_stats(zerg_worker *w)
{
    return &mstats;
}
static void m_timer_set(zerg_worker *w, zerg_timer *t, uint64_t ms)
{
}
static void m_timer_cancel(zerg_worker *w, zerg_timer *t)
{
}
static int m_file_io(zerg_worker *w, zerg_conn *owner, int is_write, int fd, void *buf, size_t len,
                     int64_t off, zerg_io_fn cb, void *arg)
{
    ssize_t r = is_write ? write(fd, buf, len) : pread(fd, buf, len, off);
    ops[nops++] = (mock_op){0, cb, NULL, arg, r};
    return 0;
}
static int ring_opens; /* opens the module asked the core for */
static int m_file_open(zerg_worker *w, zerg_conn *owner, int dirfd, const char *path,
                       const struct open_how *how, zerg_io_fn cb, void *arg)
{
    ring_opens++;
    long fd = syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
    ops[nops++] = (mock_op){0, cb, NULL, arg, fd < 0 ? -errno : fd};
    return 0;
}
static void *m_conn_ctx(zerg_conn *c)
{
    return c->ctx;
}
static void *m_conn_conf(zerg_conn *c)
{
    return c->conf;
}
static size_t m_conn_servers(zerg_conn *c, void *const **confs)
{
    *confs = c->vhosts ? c->vhosts : &c->conf;
    return c->vhosts ? c->nvhosts : 1;
}
static zerg_worker *m_conn_worker(zerg_conn *c)
{
    return &mw;
}
static const struct sockaddr *m_conn_peer(zerg_conn *c, socklen_t *len)
{
    return NULL;
}
static int m_conn_closing(zerg_conn *c)
{
    return c->closed || c->aborted;
}
static size_t m_out_pending(zerg_conn *c)
{
    return 0;
}
static void m_want_drain(zerg_conn *c)
{
}
static void m_conn_timeout(zerg_conn *c, uint64_t ms)
{
    c->timeout = ms;
}
static int m_write(zerg_conn *c, const void *data, size_t len)
{
    cr_assert(!c->closed && !c->aborted, "write after close");
    cr_assert(c->outlen + len <= sizeof(c->out));
    memcpy(c->out + c->outlen, data, len);
    c->outlen += len;
    return 0;
}
static void *m_write_reserve(zerg_conn *c, size_t min, size_t *avail)
{
    cr_assert(min <= 4096);
    cr_assert(!c->closed && !c->aborted, "write after close");
    *avail = sizeof(c->out) - c->outlen;
    return c->out + c->outlen;
}
static void m_write_commit(zerg_conn *c, size_t used)
{
    c->outlen += used;
}
static int m_write_ext(zerg_conn *c, const void *data, size_t len, zerg_done_fn done, void *arg)
{
    m_write(c, data, len);
    if (done)
        ops[nops++] = (mock_op){1, NULL, done, arg, 0};
    return 0;
}
static void m_pause(zerg_conn *c)
{
    c->paused = 1;
}
static void m_resume(zerg_conn *c)
{
    c->paused = 0;
}
static void m_close(zerg_conn *c)
{
    c->closed = 1;
}
static void m_abort(zerg_conn *c)
{
    c->aborted = 1;
}

/* The mock core's metrics: only the http module's own hook. */
struct zerg_text {
    char buf[65536];
    size_t len;
};
static void m_text_printf(zerg_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(t->buf + t->len, sizeof(t->buf) - t->len, fmt, ap);
    va_end(ap);
    cr_assert(n >= 0 && (size_t)n < sizeof(t->buf) - t->len);
    t->len += (size_t)n;
}
static const char *m_metrics(zerg_worker *w, size_t *len)
{
    static zerg_text text;
    text.len = 0;
    http_metrics(w, &text);
    *len = text.len;
    return text.buf;
}

static zerg_api mapi = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_api),
    .log = m_log,
    .conf_error = m_conf_error,
    .conf_alloc = m_conf_alloc,
    .conf_strdup = m_conf_strdup,
    .conf_want_peer_addr = m_want_peer,
    .worker_id = m_worker_id,
    .worker_draining = m_draining,
    .now_ms = m_now_ms,
    .unix_time = m_unix_time,
    .stats = m_stats,
    .timer_set = m_timer_set,
    .timer_cancel = m_timer_cancel,
    .file_io = m_file_io,
    .file_open = m_file_open,
    .conn_ctx = m_conn_ctx,
    .conn_conf = m_conn_conf,
    .conn_servers = m_conn_servers,
    .conn_worker = m_conn_worker,
    .conn_peer = m_conn_peer,
    .conn_closing = m_conn_closing,
    .conn_out_pending = m_out_pending,
    .conn_want_drain = m_want_drain,
    .conn_timeout = m_conn_timeout,
    .write = m_write,
    .write_reserve = m_write_reserve,
    .write_commit = m_write_commit,
    .write_ext = m_write_ext,
    .pause_read = m_pause,
    .resume_read = m_resume,
    .close = m_close,
    .abort = m_abort,
    .text_printf = m_text_printf,
    .metrics = m_metrics,
};

static void run_ops(void)
{
    while (nops) {
        mock_op op = ops[0];
        memmove(ops, ops + 1, (size_t)(--nops) * sizeof(ops[0]));
        if (op.kind == 0)
            op.io(op.arg, op.res);
        else
            op.done(op.arg);
    }
}

static http_srv *srv;
static char docroot[] = "/tmp/zg-http-unit-XXXXXX";

static void setup(void)
{
    static zerg_conf_ctx cx;
    cr_assert_eq(zerg_module_info.load(&mapi), 0);
    srv = calloc(1, sizeof(*srv));
    zerg_module_info.conf_init(&cx, srv);
    srv->nlocs = 5;
    srv->locs = calloc(5, sizeof(http_location));
    static http_return ret = {.status = 200, .body = "Hello, World!"};
    http_header_kv *h = calloc(1, sizeof(*h));
    h->name = "Content-Type";
    h->value = "text/plain";
    ret.headers = (http_header_list){.items = h, .n = 1};
    http_location *l = srv->locs;
    l[0] = (http_location){.path = "=/hello", .kind = HTTP_LOC_RETURN, .ret = &ret};
    l[1] = (http_location){.path = "/status", .kind = HTTP_LOC_STATUS, .status = 1};
    cr_assert_not_null(mkdtemp(docroot));
    l[2] = (http_location){.path = "/", .kind = HTTP_LOC_STATIC, .root = docroot};
    l[3] = (http_location){.path = "=/nocontent", .kind = HTTP_LOC_RETURN};
    static http_return r204 = {.status = 204};
    l[3].ret = &r204;
    static http_return rbig = {.status = 200};
    rbig.body = malloc(10001);
    memset(rbig.body, 'x', 10000);
    rbig.body[10000] = 0;
    l[4] = (http_location){.path = "=/big", .kind = HTTP_LOC_RETURN, .ret = &rbig};
    for (int i = 0; i < 5; i++) {
        l[i].exact = l[i].path[0] == '=';
        l[i].match = l[i].path + l[i].exact;
        l[i].match_len = strlen(l[i].match);
    }
    srv->client_max_body_size = 100;
    cr_assert_eq(zerg_module_info.conf_done(&cx, NULL, srv), 0);
    cr_assert_eq(cx.errors, 0);
    zerg_module_info.worker_init(&mw);
    cr_assert_eq(zerg_module_info.server_init(&mw, srv), 0);
    char p[256];
    snprintf(p, sizeof(p), "%s/index.html", docroot);
    FILE *f = fopen(p, "w");
    fputs("<h1>index</h1>\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/big.bin", docroot);
    f = fopen(p, "w");
    for (int i = 0; i < 700000; i++)
        fputc('a' + i % 26, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/sub", docroot);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/escape", docroot);
    symlink("/etc/passwd", p);
}

static void teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", docroot);
    system(cmd);
}

static zerg_conn *conn_new(void)
{
    zerg_conn *c = calloc(1, sizeof(*c));
    c->conf = srv;
    zerg_module_info.on_open(c);
    return c;
}

static void conn_free(zerg_conn *c)
{
    zerg_module_info.on_close(c, 0);
    run_ops();
    free(c);
}

static void feed(zerg_conn *c, const char *s, size_t n)
{
    size_t r = zerg_module_info.on_data(c, (const uint8_t *)s, n);
    cr_assert_eq(r, n);
    run_ops();
}

static void feeds(zerg_conn *c, const char *s)
{
    feed(c, s, strlen(s));
}

static int count(const char *hay, size_t n, const char *needle)
{
    int k = 0;
    size_t nl = strlen(needle);
    for (size_t i = 0; i + nl <= n; i++)
        if (!memcmp(hay + i, needle, nl))
            k++;
    return k;
}

static int status_of(zerg_conn *c)
{
    int st = 0;
    c->out[c->outlen < sizeof(c->out) ? c->outlen : sizeof(c->out) - 1] = 0;
    sscanf(c->out, "HTTP/1.1 %d", &st);
    return st;
}

TestSuite(proto, .init = setup, .fini = teardown);

Test(proto, keepalive_return)
{
    zerg_conn *c = conn_new();
    feeds(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(status_of(c), 200);
    cr_assert(strstr(c->out, "\r\n\r\nHello, World!"));
    cr_assert(strstr(c->out, "Content-Length: 13\r\n"));
    cr_assert(strstr(c->out, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
    cr_assert(strstr(c->out, "Server: zerg\r\n"));
    cr_assert(!strstr(c->out, "Connection:"));
    cr_assert(!c->closed);
    cr_assert_eq(c->timeout, srv->keepalive_timeout);
    conn_free(c);
}

Test(proto, pipelined_in_order_and_split)
{
    zerg_conn *c = conn_new();
    const char *req = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                      "HEAD /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /nothere HTTP/1.1\r\nHost: x\r\n\r\n"
                      "GET /hello HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
                      "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    /* one byte at a time */
    for (size_t i = 0; i < strlen(req) && !c->closed; i++)
        feed(c, req + i, 1);
    cr_assert_eq(count(c->out, c->outlen, "HTTP/1.1 "), 4);
    cr_assert_eq(count(c->out, c->outlen, "Hello, World!"), 2);
    char *a = strstr(c->out, "200 OK"), *b = strstr(c->out, "404 Not Found");
    cr_assert(a && b && a < b);
    cr_assert(strstr(c->out, "Connection: close"));
    cr_assert(c->closed);
    conn_free(c);
}

Test(proto, http10)
{
    zerg_conn *c = conn_new();
    feeds(c, "GET /hello HTTP/1.0\r\n\r\n");
    cr_assert(strstr(c->out, "Connection: close"));
    cr_assert(c->closed);
    conn_free(c);
    c = conn_new();
    feeds(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cr_assert(strstr(c->out, "Connection: keep-alive"));
    cr_assert(!c->closed);
    conn_free(c);
}

static void expect_status(const char *req, size_t n, int status, int closes)
{
    zerg_conn *c = conn_new();
    feed(c, req, n);
    cr_assert_eq(status_of(c), status, "%d for: %s\n-- got: %.*s", status, req, (int)c->outlen,
                 c->out);
    if (closes)
        cr_assert(c->closed || c->aborted, "must close after %d: %s", status, req);
    conn_free(c);
}
#define EXPECT(req, st, cl) expect_status(req, sizeof(req) - 1, st, cl)

Test(proto, errors_and_smuggling)
{
    EXPECT("GET /hello HTTP/1.1\r\n\r\n", 400, 1); /* no Host */
    EXPECT("GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, 1);
    EXPECT("GARBAGE\r\n\r\n", 400, 1);
    EXPECT("GET /hello HTTP/2.0\r\nHost: a\r\n\r\n", 505, 1);
    EXPECT("GET /hello HTTP/3.0\r\nHost: a\r\n\r\n", 505, 1);
    EXPECT("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 505, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: "
           "chunked\r\n\r\n0\r\n\r\n",
           400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
           400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello",
           400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\nhello", 400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", 400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\nhello", 400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n", 400, 1);
    /* llhttp refuses a coding after chunked itself (501) */
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 501, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 501, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
           200, 0);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
           "chunked\r\n\r\n0\r\n\r\n",
           200, 0);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
           "chunked\r\n\r\n",
           501, 1); /* chunked applied twice: llhttp refuses it first */
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", 400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5 ;\r\n", 400, 1);
    EXPECT("POST /hello HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400, 1);
    EXPECT("GET /hello HTTP/1.1\nHost: a\n\n", 400, 1);
    EXPECT("GET /hello HTTP/1.1\r\nHost: a\r\nX: y\r\n z\r\n\r\n", 400, 1);
    EXPECT("GET /hello HTTP/1.1\r\nHost: a\r\nX: y\0z\r\n\r\n", 400, 1);
    EXPECT("GET /hello HTTP/1.1\r\nHost: a\r\nX: y\x01z\r\n\r\n", 400, 1);
    EXPECT("GET /hello HTTP/1.1\r\nHost: a\r\nX\x01: y\r\n\r\n", 400, 1);
    EXPECT("GET /hello HTTP/1.1\r\nHost: a\r\nExpect: something\r\n\r\n", 417, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 101\r\n\r\n", 413, 1);
    EXPECT("GET /a%2fb HTTP/1.1\r\nHost: a\r\n\r\n", 404, 0);
    EXPECT("GET /../etc/passwd HTTP/1.1\r\nHost: a\r\n\r\n", 403, 0);
    EXPECT("GET /escape HTTP/1.1\r\nHost: a\r\n\r\n", 403, 0);
    EXPECT("POST /index.html HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", 405, 0);
    EXPECT("CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", 405, 1);
}

Test(proto, limits)
{
    char *big = malloc(70000);
    int n = sprintf(big, "GET /");
    memset(big + n, 'a', 9000);
    n += 9000;
    n += sprintf(big + n, " HTTP/1.1\r\nHost: a\r\n\r\n");
    expect_status(big, (size_t)n, 414, 1);
    n = sprintf(big, "GET / HTTP/1.1\r\nHost: a\r\nX: ");
    memset(big + n, 'a', 40000);
    n += 40000;
    n += sprintf(big + n, "\r\n\r\n");
    expect_status(big, (size_t)n, 431, 1);
    free(big);
}

Test(proto, chunked_body_and_continue)
{
    zerg_conn *c = conn_new();
    feeds(c, "POST /hello HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: "
             "chunked\r\n\r\n");
    cr_assert(strstr(c->out, "HTTP/1.1 100 Continue\r\n\r\n"));
    feeds(c, "5\r\nhello\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(count(c->out, c->outlen, "Hello, World!"), 2);
    cr_assert(!c->closed);
    conn_free(c);
    /* chunked body over client_max_body_size */
    c = conn_new();
    feeds(c, "POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 20 && !c->closed; i++)
        feeds(c, "a\r\n0123456789\r\n");
    cr_assert_eq(status_of(c), 413);
    cr_assert(c->closed);
    conn_free(c);
}

Test(proto, head_and_204)
{
    zerg_conn *c = conn_new();
    feeds(c, "HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert(strstr(c->out, "Content-Length: 13\r\n"));
    cr_assert(!strstr(c->out, "Hello"));
    feeds(c, "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert(strstr(c->out, "204 No Content"));
    cr_assert(!strstr(strstr(c->out, "204 No Content"), "Content-Length"));
    conn_free(c);
}

Test(proto, static_files)
{
    srv->file_mmap_max = 0; /* the streaming path (integration tests cover mmap) */
    zerg_conn *c = conn_new();
    ring_opens = 0;
    feeds(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(status_of(c), 200);
    cr_assert(strstr(c->out, "Content-Type: text/html\r\n"));
    cr_assert(strstr(c->out, "\r\n\r\n<h1>index</h1>\n"));
    cr_assert_eq(ring_opens, 2, "the directory, then its index, opened through the core");
    char *et = strstr(c->out, "ETag: ");
    cr_assert_not_null(et);
    char etag[64];
    sscanf(et, "ETag: %63s", etag);
    c->outlen = 0;
    char req[256];
    snprintf(req, sizeof(req), "GET /index.html HTTP/1.1\r\nHost: a\r\nIf-None-Match: %s\r\n\r\n",
             etag);
    feeds(c, req);
    cr_assert_eq(status_of(c), 304);
    c->outlen = 0;
    feeds(c, "GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=26-51\r\n\r\n");
    cr_assert_eq(status_of(c), 206);
    cr_assert(strstr(c->out, "Content-Range: bytes 26-51/700000\r\n"));
    cr_assert(strstr(c->out, "\r\n\r\nabcdefghijklmnopqrstuvwxyz"));
    c->outlen = 0;
    feeds(c, "GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=700000-\r\n\r\n");
    cr_assert_eq(status_of(c), 416);
    c->outlen = 0;
    feeds(c, "GET /sub HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(status_of(c), 301);
    cr_assert(strstr(c->out, "Location: /sub/\r\n"));
    c->outlen = 0;
    feeds(c, "GET /sub/ HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(status_of(c), 403);
    c->outlen = 0;
    /* a large file pipelined with a small answer after it */
    feeds(c, "GET /big.bin HTTP/1.1\r\nHost: a\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(status_of(c), 200);
    char *body = strstr(c->out, "\r\n\r\n") + 4;
    cr_assert_eq(body[0], 'a');
    cr_assert_eq(body[699999], 'a' + 699999 % 26);
    cr_assert(!memcmp(body + 700000, "HTTP/1.1 200 OK", 15));
    cr_assert(strstr(body + 700000, "Hello, World!"));
    cr_assert(!c->paused);
    conn_free(c);
}

Test(proto, status_endpoint)
{
    zerg_conn *c = conn_new();
    feeds(c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /status HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert(strstr(c->out, "zerg_http_requests_total{worker=\"0\",class=\"2xx\"}"));
    cr_assert(strstr(c->out, "zerg_http_connections{worker=\"0\",state=\"active\"} 1"));
    /* the asking connection is busy writing its answer */
    cr_assert(strstr(c->out, "zerg_http_connections{worker=\"0\",state=\"writing\"} 1"));
    cr_assert(strstr(c->out, "# TYPE zerg_http_requests_total counter\n"));
    conn_free(c);
}

Test(proto, big_return_body)
{
    zerg_conn *c = conn_new();
    feeds(c, "GET /big HTTP/1.1\r\nHost: a\r\n\r\nHEAD /big HTTP/1.1\r\nHost: a\r\n\r\n"
             "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert(strstr(c->out, "Content-Length: 10000\r\n"));
    char *body = strstr(c->out, "\r\n\r\n") + 4;
    cr_assert_eq(body[0], 'x');
    cr_assert_eq(body[9999], 'x');
    cr_assert(!memcmp(body + 10000, "HTTP/1.1 200 OK", 15));
    char *h2 = strstr(body + 10000, "\r\n\r\n") + 4;
    cr_assert(!memcmp(h2, "HTTP/1.1 200 OK", 15), "HEAD sends no body");
    cr_assert(strstr(h2, "Hello, World!"));
    conn_free(c);
}

/* Mutated requests fed in random pieces: whatever the answer, nothing may
 * crash, read out of bounds (under --enable-sanitizers) or answer twice
 * after a close. */
Test(proto, mutation_fuzz)
{
    static const char *seeds[] = {
        "GET /hello HTTP/1.1\r\nHost: a\r\n\r\n",
        "POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: "
        "chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
        "POST /hello HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
        "GET /index.html HTTP/1.1\r\nHost: a\r\nRange: bytes=1-5\r\nIf-None-Match: \"x\"\r\n\r\n",
        "HEAD /%2e%2e/sub/./index.html?x HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
    };
    unsigned seed = 12345;
    char buf[512];
    for (int it = 0; it < 3000; it++) {
        const char *s = seeds[it % 5];
        size_t n = strlen(s);
        memcpy(buf, s, n);
        int muts = 1 + (int)(rand_r(&seed) % 4);
        for (int k = 0; k < muts; k++) {
            size_t pos = rand_r(&seed) % n;
            switch (rand_r(&seed) % 3) {
            case 0:
                buf[pos] = (char)(rand_r(&seed) & 0xff);
                break;
            case 1:
                if (n < sizeof(buf) - 1) {
                    memmove(buf + pos + 1, buf + pos, n - pos);
                    buf[pos] = "\r\n :;,\t\0%/.0"[rand_r(&seed) % 13];
                    n++;
                }
                break;
            default:
                memmove(buf + pos, buf + pos + 1, n - pos - 1);
                n--;
                break;
            }
        }
        zerg_conn *c = conn_new();
        size_t off = 0;
        while (off < 2 * n && !c->closed && !c->aborted) {
            /* the request twice (pipelined), in random pieces */
            size_t piece = 1 + rand_r(&seed) % 40;
            size_t o = off % n, left = n - o;
            if (piece > left)
                piece = left;
            feed(c, buf + o, piece);
            off += piece;
        }
        conn_free(c);
    }
}

Test(proto, open_file_cache)
{
    srv->open_file_cache_valid = 1000;
    zerg_conn *c = conn_new();
    for (int i = 0; i < 3; i++) {
        c->outlen = 0;
        feeds(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        cr_assert_eq(status_of(c), 200);
        cr_assert(strstr(c->out, "Content-Type: text/html\r\n"));
        cr_assert(strstr(c->out, "\r\n\r\n<h1>index</h1>\n"));
        c->outlen = 0;
        feeds(c, "GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=26-51\r\n\r\n");
        cr_assert_eq(status_of(c), 206);
        cr_assert(strstr(c->out, "\r\n\r\nabcdefghijklmnopqrstuvwxyz"));
    }
    conn_free(c);
    http_ofc_clear();
}

/* A server block answering "=/who" with its own name. */
static http_srv *vhost(const char *who, const char *names)
{
    static zerg_conf_ctx cx;
    http_srv *s = calloc(1, sizeof(*s));
    zerg_module_info.conf_init(&cx, s);
    char *list = strdup(names);
    s->server_name.items = calloc(8, sizeof(char *));
    for (char *tok = strtok(list, " "); tok; tok = strtok(NULL, " "))
        s->server_name.items[s->server_name.n++] = tok;
    if (!*names)
        s->server_name.items[s->server_name.n++] = list; /* the empty name */
    http_return *ret = calloc(1, sizeof(*ret));
    ret->status = 200;
    ret->body = (char *)who;
    s->nlocs = 1;
    s->locs = calloc(1, sizeof(http_location));
    s->locs[0] = (http_location){.path = "=/who", .kind = HTTP_LOC_RETURN, .ret = ret};
    s->locs[0].exact = 1;
    s->locs[0].match = "/who";
    s->locs[0].match_len = 4;
    cr_assert_eq(zerg_module_info.conf_done(&cx, NULL, s), 0);
    cr_assert_eq(zerg_module_info.server_init(&mw, s), 0);
    return s;
}

static void expect_vhost(zerg_conn *c, const char *request, const char *who)
{
    c->outlen = 0;
    feeds(c, request);
    cr_assert_eq(status_of(c), 200, "%s -> %.*s", request, (int)c->outlen, c->out);
    char *body = strstr(c->out, "\r\n\r\n");
    cr_assert(body && strcmp(body + 4, who) == 0, "%s: answered by %s, not %s", request,
              body ? body + 4 : "?", who);
}

Test(proto, virtual_hosts)
{
    void *blocks[] = {vhost("default", "default.test"),  vhost("exact", "www.example.com"),
                      vhost("leading", "*.example.com"), vhost("dot", ".example.org"),
                      vhost("trailing", "mail.*"),       vhost("nohost", "")};
    zerg_conn *c = calloc(1, sizeof(*c));
    c->conf = blocks[0];
    c->vhosts = blocks;
    c->nvhosts = 6;
    zerg_module_info.on_open(c);
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: www.example.com\r\n\r\n", "exact");
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: WWW.Example.COM.:8080\r\n\r\n", "exact");
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: a.b.example.com\r\n\r\n", "leading");
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: example.com\r\n\r\n", "default");
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: example.org\r\n\r\n", "dot");
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: x.example.org\r\n\r\n", "dot");
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: mail.example.net\r\n\r\n", "trailing");
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: unknown.test\r\n\r\n", "default");
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: [::1]:80\r\n\r\n", "default");
    /* the authority of an absolute-form target wins over Host */
    expect_vhost(c, "GET http://www.example.com/who HTTP/1.1\r\nHost: other.test\r\n\r\n", "exact");
    /* every request picks again: back to the default on a keep-alive conn */
    expect_vhost(c, "GET /who HTTP/1.1\r\nHost: default.test\r\n\r\n", "default");
    expect_vhost(c, "GET /who HTTP/1.0\r\n\r\n", "nohost"); /* and closes */
    conn_free(c);
}
