/* modules/http/http_proxy_balance.c - upstream groups for proxy_pass (the
 * upstreams key, as nginx's upstream blocks): their parsing, and the round
 * robin over the servers a request has not tried, skipping for
 * fail_timeout those that failed max_fails times in a row. */
#include <stdio.h>
#include <string.h>

#include "http.h"

static const zerg_directive http_upstream_directives[] = {
    {"servers", ZERG_CONF_STR_LIST, offsetof(http_upstream, names), NULL, 0, 0},
    {"max_fails", ZERG_CONF_INT, offsetof(http_upstream, max_fails), NULL, 0, 1000},
    {"fail_timeout", ZERG_CONF_MSEC, offsetof(http_upstream, fail_timeout), NULL, 1, INT32_MAX},
    ZERG_DIRECTIVE_END,
};

/* One group: a list of host:port servers, or a mapping with servers,
 * max_fails and fail_timeout. */
static int http_parse_upstream(zerg_conf_ctx *cx, const zerg_conf_node *node, http_upstream *g)
{
    g->max_fails = 1;
    g->fail_timeout = 10000;
    int kind = http_api->node_kind(cx, node);
    if (kind == ZERG_NODE_MAP) {
        if (http_api->conf_apply(cx, node, http_upstream_directives, g))
            return -1;
    } else if (kind == ZERG_NODE_SEQ) {
        g->names.n = http_api->node_len(cx, node);
        g->names.items = http_api->conf_alloc(cx, (g->names.n + 1) * sizeof(char *));
        if (!g->names.items)
            return -1;
        for (size_t i = 0; i < g->names.n; i++) {
            const char *v = http_api->node_scalar(cx, http_api->node_item(cx, node, i));
            g->names.items[i] = v ? http_api->conf_strdup(cx, v) : NULL;
        }
    }
    size_t n = g->names.n;
    if (n == 0 || n > HTTP_UPSTREAM_MAX_SERVERS)
        return http_api->conf_error(cx, node,
                                    "upstreams %s: expected a list of 1 to %d host:port servers "
                                    "(or a mapping with servers, max_fails, fail_timeout)",
                                    g->name, HTTP_UPSTREAM_MAX_SERVERS);
    g->servers = http_api->conf_alloc(cx, n * sizeof(*g->servers));
    if (!g->servers)
        return -1;
    g->nservers = n;
    for (size_t i = 0; i < n; i++) {
        const char *v = g->names.items[i], *err;
        http_upstream_server *sv = &g->servers[i];
        if (!v || !*v)
            return http_api->conf_error(cx, node, "upstreams %s: expected host:port servers",
                                        g->name);
        if (http_proxy_resolve(v, strlen(v), &sv->addr, &sv->addr_len, &err) < 0)
            return http_api->conf_error(cx, node, "upstreams %s: \"%s\": %s", g->name, v, err);
        sv->text = g->names.items[i];
    }
    return 0;
}

/* upstreams: { app: ["10.0.0.1:8000", "10.0.0.2:8000"], api: { servers: [...] } } */
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
        if (!name || !*name || strpbrk(name, ":/[]@?# "))
            return http_api->conf_error(cx, v, "upstreams: \"%s\" is not a name", name ? name : "");
        g->name = http_api->conf_strdup(cx, name);
        if (!g->name || http_parse_upstream(cx, v, g) < 0)
            return -1;
    }
    return 0;
}

int http_upstream_pick(http_upstream *g, uint32_t tried, uint64_t now)
{
    for (size_t k = 0; k < g->nservers; k++) {
        size_t i = (g->rr + k) % g->nservers;
        const http_upstream_server *sv = &g->servers[i];
        if ((tried >> i) & 1 || (sv->down_until && now < sv->down_until))
            continue;
        g->rr = (uint32_t)((i + 1) % g->nservers);
        return (int)i;
    }
    return -1;
}

void http_upstream_result(http_upstream *g, int i, int ok, uint64_t now)
{
    http_upstream_server *sv = &g->servers[i];
    if (ok) {
        sv->fails = 0;
        sv->down_until = 0;
        return;
    }
    sv->fails++;
    if (g->max_fails && sv->fails >= (uint64_t)g->max_fails) {
        sv->down_until = now + g->fail_timeout;
        sv->fails = 0;
        http_api->log(ZERG_LOG_WARN, "http: upstream %s: server %s skipped for %llu ms", g->name,
                      sv->text, (unsigned long long)g->fail_timeout);
    }
}
