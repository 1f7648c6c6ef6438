/* modules/http/http_static_conf.c - the static file directives: a
 * location's root, alias, fallback, index, gzip_static and expires, and the
 * server's file buffers, MIME types and ETag switch. */
#include <string.h>

#include "http.h"
#include "http_static.h"

/* fallback: /index.html (a location's file for a 404) */
static int http_parse_fallback(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_location *l = HTTP_CONTAINER(field, http_location, fallback);
    l->fallback = http_file_path(cx, http_api->node_scalar(cx, node), &l->fallback_len);
    if (!l->fallback)
        return http_api->conf_error(cx, node, "fallback: expected a path like /index.html");
    return 0;
}

/* expires: off | epoch | max | a duration (nginx's expires) */
static int http_parse_expires(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_location *l = HTTP_CONTAINER(field, http_location, expires);
    const char *v = http_api->node_scalar(cx, node);
    uint64_t ms;
    if (v && !strcmp(v, "off"))
        l->expires = HTTP_EXPIRES_OFF;
    else if (v && !strcmp(v, "epoch"))
        l->expires = HTTP_EXPIRES_EPOCH;
    else if (v && !strcmp(v, "max"))
        l->expires = HTTP_EXPIRES_MAX;
    else if (v && v[0] >= '0' && v[0] <= '9' && http_api->conf_msec(cx, node, &ms) == 0 &&
             ms <= 3650ull * 86400 * 1000) {
        l->expires = HTTP_EXPIRES_AFTER;
        l->expires_sec = ms / 1000;
    } else
        return http_api->conf_error(cx, node,
                                    "expires: expected off, epoch, max or a duration up to "
                                    "3650d (like 1h or 30d)");
    return 0;
}

/* mime_types: { ext: type, ... } */
static int http_mime_item(zerg_conf_ctx *cx, void *arr, size_t i, const char *k,
                          const zerg_conf_node *v, const char *t, void *arg)
{
    http_mime *m = (http_mime *)arr + i;
    if (!k || !t || !*t || strchr(t, '\r') || strchr(t, '\n'))
        return http_api->conf_error(cx, v, "mime_types: expected ext: type");
    m->ext = http_api->conf_strdup(cx, k[0] == '.' ? k + 1 : k);
    m->type = http_api->conf_strdup(cx, t);
    return m->ext && m->type ? 0 : -1;
}

static int http_parse_mime(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_srv *s = HTTP_CONTAINER(field, http_srv, mime);
    s->mime = http_map_array(cx, node, sizeof(http_mime), &s->nmime,
                             "mime_types: expected a mapping ext: type", http_mime_item, NULL);
    return s->mime ? 0 : -1;
}

const zerg_directive http_static_location_directives[] = {
    {"root", ZERG_CONF_STR, offsetof(http_location, root), NULL, 0, 0},
    {"alias", ZERG_CONF_STR, offsetof(http_location, alias), NULL, 0, 0},
    {"fallback", ZERG_CONF_CUSTOM, offsetof(http_location, fallback), http_parse_fallback, 0, 0},
    {"index", ZERG_CONF_STR_LIST, offsetof(http_location, index), NULL, 0, 0},
    {"gzip_static", ZERG_CONF_BOOL, offsetof(http_location, gzip_static), NULL, 0, 0},
    {"expires", ZERG_CONF_CUSTOM, offsetof(http_location, expires), http_parse_expires, 0, 0},
    ZERG_DIRECTIVE_END,
};

const zerg_directive http_static_server_directives[] = {
    {"file_buffer", ZERG_CONF_SIZE, offsetof(http_srv, file_buffer), NULL, 4096, 16 << 20},
    {"file_mmap_max", ZERG_CONF_SIZE, offsetof(http_srv, file_mmap_max), NULL, 0, 1LL << 24},
    {"sendfile", ZERG_CONF_BOOL, offsetof(http_srv, sendfile), NULL, 0, 0},
    {"sendfile_min", ZERG_CONF_SIZE, offsetof(http_srv, sendfile_min), NULL, 0, 0},
    {"default_type", ZERG_CONF_STR, offsetof(http_srv, default_type), NULL, 0, 0},
    {"etag", ZERG_CONF_BOOL, offsetof(http_srv, etag), NULL, 0, 0},
    {"mime_types", ZERG_CONF_CUSTOM, offsetof(http_srv, mime), http_parse_mime, 0, 0},
    ZERG_DIRECTIVE_END,
};
