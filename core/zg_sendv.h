/* zg_sendv.h - the msghdr and iovec of a vectored send: the kernel copies
 * them when it takes the SQE (IORING_FEAT_SUBMIT_STABLE), so they live in a
 * few per-worker slots reused once the ring has taken what used them, not
 * in every connection; without that promise (or under SQPOLL, where the
 * kernel takes SQEs on its own time) a send carries its own until it ends. */
#ifndef ZG_SENDV_H
#define ZG_SENDV_H

#include <stdint.h>
#include <sys/socket.h>
#include <sys/uio.h>

typedef struct zerg_worker zg_worker;
typedef struct zerg_conn zg_conn;

#define ZG_IOV_MAX     64
#define ZG_SENDV_SLOTS 32

typedef struct zg_sendv {
    struct msghdr msg;
    struct iovec iov[ZG_IOV_MAX];
} zg_sendv;

typedef struct zg_sendv_slots {
    zg_sendv *slot; /* ZG_SENDV_SLOTS of them, or NULL: each send has its own */
    uint32_t used;  /* taken since the ring last took every SQE */
} zg_sendv_slots;

/* Slots when the ring promises stable submissions; 0 or -1 (no memory). */
int zg_sendv_init(zg_worker *w);
void zg_sendv_destroy(zg_worker *w);
/* Headers for c's next send: a slot, or c->sendv (freed by zg_sendv_done);
 * NULL when memory ran out. Call it before taking the send's SQE: when the
 * slots are all taken it submits what the ring holds to free them. */
zg_sendv *zg_sendv_get(zg_worker *w, zg_conn *c);
/* c's send completed: its own headers, if any, go. */
void zg_sendv_done(zg_conn *c);
/* The ring was entered with no send between its slot and its SQE: every
 * slot is free again if the kernel took every SQE. */
void zg_sendv_submitted(zg_worker *w);

#endif
