/* tests/unit/test_loader.c - Criterion tests of the module loader: a good
 * module, refusals (ABI version, missing symbol, missing file, bad name, not an
 * ELF, wrong name, load hook) and private memfd copies picked up on reload. */
#define _GNU_SOURCE
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "unit_env.h"
#include "zg_module.h"

static char err[4096];

/* A test module built by core.inc: $ZERG_BUILDDIR/tests/modules/.libs/NAME.so */
static const char *test_module(const char *name)
{
    static char buf[4][4096];
    static int next;
    const char *b = getenv("ZERG_BUILDDIR");
    cr_assert(b && *b, "ZERG_BUILDDIR is not set (run the tests through make check)");
    char *p = buf[next++ % 4];
    snprintf(p, sizeof(buf[0]), "%s/tests/modules/.libs/%s.so", b, name);
    cr_assert_eq(access(p, R_OK), 0, "%s is missing (built by make check)", p);
    return p;
}

static void copy_file(const char *from, const char *to)
{
    FILE *in = fopen(from, "rb");
    cr_assert_not_null(in, "%s: %s", from, strerror(errno));
    FILE *out = fopen(to, "wb"); /* truncates in place: same inode */
    cr_assert_not_null(out, "%s: %s", to, strerror(errno));
    char buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof(buf), in)) > 0)
        cr_assert_eq(fwrite(buf, 1, n, out), n);
    fclose(in);
    cr_assert_eq(fclose(out), 0);
}

static char tmpdir[64];

static void make_tmpdir(void)
{
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/zg-test-loader-XXXXXX");
    cr_assert_not_null(mkdtemp(tmpdir));
}

static void remove_tmpdir(const char *file)
{
    char p[128];
    snprintf(p, sizeof(p), "%s/%s", tmpdir, file);
    unlink(p);
    rmdir(tmpdir);
}

Test(loader, good_module)
{
    zg_module *m = zg_module_load(modules_dir(), "echo", err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    cr_assert_str_eq(m->desc->name, "echo");
    cr_assert_eq(m->desc->abi_version, ZERG_ABI_VERSION);
    cr_assert_eq(m->desc->struct_size, sizeof(zerg_module));
    cr_assert_not_null(m->desc->on_data);
    cr_assert_not_null(m->handle);
    char want[4200];
    snprintf(want, sizeof(want), "%s/echo.so", modules_dir());
    cr_assert_str_eq(m->path, want);
    zg_module_unload(m);
}

Test(loader, load_path)
{
    char p[4200];
    snprintf(p, sizeof(p), "%s/echo.so", modules_dir());
    zg_module *m = zg_module_load_path(p, "echo", err, sizeof(err));
    cr_assert_not_null(m, "%s", err);
    cr_assert_str_eq(m->desc->name, "echo");
    zg_module_unload(m);
}

Test(loader, other_abi_version)
{
    const char *p = test_module("bad_abi");
    cr_assert_null(zg_module_load_path(p, "bad_abi", err, sizeof(err)));
    char want[4400];
    snprintf(want, sizeof(want),
             "module bad_abi: %s was built for module ABI version %u, this zerg has version %u", p,
             ZERG_ABI_VERSION + 1, ZERG_ABI_VERSION);
    cr_assert_str_eq(err, want);
    cr_assert_null(strchr(err, '\n'), "one line");
}

Test(loader, missing_symbol)
{
    const char *p = test_module("no_symbol");
    cr_assert_null(zg_module_load_path(p, "no_symbol", err, sizeof(err)));
    char want[4400];
    snprintf(want, sizeof(want),
             "module no_symbol: %s has no symbol zerg_module_info: not a zerg module", p);
    cr_assert_str_eq(err, want);
}

Test(loader, load_hook_refuses)
{
    const char *p = test_module("refuse");
    cr_assert_null(zg_module_load_path(p, "refuse", err, sizeof(err)));
    char want[4400];
    snprintf(want, sizeof(want), "module refuse: %s refused to load", p);
    cr_assert_str_eq(err, want);
}

Test(loader, missing_file)
{
    cr_assert_null(zg_module_load(modules_dir(), "nosuch", err, sizeof(err)));
    char want[4400];
    snprintf(want, sizeof(want),
             "module nosuch: cannot open %s/nosuch.so: No such file or directory", modules_dir());
    cr_assert_str_eq(err, want);
}

Test(loader, bad_names)
{
    static const char *const names[] = {"../echo", "echo.so", "a/b", "."};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        err[0] = '\0';
        cr_assert_null(zg_module_load(modules_dir(), names[i], err, sizeof(err)));
        char want[64];
        snprintf(want, sizeof(want), "bad module name \"%s\"", names[i]);
        cr_assert_str_eq(err, want);
    }
}

