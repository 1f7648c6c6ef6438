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

/* The text of api->metrics for worker w (kept in w until the next call). */
const char *zg_metrics(zerg_worker *w, size_t *len);

#endif
