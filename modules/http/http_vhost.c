/* http_vhost.c - name-based virtual hosts: server_name patterns checked at
 * load, and the choice of a server block per request from its Host (or the
 * authority of an absolute-form target) among the blocks sharing an address. */
#include "http.h"

#include <string.h>

/* Patterns, as nginx has them: "example.com" (exact), "*.example.com" or
 * ".example.com" (leading wildcard; the second also matches example.com),
 * "www.example.*" (trailing wildcard), "" (requests without a Host). */
int http_server_names_check(zerg_conf_ctx *cx, const zerg_conf_node *section, http_srv *s)
{
    for (size_t i = 0; i < s->server_name.n; i++) {
        char *p = s->server_name.items[i];
        size_t n = strlen(p);
        for (size_t k = 0; k < n; k++)
            if (p[k] >= 'A' && p[k] <= 'Z')
                p[k] = (char)(p[k] - 'A' + 'a');
        const char *star = strchr(p, '*');
        int ok = !star || (star == p && n > 2 && p[1] == '.' && !strchr(p + 1, '*')) ||
                 (star == p + n - 1 && n > 2 && p[n - 2] == '.');
        if (!ok || (n && !http_host_valid(p, n)) || strchr(p, ':') || strchr(p, '['))
            return http_api->conf_error(cx, section,
                                        "server_name \"%s\": expected a host name, "
                                        "*.suffix, .suffix or prefix.*",
                                        s->server_name.items[i]);
    }
    return 0;
}

/* The host of the request: the authority of an absolute-form target wins
 * over the Host field (RFC 9112 3.2.2). Lowercased into buf, without the
 * port and a trailing dot. */
size_t http_request_host(const http_conn *hc, char *buf, size_t cap)
{
    const http_req *r = &hc->req;
    const char *v = NULL;
    size_t n = 0;
    const char *url = http_hbuf(hc, r->url);
    if (r->url.len > 8 &&
        (http_strncaseeq(url, "http://", 7) || http_strncaseeq(url, "https://", 8))) {
        v = url + (url[4] == ':' ? 7 : 8);
        const char *end = url + r->url.len;
        const char *e = v;
        while (e < end && *e != '/' && *e != '?' && *e != '#')
            e++;
        n = (size_t)(e - v);
        const char *at = memchr(v, '@', n);
        if (at) {
            n -= (size_t)(at + 1 - v);
            v = at + 1;
        }
    } else if (r->hcount[HTTP_H_HOST]) {
        v = http_hbuf(hc, r->hv[HTTP_H_HOST]);
        n = r->hv[HTTP_H_HOST].len;
    }
    if (n == 0) {
        buf[0] = 0;
        return 0;
    }
    if (v[0] == '[') { /* IP literal: keep the brackets, drop the port */
        const char *close = memchr(v, ']', n);
        n = close ? (size_t)(close - v) + 1 : n;
    } else {
        const char *colon = memchr(v, ':', n);
        if (colon)
            n = (size_t)(colon - v);
    }
    if (n && v[n - 1] == '.')
        n--;
    if (n >= cap)
        return cap; /* longer than any name we could match */
    for (size_t i = 0; i < n; i++)
        buf[i] = (char)(v[i] >= 'A' && v[i] <= 'Z' ? v[i] - 'A' + 'a' : v[i]);
    buf[n] = 0;
    return n;
}

/* A request for hc->srv (vhosts[k]) on a connection whose TLS handshake
 * was made with another block's settings (SNI named another, or none): the
 * client may not have been shown the right certificate or been asked for
 * its own, so it goes elsewhere (RFC 9110 15.5.20). */
static int misdirected(const http_conn *hc, size_t k)
{
    zerg_tls_info ti = {.struct_size = sizeof(ti)};
    if (!ZERG_API_HAS(http_api, conn_tls) || !http_api->conn_tls(hc->c, &ti) || !ti.server_tls ||
        ti.sni_server >= hc->nvhosts)
        return 0;
    return ti.server_tls[k] != ti.server_tls[ti.sni_server];
}

int http_select_server(http_conn *hc)
{
    if (hc->nvhosts < 2 || !ZERG_API_HAS(http_api, server_names_match))
        return 0; /* an older core: the address's default block serves all */
    char host[256];
    size_t hn = http_request_host(hc, host, sizeof(host));
    if (hn == sizeof(host))
        return 0;
    size_t best = 0, pick = 0;
    for (size_t i = 0; i < hc->nvhosts; i++) {
        const http_srv *s = hc->vhosts[i];
        size_t rank = http_api->server_names_match(&s->server_name, host, hn);
        if (rank > best) {
            best = rank;
            pick = i;
        }
    }
    if (best)
        hc->srv = hc->vhosts[pick];
    if (misdirected(hc, best ? pick : 0)) {
        hc->err_status = 421;
        return -1;
    }
    return 0;
}
