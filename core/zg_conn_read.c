/* zg_conn_read.c - a connection's input: multishot recv into provided
 * buffers, the PROXY protocol header, and delivery to its module with the
 * input the module left (the carry) and what came while it paused (held),
 * so that a module keeps no input of its own. */
#define _GNU_SOURCE
#include "zg_conn.h"
#include "zg_event.h"
#include "zg_log.h"
#include "zg_proxyproto.h"
#include "zg_uring_compat.h"
#include "zg_worker.h"

#include <errno.h>
#include <string.h>

/* ---- the PROXY protocol header (server blocks with proxy_protocol) ---- */

static int keep_rest(zg_conn *c, zg_chunk *k, const uint8_t *rest, size_t n);

static void pp_refuse(zg_conn *c, int level, const char *why, int err)
{
    char peer[64] = "a client";
    if (c->peer_len)
        zg_addr_str(zg_conn_peer(c), peer, sizeof(peer));
    zg_log(level, "%s: PROXY protocol: %s from %s: closing",
           c->listener->srv->addrs[c->listener->addr_index].text, why, peer);
    zg_conn_teardown(c, err);
}

void zg_conn_proxy_header_timeout(zg_conn *c)
{
    pp_refuse(c, ZERG_LOG_INFO, "no complete header within proxy_protocol_timeout", -ETIMEDOUT);
}

/* Input that waits for resume_read; -1 when memory ran out (c closes). */
static int hold_input(zg_conn *c, zg_chunk *k, const uint8_t *data, size_t len)
{
    zg_chunk_get(k);
    if (zg_outq_keep(&c->w->bufs, &c->in_held, data, len, k, &c->w->stats.bytes_copied) < 0) {
        zg_conn_teardown(c, -ENOMEM);
        return -1;
    }
    return 0;
}

/* Bytes that came with the header when on_open paused reading: held for
 * resume_read as if they had come while paused (dropped after a close). */
static void pp_hold_rest(zg_conn *c, zg_chunk *k, const uint8_t *data, size_t len)
{
    if (len && !(c->flags & ZG_C_CLOSE_WANT) && hold_input(c, k, data, len) < 0)
        return;
    keep_rest(c, k, data + len, 0); /* the carry, if k is it, lives on in in_held */
}

/* Input while waiting for the header (data: the carry joined with the new
 * bytes). Returns how many bytes the header took, 0 when it is not complete
 * yet (all is kept), or -1 when the connection was closed. */
static ssize_t pp_input(zg_conn *c, zg_chunk *k, const uint8_t *data, size_t len)
{
    zg_pp_addrs a;
    int n = zg_pp_parse(data, len, &a);
    if (n < 0) {
        pp_refuse(c, ZERG_LOG_INFO, "no valid header", -EPROTO);
        return -1;
    }
    if (n == 0) {
        if (keep_rest(c, k, data, len) < 0) {
            zg_conn_teardown(c, -ENOMEM);
            return -1;
        }
        return 0;
    }
    if (a.src.ss_family != AF_UNSPEC) {
        if (zg_conn_set_peer(c, (const struct sockaddr *)&a.src, a.src_len) < 0) {
            zg_conn_teardown(c, -ENOMEM);
            return -1;
        }
        zg_conn_set_local(c, (const struct sockaddr *)&a.dst, a.dst_len);
    }
    c->flags &= ~ZG_C_PP_WAIT;
    zg_timer_cancel(&c->w->timers, &c->timer);
    if (!c->srv->tls)
        zg_conn_open(c);
    else if (zg_tls_start(c) < 0) /* the TLS handshake follows the header */
        zg_conn_teardown(c, -ENOMEM);
    return n;
}

/* ---- reading ---- */

static void starve(zg_conn *c)
{
    if (!(c->flags & ZG_C_STARVED)) {
        c->flags |= ZG_C_STARVED;
        zg_list_add_tail(&c->w->starved_list, &c->wait_link);
    }
}

void zg_conn_feed_starved(zg_worker *w)
{
    while (!zg_list_empty(&w->starved_list) && zg_bufs_available(&w->bufs) > 0) {
        zg_conn *c = ZG_CONTAINER_OF(w->starved_list.next, zg_conn, wait_link);
        zg_list_del(&c->wait_link);
        c->flags &= ~ZG_C_STARVED;
        zg_conn_update_read(c);
    }
}

