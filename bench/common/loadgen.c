/* loadgen.c - helpers shared by zerg's load generators: clocks, argument
 * parsing, connecting, and the batched io_uring turn (see loadgen.h). */
#define _GNU_SOURCE
#include "loadgen.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
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

void *lg_alloc(const char *prog, size_t n, size_t size)
{
    void *p = calloc(n, size);
    if (!p) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    return p;
}

int *lg_connect_all(const char *prog, const char *host, const char *port, long nconns)
{
    int *fds = lg_alloc(prog, (size_t)nconns, sizeof *fds);
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
    return fds;
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

#define LG_BUF_COUNT 1024 /* the provided buffer ring: a power of two */
#define LG_BUF_BYTES 4096

static int lg_fixed;                    /* sockets registered: SQEs name the index */
static struct io_uring_buf_ring *lg_br; /* NULL: a plain recv each time */
static char *lg_bufs;

static void lg_setup_buffers(const char *prog, struct io_uring *ring)
{
    void *mem;
    if (posix_memalign(&mem, 4096, LG_BUF_COUNT * sizeof(struct io_uring_buf)) ||
        !(lg_bufs = malloc((size_t)LG_BUF_COUNT * LG_BUF_BYTES))) {
        fprintf(stderr, "%s: out of memory\n", prog);
        exit(1);
    }
    lg_br = mem;
    io_uring_buf_ring_init(lg_br);
    struct io_uring_buf_reg reg = {
        .ring_addr = (uint64_t)(uintptr_t)lg_br, .ring_entries = LG_BUF_COUNT, .bgid = 0};
    if (io_uring_register_buf_ring(ring, &reg, 0) < 0) {
        lg_ring_extras_free();
        return;
    }
    for (unsigned i = 0; i < LG_BUF_COUNT; i++)
        io_uring_buf_ring_add(lg_br, lg_bufs + (size_t)i * LG_BUF_BYTES, LG_BUF_BYTES,
                              (unsigned short)i, io_uring_buf_ring_mask(LG_BUF_COUNT), (int)i);
    io_uring_buf_ring_advance(lg_br, LG_BUF_COUNT);
}

void lg_ring_extras(const char *prog, struct io_uring *ring, const int *fds, long nconns,
                    int provided_buffers)
{
    lg_fixed = io_uring_register_files(ring, fds, (unsigned)nconns) == 0;
    if (provided_buffers)
        lg_setup_buffers(prog, ring);
}

static void lg_set_fd(struct io_uring_sqe *sqe, int idx)
{
    if (lg_fixed) {
        sqe->fd = idx;
        sqe->flags |= IOSQE_FIXED_FILE;
    }
}

void lg_prep_send(struct io_uring_sqe *sqe, int fd, int idx, const void *buf, size_t len)
{
    io_uring_prep_send(sqe, fd, buf, len, MSG_NOSIGNAL | MSG_WAITALL);
    lg_set_fd(sqe, idx);
    sqe->flags |= IOSQE_CQE_SKIP_SUCCESS;
}

void lg_prep_recv(struct io_uring_sqe *sqe, int fd, int idx, void *buf, size_t len)
{
    if (lg_br) {
        io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = 0;
    } else {
        io_uring_prep_recv(sqe, fd, buf, len, 0);
    }
    lg_set_fd(sqe, idx);
}

static const char *lg_recv_buf(const struct io_uring_cqe *cqe)
{
    if (!lg_br || !(cqe->flags & IORING_CQE_F_BUFFER))
        return NULL;
    return lg_bufs + (size_t)(cqe->flags >> IORING_CQE_BUFFER_SHIFT) * LG_BUF_BYTES;
}

/* After a recv completion's bytes are used: gives its buffer back and says
 * what comes next. */
enum { LG_RECV_GOES_ON, LG_RECV_AGAIN, LG_RECV_FAILED };

static int lg_recv_next(const struct io_uring_cqe *cqe, const char **why, int *err)
{
    char *buf = (char *)lg_recv_buf(cqe);
    if (buf) {
        io_uring_buf_ring_add(lg_br, buf, LG_BUF_BYTES,
                              (unsigned short)(cqe->flags >> IORING_CQE_BUFFER_SHIFT),
                              io_uring_buf_ring_mask(LG_BUF_COUNT), 0);
        io_uring_buf_ring_advance(lg_br, 1);
    }
    if (cqe->res == 0 || (cqe->res < 0 && cqe->res != -ENOBUFS)) {
        *why = cqe->res ? "recv" : "server closed the connection";
        *err = cqe->res < 0 ? -cqe->res : 0;
        return LG_RECV_FAILED;
    }
    return !lg_br || !(cqe->flags & IORING_CQE_F_MORE) ? LG_RECV_AGAIN : LG_RECV_GOES_ON;
}

/* One completion; 1 when it made its connection fail. */
static int lg_complete(const lg_handler *h, const struct io_uring_cqe *cqe)
{
    void *c = (void *)(uintptr_t)(cqe->user_data & ~(uint64_t)1);
    int was_dead = h->dead(c);
    if (cqe->user_data & 1) {
        h->fail(c, "send", cqe->res < 0 ? -cqe->res : 0);
    } else {
        if (cqe->res > 0 && !was_dead)
            h->bytes(c, lg_recv_buf(cqe), (size_t)cqe->res);
        const char *why;
        int err, next = lg_recv_next(cqe, &why, &err);
        if (next == LG_RECV_FAILED)
            h->fail(c, why, err);
        else if (next == LG_RECV_AGAIN && !h->dead(c))
            h->recv(c);
    }
    return !was_dead && h->dead(c);
}

int lg_ring_turn(const char *prog, struct io_uring *ring, const lg_handler *h, long *alive)
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
            *alive -= lg_complete(h, cqes[i]);
        io_uring_cq_advance(ring, n);
    }
    return 0;
}

void lg_ring_extras_free(void)
{
    free(lg_br);
    free(lg_bufs);
    lg_br = NULL;
    lg_bufs = NULL;
}
