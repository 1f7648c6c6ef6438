/* proxy_stats.c - per-upstream-server statistics from shared memory: JSON
 * formatting, and the optional stats_file that worker 0 rewrites every
 * stats_interval (atomically, through a rename) for status pages and tests;
 * the metrics: the block's and its servers' counters registered in the
 * master's shared metrics (they never go backwards), the gauges here. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "proxy.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

size_t proxy_stats_format(const proxy_conf *cf, char *buf, size_t cap)
{
    const proxy_shm *sh = cf->shm;
    int n =
        snprintf(buf, cap,
                 "{\"name\":\"%s\",\"clients\":%llu,\"clients_total\":%llu,\"rejected\":%llu,"
                 "\"no_server\":%llu,\"servers\":",
                 cf->name, (unsigned long long)LOAD(&sh->clients),
                 (unsigned long long)LOAD(&sh->clients_total),
                 (unsigned long long)LOAD(&sh->rejected), (unsigned long long)LOAD(&sh->no_server));
    size_t off = n > 0 ? (size_t)n : 0;
    off +=
        proxy_api->upstream_json(cf->up, buf + (off < cap ? off : cap), off < cap ? cap - off : 0);
    n = snprintf(buf + (off < cap ? off : cap), off < cap ? cap - off : 0, "}\n");
    return off + (n > 0 ? (size_t)n : 0);
}

/* ---- metrics (the module's hook, for status pages) --------------------- */

#define BLOCK_FIELD(f) offsetof(proxy_shm, f)

typedef struct proxy_metric {
    const char *name, *type, *help;
    size_t offset; /* of a uint64_t in proxy_shm */
    int counter;   /* enum proxy_counter; -1 for the gauge */
} proxy_metric;

static const proxy_metric block_metrics[] = {
    {"zerg_proxy_clients", "gauge", "Client connections open now.", BLOCK_FIELD(clients), -1},
    {"zerg_proxy_clients_total", "counter", "Client connections accepted.",
     BLOCK_FIELD(clients_total), PROXY_C_CLIENTS},
    {"zerg_proxy_rejected_total", "counter", "Clients refused by max_connections.",
     BLOCK_FIELD(rejected), PROXY_C_REJECTED},
    {"zerg_proxy_no_server_total", "counter", "Clients closed because no server was available.",
     BLOCK_FIELD(no_server), PROXY_C_NO_SERVER},
};

#define N_BLOCK_METRICS (sizeof(block_metrics) / sizeof(block_metrics[0]))

/* Master, at conf_done: the block's counters and its servers' as series of
 * the shared metrics, labelled proxy="name" (a reload with the same name
 * goes on counting). A core without them: counted in shm only. */
int proxy_metrics_add(zerg_conf_ctx *cx, proxy_conf *cf)
{
    const zerg_api *a = proxy_api;
    char labels[PROXY_NAME_MAX + 16];
    if (!ZERG_API_HAS(a, conf_upstream_metrics))
        return 0;
    snprintf(labels, sizeof(labels), "proxy=\"%s\"", cf->name);
    for (size_t m = 0; m < N_BLOCK_METRICS; m++) {
        const proxy_metric *pm = &block_metrics[m];
        if (pm->counter < 0)
            continue;
        zerg_metric_def d = {.struct_size = sizeof(d),
                             .type = ZERG_METRIC_COUNTER,
                             .name = pm->name,
                             .labels = labels,
                             .help = pm->help};
        if ((cf->metric[pm->counter] = a->metric_add(cx, &d)) < 0)
            return -1;
    }
    return a->conf_upstream_metrics(cx, cf->up, "zerg_proxy", "proxy");
}

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
    for (size_t m = 0; m < N_BLOCK_METRICS; m++) {
        if (block_metrics[m].counter >= 0 && states->conf->metric[block_metrics[m].counter] >= 0)
            continue; /* in the shared metrics */
        metric_head(out, &block_metrics[m]);
        for (const proxy_worker_state *ws = states; ws; ws = ws->next)
            a->text_printf(out, "%s{proxy=\"%s\"} %llu\n", block_metrics[m].name, ws->conf->name,
                           (unsigned long long)field_at(ws->conf->shm, block_metrics[m].offset));
    }
    /* the servers' families: their groups are named after the blocks */
    size_t n = 0;
    for (const proxy_worker_state *ws = states; ws; ws = ws->next)
        n++;
    zerg_upstream **groups = malloc(n * sizeof(*groups));
    if (!groups)
        return;
    n = 0;
    for (const proxy_worker_state *ws = states; ws; ws = ws->next)
        groups[n++] = ws->conf->up;
    a->upstream_metrics(out, "zerg_proxy", "proxy", groups, n);
    free(groups);
}

static void stats_write(proxy_worker_state *ws)
{
    proxy_conf *cf = ws->conf;
    size_t cap = 256 + proxy_api->upstream_size(cf->up) * 512;
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
