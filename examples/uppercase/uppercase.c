/* uppercase.c - an example out-of-tree zerg module: echoes what it receives
 * in upper case, and counts the letters it changed for status pages.
 * Build it against the installed ABI header:
 *   cc -shared -fPIC $(pkg-config --cflags zerg) -o uppercase.so uppercase.c */
#include <zerg/module.h>

static const zerg_api *api;
static uint64_t letters_changed; /* this worker's */

static int upper_load(const zerg_api *a)
{
    if (a->abi_version != ZERG_ABI_VERSION)
        return -1;
    api = a;
    return 0;
}

static size_t upper_data(zerg_conn *c, const uint8_t *data, size_t len)
{
    size_t done = 0;
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
            letters_changed += (uint64_t)lower;
        }
        api->write_commit(c, n);
        done += n;
    }
    return len;
}

/* Only a core that has api->text_printf calls this hook. */
static void upper_metrics(zerg_worker *w, zerg_text *out)
{
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
    .on_data = upper_data,
    .metrics = upper_metrics,
};
