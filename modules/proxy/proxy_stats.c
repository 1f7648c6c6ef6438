/* proxy_stats.c - per-upstream-server statistics from shared memory: JSON
 * formatting, and the optional stats_file that worker 0 rewrites every
 * stats_interval (atomically, through a rename) for status pages and tests. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

static const char *state_name(const proxy_server *cf, const proxy_shm_srv *s, uint64_t now)
{
    if (cf->down)
        return "maint";
    if (LOAD(&s->hc_down))
        return "down";
    uint64_t d = LOAD(&s->down_until);
    if (d && now < d)
        return "failed";
    return "up";
}

size_t proxy_stats_format(const proxy_conf *cf, char *buf, size_t cap)
{
    const proxy_shm *sh = cf->shm;
    uint64_t now = proxy_now();
    size_t off = 0;
    int n;
#define EMIT(...)                                                                                  \
    do {                                                                                           \
        n = snprintf(buf + (off < cap ? off : cap), off < cap ? cap - off : 0, __VA_ARGS__);       \
        if (n > 0)                                                                                 \
            off += (size_t)n;                                                                      \
    } while (0)
    EMIT("{\"name\":\"%s\",\"clients\":%llu,\"clients_total\":%llu,\"rejected\":%llu,"
         "\"no_server\":%llu,\"servers\":[",
         cf->name, (unsigned long long)LOAD(&sh->clients),
         (unsigned long long)LOAD(&sh->clients_total), (unsigned long long)LOAD(&sh->rejected),
         (unsigned long long)LOAD(&sh->no_server));
    for (size_t i = 0; i < cf->up.nservers; i++) {
        const proxy_shm_srv *s = &sh->srv[i];
        const proxy_server *c = &cf->up.servers[i];
        EMIT("%s{\"address\":\"%s\",\"backup\":%s,\"weight\":%lld,\"state\":\"%s\","
             "\"active\":%llu,\"connects\":%llu,\"failures\":%llu,\"bytes_in\":%llu,"
             "\"bytes_out\":%llu,\"health_checks\":%llu,\"health_failed\":%llu}",
             i ? "," : "", c->addr.text ? c->addr.text : "", c->backup ? "true" : "false",
             (long long)c->weight, state_name(c, s, now), (unsigned long long)LOAD(&s->active),
             (unsigned long long)LOAD(&s->connects), (unsigned long long)LOAD(&s->failures),
             (unsigned long long)LOAD(&s->bytes_in), (unsigned long long)LOAD(&s->bytes_out),
             (unsigned long long)LOAD(&s->hc_checks), (unsigned long long)LOAD(&s->hc_failed));
    }
    EMIT("]}\n");
#undef EMIT
    return off;
}

/* ---- metrics (the module's hook, for status pages) --------------------- */

#define BLOCK_FIELD(f) offsetof(proxy_shm, f)
#define SRV_FIELD(f)   offsetof(proxy_shm_srv, f)

typedef struct proxy_metric {
    const char *name, *type, *help;
    size_t offset; /* of a uint64_t in proxy_shm or proxy_shm_srv */
} proxy_metric;

static const proxy_metric block_metrics[] = {
    {"zerg_proxy_clients", "gauge", "Client connections open now.", BLOCK_FIELD(clients)},
    {"zerg_proxy_clients_total", "counter", "Client connections accepted.",
     BLOCK_FIELD(clients_total)},
    {"zerg_proxy_rejected_total", "counter", "Clients refused by max_connections.",
     BLOCK_FIELD(rejected)},
    {"zerg_proxy_no_server_total", "counter", "Clients closed because no server was available.",
     BLOCK_FIELD(no_server)},
};

static const proxy_metric server_metrics[] = {
    {"zerg_proxy_server_active", "gauge", "Connections to the server open now.", SRV_FIELD(active)},
    {"zerg_proxy_server_connects_total", "counter", "Connections to the server established.",
     SRV_FIELD(connects)},
    {"zerg_proxy_server_failures_total", "counter",
     "Connects to the server that failed (refused, timed out, reset).", SRV_FIELD(failures)},
    {"zerg_proxy_server_bytes_in_total", "counter", "Bytes received from the server.",
     SRV_FIELD(bytes_in)},
    {"zerg_proxy_server_bytes_out_total", "counter", "Bytes sent to the server.",
     SRV_FIELD(bytes_out)},
    {"zerg_proxy_server_health_checks_total", "counter", "Active health checks run.",
     SRV_FIELD(hc_checks)},
    {"zerg_proxy_server_health_checks_failed_total", "counter", "Active health checks failed.",
     SRV_FIELD(hc_failed)},
};

static void metric_head(zerg_text *out, const proxy_metric *m)
{
    proxy_api->text_printf(out, "# HELP %s %s\n# TYPE %s %s\n", m->name, m->help, m->name, m->type);
}

