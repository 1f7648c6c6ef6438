/* tests/fuzz/fuzz_conf.c - fuzz target for zg_conf_load: the input is a
 * zerg.yaml ("@M@" in it stands for the built modules folder). A config is
 * either loaded and freed, or refused with one line of error that names the
 * file; nothing may crash or leak. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "zg_conf.h"

#define CHECK(cond, ...) TEST_CHECK(cond, "fuzz_conf: " __VA_ARGS__)

static char conf_path[] = "/tmp/zg-fuzz-conf-XXXXXX";
static const char *modules;

static void remove_conf(void)
{
    unlink(conf_path);
}

/* The loader dlopens a fresh memfd copy of each module per load, and
 * dlcloses it with the config. libFuzzer cannot follow coverage counters
 * that come and go, so here every memfd copy (named after its module) is
 * loaded from the modules folder instead, and kept loaded. */
void *dlopen(const char *file, int mode)
{
    static void *(*real_dlopen)(const char *, int);
    if (!real_dlopen)
        real_dlopen = (void *(*)(const char *, int))dlsym(RTLD_NEXT, "dlopen");
    char link[256], path[4096];
    ssize_t n;
    if (file && modules && strncmp(file, "/proc/self/fd/", 14) == 0 &&
        (n = readlink(file, link, sizeof(link) - 1)) > 0) {
        link[n] = 0; /* "/memfd:NAME (deleted)" */
        char *name = strncmp(link, "/memfd:", 7) == 0 ? link + 7 : NULL, *end;
        if (name && (end = strchr(name, ' ')))
            *end = 0;
        if (name && snprintf(path, sizeof(path), "%s/%s.so", modules, name) < (int)sizeof(path)) {
            void *keep = real_dlopen(path, mode); /* a reference never dropped */
            if (keep)
                return real_dlopen(path, mode);
        }
    }
    return real_dlopen(file, mode);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    modules = getenv("ZERG_MODULES");
#ifdef FUZZ_MODULES
    if (!modules || !*modules)
        modules = FUZZ_MODULES;
#endif
    CHECK(modules && *modules, "set ZERG_MODULES to the built modules folder");
    /* upstream host names are resolved at load: a mutated one must not wait
     * long on a name server that does not answer */
    setenv("RES_OPTIONS", "timeout:1 attempts:1", 0);
    int fd = mkstemp(conf_path);
    CHECK(fd >= 0, "mkstemp: %m");
    close(fd);
    atexit(remove_conf);
    return 0;
}

/* Writes data to conf_path with each "@M@" replaced by the modules folder. */
static void write_conf(const uint8_t *data, size_t size)
{
    FILE *f = fopen(conf_path, "wb");
    CHECK(f, "%s: %m", conf_path);
    for (size_t i = 0; i < size; i++) {
        if (i + 3 <= size && memcmp(data + i, "@M@", 3) == 0) {
            fputs(modules, f);
            i += 2;
        } else {
            fputc(data[i], f);
        }
    }
    CHECK(fclose(f) == 0, "%s: %m", conf_path);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    write_conf(data, size);
    char err[1024] = "";
    zg_config *cfg = zg_conf_load(conf_path, NULL, err, sizeof(err));
    if (cfg) {
        zg_conf_free(cfg);
        return 0;
    }
    CHECK(err[0], "refused without a message");
    CHECK(strncmp(err, conf_path, strlen(conf_path)) == 0, "error does not name the file: %s", err);
    CHECK(!strchr(err, '\n'), "error of more than one line: %s", err);
    return 0;
}
