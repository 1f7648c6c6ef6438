/* echo.c - the echo module: every byte received is sent back, in order.
 * Reading pauses by itself while the output is above the high watermark. */
#include <zerg/module.h>

#include <stddef.h>

typedef struct echo_conf {
    uint64_t idle_timeout; /* ms; 0 disables */
} echo_conf;

static const zerg_api *api;

static int echo_load(const zerg_api *a)
{
    api = a;
    return 0;
}

static int echo_conf_init(zerg_conf_ctx *cx, void *conf)
{
    (void)cx;
    ((echo_conf *)conf)->idle_timeout = 60000;
    return 0;
}

static void echo_open(zerg_conn *c)
{
    const echo_conf *cf = api->conn_conf(c);
    api->conn_timeout(c, cf->idle_timeout);
}

static size_t echo_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    const echo_conf *cf = api->conn_conf(c);
    /* send from the receive buffer itself: no copy */
    zerg_ref *r = api->hold(c, data);
    if (!r || api->write_ref(c, data, len, r) < 0)
        api->write(c, data, len);
    if (cf->idle_timeout)
        api->conn_timeout(c, cf->idle_timeout);
    return len;
}

static const zerg_directive echo_directives[] = {
    {"idle_timeout", ZERG_CONF_MSEC, offsetof(echo_conf, idle_timeout), NULL, 0, 0},
    ZERG_DIRECTIVE_END,
};

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "echo",
    .version = "1.0",
    .conf_size = sizeof(echo_conf),
    .directives = echo_directives,
    .load = echo_load,
    .conf_init = echo_conf_init,
    .on_open = echo_open,
    .on_data = echo_data,
};
