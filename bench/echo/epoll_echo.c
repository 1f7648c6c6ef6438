/* epoll_echo - the baseline zerg's echo module is measured against.
 *
 * A plain single-thread TCP echo server, written the way a careful C
 * programmer writes a fast one with epoll: non-blocking sockets, SO_REUSEADDR,
 * TCP_NODELAY, edge-triggered notification registered once per socket (no
 * epoll_ctl per message), read until the socket is drained, write back at
 * once, and buffer what a partial write left over (reading stops until that
 * is sent, so a slow reader exerts backpressure).
 *
 * Usage: epoll_echo HOST PORT
 * Runs until SIGTERM or SIGINT. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define READ_BUF   (64 * 1024)
#define MAX_EVENTS 256

struct conn {
    int fd;
    size_t out_off; /* bytes of out already sent */
    size_t out_len; /* bytes in out (a partial write's remainder) */
    char *out;      /* READ_BUF bytes, allocated on the first partial write */
};

static volatile sig_atomic_t stop_flag;
static char rbuf[READ_BUF];
static int listener_tag; /* epoll_data.ptr of the listening socket */

static void on_signal(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void conn_close(int ep, struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    free(c->out);
    free(c);
}

/* Send the buffered remainder. 1: all sent, 0: still pending, -1: error. */
static int flush_out(struct conn *c)
{
    while (c->out_off < c->out_len) {
        ssize_t n = write(c->fd, c->out + c->out_off, c->out_len - c->out_off);
        if (n > 0) {
            c->out_off += (size_t)n;
        } else if (n < 0 && errno == EINTR) {
            continue;
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            return 0;
        } else {
            return -1;
        }
    }
    c->out_off = c->out_len = 0;
    return 1;
}

/* Echo what bytes are readable. Returns -1 when c must be closed. */
static int serve_input(struct conn *c)
{
    for (;;) {
        ssize_t n = read(c->fd, rbuf, sizeof rbuf);
        if (n == 0)
            return -1; /* EOF: the client is done */
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0;
            return -1;
        }
        size_t len = (size_t)n, off = 0;
        while (off < len) {
            ssize_t w = write(c->fd, rbuf + off, len - off);
            if (w > 0) {
                off += (size_t)w;
            } else if (w < 0 && errno == EINTR) {
                continue;
            } else if (w < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                if (!c->out && !(c->out = malloc(READ_BUF)))
                    return -1;
                memcpy(c->out, rbuf + off, len - off);
                c->out_off = 0;
                c->out_len = len - off;
                /* Stop reading; EPOLLOUT resumes us once this is sent. */
                return 0;
            } else {
                return -1;
            }
        }
        /* A short read drained the socket: a new edge reports more data. */
        if (len < sizeof rbuf)
            return 0;
    }
}

static void accept_all(int ep, int lfd)
{
    for (;;) {
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                perror("epoll_echo: accept4");
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct conn *c = calloc(1, sizeof *c);
        if (!c) {
            close(fd);
            continue;
        }
        c->fd = fd;
        struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET,
                                 .data.ptr = c};
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            perror("epoll_echo: epoll_ctl");
            close(fd);
            free(c);
            continue;
        }
        /* Bytes may already be queued; with edge triggering, look now. */
        if (serve_input(c) < 0)
            conn_close(ep, c);
    }
}

static int listen_on(const char *host, const char *port)
{
    struct addrinfo hints = {.ai_family = AF_UNSPEC,
                             .ai_socktype = SOCK_STREAM,
                             .ai_flags = AI_PASSIVE | AI_NUMERICSERV};
    struct addrinfo *res, *ai;
    int err = getaddrinfo(host, port, &hints, &res);
    if (err) {
        fprintf(stderr, "epoll_echo: %s:%s: %s\n", host, port, gai_strerror(err));
        return -1;
    }
    int fd = -1;
    for (ai = res; ai; ai = ai->ai_next) {
        fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
            continue;
        int one = 1;
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
        if (bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 && listen(fd, 4096) == 0)
            break;
        close(fd);
        fd = -1;
    }
    if (fd < 0)
        fprintf(stderr, "epoll_echo: cannot listen on %s:%s: %s\n", host, port, strerror(errno));
    freeaddrinfo(res);
    return fd;
}

int main(int argc, char **argv)
{
    if (argc != 3) {
        fprintf(stderr, "usage: epoll_echo HOST PORT\n");
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal; /* no SA_RESTART: epoll_wait returns EINTR */
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);

    int lfd = listen_on(argv[1], argv[2]);
    if (lfd < 0)
        return 1;
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        perror("epoll_echo: epoll_create1");
        return 1;
    }
    struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &listener_tag};
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &lev) < 0) {
        perror("epoll_echo: epoll_ctl");
        return 1;
    }

    struct epoll_event evs[MAX_EVENTS];
    while (!stop_flag) {
        int n = epoll_wait(ep, evs, MAX_EVENTS, -1);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            perror("epoll_echo: epoll_wait");
            return 1;
        }
        for (int i = 0; i < n; i++) {
            if (evs[i].data.ptr == &listener_tag) {
                accept_all(ep, lfd);
                continue;
            }
            struct conn *c = evs[i].data.ptr;
            uint32_t e = evs[i].events;
            if (e & EPOLLERR) {
                conn_close(ep, c);
                continue;
            }
            if (c->out_len) {
                /* Waiting for room: only a writable socket changes anything. */
                int r = flush_out(c);
                if (r < 0) {
                    conn_close(ep, c);
                    continue;
                }
                if (r == 0)
                    continue;
                /* Drained: resume reading what piled up meanwhile. */
            } else if (!(e & (EPOLLIN | EPOLLRDHUP | EPOLLHUP))) {
                continue; /* a bare EPOLLOUT with nothing to send */
            }
            if (serve_input(c) < 0)
                conn_close(ep, c);
        }
    }
    close(ep);
    close(lfd);
    return 0;
}
