/* zg_uring_compat.h - what zerg needs of io_uring beyond the oldest liburing
 * it builds with (2.2, configure.ac): constants of newer kernels, and the
 * few calls that must reach into struct io_uring. Each names the liburing
 * release that makes it unnecessary; drop it once configure requires that. */
#ifndef ZG_URING_COMPAT_H
#define ZG_URING_COMPAT_H

#include <errno.h>
#include <liburing.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>

/* ---- constants ---- */

#ifndef IORING_SETUP_COOP_TASKRUN /* liburing 2.2 (kernel 5.19) */
#define IORING_SETUP_COOP_TASKRUN (1U << 8)
#endif
#ifndef IORING_SETUP_SINGLE_ISSUER /* liburing 2.3 (kernel 6.0) */
#define IORING_SETUP_SINGLE_ISSUER (1U << 12)
#endif
#ifndef IORING_SETUP_DEFER_TASKRUN /* liburing 2.3 (kernel 6.1) */
#define IORING_SETUP_DEFER_TASKRUN (1U << 13)
#endif
#ifndef IORING_ASYNC_CANCEL_FD_FIXED /* liburing 2.3 (kernel 6.0) */
#define IORING_ASYNC_CANCEL_FD_FIXED (1U << 3)
#endif
#ifndef IORING_ACCEPT_DONTWAIT /* liburing 2.7 (kernel 6.10) */
#define IORING_ACCEPT_DONTWAIT (1U << 1)
#endif
#ifndef IOU_PBUF_RING_INC /* liburing 2.8 (kernel 6.12) */
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE /* liburing 2.8 (kernel 6.12) */
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif
/* IORING_OP_FIXED_FD_INSTALL, liburing 2.6 (kernel 6.8): an enum value, so
 * no #ifndef can tell whether the header has it. */
#define ZG_OP_FIXED_FD_INSTALL 54

/* ---- calls ---- */

/* An accept into a fixed-file slot the kernel picks. liburing 2.4:
 * io_uring_prep_accept_direct(sqe, fd, NULL, NULL, flags,
 * IORING_FILE_INDEX_ALLOC); 2.3's adds one to any index, ALLOC included. */
static inline void zg_prep_accept_alloc(struct io_uring_sqe *sqe, int fd, int flags)
{
    io_uring_prep_accept(sqe, fd, NULL, NULL, flags);
    sqe->file_index = IORING_FILE_INDEX_ALLOC;
}

/* The flags of a provided buffer ring's registration. liburing 2.4 names
 * the field flags (2.3: pad) and has io_uring_setup_buf_ring. */
static inline void zg_buf_reg_set_flags(struct io_uring_buf_reg *reg, uint16_t flags)
{
    memcpy(&reg->pad, &flags, sizeof(flags));
}

/* How many completions the kernel dropped or held back for a full CQ. No
 * liburing release reads the count (io_uring_cq_has_overflow, 2.3, says
 * only whether some wait), so this is the one read of its private word. */
static inline unsigned zg_uring_cq_overflows(const struct io_uring *ring)
{
    return IO_URING_READ_ONCE(*ring->cq.koverflow);
}

/* Submit and wait for up to wait_nr completions, returning once
 * min_wait_us has passed with at least one (kernel 6.12's min_wait_usec,
 * which liburing 2.3 calls pad). liburing 2.8:
 * io_uring_submit_and_wait_min_timeout. 2.3 has no call for it, so this
 * publishes the SQ tail and picks the registered ring fd itself, as
 * liburing does inside. Returns completions or -errno; -EINVAL: the kernel
 * lacks it. */
static inline int zg_uring_submit_and_wait_min(struct io_uring *ring, unsigned wait_nr,
                                               struct __kernel_timespec *ts, unsigned min_wait_us)
{
    struct io_uring_sq *sq = &ring->sq;
    if (sq->sqe_head != sq->sqe_tail) {
        sq->sqe_head = sq->sqe_tail;
        io_uring_smp_store_release(sq->ktail, sq->sqe_tail);
    }
    struct io_uring_getevents_arg arg = {
        .sigmask_sz = _NSIG / 8,
        .pad = min_wait_us,
        .ts = (uint64_t)(uintptr_t)ts,
    };
    unsigned flags = IORING_ENTER_GETEVENTS | IORING_ENTER_EXT_ARG;
    int fd = ring->ring_fd;
    if (ring->int_flags & 1 /* liburing's INT_FLAG_REG_RING */) {
        flags |= IORING_ENTER_REGISTERED_RING;
        fd = ring->enter_ring_fd;
    }
    int rc = io_uring_enter2((unsigned)fd, io_uring_sq_ready(ring), wait_nr, flags,
                             (sigset_t *)&arg, sizeof(arg));
    return rc == -1 ? -errno : rc;
}

#endif
