/* zg_event.h - the worker's ring and loop: what a completion is for (the
 * user_data encoding), the batching policy of the loop's waits and the busy
 * window it is sized by, and the prototypes of zg_event.c. */
#ifndef ZG_EVENT_H
#define ZG_EVENT_H

#include <liburing.h>
#include <stdint.h>
#include <zerg/module.h>

#include "zg_conf.h"

typedef struct zerg_worker zg_worker;
typedef struct zerg_conn zg_conn;

/* What a completion is for: the low byte of user_data. */
enum zg_op {
    ZG_OP_IGNORE = 0, /* cancel and close results */
    ZG_OP_ACCEPT,
    ZG_OP_ACCEPT_SWEEP, /* a draining worker takes what its accept left queued */
    ZG_OP_RECV,
    ZG_OP_SEND,
    ZG_OP_CONNECT,
    ZG_OP_LINK_TIMEOUT,
    ZG_OP_SHUTDOWN,
    ZG_OP_FILE,
    ZG_OP_SIGNAL,
    ZG_OP_ABORT_FD, /* a fixed file installed as an fd to reset it */
    ZG_OP_INSTALL,  /* an outbound socket put into the fixed-file table */
    /* a file segment's splices (zg_splice.c): file -> pipe, pipe -> socket,
     * and a wait for the socket to take more */
    ZG_OP_SPLICE_IN,
    ZG_OP_SPLICE_OUT,
    ZG_OP_SPLICE_POLL,
};

/* user_data: index (32 bits) | generation (24 bits) | op (8 bits). A
 * completion whose generation no longer matches its object is dropped. */
#define ZG_UD(op, idx, gen) (((uint64_t)(idx) << 32) | (((uint64_t)(gen)&0xffffff) << 8) | (op))
#define ZG_UD_OP(ud)        ((unsigned)((ud)&0xff))
#define ZG_UD_GEN(ud)       ((uint32_t)(((ud) >> 8) & 0xffffff))
#define ZG_UD_IDX(ud)       ((uint32_t)((ud) >> 32))

/* A module's file operation (api->file_io, api->file_open) in flight. */
typedef struct zg_file_op {
    uint32_t idx, gen;
    zerg_io_fn cb;
    void *arg;
    zg_conn *owner;
} zg_file_op;

int zg_event_init(zg_worker *w);
void zg_event_destroy(zg_worker *w);
void zg_event_loop(zg_worker *w);
/* Close every connection and run the ring until their last completions
 * and those of file operations came (or within_ms passed), so each module
 * sees its on_close and log file writes are done. */
void zg_event_close_all(zg_worker *w, uint64_t within_ms);
/* An SQE, submitting the full SQ first when it has none left. */
struct io_uring_sqe *zg_sqe(zg_worker *w);

/* ---- the batching policy ---- */

/* How many connections received in the current and in the last window of
 * ZG_BUSY_WINDOW_MS: the busy ones, by which a turn's batched wait is sized,
 * and how many completions came in each, by which it is decided. A
 * connection counts once per window. */
#define ZG_BUSY_WINDOW_MS 10
typedef struct zg_busy {
    uint32_t epoch;       /* the current window's number */
    uint32_t now;         /* connections that received in it so far */
    uint32_t last;        /* in the window before it (0 when that was idle) */
    uint32_t events_now;  /* completions handled in it so far */
    uint32_t events_last; /* in the window before it (0 when that was idle) */
    uint64_t since_ms;
} zg_busy;

/* The completions a loop turn waits for with uring.batch_wait_usec, or 0 for
 * a plain wait for one: half of the busy connections, at most batch_size;
 * none below ZG_BATCH_MIN_CONNS busy connections, nor where the completions
 * of a busy window (window_events in ZG_BUSY_WINDOW_MS) come slower than
 * ZG_BATCH_MIN_EVENTS per batch_wait_usec (light load). */
#define ZG_BATCH_MIN_CONNS  64
#define ZG_BATCH_MIN_EVENTS 8
unsigned zg_batch_target(const zg_uring_conf *u, uint64_t busy_conns, uint64_t window_events);

/* A connection received (*seen: the window it last received in): count it
 * busy in this window. */
static inline void zg_busy_note(zg_busy *b, uint32_t *seen)
{
    if (*seen != b->epoch) {
        *seen = b->epoch;
        b->now++;
    }
}
/* Start a new window once the current one is over; one that ended long ago
 * says nothing of now. */
static inline void zg_busy_roll(zg_busy *b, uint64_t now_ms)
{
    uint64_t age = now_ms - b->since_ms;
    if (age < ZG_BUSY_WINDOW_MS)
        return;
    int recent = age < 2 * ZG_BUSY_WINDOW_MS; /* else the window before was idle */
    b->last = recent ? b->now : 0;
    b->events_last = recent ? b->events_now : 0;
    b->now = 0;
    b->events_now = 0;
    b->epoch++;
    b->since_ms = now_ms;
}
/* A count by the current and the last window: the larger, as the current
 * one has not run its course yet. */
static inline uint32_t zg_busy_max(uint32_t now, uint32_t last)
{
    return now > last ? now : last;
}
/* Busy connections, and completions per window. */
static inline uint32_t zg_busy_conns(const zg_busy *b)
{
    return zg_busy_max(b->now, b->last);
}
static inline uint32_t zg_busy_events(const zg_busy *b)
{
    return zg_busy_max(b->events_now, b->events_last);
}

#endif
