/* bad_abi.c - a test module built for a module ABI version this core does not
 * speak (ZERG_ABI_VERSION + 1): the loader must refuse it. */
#include <zerg/module.h>

ZERG_MODULE_EXPORT const zerg_module zerg_module_info = {
    .abi_version = ZERG_ABI_VERSION + 1,
    .struct_size = sizeof(zerg_module),
    .name = "bad_abi",
    .version = "0.0",
};
