/* modules/http/http_conf.c - the `http:` section of a server block: the
 * directive tables composed from each feature's rows, the core's own rows
 * and parsers (locations, headers, error pages), the helpers the features'
 * parsers share, and the derived tables built in conf_done. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "http2.h"
#include "http_access.h"
#include "http_autoindex.h"
#include "http_cache.h"
#include "http_limit.h"
#include "http_log.h"
#include "http_metrics.h"
#include "http_proxy.h"
#include "http_redirect.h"
#include "http_static.h"

static int http_is_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c) != NULL);
}

int http_check_header(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *name,
                      const char *value)
{
    if (!*name)
        return http_api->conf_error(cx, n, "empty header name");
    for (const char *p = name; *p; p++)
        if (!http_is_tchar((unsigned char)*p))
            return http_api->conf_error(cx, n, "invalid header name \"%s\"", name);
    for (const char *p = value; *p; p++)
        if ((unsigned char)*p < 0x20 && *p != '\t')
            return http_api->conf_error(cx, n, "header \"%s\": control byte in its value", name);
    return 0;
}

void *http_map_array(zerg_conf_ctx *cx, const zerg_conf_node *node, size_t elem, size_t *n,
                     const char *what, http_map_item_fn item, void *arg)
{
    if (http_api->node_kind(cx, node) != ZERG_NODE_MAP) {
        http_api->conf_error(cx, node, "%s", what);
        return NULL;
    }
    *n = http_api->node_len(cx, node);
    void *arr = http_api->conf_alloc(cx, (*n ? *n : 1) * elem);
    for (size_t i = 0; arr && i < *n; i++) {
        const zerg_conf_node *v = http_api->node_item(cx, node, i);
        if (item(cx, arr, i, http_api->node_key(cx, node, i), v, http_api->node_scalar(cx, v),
                 arg) < 0)
            return NULL;
    }
    return arr;
}

/* A header of a list (arg: the directive, for messages; add_header leaves
 * Content-Type to the MIME types; a request may carry a Date). */
static int http_header_item(zerg_conf_ctx *cx, void *arr, size_t i, const char *k,
                            const zerg_conf_node *v, const char *val, void *arg)
{
    const char *key = arg;
    http_header_kv *h = (http_header_kv *)arr + i;
    if (!k || !val)
        return http_api->conf_error(cx, v, "%s: values must be scalars", key);
    if (http_check_header(cx, v, k, val))
        return -1;
    if (!strcasecmp(k, "Content-Length") || !strcasecmp(k, "Transfer-Encoding") ||
        !strcasecmp(k, "Connection") ||
        (strcmp(key, "proxy_set_header") && !strcasecmp(k, "Date")) ||
        (!strcmp(key, "add_header") && !strcasecmp(k, "Content-Type")))
        return http_api->conf_error(cx, v, "%s: %s is set by the server", key, k);
    h->name = http_api->conf_strdup(cx, k);
    h->value = http_api->conf_strdup(cx, val);
    return h->name && h->value ? 0 : -1;
}

/* { Name: value, ... }: return's headers, a location's add_header and
 * proxy_set_header (key is the directive) */
int http_parse_header_list(zerg_conf_ctx *cx, const zerg_conf_node *node, http_header_list *list,
                           const char *key)
{
    char what[64];
    snprintf(what, sizeof(what), "%s: expected a mapping of name: value", key);
    list->items = http_map_array(cx, node, sizeof(http_header_kv), &list->n, what, http_header_item,
                                 (void *)key);
    return list->items ? 0 : -1;
}

static int http_parse_add_header(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    return http_parse_header_list(cx, node, field, "add_header");
}

char *http_file_path(zerg_conf_ctx *cx, const char *uri, size_t *len)
{
    size_t ul = uri ? strlen(uri) : 0;
    if (!ul || uri[0] != '/' || uri[ul - 1] == '/' || strpbrk(uri, "?#"))
        return NULL;
    char *norm = http_api->conf_alloc(cx, ul + 2);
    return norm && http_path_normalize(uri, ul, norm, ul + 2, len) == 0 ? norm : NULL;
}

/* The server block's and the locations' tables, composed at load from the
 * rows each feature declares in its own file (as nginx modules own their
 * commands): http_conf_compose. */
