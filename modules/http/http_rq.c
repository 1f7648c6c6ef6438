/* modules/http/http_rq.c - per-request state (parser, copies of the head's
 * fields) from a per-worker free list: taken at a request's first byte and
 * given back once the connection is idle, so that an idle keep-alive
 * connection holds nothing besides its ctx. */
#include <stdlib.h>

#include "http.h"

/* Kept for reuse at most (the rest is freed), and the buffers they keep. */
#define HTTP_RQ_KEEP        64
#define HTTP_RQ_KEEP_HBUF   4096
#define HTTP_RQ_KEEP_FIELDS 64

static http_rq *http_rq_free;
static unsigned http_rq_nfree;

static void http_rq_destroy(http_rq *rq)
{
    free(rq->hbuf);
    free(rq->fields);
    free(rq);
}

int http_rq_get(http_conn *hc)
{
    http_rq *rq = http_rq_free;
    if (rq) {
        http_rq_free = rq->next;
        http_rq_nfree--;
    } else if (!(rq = calloc(1, sizeof(*rq)))) {
        return -1;
    }
    rq->next = NULL;
    rq->hlen = rq->nfields = 0;
    if (!hc->h2) /* an HTTP/2 stream's head comes parsed by nghttp2 */
        http_parser_init(hc, &rq->parser);
    hc->rq = rq;
    return 0;
}

void http_rq_put(http_conn *hc)
{
    http_rq *rq = hc->rq;
    if (!rq)
        return;
    hc->rq = NULL;
    if (http_rq_nfree >= HTTP_RQ_KEEP) {
        http_rq_destroy(rq);
        return;
    }
    if (rq->hcap > HTTP_RQ_KEEP_HBUF) { /* a rare big head: not kept */
        free(rq->hbuf);
        rq->hbuf = NULL;
        rq->hcap = 0;
    }
    if (rq->fields_cap > HTTP_RQ_KEEP_FIELDS) {
        free(rq->fields);
        rq->fields = NULL;
        rq->fields_cap = 0;
    }
    rq->next = http_rq_free;
    http_rq_free = rq;
    http_rq_nfree++;
}

void http_rq_free_all(void)
{
    while (http_rq_free) {
        http_rq *rq = http_rq_free;
        http_rq_free = rq->next;
        http_rq_destroy(rq);
    }
    http_rq_nfree = 0;
}
