/* modules/http/http2_conf.c - the http2: key of a server block: true turns
 * on h2c by prior knowledge with the default settings, a mapping sets them
 * (and turns it on too); the same settings serve h2 over TLS. */
#include <string.h>

#include "http2.h"

static const http2_conf http2_defaults = {
    .max_concurrent_streams = 128,
    .initial_window_size = 65535,
    .max_header_list_size = 32768,
    .idle_timeout = 180000,
};

const http2_conf *http2_conf_of(const http_srv *s)
{
    return s->http2 ? s->http2 : &http2_defaults;
}

static const zerg_directive http2_settings[] = {
    {"max_concurrent_streams", ZERG_CONF_INT, offsetof(http2_conf, max_concurrent_streams), NULL, 1,
     2147483647},
    {"initial_window_size", ZERG_CONF_SIZE, offsetof(http2_conf, initial_window_size), NULL, 0,
     2147483647},
    {"max_header_list_size", ZERG_CONF_SIZE, offsetof(http2_conf, max_header_list_size), NULL, 1024,
     16777216},
    {"idle_timeout", ZERG_CONF_MSEC, offsetof(http2_conf, idle_timeout), NULL, 1, 86400000},
    ZERG_DIRECTIVE_END,
};

static int http2_parse(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http2_conf **out = field;
    int kind = http_api->node_kind(cx, node);
    if (kind == ZERG_NODE_SCALAR) {
        const char *v = http_api->node_scalar(cx, node);
        if (http_conf_is_off(v)) {
            *out = NULL;
            return 0;
        }
        if (strcmp(v, "true") && strcmp(v, "on") && strcmp(v, "yes"))
            return http_api->conf_error(cx, node, "http2: expected true, false or a mapping");
    } else if (kind != ZERG_NODE_MAP) {
        return http_api->conf_error(cx, node, "http2: expected true, false or a mapping");
    }
    http2_conf *c = http_api->conf_alloc(cx, sizeof(*c));
    if (!c)
        return -1;
    *c = http2_defaults;
    if (kind == ZERG_NODE_MAP && http_api->conf_apply(cx, node, http2_settings, c))
        return -1;
    *out = c;
    return 0;
}

const zerg_directive http2_server_directives[] = {
    {"http2", ZERG_CONF_CUSTOM, offsetof(http_srv, http2), http2_parse, 0, 0},
    ZERG_DIRECTIVE_END,
};