void zg_conn_update_read(zg_conn *c)
{
    const uint32_t stop = ZG_C_PAUSE_MOD | ZG_C_PAUSE_OUT | ZG_C_EOF | ZG_C_CLOSING |
                          ZG_C_CLOSE_WANT | ZG_C_CONNECTING | ZG_C_STARVED;
    /* an outbound TLS handshake reads on: its module paused plaintext only */
    uint32_t go_on = (c->flags & ZG_C_HANDSHAKE) ? ZG_C_PAUSE_MOD | ZG_C_PAUSE_OUT : 0;
    zg_worker *w = c->w;
    int want = !(c->flags & stop & ~go_on) && !c->in_held.head;
    if (c->flags & ZG_C_LINGER) /* reads to drop until the FIN */
        want = !(c->flags & (ZG_C_EOF | ZG_C_CLOSING | ZG_C_STARVED));
    if (want && !(c->flags & ZG_C_RECV_ARMED)) {
        if (zg_bufs_available(&w->bufs) == 0) { /* spares reach the ring before the submit */
            starve(c);
            return;
        }
        struct io_uring_sqe *sqe = zg_sqe(w);
        io_uring_prep_recv_multishot(sqe, c->fd, NULL, 0, 0);
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = w->bufs.bgid;
        zg_conn_sqe_file(sqe, c);
        io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_RECV, c->idx, c->gen));
        c->flags |= ZG_C_RECV_ARMED;
        c->inflight++;
    } else if (!want && (c->flags & ZG_C_RECV_ARMED) &&
               !(c->flags & (ZG_C_RECV_CANCEL | ZG_C_CLOSING))) {
        struct io_uring_sqe *sqe = zg_sqe(w);
        io_uring_prep_cancel64(sqe, ZG_UD(ZG_OP_RECV, c->idx, c->gen), 0);
        io_uring_sqe_set_data64(sqe, ZG_UD(ZG_OP_IGNORE, 0, 0));
        c->flags |= ZG_C_RECV_CANCEL;
    }
}

/* Make the carry chunk private to us and able to hold need bytes. */
static int carry_room(zg_conn *c, size_t need)
{
    zg_chunk *old = c->carry;
    if (old && old->refs == 1 && old->size >= need)
        return 0;
    if (need > c->in_limit)
        return -1;
    size_t cap = 4096;
    while (cap < need)
        cap *= 2;
    zg_chunk *k = zg_chunk_heap(cap);
    if (!k)
        return -1;
    if (old) {
        memcpy(k->base, old->base, old->used);
        k->used = old->used;
        zg_chunk_put(&c->w->bufs, old);
    }
    c->carry = k;
    return 0;
}

/* Keep the n unconsumed bytes at rest (inside chunk k) for the next call. */
static int keep_rest(zg_conn *c, zg_chunk *k, const uint8_t *rest, size_t n)
{
    zg_bufs *b = &c->w->bufs;
    if (n == 0) {
        if (c->carry) {
            zg_chunk_put(b, c->carry);
            c->carry = NULL;
        }
        return 0;
    }
    if (k == c->carry && k->refs == 1) {
        memmove(k->base, rest, n);
        k->used = (uint32_t)n;
        return 0;
    }
    zg_chunk *old = c->carry; /* rest may point into it: release after the copy */
    c->carry = NULL;
    int rc = carry_room(c, n);
    if (rc == 0) {
        memcpy(c->carry->base, rest, n);
        c->carry->used = (uint32_t)n;
    }
    if (old)
        zg_chunk_put(b, old);
    return rc;
}

/* The PROXY protocol header ahead of the module's input: 1 when *data
 * (moved past the header) goes on to on_data, 0 when nothing more is to do. */
static int pp_stage(zg_conn *c, zg_chunk *k, const uint8_t **data, size_t *len)
{
    ssize_t hdr = pp_input(c, k, *data, *len);
    if (hdr <= 0 || (c->flags & ZG_C_CLOSING))
        return 0;
    *data += hdr;
    *len -= (size_t)hdr;
    if (*len && c->tls) { /* the start of the handshake: ciphertext, consumed at once */
        zg_tls_input(c, *data, *len);
        keep_rest(c, k, *data, 0);
        return 0;
    }
    if (*len == 0 || (c->flags & (ZG_C_PAUSE_MOD | ZG_C_PAUSE_OUT | ZG_C_CLOSE_WANT))) {
        pp_hold_rest(c, k, *data, *len); /* nothing more, or on_open paused or closed */
        return 0;
    }
    return 1;
}

/* Presents data (inside chunk k) to the module and keeps what it left as the
 * carry. c->cur also marks the delivery under way: a resume_read made inside
 * it does not deliver again (zg_conn_deliver_held). */
static void present(zg_conn *c, zg_chunk *k, const uint8_t *data, size_t len)
{
    c->cur = k;
    int go = !ZG_UNLIKELY(c->flags & ZG_C_PP_WAIT) || pp_stage(c, k, &data, &len);
    size_t used = go && c->mod->on_data ? c->mod->on_data(c, data, len) : len;
    c->cur = NULL;
    if (!go || (c->flags & ZG_C_CLOSING))
        return;
    if (used > len)
        used = len;
    if (keep_rest(c, k, data + used, len - used) < 0) {
        zg_log_info("connection input above %zu bytes unconsumed: closing", c->in_limit);
        zg_conn_teardown(c, -EMSGSIZE);
    }
}

/* New bytes: joined to the carry, if there is one, then presented. */
static void deliver(zg_conn *c, zg_chunk *k, const uint8_t *data, size_t len)
{
    if (c->carry) {
        if (carry_room(c, c->carry->used + len) < 0) {
            zg_log_info("connection input above %zu bytes unconsumed: closing", c->in_limit);
            zg_conn_teardown(c, -EMSGSIZE);
            return;
        }
        memcpy(c->carry->base + c->carry->used, data, len);
        c->carry->used += (uint32_t)len;
        k = c->carry;
        data = k->base;
        len = k->used;
    }
    present(c, k, data, len);
}

