/* echo_load.c - a small epoll echo server and echo load generator for
 * bench/proxy (one thread each; built by bench_proxy.py with cc -O2).
 *   echo_load server PORT
 *   echo_load client HOST PORT CONNS SIZE SECONDS   -> prints "msgs N secs S" */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int server(int port)
{
    int l = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), one = 1;
    setsockopt(l, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(l, (struct sockaddr *)&a, sizeof(a)) < 0 || listen(l, 1024) < 0) {
        perror("bind");
        return 1;
    }
    int ep = epoll_create1(0);
    struct epoll_event ev = {.events = EPOLLIN, .data.fd = l};
    epoll_ctl(ep, EPOLL_CTL_ADD, l, &ev);
    static char buf[65536];
    struct epoll_event evs[256];
    for (;;) {
        int n = epoll_wait(ep, evs, 256, -1);
        for (int i = 0; i < n; i++) {
            int fd = evs[i].data.fd;
            if (fd == l) {
                int c;
                while ((c = accept4(l, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
                    struct epoll_event e = {.events = EPOLLIN, .data.fd = c};
                    epoll_ctl(ep, EPOLL_CTL_ADD, c, &e);
                }
                continue;
            }
            ssize_t r = read(fd, buf, sizeof(buf));
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                close(fd);
                continue;
            }
            ssize_t off = 0;
            while (off < r) { /* small messages: a blocking-ish retry is fine */
                ssize_t w = write(fd, buf + off, (size_t)(r - off));
                if (w < 0 && errno != EAGAIN)
                    break;
                if (w > 0)
                    off += w;
            }
        }
    }
}

static int client(const char *host, int port, int conns, int size, double secs)
{
    int ep = epoll_create1(0), one = 1;
    char *msg = calloc(1, (size_t)size);
    int *got = calloc((size_t)conns, sizeof(int));
    static char buf[65536];
    memset(msg, 'e', (size_t)size);
    for (int i = 0; i < conns; i++) {
        int s = socket(AF_INET, SOCK_STREAM, 0);
        struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
        inet_pton(AF_INET, host, &a.sin_addr);
        if (connect(s, (struct sockaddr *)&a, sizeof(a)) < 0) {
            perror("connect");
            return 1;
        }
        setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        fcntl(s, F_SETFL, O_NONBLOCK);
        struct epoll_event e = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        e.data.u64 = ((uint64_t)s << 32) | (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
        if (write(s, msg, (size_t)size) != size)
            return 1;
    }
    long long msgs = 0;
    double t0 = now(), end = t0 + secs;
    struct epoll_event evs[256];
    while (now() < end) {
        int n = epoll_wait(ep, evs, 256, 100);
        for (int i = 0; i < n; i++) {
            int s = (int)(evs[i].data.u64 >> 32), k = (int)(uint32_t)evs[i].data.u64;
            ssize_t r = read(s, buf, sizeof(buf));
            if (r <= 0) {
                if (r < 0 && errno == EAGAIN)
                    continue;
                fprintf(stderr, "connection %d closed\n", k);
                return 1;
            }
            got[k] += (int)r;
            while (got[k] >= size) {
                got[k] -= size;
                msgs++;
                if (write(s, msg, (size_t)size) != size)
                    return 1;
            }
        }
    }
    printf("msgs %lld secs %.3f\n", msgs, now() - t0);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 3 && !strcmp(argv[1], "server"))
        return server(atoi(argv[2]));
    if (argc == 7 && !strcmp(argv[1], "client"))
        return client(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]), atof(argv[6]));
    fprintf(stderr, "usage: echo_load server PORT | client HOST PORT CONNS SIZE SECONDS\n");
    return 2;
}
