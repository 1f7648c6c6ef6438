/* modules/http/http_proxy_tunnel.c - a protocol switch through proxy_pass
 * (WebSocket): the Upgrade request goes to the upstream, its 101 to the
 * client, then bytes flow both ways as they are, bounded each way, a FIN
 * passed on as a shutdown, until both sides are done. */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"
#include "http_proxy.h"

const http_field *http_proxy_upgrade_field(http_conn *hc)
{
    const http_req *r = &hc->req;
    if (!r->upgrade || r->method != HTTP_GET || r->minor < 1)
        return NULL;
    for (uint32_t i = 0; i < hc->rq->nfields; i++) {
        const http_field *f = &hc->rq->fields[i];
        if (f->name.len == 7 && http_strncaseeq(http_hbuf(hc, f->name), "upgrade", 7))
            return f;
    }
    return NULL;
}

void http_tunnel_start(http_up *up, const uint8_t *rest, size_t n)
{
    http_conn *hc = up->hc;
    up->tunnel = 1;
    http_api->conn_timeout(hc->c, 0);
    if (n)
        http_tunnel_relay(up, 0, rest, n);
    if (hc->paused) { /* what the client sent after its request, then its FIN */
        hc->paused = 0;
        http_api->resume_read(hc->c);
    } else if (hc->eof) {
        http_tunnel_eof(up, 1);
    }
}

void http_tunnel_relay(http_up *up, int from_client, const uint8_t *data, size_t len)
{
    http_conn *hc = up->hc;
    if (from_client) {
        http_relay(hc->c, up->c, (const char *)data, len, 0);
        http_up_bytes(up, ZERG_UPSTREAM_BYTES_OUT, len);
        http_api->conn_timeout(up->c, up->loc->proxy_read_timeout);
        http_up_bound_client(up);
    } else {
        http_relay(up->c, hc->c, (const char *)data, len, 0);
        hc->req.sent += len;
        http_up_bound(up);
    }
}

void http_tunnel_eof(http_up *up, int from_client)
{
    if (up->eof_in[from_client])
        return;
    up->eof_in[from_client] = 1;
    http_api->shutdown(from_client ? up->c : up->hc->c, SHUT_WR);
    if (up->eof_in[0] && up->eof_in[1]) {
        up->done = 1;
        http_up_finish(up, 1, 1);
    }
}
