/* tests/fuzz/fuzz.h - the two entry points of a fuzz target, as libFuzzer
 * and replay.c call them. */
#ifndef ZG_FUZZ_H
#define ZG_FUZZ_H

#include <stddef.h>
#include <stdint.h>

/* One input; returns 0. A broken contract aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: once, before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
