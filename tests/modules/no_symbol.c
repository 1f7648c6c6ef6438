/* no_symbol.c - a test shared object that exports no zerg_module_info: the
 * loader must refuse it as "not a zerg module". */
#include <zerg/module.h>

ZERG_MODULE_EXPORT int zerg_not_a_module(void);

ZERG_MODULE_EXPORT int zerg_not_a_module(void)
{
    return ZERG_ABI_VERSION;
}
