/* modules/http/http_proxy_balance.c - upstream groups for proxy_pass (the
 * upstreams key, as nginx's upstream blocks): each one the core's
 * (api->conf_upstream: weights, backups, balance, passive failures, health
 * checks), with what its hash_key names in a request. */
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_proxy.h"

/* hash_key: $remote_addr, $request_uri, $uri, $host or $http_<name>, as
 * nginx's `hash $request_uri consistent`. */
static int http_parse_hash_key(zerg_conf_ctx *cx, const zerg_conf_node *node, http_upstream *g)
{
    static const struct {
        const char *name;
        int var;
    } vars[] = {
        {"$remote_addr", HTTP_HASH_REMOTE_ADDR},
        {"$request_uri", HTTP_HASH_REQUEST_URI},
        {"$uri", HTTP_HASH_URI},
        {"$host", HTTP_HASH_HOST},
    };
    const char *key = http_api->upstream_hash_key(g->group);
    if (!key)
        return 0;
    for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
        if (!strcmp(key, vars[i].name)) {
            g->hash_var = vars[i].var;
            return 0;
        }
    if (strncmp(key, "$http_", 6) != 0 || !key[6])
        return http_api->conf_error(cx, http_api->node_get(cx, node, "hash_key"),
                                    "upstreams %s: hash_key: \"%s\" is not $remote_addr, "
                                    "$request_uri, $uri, $host or $http_<name>",
                                    g->name, key);
    g->hash_var = HTTP_HASH_HEADER;
    g->hash_header = http_api->conf_strdup(cx, key + 6);
    if (!g->hash_header)
        return -1;
    for (char *c = g->hash_header; *c; c++) /* as nginx: $http_x_user is X-User */
        if (*c == '_')
            *c = '-';
    return 0;
}

/* upstreams: { app: ["10.0.0.1:8000", "10.0.0.2:8000"], api: { servers: [...] } } */
static http_upstream *http_named; /* the config's groups so far */

void http_upstreams_conf_start(void)
{
    http_named = NULL;
}

/* Whether a group of this config already has name. */
static const http_upstream *http_upstream_named(const char *name)
{
    for (const http_upstream *g = http_named; g; g = g->next)
        if (strcmp(g->name, name) == 0)
            return g;
    return NULL;
}

int http_parse_upstreams(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_srv *s = (http_srv *)(void *)((char *)field - offsetof(http_srv, upstreams));
    if (http_api->node_kind(cx, node) != ZERG_NODE_MAP)
        return http_api->conf_error(cx, node, "upstreams: expected a mapping of name: servers");
    size_t n = http_api->node_len(cx, node);
    s->upstreams = http_api->conf_alloc(cx, (n ? n : 1) * sizeof(http_upstream));
    if (!s->upstreams)
        return -1;
    s->nupstreams = n;
    for (size_t i = 0; i < n; i++) {
        const char *name = http_api->node_key(cx, node, i);
        const zerg_conf_node *v = http_api->node_item(cx, node, i);
        http_upstream *g = &s->upstreams[i];
        if (!name || !*name || strpbrk(name, ":/[]@?# \"\\"))
            return http_api->conf_error(cx, v, "upstreams: \"%s\" is not a name", name ? name : "");
        if (http_upstream_named(name))
            return http_api->conf_error(cx, v,
                                        "upstreams: \"%s\" is already a group of another "
                                        "server block (group names are global)",
                                        name);
        g->name = http_api->conf_strdup(cx, name);
        if (!g->name || !(g->group = http_api->conf_upstream(cx, v, name)) ||
            http_parse_hash_key(cx, v, g) < 0)
            return -1;
        /* its servers' counters in the master's shared metrics: they go on
         * across reloads and worker deaths */
        if (ZERG_API_HAS(http_api, conf_upstream_metrics) &&
            http_api->conf_upstream_metrics(cx, g->group, "zerg_http_upstream", "upstream") < 0)
            return -1;
        g->next = http_named;
        http_named = g;
    }
    return 0;
}

