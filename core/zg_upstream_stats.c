/* zg_upstream_stats.c - what a group's servers show: their per-server metrics
 * (api->upstream_metrics) and JSON stats (api->upstream_json), read from the
 * shared slots, so every worker answers the same; and the counters' series
 * in the master's shared metrics (api->conf_upstream_metrics). */
#include <stdio.h>
#include <string.h>

#include "zg_upstream.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

typedef struct up_metric {
    const char *name, *type, *help;
    size_t offset; /* of a uint64_t in zg_up_shm_srv */
    int counter;   /* enum zg_up_counter; -1 for the gauge */
} up_metric;

#define SRV(f) offsetof(zg_up_shm_srv, f)

static const up_metric server_metrics[] = {
    {"active", "gauge", "Connections to the server open now.", SRV(active), -1},
    {"connects_total", "counter", "Connections to the server established.", SRV(connects),
     ZG_UP_C_CONNECTS},
    {"failures_total", "counter", "Connects to the server that failed (refused, timed out, reset).",
     SRV(failures), ZG_UP_C_FAILURES},
    {"bytes_in_total", "counter", "Bytes received from the server.", SRV(bytes_in),
     ZG_UP_C_BYTES_IN},
    {"bytes_out_total", "counter", "Bytes sent to the server.", SRV(bytes_out), ZG_UP_C_BYTES_OUT},
    {"health_checks_total", "counter", "Active health checks run.", SRV(hc_checks),
     ZG_UP_C_HC_CHECKS},
    {"health_checks_failed_total", "counter", "Active health checks failed.", SRV(hc_failed),
     ZG_UP_C_HC_FAILED},
};

#define N_SERVER_METRICS (sizeof(server_metrics) / sizeof(server_metrics[0]))

/* Each counter of each server a series: name prefix_server_NAME, labels
 * label="group",server="address". The same names at a reload find the same
 * series, so the counts go on. */
int zg_up_metrics_add(zerg_conf_ctx *cx, zerg_upstream *u, const char *prefix, const char *label)
{
    for (size_t i = 0; i < u->nservers; i++)
        for (size_t m = 0; m < N_SERVER_METRICS; m++) {
            const up_metric *um = &server_metrics[m];
            char name[96], labels[192];
            if (um->counter < 0)
                continue;
            snprintf(name, sizeof(name), "%s_server_%s", prefix, um->name);
            int n = snprintf(labels, sizeof(labels), "%s=\"%s\",server=\"%s\"", label, u->name,
                             u->servers[i].name);
            if (n < 0 || (size_t)n >= sizeof(labels))
                return zg_up_api->conf_error(cx, NULL,
                                             "upstream %s: server %s: names too long for the "
                                             "metrics' labels",
                                             u->name, u->servers[i].name);
            zerg_metric_def d = {.struct_size = sizeof(d),
                                 .type = ZERG_METRIC_COUNTER,
                                 .name = name,
                                 .labels = labels,
                                 .help = um->help};
            int64_t h = zg_up_api->metric_add(cx, &d);
            if (h < 0)
                return -1;
            u->servers[i].metric[um->counter] = h;
        }
    u->registered = 1;
    return 0;
}

static uint64_t field_at(const zg_up_shm_srv *s, size_t offset)
{
    return LOAD((const uint64_t *)(const void *)((const char *)s + offset));
}

static void head(zerg_text *out, const char *prefix, const char *name, const char *type,
                 const char *help)
{
    zg_up_api->text_printf(out, "# HELP %s_server_%s %s\n# TYPE %s_server_%s %s\n", prefix, name,
                           help, prefix, name, type);
}

void zg_up_metrics(zerg_text *out, const char *prefix, const char *label,
                   zerg_upstream *const *groups, size_t n)
{
    static const char *const states[] = {"up", "down", "failed", "maint"};
    const zerg_api *a = zg_up_api;
    uint64_t now = zg_up_clock();
    head(out, prefix, "state", "gauge",
         "1 for the server's state: up, down (by health check), failed (by passive failures) "
         "or maint (down: true).");
    for (size_t g = 0; g < n; g++)
        for (size_t i = 0; i < groups[g]->nservers; i++) {
            const zerg_upstream *u = groups[g];
            const char *st = zg_up_state(&u->servers[i], &u->shm[i], now);
            for (size_t k = 0; k < 4; k++)
                a->text_printf(out, "%s_server_state{%s=\"%s\",server=\"%s\",state=\"%s\"} %d\n",
                               prefix, label, u->name, u->servers[i].name, states[k],
                               !strcmp(st, states[k]));
        }
    head(out, prefix, "weight", "gauge",
         "The server's weight (backup: 1 when it serves only with every primary down).");
    for (size_t g = 0; g < n; g++)
        for (size_t i = 0; i < groups[g]->nservers; i++) {
            const zg_up_server *c = &groups[g]->servers[i];
            a->text_printf(out, "%s_server_weight{%s=\"%s\",server=\"%s\",backup=\"%d\"} %lld\n",
                           prefix, label, groups[g]->name, c->name, c->backup,
                           (long long)c->weight);
        }
    for (size_t m = 0; m < N_SERVER_METRICS; m++) {
        const up_metric *um = &server_metrics[m];
        size_t shown = 0; /* the counters of registered groups: in the shared metrics */
        for (size_t g = 0; g < n; g++)
            shown += um->counter < 0 || !groups[g]->registered;
        if (!shown)
            continue;
        head(out, prefix, um->name, um->type, um->help);
        for (size_t g = 0; g < n; g++)
            for (size_t i = 0;
                 i < groups[g]->nservers && (um->counter < 0 || !groups[g]->registered); i++)
                a->text_printf(out, "%s_server_%s{%s=\"%s\",server=\"%s\"} %llu\n", prefix,
                               um->name, label, groups[g]->name, groups[g]->servers[i].name,
                               (unsigned long long)field_at(&groups[g]->shm[i], um->offset));
    }
}

size_t zg_up_json(const zerg_upstream *u, char *buf, size_t cap)
{
    uint64_t now = zg_up_clock();
    size_t off = 0;
    for (size_t i = 0; i <= u->nservers; i++) {
        char *at = buf + (off < cap ? off : cap);
        size_t room = off < cap ? cap - off : 0;
        int k;
        if (i == u->nservers) {
            k = snprintf(at, room, "]");
        } else {
            const zg_up_shm_srv *s = &u->shm[i];
            const zg_up_server *c = &u->servers[i];
            k = snprintf(
                at, room,
                "%s{\"address\":\"%s\",\"backup\":%s,\"weight\":%lld,\"state\":\"%s\","
                "\"active\":%llu,\"connects\":%llu,\"failures\":%llu,\"bytes_in\":%llu,"
                "\"bytes_out\":%llu,\"health_checks\":%llu,\"health_failed\":%llu}",
                i ? "," : "[", c->name, c->backup ? "true" : "false", (long long)c->weight,
                zg_up_state(c, s, now), (unsigned long long)LOAD(&s->active),
                (unsigned long long)LOAD(&s->connects), (unsigned long long)LOAD(&s->failures),
                (unsigned long long)LOAD(&s->bytes_in), (unsigned long long)LOAD(&s->bytes_out),
                (unsigned long long)LOAD(&s->hc_checks), (unsigned long long)LOAD(&s->hc_failed));
        }
        if (k > 0)
            off += (size_t)k;
    }
    return off;
}
