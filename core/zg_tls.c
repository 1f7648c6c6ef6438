/* zg_tls.c - the TLS record layer of a connection (see zg_tls.h): OpenSSL
 * driven through a BIO of ours that reads the ciphertext of the current
 * receive buffer and appends what OpenSSL writes to the connection's wire
 * queue, so OpenSSL never touches the socket and nothing blocks. */
#define _GNU_SOURCE
#include "zg_tls.h"
#include "zg_conn.h"
#include "zg_log.h"
#include "zg_tls_client.h"
#include "zg_tls_conf.h"
#include "zg_tls_sni.h"
#include "zg_tls_metrics.h"
#include "zg_worker.h"

#include <errno.h>
#include <malloc.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZG_TLS_WIRE_MAX     (128 * 1024) /* ciphertext queued ahead of the sends */
#define ZG_TLS_RECORD_MAX   16384        /* plaintext of a full record */
#define ZG_TLS_RECORD_SMALL 1360         /* ...of one that fits a TCP segment */
#define ZG_TLS_WARMUP       (64 * 1024)  /* plaintext sent in small records first */
#define ZG_TLS_TRIM_AFTER   64           /* freed record buffers (about 2 MB) worth a trim */
#define ZG_TLS_GATHER       16           /* queued pieces joined into one record */
#define ZG_TLS_IDLE_MS      1000         /* quiet this long: record buffers freed */

/* ---- the BIO between OpenSSL and the connection's queues ---- */

static BIO_METHOD *bio_method; /* made at the first TLS connection of the worker */

/* A record OpenSSL encrypted into its write buffer: copied to the wire
 * queue. OpenSSL 3.0 has no call that lets it encrypt into memory of ours,
 * so this one copy of the ciphertext stays (a memcpy, a fraction of what
 * AES-GCM costs per byte); whole records come here, appended to the tail
 * chunk of the queue. */
static int bio_write(BIO *b, const char *data, int len)
{
    zg_conn *c = BIO_get_data(b);
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (zg_outq_copy(&c->w->bufs, &c->tls->wire, data, (size_t)len) < 0)
        return -1; /* out of memory: the SSL call fails, and c with it */
    return len;
}

static int bio_read(BIO *b, char *out, int len)
{
    zg_tls *t = ((zg_conn *)BIO_get_data(b))->tls;
    BIO_clear_retry_flags(b);
    if (len <= 0)
        return 0;
    if (!t->in_len) {
        BIO_set_retry_read(b); /* SSL_ERROR_WANT_READ: the next receive goes on */
        return -1;
    }
    size_t n = (size_t)len < t->in_len ? (size_t)len : t->in_len;
    memcpy(out, t->in, n);
    t->in += n;
    t->in_len -= n;
    return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
    (void)b, (void)num, (void)ptr;
    return cmd == BIO_CTRL_FLUSH; /* written bytes are queued already */
}

static int bio_create(BIO *b)
{
    BIO_set_init(b, 1);
    return 1;
}

static BIO_METHOD *method(void)
{
    if (bio_method)
        return bio_method;
    int type = BIO_get_new_index();
    BIO_METHOD *m = type > 0 ? BIO_meth_new(type | BIO_TYPE_SOURCE_SINK, "zerg ring") : NULL;
    if (!m)
        return NULL;
    if (!BIO_meth_set_write(m, bio_write) || !BIO_meth_set_read(m, bio_read) ||
        !BIO_meth_set_ctrl(m, bio_ctrl) || !BIO_meth_set_create(m, bio_create)) {
        BIO_meth_free(m);
        return NULL;
    }
    return bio_method = m;
}

/* ---- OpenSSL's error queue ---- */

/* SSL_get_error needs an empty queue before the call it explains. Failures
 * here clear it, so only code outside (a module's) may have left errors:
 * a peek is far cheaper than ERR_clear_error, which wipes every slot and
 * showed in keep-alive profiles. */
static inline void errors_reset(void)
{
    if (ZG_UNLIKELY(ERR_peek_error()))
        ERR_clear_error();
}

/* ---- record buffers: kept while busy, freed once idle ---- */

/* OpenSSL's SSL_MODE_RELEASE_BUFFERS frees and allocates a connection's
 * read and write buffers at every record, a malloc and free each way per
 * request. Instead a connection keeps them while it is busy; a sweep every
 * ZG_TLS_IDLE_MS frees those of connections quiet since, so an idle
 * keep-alive connection still holds none. The worker's list (one thread). */
static zg_list busy_list = {&busy_list, &busy_list};
static zerg_timer sweep_timer;

