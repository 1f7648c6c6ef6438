/* tests/unit/test_http_proto.c - the http module driven through its hooks by a
 * mock core (a fake zerg_api that records output): keep-alive, pipelining,
 * errors and smuggling refusals, HEAD, return and static answers, virtual
 * hosts, and requests waiting in the core behind a late proxy_pass answer. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http_mock.h"

static void feed(zerg_conn *c, const char *s, size_t n)
{
    cr_assert_eq(mock_feed(c, s, n), n);
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

/* The status of c's answer to req, which c->out then holds alone. */
static int answer(zerg_conn *c, const char *req)
{
    c->outlen = 0;
    feeds(c, req);
    return status_of(c);
}

TestSuite(proto, .init = mock_setup, .fini = mock_teardown);

Test(proto, keepalive_return)
{
    zerg_conn *c = mock_conn_new();
    feeds(c, "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(status_of(c), 200);
    cr_assert(strstr(c->out, "\r\n\r\nHello, World!"));
    cr_assert(strstr(c->out, "Content-Length: 13\r\n"));
    cr_assert(strstr(c->out, "Date: Sun, 06 Nov 1994 08:49:37 GMT\r\n"));
    cr_assert(strstr(c->out, "Server: zerg\r\n"));
    cr_assert(!strstr(c->out, "Connection:"));
    cr_assert(!c->closed);
    cr_assert_eq(c->timeout, mock_srv->keepalive_timeout);
    mock_conn_free(c);
}

/* A client that pipelines and does not read: no request is started while
 * the output is above its high mark; on_drain goes on with them. */
Test(proto, pipelined_wait_while_output_full)
{
    zerg_conn *c = mock_conn_new();
    mock_out_pending = 300 * 1024;
    static const char two[] = "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"
                              "GET /hello HTTP/1.1\r\nHost: x\r\n\r\n";
    cr_assert_eq(mock_feed(c, two, sizeof(two) - 1), 0, "the requests wait in the core");
    cr_assert_eq(c->outlen, 0, "answered above the high mark");
    cr_assert(c->paused);
    mock_out_pending = 0;
    zerg_module_info.on_drain(c);
    cr_assert_eq(count(c->out, c->outlen, "HTTP/1.1 200"), 2);
    cr_assert(!c->paused);
    cr_assert(!c->closed);
    mock_on_close(c, 0);
    mock_conn_free(c);
}

/* Per-request state goes back when the connection is idle, not at close. */
Test(proto, idle_connection_holds_no_request_state)
{
    zerg_conn *c = mock_conn_new();
    const http_conn *hc = (const http_conn *)c->ctx;
    cr_assert_null(hc->rq);
    feeds(c, "GET /hello HTTP/1.1\r\nHo");
    cr_assert_not_null(hc->rq, "a request being read has its state");
    feeds(c, "st: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n");
    cr_assert_eq(count(c->out, c->outlen, "HTTP/1.1 200"), 2);
    cr_assert_null(hc->rq, "idle between requests");
    cr_assert(!c->closed);
    mock_on_close(c, 0);
    mock_conn_free(c);
}

Test(proto, pipelined_in_order_and_split)
{
    zerg_conn *c = mock_conn_new();
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
    mock_conn_free(c);
}

Test(proto, http10)
{
    zerg_conn *c = mock_conn_new();
    feeds(c, "GET /hello HTTP/1.0\r\n\r\n");
    cr_assert(strstr(c->out, "Connection: close"));
    cr_assert(c->closed);
    mock_conn_free(c);
    c = mock_conn_new();
    feeds(c, "GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    cr_assert(strstr(c->out, "Connection: keep-alive"));
    cr_assert(!c->closed);
    mock_conn_free(c);
}

static void expect_status(const char *req, size_t n, int status, int closes)
{
    zerg_conn *c = mock_conn_new();
    feed(c, req, n);
    cr_assert_eq(status_of(c), status, "%d for: %s\n-- got: %.*s", status, req, (int)c->outlen,
                 c->out);
    if (closes)
        cr_assert(c->closed || c->aborted, "must close after %d: %s", status, req);
    mock_conn_free(c);
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
    /* chunked not the final coding: 400 (RFC 9112 6.3), though llhttp finds it */
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: foo, chunked\r\n\r\n", 501, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;x=1\r\n\r\n", 501, 1);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n",
           200, 0);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\nTransfer-Encoding: "
           "chunked\r\n\r\n0\r\n\r\n",
           200, 0);
    EXPECT("POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: "
           "chunked\r\n\r\n",
           400, 1); /* chunked applied twice (RFC 9112 6.1) */
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
    zerg_conn *c = mock_conn_new();
    feeds(c, "POST /hello HTTP/1.1\r\nHost: a\r\nExpect: 100-continue\r\nTransfer-Encoding: "
             "chunked\r\n\r\n");
    cr_assert(strstr(c->out, "HTTP/1.1 100 Continue\r\n\r\n"));
    feeds(c, "5\r\nhello\r\n0\r\n\r\nGET /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(count(c->out, c->outlen, "Hello, World!"), 2);
    cr_assert(!c->closed);
    mock_conn_free(c);
    /* chunked body over client_max_body_size */
    c = mock_conn_new();
    feeds(c, "POST /hello HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n");
    for (int i = 0; i < 20 && !c->closed; i++)
        feeds(c, "a\r\n0123456789\r\n");
    cr_assert_eq(status_of(c), 413);
    cr_assert(c->closed);
    mock_conn_free(c);
}

