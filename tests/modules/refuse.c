/* refuse.c - a test module whose load hook returns non-zero: the loader must
 * refuse it after the ABI checks pass. */
#include <zerg/module.h>

static int refuse_load(const zerg_api *api)
{
    (void)api;
    return -1;
}

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION,
    .struct_size = sizeof(zerg_module),
    .name = "refuse",
    .version = "0.0",
    .load = refuse_load,
};