#define HTTP_DIRECTIVES_MAX 64
zerg_directive http_directives[HTTP_DIRECTIVES_MAX];
static zerg_directive http_location_directives[HTTP_DIRECTIVES_MAX];

static const zerg_directive http_core_location_directives[] = {
    {"path", ZERG_CONF_STR, offsetof(http_location, path), NULL, 0, 0},
    {"status", ZERG_CONF_BOOL, offsetof(http_location, status), NULL, 0, 0},
    {"add_header", ZERG_CONF_CUSTOM, offsetof(http_location, add_header), http_parse_add_header, 0,
     0},
    ZERG_DIRECTIVE_END,
};

static int http_parse_locations(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_srv *s = HTTP_CONTAINER(field, http_srv, locs);
    if (http_api->node_kind(cx, node) != ZERG_NODE_SEQ)
        return http_api->conf_error(cx, node, "locations: expected a sequence of mappings");
    size_t n = http_api->node_len(cx, node);
    s->locs = http_api->conf_alloc(cx, (n ? n : 1) * sizeof(http_location));
    if (!s->locs)
        return -1;
    s->nlocs = n;
    for (size_t i = 0; i < n; i++) {
        const zerg_conf_node *item = http_api->node_item(cx, node, i);
        http_location *l = &s->locs[i];
        l->root_fd = -1;
        if (http_api->node_kind(cx, item) != ZERG_NODE_MAP)
            return http_api->conf_error(cx, item, "locations: each item must be a mapping");
        if (http_api->conf_apply(cx, item, http_location_directives, l))
            return -1;
        if (!l->path || (l->path[0] != '/' && !(l->path[0] == '=' && l->path[1] == '/')))
            return http_api->conf_error(cx, item,
                                        "location: path must start with / (or =/ for exact)");
        l->exact = l->path[0] == '=';
        l->match = l->path + l->exact;
        l->match_len = strlen(l->match);
        int kinds = (l->root != NULL) + (l->alias != NULL) + (l->ret != NULL) + (l->status != 0) +
                    (l->proxy != NULL);
        if (kinds != 1)
            return http_api->conf_error(
                cx, item,
                "location %s: needs exactly one of root, alias, return, status, proxy_pass",
                l->path);
        if (l->alias) {
            /* the part after the prefix names the file under the alias */
            if (l->exact || l->match[l->match_len - 1] != '/')
                return http_api->conf_error(
                    cx, item, "location %s: alias needs a prefix location ending in /", l->path);
            l->root = l->alias;
        }
        l->kind = l->root    ? HTTP_LOC_STATIC
                  : l->ret   ? HTTP_LOC_RETURN
                  : l->proxy ? HTTP_LOC_PROXY
                             : HTTP_LOC_STATUS;
        if (l->expires && l->kind != HTTP_LOC_STATIC)
            return http_api->conf_error(cx, item,
                                        "location %s: expires is for files (root or alias); "
                                        "a return sets its own headers",
                                        l->path);
        for (size_t k = 0; k < i; k++)
            if (!strcmp(s->locs[k].path, l->path))
                return http_api->conf_error(cx, item, "location %s: duplicate path", l->path);
    }
    return 0;
}

/* error_page: { 404: /404.html, 503: /busy.html } */
static int http_error_page_item(zerg_conf_ctx *cx, void *arr, size_t i, const char *k,
                                const zerg_conf_node *v, const char *uri, void *arg)
{
    http_error_page *pages = arr;
    char *end;
    long st = k ? strtol(k, &end, 10) : 0;
    if (!k || !*k || *end || st < 400 || st > 599)
        return http_api->conf_error(cx, v, "error_page: \"%s\" is not a status 400..599",
                                    k ? k : "");
    for (size_t j = 0; j < i; j++)
        if (pages[j].status == st)
            return http_api->conf_error(cx, v, "error_page: %ld appears twice", st);
    size_t nl;
    char *norm = http_file_path(cx, uri, &nl);
    if (!norm)
        return http_api->conf_error(cx, v, "error_page %ld: expected a path like /404.html", st);
    pages[i] = (http_error_page){.status = (int)st, .uri = norm, .len = nl};
    return 0;
}

