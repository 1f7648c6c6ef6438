/* zg_metrics_shm.c - the master's shared metrics: series registered in the
 * master (before fork, so every worker agrees on them), a row per worker
 * process that only that worker writes, and the exited workers' row, so that
 * no counter goes backwards while the master lives. */
#define _GNU_SOURCE
#include "zg_metrics_shm.h"
#include "zg_metrics.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#define EXITED ZG_MSHM_ROWS /* the row of the exited workers' counters */

typedef struct zg_mshm {
    uint64_t seq; /* odd while the master folds a row: readers retry */
    uint32_t nseries, nvalues;
    uint32_t live_gen; /* the configuration serving; the one loading is live_gen + 1 */
    struct {
        uint32_t used, worker;
        int32_t pid;
    } info[ZG_MSHM_ROWS];
    zg_mseries series[ZG_MSHM_SERIES];
    uint64_t rows[ZG_MSHM_ROWS + 1][ZG_MSHM_VALUES];
} zg_mshm;

static zg_mshm *S;
static int S_failed;
static int self_row = -1;
static uint64_t private_row[ZG_MSHM_VALUES]; /* a worker without a row counts here */

/* Mapped once, by the master, on first use: it lives as long as the master
 * (the pages a row does not use are never touched). */
static zg_mshm *shm(void)
{
    if (S || S_failed)
        return S;
    void *p = mmap(NULL, sizeof(zg_mshm), PROT_READ | PROT_WRITE,
                   MAP_SHARED | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) {
        S_failed = 1;
        return NULL;
    }
    S = p;
    S->nvalues = (uint32_t)(sizeof(zerg_stats) / sizeof(uint64_t));
    zg_metrics_register_core();
    return S;
}

static uint32_t slots_of(const zerg_metric_def *def)
{
    return def->type == ZERG_METRIC_HISTOGRAM ? (uint32_t)def->nbounds + 2 : 1;
}

static int same_bounds(const zg_mseries *s, const zerg_metric_def *def)
{
    return s->nbounds == def->nbounds &&
           !memcmp(s->bounds, def->bounds, def->nbounds * sizeof(uint64_t)) &&
           s->scale == (def->scale ? def->scale : 1);
}

static int check_def(const zerg_metric_def *def, char *err, size_t errlen)
{
    const char *labels = def->labels ? def->labels : "";
    const zg_mseries *z = NULL;
    if (def->struct_size < sizeof(zerg_metric_def) || !def->name || !def->help ||
        def->type < ZERG_METRIC_COUNTER || def->type > ZERG_METRIC_HISTOGRAM)
        snprintf(err, errlen, "metric %s: bad definition", def->name ? def->name : "(null)");
    else if (strlen(def->name) >= sizeof(z->name) || strlen(labels) >= sizeof(z->labels))
        snprintf(err, errlen, "metric %s{%s}: name or labels too long", def->name, labels);
    else if (def->type == ZERG_METRIC_HISTOGRAM &&
             (def->nbounds < 1 || def->nbounds > ZG_MSHM_BOUNDS || !def->bounds))
        snprintf(err, errlen, "metric %s: a histogram has 1 to %d bounds", def->name,
                 ZG_MSHM_BOUNDS);
    else
        return 0;
    return -1;
}

int64_t zg_mshm_add(const zerg_metric_def *def, int64_t first, char *err, size_t errlen)
{
    zg_mshm *m = shm();
    if (!m) {
        snprintf(err, errlen, "metrics: cannot map shared memory: %s", strerror(errno));
        return -1;
    }
    if (check_def(def, err, errlen) < 0)
        return -1;
    const char *labels = def->labels ? def->labels : "";
    uint32_t fam = UINT32_MAX; /* the family's first series */
    int replaces = 0;
    for (uint32_t i = 0; i < m->nseries; i++) {
        zg_mseries *s = &m->series[i];
        if (strcmp(s->name, def->name))
            continue;
        if (s->type != (uint32_t)def->type) {
            snprintf(err, errlen, "metric %s: registered already as another type", def->name);
            return -1;
        }
        if (fam == UINT32_MAX)
            fam = i;
        if (!strcmp(s->labels, labels)) {
            if (def->type != ZERG_METRIC_HISTOGRAM || same_bounds(s, def)) {
                s->gen = m->live_gen + 1;
                return s->first;
            }
            replaces = 1; /* other bounds: a new series, shown once this config serves */
        }
    }
    uint32_t n = slots_of(def);
    if (m->nseries == ZG_MSHM_SERIES || (first < 0 && m->nvalues + n > ZG_MSHM_VALUES)) {
        snprintf(err, errlen,
                 "metrics: the shared registry is full (%d series, %d values); it empties only "
                 "when zerg restarts",
                 ZG_MSHM_SERIES, ZG_MSHM_VALUES);
        return -1;
    }
    zg_mseries *s = &m->series[m->nseries];
    memset(s, 0, sizeof(*s));
    snprintf(s->name, sizeof(s->name), "%s", def->name);
    snprintf(s->labels, sizeof(s->labels), "%s", labels);
    snprintf(s->help, sizeof(s->help), "%s", def->help);
    s->type = (uint32_t)def->type;
    s->scale = def->scale ? def->scale : 1;
    if (def->type == ZERG_METRIC_HISTOGRAM) {
        s->nbounds = (uint32_t)def->nbounds;
        memcpy(s->bounds, def->bounds, def->nbounds * sizeof(uint64_t));
    }
    s->first = first >= 0 ? (uint32_t)first : m->nvalues;
    s->gen = m->live_gen + 1;
    s->hidden = (uint8_t)replaces;
    if (first < 0)
        m->nvalues += n;
    if (fam == UINT32_MAX) {
        s->head = 1;
    } else {
        while (m->series[fam].next)
            fam = m->series[fam].next;
        m->series[fam].next = m->nseries;
    }
    /* published last: a worker forked before sees the series whole or not */
    __atomic_store_n(&m->nseries, m->nseries + 1, __ATOMIC_RELEASE);
    return s->first;
}

