/* tests/fuzz/fuzz_http_request.c - fuzz target for the http module as a
 * client meets it: the input, cut into pieces as reads deliver them, goes to
 * the module's on_data through the mock core of tests/unit/http_mock.c.
 * Besides memory safety, the answers must form a valid HTTP/1.1 response
 * stream (checked by llhttp in response mode), nothing may be written after
 * a close, nothing outside the static root may be served, and each access
 * log line must be one line with the format's quotes only (checked by the
 * mock core). The first input byte picks the piece sizes. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "http_mock.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mock_setup();
    atexit(mock_teardown);
    return 0;
}

/* Checks what the module wrote since the last call (as a response stream
 * when answers is not NULL), and forgets it (so a long exchange never fills
 * the mock's buffer). */
static void check_answers(llhttp_t *answers, zerg_conn *c)
{
    /* nothing outside root: mock_setup's root has a link to /etc/passwd */
    TEST_CHECK(!memmem(c->out, c->outlen, "root:x:0:0:", 11), "served /etc/passwd");
    if (answers && c->outlen) {
        llhttp_errno_t e = llhttp_execute(answers, c->out, c->outlen);
        TEST_CHECK(e == HPE_OK, "answer stream invalid: %s (%s)", llhttp_errno_name(e),
                   llhttp_get_error_reason(answers));
    }
    c->outlen = 0;
}

/* The stream being checked (NULL: safety only), also for the mock's flush
 * hook: a long answer (two big files pipelined) is checked as it fills the
 * connection's buffer. */
static llhttp_t *current_answers;

static void flush_answers(zerg_conn *c)
{
    check_answers(current_answers, c);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned seed = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    /* answers to HEAD carry a Content-Length but no body, which a response
     * parser cannot know: those streams are only checked for safety */
    llhttp_t answers;
    mock_answer_parser_init(&answers);
    current_answers = memmem(in, n, "HEAD", 4) ? NULL : &answers;

    zerg_conn *c = mock_conn_new();
    c->flush = flush_answers;
    size_t off = 0;
    /* a paused connection gets no more bytes from a real core either */
    while (off < n && !c->closed && !c->aborted && !c->paused) {
        size_t piece = fuzz_piece(&seed, n - off);
        size_t used = mock_feed(c, in + off, piece);
        TEST_CHECK(used == piece || c->paused, "on_data took %zu of %zu bytes, not paused", used,
                   piece);
        off += piece;
        check_answers(current_answers, c);
    }
    if (current_answers) {
        /* the last answer is whole, or the connection closes after it */
        llhttp_errno_t e = llhttp_finish(&answers);
        TEST_CHECK(e == HPE_OK || c->closed,
                   "answer stream ends mid-answer (%s), and the connection stays open",
                   llhttp_errno_name(e));
    }
    mock_conn_free(c);
    return 0;
}
