/* zg_conf_parse.c - the directive engine: YAML node access, typed value
 * parsers, and tables of directives applied to mapping nodes. Errors always
 * carry file:line:column. */
#define _GNU_SOURCE
#include "zg_conf.h"
#include "zg_util.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

struct zg_arena_block {
    zg_arena_block *next;
    max_align_t data[];
};

static const yaml_node_t *ynode(const zerg_conf_node *n)
{
    return (const yaml_node_t *)n;
}

static const zerg_conf_node *cnode(const yaml_node_t *n)
{
    return (const zerg_conf_node *)n;
}

/* Copies src into dst (cap bytes, NUL-terminated, cut short if need be) with
 * control bytes written as \n, \r, \t or \xHH: a value echoed in an error
 * keeps the message on one line. */
static void put_escaped(char *dst, size_t cap, const char *src)
{
    size_t o = 0;
    for (const unsigned char *p = (const unsigned char *)src; *p && o + 1 < cap; p++) {
        char esc[5];
        size_t n = 1;
        esc[0] = (char)*p;
        if (*p == '\n' || *p == '\r' || *p == '\t')
            n = (size_t)snprintf(esc, sizeof(esc), "\\%c",
                                 *p == '\n'   ? 'n'
                                 : *p == '\r' ? 'r'
                                              : 't');
        else if (*p < 0x20 || *p == 0x7f)
            n = (size_t)snprintf(esc, sizeof(esc), "\\x%02x", *p);
        if (o + n >= cap)
            break;
        memcpy(dst + o, esc, n);
        o += n;
    }
    dst[o] = 0;
}

int zg_conf_error(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *fmt, ...)
{
    if (cx->failed)
        return -1; /* keep the first error: later ones are often its echo */
    cx->failed = 1;
    if (!cx->errlen)
        return -1;
    char msg[2048];
    int off = 0;
    if (!n)
        n = cx->server_node; /* e.g. a module's conf_done without its section */
    if (n)
        off = snprintf(msg, sizeof(msg), "%s:%zu:%zu: ", cx->file, ynode(n)->start_mark.line + 1,
                       ynode(n)->start_mark.column + 1);
    else
        off = snprintf(msg, sizeof(msg), "%s: ", cx->file);
    if (off >= 0 && (size_t)off < sizeof(msg) && cx->key)
        off += snprintf(msg + off, sizeof(msg) - (size_t)off, "%s: ", cx->key);
    if (off >= 0 && (size_t)off < sizeof(msg)) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(msg + off, sizeof(msg) - (size_t)off, fmt, ap);
        va_end(ap);
    }
    put_escaped(cx->err, cx->errlen, msg);
    return -1;
}

void *zg_conf_alloc(zerg_conf_ctx *cx, size_t size)
{
    zg_arena_block *b = calloc(1, sizeof(*b) + size);
    if (!b) {
        zg_conf_error(cx, NULL, "out of memory");
        return NULL;
    }
    b->next = cx->cfg->arena;
    cx->cfg->arena = b;
    return b->data;
}

void zg_conf_arena_free(zg_config *cfg)
{
    while (cfg->arena) {
        zg_arena_block *next = cfg->arena->next;
        free(cfg->arena);
        cfg->arena = next;
    }
}

char *zg_conf_strdup(zerg_conf_ctx *cx, const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = zg_conf_alloc(cx, n);
    if (p)
        memcpy(p, s, n);
    return p;
}

void *zg_conf_shm(zerg_conf_ctx *cx, size_t size)
{
    zg_shm *s = zg_conf_alloc(cx, sizeof(*s));
    if (!s)
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        zg_conf_error(cx, NULL, "cannot map %zu bytes of shared memory: %s", size, strerror(errno));
        return NULL;
    }
    s->ptr = p;
    s->size = size;
    s->next = cx->cfg->shm;
    cx->cfg->shm = s;
    return p;
}

void zg_conf_want_peer_addr(zerg_conf_ctx *cx)
{
    if (cx->server)
        cx->server->want_peer = 1;
}

int zg_node_kind(zerg_conf_ctx *cx, const zerg_conf_node *n)
{
    (void)cx;
    if (!n)
        return ZERG_NODE_NONE;
    switch (ynode(n)->type) {
    case YAML_SCALAR_NODE:
        return ZERG_NODE_SCALAR;
    case YAML_SEQUENCE_NODE:
        return ZERG_NODE_SEQ;
    case YAML_MAPPING_NODE:
        return ZERG_NODE_MAP;
    default:
        return ZERG_NODE_NONE;
    }
}

const char *zg_node_scalar(zerg_conf_ctx *cx, const zerg_conf_node *n)
{
    (void)cx;
    if (!n || ynode(n)->type != YAML_SCALAR_NODE)
        return NULL;
    return (const char *)ynode(n)->data.scalar.value;
}

size_t zg_node_len(zerg_conf_ctx *cx, const zerg_conf_node *n)
{
    (void)cx;
    if (!n)
        return 0;
    const yaml_node_t *y = ynode(n);
    if (y->type == YAML_SEQUENCE_NODE)
        return y->data.sequence.items.top - y->data.sequence.items.start;
    if (y->type == YAML_MAPPING_NODE)
        return y->data.mapping.pairs.top - y->data.mapping.pairs.start;
    return 0;
}

