/* tests/fuzz/fuzz_http_upstream.c - fuzz target for proxy_pass, through the
 * http module and the mock core, in two modes (bit 0x40 of the second byte):
 * - answers: a client's request (one of a few, by the second byte) goes to a
 *   proxy_pass location, and the rest of the input is what the upstream
 *   answers, in pieces;
 * - requests: the rest of the input is what the client sends, and each
 *   upstream answers every request it gets with a short 200.
 * Besides memory safety: what goes upstream parses as HTTP/1.1 requests (no
 * request smuggled into another), what the client gets parses as a valid
 * response stream, and once the upstream has closed that stream is whole, or
 * the client connection is closed (an answer cut short, as nginx does) or
 * reset. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http_mock.h"

static http_srv *proxy_srv;

/* Upstream-side state of the requests mode: each connection's requests as
 * an upstream server parses them, and how many it has answered. */
typedef struct up_side {
    llhttp_t parser;
    size_t parsed; /* bytes of the connection's output parsed */
    unsigned done; /* complete requests */
    unsigned answered;
    int upgraded; /* an Upgrade or CONNECT request: no longer checked */
} up_side;
static up_side sides[MOCK_MAX_OUTBOUND];
static llhttp_settings_t request_settings;

static int request_complete(llhttp_t *p)
{
    up_side *sd = p->data; /* NULL: only checked */
    if (sd)
        sd->done++;
    return 0;
}

/* A block whose only location, "/", passes requests to 127.0.0.1:9 and keeps
 * up to 2 upstream connections for reuse. */
static http_srv *proxy_block(void)
{
    static zerg_conf_ctx cx;
    static http_proxy_pass pass = {.host = "127.0.0.1:9", .host_len = 11};
    http_srv *s = calloc(1, sizeof(*s));
    TEST_CHECK(s, "out of memory");
    zerg_module_info.conf_init(&cx, s);
    s->nlocs = 1;
    s->locs = calloc(1, sizeof(http_location));
    TEST_CHECK(s->locs, "out of memory");
    s->locs[0] = (http_location){.path = "/",
                                 .match = "/",
                                 .match_len = 1,
                                 .kind = HTTP_LOC_PROXY,
                                 .proxy = &pass,
                                 .proxy_keepalive = 2};
    TEST_CHECK(zerg_module_info.conf_done(&cx, NULL, s) == 0 && cx.errors == 0, "conf_done");
    TEST_CHECK(zerg_module_info.server_init(&mock_worker, s) == 0, "server_init");
    return s;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mock_setup();
    atexit(mock_teardown);
    proxy_srv = proxy_block();
    llhttp_settings_init(&request_settings);
    request_settings.on_message_complete = request_complete;
    return 0;
}

static const char *const requests[] = {
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\n",
    "GET /a HTTP/1.1\r\nHost: h\r\n\r\nGET /b?x=1 HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello",
    "POST /p HTTP/1.1\r\nHost: h\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n",
    "GET /a HTTP/1.0\r\n\r\n",
    "GET /ws HTTP/1.1\r\nHost: h\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nafter",
    "HEAD /a HTTP/1.1\r\nHost: h\r\n\r\n",
    "POST /p HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nok",
};
#define NREQUESTS   (sizeof(requests) / sizeof(requests[0]))
#define REQ_HEAD    6 /* answers have no body: not checked as a stream */
#define REQ_UPGRADE 5 /* after a 101, bytes are no longer HTTP */

/* The live upstream connection the next answer bytes come from: the newest
 * one the module opened and has not closed, connected first if need be. */
static zerg_conn *live_upstream(void)
{
    for (size_t i = mock_noutbound; i-- > 0;) {
        zerg_conn *u = mock_outbound[i];
        if (u->closed || u->aborted)
            continue;
        if (!u->connected) {
            u->connected = 1;
            mock_on_connect(u, 0);
            mock_run_ops();
        }
        return u;
    }
    return NULL;
}

static void check_stream(llhttp_t *p, zerg_conn *c, const char *what)
{
    if (c->outlen) {
        llhttp_errno_t e = llhttp_execute(p, c->out, c->outlen);
        TEST_CHECK(e == HPE_OK || e == HPE_PAUSED_UPGRADE, "%s invalid: %s (%s)", what,
                   llhttp_errno_name(e), llhttp_get_error_reason(p));
    }
    c->outlen = 0;
}

/* Every upstream parses what it was sent as requests and answers each whole
 * one, until nothing more happens. */
