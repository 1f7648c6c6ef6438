/* zg_metrics.c - api->metrics: the worker's counters and every loaded
 * module's metrics hook as one Prometheus text, for status pages. The text
 * is built only when a page asks, in a buffer the worker keeps and reuses. */
#define _GNU_SOURCE
#include "zg_metrics.h"
#include "zg_module.h"
#include "zg_worker.h"

#include <stdio.h>
#include <stdlib.h>

void zg_text_vprintf(zerg_text *t, const char *fmt, va_list ap)
{
    if (t->failed)
        return;
    for (;;) {
        va_list aq;
        va_copy(aq, ap);
        size_t room = t->cap - t->len;
        int n = vsnprintf(t->buf ? t->buf + t->len : NULL, room, fmt, aq);
        va_end(aq);
        if (n < 0) {
            t->failed = 1;
            return;
        }
        if ((size_t)n < room) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap : 4096;
        while (cap - t->len <= (size_t)n)
            cap *= 2;
        char *nb = realloc(t->buf, cap);
        if (!nb) {
            t->failed = 1;
            return;
        }
        t->buf = nb;
        t->cap = cap;
    }
}

void zg_text_printf(zerg_text *t, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    zg_text_vprintf(t, fmt, ap);
    va_end(ap);
}

void zg_text_free(zerg_text *t)
{
    free(t->buf);
    *t = (zerg_text){0};
}

/* The core's counters: one family each, in zerg_stats order. */
static const struct {
    const char *name, *type, *help;
    size_t offset;
} zg_core_metrics[] = {
#define ZG_M(name, type, field, help)                                                              \
    {                                                                                              \
        name, type, help, offsetof(zerg_stats, field)                                              \
    }
    ZG_M("zerg_connections_active", "gauge", conns_active,
         "Connections open now, inbound and outbound."),
    ZG_M("zerg_connections_accepted_total", "counter", conns_accepted, "Connections accepted."),
    ZG_M("zerg_connections_outbound_total", "counter", conns_outbound,
         "Outbound connections started."),
    ZG_M("zerg_connections_closed_total", "counter", conns_closed, "Connections closed."),
    ZG_M("zerg_bytes_in_total", "counter", bytes_in, "Bytes received on all connections."),
    ZG_M("zerg_bytes_out_total", "counter", bytes_out, "Bytes sent on all connections."),
    ZG_M("zerg_recv_buffer_shortages_total", "counter", enobufs,
         "Times a multishot receive found no free provided buffer (ENOBUFS)."),
    ZG_M("zerg_accept_backoffs_total", "counter", accept_backoffs,
         "Times accepting paused because descriptors ran out (EMFILE, ENFILE)."),
    ZG_M("zerg_cq_overflows_total", "counter", cq_overflows,
         "Completions the kernel had to hold back (completion queue full)."),
    ZG_M("zerg_sends_zc_total", "counter", sends_zc, "Sends done with SEND_ZC."),
    ZG_M("zerg_loop_turns_total", "counter", loop_turns,
         "Turns of the event loop (io_uring_enter calls)."),
    ZG_M("zerg_connections_limited_total", "counter", conns_limited,
         "Connections closed at once: their client had max_connections_per_client open."),
    ZG_M("zerg_recv_buffer_copied_bytes_total", "counter", bytes_copied,
         "Received bytes queued as a copy instead of in place: few receive buffers were free."),
    ZG_M("zerg_sends_splice_total", "counter", sends_splice,
         "Splices of file bytes into sockets (file answers sent without a copy)."),
    ZG_M("zerg_sends_splice_bytes_total", "counter", bytes_splice, "Bytes those splices sent."),
#undef ZG_M
};

const char *zg_metrics(zerg_worker *w, size_t *len)
{
    zerg_text *t = &w->metrics_text;
    t->len = 0;
    t->failed = 0;
    for (size_t i = 0; i < sizeof(zg_core_metrics) / sizeof(zg_core_metrics[0]); i++) {
        const uint64_t *v = (const uint64_t *)((const char *)&w->stats + zg_core_metrics[i].offset);
        zg_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n%s{worker=\"%u\"} %llu\n",
                       zg_core_metrics[i].name, zg_core_metrics[i].help, zg_core_metrics[i].name,
                       zg_core_metrics[i].type, zg_core_metrics[i].name, w->id,
                       (unsigned long long)*v);
    }
    for (size_t i = 0; i < w->cfg->nmodules; i++) {
        zg_metrics_fn hook = zg_module_metrics(w->cfg->modules[i]);
        if (hook)
            hook(w, t);
    }
    if (t->failed)
        return NULL;
    *len = t->len;
    return t->buf ? t->buf : "";
}
