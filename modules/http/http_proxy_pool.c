/* modules/http/http_proxy_pool.c - proxy_keepalive: upstream connections
 * whose answer allowed it wait, per worker, for the next request of their
 * location that goes to their server (newest first), and are closed by any
 * event while they wait, or once they served proxy_keepalive_requests or
 * lived proxy_keepalive_time. */
#include <string.h>

#include "http.h"
#include "http_proxy.h"

void http_up_unpark(http_up *up)
{
    if (up->idle_prev)
        up->idle_prev->idle_next = up->idle_next;
    else
        http_W.idle_ups = up->idle_next;
    if (up->idle_next)
        up->idle_next->idle_prev = up->idle_prev;
    up->idle_next = up->idle_prev = NULL;
    up->idle = 0;
}

int http_up_park(http_up *up)
{
    const http_location *l = up->loc;
    if (!l->proxy_keepalive || http_W.draining || up->spent || up->tunnel ||
        !llhttp_should_keep_alive(&up->parser) || http_api->conn_out_pending(up->c) ||
        http_api->conn_closing(up->c) || up->requests >= (uint64_t)l->proxy_keepalive_requests ||
        http_api->now_ms(http_W.w) - up->opened_ms >= l->proxy_keepalive_time)
        return 0;
    int64_t n = 0;
    for (http_up *x = http_W.idle_ups; x; x = x->idle_next)
        if (x->loc == l && ++n >= l->proxy_keepalive)
            return 0; /* the location's pool is full */
    up->idle = 1;
    up->idle_prev = NULL;
    up->idle_next = http_W.idle_ups;
    if (http_W.idle_ups)
        http_W.idle_ups->idle_prev = up;
    http_W.idle_ups = up;
    /* read while parked: a close (or stray bytes) ends it at once */
    up->up_paused = 0;
    http_api->conn_timeout(up->c, l->proxy_keepalive_timeout);
    http_api->resume_read(up->c);
    return 1;
}

http_up *http_up_take(const http_location *l, int server)
{
    for (http_up *x = http_W.idle_ups; x; x = x->idle_next) {
        if (x->loc != l || x->server != server)
            continue;
        http_up_unpark(x);
        return x;
    }
    return NULL;
}

int http_up_idle_event(http_up *up)
{
    if (!up->idle)
        return 0;
    http_up_unpark(up);
    http_api->close(up->c);
    return 1;
}

void http_up_close_idle(void)
{
    while (http_W.idle_ups)
        http_up_idle_event(http_W.idle_ups);
}