const zerg_conf_node *zg_node_item(zerg_conf_ctx *cx, const zerg_conf_node *n, size_t i)
{
    if (i >= zg_node_len(cx, n))
        return NULL;
    const yaml_node_t *y = ynode(n);
    int id = y->type == YAML_SEQUENCE_NODE ? y->data.sequence.items.start[i]
                                           : y->data.mapping.pairs.start[i].value;
    return cnode(yaml_document_get_node(cx->doc, id));
}

static const zerg_conf_node *node_key_node(zerg_conf_ctx *cx, const zerg_conf_node *n, size_t i)
{
    const yaml_node_t *y = ynode(n);
    if (!y || y->type != YAML_MAPPING_NODE || i >= zg_node_len(cx, n))
        return NULL;
    return cnode(yaml_document_get_node(cx->doc, y->data.mapping.pairs.start[i].key));
}

const char *zg_node_key(zerg_conf_ctx *cx, const zerg_conf_node *n, size_t i)
{
    return zg_node_scalar(cx, node_key_node(cx, n, i));
}

const zerg_conf_node *zg_node_get(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *key)
{
    size_t len = zg_node_len(cx, n);
    if (zg_node_kind(cx, n) != ZERG_NODE_MAP)
        return NULL;
    for (size_t i = 0; i < len; i++) {
        const char *k = zg_node_key(cx, n, i);
        if (k && strcmp(k, key) == 0)
            return zg_node_item(cx, n, i);
    }
    return NULL;
}

static const char *expect_scalar(zerg_conf_ctx *cx, const zerg_conf_node *n, const char *what)
{
    const char *s = zg_node_scalar(cx, n);
    if (!s)
        zg_conf_error(cx, n, "expected %s, got a %s", what,
                      zg_node_kind(cx, n) == ZERG_NODE_MAP ? "mapping" : "sequence");
    return s;
}

int zg_conf_size(zerg_conf_ctx *cx, const zerg_conf_node *n, uint64_t *out)
{
    const char *s = expect_scalar(cx, n, "a size (512, 16k, 1m, 1g)");
    if (!s)
        return -1;
    if (zg_parse_size(s, out) < 0)
        return zg_conf_error(cx, n, "bad size \"%s\": expected a number with k, m or g", s);
    return 0;
}

int zg_conf_msec(zerg_conf_ctx *cx, const zerg_conf_node *n, uint64_t *out)
{
    const char *s = expect_scalar(cx, n, "a duration (500ms, 60s, 10m, 1h)");
    if (!s)
        return -1;
    if (zg_parse_msec(s, out) < 0)
        return zg_conf_error(cx, n, "bad duration \"%s\": expected a number with ms, s, m, h or d",
                             s);
    return 0;
}

int zg_conf_int(zerg_conf_ctx *cx, const zerg_conf_node *n, int64_t min, int64_t max, int64_t *out)
{
    const char *s = expect_scalar(cx, n, "an integer");
    if (!s)
        return -1;
    if (zg_parse_int(s, out) < 0)
        return zg_conf_error(cx, n, "bad integer \"%s\"", s);
    if (max > min && (*out < min || *out > max))
        return zg_conf_error(cx, n, "%s is out of range (%lld..%lld)", s, (long long)min,
                             (long long)max);
    return 0;
}

int zg_conf_bool(zerg_conf_ctx *cx, const zerg_conf_node *n, int *out)
{
    const char *s = expect_scalar(cx, n, "true or false");
    if (!s)
        return -1;
    if (zg_parse_bool(s, out) < 0)
        return zg_conf_error(cx, n, "bad boolean \"%s\": expected true or false", s);
    return 0;
}

int zg_conf_addr(zerg_conf_ctx *cx, const zerg_conf_node *n, struct sockaddr_storage *out,
                 socklen_t *len)
{
    const char *s =
        expect_scalar(cx, n, "an address (\"host:port\", \"[::1]:port\", \"unix:/path\")");
    if (!s)
        return -1;
    char why[256];
    if (strncmp(s, "unix:", 5) == 0 && s[5] && s[5] != '/' && s[5] != '@') {
        const char *path = zg_conf_path(cx, s + 5); /* relative: from the prefix */
        if (!path)
            return -1;
        if (zg_unix_addr(path, out, len, why, sizeof(why)) < 0)
            return zg_conf_error(cx, n, "bad address \"%s\": %s", s, why);
        return 0;
    }
    if (zg_parse_addr(s, out, len, why, sizeof(why)) < 0)
        return zg_conf_error(cx, n, "bad address \"%s\": %s", s, why);
    return 0;
}

