/* http_load - an io_uring load generator for HTTP/1.1 servers, for when wrk
 * is the bottleneck: on one core wrk tops out near the rate one nginx worker
 * serves, so it cannot show a faster server (BENCHMARKING.md, "Pitfalls").
 *
 * Opens CONNS keep-alive connections to HOST:PORT; each keeps DEPTH GET
 * requests for PATH in flight: it sends DEPTH requests in one write, reads
 * DEPTH whole answers, and sends the next DEPTH (DEPTH 1: one request, its
 * answer, the next request). The sockets sit in a registered file table; each
 * has one multishot recv from a provided buffer ring (a plain recv per answer
 * on kernels without them) and at most one send in flight, submitted and
 * reaped in batches: the load costs as little CPU as it can. Runs for SECONDS (bounded:
 * it stops at the deadline whatever the server does), then prints one line:
 *
 *   http_load: conns=64 depth=1 seconds=5.000 requests=1000000
 *     requests_per_s=200000 load_cpu_pct=97.0 errors=0 non_2xx=0
 *
 * (on one line). Answers are framed by Content-Length; a chunked answer, a
 * head over 16 KiB, a connection the server closes or a malformed status
 * line count as errors and end that connection. An answer other than 2xx or
 * 3xx counts in non_2xx. load_cpu_pct is this process's own CPU use: near
 * 100 means the load generator is the bottleneck. Exit status 0 when every
 * connection worked to the end and at least one answer came, else 1 (2:
 * usage).
 *
 * Usage: http_load HOST PORT PATH CONNS SECONDS [DEPTH] */
#define _GNU_SOURCE
#include "loadgen.h"

#include <ctype.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#define RX_BYTES 16384

struct hconn {
    int fd;
    int idx; /* in the registered file table */
    int dead;
    int in_body;      /* reading an answer's body (body_left more bytes) */
    size_t body_left; /* body bytes of the current answer still to come */
    long answered;    /* answers of the current batch read so far */
    size_t have;      /* unparsed bytes at the start of rx */
    char rx[RX_BYTES];
};

static struct io_uring ring;
static char *batch; /* DEPTH requests, sent in one write */
static size_t batch_len;
static long depth;
static uint64_t total_answers, non_2xx;
static unsigned errors;

static void fail(struct hconn *c, const char *what, int err)
{
    if (c->dead)
        return;
    if (errors < 5)
        fprintf(stderr, "http_load: connection %d: %s%s%s\n", c->fd, what, err ? ": " : "",
                err ? strerror(err) : "");
    errors++;
    c->dead = 1;
    shutdown(c->fd, SHUT_RDWR); /* ends its multishot recv; closed at exit */
}

/* The send tags its CQE with bit 0 (only a failed send posts one). */
static void send_batch(struct hconn *c)
{
    struct io_uring_sqe *sqe = lg_get_sqe("http_load", &ring);
    lg_prep_send(sqe, c->fd, c->idx, batch, batch_len);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | 1);
}

static void recv_more(struct hconn *c)
{
    struct io_uring_sqe *sqe = lg_get_sqe("http_load", &ring);
    lg_prep_recv(sqe, c->fd, c->idx, c->rx + c->have, RX_BYTES - c->have);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c);
}

static void answer_done(struct hconn *c)
{
    c->in_body = 0;
    total_answers++;
    if (++c->answered == depth) {
        c->answered = 0;
        send_batch(c);
    }
}

/* The value of header field NAME (with its colon) in head[0..len), after
 * the status line, or NULL. */
static const char *header(const char *head, size_t len, const char *name)
{
    size_t nl = strlen(name);
    const char *end = head + len;
    for (const char *p = memchr(head, '\n', len); p && (size_t)(end - p) > nl + 1;
         p = memchr(p + 1, '\n', (size_t)(end - p - 1)))
        if (strncasecmp(p + 1, name, nl) == 0)
            return p + 1 + nl;
    return NULL;
}

/* One answer head (len bytes, ending in the blank line): check the status,
 * find how long its body is. Returns 0, or -1 after failing the connection. */
static int parse_head(struct hconn *c, const char *head, size_t len)
{
    if (len < 13 || memcmp(head, "HTTP/1.", 7) != 0 || head[8] != ' ' ||
        !isdigit((unsigned char)head[9])) {
        fail(c, "malformed status line", 0);
        return -1;
    }
    int status = atoi(head + 9);
    if (status < 200 || status > 399)
        non_2xx++;
    if (header(head, len, "transfer-encoding:")) {
        fail(c, "chunked answer (only Content-Length is framed)", 0);
        return -1;
    }
    const char *cl = header(head, len, "content-length:");
    if (!cl && status != 204 && status != 304) {
        fail(c, "answer without Content-Length", 0);
        return -1;
    }
    c->body_left = cl ? strtoull(cl, NULL, 10) : 0;
    c->in_body = 1;
    return 0;
}

