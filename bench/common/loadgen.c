/* loadgen.c - helpers shared by zerg's load generators: clocks, argument
 * parsing, connecting, and the batched io_uring turn (see loadgen.h). */
#define _GNU_SOURCE
#include "loadgen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

double lg_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

double lg_cpu_s(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
           (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

long lg_parse_num(const char *prog, const char *s, const char *what, long min, long max)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max) {
        fprintf(stderr, "%s: bad %s '%s' (%ld..%ld)\n", prog, what, s, min, max);
        exit(2);
    }
    return v;
}

double lg_parse_seconds(const char *prog, const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0 && v <= 3600)) {
        fprintf(stderr, "%s: bad SECONDS '%s' (0..3600]\n", prog, s);
        exit(2);
    }
    return v;
}

void lg_raise_nofile(long nconns)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)nconns + 16;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < want) {
        rl.rlim_cur = rl.rlim_max < want ? rl.rlim_max : want;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

static int connect_to(const struct addrinfo *ai)
{
    int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {.tv_sec = 5, .tv_usec = 0}; /* bounds a blocking connect */
    int one = 1, fl;
    if (setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv) < 0 ||
        connect(fd, ai->ai_addr, ai->ai_addrlen) < 0 ||
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0 ||
        (fl = fcntl(fd, F_GETFL)) < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        errno = e;
        return -1;
    }
    return fd;
}

void lg_connect_all(const char *prog, const char *host, const char *port, int *fds, long nconns)
{
    lg_raise_nofile(nconns);
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *ai;
    int gerr = getaddrinfo(host, port, &hints, &ai);
    if (gerr) {
        fprintf(stderr, "%s: %s:%s: %s\n", prog, host, port, gai_strerror(gerr));
        exit(1);
    }
    for (long i = 0; i < nconns; i++) {
        fds[i] = connect_to(ai);
        if (fds[i] < 0) {
            fprintf(stderr, "%s: connect %s:%s (connection %ld): %s\n", prog, host, port, i,
                    strerror(errno));
            exit(1);
        }
    }
    freeaddrinfo(ai);
}

void lg_ring_init(const char *prog, struct io_uring *ring, unsigned entries)
{
    struct io_uring_params p = {.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN};
    int rc = io_uring_queue_init_params(entries, ring, &p);
    if (rc == -EINVAL) { /* an older kernel: no DEFER_TASKRUN */
        memset(&p, 0, sizeof p);
        rc = io_uring_queue_init_params(entries, ring, &p);
    }
    if (rc < 0) {
        fprintf(stderr, "%s: io_uring_queue_init: %s\n", prog, strerror(-rc));
        exit(1);
    }
}

struct io_uring_sqe *lg_get_sqe(const char *prog, struct io_uring *ring)
{
    struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
    if (!sqe) { /* rings are sized for what is in flight: only a full one waits */
        io_uring_submit(ring);
        sqe = io_uring_get_sqe(ring);
    }
    if (!sqe) {
        fprintf(stderr, "%s: io_uring submission queue full\n", prog);
        exit(1);
    }
    return sqe;
}

int lg_ring_turn(const char *prog, struct io_uring *ring,
                 void (*cqe_fn)(void *arg, struct io_uring_cqe *cqe), void *arg)
{
    struct __kernel_timespec ts = {.tv_sec = 0, .tv_nsec = 100 * 1000 * 1000};
    struct io_uring_cqe *cqe;
    int rc = io_uring_submit_and_wait_timeout(ring, &cqe, 1, &ts, NULL);
    if (rc < 0 && rc != -ETIME && rc != -EINTR) {
        fprintf(stderr, "%s: io_uring_submit_and_wait: %s\n", prog, strerror(-rc));
        return -1;
    }
    struct io_uring_cqe *cqes[256];
    unsigned n;
    while ((n = io_uring_peek_batch_cqe(ring, cqes, 256)) > 0) {
        for (unsigned i = 0; i < n; i++)
            cqe_fn(arg, cqes[i]);
        io_uring_cq_advance(ring, n);
    }
    return 0;
}
