/* unit_env.h - where the unit tests find what make check built: the module
 * folder (ZERG_MODULES, else $ZERG_BUILDDIR/build-modules). */
#ifndef UNIT_ENV_H
#define UNIT_ENV_H

#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>

static inline const char *modules_dir(void)
{
    static char buf[4096];
    const char *m = getenv("ZERG_MODULES");
    if (m && *m)
        return m;
    const char *b = getenv("ZERG_BUILDDIR");
    cr_assert(b && *b, "ZERG_MODULES is not set (run the tests through make check)");
    snprintf(buf, sizeof(buf), "%s/build-modules", b);
    return buf;
}

#endif
