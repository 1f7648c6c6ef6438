/* slow_open.c - a test module that pauses reading in on_open and resumes
 * 50 ms later, then echoes: bytes that arrive with the connection must wait
 * for it, none lost (for example those after a PROXY protocol header). */
#include <stdio.h>
#include <zerg/module.h>

static const zerg_api *api;

typedef struct slow_ctx {
    zerg_timer resume;
    zerg_conn *c;
} slow_ctx;

static int slow_load(const zerg_api *a)
{
    api = a;
    return a->abi_version == ZERG_ABI_VERSION ? 0 : -1;
}

static void slow_resume(zerg_timer *t)
{
    slow_ctx *x = t->data;
    api->resume_read(x->c);
}

static void slow_open(zerg_conn *c)
{
    slow_ctx *x = api->conn_ctx(c);
    x->c = c;
    x->resume.fn = slow_resume;
    x->resume.data = x;
    api->pause_read(c);
    api->timer_set(api->conn_worker(c), &x->resume, 50);
    /* the client address, as the module sees it, first */
    socklen_t len;
    const struct sockaddr *sa = api->conn_peer(c, &len);
    char line[32];
    int n = snprintf(line, sizeof(line), "family %d\n", len ? sa->sa_family : 0);
    api->write(c, line, (size_t)n);
}

static size_t slow_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    api->write(c, data, len);
    return len;
}

static void slow_close(zerg_conn *c, int err)
{
    slow_ctx *x = api->conn_ctx(c);
    (void)err;
    api->timer_cancel(api->conn_worker(c), &x->resume);
}

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "slow_open",
    .version = "0.0",
    .conn_ctx_size = sizeof(slow_ctx),
    .load = slow_load,
    .on_open = slow_open,
    .on_data = slow_data,
    .on_close = slow_close,
};
