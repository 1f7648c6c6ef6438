/* modules/http/http_proxy_directives.c - proxy_pass's directive rows: a
 * location's proxy_pass and proxy_* settings, the server's upstreams (their
 * parsers: http_proxy_conf.c, http_proxy_balance.c). */
#include <stdint.h>

#include "http.h"
#include "http_proxy.h"

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
    ZERG_DIRECTIVE_END,
};

const zerg_directive http_proxy_server_directives[] = {
    {"upstreams", ZERG_CONF_CUSTOM, offsetof(http_srv, upstreams), http_parse_upstreams, 0, 0},
    ZERG_DIRECTIVE_END,
};
