/* uppercase.c - an example out-of-tree zerg module: echoes what it receives
 * in upper case. Build it against the installed ABI header:
 *   cc -shared -fPIC $(pkg-config --cflags zerg) -o uppercase.so uppercase.c */
#include <zerg/module.h>

static const zerg_api *api;

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
            out[i] = ch >= 'a' && ch <= 'z' ? (uint8_t)(ch - 'a' + 'A') : ch;
        }
        api->write_commit(c, n);
        done += n;
    }
    return len;
}

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "uppercase",
    .version = "1.0",
    .load = upper_load,
    .on_data = upper_data,
};
