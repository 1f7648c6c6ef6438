/* modules/http/http_limit_conf.c - the limit keys: limit_zones (a key made
 * of $variables, a rate, a bound on keys) in a server block, limit_req and
 * limit_conn rules in its locations, and each request's key value. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http_limit.h"

static http_limit_zone *http_limit_named; /* the config's zones so far */

void http_limit_conf_start(void)
{
    http_limit_named = NULL;
}

static http_limit_zone *http_limit_zone_named(const char *name)
{
    for (http_limit_zone *z = http_limit_named; z; z = z->next)
        if (!strcmp(z->name, name))
            return z;
    return NULL;
}

/* The block's own limit state, made on first use. */
static http_limit_srv *http_limit_srv_of(zerg_conf_ctx *cx, http_srv *s)
{
    if (!s->limit)
        s->limit = http_api->conf_alloc(cx, sizeof(*s->limit));
    return s->limit;
}

/* rate: "10r/s" or "30r/m" (nginx's), kept in milli-requests per second. */
static int http_parse_rate(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_limit_zone *z = HTTP_CONTAINER(field, http_limit_zone, rate);
    const char *v = http_api->node_scalar(cx, node);
    char *end;
    unsigned long long n = v ? strtoull(v, &end, 10) : 0;
    if (!v || end == v || n == 0 || n > 1000000 || (strcmp(end, "r/s") && strcmp(end, "r/m")))
        return http_api->conf_error(cx, node,
                                    "rate: expected requests per second or minute "
                                    "(10r/s, 30r/m)");
    z->rate = end[2] == 's' ? n * 1000 : n * 1000 / 60;
    if (z->rate == 0)
        z->rate = 1;
    z->rate_str = http_api->conf_strdup(cx, v);
    return 0;
}

static const zerg_directive http_limit_zone_directives[] = {
    {"key", ZERG_CONF_STR, offsetof(http_limit_zone, key), NULL, 0, 0},
    {"rate", ZERG_CONF_CUSTOM, offsetof(http_limit_zone, rate), http_parse_rate, 0, 0},
    {"keys", ZERG_CONF_INT, offsetof(http_limit_zone, nkeys), NULL, 1, 1 << 24},
    ZERG_DIRECTIVE_END,
};

static int http_name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

/* key: text and $remote_addr, $server_name, $host, $http_<name>. */
static int http_limit_key_parse(zerg_conf_ctx *cx, const zerg_conf_node *n, http_limit_zone *z)
{
    const char *s = z->key;
    size_t len = strlen(s);
    z->parts = http_api->conf_alloc(cx, (2 * len + 1) * sizeof(*z->parts));
    if (!z->parts)
        return -1;
    for (size_t i = 0; i < len;) {
        size_t j = i + 1;
        if (s[i] != '$') {
            while (j < len && s[j] != '$')
                j++;
            z->parts[z->nparts++] = (http_limit_key_part){HTTP_LK_TEXT, s + i, j - i};
            i = j;
            continue;
        }
        while (j < len && http_name_char(s[j]))
            j++;
        const char *name = s + i + 1;
        size_t nl = j - i - 1;
        http_limit_key_part p = {0};
        if (nl == 11 && !memcmp(name, "remote_addr", 11))
            p.var = HTTP_LK_REMOTE_ADDR;
        else if (nl == 11 && !memcmp(name, "server_name", 11))
            p.var = HTTP_LK_SERVER_NAME;
        else if (nl == 4 && !memcmp(name, "host", 4))
            p.var = HTTP_LK_HOST;
        else if (nl > 5 && !memcmp(name, "http_", 5)) {
            char *h = http_api->conf_alloc(cx, nl - 4);
            if (!h)
                return -1;
            for (size_t k = 0; k < nl - 5; k++) /* as nginx: $http_x_user is X-User */
                h[k] = name[5 + k] == '_' ? '-' : name[5 + k];
            p = (http_limit_key_part){HTTP_LK_HEADER, h, nl - 5};
        } else
            return http_api->conf_error(cx, n,
                                        "limit_zones %s: key: unknown variable at \"%.20s\" "
                                        "(known: $remote_addr, $server_name, $host, $http_<name>)",
                                        z->name, s + i);
        z->parts[z->nparts++] = p;
        i = j;
    }
    return 0;
}

