/* uppercase.c - an example out-of-tree zerg module: echoes what it receives
 * in upper case, and counts the letters it changed for status pages (in the
 * core's shared metrics, summed over the workers, where the core has them).
 * Build it against the installed ABI header:
 *   cc -shared -fPIC $(pkg-config --cflags zerg) -o uppercase.so uppercase.c */
#include <zerg/module.h>

static const zerg_api *api;
static int64_t letters = -1;     /* the counter's handle in the shared metrics */
static uint64_t *row;            /* this worker's row of them */
static uint64_t letters_changed; /* this worker's, for an older core's status page */

static int upper_load(const zerg_api *a)
{
    if (a->abi_version != ZERG_ABI_VERSION)
        return -1;
    api = a;
    return 0;
}

/* Master, per server block: the same name gives the same handle each time. */
static int upper_conf_init(zerg_conf_ctx *cx, void *conf)
{
    (void)conf;
    if (!ZERG_API_HAS(api, metric_add))
        return 0;
    zerg_metric_def d = {.struct_size = sizeof(d),
                         .type = ZERG_METRIC_COUNTER,
                         .name = "zerg_uppercase_letters_total",
                         .help = "Letters turned to upper case."};
    letters = api->metric_add(cx, &d);
    return letters < 0 ? -1 : 0;
}

static int upper_worker_init(zerg_worker *w)
{
    if (letters >= 0 && ZERG_API_HAS(api, metric_row))
        row = api->metric_row(w);
    return 0;
}

static size_t upper_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    size_t done = 0;
    uint64_t changed = 0;
    while (done < len) {
        size_t room;
        uint8_t *out = api->write_reserve(c, 1, &room);
        if (!out) {
            api->abort(c);
            return len;
        }
        size_t n = len - done < room ? len - done : room;
        for (size_t i = 0; i < n; i++) {
            uint8_t ch = data[done + i];
            int lower = ch >= 'a' && ch <= 'z';
            out[i] = lower ? (uint8_t)(ch - 'a' + 'A') : ch;
            changed += (uint64_t)lower;
        }
        api->write_commit(c, n);
        done += n;
    }
    if (row)
        row[letters] += changed; /* only this worker writes its row: no atomics */
    else
        letters_changed += changed;
    return len;
}

/* Only a core that has api->text_printf calls this hook; one with shared
 * metrics prints the counter itself. */
static void upper_metrics(zerg_worker *w, zerg_text *out)
{
    if (row)
        return;
    api->text_printf(out,
                     "# HELP zerg_uppercase_letters_total Letters turned to upper case.\n"
                     "# TYPE zerg_uppercase_letters_total counter\n"
                     "zerg_uppercase_letters_total{worker=\"%u\"} %llu\n",
                     api->worker_id(w), (unsigned long long)letters_changed);
}

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "uppercase",
    .version = "1.0",
    .load = upper_load,
    .conf_init = upper_conf_init,
    .worker_init = upper_worker_init,
    .on_data = upper_data,
    .metrics = upper_metrics,
};
