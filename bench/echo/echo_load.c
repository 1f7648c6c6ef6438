/* echo_load - a load generator for TCP echo servers.
 *
 * Opens CONNS connections to HOST:PORT; each keeps exactly one MSG_BYTES
 * message in flight: send it, read back exactly MSG_BYTES, send the next.
 * Runs for SECONDS (bounded: it stops at the deadline whatever the server
 * does), then prints one line of key=value pairs, e.g.
 *
 *   echo_load: conns=64 msg_bytes=64 seconds=5.000 msgs=875000 msgs_per_s=175000
 *     mbytes_per_s=11.2 load_cpu_pct=99.1 errors=0
 *
 * (on one line). Each message carries the connection's message counter in
 * its first 8 bytes (when MSG_BYTES >= 8); an echo that does not return it
 * counts as an error. load_cpu_pct is this process's own CPU use during the
 * run: near 100 means the load generator, not the server, is the bottleneck.
 *
 * Single thread. ENGINE (default epoll) picks how it drives the sockets:
 * "epoll" (edge-triggered, a send and a recv syscall per message) or "uring"
 * (io_uring: registered sockets, a recv and a send per message, submitted and
 * reaped in batches: far fewer syscalls and less CPU, so one core drives more
 * load). Exit status 0
 * when every connection worked to the end and at least one message completed,
 * else 1 (2: usage).
 *
 * Usage: echo_load HOST PORT CONNS MSG_BYTES SECONDS [epoll|uring] */
#define _GNU_SOURCE
#include "loadgen.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_EVENTS 256

struct lconn {
    int fd;
    int idx; /* in the uring engine's registered file table */
    int dead;
    uint64_t seq; /* messages completed on this connection */
    size_t sent;  /* bytes of the current message written */
    size_t got;   /* bytes of the current echo read */
    unsigned char *tx;
    unsigned char *rx;
};

static size_t msg_bytes;
static uint64_t total_msgs;
static unsigned errors;

static void fail(struct lconn *c, const char *what, int err)
{
    if (!c->dead) {
        if (errors < 5)
            fprintf(stderr, "echo_load: connection %d: %s%s%s\n", c->fd, what, err ? ": " : "",
                    err ? strerror(err) : "");
        errors++;
        c->dead = 1;
        shutdown(c->fd, SHUT_RDWR); /* a registered socket outlives close() */
        close(c->fd);
    }
}

/* Start (or continue) writing the current message. */
static void pump_tx(struct lconn *c)
{
    while (!c->dead && c->sent < msg_bytes) {
        ssize_t n = send(c->fd, c->tx + c->sent, msg_bytes - c->sent, MSG_NOSIGNAL);
        if (n > 0) {
            c->sent += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return; /* EPOLLOUT continues */
        } else {
            fail(c, "send", n < 0 ? errno : 0);
        }
    }
}

static struct io_uring *uring; /* the uring engine's ring; NULL: epoll */
static void uring_send(struct lconn *c);
static void uring_recv(struct lconn *c);

static void next_message(struct lconn *c)
{
    c->seq++;
    total_msgs++;
    c->sent = c->got = 0;
    if (msg_bytes >= 8)
        memcpy(c->tx, &c->seq, 8);
    if (uring) {
        uring_send(c); /* the recv is armed already */
    } else {
        pump_tx(c);
    }
}

/* A whole echo arrived: check it and start the next message. */
static void echo_complete(struct lconn *c)
{
    if (c->sent != msg_bytes)
        fail(c, "echo arrived before the message was sent", 0);
    else if (msg_bytes >= 8 && memcmp(c->rx, c->tx, 8) != 0)
        fail(c, "echo does not match the message", 0);
    else
        next_message(c);
}

/* Read what the echo returned; on a complete message, send the next. */
static void pump_rx(struct lconn *c)
{
    while (!c->dead) {
        size_t want = msg_bytes - c->got;
        if (want == 0) {
            fail(c, "server sent more bytes than were sent to it", 0);
            return;
        }
        ssize_t n = recv(c->fd, c->rx + c->got, want, 0);
        if (n == 0) {
            fail(c, "server closed the connection", 0);
            return;
        }
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                fail(c, "recv", errno);
            return;
        }
        c->got += (size_t)n;
        if (c->got == msg_bytes) {
            echo_complete(c);
            /* One message in flight: nothing more can be queued now. */
            return;
        }
        if ((size_t)n < want)
            return; /* short read: drained, the next edge brings more */
    }
}

/* ---- the uring engine: the sockets in a registered file table, one recv
 * straight into the echo buffer per piece (no copy: echoes may be big), and
 * one send per message that the kernel finishes itself (MSG_WAITALL) and
 * that posts a completion only when it fails. A completion's user data is
 * the connection, bit 0 set for the send. ---- */

static void uring_send(struct lconn *c)
{
    struct io_uring_sqe *sqe = lg_get_sqe("echo_load", uring);
    lg_prep_send(sqe, c->fd, c->idx, c->tx, msg_bytes);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c | 1);
    c->sent = msg_bytes; /* all of it, or a failure completion */
}

static void uring_recv(struct lconn *c)
{
    struct io_uring_sqe *sqe = lg_get_sqe("echo_load", uring);
    lg_prep_recv(sqe, c->fd, c->idx, c->rx + c->got, msg_bytes - c->got);
    io_uring_sqe_set_data64(sqe, (uint64_t)(uintptr_t)c);
}

/* Echo bytes arrived (in rx already, or in a provided buffer). */
static void uring_got(struct lconn *c, const char *buf, size_t n)
{
    if (n > msg_bytes - c->got) {
        fail(c, "server sent more bytes than were sent to it", 0);
        return;
    }
    if (buf)
        memcpy(c->rx + c->got, buf, n);
    c->got += n;
    if (c->got == msg_bytes)
        echo_complete(c);
}

