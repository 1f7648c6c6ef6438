/* zg_conn_addr.c - a connection's addresses and its side allocation: the
 * peer kept inline when it fits (IPv4, IPv6), the rest (unix peers, the
 * local address once asked for, connect state) in an ext struct that only
 * the connections needing it carry. */
#define _GNU_SOURCE
#include "zg_accept.h"
#include "zg_conn.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

zg_conn_ext *zg_conn_ext_get(zg_conn *c)
{
    if (!c->ext) {
        c->ext = calloc(1, sizeof(*c->ext));
        if (c->ext)
            c->ext->plain_fd = -1;
    }
    return c->ext;
}

void zg_conn_ext_free(zg_conn *c)
{
    if (!c->ext)
        return;
    if (c->ext->plain_fd >= 0)
        close(c->ext->plain_fd);
    free(c->ext);
    c->ext = NULL;
}

int zg_conn_set_peer(zg_conn *c, const struct sockaddr *sa, socklen_t len)
{
    if (len > sizeof(struct sockaddr_storage))
        return -1;
    if (len > sizeof(c->peer)) {
        zg_conn_ext *x = zg_conn_ext_get(c);
        if (!x)
            return -1;
        memcpy(&x->peer, sa, len);
    } else {
        memset(&c->peer, 0, sizeof(c->peer));
        memcpy(&c->peer, sa, len);
    }
    c->peer_len = len;
    return 0;
}

void zg_conn_set_local(zg_conn *c, const struct sockaddr *sa, socklen_t len)
{
    zg_conn_ext *x = zg_conn_ext_get(c);
    if (!x || len > sizeof(x->local))
        return;
    memcpy(&x->local, sa, len);
    x->local_len = len;
}

/* Found on demand: a syscall only for the modules that ask (PROXY protocol,
 * absolute redirects), and memory only for the connections they ask about. */
const struct sockaddr *zg_conn_local(zg_conn *c, socklen_t *len)
{
    static const struct sockaddr_storage none; /* AF_UNSPEC */
    const struct sockaddr *sa = (const struct sockaddr *)&none;
    socklen_t n = 0;
    if (c->ext && c->ext->local_len) {
        sa = (const struct sockaddr *)&c->ext->local;
        n = c->ext->local_len;
    } else if (c->fixed && c->listener) { /* a fixed file has no fd: its listener's */
        const zg_addr *a = &c->listener->srv->addrs[c->listener->addr_index];
        sa = (const struct sockaddr *)&a->ss;
        n = a->len;
    } else if (!c->fixed) {
        struct sockaddr_storage ss;
        socklen_t sl = sizeof(ss);
        if (getsockname(c->fd, (struct sockaddr *)&ss, &sl) == 0 && sl <= sizeof(ss)) {
            zg_conn_set_local(c, (const struct sockaddr *)&ss, sl);
            if (c->ext && c->ext->local_len) {
                sa = (const struct sockaddr *)&c->ext->local;
                n = c->ext->local_len;
            }
        }
    }
    if (len)
        *len = n;
    return sa;
}
