/* tests/unit/http_mock.h - a mock core for driving the http module through its
 * hooks without a ring: a fake zerg_api that records each connection's output
 * and runs file operations at once. Shared by test_http_proto and the fuzzers. */
#ifndef HTTP_MOCK_H
#define HTTP_MOCK_H

#include <stdio.h>
#include <stdlib.h>

#include "http.h"
#include "http_access.h"
#include "http_autoindex.h"
#include "http_cache.h"
#include "http_log.h"
#include "http_proxy.h"
#include "http_redirect.h"
#include "http_static.h"
#include "llhttp.h"
#include "test_check.h"

struct zerg_conn {
    char ctx[sizeof(http_conn)] __attribute__((aligned(16)));
    const zerg_conn_hooks *hooks; /* outbound: its own (connect_with); NULL: the module's */
    void *conf;
    void *const *vhosts; /* blocks sharing the address; NULL: conf alone */
    size_t nvhosts;
    int closed, aborted, closing, paused;
    char *in; /* input the module left (or that came while paused), kept */
    size_t inlen;
    int in_data;   /* inside on_data: a resume_read waits for its end */
    int connected; /* outbound: on_connect was delivered */
    int shut_wr;   /* shutdown(SHUT_WR) was asked */
    uint64_t timeout;
    char out[1 << 20];
    size_t outlen;
    void (*flush)(zerg_conn *c); /* optional: called to empty out when full */
};
struct zerg_worker {
    int dummy;
};
struct zerg_conf_ctx {
    int errors;
};

extern const zerg_module zerg_module_info;
extern zerg_worker mock_worker;
extern http_srv *mock_srv;       /* the server block mock_setup builds */
extern int mock_ring_opens;      /* opens the module asked the core for */
extern char mock_docroot[];      /* its static root, with files made by mock_setup */
extern size_t mock_log_lines;    /* access log lines written */
extern char mock_log_last[4096]; /* the last one (cut to fit) */
extern size_t mock_out_pending;  /* what conn_out_pending says (0; high mark 256k) */

/* Load the module and build one server block: =/hello (return 200),
 * /status, / (static, in a fresh temp folder), =/nocontent (204) and =/big
 * (10000 bytes); client_max_body_size 100; an access log in a format with
 * every variable, whose lines the mock checks (one line of printable ASCII,
 * no '"' but the format's) and counts in mock_log_lines. */
void mock_setup(void);
void mock_teardown(void); /* removes the temp folder */

zerg_conn *mock_conn_open(void *conf); /* an accepted client of block conf */
zerg_conn *mock_conn_new(void);        /* ... of mock_srv */
/* Outbound connections the module asked for with api->connect_with,
 * oldest first (each with its hook set); mock_outbound_free closes and
 * frees them. */
#define MOCK_MAX_OUTBOUND 16
extern zerg_conn *mock_outbound[MOCK_MAX_OUTBOUND];
extern size_t mock_noutbound;
void mock_conn_free(zerg_conn *c);
/* The hooks of c as the core calls them: its own set, else the module's. */
void mock_on_connect(zerg_conn *c, int status);
size_t mock_on_data(zerg_conn *c, const uint8_t *data, size_t len);
void mock_on_eof(zerg_conn *c);
void mock_on_close(zerg_conn *c, int err);
/* on_close for every outbound connection, then free them all. */
void mock_outbound_free(void);
/* n bytes arrive: as the core does, the mock keeps what on_data leaves
 * and presents it again joined with the next bytes, or alone on
 * resume_read; while paused it keeps them all. Then the file operations
 * and completions asked for run. Returns how many bytes the module
 * consumed in all (n when nothing was kept before or after). */
size_t mock_feed(zerg_conn *c, const void *data, size_t n);
void mock_run_ops(void);

/* A response parser reading answers as an HTTP client does: a 204 or 304
 * has no body, whatever its Content-Length says (llhttp alone would wait
 * for one). */
void mock_answer_parser_init(llhttp_t *p);

#endif