/* The lg_handler of the connections. */
static int u_dead(void *c)
{
    return ((struct lconn *)c)->dead;
}

static void u_bytes(void *c, const char *buf, size_t n)
{
    uring_got(c, buf, n);
}

static void u_fail(void *c, const char *why, int err)
{
    fail(c, why, err);
}

static void u_recv(void *c)
{
    uring_recv(c);
}

static const lg_handler handler = {u_dead, u_bytes, u_fail, u_recv};

/* Drive every connection until the deadline, or until none is left. */
static void run_uring(struct lconn *conns, const int *fds, long nconns, double deadline)
{
    static struct io_uring ring;
    lg_ring_init("echo_load", &ring, (unsigned)(2 * nconns + 8));
    uring = &ring;
    lg_ring_extras("echo_load", uring, fds, nconns, 0);
    for (long i = 0; i < nconns; i++) {
        conns[i].idx = (int)i;
        conns[i].seq = (uint64_t)-1; /* next_message counts one: start one below */
        total_msgs--;
        next_message(&conns[i]);
        uring_recv(&conns[i]);
    }
    long alive = nconns;
    while (alive > 0 && lg_now_s() < deadline)
        if (lg_ring_turn("echo_load", uring, &handler, &alive) < 0)
            break;
}

/* ---- the epoll engine ---- */

/* Drive every connection until the deadline, or until none is left. */
static void run_epoll(struct lconn *conns, long nconns, double deadline)
{
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("echo_load: epoll_create1");
        exit(1);
    }
    for (long i = 0; i < nconns; i++) {
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = &conns[i]};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, conns[i].fd, &ev) < 0) {
            perror("echo_load: epoll_ctl");
            exit(1);
        }
    }
    for (long i = 0; i < nconns; i++) {
        conns[i].seq = (uint64_t)-1; /* next_message counts one: start one below */
        total_msgs--;
        next_message(&conns[i]);
    }
    struct epoll_event evs[MAX_EVENTS];
    long alive = nconns;
    while (alive > 0) {
        double t = lg_now_s();
        if (t >= deadline)
            break;
        int ms = (int)((deadline - t) * 1000.0) + 1;
        int n = epoll_wait(ep, evs, MAX_EVENTS, ms > 100 ? 100 : ms);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("echo_load: epoll_wait");
            break;
        }
        for (int i = 0; i < n; i++) {
            struct lconn *c = evs[i].data.ptr;
            if (c->dead)
                continue;
            uint32_t e = evs[i].events;
            if ((e & EPOLLOUT) && c->sent < msg_bytes)
                pump_tx(c);
            if (e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR))
                pump_rx(c);
            if (c->dead)
                alive--;
        }
    }
    close(ep);
}

int main(int argc, char **argv)
{
    if (argc != 6 && argc != 7) {
        fprintf(stderr, "usage: echo_load HOST PORT CONNS MSG_BYTES SECONDS [epoll|uring]\n");
        return 2;
    }
    int use_uring = argc == 7 && strcmp(argv[6], "uring") == 0;
    if (argc == 7 && !use_uring && strcmp(argv[6], "epoll") != 0) {
        fprintf(stderr, "echo_load: bad ENGINE '%s' (epoll or uring)\n", argv[6]);
        return 2;
    }
    const char *host = argv[1], *port = argv[2];
    long nconns = lg_parse_num("echo_load", argv[3], "CONNS", 1, 60000);
    msg_bytes = (size_t)lg_parse_num("echo_load", argv[4], "MSG_BYTES", 1, 64L * 1024 * 1024);
    double seconds = lg_parse_seconds("echo_load", argv[5]);
    signal(SIGPIPE, SIG_IGN);

    struct lconn *conns = lg_alloc("echo_load", (size_t)nconns, sizeof *conns);
    int *fds = lg_connect_all("echo_load", host, port, nconns);
    for (long i = 0; i < nconns; i++) {
        struct lconn *c = &conns[i];
        c->fd = fds[i];
        c->tx = lg_alloc("echo_load", 1, msg_bytes);
        c->rx = lg_alloc("echo_load", 1, msg_bytes);
        for (size_t j = 0; j < msg_bytes; j++)
            c->tx[j] = (unsigned char)('a' + (j + (size_t)i) % 26);
    }

    double t0 = lg_now_s(), cpu0 = lg_cpu_s();
    if (use_uring)
        run_uring(conns, fds, nconns, t0 + seconds);
    else
        run_epoll(conns, nconns, t0 + seconds);
    double elapsed = lg_now_s() - t0, cpu = lg_cpu_s() - cpu0;

    printf("echo_load: engine=%s conns=%ld msg_bytes=%zu seconds=%.3f msgs=%llu msgs_per_s=%.0f "
           "mbytes_per_s=%.1f load_cpu_pct=%.1f errors=%u\n",
           use_uring ? "uring" : "epoll", nconns, msg_bytes, elapsed,
           (unsigned long long)total_msgs, (double)total_msgs / elapsed,
           (double)total_msgs * (double)msg_bytes / elapsed / 1e6, 100.0 * cpu / elapsed, errors);
    fflush(stdout);
    if (uring)
        io_uring_queue_exit(uring); /* cancels what is in flight before the buffers go */
    lg_ring_extras_free();
    for (long i = 0; i < nconns; i++) {
        if (!conns[i].dead)
            close(conns[i].fd);
        free(conns[i].tx);
        free(conns[i].rx);
    }
    free(conns);
    free(fds);
    return errors || total_msgs == 0 ? 1 : 0;
}
