/* tests/unit/http_mock.c - the mock core of http_mock.h: a zerg_api whose
 * writes append to the connection's buffer, which keeps unconsumed input as
 * the core does, whose file operations run at once and complete in order,
 * and whose timers never fire. */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/openat2.h>
#include <stdarg.h>
#include <stddef.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "http_mock.h"
#include "zg_server_name.h"
#include "zg_upstream.h"

zerg_worker mock_worker;
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

static void push_op(mock_op op)
{
    TEST_CHECK(nops < (int)(sizeof(ops) / sizeof(ops[0])), "over %d operations in flight", nops);
    ops[nops++] = op;
}

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
/* Config memory lives until mock_teardown, as the core's lives as long as
 * its config: modules drop pointers into it freely. */
typedef struct mock_block {
    struct mock_block *next;
    _Alignas(max_align_t) char data[];
} mock_block;
static mock_block *conf_blocks;

static void *m_conf_alloc(zerg_conf_ctx *cx, size_t size)
{
    mock_block *b = calloc(1, sizeof(*b) + size);
    TEST_CHECK(b, "out of memory");
    b->next = conf_blocks;
    conf_blocks = b;
    return b->data;
}
static char *m_conf_strdup(zerg_conf_ctx *cx, const char *s)
{
    size_t n = strlen(s) + 1;
    return memcpy(m_conf_alloc(cx, n), s, n);
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
    push_op((mock_op){0, cb, NULL, arg, r});
    return 0;
}
int mock_ring_opens;
static int m_file_open(zerg_worker *w, zerg_conn *owner, int dirfd, const char *path,
                       const struct open_how *how, zerg_io_fn cb, void *arg)
{
    mock_ring_opens++;
    long fd = syscall(SYS_openat2, dirfd, path, how, sizeof(*how));
    push_op((mock_op){0, cb, NULL, arg, fd < 0 ? -errno : fd});
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
    return &mock_worker;
}
static const struct sockaddr *m_conn_peer(zerg_conn *c, socklen_t *len)
{
    return NULL;
}
static int m_conn_closing(zerg_conn *c)
{
    return c->closed || c->aborted;
}
size_t mock_out_pending;

static size_t m_out_pending(zerg_conn *c)
{
    return mock_out_pending;
}
static size_t m_out_high(zerg_conn *c)
{
    return 256 * 1024;
}
static void m_want_drain(zerg_conn *c)
{
}
static void m_conn_timeout(zerg_conn *c, uint64_t ms)
{
    c->timeout = ms;
}
/* Room for len more bytes of output: the connection's flush hook, if any,
 * takes what is there (as a client reading it would). */
static void make_room(zerg_conn *c, size_t len)
{
    if (c->outlen + len > sizeof(c->out) && c->flush)
        c->flush(c);
    TEST_CHECK(c->outlen + len <= sizeof(c->out), "output over %zu bytes", sizeof(c->out));
}
static int m_write(zerg_conn *c, const void *data, size_t len)
{
    TEST_CHECK(!c->closed && !c->aborted, "write after close");
    make_room(c, len);
    memcpy(c->out + c->outlen, data, len);
    c->outlen += len;
    return 0;
}
static void *m_write_reserve(zerg_conn *c, size_t min, size_t *avail)
{
    TEST_CHECK(min <= 4096, "write_reserve of %zu bytes", min);
    TEST_CHECK(!c->closed && !c->aborted, "write after close");
    make_room(c, min);
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
        push_op((mock_op){1, NULL, done, arg, 0});
    return 0;
}
/* conn_tls: the mock's connections run without TLS */
static int m_conn_tls(zerg_conn *c, zerg_tls_info *info)
{
    (void)c, (void)info;
    return 0;
}

/* conf_server_names: the mock's blocks have no server_name of their own */
static int m_conf_server_names(zerg_conf_ctx *cx, zerg_str_list *names)
{
    (void)cx, (void)names;
    return 0;
}

/* write_file: the bytes the core would splice, read from the file now */
static int m_write_file(zerg_conn *c, int fd, uint64_t off, uint64_t len, zerg_done_fn done,
                        void *arg)
{
    TEST_CHECK(!c->closed && !c->aborted, "write after close");
    TEST_CHECK(len > 0, "write_file of 0 bytes");
    while (len) {
        char buf[16384];
        size_t want = len < sizeof(buf) ? (size_t)len : sizeof(buf);
        ssize_t n = pread(fd, buf, want, (off_t)off);
        TEST_CHECK(n > 0, "write_file: the file is shorter than asked");
        m_write(c, buf, (size_t)n);
        off += (uint64_t)n;
        len -= (uint64_t)n;
    }
    if (done)
        push_op((mock_op){1, NULL, done, arg, 0});
    return 0;
}
zerg_conn *mock_outbound[MOCK_MAX_OUTBOUND];
size_t mock_noutbound;