/* Consume what rx holds: whole heads, then body bytes. */
static void parse(struct hconn *c)
{
    size_t off = 0;
    while (!c->dead && off < c->have) {
        if (c->in_body) {
            size_t k = c->have - off < c->body_left ? c->have - off : c->body_left;
            c->body_left -= k;
            off += k;
            if (c->body_left == 0)
                answer_done(c);
            continue;
        }
        const char *end = memmem(c->rx + off, c->have - off, "\r\n\r\n", 4);
        if (!end)
            break;
        size_t head_len = (size_t)(end - (c->rx + off)) + 4;
        if (parse_head(c, c->rx + off, head_len) < 0)
            return;
        off += head_len;
        if (c->body_left == 0)
            answer_done(c);
    }
    if (c->dead)
        return;
    memmove(c->rx, c->rx + off, c->have - off);
    c->have -= off;
    if (c->have == RX_BYTES)
        fail(c, "answer head over 16 KiB", 0);
}

/* Bytes from a provided buffer: body bytes are skipped where they lie, head
 * bytes go through rx (a head may span buffers). */
static void feed(struct hconn *c, const char *p, size_t n)
{
    while (n && !c->dead) {
        if (c->in_body) {
            size_t k = n < c->body_left ? n : c->body_left;
            c->body_left -= k;
            p += k;
            n -= k;
            if (c->body_left == 0)
                answer_done(c);
            continue;
        }
        size_t k = n < RX_BYTES - c->have ? n : RX_BYTES - c->have;
        memcpy(c->rx + c->have, p, k);
        c->have += k;
        p += k;
        n -= k;
        parse(c);
    }
}

/* The lg_handler of the connections. */
static int h_dead(void *c)
{
    return ((struct hconn *)c)->dead;
}

static void h_bytes(void *conn, const char *buf, size_t n)
{
    struct hconn *c = conn;
    if (buf) {
        feed(c, buf, n);
    } else {
        c->have += n;
        parse(c);
    }
}

static void h_fail(void *c, const char *why, int err)
{
    fail(c, why, err);
}

static void h_recv(void *c)
{
    recv_more(c);
}

static const lg_handler handler = {h_dead, h_bytes, h_fail, h_recv};

/* DEPTH copies of the request. */
static void make_batch(const char *host, const char *path)
{
    char one[2048];
    int n = snprintf(one, sizeof one,
                     "GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: http_load\r\n\r\n", path, host);
    if (n < 0 || (size_t)n >= sizeof one) {
        fprintf(stderr, "http_load: PATH too long\n");
        exit(2);
    }
    batch_len = (size_t)n * (size_t)depth;
    batch = lg_alloc("http_load", 1, batch_len);
    for (long i = 0; i < depth; i++)
        memcpy(batch + (size_t)i * (size_t)n, one, (size_t)n);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: http_load HOST PORT PATH CONNS SECONDS [DEPTH]\n");
        return 2;
    }
    const char *host = argv[1], *port = argv[2], *path = argv[3];
    long nconns = lg_parse_num("http_load", argv[4], "CONNS", 1, 60000);
    double seconds = lg_parse_seconds("http_load", argv[5]);
    depth = argc == 7 ? lg_parse_num("http_load", argv[6], "DEPTH", 1, 1024) : 1;
    if (path[0] != '/') {
        fprintf(stderr, "http_load: bad PATH '%s' (starts with /)\n", path);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    make_batch(host, path);

    struct hconn *conns = lg_alloc("http_load", (size_t)nconns, sizeof *conns);
    int *fds = lg_connect_all("http_load", host, port, nconns);
    lg_ring_init("http_load", &ring, (unsigned)(2 * nconns + 8));
    lg_ring_extras("http_load", &ring, fds, nconns, 1);

    double t0 = lg_now_s(), cpu0 = lg_cpu_s();
    for (long i = 0; i < nconns; i++) {
        conns[i].fd = fds[i];
        conns[i].idx = (int)i;
        send_batch(&conns[i]);
        recv_more(&conns[i]);
    }
    long alive = nconns;
    while (alive > 0 && lg_now_s() < t0 + seconds)
        if (lg_ring_turn("http_load", &ring, &handler, &alive) < 0)
            break;
    double elapsed = lg_now_s() - t0, cpu = lg_cpu_s() - cpu0;

    printf("http_load: conns=%ld depth=%ld seconds=%.3f requests=%llu requests_per_s=%.0f "
           "load_cpu_pct=%.1f errors=%u non_2xx=%llu\n",
           nconns, depth, elapsed, (unsigned long long)total_answers,
           (double)total_answers / elapsed, 100.0 * cpu / elapsed, errors,
           (unsigned long long)non_2xx);
    fflush(stdout);
    io_uring_queue_exit(&ring); /* cancels what is in flight before the buffers go */
    for (long i = 0; i < nconns; i++)
        close(conns[i].fd);
    free(conns);
    lg_ring_extras_free();
    free(fds);
    free(batch);
    return errors || total_answers == 0 ? 1 : 0;
}