static void serve_upstreams(void)
{
    static const char answer[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
    for (int progress = 1; progress;) {
        progress = 0;
        for (size_t i = 0; i < mock_noutbound; i++) {
            zerg_conn *u = mock_outbound[i];
            up_side *sd = &sides[i];
            if (u->closed || u->aborted || sd->upgraded)
                continue;
            if (!u->connected) {
                u->connected = 1;
                mock_on_connect(u, 0);
                mock_run_ops();
                progress = 1;
            }
            if (u->outlen > sd->parsed) {
                llhttp_errno_t e =
                    llhttp_execute(&sd->parser, u->out + sd->parsed, u->outlen - sd->parsed);
                sd->parsed = u->outlen;
                sd->upgraded = e == HPE_PAUSED_UPGRADE;
                TEST_CHECK(e == HPE_OK || sd->upgraded, "request upstream invalid: %s (%s)",
                           llhttp_errno_name(e), llhttp_get_error_reason(&sd->parser));
            }
            if (sd->answered < sd->done && !u->paused) {
                sd->answered++;
                mock_on_data(u, (const uint8_t *)answer, sizeof(answer) - 1);
                mock_run_ops();
                progress = 1;
            }
        }
    }
}

/* Requests mode: the input is what the client sends; every upstream answers
 * each request it gets with a short 200. */
static void fuzz_requests(unsigned seed, const uint8_t *in, size_t n)
{
    memset(sides, 0, sizeof(sides));
    for (size_t i = 0; i < MOCK_MAX_OUTBOUND; i++) {
        llhttp_init(&sides[i].parser, HTTP_REQUEST, &request_settings);
        sides[i].parser.data = &sides[i];
    }
    int check = !memmem(in, n, "HEAD", 4);
    llhttp_t answers;
    mock_answer_parser_init(&answers);
    zerg_conn *c = mock_conn_open(proxy_srv);
    size_t off = 0;
    while (off < n && !c->closed && !c->aborted && !c->paused) {
        size_t piece = fuzz_piece(&seed, n - off);
        TEST_CHECK(mock_feed(c, in + off, piece) == piece || c->paused,
                   "on_data took less, not paused");
        off += piece;
        serve_upstreams();
        if (check && !c->aborted)
            check_stream(&answers, c, "answer stream");
        c->outlen = 0;
    }
    mock_conn_free(c);
    mock_outbound_free();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2)
        return 0;
    if (data[1] & 0x40) {
        fuzz_requests(data[0], data + 2, size - 2);
        return 0;
    }
    unsigned seed = data[0], which = data[1] % NREQUESTS;
    const uint8_t *in = data + 2;
    size_t n = size - 2, off = 0;
    int eof = data[1] & 0x80; /* the upstream closes after its bytes */

    zerg_conn *c = mock_conn_open(proxy_srv);
    llhttp_t answers;
    mock_answer_parser_init(&answers);
    const char *req = requests[which];
    TEST_CHECK(mock_feed(c, req, strlen(req)) == strlen(req) || c->paused,
               "on_data took less, not paused");
    int check = which != REQ_HEAD && which != REQ_UPGRADE;

    zerg_conn *u = NULL;
    while (off < n && !c->closed && !c->aborted && (u = live_upstream()) && !u->paused) {
        size_t piece = fuzz_piece(&seed, n - off);
        size_t used = mock_on_data(u, in + off, piece);
        TEST_CHECK(used == piece, "upstream on_data took %zu of %zu bytes", used, piece);
        mock_run_ops();
        off += piece;
        if (check && !c->aborted)
            check_stream(&answers, c, "answer stream");
        c->outlen = 0;
    }
    if (eof && (u = live_upstream())) {
        mock_on_eof(u);
        mock_run_ops();
        if (check && !c->aborted) {
            check_stream(&answers, c, "answer stream");
            llhttp_errno_t e = llhttp_finish(&answers);
            TEST_CHECK(e == HPE_OK || c->closed,
                       "answer stream ends mid-answer (%s), and the connection stays open",
                       llhttp_errno_name(e));
        }
    }
    /* every request the module sent upstream is a whole, valid one */
    for (size_t i = 0; i < mock_noutbound && which != REQ_UPGRADE; i++) {
        llhttp_t sent;
        llhttp_init(&sent, HTTP_REQUEST, &request_settings);
        check_stream(&sent, mock_outbound[i], "request upstream");
    }
    mock_conn_free(c);
    mock_outbound_free();
    return 0;
}