static int http_parse_error_pages(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_srv *s = HTTP_CONTAINER(field, http_srv, error_pages);
    s->error_pages = http_map_array(cx, node, sizeof(http_error_page), &s->nerror_pages,
                                    "error_page: expected a mapping of status: /path",
                                    http_error_page_item, NULL);
    return s->error_pages ? 0 : -1;
}

int http_conf_is_off(const char *v)
{
    return !strcmp(v, "off") || !strcmp(v, "false") || !strcmp(v, "no") || !*v;
}

static int http_parse_server_header(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    char **out = field;
    const char *v = http_api->node_scalar(cx, node);
    if (!v)
        return http_api->conf_error(cx, node, "server_header: expected a string or off");
    if (http_conf_is_off(v)) {
        *out = NULL;
        return 0;
    }
    if (http_check_header(cx, node, "Server", v))
        return -1;
    *out = http_api->conf_strdup(cx, v);
    return 0;
}

static const zerg_directive http_core_server_directives[] = {
    {"server_name", ZERG_CONF_STR_LIST, offsetof(http_srv, server_name), NULL, 0, 0},
    {"server_header", ZERG_CONF_CUSTOM, offsetof(http_srv, server_header), http_parse_server_header,
     0, 0},
    {"keepalive_timeout", ZERG_CONF_MSEC, offsetof(http_srv, keepalive_timeout), NULL, 0, 0},
    {"keepalive_requests", ZERG_CONF_INT, offsetof(http_srv, keepalive_requests), NULL, 1,
     INT32_MAX},
    {"client_header_timeout", ZERG_CONF_MSEC, offsetof(http_srv, client_header_timeout), NULL, 1,
     INT32_MAX},
    {"client_body_timeout", ZERG_CONF_MSEC, offsetof(http_srv, client_body_timeout), NULL, 1,
     INT32_MAX},
    {"send_timeout", ZERG_CONF_MSEC, offsetof(http_srv, send_timeout), NULL, 1, INT32_MAX},
    {"client_max_body_size", ZERG_CONF_SIZE, offsetof(http_srv, client_max_body_size), NULL, 0, 0},
    {"large_client_header_buffers", ZERG_CONF_SIZE, offsetof(http_srv, large_client_header_buffers),
     NULL, 256, 1 << 20},
    {"max_uri_length", ZERG_CONF_SIZE, offsetof(http_srv, max_uri_length), NULL, 64, 1 << 20},
    {"max_headers", ZERG_CONF_INT, offsetof(http_srv, max_headers), NULL, 1, HTTP_MAX_HDRS},
    {"locations", ZERG_CONF_CUSTOM, offsetof(http_srv, locs), http_parse_locations, 0, 0},
    {"error_page", ZERG_CONF_CUSTOM, offsetof(http_srv, error_pages), http_parse_error_pages, 0, 0},
    ZERG_DIRECTIVE_END,
};

/* Composes the tables from each feature's rows. */
static int http_compose(zerg_directive *out, const zerg_directive *const *parts, size_t nparts)
{
    size_t n = 0;
    for (size_t i = 0; i < nparts; i++)
        for (const zerg_directive *d = parts[i]; d->key; d++) {
            if (n + 1 == HTTP_DIRECTIVES_MAX)
                return -1;
            out[n++] = *d;
        }
    out[n] = (zerg_directive)ZERG_DIRECTIVE_END;
    return 0;
}

int http_conf_compose(void)
{
    static const zerg_directive *const server[] = {
        http_core_server_directives,    http_static_server_directives, http_cache_server_directives,
        http_log_server_directives,     http_proxy_server_directives,  http_limit_server_directives,
        http_metrics_server_directives, http2_server_directives,
    };
    static const zerg_directive *const location[] = {
        http_core_location_directives,      http_static_location_directives,
        http_autoindex_location_directives, http_redirect_location_directives,
        http_access_location_directives,    http_proxy_location_directives,
        http_limit_location_directives,
    };
    return http_compose(http_directives, server, sizeof(server) / sizeof(server[0])) ||
                   http_compose(http_location_directives, location,
                                sizeof(location) / sizeof(location[0]))
               ? -1
               : 0;
}