Test(loader, not_an_elf)
{
    make_tmpdir();
    char p[128];
    snprintf(p, sizeof(p), "%s/junk.so", tmpdir);
    FILE *f = fopen(p, "w");
    cr_assert_not_null(f);
    fputs("this is not a shared object\n", f);
    fclose(f);
    zg_module *m = zg_module_load(tmpdir, "junk", err, sizeof(err));
    remove_tmpdir("junk.so");
    cr_assert_null(m);
    char want[256];
    snprintf(want, sizeof(want), "module junk: cannot load %s: ", p);
    cr_assert(strncmp(err, want, strlen(want)) == 0, "\"%s\" does not start with \"%s\"", err,
              want);
}

Test(loader, descriptor_name_must_match)
{
    make_tmpdir();
    char p[128];
    snprintf(p, sizeof(p), "%s/other.so", tmpdir);
    char src[4200];
    snprintf(src, sizeof(src), "%s/echo.so", modules_dir());
    copy_file(src, p);
    zg_module *m = zg_module_load(tmpdir, "other", err, sizeof(err));
    remove_tmpdir("other.so");
    cr_assert_null(m);
    char want[256];
    snprintf(want, sizeof(want),
             "module other: %s has a malformed descriptor (name \"echo\", size %zu)", p,
             sizeof(zerg_module));
    cr_assert_str_eq(err, want);
}

Test(loader, two_loads_two_copies)
{
    zg_module *a = zg_module_load(modules_dir(), "echo", err, sizeof(err));
    cr_assert_not_null(a, "%s", err);
    zg_module *b = zg_module_load(modules_dir(), "echo", err, sizeof(err));
    cr_assert_not_null(b, "%s", err);
    /* expect, not assert: on failure the test still unloads both */
    cr_expect_neq(a->handle, b->handle, "dlopen must not share one mapping");
    cr_expect_neq(a->desc, b->desc, "each copy has its own descriptor");
    cr_expect_neq(a->desc->conf_init, b->desc->conf_init, "and its own code");
    zg_module_unload(a);
    /* b still works after a is gone */
    cr_assert_str_eq(b->desc->name, "echo");
    uint64_t conf[4] = {0};
    cr_assert_eq(b->desc->conf_init(NULL, conf), 0);
    cr_assert_eq(conf[0], 60000);
    zg_module_unload(b);
}

Test(loader, replaced_file_is_picked_up)
{
    make_tmpdir();
    char p[128], src[4200];
    snprintf(p, sizeof(p), "%s/echo.so", tmpdir);
    snprintf(src, sizeof(src), "%s/echo.so", modules_dir());
    copy_file(src, p);

    zg_module *first = zg_module_load(tmpdir, "echo", err, sizeof(err));
    cr_assert_not_null(first, "%s", err);

    /* overwrite the same file with a module of another ABI version */
    copy_file(test_module("bad_abi"), p);
    zg_module *second = zg_module_load(tmpdir, "echo", err, sizeof(err));
    remove_tmpdir("echo.so");
    if (second) {
        zg_module_unload(second);
        zg_module_unload(first);
        cr_assert_fail("the new file on disk must be loaded, not the cached copy");
    }
    char want[4400];
    snprintf(want, sizeof(want),
             "module echo: %s was built for module ABI version %u, this zerg has version %u", p,
             ZERG_ABI_VERSION + 1, ZERG_ABI_VERSION);
    cr_assert_str_eq(err, want);

    /* the first copy is untouched: its descriptor and code still work */
    cr_assert_str_eq(first->desc->name, "echo");
    cr_assert_str_eq(first->desc->version, "1.0");
    cr_assert_eq(first->desc->abi_version, ZERG_ABI_VERSION);
    uint64_t conf[4] = {0};
    cr_assert_eq(first->desc->conf_init(NULL, conf), 0);
    cr_assert_eq(conf[0], 60000);
    zg_module_unload(first);
}
