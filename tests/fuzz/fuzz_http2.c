/* tests/fuzz/fuzz_http2.c - fuzz target for the http module's HTTP/2 side:
 * a connection to a block with http2 on, the client preface, then the input
 * cut into pieces as reads deliver them, through the mock core of
 * tests/unit/http_mock.c (its answers come from the same handlers as
 * HTTP/1.1's). Besides memory safety, what the module writes must be a
 * sequence of whole HTTP/2 frames after the server's SETTINGS, nothing may
 * be written after a close, and nothing outside the static root may be
 * served. The first input byte picks the piece sizes. */
#define _GNU_SOURCE
#include <string.h>

#include "fuzz.h"
#include "http2.h"
#include "http_mock.h"

static http2_conf fuzz_h2 = {
    .max_concurrent_streams = 16,
    .initial_window_size = 65535,
    .max_header_list_size = 8192,
    .idle_timeout = 1000,
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    mock_setup();
    mock_srv->http2 = &fuzz_h2;
    atexit(mock_teardown);
    return 0;
}

/* The frames written so far: a frame cut by the end of out waits for the
 * rest (frame_left: bytes of the current frame still to come). */
static size_t frame_left;

static void check_frames(zerg_conn *c)
{
    TEST_CHECK(!memmem(c->out, c->outlen, "root:x:0:0:", 11), "served /etc/passwd");
    size_t off = 0;
    while (off < c->outlen) {
        if (frame_left) {
            size_t n = c->outlen - off < frame_left ? c->outlen - off : frame_left;
            off += n;
            frame_left -= n;
            continue;
        }
        TEST_CHECK(c->outlen - off >= 9, "a frame header cut in two (%zu bytes)", c->outlen - off);
        const uint8_t *h = (const uint8_t *)c->out + off;
        size_t len = (size_t)h[0] << 16 | (size_t)h[1] << 8 | h[2];
        TEST_CHECK(h[3] <= 9, "unknown frame type %u", h[3]);
        off += 9;
        frame_left = len;
    }
    c->outlen = 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    unsigned seed = data[0];
    const uint8_t *in = data + 1;
    size_t n = size - 1;
    zerg_conn *c = mock_conn_new();
    c->flush = check_frames;
    frame_left = 0;
    mock_feed(c, (const uint8_t *)HTTP2_PREFACE, HTTP2_PREFACE_LEN);
    check_frames(c);
    size_t off = 0;
    while (off < n && !c->closed && !c->aborted && !c->paused) {
        size_t piece = fuzz_piece(&seed, n - off);
        mock_feed(c, in + off, piece);
        off += piece;
        check_frames(c);
    }
    mock_conn_free(c);
    return 0;
}
