/* zg_module.c - the module loader: copies each .so into a memfd and dlopens
 * that copy, then checks the exported descriptor against ZERG_ABI_VERSION. */
#define _GNU_SOURCE
#include "zg_module.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/sendfile.h>
#include <sys/stat.h>
#include <unistd.h>

/* A private copy of path in a memfd, so dlopen never reuses an older
 * mapping of the same file name. Returns the memfd or -1. */
static int copy_to_memfd(const char *path, const char *name, char *err, size_t errlen)
{
    int in = open(path, O_RDONLY | O_CLOEXEC);
    if (in < 0) {
        snprintf(err, errlen, "module %s: cannot open %s: %s", name, path, strerror(errno));
        return -1;
    }
    struct stat st;
    int mfd = -1;
    if (fstat(in, &st) < 0 || (mfd = memfd_create(name, MFD_CLOEXEC)) < 0) {
        snprintf(err, errlen, "module %s: %s: %s", name, path, strerror(errno));
        close(in);
        return -1;
    }
    off_t off = 0;
    while (off < st.st_size) {
        ssize_t n = sendfile(mfd, in, &off, st.st_size - off);
        if (n <= 0) {
            snprintf(err, errlen, "module %s: cannot read %s: %s", name, path,
                     n < 0 ? strerror(errno) : "short file");
            close(in);
            close(mfd);
            return -1;
        }
    }
    close(in);
    return mfd;
}

zg_module *zg_module_load_path(const char *path, const char *name, char *err, size_t errlen)
{
    int mfd = copy_to_memfd(path, name, err, errlen);
    if (mfd < 0)
        return NULL;
    char fdpath[64];
    snprintf(fdpath, sizeof(fdpath), "/proc/self/fd/%d", mfd);
    void *h = dlopen(fdpath, RTLD_NOW | RTLD_LOCAL);
    if (!h) {
        snprintf(err, errlen, "module %s: cannot load %s: %s", name, path, dlerror());
        close(mfd);
        return NULL;
    }
    const zerg_module *desc = dlsym(h, ZERG_MODULE_SYMBOL);
    if (!desc) {
        snprintf(err, errlen, "module %s: %s has no symbol %s: not a zerg module", name, path,
                 ZERG_MODULE_SYMBOL);
        dlclose(h);
        close(mfd);
        return NULL;
    }
    if (desc->abi_version != ZERG_ABI_VERSION) {
        snprintf(err, errlen,
                 "module %s: %s was built for module ABI version %u, this zerg has version %u",
                 name, path, desc->abi_version, ZERG_ABI_VERSION);
        dlclose(h);
        close(mfd);
        return NULL;
    }
    if (desc->struct_size < offsetof(zerg_module, on_close) + sizeof(desc->on_close) ||
        !desc->name || strcmp(desc->name, name) != 0) {
        snprintf(err, errlen, "module %s: %s has a malformed descriptor (name \"%s\", size %u)",
                 name, path, desc->name ? desc->name : "(null)", desc->struct_size);
        dlclose(h);
        close(mfd);
        return NULL;
    }
    if (desc->load && desc->load(&zg_api) != 0) {
        snprintf(err, errlen, "module %s: %s refused to load", name, path);
        dlclose(h);
        close(mfd);
        return NULL;
    }
    zg_module *m = calloc(1, sizeof(*m));
    if (!m || !(m->path = strdup(path))) {
        free(m);
        snprintf(err, errlen, "module %s: out of memory", name);
        dlclose(h);
        close(mfd);
        return NULL;
    }
    m->desc = desc;
    m->handle = h;
    m->fd = mfd;
    return m;
}

zg_module *zg_module_load(const char *dir, const char *name, char *err, size_t errlen)
{
    for (const char *p = name; *p; p++) {
        if (*p == '/' || *p == '.') {
            snprintf(err, errlen, "bad module name \"%s\"", name);
            return NULL;
        }
    }
    char path[4096];
    snprintf(path, sizeof(path), "%s/%s.so", dir, name);
    return zg_module_load_path(path, name, err, errlen);
}

void zg_module_unload(zg_module *m)
{
    if (!m)
        return;
    dlclose(m->handle);
    close(m->fd);
    free(m->path);
    free(m);
}

uint32_t zg_module_flags(const zg_module *m)
{
    const zerg_module *d = m->desc;
    return d->struct_size >= offsetof(zerg_module, flags) + sizeof(d->flags) ? d->flags : 0;
}

zg_metrics_fn zg_module_metrics(const zg_module *m)
{
    const zerg_module *d = m->desc;
    return d->struct_size >= offsetof(zerg_module, metrics) + sizeof(d->metrics) ? d->metrics
                                                                                 : NULL;
}

const char *const *zg_module_alpn(const zg_module *m)
{
    const zerg_module *d = m->desc;
    return d->struct_size >= offsetof(zerg_module, alpn) + sizeof(d->alpn) ? d->alpn : NULL;
}

const char *const *zg_module_conf_alpn(const zg_module *m, const void *conf)
{
    const zerg_module *d = m->desc;
    const char *const *names = NULL;
    if (d->struct_size >= offsetof(zerg_module, conf_alpn) + sizeof(d->conf_alpn) && d->conf_alpn)
        names = d->conf_alpn(conf);
    return names ? names : zg_module_alpn(m);
}