static zerg_conn *m_connect_with(zerg_worker *w, const zerg_conn_hooks *hooks, void *conf,
                                 const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms)
{
    TEST_CHECK(hooks && hooks->struct_size >= sizeof(zerg_conn_hooks) && sa && len,
               "connect_with: bad arguments");
    if (mock_noutbound == MOCK_MAX_OUTBOUND) {
        errno = EMFILE;
        return NULL;
    }
    zerg_conn *c = calloc(1, sizeof(*c));
    TEST_CHECK(c, "out of memory");
    c->conf = conf;
    c->hooks = hooks;
    mock_outbound[mock_noutbound++] = c;
    return c;
}
/* TLS to upstreams: a settings object of the mock's own (nothing reads
 * it), and connections that are plain ones here (no handshake to fake). */
struct zerg_tls_client {
    int unused;
};

static zerg_tls_client *m_conf_tls_client(zerg_conf_ctx *cx, const zerg_conf_node *node)
{
    (void)node;
    return m_conf_alloc(cx, sizeof(zerg_tls_client));
}

static zerg_conn *m_connect_tls(zerg_worker *w, const zerg_conn_hooks *hooks, void *conf,
                                const struct sockaddr *sa, socklen_t len, uint64_t timeout_ms,
                                const zerg_tls_client *tls, const char *server_name)
{
    TEST_CHECK(tls, "connect_tls: no settings");
    (void)server_name;
    return m_connect_with(w, hooks, conf, sa, len, timeout_ms);
}
/* No receive buffers here: the module copies instead. */
static zerg_ref *m_hold(zerg_conn *c, const void *data)
{
    return NULL;
}
static int m_write_ref(zerg_conn *c, const void *data, size_t len, zerg_ref *r)
{
    TEST_CHECK(0, "write_ref without a held buffer");
    return -1;
}
static void m_shutdown(zerg_conn *c, int how)
{
    TEST_CHECK(!c->closed && !c->aborted, "shutdown after close");
    c->shut_wr = 1;
}
static void m_pause(zerg_conn *c)
{
    c->paused = 1;
}
/* What the mock keeps for c, presented to on_data; what it leaves stays. */
static void present(zerg_conn *c)
{
    c->in_data = 1;
    size_t used = mock_on_data(c, (const uint8_t *)c->in, c->inlen);
    c->in_data = 0;
    TEST_CHECK(used <= c->inlen, "on_data took %zu of %zu bytes", used, c->inlen);
    c->inlen -= used;
    memmove(c->in, c->in + used, c->inlen);
}
static void m_resume(zerg_conn *c)
{
    if (!c->paused)
        return;
    c->paused = 0;
    if (c->inlen && !c->in_data && !c->closed && !c->aborted)
        present(c);
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
    TEST_CHECK(n >= 0 && (size_t)n < sizeof(t->buf) - t->len, "metrics text over %zu bytes",
               sizeof(t->buf));
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

/* Shared metrics: one row, handles given in order (each conf_done takes new
 * ones, which is all the tests need); the status page prints the counters
 * and gauges of the last 64 series registered, then the module's hook. */
static uint64_t mock_row[1 << 16];
static size_t mock_row_used;
static struct {
    char name[64], labels[128];
    int64_t h;
} mock_series[64];
static size_t mock_nseries;
static int64_t m_metric_add(zerg_conf_ctx *cx, const zerg_metric_def *def)
{
    (void)cx;
    size_t n = def->type == ZERG_METRIC_HISTOGRAM ? def->nbounds + 2 : 1;
    if (mock_row_used + n > sizeof(mock_row) / sizeof(mock_row[0]))
        mock_row_used = 0; /* many configs in one test: share the values */
    mock_row_used += n;
    if (def->type != ZERG_METRIC_HISTOGRAM) {
        size_t i = mock_nseries++ % 64;
        snprintf(mock_series[i].name, sizeof(mock_series[i].name), "%s", def->name);
        snprintf(mock_series[i].labels, sizeof(mock_series[i].labels), "%s",
                 def->labels ? def->labels : "");
        mock_series[i].h = (int64_t)(mock_row_used - n);
    }
    return (int64_t)(mock_row_used - n);
}
static uint64_t *m_metric_row(zerg_worker *w)
{
    (void)w;
    return mock_row;
}
static const char *m_metrics_ex(zerg_worker *w, unsigned flags, size_t *len)
{
    static zerg_text text;
    (void)flags;
    text.len = 0;
    for (size_t i = 0; i < 64 && i < mock_nseries; i++)
        m_text_printf(&text, "%s{%s} %llu\n", mock_series[i].name, mock_series[i].labels,
                      (unsigned long long)mock_row[mock_series[i].h]);
    http_metrics(w, &text);
    *len = text.len;
    return text.buf;
}

/* The access log: lines are checked as they are committed, then dropped. A
 * line is one line of printable ASCII (the module escapes what a client
 * sent), its '"' only the format's own. */
struct zerg_logfile {
    char buf[1 << 16];
    size_t cap;
    size_t need; /* of the last reserve */
};
static zerg_logfile mock_logfile;
size_t mock_log_lines;
char mock_log_last[4096];
static size_t mock_log_quotes; /* '"' in the format */

static zerg_logfile *m_logfile_open(zerg_worker *w, const char *path, size_t buffer,
                                    uint64_t flush_ms)
{
    TEST_CHECK(buffer <= sizeof(mock_logfile.buf), "access log buffer %zu", buffer);
    mock_logfile.cap = buffer;
    return &mock_logfile;
}
static char *m_logfile_reserve(zerg_logfile *lf, size_t need)
{
    TEST_CHECK(need <= lf->cap / 2, "log line room %zu over half the buffer %zu", need, lf->cap);
    lf->need = need;
    return lf->buf;
}
static void m_logfile_commit(zerg_logfile *lf, size_t n)
{
    TEST_CHECK(n > 0 && n <= lf->need, "log line of %zu bytes in %zu", n, lf->need);
    TEST_CHECK(lf->buf[n - 1] == '\n', "log line without its newline");
    size_t quotes = 0;
    for (size_t i = 0; i + 1 < n; i++) {
        unsigned char ch = (unsigned char)lf->buf[i];
        TEST_CHECK(ch >= 0x20 && ch < 0x7f, "log line with byte 0x%02x at %zu: %.*s", ch, i, (int)n,
                   lf->buf);
        quotes += ch == '"';
    }
    TEST_CHECK(quotes == mock_log_quotes, "log line with %zu '\"' (format: %zu): %.*s", quotes,
               mock_log_quotes, (int)n, lf->buf);
    mock_log_lines++;
    size_t keep = n < sizeof(mock_log_last) ? n : sizeof(mock_log_last) - 1;
    memcpy(mock_log_last, lf->buf, keep);
    mock_log_last[keep] = 0;
}

static zerg_api mapi = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_api),
    .log = m_log,
    .conf_error = m_conf_error,
    .conf_alloc = m_conf_alloc,
    .conf_strdup = m_conf_strdup,
    .conf_shm = m_conf_alloc, /* one process: any zeroed memory is shared */
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
    .conn_out_high = m_out_high,
    .conn_timeout = m_conn_timeout,
    .write = m_write,
    .write_reserve = m_write_reserve,
    .write_commit = m_write_commit,
    .write_ext = m_write_ext,
    .hold = m_hold,
    .write_ref = m_write_ref,
    .shutdown = m_shutdown,
    .connect_with = m_connect_with,
    .pause_read = m_pause,
    .resume_read = m_resume,
    .close = m_close,
    .abort = m_abort,
    .text_printf = m_text_printf,
    .metrics = m_metrics,
    .metric_add = m_metric_add,
    .metric_row = m_metric_row,
    .metrics_ex = m_metrics_ex,
    .logfile_open = m_logfile_open,
    .logfile_reserve = m_logfile_reserve,
    .logfile_commit = m_logfile_commit,
    /* the core's upstream groups themselves: they call back through this table */
    ZG_UPSTREAM_API_ENTRIES,
    .write_file = m_write_file,
    .conn_tls = m_conn_tls,
    .conf_server_names = m_conf_server_names,
    .server_names_match = zg_server_names_match, /* the core's own */
    .conf_tls_client = m_conf_tls_client,
    .connect_tls = m_connect_tls,
};
const zerg_api *const zg_up_api = &mapi;

