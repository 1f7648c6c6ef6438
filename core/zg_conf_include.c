/* zg_conf_include.c - include items in the servers list: a site per file
 * (a conf.d or sites-enabled folder), as nginx users keep them. Each included
 * file is a YAML document of its own; errors in it name it. */
#define _GNU_SOURCE
#include "zg_conf_include.h"

#include <errno.h>
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ZG_INCLUDE_DEPTH 8

struct zg_conf_doc {
    zg_conf_doc *next;
    yaml_document_t doc;
};

static int add_block(zerg_conf_ctx *cx, zg_conf_blocks *out, const zerg_conf_node *n)
{
    if (out->n == out->cap) {
        size_t cap = out->cap ? out->cap * 2 : 16;
        zg_conf_block *v = realloc(out->v, cap * sizeof(*v));
        if (!v)
            return zg_conf_error(cx, n, "out of memory");
        out->v = v;
        out->cap = cap;
    }
    out->v[out->n++] = (zg_conf_block){.doc = cx->doc, .file = cx->file, .node = n};
    return 0;
}

/* An item that is { include: ... } and nothing else. */
static const zerg_conf_node *include_value(zerg_conf_ctx *cx, const zerg_conf_node *item)
{
    if (zg_node_kind(cx, item) != ZERG_NODE_MAP || zg_node_len(cx, item) != 1)
        return NULL;
    const char *key = zg_node_key(cx, item, 0);
    return key && strcmp(key, "include") == 0 ? zg_node_item(cx, item, 0) : NULL;
}

static int collect(zerg_conf_ctx *cx, const zerg_conf_node *n, zg_conf_blocks *out, int depth);
static int collect_item(zerg_conf_ctx *cx, const zerg_conf_node *item, zg_conf_blocks *out,
                        int depth);

/* Parse one included file and collect its blocks, with cx pointing into it
 * meanwhile (errors name it). */
static int include_file(zerg_conf_ctx *cx, const zerg_conf_node *at, const char *path,
                        zg_conf_blocks *out, int depth)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return zg_conf_error(cx, at, "include: cannot open %s: %s", path, strerror(errno));
    zg_conf_doc *d = calloc(1, sizeof(*d));
    char *name = zg_conf_strdup(cx, path); /* error messages need it as long as the config */
    zg_conf_file *listed = zg_conf_alloc(cx, sizeof(*listed));
    if (!d || !name || !listed) {
        free(d);
        fclose(f);
        return zg_conf_error(cx, at, "out of memory");
    }
    zg_conf_file **tail = &cx->cfg->included;
    while (*tail)
        tail = &(*tail)->next;
    listed->path = name;
    *tail = listed;
    yaml_parser_t parser;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, f);
    int rc = 0;
    if (!yaml_parser_load(&parser, &d->doc)) {
        if (!cx->failed) /* its own position, not the include item's */
            snprintf(cx->err, cx->errlen, "%s:%zu:%zu: %s%s%s", path, parser.problem_mark.line + 1,
                     parser.problem_mark.column + 1, parser.problem ? parser.problem : "YAML error",
                     parser.context ? " " : "", parser.context ? parser.context : "");
        cx->failed = 1;
        rc = -1;
        free(d);
    } else {
        d->next = out->docs;
        out->docs = d;
        yaml_document_t *saved_doc = cx->doc;
        const char *saved_file = cx->file;
        cx->doc = &d->doc;
        cx->file = name;
        const zerg_conf_node *root = (const zerg_conf_node *)yaml_document_get_root_node(&d->doc);
        if (!root)
            rc = 0; /* an empty file: no server */
        else if (zg_node_kind(cx, root) == ZERG_NODE_MAP)
            rc = collect_item(cx, root, out, depth);
        else
            rc = collect(cx, root, out, depth);
        cx->doc = saved_doc;
        cx->file = saved_file;
    }
    yaml_parser_delete(&parser);
    fclose(f);
    return rc;
}

/* glob's report of a folder it cannot read: one that is not there just
 * matches nothing; anything else (no permission) stops the load. */
static int glob_error;
static int glob_failed(const char *path, int err)
{
    (void)path;
    if (err == ENOENT || err == ENOTDIR)
        return 0;
    glob_error = err;
    return 1;
}

/* The files of one pattern, in glob's (sorted) order. A pattern without
 * wildcards names a file that must exist; one with them may match none. */
static int include_pattern(zerg_conf_ctx *cx, const zerg_conf_node *at, const char *pattern,
                           zg_conf_blocks *out, int depth)
{
    char full[4096];
    const char *slash = strrchr(cx->file, '/');
    int n = pattern[0] == '/' || !slash ? snprintf(full, sizeof(full), "%s", pattern)
                                        : snprintf(full, sizeof(full), "%.*s/%s",
                                                   (int)(slash - cx->file), cx->file, pattern);
    if (n < 0 || (size_t)n >= sizeof(full))
        return zg_conf_error(cx, at, "include: path too long");
    if (!strpbrk(pattern, "*?["))
        return include_file(cx, at, full, out, depth);
    glob_t g;
    glob_error = 0;
    int rc = glob(full, 0, glob_failed, &g);
    if (rc == GLOB_NOMATCH)
        return 0;
    if (rc != 0)
        return zg_conf_error(cx, at, "include: cannot read %s: %s", full,
                             rc == GLOB_NOSPACE ? "out of memory" : strerror(glob_error));
    for (size_t i = 0; i < g.gl_pathc && rc == 0; i++)
        rc = include_file(cx, at, g.gl_pathv[i], out, depth);
    globfree(&g);
    return rc;
}

/* A server block, or an include item's files. */
static int collect_item(zerg_conf_ctx *cx, const zerg_conf_node *item, zg_conf_blocks *out,
                        int depth)
{
    const zerg_conf_node *inc = include_value(cx, item);
    if (!inc)
        return add_block(cx, out, item);
    if (depth >= ZG_INCLUDE_DEPTH)
        return zg_conf_error(cx, inc,
                             "include: nested more than %d files deep (does a file include "
                             "itself?)",
                             ZG_INCLUDE_DEPTH);
    zerg_str_list patterns;
    if (zg_conf_str_list(cx, inc, &patterns) < 0)
        return -1;
    for (size_t k = 0; k < patterns.n; k++)
        if (include_pattern(cx, inc, patterns.items[k], out, depth + 1) < 0)
            return -1;
    return 0;
}

static int collect(zerg_conf_ctx *cx, const zerg_conf_node *n, zg_conf_blocks *out, int depth)
{
    if (zg_node_kind(cx, n) != ZERG_NODE_SEQ)
        return zg_conf_error(cx, n, "servers: expected a list of server blocks");
    for (size_t i = 0; i < zg_node_len(cx, n); i++)
        if (collect_item(cx, zg_node_item(cx, n, i), out, depth) < 0)
            return -1;
    return 0;
}

int zg_conf_collect_blocks(zerg_conf_ctx *cx, const zerg_conf_node *seq, zg_conf_blocks *out)
{
    memset(out, 0, sizeof(*out));
    return collect(cx, seq, out, 0);
}

void zg_conf_blocks_free(zg_conf_blocks *b)
{
    while (b->docs) {
        zg_conf_doc *next = b->docs->next;
        yaml_document_delete(&b->docs->doc);
        free(b->docs);
        b->docs = next;
    }
    free(b->v);
    memset(b, 0, sizeof(*b));
}
