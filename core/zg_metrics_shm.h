/* zg_metrics_shm.h - the metrics the master keeps for its whole life: a
 * registry of series in shared memory, one row of values per worker process
 * and one where the counters of exited workers are folded. */
#ifndef ZG_METRICS_SHM_H
#define ZG_METRICS_SHM_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <zerg/module.h>

#define ZG_MSHM_SERIES 16384  /* series of every configuration the master loaded */
#define ZG_MSHM_VALUES 131072 /* values in a row (a histogram takes its buckets + 2) */
#define ZG_MSHM_ROWS   256    /* worker processes alive at once (reload: old and new) */
#define ZG_MSHM_BOUNDS 32     /* buckets of a histogram */

/* A series as the registry holds it (copied: modules come and go). */
typedef struct zg_mseries {
    char name[96], labels[192], help[256];
    uint32_t type;    /* ZERG_METRIC_* */
    uint32_t first;   /* its first value in a row */
    uint32_t nbounds; /* histograms */
    uint32_t next;    /* the next series of its family, 0 at the end */
    uint8_t head;     /* the first series of its family */
    uint8_t hidden;   /* a histogram whose bounds another configuration changed */
    uint32_t gen;     /* the configuration that registered it last */
    double scale;
    uint64_t bounds[ZG_MSHM_BOUNDS];
} zg_mseries;

/* Master (before the workers are forked, or at a reload): the series of
 * def, or -1 with err set. first >= 0 places it at that value (the core's
 * counters, which mirror zerg_stats); -1 takes the next free ones. */
int64_t zg_mshm_add(const zerg_metric_def *def, int64_t first, char *err, size_t errlen);
/* Master: the configuration whose series were registered last serves now
 * (at start, after a reload): a histogram registered again with other
 * bounds is shown with those from now on. Until then the new one is hidden,
 * so a reload that fails changes nothing. */
void zg_mshm_commit(void);
/* The series of one name registered by the core for the master's own
 * counters (reloads, restarts): the value's index, or -1. */
int64_t zg_mshm_master_counter(const char *name, const char *labels, const char *help);
/* Master: adds n to value v of the exited workers' row. */
void zg_mshm_master_add(int64_t v, uint64_t n);

/* Master, before fork: a row for the next worker (-1 when none is free;
 * that worker then counts into a private row nobody reads). The child's
 * row is the one of the last claim made before its fork. */
int zg_mshm_claim(unsigned worker_id);
void zg_mshm_set_pid(int row, pid_t pid);
/* Master, when the worker of row has exited: its counters are added to the
 * exited row and the row is free again. */
void zg_mshm_fold(int row);

/* Worker: its own row (never NULL). */
uint64_t *zg_mshm_row(void);

/* What a status page prints: the series, their sums over every row (the
 * exited one included; read consistently with the master's folds), and
 * each live row with its worker, for the per-worker breakdown. */
typedef struct zg_mshm_view {
    size_t nseries, nvalues;
    const zg_mseries *series;
    uint64_t *sum;                          /* malloc'ed by zg_mshm_read */
    const uint64_t *rows[ZG_MSHM_ROWS + 1]; /* live rows, then the exited one */
    unsigned worker[ZG_MSHM_ROWS];
    pid_t pid[ZG_MSHM_ROWS];
} zg_mshm_view;
int zg_mshm_read(zg_mshm_view *v);

#endif