static int http_limit_zone_item(zerg_conf_ctx *cx, void *arr, size_t i, const char *name,
                                const zerg_conf_node *v, const char *value, void *arg)
{
    http_limit_zone *z = &((http_limit_zone *)arr)[i];
    (void)value;
    (void)arg;
    if (!name || !*name || strpbrk(name, " \"\\{}"))
        return http_api->conf_error(cx, v, "limit_zones: \"%s\" is not a name", name ? name : "");
    if (http_limit_zone_named(name))
        return http_api->conf_error(cx, v,
                                    "limit_zones: \"%s\" is declared twice (zone names "
                                    "are global)",
                                    name);
    if (http_api->node_kind(cx, v) != ZERG_NODE_MAP)
        return http_api->conf_error(cx, v, "limit_zones %s: expected a mapping (key, rate, keys)",
                                    name);
    z->name = http_api->conf_strdup(cx, name);
    z->nkeys = 16384;
    if (!z->name || http_api->conf_apply(cx, v, http_limit_zone_directives, z) < 0)
        return -1;
    if (!z->key || !*z->key)
        return http_api->conf_error(cx, v, "limit_zones %s: needs a key", name);
    if (http_limit_key_parse(cx, v, z) < 0)
        return -1;
    z->next = http_limit_named;
    http_limit_named = z;
    return 0;
}

static int http_parse_limit_zones(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_srv *s = HTTP_CONTAINER(field, http_srv, limit);
    http_limit_srv *ls = http_limit_srv_of(cx, s);
    if (!ls)
        return -1;
    ls->zones = http_map_array(cx, node, sizeof(http_limit_zone), &ls->nzones,
                               "limit_zones: expected a mapping of name: {key, rate, keys}",
                               http_limit_zone_item, NULL);
    return ls->zones ? 0 : -1;
}

const zerg_directive http_limit_server_directives[] = {
    {"limit_zones", ZERG_CONF_CUSTOM, offsetof(http_srv, limit), http_parse_limit_zones, 0, 0},
    ZERG_DIRECTIVE_END,
};

/* ---- a location's rules ---------------------------------------------------- */