void mock_run_ops(void)
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

http_srv *mock_srv;
char mock_docroot[] = "/tmp/zg-http-unit-XXXXXX";

void mock_setup(void)
{
    mock_out_pending = 0;
    static zerg_conf_ctx cx;
    TEST_CHECK(zerg_module_info.load(&mapi) == 0, "load failed");
    mock_srv = calloc(1, sizeof(*mock_srv));
    zerg_module_info.conf_init(&cx, mock_srv);
    mock_srv->nlocs = 5;
    mock_srv->locs = calloc(5, sizeof(http_location));
    static http_return ret = {.status = 200, .body = "Hello, World!"};
    http_header_kv *h = calloc(1, sizeof(*h));
    h->name = "Content-Type";
    h->value = "text/plain";
    ret.headers = (http_header_list){.items = h, .n = 1};
    http_location *l = mock_srv->locs;
    l[0] = (http_location){.path = "=/hello", .kind = HTTP_LOC_RETURN, .ret = &ret};
    l[1] = (http_location){.path = "/status", .kind = HTTP_LOC_STATUS, .status = 1};
    TEST_CHECK(mkdtemp(mock_docroot) != NULL, "mkdtemp: %m");
    l[2] = (http_location){.path = "/", .kind = HTTP_LOC_STATIC, .root = mock_docroot};
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
    mock_srv->client_max_body_size = 100;
    static const char log_format[] =
        "$remote_addr - $remote_user [$time_local] \"$request\" $status $body_bytes_sent "
        "\"$http_referer\" \"$http_user_agent\" $host $request_uri $request_method "
        "$server_protocol $time_iso8601 $msec $request_time $upstream_addr $upstream_status "
        "$upstream_response_time";
    http_access_log_conf *al = &mock_srv->access_log;
    al->path = "mock-access.log";
    al->format = HTTP_LOG_CUSTOM;
    al->buffer = 1 << 16;
    TEST_CHECK(http_tmpl_parse(&cx, NULL, log_format, &al->tmpl, HTTP_TMPL_LOG, "log") == 0,
               "access log format");
    mock_log_quotes = 0; /* counted anew: a second mock_setup must not add to it */
    for (const char *q = log_format; (q = strchr(q, '"')); q++)
        mock_log_quotes++;
    TEST_CHECK(zerg_module_info.conf_done(&cx, NULL, mock_srv) == 0 && cx.errors == 0,
               "conf_done failed");
    zerg_module_info.worker_init(&mock_worker);
    TEST_CHECK(zerg_module_info.server_init(&mock_worker, mock_srv) == 0, "server_init failed");
    char p[256];
    snprintf(p, sizeof(p), "%s/index.html", mock_docroot);
    FILE *f = fopen(p, "w");
    fputs("<h1>index</h1>\n", f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/big.bin", mock_docroot);
    f = fopen(p, "w");
    for (int i = 0; i < 700000; i++)
        fputc('a' + i % 26, f);
    fclose(f);
    snprintf(p, sizeof(p), "%s/sub", mock_docroot);
    mkdir(p, 0755);
    snprintf(p, sizeof(p), "%s/escape", mock_docroot);
    symlink("/etc/passwd", p);
}

void mock_teardown(void)
{
    char cmd[300];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", mock_docroot);
    system(cmd);
    while (conf_blocks) {
        mock_block *next = conf_blocks->next;
        free(conf_blocks);
        conf_blocks = next;
    }
}

zerg_conn *mock_conn_open(void *conf)
{
    zerg_conn *c = calloc(1, sizeof(*c));
    TEST_CHECK(c, "out of memory");
    c->conf = conf;
    zerg_module_info.on_open(c);
    return c;
}

zerg_conn *mock_conn_new(void)
{
    return mock_conn_open(mock_srv);
}

void mock_on_connect(zerg_conn *c, int status)
{
    void (*fn)(zerg_conn *, int) = c->hooks ? c->hooks->on_connect : zerg_module_info.on_connect;
    if (fn)
        fn(c, status);
}

size_t mock_on_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    return (c->hooks ? c->hooks->on_data : zerg_module_info.on_data)(c, data, len);
}

