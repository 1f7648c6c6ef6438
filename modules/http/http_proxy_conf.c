/* modules/http/http_proxy_conf.c - the proxy_* keys of a location:
 * proxy_pass (an http:// URL naming an upstreams group or a host resolved
 * at load), proxy_set_header (headers with $variables), the defaults and
 * checks of a proxy_pass location, and proxy_pass's directive rows. */
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_proxy.h"

#define HTTP_PROXY_DEFAULT_TIMEOUT_MS 60000
/* nginx's upstream keepalive_requests and keepalive_time defaults */
#define HTTP_PROXY_DEFAULT_KEEPALIVE_REQUESTS 1000
#define HTTP_PROXY_DEFAULT_KEEPALIVE_TIME_MS  3600000
#define HTTP_PROXY_DEFAULT_BUFFER             (16 << 10)

int http_proxy_resolve(const char *auth, size_t len, const char *default_port,
                       struct sockaddr_storage *out, socklen_t *outlen, const char **err)
{
    char host[256], port[8];
    snprintf(port, sizeof(port), "%s", default_port);
    const char *h = auth, *colon = NULL;
    size_t hl;
    if (len && auth[0] == '[') {
        const char *close = memchr(auth, ']', len);
        if (!close) {
            *err = "unclosed [ in the host";
            return -1;
        }
        h = auth + 1;
        hl = (size_t)(close - h);
        if (close + 1 < auth + len) {
            if (close[1] != ':') {
                *err = "expected :port after ]";
                return -1;
            }
            colon = close + 1;
        }
    } else {
        colon = memchr(auth, ':', len);
        hl = colon ? (size_t)(colon - auth) : len;
    }
    if (hl == 0 || hl >= sizeof(host)) {
        *err = "no host";
        return -1;
    }
    memcpy(host, h, hl);
    host[hl] = 0;
    if (colon) {
        size_t pl = (size_t)(auth + len - colon - 1);
        char *end;
        if (pl == 0 || pl >= sizeof(port)) {
            *err = "bad port";
            return -1;
        }
        memcpy(port, colon + 1, pl);
        port[pl] = 0;
        long v = strtol(port, &end, 10);
        if (*end || v < 1 || v > 65535) {
            *err = "bad port";
            return -1;
        }
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res;
    int rc = getaddrinfo(host, port, &hints, &res);
    if (rc != 0) {
        *err = gai_strerror(rc);
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *outlen = res->ai_addrlen;
    freeaddrinfo(res);
    return 0;
}

/* The host of an authority, without its port or brackets (the name an
 * https upstream's certificate is verified against). */
static char *http_proxy_host_name(zerg_conf_ctx *cx, const char *auth, size_t len)
{
    const char *end = auth[0] == '[' ? memchr(auth, ']', len) : memchr(auth, ':', len);
    if (auth[0] == '[')
        auth++;
    size_t n = end ? (size_t)(end - auth) : len;
    char *name = http_api->conf_alloc(cx, n + 1);
    if (name)
        memcpy(name, auth, n);
    return name;
}

/* proxy_pass: "http://host[:port][/uri]" or "https://..." */
int http_parse_proxy_pass(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_proxy_pass **out = field;
    const char *v = http_api->node_scalar(cx, node);
    int https = v && strncmp(v, "https://", 8) == 0;
    if (!v || (!https && strncmp(v, "http://", 7) != 0))
        return http_api->conf_error(cx, node,
                                    "proxy_pass: expected http://host[:port][/uri] or https://...");
    const char *auth = v + (https ? 8 : 7), *slash = strchr(auth, '/');
    size_t alen = slash ? (size_t)(slash - auth) : strlen(auth);
    if (strpbrk(v, "?#$ \t\r\n") || memchr(auth, '@', alen))
        return http_api->conf_error(cx, node,
                                    "proxy_pass: \"%s\": no query, fragment, user or variables "
                                    "in the URL",
                                    v);
    http_proxy_pass *p = http_api->conf_alloc(cx, sizeof(*p));
    if (!p)
        return -1;
    p->node = node; /* the host is resolved in conf_done, unless it names a group */
    p->host = http_api->conf_alloc(cx, alen + 1);
    if (!p->host)
        return -1;
    memcpy(p->host, auth, alen);
    p->host_len = alen;
    if (https && !(p->tls_name = http_proxy_host_name(cx, auth, alen)))
        return -1;
    if (slash) {
        p->uri = http_api->conf_strdup(cx, slash);
        if (!p->uri)
            return -1;
        p->uri_len = strlen(slash);
    }
    *out = p;
    return 0;
}

/* proxy_set_header: { Name: "value with $variables" }, checked as any
 * header list, then each value split into its variables */
int http_parse_proxy_set_header(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_location *l =
        (http_location *)(void *)((char *)field - offsetof(http_location, proxy_set));
    http_header_list list;
    if (http_parse_header_list(cx, node, &list, "proxy_set_header") < 0)
        return -1;
    l->proxy_set = http_api->conf_alloc(cx, (list.n ? list.n : 1) * sizeof(http_proxy_header));
    if (!l->proxy_set)
        return -1;
    for (size_t i = 0; i < list.n; i++) {
        http_proxy_header *h = &l->proxy_set[i];
        h->name = list.items[i].name;
        h->name_len = strlen(h->name);
        if (http_tmpl_parse(cx, http_api->node_item(cx, node, i), list.items[i].value, &h->value,
                            HTTP_TMPL_PROXY, "proxy_set_header") < 0)
            return -1;
    }
    l->nproxy_set = list.n;
    return 0;
}

/* The group the URL's host names, else its address. */
static int http_proxy_target(zerg_conf_ctx *cx, http_srv *s, http_proxy_pass *p)
{
    for (size_t i = 0; i < s->nupstreams; i++)
        if (strlen(s->upstreams[i].name) == p->host_len &&
            !memcmp(s->upstreams[i].name, p->host, p->host_len)) {
            p->group = &s->upstreams[i];
            return 0;
        }
    const char *err;
    if (http_proxy_resolve(p->host, p->host_len, p->tls_name ? "443" : "80", &p->addr, &p->addr_len,
                           &err) < 0)
        return http_api->conf_error(cx, p->node, "proxy_pass: \"%s://%s\": %s",
                                    p->tls_name ? "https" : "http", p->host, err);
    return 0;
}

/* proxy_tls: kept for conf_done, where an https proxy_pass gets the core's
 * client context for it (verify on unless it says off). */
static int http_parse_proxy_tls(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    *(const zerg_conf_node **)field = node;
    return http_api->node_kind(cx, node) == ZERG_NODE_MAP
               ? 0
               : http_api->conf_error(cx, node, "proxy_tls: expected a mapping (verify, ca, ...)");
}

static int http_proxy_tls_done(zerg_conf_ctx *cx, http_location *l)
{
    http_proxy_pass *p = l->proxy;
    if (!p->tls_name) {
        if (l->proxy_tls)
            return http_api->conf_error(
                cx, l->proxy_tls, "location %s: proxy_tls needs an https:// proxy_pass", l->path);
        return 0;
    }
    if (!ZERG_API_HAS(http_api, connect_tls))
        return http_api->conf_error(cx, p->node, "proxy_pass: https: this core has no TLS client");
    if (!(p->tls = http_api->conf_tls_client(cx, l->proxy_tls)))
        return -1;
    if (p->group && ZERG_API_HAS(http_api, upstream_tls)) /* its health checks speak TLS too */
        http_api->upstream_tls(p->group->group, p->tls);
    return 0;
}

int http_proxy_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, http_srv *s,
                         http_location *l, int *want_peer)
{
    if (l->kind != HTTP_LOC_PROXY) {
        if (l->proxy_connect_timeout || l->proxy_read_timeout || l->proxy_buffer_size ||
            l->nproxy_set || l->proxy_keepalive || l->proxy_keepalive_timeout ||
            l->proxy_keepalive_requests || l->proxy_keepalive_time || l->proxy_tls)
            return http_api->conf_error(cx, section, "location %s: proxy_* keys need proxy_pass",
                                        l->path);
        return 0;
    }
    if (http_proxy_target(cx, s, l->proxy) < 0 || http_proxy_tls_done(cx, l) < 0)
        return -1;
    const http_upstream *g = l->proxy->group;
    if (g && g->hash_var == HTTP_HASH_REMOTE_ADDR && http_api->upstream_hash_key(g->group))
        *want_peer = 1; /* balance: hash on the client's address */
#define UNSET_TO(field, value) ((field) = (field) ? (field) : (value)) /* 0: unset */
    UNSET_TO(l->proxy_connect_timeout, HTTP_PROXY_DEFAULT_TIMEOUT_MS);
    UNSET_TO(l->proxy_read_timeout, HTTP_PROXY_DEFAULT_TIMEOUT_MS);
    UNSET_TO(l->proxy_buffer_size, HTTP_PROXY_DEFAULT_BUFFER);
    UNSET_TO(l->proxy_keepalive_timeout, HTTP_PROXY_DEFAULT_TIMEOUT_MS);
    UNSET_TO(l->proxy_keepalive_requests, HTTP_PROXY_DEFAULT_KEEPALIVE_REQUESTS);
    UNSET_TO(l->proxy_keepalive_time, HTTP_PROXY_DEFAULT_KEEPALIVE_TIME_MS);
#undef UNSET_TO
    /* $remote_addr needs the client's address; $host may need the local one */
    for (size_t i = 0; i < l->nproxy_set; i++)
        for (size_t k = 0; k < l->proxy_set[i].value.n; k++)
            if (l->proxy_set[i].value.parts[k].var != HTTP_VAR_TEXT &&
                l->proxy_set[i].value.parts[k].var != HTTP_VAR_PROXY_HOST)
                *want_peer = 1;
    return 0;
}

/* proxy_pass's directive rows (composed by http_conf.c; the upstreams
 * parser is http_proxy_balance.c's). */
const zerg_directive http_proxy_location_directives[] = {
    {"proxy_pass", ZERG_CONF_CUSTOM, offsetof(http_location, proxy), http_parse_proxy_pass, 0, 0},
    {"proxy_connect_timeout", ZERG_CONF_MSEC, offsetof(http_location, proxy_connect_timeout), NULL,
     1, INT32_MAX},
    {"proxy_read_timeout", ZERG_CONF_MSEC, offsetof(http_location, proxy_read_timeout), NULL, 1,
     INT32_MAX},
    {"proxy_buffer_size", ZERG_CONF_SIZE, offsetof(http_location, proxy_buffer_size), NULL, 1024,
     1 << 20},
    {"proxy_keepalive", ZERG_CONF_INT, offsetof(http_location, proxy_keepalive), NULL, 0, 65536},
    {"proxy_keepalive_timeout", ZERG_CONF_MSEC, offsetof(http_location, proxy_keepalive_timeout),
     NULL, 1, INT32_MAX},
    {"proxy_keepalive_requests", ZERG_CONF_INT, offsetof(http_location, proxy_keepalive_requests),
     NULL, 1, INT32_MAX},
    {"proxy_keepalive_time", ZERG_CONF_MSEC, offsetof(http_location, proxy_keepalive_time), NULL, 1,
     INT32_MAX},
    {"proxy_set_header", ZERG_CONF_CUSTOM, offsetof(http_location, proxy_set),
     http_parse_proxy_set_header, 0, 0},
    {"proxy_tls", ZERG_CONF_CUSTOM, offsetof(http_location, proxy_tls), http_parse_proxy_tls, 0, 0},
    ZERG_DIRECTIVE_END,
};

const zerg_directive http_proxy_server_directives[] = {
    {"upstreams", ZERG_CONF_CUSTOM, offsetof(http_srv, upstreams), http_parse_upstreams, 0, 0},
    ZERG_DIRECTIVE_END,
};