int zg_conf_str_list(zerg_conf_ctx *cx, const zerg_conf_node *n, zerg_str_list *out)
{
    int kind = zg_node_kind(cx, n);
    if (kind == ZERG_NODE_SCALAR) {
        out->n = 1;
        out->items = zg_conf_alloc(cx, sizeof(char *));
        return out->items && (out->items[0] = zg_conf_strdup(cx, zg_node_scalar(cx, n))) ? 0 : -1;
    }
    if (kind != ZERG_NODE_SEQ)
        return zg_conf_error(cx, n, "expected a string or a list of strings");
    out->n = zg_node_len(cx, n);
    out->items = zg_conf_alloc(cx, (out->n + 1) * sizeof(char *));
    if (!out->items)
        return -1;
    for (size_t i = 0; i < out->n; i++) {
        const char *s = expect_scalar(cx, zg_node_item(cx, n, i), "a string");
        if (!s || !(out->items[i] = zg_conf_strdup(cx, s)))
            return -1;
    }
    return 0;
}

static int check_range(zerg_conf_ctx *cx, const zerg_conf_node *n, const zerg_directive *d,
                       uint64_t v)
{
    if (d->max > d->min && ((int64_t)v < d->min || (int64_t)v > d->max))
        return zg_conf_error(cx, n, "%s is out of range (%lld..%lld)", zg_node_scalar(cx, n),
                             (long long)d->min, (long long)d->max);
    return 0;
}

static int apply_value(zerg_conf_ctx *cx, const zerg_conf_node *v, const zerg_directive *d,
                       void *base)
{
    void *field = (char *)base + d->offset;
    uint64_t u;
    switch (d->type) {
    case ZERG_CONF_STR: {
        const char *s = expect_scalar(cx, v, "a string");
        if (!s)
            return -1;
        return (*(char **)field = zg_conf_strdup(cx, s)) ? 0 : -1;
    }
    case ZERG_CONF_INT: /* the directive's own range */
        if (zg_conf_int(cx, v, 0, 0, field) < 0)
            return -1;
        return check_range(cx, v, d, (uint64_t) * (int64_t *)field);
    case ZERG_CONF_BOOL:
        return zg_conf_bool(cx, v, field);
    case ZERG_CONF_SIZE:
        if (zg_conf_size(cx, v, &u) < 0 || check_range(cx, v, d, u) < 0)
            return -1;
        *(uint64_t *)field = u;
        return 0;
    case ZERG_CONF_MSEC:
        if (zg_conf_msec(cx, v, &u) < 0 || check_range(cx, v, d, u) < 0)
            return -1;
        *(uint64_t *)field = u;
        return 0;
    case ZERG_CONF_STR_LIST:
        return zg_conf_str_list(cx, v, field);
    case ZERG_CONF_CUSTOM:
        if (!d->parse)
            return zg_conf_error(cx, v, "%s: directive has no parser", d->key);
        if (d->parse(cx, v, field) < 0)
            return cx->failed ? -1 : zg_conf_error(cx, v, "bad value for %s", d->key);
        return 0;
    }
    return zg_conf_error(cx, v, "unknown directive type %d", (int)d->type);
}

/* One directive's value; errors of the generic parsers name the directive
 * ("buffer_size: bad size ..."), a custom parser words its own. */
static int apply_one(zerg_conf_ctx *cx, const zerg_conf_node *v, const zerg_directive *d,
                     void *base)
{
    if (d->type != ZERG_CONF_CUSTOM)
        cx->key = d->key;
    int rc = apply_value(cx, v, d, base);
    cx->key = NULL;
    return rc;
}

/* "unknown key "x" (expected one of: a, b, c)" */
static int unknown_key(zerg_conf_ctx *cx, const zerg_conf_node *k, const char *key,
                       const zerg_directive *d, const char *skip_key)
{
    char list[512];
    size_t off = 0;
    list[0] = '\0';
    for (; d->key && off < sizeof(list) - 1; d++)
        off += snprintf(list + off, sizeof(list) - off, "%s%s", off ? ", " : "", d->key);
    if (skip_key && off < sizeof(list) - 1)
        snprintf(list + off, sizeof(list) - off, "%s%s", off ? ", " : "", skip_key);
    return zg_conf_error(cx, k, "unknown key \"%s\" (expected one of: %s)", key, list);
}

int zg_conf_apply(zerg_conf_ctx *cx, const zerg_conf_node *map, const zerg_directive *table,
                  void *base, const char *skip_key)
{
    if (zg_node_kind(cx, map) != ZERG_NODE_MAP)
        return zg_conf_error(cx, map, "expected a mapping of keys");
    size_t n = zg_node_len(cx, map);
    for (size_t i = 0; i < n; i++) {
        const zerg_conf_node *k = node_key_node(cx, map, i);
        const char *key = zg_node_scalar(cx, k);
        if (!key)
            return zg_conf_error(cx, k, "keys must be plain strings");
        for (size_t j = 0; j < i; j++)
            if (strcmp(zg_node_key(cx, map, j), key) == 0)
                return zg_conf_error(cx, k, "duplicate key \"%s\"", key);
        if (skip_key && strcmp(key, skip_key) == 0)
            continue;
        const zerg_directive *d = table;
        while (d->key && strcmp(d->key, key) != 0)
            d++;
        if (!d->key)
            return unknown_key(cx, k, key, table, skip_key);
        if (apply_one(cx, zg_node_item(cx, map, i), d, base) < 0)
            return -1;
    }
    return 0;
}