static void deliver_eof(zg_conn *c)
{
    c->flags &= ~ZG_C_EOF_PENDING;
    if (c->mod->on_eof)
        c->mod->on_eof(c);
    else
        zg_conn_close(c);
}

void zg_conn_input(zg_conn *c, zg_chunk *k, const uint8_t *data, size_t len)
{
    if (!(c->flags & (ZG_C_PAUSE_MOD | ZG_C_PAUSE_OUT)) && !c->in_held.head) {
        deliver(c, k, data, len);
    } else if (k->kind == ZG_CHUNK_RING) {
        hold_input(c, k, data, len);
    } else if (zg_outq_copy(&c->w->bufs, &c->in_held, data, len) < 0) {
        zg_conn_teardown(c, -ENOMEM); /* decrypted bytes: held packed, not a chunk each */
    }
}

void zg_conn_eof(zg_conn *c)
{
    c->flags |= ZG_C_EOF;
    if ((c->flags & (ZG_C_PAUSE_MOD | ZG_C_PAUSE_OUT)) || c->in_held.head)
        c->flags |= ZG_C_EOF_PENDING;
    else if (!(c->flags & (ZG_C_CLOSING | ZG_C_CLOSE_WANT)))
        deliver_eof(c);
    zg_conn_update_read(c); /* a receive still armed (TLS close_notify) ends */
}

/* Reading resumed: what was held is presented again, first what on_data
 * left (the carry) alone, once per resume, so that bytes held meanwhile join
 * it only where the module needs more to go on (the carry stays within the
 * input limit); then the held segments, then a held FIN. */
void zg_conn_deliver_held(zg_conn *c)
{
    const uint32_t stop = ZG_C_PAUSE_MOD | ZG_C_PAUSE_OUT | ZG_C_CLOSING;
    if (c->cur) { /* resumed inside on_data: the delivery under way goes on */
        zg_conn_update_read(c);
        return;
    }
    zg_bufs *b = &c->w->bufs;
    if (c->carry && !(c->flags & stop))
        present(c, c->carry, c->carry->base, c->carry->used);
    while (c->in_held.head && !(c->flags & stop)) {
        zg_seg *s = c->in_held.head;
        const uint8_t *p = s->ptr;
        size_t n = s->len;
        zg_chunk *k = s->chunk;
        zg_chunk_get(k);
        zg_outq_consume(b, &c->in_held, n, NULL);
        deliver(c, k, p, n);
        zg_chunk_put(b, k);
    }
    if (!c->in_held.head && (c->flags & ZG_C_EOF_PENDING) && !(c->flags & stop))
        deliver_eof(c);
    zg_conn_account(c);
    zg_conn_update_read(c);
}

void zg_conn_recv_complete(zg_conn *c, struct io_uring_cqe *cqe)
{
    zg_worker *w = c->w;
    int res = cqe->res;
    if (!(cqe->flags & IORING_CQE_F_MORE)) {
        c->flags &= ~(ZG_C_RECV_ARMED | ZG_C_RECV_CANCEL);
        c->inflight--;
    }
    if (res > 0) {
        uint8_t *data;
        zg_chunk *k = zg_bufs_recv(&w->bufs, cqe->flags, (uint32_t)res, &data);
        if (!k) {
            zg_log_error("recv completion with a bad buffer id");
            zg_conn_teardown(c, -EIO);
            return;
        }
        w->stats.bytes_in += (uint64_t)res;
        zg_busy_note(&w->busy, &c->busy_epoch);
        if (c->flags & ZG_C_LINGER) {
            zg_conn_linger_input(c); /* dropped */
        } else if (c->flags & (ZG_C_CLOSING | ZG_C_CLOSE_WANT)) {
            c->flags |= ZG_C_IN_DROPPED; /* input after close: dropped */
        } else if (c->tls) {
            zg_tls_input(c, data, (size_t)res); /* ciphertext, consumed at once */
        } else {
            zg_conn_input(c, k, data, (size_t)res);
        }
        zg_chunk_put(&w->bufs, k);
    } else if (res == 0 && (c->flags & ZG_C_LINGER)) {
        zg_conn_teardown(c, 0); /* the client is done too */
        return;
    } else if (res == 0 && (c->flags & ZG_C_PP_WAIT)) {
        if (c->carry)
            pp_refuse(c, ZERG_LOG_INFO, "end of stream before a complete header", 0);
        else /* connected and closed: a balancer's plain TCP health check */
            pp_refuse(c, ZERG_LOG_DEBUG, "end of stream before any byte", 0);
        return;
    } else if (res == 0) {
        if (!c->tls || !zg_tls_eof(c))
            zg_conn_eof(c);
    } else if (res == -ENOBUFS) {
        w->stats.enobufs++;
        zg_bufs_starved(&w->bufs);
        starve(c);
    } else if (res != -ECANCELED) {
        zg_conn_teardown(c, res);
        return;
    }
    if (!(c->flags & ZG_C_RECV_ARMED))
        zg_conn_update_read(c);
}
