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

/* For a recv completion: the provided buffer holding its bytes (NULL: the
 * bytes went to the buf given to lg_prep_recv). */
const char *lg_recv_buf(const struct io_uring_cqe *cqe);

/* After a recv completion's bytes are used: gives its buffer back and says
 * what comes next: LG_RECV_GOES_ON (the multishot recv goes on), LG_RECV_AGAIN
 * (submit a new lg_prep_recv) or LG_RECV_FAILED (*why and *err say why: the
 * peer closed, or the recv failed). */
enum { LG_RECV_GOES_ON, LG_RECV_AGAIN, LG_RECV_FAILED };
int lg_recv_next(const struct io_uring_cqe *cqe, const char **why, int *err);

void lg_ring_extras_free(void);

#endif