/* Of the histograms sharing name and labels, the one the newest serving
 * configuration registered is shown. */
void zg_mshm_commit(void)
{
    zg_mshm *m = S;
    if (!m)
        return;
    m->live_gen++;
    for (uint32_t i = 0; i < m->nseries; i++) {
        zg_mseries *s = &m->series[i];
        if (s->type != ZERG_METRIC_HISTOGRAM || s->gen > m->live_gen)
            continue;
        int newer = 0;
        for (uint32_t j = 0; j < m->nseries && !newer; j++) {
            const zg_mseries *o = &m->series[j];
            newer = j != i && o->gen <= m->live_gen &&
                    (o->gen > s->gen || (o->gen == s->gen && j > i)) && !strcmp(o->name, s->name) &&
                    !strcmp(o->labels, s->labels);
        }
        s->hidden = (uint8_t)newer;
    }
}

int64_t zg_mshm_master_counter(const char *name, const char *labels, const char *help)
{
    char err[256];
    zerg_metric_def d = {.struct_size = sizeof(d),
                         .type = ZERG_METRIC_COUNTER,
                         .name = name,
                         .labels = labels,
                         .help = help};
    return zg_mshm_add(&d, -1, err, sizeof(err));
}

void zg_mshm_master_add(int64_t v, uint64_t n)
{
    if (S && v >= 0)
        __atomic_fetch_add(&S->rows[EXITED][v], n, __ATOMIC_RELAXED);
}

int zg_mshm_claim(unsigned worker_id)
{
    zg_mshm *m = shm();
    self_row = -1;
    if (!m)
        return -1;
    for (int r = 0; r < ZG_MSHM_ROWS; r++)
        if (!m->info[r].used) {
            memset(m->rows[r], 0, m->nvalues * sizeof(uint64_t));
            m->info[r].worker = worker_id;
            m->info[r].pid = 0;
            __atomic_store_n(&m->info[r].used, 1, __ATOMIC_RELEASE);
            self_row = r;
            return r;
        }
    return -1;
}

void zg_mshm_set_pid(int row, pid_t pid)
{
    if (S && row >= 0)
        S->info[row].pid = (int32_t)pid;
}

/* Counters and histograms of the row go to the exited row; gauges go with
 * their worker. Readers retry while seq is odd, so they never see a value
 * in both rows or in neither. */
void zg_mshm_fold(int row)
{
    zg_mshm *m = S;
    if (!m || row < 0 || !m->info[row].used)
        return;
    __atomic_fetch_add(&m->seq, 1, __ATOMIC_SEQ_CST);
    uint64_t *from = m->rows[row], *to = m->rows[EXITED];
    for (uint32_t i = 0; i < m->nseries; i++) {
        const zg_mseries *s = &m->series[i];
        uint32_t n = s->type == ZERG_METRIC_HISTOGRAM ? s->nbounds + 2 : 1;
        if (s->type != ZERG_METRIC_GAUGE)
            for (uint32_t k = 0; k < n; k++)
                to[s->first + k] += from[s->first + k];
    }
    __atomic_store_n(&m->info[row].used, 0, __ATOMIC_RELEASE);
    __atomic_fetch_add(&m->seq, 1, __ATOMIC_SEQ_CST);
}

uint64_t *zg_mshm_row(void)
{
    return S && self_row >= 0 ? S->rows[self_row] : private_row;
}

static void sum_rows(const zg_mshm *m, zg_mshm_view *v)
{
    memcpy(v->sum, m->rows[EXITED], v->nvalues * sizeof(uint64_t));
    for (int r = 0; r < ZG_MSHM_ROWS; r++) {
        if (!__atomic_load_n(&m->info[r].used, __ATOMIC_ACQUIRE))
            continue;
        const volatile uint64_t *row = m->rows[r];
        for (size_t i = 0; i < v->nvalues; i++)
            v->sum[i] += row[i];
    }
}

/* The live rows, for the per-worker breakdown. */
static int read_rows(const zg_mshm *m, zg_mshm_view *v)
{
    for (int r = 0; r < ZG_MSHM_ROWS; r++) {
        if (!__atomic_load_n(&m->info[r].used, __ATOMIC_ACQUIRE))
            continue;
        v->rows[r] = m->rows[r];
        v->worker[r] = m->info[r].worker;
        v->pid[r] = m->info[r].pid;
    }
    v->rows[EXITED] = m->rows[EXITED];
    return 0;
}

int zg_mshm_read(zg_mshm_view *v)
{
    const zg_mshm *m = S;
    memset(v, 0, sizeof(*v));
    if (!m)
        return 0;
    v->nseries = __atomic_load_n(&m->nseries, __ATOMIC_ACQUIRE);
    v->nvalues = m->nvalues;
    v->series = m->series;
    v->sum = malloc((v->nvalues ? v->nvalues : 1) * sizeof(uint64_t));
    if (!v->sum)
        return -1;
    /* the master folds a row in microseconds; bounded all the same, for a
     * master that died in the middle of one */
    for (int tries = 0; tries < 1000000; tries++) {
        uint64_t seq = __atomic_load_n(&m->seq, __ATOMIC_ACQUIRE);
        if (seq & 1)
            continue;
        sum_rows(m, v);
        __atomic_thread_fence(__ATOMIC_ACQUIRE);
        if (__atomic_load_n(&m->seq, __ATOMIC_ACQUIRE) == seq)
            return read_rows(m, v);
    }
    sum_rows(m, v);
    return read_rows(m, v);
}
