/* zg_sendv.c - send headers that live until submission (see zg_sendv.h). */
#define _GNU_SOURCE
#include "zg_sendv.h"
#include "zg_log.h"
#include "zg_worker.h"

#include <stdlib.h>
#include <string.h>

int zg_sendv_init(zg_worker *w)
{
    w->sendv.slot = NULL;
    w->sendv.used = 0;
    if (!(w->ring.features & IORING_FEAT_SUBMIT_STABLE) || (w->ring_flags & IORING_SETUP_SQPOLL))
        return 0;
    w->sendv.slot = calloc(ZG_SENDV_SLOTS, sizeof(zg_sendv));
    return w->sendv.slot ? 0 : -1;
}

void zg_sendv_destroy(zg_worker *w)
{
    free(w->sendv.slot);
    w->sendv.slot = NULL;
}

zg_sendv *zg_sendv_get(zg_worker *w, zg_conn *c)
{
    zg_sendv_slots *s = &w->sendv;
    if (s->slot && s->used == ZG_SENDV_SLOTS) {
        /* all taken this turn: hand the SQEs to the kernel now */
        int rc = io_uring_submit(&w->ring);
        if (rc < 0)
            zg_log_error("io_uring_submit: %s", strerror(-rc));
        zg_sendv_submitted(w);
    }
    if (s->slot && s->used < ZG_SENDV_SLOTS)
        return &s->slot[s->used++];
    if (!c->sendv)
        c->sendv = malloc(sizeof(zg_sendv));
    return c->sendv;
}

void zg_sendv_done(zg_conn *c)
{
    free(c->sendv);
    c->sendv = NULL;
}

void zg_sendv_submitted(zg_worker *w)
{
    if (io_uring_sq_ready(&w->ring) == 0)
        w->sendv.used = 0;
}