int http_conf_init(zerg_conf_ctx *cx, void *conf)
{
    http_srv *s = conf;
    s->server_header = http_api->conf_strdup(cx, "zerg");
    s->keepalive_timeout = 75000;
    s->keepalive_requests = 1000;
    s->client_header_timeout = 60000;
    s->client_body_timeout = 60000;
    s->send_timeout = 60000;
    s->client_max_body_size = 1 << 20;
    s->large_client_header_buffers = 32 << 10;
    s->max_uri_length = 0; /* unset: see http_conf_done */
    s->max_headers = 100;
    s->file_buffer = 256 << 10;
    s->file_mmap_max = 4 << 20;
    s->sendfile = 1;
    s->sendfile_min = 64 << 10;
    s->open_file_cache_valid = 0;
    s->default_type = http_api->conf_strdup(cx, "application/octet-stream");
    s->etag = 1;
    s->access_log.format = HTTP_LOG_COMBINED;
    s->access_log.buffer = 64 << 10;
    s->access_log.flush = 1000;
    return 0;
}

/* "Name: value\r\n" for each header of list; *len gets the length. */
static char *http_header_lines(zerg_conf_ctx *cx, const http_header_list *list, size_t *len)
{
    size_t cap = 1;
    for (size_t i = 0; i < list->n; i++)
        cap += strlen(list->items[i].name) + strlen(list->items[i].value) + 4;
    char *buf = http_api->conf_alloc(cx, cap);
    size_t o = 0;
    if (!buf)
        return NULL;
    for (size_t i = 0; i < list->n; i++)
        o += (size_t)snprintf(buf + o, cap - o, "%s: %s\r\n", list->items[i].name,
                              list->items[i].value);
    *len = o;
    return buf;
}

static char *http_build_ret_head(zerg_conf_ctx *cx, const zerg_conf_node *section, http_location *l,
                                 size_t *len)
{
    http_return *r = l->ret;
    size_t hl;
    char *hdrs = http_header_lines(cx, &r->headers, &hl);
    size_t al = http_adds_headers((int)r->status) ? l->add_head_len : 0;
    size_t cap = 128 + hl + al + (r->location ? strlen(r->location) + 16 : 0);
    int has_ct = 0;
    for (size_t i = 0; i < r->headers.n; i++)
        if (!strcasecmp(r->headers.items[i].name, "Content-Type"))
            has_ct = 1;
    char *buf = http_api->conf_alloc(cx, cap);
    if (!hdrs || !buf)
        return NULL;
    memcpy(buf, hdrs, hl);
    memcpy(buf + hl, l->add_head, al);
    size_t o = hl + al;
    if (r->location && strchr(r->location, '$')) { /* expanded per request */
        if (http_tmpl_parse(cx, section, r->location, &l->ret_location, HTTP_TMPL_REDIRECT,
                            "return location") < 0)
            return NULL;
    } else if (r->location) {
        o += (size_t)snprintf(buf + o, cap - o, "Location: %s\r\n", r->location);
    }
    l->ret_body_len = r->body ? strlen(r->body) : 0;
    int nobody = r->status < 200 || r->status == 204 || r->status == 304;
    if (nobody)
        l->ret_body_len = 0;
    if (!has_ct && l->ret_body_len)
        o += (size_t)snprintf(buf + o, cap - o, "Content-Type: text/plain\r\n");
    if (!nobody)
        o += (size_t)snprintf(buf + o, cap - o, "Content-Length: %zu\r\n", l->ret_body_len);
    o += (size_t)snprintf(buf + o, cap - o, "\r\n");
    *len = o;
    return buf;
}

