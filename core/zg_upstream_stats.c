/* zg_upstream_stats.c - what a group's servers show: their per-server metrics
 * (api->upstream_metrics) and JSON stats (api->upstream_json), read from the
 * shared slots, so every worker answers the same. */
#include <stdio.h>
#include <string.h>

#include "zg_upstream.h"

#define LOAD(p) __atomic_load_n((p), __ATOMIC_RELAXED)

typedef struct up_metric {
    const char *name, *type, *help;
    size_t offset; /* of a uint64_t in zg_up_shm_srv */
} up_metric;

#define SRV(f) offsetof(zg_up_shm_srv, f)

static const up_metric server_metrics[] = {
    {"active", "gauge", "Connections to the server open now.", SRV(active)},
    {"connects_total", "counter", "Connections to the server established.", SRV(connects)},
    {"failures_total", "counter", "Connects to the server that failed (refused, timed out, reset).",
     SRV(failures)},
    {"bytes_in_total", "counter", "Bytes received from the server.", SRV(bytes_in)},
    {"bytes_out_total", "counter", "Bytes sent to the server.", SRV(bytes_out)},
    {"health_checks_total", "counter", "Active health checks run.", SRV(hc_checks)},
    {"health_checks_failed_total", "counter", "Active health checks failed.", SRV(hc_failed)},
};

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
    for (size_t m = 0; m < sizeof(server_metrics) / sizeof(server_metrics[0]); m++) {
        const up_metric *um = &server_metrics[m];
        head(out, prefix, um->name, um->type, um->help);
        for (size_t g = 0; g < n; g++)
            for (size_t i = 0; i < groups[g]->nservers; i++)
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