static void buffers_sweep(zerg_timer *tm)
{
    zg_worker *w = tm->data;
    unsigned freed = 0;
    for (zg_list *l = busy_list.next, *next; l != &busy_list; l = next) {
        next = l->next;
        zg_tls *t = ZG_CONTAINER_OF(l, zg_tls, busy_link);
        if (w->now_ms - t->busy_ms < ZG_TLS_IDLE_MS)
            continue;
        t->plain_out = 0;               /* after a pause, small records first again (as h2o) */
        if (SSL_free_buffers(t->ssl)) { /* 0 while they hold unprocessed bytes */
            zg_list_del(l);
            freed++;
        }
    }
    /* The buffers sit between others in the heap, so free() keeps their
     * pages: after a burst went quiet, give them back now rather than at
     * the next worker_memory_release. */
    if (freed >= ZG_TLS_TRIM_AFTER)
        malloc_trim(0);
    if (!zg_list_empty(&busy_list))
        zg_timer_set(&w->timers, tm, w->now_ms, ZG_TLS_IDLE_MS);
}

/* c's TLS layer worked now: it keeps its buffers for a while. */
static void note_busy(zg_conn *c)
{
    zg_tls *t = c->tls;
    t->busy_ms = c->w->now_ms;
    if (!zg_list_empty(&t->busy_link))
        return;
    zg_list_add_tail(&busy_list, &t->busy_link);
    if (!zg_timer_armed(&sweep_timer)) {
        sweep_timer.fn = buffers_sweep;
        sweep_timer.data = c->w;
        zg_timer_set(&c->w->timers, &sweep_timer, c->w->now_ms, ZG_TLS_IDLE_MS);
    }
}

static void unlist(zg_conn *c)
{
    if (zg_list_empty(&c->tls->busy_link))
        return;
    zg_list_del(&c->tls->busy_link);
    if (zg_list_empty(&busy_list))
        zg_timer_cancel(&c->w->timers, &sweep_timer);
}

/* ---- failures ---- */

/* One info line naming the listener and the client, then the close:
 * graceful when OpenSSL queued an alert for the client, else at once. */
static void tls_refuse(zg_conn *c, int err, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void tls_refuse(zg_conn *c, int err, const char *fmt, ...)
{
    char why[256], peer[64] = "a client";
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof(why), fmt, ap);
    va_end(ap);
    if (c->tls->client) {
        zg_tls_client_refuse(c, err, why);
        return;
    }
    if (c->peer_len)
        zg_addr_str(zg_conn_peer(c), peer, sizeof(peer));
    zg_log_info("%s: TLS: %s, from %s: closing",
                c->listener->srv->addrs[c->listener->addr_index].text, why, peer);
    c->tls->failed = 1;
    if (c->tls->wire.bytes && err != -ETIMEDOUT)
        zg_conn_close(c);
    else
        zg_conn_teardown(c, err);
}

/* An SSL call failed with SSL_get_error's e: why, for the log line. */
static void tls_fail(zg_conn *c, const char *stage, int e)
{
    unsigned long code = ERR_peek_last_error();
    const char *reason = code ? ERR_reason_error_string(code) : NULL;
    if (!c->tls->established && !c->tls->client)
        zg_tls_hs_failed(zg_tls_failure_of(e, code));
    ERR_clear_error();
    if (e == SSL_ERROR_SSL)
        tls_refuse(c, -EPROTO, "%s failed: %s", stage, reason ? reason : "protocol error");
    else
        tls_refuse(c, -EPROTO, "%s failed (error %d)", stage, e);
}

void zg_tls_handshake_timeout(zg_conn *c)
{
    if (!c->tls->client)
        zg_tls_hs_failed(ZG_TLS_FAIL_TIMEOUT);
    tls_refuse(c, -ETIMEDOUT, "no complete handshake within handshake_timeout");
}

/* ---- the connection ---- */

int zg_tls_attach(zg_conn *c, SSL_CTX *ctx)
{
    BIO_METHOD *m = method();
    zg_tls *t = m ? calloc(1, sizeof(*t)) : NULL;
    if (!t)
        return -1;
    errors_reset(); /* the warning below names this call's error */
    BIO *bio = NULL;
    if (!(t->ssl = SSL_new(ctx)) || !(bio = BIO_new(m))) {
        const char *why = ERR_reason_error_string(ERR_peek_last_error());
        zg_log_warn("TLS: a new connection: %s", why ? why : "out of memory");
        ERR_clear_error();
        SSL_free(t->ssl);
        free(t);
        return -1;
    }
    BIO_set_data(bio, c);
    SSL_set_bio(t->ssl, bio, bio);                    /* one reference for both directions */
    SSL_clear_mode(t->ssl, SSL_MODE_RELEASE_BUFFERS); /* note_busy's sweep does it */
    /* Without read-ahead OpenSSL asks the BIO for each record twice (its
     * 5-byte header, then its body); with it, one read takes all that came
     * (read_plain goes on while records wait in OpenSSL's buffer). */
    SSL_set_read_ahead(t->ssl, 1);
    zg_list_init(&t->busy_link);
    zg_outq_init(&t->wire);
    c->tls = t;
    return 0;
}