int http_conf_done(zerg_conf_ctx *cx, const zerg_conf_node *section, void *conf)
{
    http_srv *s = conf;
    if (s->server_header) {
        size_t n = strlen(s->server_header) + 11;
        s->server_line = http_api->conf_alloc(cx, n);
        if (!s->server_line)
            return -1;
        snprintf(s->server_line, n, "Server: %s\r\n", s->server_header);
        s->server_line_len = strlen(s->server_line);
    } else {
        s->server_line = "";
        s->server_line_len = 0;
    }
    if (ZERG_API_HAS(http_api, conf_server_names) &&
        http_api->conf_server_names(cx, &s->server_name) < 0)
        return -1; /* server_name is a key of the server block now */
    if (http_server_names_check(cx, section, s) < 0)
        return -1;
    /* unset: nginx's 8k, but never more than the head may hold, so setting
     * only large_client_header_buffers below 8k is a valid config */
    if (s->max_uri_length == 0)
        s->max_uri_length =
            s->large_client_header_buffers < (8 << 10) ? s->large_client_header_buffers : (8 << 10);
    if (s->max_uri_length > s->large_client_header_buffers)
        return http_api->conf_error(cx, section,
                                    "max_uri_length must not exceed large_client_header_buffers");
    s->limits.max_head = s->large_client_header_buffers;
    s->limits.max_line = s->max_uri_length + 32; /* method, spaces, version */
    s->limits.max_headers = (size_t)s->max_headers;
    for (size_t i = 0; i < s->nlocs; i++) {
        http_location *l = &s->locs[i];
        l->add_head = http_header_lines(cx, &l->add_header, &l->add_head_len);
        if (!l->add_head)
            return -1;
        if (l->kind == HTTP_LOC_RETURN)
            l->ret_head = http_build_ret_head(cx, section, l, &l->ret_head_len);
        if (l->kind == HTTP_LOC_RETURN && !l->ret_head)
            return -1;
        if (l->kind == HTTP_LOC_STATIC && l->index.n == 0) {
            l->index.n = 1;
            l->index.items = http_api->conf_alloc(cx, sizeof(char *));
            if (!l->index.items)
                return -1;
            l->index.items[0] = http_api->conf_strdup(cx, "index.html");
        }
        if (l->kind == HTTP_LOC_STATIC)
            for (size_t k = 0; k < l->index.n; k++)
                if (!*l->index.items[k] || strchr(l->index.items[k], '/'))
                    return http_api->conf_error(
                        cx, section, "location %s: index names are plain file names", l->path);
    }
    for (size_t i = 0; i < s->nlocs; i++) {
        http_location *l = &s->locs[i];
        if (!l->fallback)
            continue;
        l->fallback_loc = http_find_location(s, l->fallback, l->fallback_len);
        if (l->kind != HTTP_LOC_STATIC || !l->fallback_loc ||
            l->fallback_loc->kind != HTTP_LOC_STATIC)
            return http_api->conf_error(cx, section,
                                        "location %s: fallback needs root or alias here and %s "
                                        "under a root or alias location",
                                        l->path, l->fallback);
    }
    for (size_t i = 0; i < s->nerror_pages; i++) {
        http_error_page *p = &s->error_pages[i];
        p->loc = http_find_location(s, p->uri, p->len);
        if (!p->loc || p->loc->kind != HTTP_LOC_STATIC)
            return http_api->conf_error(cx, section,
                                        "error_page %d: %s is not under a root or alias "
                                        "location of this server",
                                        p->status, p->uri);
    }
    int want_peer = s->access_log.path != NULL;
    for (size_t i = 0; i < s->nlocs; i++) {
        if (http_proxy_conf_done(cx, section, s, &s->locs[i], &want_peer) < 0)
            return -1;
        s->has_proxy |= s->locs[i].kind == HTTP_LOC_PROXY;
    }
    if (http_limit_conf_done(cx, section, s, &want_peer) < 0)
        return -1;
    for (size_t i = 0; i < s->nlocs; i++) /* the exact local address for $host */
        want_peer |= s->locs[i].allow.n || s->locs[i].deny.n || s->locs[i].ret_location.n;
    if (want_peer)
        http_api->conf_want_peer_addr(cx);
    return http_metrics_conf_done(cx, s);
}

const http_location *http_find_location(const http_srv *s, const char *path, size_t len)
{
    const http_location *best = NULL;
    for (size_t i = 0; i < s->nlocs; i++) {
        const http_location *l = &s->locs[i];
        if (l->exact) {
            if (l->match_len == len && memcmp(l->match, path, len) == 0)
                return l;
            continue;
        }
        if (l->match_len <= len && memcmp(l->match, path, l->match_len) == 0 &&
            (!best || l->match_len > best->match_len))
            best = l;
    }
    return best;
}
