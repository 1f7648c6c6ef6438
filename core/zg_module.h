/* zg_module.h - loading module shared objects and checking their ABI. */
#ifndef ZG_MODULE_H
#define ZG_MODULE_H

#include <stddef.h>
#include <stdint.h>
#include <zerg/module.h>

struct zg_module {
    const zerg_module *desc;
    void *handle;
    char *path;
    int fd; /* the memfd copy: open while loaded, so its /proc/self/fd name
               stays unique and dlopen never returns an older copy */
};
typedef struct zg_module zg_module;

/* The core's api table, handed to every module's load hook. */
extern const zerg_api zg_api;

/* Load DIR/NAME.so. Each call maps a fresh private copy of the file, so a
 * module replaced on disk is picked up by the next load (reload) while the
 * old copy keeps serving the old workers. NULL with err set on failure. */
zg_module *zg_module_load(const char *dir, const char *name, char *err, size_t errlen);
/* Load a given path (tests, tools). */
zg_module *zg_module_load_path(const char *path, const char *name, char *err, size_t errlen);
void zg_module_unload(zg_module *m);
/* The descriptor's flags (ZERG_MODULE_*), 0 for a module older than them. */
uint32_t zg_module_flags(const zg_module *m);
/* The descriptor's metrics hook, NULL when it has none or predates it. */
typedef void (*zg_metrics_fn)(zerg_worker *w, zerg_text *out);
zg_metrics_fn zg_module_metrics(const zg_module *m);
/* The descriptor's ALPN protocols (NULL-terminated), NULL when it has none. */
const char *const *zg_module_alpn(const zg_module *m);
/* The protocols the module offers for one block's conf: its conf_alpn's
 * answer, else its descriptor's list (NULL when it has none). */
const char *const *zg_module_conf_alpn(const zg_module *m, const void *conf);

#endif
