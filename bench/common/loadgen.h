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

/* nconns blocking connects to host:port (5 s bound each), then TCP_NODELAY and
 * O_NONBLOCK on each; fds[] gets them. Prints why and exits 1 on failure. */
void lg_connect_all(const char *prog, const char *host, const char *port, int *fds, long nconns);

/* A ring for entries operations: SINGLE_ISSUER | DEFER_TASKRUN where the
 * kernel has them (one thread submits and reaps), plain otherwise. */
void lg_ring_init(const char *prog, struct io_uring *ring, unsigned entries);

/* The next SQE, submitting what is queued when the SQ is full. */
struct io_uring_sqe *lg_get_sqe(const char *prog, struct io_uring *ring);

/* One turn: submit what is queued and wait at most 100 ms for a completion;
 * then cqe_fn(arg, cqe) for each completion, reaped in batches. Returns 0, or
 * -1 with a message when the ring fails. */
int lg_ring_turn(const char *prog, struct io_uring *ring,
                 void (*cqe_fn)(void *arg, struct io_uring_cqe *cqe), void *arg);

#endif