int zg_tls_start(zg_conn *c)
{
    const zg_tls_conf *tc = c->srv->tls;
    if (!zg_tls_hs_admit(c) || zg_tls_attach(c, tc->ctx) < 0)
        return -1;
    zg_tls_sni_attach(c->tls->ssl, c); /* its ClientHello picks the server block */
    SSL_set_accept_state(c->tls->ssl);
    zg_tls_hs_enter();
    c->flags |= ZG_C_HANDSHAKE;
    zg_timer_set(&c->w->timers, &c->timer, c->w->now_ms, tc->handshake_timeout);
    return 0;
}

void zg_tls_free(zg_conn *c)
{
    zg_tls *t = c->tls;
    if (!t)
        return;
    unlist(c);
    if (!t->established && !t->client)
        zg_tls_hs_abandoned();
    zg_outq_clear(&c->w->bufs, &t->wire);
    SSL_free(t->ssl); /* and the BIO */
    free(t);
    c->tls = NULL;
}

/* The handshake goes on with the bytes that came; once done the module
 * meets c (on_open), after the max_connections_per_client check. */
static void handshake(zg_conn *c)
{
    zg_tls *t = c->tls;
    errors_reset();
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
        int e = SSL_get_error(t->ssl, r);
        if (e != SSL_ERROR_WANT_READ)
            tls_fail(c, "handshake", e);
        return;
    }
    t->established = 1;
    if (!t->client) /* the handshake metrics count accepted connections */
        zg_tls_hs_done(t->ssl);
    c->flags &= ~ZG_C_HANDSHAKE;
    zg_timer_cancel(&c->w->timers, &c->timer);
    if (t->client)
        zg_conn_connected(c, 0); /* an outbound one: its on_connect */
    else
        zg_conn_open(c);
}

/* Plaintext for the module, a record at a time (a pool chunk holds the
 * largest), until OpenSSL wants more ciphertext: read-ahead moves what came
 * into OpenSSL's buffer at once, so records may wait there (has_pending). */
static void read_plain(zg_conn *c)
{
    zg_tls *t = c->tls;
    zg_bufs *b = &c->w->bufs;
    while (!(c->flags & (ZG_C_CLOSING | ZG_C_CLOSE_WANT)) &&
           (t->in_len || SSL_has_pending(t->ssl))) {
        zg_chunk *k = zg_chunk_new(b);
        if (!k) {
            zg_conn_teardown(c, -ENOMEM);
            return;
        }
        size_t n = 0;
        errors_reset();
        int ok = SSL_read_ex(t->ssl, k->base, k->size, &n);
        int e = ok ? SSL_ERROR_NONE : SSL_get_error(t->ssl, 0);
        if (ok) {
            k->used = (uint32_t)n;
            zg_conn_input(c, k, k->base, n);
        }
        zg_chunk_put(b, k);
        if (e == SSL_ERROR_ZERO_RETURN) { /* close_notify: the end of the stream */
            zg_conn_eof(c);
            return;
        }
        if (e != SSL_ERROR_NONE) {
            if (e != SSL_ERROR_WANT_READ)
                tls_fail(c, "read", e);
            return;
        }
    }
}

void zg_tls_input(zg_conn *c, const uint8_t *data, size_t len)
{
    zg_tls *t = c->tls;
    if (t->failed || (c->flags & ZG_C_EOF))
        return; /* after a close_notify: dropped */
    t->in = data;
    t->in_len = len;
    note_busy(c);
    if (!t->established)
        handshake(c);
    if (t->established && !t->failed)
        read_plain(c);
    t->in = NULL; /* what is left of it (after a close) is dropped */
    t->in_len = 0;
    if (t->wire.bytes && !(c->flags & ZG_C_CLOSING))
        zg_conn_queue_flush(c); /* handshake messages, alerts, tickets */
}

