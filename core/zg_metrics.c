/* zg_metrics.c - api->metrics: the master's shared metrics (the core's
 * counters and the series modules registered), summed over every worker,
 * then every loaded module's metrics hook, as one Prometheus text for status
 * pages. The text is built only when a page asks, in a buffer the worker
 * keeps and reuses. */
#define _GNU_SOURCE
#include "zg_metrics.h"
#include "zg_metrics_shm.h"
#include "zg_module.h"
#include "zg_tls_metrics.h"
#include "zg_worker.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* The core's counters (zerg_stats, one family each). A worker copies its
 * zerg_stats into the first values of its row at every loop turn. */
static const struct {
    const char *name;
    int type;
    const char *help;
    size_t offset;
} zg_core_metrics[] = {
#define ZG_M(name, type, field, help)                                                              \
    {                                                                                              \
        name, ZERG_METRIC_##type, help, offsetof(zerg_stats, field)                                \
    }
    ZG_M("zerg_connections_active", GAUGE, conns_active,
         "Connections open now, inbound and outbound."),
    ZG_M("zerg_connections_accepted_total", COUNTER, conns_accepted, "Connections accepted."),
    ZG_M("zerg_connections_outbound_total", COUNTER, conns_outbound,
         "Outbound connections started."),
    ZG_M("zerg_connections_closed_total", COUNTER, conns_closed, "Connections closed."),
    ZG_M("zerg_bytes_in_total", COUNTER, bytes_in, "Bytes received on all connections."),
    ZG_M("zerg_bytes_out_total", COUNTER, bytes_out, "Bytes sent on all connections."),
    ZG_M("zerg_recv_buffer_shortages_total", COUNTER, enobufs,
         "Times a multishot receive found no free provided buffer (ENOBUFS)."),
    ZG_M("zerg_accept_backoffs_total", COUNTER, accept_backoffs,
         "Times accepting paused because descriptors ran out (EMFILE, ENFILE)."),
    ZG_M("zerg_cq_overflows_total", COUNTER, cq_overflows,
         "Completions the kernel had to hold back (completion queue full)."),
    ZG_M("zerg_sends_zc_total", COUNTER, sends_zc, "Sends done with SEND_ZC."),
    ZG_M("zerg_loop_turns_total", COUNTER, loop_turns,
         "Turns of the event loop (io_uring_enter calls)."),
    ZG_M("zerg_connections_limited_total", COUNTER, conns_limited,
         "Connections closed at once: their client had max_connections_per_client open."),
    ZG_M("zerg_recv_buffer_copied_bytes_total", COUNTER, bytes_copied,
         "Received bytes queued as a copy instead of in place: few receive buffers were free."),
    ZG_M("zerg_connection_bytes_held", GAUGE, conn_bytes_held,
         "Bytes the connections hold now: queued output and input held or left unconsumed."),
    ZG_M("zerg_sends_splice_total", COUNTER, sends_splice,
         "Splices of file bytes into sockets (file answers sent without a copy)."),
    ZG_M("zerg_sends_splice_bytes_total", COUNTER, bytes_splice, "Bytes those splices sent."),
#undef ZG_M
};

/* The master's own counters, in the exited workers' row. */
static int64_t zg_reloads_ok = -1, zg_reloads_failed = -1, zg_worker_restarts = -1;

void zg_metrics_register_core(void)
{
    char err[256];
    for (size_t i = 0; i < sizeof(zg_core_metrics) / sizeof(zg_core_metrics[0]); i++) {
        zerg_metric_def d = {.struct_size = sizeof(d),
                             .type = zg_core_metrics[i].type,
                             .name = zg_core_metrics[i].name,
                             .help = zg_core_metrics[i].help};
        zg_mshm_add(&d, (int64_t)(zg_core_metrics[i].offset / sizeof(uint64_t)), err, sizeof(err));
    }
    static const char reloads_help[] = "Reloads the master finished: ok (new workers serve) or "
                                       "failed (the running configuration kept).";
    zg_reloads_ok = zg_mshm_master_counter("zerg_reloads_total", "result=\"ok\"", reloads_help);
    zg_reloads_failed =
        zg_mshm_master_counter("zerg_reloads_total", "result=\"failed\"", reloads_help);
    zg_worker_restarts = zg_mshm_master_counter(
        "zerg_worker_restarts_total", NULL,
        "Workers the master started again after they died (crashed or killed).");
    zg_tls_metrics_register();
}

void zg_metrics_started(void)
{
    zg_mshm_commit();
}

void zg_metrics_reload_done(int ok)
{
    zg_mshm_master_add(ok ? zg_reloads_ok : zg_reloads_failed, 1);
    if (ok)
        zg_mshm_commit();
}

void zg_metrics_restart_counted(void)
{
    zg_mshm_master_add(zg_worker_restarts, 1);
}