static uint64_t field_at(const void *base, size_t offset)
{
    return LOAD((const uint64_t *)((const char *)base + offset));
}

/* Shared memory holds the figures of every worker: the samples carry no
 * worker label, and every worker answers the same. */
void proxy_metrics(zerg_worker *w, zerg_text *out)
{
    const zerg_api *a = proxy_api;
    const proxy_worker_state *states = proxy_worker_states();
    (void)w;
    if (!states)
        return;
    for (size_t m = 0; m < sizeof(block_metrics) / sizeof(block_metrics[0]); m++) {
        metric_head(out, &block_metrics[m]);
        for (const proxy_worker_state *ws = states; ws; ws = ws->next)
            a->text_printf(out, "%s{proxy=\"%s\"} %llu\n", block_metrics[m].name, ws->conf->name,
                           (unsigned long long)field_at(ws->conf->shm, block_metrics[m].offset));
    }
    static const char *const states_named[] = {"up", "down", "failed", "maint"};
    uint64_t now = proxy_now();
    a->text_printf(out, "# HELP zerg_proxy_server_state 1 for the server's state: up, down (by "
                        "health check), failed (by passive failures) or maint (down: true).\n"
                        "# TYPE zerg_proxy_server_state gauge\n");
    for (const proxy_worker_state *ws = states; ws; ws = ws->next)
        for (size_t i = 0; i < ws->conf->up.nservers; i++) {
            const char *st = state_name(&ws->conf->up.servers[i], &ws->conf->shm->srv[i], now);
            for (size_t k = 0; k < 4; k++)
                a->text_printf(
                    out, "zerg_proxy_server_state{proxy=\"%s\",server=\"%s\",state=\"%s\"} %d\n",
                    ws->conf->name, ws->conf->up.servers[i].addr.text, states_named[k],
                    !strcmp(st, states_named[k]));
        }
    a->text_printf(out, "# HELP zerg_proxy_server_weight The server's weight (backup: 1 when it "
                        "serves only with every primary down).\n"
                        "# TYPE zerg_proxy_server_weight gauge\n");
    for (const proxy_worker_state *ws = states; ws; ws = ws->next)
        for (size_t i = 0; i < ws->conf->up.nservers; i++) {
            const proxy_server *c = &ws->conf->up.servers[i];
            a->text_printf(
                out, "zerg_proxy_server_weight{proxy=\"%s\",server=\"%s\",backup=\"%d\"} %lld\n",
                ws->conf->name, c->addr.text, c->backup, (long long)c->weight);
        }
    for (size_t m = 0; m < sizeof(server_metrics) / sizeof(server_metrics[0]); m++) {
        metric_head(out, &server_metrics[m]);
        for (const proxy_worker_state *ws = states; ws; ws = ws->next)
            for (size_t i = 0; i < ws->conf->up.nservers; i++)
                a->text_printf(
                    out, "%s{proxy=\"%s\",server=\"%s\"} %llu\n", server_metrics[m].name,
                    ws->conf->name, ws->conf->up.servers[i].addr.text,
                    (unsigned long long)field_at(&ws->conf->shm->srv[i], server_metrics[m].offset));
    }
}

static void stats_write(proxy_worker_state *ws)
{
    proxy_conf *cf = ws->conf;
    size_t cap = 256 + cf->up.nservers * 512;
    char *buf = malloc(cap);
    if (!buf)
        return;
    size_t len = proxy_stats_format(cf, buf, cap);
    if (len >= cap)
        len = cap - 1;
    size_t plen = strlen(cf->stats_file) + 8;
    char *tmp = malloc(plen);
    if (tmp) {
        snprintf(tmp, plen, "%s.tmp", cf->stats_file);
        /* a few hundred bytes to a local file: cheaper than a ring round trip */
        int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd >= 0) {
            ssize_t w = write(fd, buf, len);
            close(fd);
            if (w == (ssize_t)len && rename(tmp, cf->stats_file) != 0)
                unlink(tmp);
        }
        free(tmp);
    }
    free(buf);
}

static void stats_fire(zerg_timer *t)
{
    proxy_worker_state *ws = t->data;
    stats_write(ws);
    proxy_api->timer_set(ws->w, &ws->stats_timer, ws->conf->stats_interval);
}

void proxy_stats_start(proxy_worker_state *ws)
{
    if (!ws->conf->stats_file)
        return;
    ws->stats_timer.fn = stats_fire;
    ws->stats_timer.data = ws;
    proxy_api->timer_set(ws->w, &ws->stats_timer, 1);
}

void proxy_stats_stop(proxy_worker_state *ws)
{
    if (!ws->conf->stats_file)
        return;
    proxy_api->timer_cancel(ws->w, &ws->stats_timer);
    stats_write(ws);
}
