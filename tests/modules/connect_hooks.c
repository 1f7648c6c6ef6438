/* connect_hooks.c - a test module that relays each client to the address of
 * its `upstream` key through api->connect_with, the upstream side served by
 * hooks of its own: it says "connected <status>" to the client, and what
 * comes back goes to the client behind "up:". The module's own hooks (on
 * the client's side) relay bytes bare, so a core that served the outbound
 * connection with them would show it. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <zerg/module.h>

static const zerg_api *api;

typedef struct relay_conf {
    struct sockaddr_storage ss;
    socklen_t len;
} relay_conf;

typedef struct relay_ctx {
    zerg_conn *peer; /* the other side, NULL once it closed */
} relay_ctx;

static int relay_load(const zerg_api *a)
{
    api = a;
    return a->abi_version == ZERG_ABI_VERSION && ZERG_API_HAS(a, connect_with) ? 0 : -1;
}

static int parse_upstream(zerg_conf_ctx *cx, const zerg_conf_node *n, void *field)
{
    relay_conf *rc = field;
    return api->conf_addr(cx, n, &rc->ss, &rc->len);
}

static const zerg_directive relay_directives[] = {
    {"upstream", ZERG_CONF_CUSTOM, 0, parse_upstream, 0, 0},
    ZERG_DIRECTIVE_END,
};

static void say(zerg_conn *c, const char *text)
{
    if (c)
        api->write(c, text, strlen(text));
}

/* ---- the upstream side: its own hooks ---- */

static void up_connect(zerg_conn *up, int status)
{
    relay_ctx *x = api->conn_ctx(up);
    char line[32];
    snprintf(line, sizeof(line), "connected %d\n", status);
    say(x->peer, line);
}

static size_t up_data(zerg_conn *up, const uint8_t *data, size_t len)
{
    relay_ctx *x = api->conn_ctx(up);
    say(x->peer, "up:");
    if (x->peer)
        api->write(x->peer, data, len);
    return len;
}

static void up_close(zerg_conn *up, int err)
{
    relay_ctx *x = api->conn_ctx(up);
    (void)err;
    if (x->peer) {
        relay_ctx *px = api->conn_ctx(x->peer);
        px->peer = NULL;
        api->close(x->peer);
    }
}

static const zerg_conn_hooks up_hooks = {
    .struct_size = sizeof(zerg_conn_hooks),
    .on_connect = up_connect,
    .on_data = up_data,
    .on_close = up_close,
};

/* ---- the client side: the module's hooks ---- */

static void relay_open(zerg_conn *c)
{
    relay_ctx *x = api->conn_ctx(c);
    relay_conf *rc = api->conn_conf(c);
    zerg_worker *w = api->conn_worker(c);
    /* a hook set too short for on_close is refused */
    static const zerg_conn_hooks short_hooks = {.struct_size = sizeof(uint32_t)};
    errno = 0;
    if (api->connect_with(w, &short_hooks, NULL, (struct sockaddr *)&rc->ss, rc->len, 0) ||
        errno != EINVAL)
        say(c, "short hooks taken\n");
    zerg_conn *up =
        api->connect_with(w, &up_hooks, NULL, (struct sockaddr *)&rc->ss, rc->len, 1000);
    if (!up) {
        api->close(c);
        return;
    }
    relay_ctx *ux = api->conn_ctx(up);
    ux->peer = c;
    x->peer = up;
}

static size_t relay_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    relay_ctx *x = api->conn_ctx(c);
    if (x->peer)
        api->write(x->peer, data, len);
    return len;
}

static void relay_close(zerg_conn *c, int err)
{
    relay_ctx *x = api->conn_ctx(c);
    (void)err;
    if (x->peer) {
        relay_ctx *ux = api->conn_ctx(x->peer);
        ux->peer = NULL;
        api->close(x->peer);
    }
}

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "connect_hooks",
    .version = "0.0",
    .conn_ctx_size = sizeof(relay_ctx),
    .conf_size = sizeof(relay_conf),
    .directives = relay_directives,
    .load = relay_load,
    .on_open = relay_open,
    .on_data = relay_data,
    .on_close = relay_close,
};