void mock_on_eof(zerg_conn *c)
{
    (c->hooks ? c->hooks->on_eof : zerg_module_info.on_eof)(c);
}

void mock_on_close(zerg_conn *c, int err)
{
    (c->hooks ? c->hooks->on_close : zerg_module_info.on_close)(c, err);
}

void mock_conn_free(zerg_conn *c)
{
    mock_on_close(c, 0);
    mock_run_ops();
    free(c->in);
    free(c);
}

void mock_outbound_free(void)
{
    for (size_t i = 0; i < mock_noutbound; i++) {
        mock_on_close(mock_outbound[i], 0);
        mock_run_ops();
    }
    for (size_t i = 0; i < mock_noutbound; i++) {
        free(mock_outbound[i]->in);
        free(mock_outbound[i]);
    }
    mock_noutbound = 0;
}

size_t mock_feed(zerg_conn *c, const void *data, size_t n)
{
    size_t before = c->inlen;
    c->in = realloc(c->in, before + n + 1);
    TEST_CHECK(c->in, "out of memory");
    memcpy(c->in + before, data, n);
    c->inlen += n;
    if (!c->paused)
        present(c);
    mock_run_ops();
    return before + n - c->inlen;
}

static int answer_head_done(llhttp_t *p)
{
    return p->status_code == 204 || p->status_code == 304; /* 1: no body */
}

void mock_answer_parser_init(llhttp_t *p)
{
    static llhttp_settings_t settings;
    if (!settings.on_headers_complete) {
        llhttp_settings_init(&settings);
        settings.on_headers_complete = answer_head_done;
    }
    llhttp_init(p, HTTP_RESPONSE, &settings);
}