/* The request's value that hash_key names, in buf (cap bytes) or in place. */
static const char *http_hash_value(http_conn *hc, const http_upstream *g, const char *path,
                                   size_t plen, char *buf, size_t cap, size_t *len)
{
    socklen_t alen;
    const char *v = "";
    *len = 0;
    switch (g->hash_var) {
    case HTTP_HASH_REMOTE_ADDR:
        *len = http_addr_text(http_api->conn_peer(hc->c, &alen), buf, cap, 0);
        return *len < cap ? buf : "";
    case HTTP_HASH_REQUEST_URI:
        http_request_uri(hc, &v, len);
        return v;
    case HTTP_HASH_URI:
        *len = plen;
        return path;
    case HTTP_HASH_HOST:
        *len = http_request_host(hc, buf, cap);
        return *len < cap ? buf : (*len = 0, "");
    default:
        for (uint32_t k = 0; k < hc->rq->nfields; k++) {
            const http_field *f = &hc->rq->fields[k];
            if (f->name.len == strlen(g->hash_header) &&
                http_strncaseeq(http_hbuf(hc, f->name), g->hash_header, f->name.len)) {
                *len = f->value.len;
                return http_hbuf(hc, f->value);
            }
        }
        return v; /* absent: every such request on one server */
    }
}

int http_upstream_pick(http_conn *hc, const http_upstream *g, const char *path, size_t plen,
                       zerg_upstream_tried *tried)
{
    char buf[256];
    size_t len = 0;
    const char *key = http_api->upstream_hash_key(g->group)
                          ? http_hash_value(hc, g, path, plen, buf, sizeof(buf), &len)
                          : NULL;
    return http_api->upstream_pick(http_W.w, g->group, key, len, tried);
}

void http_upstream_result(http_up *up, int ok)
{
    const http_upstream *g = up->loc->proxy->group;
    if (g && up->server >= 0)
        http_api->upstream_note(g->group, up->server, ok ? ZERG_UPSTREAM_OK : ZERG_UPSTREAM_FAIL,
                                0);
}

void http_upstream_count(http_up *up, int on)
{
    const http_upstream *g = up->loc ? up->loc->proxy->group : NULL;
    if (!g || up->server < 0)
        return;
    if (!on && (up->rx || up->tx)) { /* the bytes since the last count */
        http_api->upstream_note(g->group, up->server, ZERG_UPSTREAM_BYTES_IN, up->rx);
        http_api->upstream_note(g->group, up->server, ZERG_UPSTREAM_BYTES_OUT, up->tx);
        up->rx = up->tx = 0;
    }
    if (up->counted == (on != 0))
        return;
    up->counted = on != 0;
    http_api->upstream_note(g->group, up->server, on ? ZERG_UPSTREAM_OPEN : ZERG_UPSTREAM_CLOSE, 0);
}

int http_upstream_untried(const http_up *up)
{
    const http_upstream *g = up->loc->proxy->group;
    if (!g)
        return 0;
    size_t n = 0;
    for (size_t i = 0; i < sizeof(up->tried.bits) / sizeof(up->tried.bits[0]); i++)
        n += (size_t)__builtin_popcountll(up->tried.bits[i]);
    return n < http_api->upstream_size(g->group);
}

/* ---- the groups in this worker ------------------------------------------ */

static zerg_upstream **http_groups; /* of every block, in server_init order */
static size_t http_ngroups;

void http_upstreams_start(zerg_worker *w, http_srv *s)
{
    if (!s->nupstreams)
        return;
    zerg_upstream **more =
        realloc(http_groups, (http_ngroups + s->nupstreams) * sizeof(*http_groups));
    if (!more)
        return; /* they serve, unchecked and without metrics */
    http_groups = more;
    for (size_t i = 0; i < s->nupstreams; i++) {
        http_api->upstream_start(w, s->upstreams[i].group);
        http_groups[http_ngroups++] = s->upstreams[i].group;
    }
}

void http_upstreams_stop(zerg_worker *w)
{
    for (size_t i = 0; i < http_ngroups; i++)
        http_api->upstream_stop(w, http_groups[i]);
}

void http_upstreams_metrics(zerg_text *out)
{
    if (http_ngroups)
        http_api->upstream_metrics(out, "zerg_http_upstream", "upstream", http_groups,
                                   http_ngroups);
}
