/* zg_metrics.h - the worker's metrics text for status pages: a text buffer
 * that grows as it is written, the core's counters, and the modules' hooks. */
#ifndef ZG_METRICS_H
#define ZG_METRICS_H

#include <stdarg.h>
#include <stddef.h>
#include <zerg/module.h>

struct zerg_text {
    char *buf;
    size_t len, cap;
    int failed; /* an allocation failed: the text is incomplete */
};

void zg_text_vprintf(zerg_text *t, const char *fmt, va_list ap);
void zg_text_printf(zerg_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void zg_text_free(zerg_text *t);

/* The text of api->metrics (api->metrics_ex with flags) for worker w: the
 * shared metrics summed over all workers, then the modules' hooks (kept in
 * w until the next call). */
const char *zg_metrics(zerg_worker *w, size_t *len);
const char *zg_metrics_ex(zerg_worker *w, unsigned flags, size_t *len);

/* The core's series in the shared registry (zg_metrics_shm.c calls it when
 * it maps the registry); the master's word that the configuration it loaded
 * serves (at start, after each reload: ok 0 when it kept the running one),
 * and its count of restarts; a worker's copy of its zerg_stats into its row
 * (every loop turn, at exit). */
void zg_metrics_register_core(void);
void zg_metrics_started(void);
void zg_metrics_reload_done(int ok);
void zg_metrics_restart_counted(void);
void zg_metrics_publish(const zerg_stats *st);
/* api->metric_add and api->metric_row. */
int64_t zg_metrics_add(zerg_conf_ctx *cx, const zerg_metric_def *def);
uint64_t *zg_metrics_row(zerg_worker *w);

#endif