void zg_metrics_publish(const zerg_stats *st)
{
    volatile uint64_t *row = zg_mshm_row(); /* whole 8-byte stores: read untorn */
    const uint64_t *v = (const uint64_t *)(const void *)st;
    for (size_t i = 0; i < sizeof(*st) / sizeof(uint64_t); i++)
        row[i] = v[i];
}

int64_t zg_metrics_add(zerg_conf_ctx *cx, const zerg_metric_def *def)
{
    char err[512];
    int64_t h = zg_mshm_add(def, -1, err, sizeof(err));
    if (h < 0)
        return zg_conf_error(cx, NULL, "%s", err);
    return h;
}

uint64_t *zg_metrics_row(zerg_worker *w)
{
    (void)w;
    return zg_mshm_row();
}

/* ---- the text ---- */

static const char *type_name(uint32_t type)
{
    return type == ZERG_METRIC_COUNTER ? "counter"
           : type == ZERG_METRIC_GAUGE ? "gauge"
                                       : "histogram";
}

/* "{labels,extra}" or "" when both are empty. */
static void label_set(char *buf, size_t len, const char *labels, const char *extra)
{
    snprintf(buf, len, "%s%s%s%s%s", *labels || *extra ? "{" : "", labels,
             *labels && *extra ? "," : "", extra, *labels || *extra ? "}" : "");
}

static void print_series(zerg_text *t, const zg_mseries *s, const uint64_t *vals, const char *extra)
{
    char ls[512];
    const volatile uint64_t *v = vals + s->first;
    if (s->type != ZERG_METRIC_HISTOGRAM) {
        label_set(ls, sizeof(ls), s->labels, extra);
        zg_text_printf(t, "%s%s %llu\n", s->name, ls, (unsigned long long)v[0]);
        return;
    }
    uint64_t count = 0;
    for (uint32_t b = 0; b <= s->nbounds; b++) {
        char le[384];
        count += v[b];
        if (b < s->nbounds)
            snprintf(le, sizeof(le), "%s%sle=\"%.9g\"", extra, *extra ? "," : "",
                     (double)s->bounds[b] * s->scale);
        else
            snprintf(le, sizeof(le), "%s%sle=\"+Inf\"", extra, *extra ? "," : "");
        label_set(ls, sizeof(ls), s->labels, le);
        zg_text_printf(t, "%s_bucket%s %llu\n", s->name, ls, (unsigned long long)count);
    }
    label_set(ls, sizeof(ls), s->labels, extra);
    zg_text_printf(t, "%s_sum%s %.15g\n%s_count%s %llu\n", s->name, ls,
                   (double)v[s->nbounds + 1] * s->scale, s->name, ls, (unsigned long long)count);
}

/* The series of the family that starts at h (a reload may have appended
 * some after other families: they are chained). */
static void print_family(zerg_text *t, const zg_mshm_view *v, size_t h, const uint64_t *vals,
                         const char *extra)
{
    for (size_t i = h;; i = v->series[i].next) {
        if (!v->series[i].hidden)
            print_series(t, &v->series[i], vals, extra);
        if (!v->series[i].next || v->series[i].next >= v->nseries)
            break;
    }
}

/* Each family once (HELP, TYPE, its samples together): the sums, then
 * with per_worker each live worker's values and the exited workers'. */
static void print_registry(zerg_text *t, const zg_mshm_view *v, int per_worker)
{
    for (size_t h = 0; h < v->nseries; h++) {
        const zg_mseries *head = &v->series[h];
        if (!head->head)
            continue;
        zg_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", head->name, head->help, head->name,
                       type_name(head->type));
        print_family(t, v, h, v->sum, "");
        for (int r = 0; per_worker && r <= ZG_MSHM_ROWS; r++) {
            char extra[64];
            if (!v->rows[r])
                continue;
            if (r == ZG_MSHM_ROWS)
                snprintf(extra, sizeof(extra), "worker=\"exited\"");
            else
                snprintf(extra, sizeof(extra), "worker=\"%u\",pid=\"%d\"", v->worker[r],
                         (int)v->pid[r]);
            print_family(t, v, h, v->rows[r], extra);
        }
    }
}

const char *zg_metrics_ex(zerg_worker *w, unsigned flags, size_t *len)
{
    zerg_text *t = &w->metrics_text;
    zg_mshm_view v;
    t->len = 0;
    t->failed = 0;
    zg_metrics_publish(&w->stats); /* this worker's own figures up to now */
    if (zg_mshm_read(&v) < 0)
        return NULL;
    print_registry(t, &v, (flags & ZERG_METRICS_PER_WORKER) != 0);
    free(v.sum);
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

const char *zg_metrics(zerg_worker *w, size_t *len)
{
    return zg_metrics_ex(w, 0, len);
}