static const zerg_directive http_limit_req_directives[] = {
    {"zone", ZERG_CONF_STR, offsetof(http_limit_rule, zone_name), NULL, 0, 0},
    {"burst", ZERG_CONF_INT, offsetof(http_limit_rule, burst), NULL, 0, 1000000},
    {"delay", ZERG_CONF_INT, offsetof(http_limit_rule, delay), NULL, 0, 1000000},
    {"nodelay", ZERG_CONF_BOOL, offsetof(http_limit_rule, nodelay), NULL, 0, 0},
    {"status", ZERG_CONF_INT, offsetof(http_limit_rule, status), NULL, 400, 599},
    {"dry_run", ZERG_CONF_BOOL, offsetof(http_limit_rule, dry_run), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};

static const zerg_directive http_limit_conn_directives[] = {
    {"zone", ZERG_CONF_STR, offsetof(http_limit_rule, zone_name), NULL, 0, 0},
    {"max", ZERG_CONF_INT, offsetof(http_limit_rule, max), NULL, 1, 1000000},
    {"status", ZERG_CONF_INT, offsetof(http_limit_rule, status), NULL, 400, 599},
    {"dry_run", ZERG_CONF_BOOL, offsetof(http_limit_rule, dry_run), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};

/* A rule mapping, or a sequence of them, into rules (*n of them). */
static int http_parse_rules(zerg_conf_ctx *cx, const zerg_conf_node *node, http_limit_rule *rules,
                            size_t *n, const zerg_directive *d, const char *what)
{
    int seq = http_api->node_kind(cx, node) == ZERG_NODE_SEQ;
    size_t count = seq ? http_api->node_len(cx, node) : 1;
    if (count > HTTP_LIMIT_RULES)
        return http_api->conf_error(cx, node, "%s: at most %d rules", what, HTTP_LIMIT_RULES);
    for (size_t i = 0; i < count; i++) {
        const zerg_conf_node *item = seq ? http_api->node_item(cx, node, i) : node;
        http_limit_rule *r = &rules[i];
        if (http_api->node_kind(cx, item) != ZERG_NODE_MAP)
            return http_api->conf_error(cx, item,
                                        "%s: expected a mapping with zone (or a "
                                        "sequence of them)",
                                        what);
        r->delay = -1;
        r->node = item;
        if (http_api->conf_apply(cx, item, d, r) < 0)
            return -1;
        if (!r->zone_name)
            return http_api->conf_error(cx, item, "%s: needs a zone", what);
        if (d == http_limit_conn_directives && !r->max)
            return http_api->conf_error(cx, item, "%s: needs max", what);
        if (r->nodelay && r->delay >= 0)
            return http_api->conf_error(cx, item, "%s: delay or nodelay, not both", what);
        r->status = r->status ? r->status : 429;
    }
    *n = count;
    return 0;
}

static http_limit_loc *http_limit_loc_of(zerg_conf_ctx *cx, void *field)
{
    http_limit_loc **ll = field;
    if (!*ll)
        *ll = http_api->conf_alloc(cx, sizeof(**ll));
    return *ll;
}

static int http_parse_limit_req(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_limit_loc *ll = http_limit_loc_of(cx, field);
    return ll ? http_parse_rules(cx, node, ll->req, &ll->nreq, http_limit_req_directives,
                                 "limit_req")
              : -1;
}

static int http_parse_limit_conn(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_limit_loc *ll = http_limit_loc_of(cx, field);
    return ll ? http_parse_rules(cx, node, ll->conn, &ll->nconn, http_limit_conn_directives,
                                 "limit_conn")
              : -1;
}

const zerg_directive http_limit_location_directives[] = {
    {"limit_req", ZERG_CONF_CUSTOM, offsetof(http_location, limit), http_parse_limit_req, 0, 0},
    {"limit_conn", ZERG_CONF_CUSTOM, offsetof(http_location, limit), http_parse_limit_conn, 0, 0},
    ZERG_DIRECTIVE_END,
};

/* ---- conf_done ------------------------------------------------------------- */

/* The zones' shared memory, made by the master before the workers fork. */
static int http_limit_zones_map(zerg_conf_ctx *cx, http_limit_srv *ls)
{
    for (size_t i = 0; i < ls->nzones; i++) {
        http_limit_zone *z = &ls->zones[i];
        z->shm = http_api->conf_shm(cx, http_limit_shm_size(z->nkeys));
        if (!z->shm)
            return -1;
        http_limit_shm_init(z->shm, z->nkeys);
    }
    return 0;
}

/* Each rule's zone (declared in this block or an earlier one); what their
 * keys need from the request. */
static int http_limit_rules_resolve(zerg_conf_ctx *cx, http_location *l, http_limit_srv *ls,
                                    int *want_peer)
{
    http_limit_loc *ll = l->limit;
    for (size_t i = 0; i < ll->nreq + ll->nconn; i++) {
        int is_req = i < ll->nreq;
        http_limit_rule *r = is_req ? &ll->req[i] : &ll->conn[i - ll->nreq];
        const char *what = is_req ? "limit_req" : "limit_conn";
        r->zone = http_limit_zone_named(r->zone_name);
        if (!r->zone)
            return http_api->conf_error(cx, r->node,
                                        "location %s: %s: no zone \"%s\" in limit_zones of this "
                                        "or an earlier server block",
                                        l->path, what, r->zone_name);
        if (is_req && !r->zone->rate)
            return http_api->conf_error(cx, r->node,
                                        "location %s: limit_req: zone \"%s\" has no rate", l->path,
                                        r->zone_name);
        if (is_req && r->delay > r->burst)
            return http_api->conf_error(cx, r->node, "location %s: limit_req: delay above burst",
                                        l->path);
        for (size_t k = 0; k < r->zone->nparts; k++) {
            *want_peer |= r->zone->parts[k].var == HTTP_LK_REMOTE_ADDR;
            ls->want_fields |= r->zone->parts[k].var == HTTP_LK_HEADER;
        }
    }
    ls->rules = 1;
    return 0;
}

int http_limit_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, http_srv *s,
                         int *want_peer)
{
    if (s->limit && http_limit_zones_map(cx, s->limit) < 0)
        return -1;
    for (size_t i = 0; i < s->nlocs; i++) {
        if (!s->locs[i].limit)
            continue;
        http_limit_srv *ls = http_limit_srv_of(cx, s);
        if (!ls || http_limit_rules_resolve(cx, &s->locs[i], ls, want_peer) < 0)
            return -1;
    }
    return 0;
}

/* ---- a request's key ------------------------------------------------------- */

static size_t http_limit_header(http_conn *hc, const http_limit_key_part *p, char *o, size_t cap)
{
    for (uint32_t k = 0; k < hc->rq->nfields; k++) {
        const http_field *f = &hc->rq->fields[k];
        if (f->name.len == p->len && http_strncaseeq(http_hbuf(hc, f->name), p->text, p->len)) {
            size_t n = f->value.len < cap ? f->value.len : cap;
            memcpy(o, http_hbuf(hc, f->value), n);
            return n;
        }
    }
    return 0; /* absent: empty */
}

/* The peer's address bytes (IPv4 as 4, a v4-mapped IPv6 address folded to
 * them, other IPv6 as 16); other families as text. */
static size_t http_limit_addr_bytes(const struct sockaddr *sa, char *o, size_t cap)
{
    const void *a = NULL;
    size_t n = 0;
    if (sa && sa->sa_family == AF_INET) {
        a = &((const struct sockaddr_in *)sa)->sin_addr;
        n = 4;
    } else if (sa && sa->sa_family == AF_INET6) {
        const struct in6_addr *a6 = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        int mapped = IN6_IS_ADDR_V4MAPPED(a6);
        a = mapped ? (const void *)&a6->s6_addr[12] : (const void *)a6;
        n = mapped ? 4 : 16;
    }
    if (!a) {
        size_t got = http_addr_text(sa, o, cap, 0);
        return got < cap ? got : 0;
    }
    if (n > cap)
        return 0;
    memcpy(o, a, n);
    return n;
}

size_t http_limit_key(http_conn *hc, const http_limit_zone *z, char *buf, int as_text)
{
    size_t n = 0;
    for (size_t i = 0; i < z->nparts && n < HTTP_LIMIT_KEY_MAX; i++) {
        const http_limit_key_part *p = &z->parts[i];
        char *o = buf + n;
        size_t cap = HTTP_LIMIT_KEY_MAX - n, got = 0;
        socklen_t alen;
        switch (p->var) {
        case HTTP_LK_TEXT:
            got = p->len < cap ? p->len : cap;
            memcpy(o, p->text, got);
            break;
        case HTTP_LK_REMOTE_ADDR:
            if (as_text) {
                got = http_addr_text(http_api->conn_peer(hc->c, &alen), o, cap, 0);
                got = got < cap ? got : 0;
            } else {
                got = http_limit_addr_bytes(http_api->conn_peer(hc->c, &alen), o, cap);
            }
            break;
        case HTTP_LK_SERVER_NAME: /* nginx's: the block's first name */
            if (hc->srv->server_name.n) {
                got = strlen(hc->srv->server_name.items[0]);
                got = got < cap ? got : cap;
                memcpy(o, hc->srv->server_name.items[0], got);
            }
            break;
        case HTTP_LK_HOST:
            got = http_request_host(hc, o, cap);
            got = got < cap ? got : 0;
            break;
        default:
            got = http_limit_header(hc, p, o, cap);
            break;
        }
        n += got;
    }
    return n;
}
