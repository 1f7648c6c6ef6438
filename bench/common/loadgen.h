/* loadgen.h - what zerg's load generators (bench/echo/echo_load,
 * bench/http/http_load) share: clocks, argument parsing, connecting, and the
 * io_uring they drive their sockets with. */
#ifndef ZG_BENCH_LOADGEN_H
#define ZG_BENCH_LOADGEN_H

#include <liburing.h>

/* Monotonic wall time and this process's CPU time (user + system), seconds. */
double lg_now_s(void);
double lg_cpu_s(void);

/* argv[] as a number in [min, max], or a message naming PROG and WHAT, exit 2. */
long lg_parse_num(const char *prog, const char *s, const char *what, long min, long max);
double lg_parse_seconds(const char *prog, const char *s);

/* Raise RLIMIT_NOFILE to hold nconns sockets (as far as the hard limit goes). */
void lg_raise_nofile(long nconns);

/* n zeroed objects of size bytes, or a message naming PROG and exit 1. */
void *lg_alloc(const char *prog, size_t n, size_t size);

/* nconns blocking connects to host:port (5 s bound each), then TCP_NODELAY and
 * O_NONBLOCK on each: an array of the sockets, the caller frees it. Prints why
 * and exits 1 on failure. */
int *lg_connect_all(const char *prog, const char *host, const char *port, long nconns);

/* A ring for entries operations: SINGLE_ISSUER | DEFER_TASKRUN where the
 * kernel has them (one thread submits and reaps), plain otherwise. */
void lg_ring_init(const char *prog, struct io_uring *ring, unsigned entries);

/* The next SQE, submitting what is queued when the SQ is full. */
struct io_uring_sqe *lg_get_sqe(const char *prog, struct io_uring *ring);

/* Registers fds[0..nconns) as the ring's file table and, with
 * provided_buffers, sets up a provided buffer ring of 4 KiB buffers, each
 * where the kernel has it; the lg_prep_* calls below then use them. Call
 * once, after lg_ring_init. Provided buffers suit small answers (one
 * multishot recv per socket); big ones are cheaper read straight into place. */
void lg_ring_extras(const char *prog, struct io_uring *ring, const int *fds, long nconns,
                    int provided_buffers);

/* A send of all len bytes of buf on socket fd (table index idx): MSG_WAITALL
 * makes the kernel finish a short send itself, and only a failed send posts
 * a completion (IOSQE_CQE_SKIP_SUCCESS). */
void lg_prep_send(struct io_uring_sqe *sqe, int fd, int idx, const void *buf, size_t len);

/* A recv on fd (idx): multishot from the buffer ring when there is one (buf
 * and len unused), else one plain recv into buf. */
void lg_prep_recv(struct io_uring_sqe *sqe, int fd, int idx, void *buf, size_t len);

/* What a load generator does with its connections' completions. Each
 * completion's user data is its connection, bit 0 set for the connection's
 * send (lg_prep_send: only a failed one posts). fail must do nothing for a
 * connection that failed already. */
typedef struct lg_handler {
    int (*dead)(void *conn); /* failed already */
    /* n bytes arrived: in buf, or with buf NULL where lg_prep_recv put them */
    void (*bytes)(void *conn, const char *buf, size_t n);
    void (*fail)(void *conn, const char *why, int err);
    void (*recv)(void *conn); /* submit the next lg_prep_recv */
} lg_handler;

/* One turn: submit what is queued, wait at most 100 ms for a completion,
 * then hand each completion to h (reaped in batches): received bytes, a
 * failed send or recv, a peer that closed, a recv to submit again; provided
 * buffers go back to the ring. *alive drops by one for each connection that
 * fails. Returns 0, or -1 with a message when the ring fails. */
int lg_ring_turn(const char *prog, struct io_uring *ring, const lg_handler *h, long *alive);

void lg_ring_extras_free(void);

#endif