Test(proto, head_and_204)
{
    zerg_conn *c = mock_conn_new();
    feeds(c, "HEAD /hello HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert(strstr(c->out, "Content-Length: 13\r\n"));
    cr_assert(!strstr(c->out, "Hello"));
    feeds(c, "GET /nocontent HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert(strstr(c->out, "204 No Content"));
    cr_assert(!strstr(strstr(c->out, "204 No Content"), "Content-Length"));
    mock_conn_free(c);
}

/* mock_setup's access log has every variable; the mock checks each line is
 * one line of printable ASCII with only the format's quotes. */
Test(proto, access_log_line_escapes_what_the_client_sent)
{
    zerg_conn *c = mock_conn_new();
    size_t before = mock_log_lines;
    feeds(c, "GET /hello HTTP/1.1\r\nHost: a\r\nUser-Agent: evil\" \xff\r\n"
             "Referer: x\\y\r\n\r\n");
    cr_assert_eq(status_of(c), 200);
    cr_assert_eq(mock_log_lines, before + 1);
    cr_assert(strstr(mock_log_last, "\"GET /hello HTTP/1.1\" 200 13 \"x\\x5Cy\" "
                                    "\"evil\\x22 \\xFF\" a /hello GET HTTP/1.1 "),
              "%s", mock_log_last);
    cr_assert(strstr(mock_log_last, " 0.000 - - -\n"), "no upstream: %s", mock_log_last);
    feeds(c, "GET /\x01 HTTP/1.1\r\n\r\n"); /* refused: logged too, as nginx does */
    cr_assert_eq(status_of(c), 200);        /* the first answer; the 400 follows it */
    cr_assert(strstr(c->out, "400 Bad Request"));
    cr_assert_eq(mock_log_lines, before + 2);
    mock_conn_free(c);
}

Test(proto, static_files)
{
    mock_srv->file_mmap_max = 0; /* the streaming path (integration tests cover mmap) */
    zerg_conn *c = mock_conn_new();
    mock_ring_opens = 0;
    feeds(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    cr_assert_eq(status_of(c), 200);
    cr_assert(strstr(c->out, "Content-Type: text/html\r\n"));
    cr_assert(strstr(c->out, "\r\n\r\n<h1>index</h1>\n"));
    cr_assert_eq(mock_ring_opens, 2, "the directory, then its index, opened through the core");
    char *et = strstr(c->out, "ETag: ");
    cr_assert_not_null(et);
    char etag[64];
    sscanf(et, "ETag: %63s", etag);
    char req[256];
    snprintf(req, sizeof(req), "GET /index.html HTTP/1.1\r\nHost: a\r\nIf-None-Match: %s\r\n\r\n",
             etag);
    cr_assert_eq(answer(c, req), 304);
    cr_assert_eq(answer(c, "GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=26-51\r\n\r\n"), 206);
    cr_assert(strstr(c->out, "Content-Range: bytes 26-51/700000\r\n"));
    cr_assert(strstr(c->out, "\r\n\r\nabcdefghijklmnopqrstuvwxyz"));
    cr_assert_eq(answer(c, "GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=700000-\r\n\r\n"),
                 416);
    cr_assert_eq(answer(c, "GET /sub HTTP/1.1\r\nHost: a\r\n\r\n"), 301);
    cr_assert(strstr(c->out, "Location: /sub/\r\n"));
    cr_assert_eq(answer(c, "GET /sub/ HTTP/1.1\r\nHost: a\r\n\r\n"), 403);
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
    mock_conn_free(c);
}

Test(proto, status_endpoint)
{
    zerg_conn *c = mock_conn_new();
    feeds(c, "GET /hello HTTP/1.1\r\nHost: a\r\n\r\nGET /status HTTP/1.1\r\nHost: a\r\n\r\n");
    /* the mock core prints the series registered last: the block's */
    cr_assert(strstr(c->out, "zerg_http_requests_total{server=\"_\",class=\"2xx\"} 1\n"), "%s",
              c->out);
    cr_assert(strstr(c->out, "zerg_http_connections{state=\"active\"} 1\n"));
    /* the asking connection is busy writing its answer */
    cr_assert(strstr(c->out, "zerg_http_connections{state=\"writing\"} 1\n"));
    mock_conn_free(c);
}

Test(proto, big_return_body)
{
    zerg_conn *c = mock_conn_new();
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
    mock_conn_free(c);
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
        zerg_conn *c = mock_conn_new();
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
        mock_conn_free(c);
    }
}

Test(proto, open_file_cache)
{
    mock_srv->open_file_cache_valid = 1000;
    zerg_conn *c = mock_conn_new();
    for (int i = 0; i < 3; i++) {
        cr_assert_eq(answer(c, "GET / HTTP/1.1\r\nHost: a\r\n\r\n"), 200);
        cr_assert(strstr(c->out, "Content-Type: text/html\r\n"));
        cr_assert(strstr(c->out, "\r\n\r\n<h1>index</h1>\n"));
        cr_assert_eq(answer(c, "GET /big.bin HTTP/1.1\r\nHost: a\r\nRange: bytes=26-51\r\n\r\n"),
                     206);
        cr_assert(strstr(c->out, "\r\n\r\nabcdefghijklmnopqrstuvwxyz"));
    }
    mock_conn_free(c);
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
    cr_assert_eq(zerg_module_info.server_init(&mock_worker, s), 0);
    return s;
}

/* Frees what vhost allocated (what the module allocated is its own). */
static void vhost_free(http_srv *s)
{
    free(s->server_name.items[0]); /* the strdup'ed list its names point into */
    free(s->server_name.items);
    free(s->locs[0].ret);
    free(s->locs);
    free(s);
}

static void expect_vhost(zerg_conn *c, const char *request, const char *who)
{
    cr_assert_eq(answer(c, request), 200, "%s -> %.*s", request, (int)c->outlen, c->out);
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
    mock_conn_free(c);
    for (size_t i = 0; i < sizeof(blocks) / sizeof(blocks[0]); i++)
        vhost_free(blocks[i]);
}

/* A block whose only location, "/", passes requests upstream (a mock
 * outbound connection) and keeps one upstream connection for reuse. */
static http_srv *proxy_block(void)
{
    static zerg_conf_ctx cx;
    static http_proxy_pass pass = {.host = "127.0.0.1:9", .host_len = 11};
    http_srv *s = calloc(1, sizeof(*s));
    zerg_module_info.conf_init(&cx, s);
    s->nlocs = 1;
    s->locs = calloc(1, sizeof(http_location));
    s->locs[0] = (http_location){.path = "/",
                                 .match = "/",
                                 .match_len = 1,
                                 .kind = HTTP_LOC_PROXY,
                                 .proxy = &pass,
                                 .proxy_keepalive = 1};
    cr_assert(zerg_module_info.conf_done(&cx, NULL, s) == 0 && cx.errors == 0);
    cr_assert_eq(zerg_module_info.server_init(&mock_worker, s), 0);
    return s;
}

/* The upstream of the n-th connect answers its request with body. */
static void upstream_answers(size_t n, const char *body)
{
    cr_assert_gt(mock_noutbound, n, "no upstream connection %zu", n);
    zerg_conn *u = mock_outbound[n];
    if (!u->connected) {
        u->connected = 1;
        mock_on_connect(u, 0);
    }
    char answer[128];
    int len = snprintf(answer, sizeof(answer), "HTTP/1.1 200 OK\r\nContent-Length: %zu\r\n\r\n%s",
                       strlen(body), body);
    mock_on_data(u, (const uint8_t *)answer, (size_t)len);
    mock_run_ops();
}

/* A request that comes while the one before waits for its upstream is
 * left to the core (the module keeps no input), which presents it again
 * once the answer is done. */
Test(proto, requests_behind_a_late_answer_wait_in_the_core)
{
    http_srv *s = proxy_block();
    zerg_conn *c = mock_conn_open(s);
    feeds(c, "GET /a HTTP/1.1\r\nHost: h\r\n\r\n");
    const char next[] = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
    cr_assert_eq(mock_feed(c, next, sizeof(next) - 1), 0, "the module took the next request");
    cr_assert(c->paused, "busy, and still reading");
    cr_assert_eq(c->inlen, sizeof(next) - 1);
    upstream_answers(0, "first");
    cr_assert(!c->paused);
    cr_assert_eq(c->inlen, 0, "not presented again when the answer was done");
    upstream_answers(0, "second"); /* the kept connection took /b */
    cr_assert(strstr(c->out, "\r\n\r\nfirst"));
    cr_assert(strstr(c->out, "\r\n\r\nsecond"));
    cr_assert_lt(strstr(c->out, "first"), strstr(c->out, "second"));
    mock_conn_free(c);
    mock_outbound_free();
    free(s->locs);
    free(s);
}