int zg_tls_eof(zg_conn *c)
{
    zg_tls *t = c->tls;
    if (c->flags & ZG_C_EOF)
        return 1; /* after a close_notify: nothing more to tell */
    if (t->failed || (c->flags & (ZG_C_CLOSING | ZG_C_CLOSE_WANT)))
        return 0; /* closing already: nothing to log */
    if (!t->established) {
        if (SSL_in_before(t->ssl) && !SSL_has_pending(t->ssl))
            zg_conn_teardown(c, 0); /* connected and closed: a plain TCP health check */
        else {
            if (!t->client)
                zg_tls_hs_failed(ZG_TLS_FAIL_EOF);
            tls_refuse(c, 0, "end of stream during the handshake");
        }
        return 1;
    }
    if (t->client)
        return 0; /* many servers close without close_notify: not worth a line */
    char peer[64] = "a client";
    if (c->peer_len)
        zg_addr_str(zg_conn_peer(c), peer, sizeof(peer));
    zg_log_info(
        "%s: TLS: end of stream %s, from %s", c->listener->srv->addrs[c->listener->addr_index].text,
        SSL_has_pending(t->ssl) ? "inside a record (truncated)" : "without close_notify", peer);
    return 0; /* the module sees the end of stream and closes */
}

/* ---- output ---- */

/* Encrypt the head of c's queue into one record: pieces smaller than a
 * record are gathered into one first. */
static int encrypt_record(zg_conn *c)
{
    static uint8_t stage[ZG_TLS_RECORD_MAX]; /* the worker's: one thread */
    zg_tls *t = c->tls;
    size_t rec = t->plain_out < ZG_TLS_WARMUP ? ZG_TLS_RECORD_SMALL : ZG_TLS_RECORD_MAX;
    struct iovec iov[ZG_TLS_GATHER];
    int n = zg_outq_iov(&c->out, iov, ZG_TLS_GATHER);
    if (n <= 0) {
        zg_conn_teardown(c, -EIO); /* bytes counted but none queued: cannot be */
        return -1;
    }
    const void *p = iov[0].iov_base;
    size_t len = iov[0].iov_len < rec ? iov[0].iov_len : rec;
    if (len < rec && n > 1) {
        len = 0;
        for (int i = 0; i < n && len < rec; i++) {
            size_t m = iov[i].iov_len < rec - len ? iov[i].iov_len : rec - len;
            memcpy(stage + len, iov[i].iov_base, m);
            len += m;
        }
        p = stage;
    }
    size_t written = 0;
    errors_reset();
    if (!SSL_write_ex(t->ssl, p, len, &written)) {
        tls_fail(c, "write", SSL_get_error(t->ssl, 0));
        return -1;
    }
    zg_outq_consume(&c->w->bufs, &c->out, written, NULL); /* write_ext's done runs here */
    t->plain_out += written;
    return 0;
}

/* The module asked for a close or a shutdown of the write side. */
static int close_due(const zg_conn *c)
{
    if (c->flags & ZG_C_CLOSE_WANT)
        return 1;
    return (c->flags & (ZG_C_SHUT_WANT | ZG_C_SHUT_DONE)) == ZG_C_SHUT_WANT &&
           c->shut_how != SHUT_RD;
}

int zg_tls_flush(zg_conn *c)
{
    zg_tls *t = c->tls;
    if (t->failed || !t->established)
        return 0; /* only an alert or handshake messages to send */
    if (c->out.bytes)
        note_busy(c);
    while (c->out.bytes && t->wire.bytes < ZG_TLS_WIRE_MAX)
        if (encrypt_record(c) < 0)
            return -1;
    if (!c->out.bytes && !t->notify_sent && close_due(c)) { /* after the last record */
        t->notify_sent = 1;
        errors_reset();
        if (SSL_shutdown(t->ssl) < 0) { /* 0: ours is queued, the peer's not awaited */
            const char *why = ERR_reason_error_string(ERR_peek_last_error());
            zg_log_debug("TLS: close_notify: %s", why ? why : "unknown error");
            ERR_clear_error();
        }
    }
    return 0;
}

/* ---- what modules may ask ---- */

int zg_tls_info(zg_conn *c, zerg_tls_info *info)
{
    zg_tls *t = c->tls;
    if (!t || !t->established)
        return 0;
    zerg_tls_info got = {.struct_size = info->struct_size};
    const unsigned char *alpn = NULL;
    unsigned alpn_len = 0;
    got.resumed = SSL_session_reused(t->ssl) == 1;
    got.version = SSL_get_version(t->ssl);
    got.cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(t->ssl));
    got.server_name = SSL_get_servername(t->ssl, TLSEXT_NAMETYPE_host_name);
    SSL_get0_alpn_selected(t->ssl, &alpn, &alpn_len);
    got.alpn = alpn_len ? (const char *)alpn : NULL;
    got.alpn_len = alpn_len;
    zg_tls_sni_info(c, t->ssl, &got); /* the block SNI chose, the client's certificate */
    size_t n = info->struct_size < sizeof(got) ? info->struct_size : sizeof(got);
    memcpy(info, &got, n); /* what the caller's header knows of */
    return 1;
}
