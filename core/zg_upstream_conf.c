/* zg_upstream_conf.c - the one schema of an upstream group, for every module
 * (api->conf_upstream): its servers (an address, or a mapping with weight,
 * max_fails, fail_timeout, backup, max_conns, down), balance, hash_key, the
 * group's max_fails/fail_timeout defaults and health_check; then the hash
 * ring and the shared slots. */
#include <stdint.h>
#include <string.h>

#include "zg_upstream.h"

#define ZG_UP_EXPECT_MAX       256
#define ZG_UP_MAX_FAILS_MAX    1000000
#define ZG_UP_FAIL_TIMEOUT_MAX 86400000 /* ms: a day */

/* ---- one server ---------------------------------------------------------- */

static int parse_address(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    zg_up_server *s = (zg_up_server *)(void *)((char *)field - offsetof(zg_up_server, ss));
    const zerg_api *a = zg_up_api;
    const char *text = a->node_scalar(cx, n);
    if (!text)
        return a->conf_error(cx, n, "address: expected \"host:port\"");
    if (a->conf_addr(cx, n, &s->ss, &s->len) != 0)
        return -1;
    s->name = a->conf_strdup(cx, text);
    return s->name ? 0 : -1;
}

static const zerg_directive server_directives[] = {
    {"address", ZERG_CONF_CUSTOM, offsetof(zg_up_server, ss), parse_address, 0, 0},
    {"weight", ZERG_CONF_INT, offsetof(zg_up_server, weight), NULL, 1, 1000},
    {"max_fails", ZERG_CONF_INT, offsetof(zg_up_server, max_fails), NULL, 0, ZG_UP_MAX_FAILS_MAX},
    {"fail_timeout", ZERG_CONF_MSEC, offsetof(zg_up_server, fail_timeout), NULL, 1,
     ZG_UP_FAIL_TIMEOUT_MAX},
    {"backup", ZERG_CONF_BOOL, offsetof(zg_up_server, backup), NULL, 0, 0},
    {"max_conns", ZERG_CONF_INT, offsetof(zg_up_server, max_conns), NULL, 0, 100000000},
    {"down", ZERG_CONF_BOOL, offsetof(zg_up_server, down), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};

/* "host:port", or a mapping of server_directives; the group's max_fails and
 * fail_timeout are the defaults. */
static int parse_server(zerg_conf_ctx *cx, const zerg_conf_node *it, const zg_up_server *dflt,
                        zg_up_server *s)
{
    const zerg_api *a = zg_up_api;
    *s = *dflt;
    int k = a->node_kind(cx, it);
    if (k == ZERG_NODE_SCALAR)
        return parse_address(cx, it, &s->ss);
    if (k != ZERG_NODE_MAP)
        return a->conf_error(cx, it, "servers: each server is \"host:port\" or a mapping");
    if (a->conf_apply(cx, it, server_directives, s) != 0)
        return -1;
    if (s->len == 0)
        return a->conf_error(cx, it, "servers: address is required");
    return 0;
}

static int parse_servers(zerg_conf_ctx *cx, const zerg_conf_node *n, const zg_up_server *dflt,
                         zerg_upstream *u)
{
    const zerg_api *a = zg_up_api;
    int kind = a->node_kind(cx, n);
    if (kind != ZERG_NODE_SEQ && kind != ZERG_NODE_MAP && kind != ZERG_NODE_SCALAR)
        return a->conf_error(cx, n, "upstream %s: servers: expected a list of servers", u->name);
    size_t cnt = kind == ZERG_NODE_SEQ ? a->node_len(cx, n) : 1;
    if (cnt == 0 || cnt > ZERG_UPSTREAM_MAX_SERVERS)
        return a->conf_error(cx, n, "upstream %s: expected a list of 1 to %d servers", u->name,
                             ZERG_UPSTREAM_MAX_SERVERS);
    u->servers = a->conf_alloc(cx, cnt * sizeof(*u->servers));
    if (!u->servers)
        return a->conf_error(cx, n, "out of memory");
    for (size_t i = 0; i < cnt; i++)
        if (parse_server(cx, kind == ZERG_NODE_SEQ ? a->node_item(cx, n, i) : n, dflt,
                         &u->servers[i]) != 0)
            return -1;
    u->nservers = cnt;
    return 0;
}

/* ---- health_check -------------------------------------------------------- */

static const zerg_directive hc_directives[] = {
    {"interval", ZERG_CONF_MSEC, offsetof(zg_up_hc_conf, interval), NULL, 10, 86400000},
    {"timeout", ZERG_CONF_MSEC, offsetof(zg_up_hc_conf, timeout), NULL, 1, 3600000},
    {"rise", ZERG_CONF_INT, offsetof(zg_up_hc_conf, rise), NULL, 1, 1000},
    {"fall", ZERG_CONF_INT, offsetof(zg_up_hc_conf, fall), NULL, 1, 1000},
    {"send", ZERG_CONF_STR, offsetof(zg_up_hc_conf, send), NULL, 0, 0},
    {"expect", ZERG_CONF_STR, offsetof(zg_up_hc_conf, expect), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};

static int parse_hc(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    zg_up_hc_conf *hc = field;
    const zerg_api *a = zg_up_api;
    if (a->node_kind(cx, n) == ZERG_NODE_SCALAR) /* health_check: false / true */
        return a->conf_bool(cx, n, &hc->enabled);
    if (a->node_kind(cx, n) != ZERG_NODE_MAP)
        return a->conf_error(cx, n, "health_check: expected a mapping");
    if (a->conf_apply(cx, n, hc_directives, hc) != 0)
        return -1;
    if (hc->expect && strlen(hc->expect) > ZG_UP_EXPECT_MAX)
        return a->conf_error(cx, n, "health_check: expect is longer than %d bytes",
                             ZG_UP_EXPECT_MAX);
    if (hc->send && !*hc->send)
        hc->send = NULL;
    if (hc->expect && !*hc->expect)
        hc->expect = NULL;
    hc->enabled = 1;
    return 0;
}

/* ---- the group ------------------------------------------------------------ */

static int parse_balance(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    static const struct {
        const char *name;
        int method;
    } names[] = {
        {"round_robin", ZG_UP_RR},       {"roundrobin", ZG_UP_RR}, {"least_conn", ZG_UP_LEAST_CONN},
        {"leastconn", ZG_UP_LEAST_CONN}, {"hash", ZG_UP_HASH},     {"source", ZG_UP_HASH},
        {"random", ZG_UP_RANDOM},
    };
    const char *s = zg_up_api->node_scalar(cx, n);
    for (size_t i = 0; s && i < sizeof(names) / sizeof(names[0]); i++)
        if (!strcmp(s, names[i].name)) {
            *(int *)field = names[i].method;
            return 0;
        }
    return zg_up_api->conf_error(
        cx, n, "balance: unknown \"%s\" (round_robin, least_conn, hash, random)", s ? s : "");
}

static int keep_node(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    (void)cx;
    *(const zerg_conf_node **)field = n;
    return 0;
}

static int parse_hash_key(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    const char *s = zg_up_api->node_scalar(cx, n);
    if (!s || s[0] != '$' || !s[1])
        return zg_up_api->conf_error(cx, n, "hash_key: expected a $variable");
    *(char **)field = zg_up_api->conf_strdup(cx, s);
    return *(char **)field ? 0 : -1;
}

/* The keys of a group mapping: servers is parsed last, once the group's
 * max_fails and fail_timeout (its servers' defaults) are known. */
typedef struct group_keys {
    int balance;
    char *hash_key;
    zg_up_hc_conf hc;
    zg_up_server dflt;
    const zerg_conf_node *servers;
} group_keys;

#define KEY(f) offsetof(group_keys, f)

static const zerg_directive group_directives[] = {
    {"servers", ZERG_CONF_CUSTOM, KEY(servers), keep_node, 0, 0},
    {"balance", ZERG_CONF_CUSTOM, KEY(balance), parse_balance, 0, 0},
    {"hash_key", ZERG_CONF_CUSTOM, KEY(hash_key), parse_hash_key, 0, 0},
    {"max_fails", ZERG_CONF_INT, KEY(dflt.max_fails), NULL, 0, ZG_UP_MAX_FAILS_MAX},
    {"fail_timeout", ZERG_CONF_MSEC, KEY(dflt.fail_timeout), NULL, 1, ZG_UP_FAIL_TIMEOUT_MAX},
    {"health_check", ZERG_CONF_CUSTOM, KEY(hc), parse_hc, 0, 0},
    ZERG_DIRECTIVE_END,
};

/* A group is a list of servers, or a mapping of group_directives. */
static int parse_group(zerg_conf_ctx *cx, const zerg_conf_node *node, zerg_upstream *u)
{
    const zerg_api *a = zg_up_api;
    group_keys g = {
        .hc = {.interval = 2000, .timeout = 1000, .rise = 2, .fall = 3},
        .dflt = {.weight = 1, .max_fails = 1, .fail_timeout = 10000},
        .servers = node,
    };
    if (a->node_kind(cx, node) == ZERG_NODE_MAP) {
        g.servers = NULL;
        if (a->conf_apply(cx, node, group_directives, &g) != 0)
            return -1;
        if (!g.servers)
            return a->conf_error(cx, node, "upstream %s: servers is required", u->name);
    }
    u->balance = g.balance;
    u->hash_key = g.balance == ZG_UP_HASH ? (g.hash_key ? g.hash_key : "$remote_addr") : NULL;
    u->hc = g.hc;
    return parse_servers(cx, g.servers, &g.dflt, u);
}

/* Cross-key rules, then what the group derives: the hash ring, each
 * worker's round robin weights, the shared slots. */
static int derive(zerg_conf_ctx *cx, const zerg_conf_node *node, zerg_upstream *u)
{
    const zerg_api *a = zg_up_api;
    size_t primaries = 0;
    for (size_t i = 0; i < u->nservers; i++)
        primaries += !u->servers[i].backup;
    if (primaries == 0)
        return a->conf_error(
            cx, node, "upstream %s: every server is a backup: at least one must not be", u->name);
    if (u->hc.enabled && u->hc.timeout >= u->hc.interval)
        u->hc.timeout = u->hc.interval > 1 ? u->hc.interval - 1 : 1;
    if (u->balance == ZG_UP_HASH) {
        size_t cap = zg_up_ring_size(u);
        u->ring = a->conf_alloc(cx, cap * sizeof(*u->ring));
        if (!u->ring)
            return a->conf_error(cx, node, "upstream %s: out of memory for the hash ring", u->name);
        u->ring_n = zg_up_ring_build(u, u->ring, cap);
    }
    u->cur_weight = a->conf_alloc(cx, u->nservers * sizeof(*u->cur_weight));
    u->shm = a->conf_shm(cx, u->nservers * sizeof(*u->shm));
    if (!u->cur_weight || !u->shm)
        return a->conf_error(cx, node, "upstream %s: cannot map shared memory for its state",
                             u->name);
    return 0;
}

zerg_upstream *zg_up_conf(zerg_conf_ctx *cx, const zerg_conf_node *node, const char *name)
{
    const zerg_api *a = zg_up_api;
    zerg_upstream *u = a->conf_alloc(cx, sizeof(*u));
    if (!u) {
        a->conf_error(cx, node, "out of memory");
        return NULL;
    }
    u->name = a->conf_strdup(cx, name ? name : "");
    if (!u->name || parse_group(cx, node, u) != 0 || derive(cx, node, u) != 0)
        return NULL;
    return u;
}
