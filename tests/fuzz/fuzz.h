/* tests/fuzz/fuzz.h - the two entry points of a fuzz target, as libFuzzer
 * and replay.c call them. */
#ifndef ZG_FUZZ_H
#define ZG_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include "test_check.h"

/* The size of the next piece of left bytes, as reads deliver them: all of
 * them one time in four, else 1 to 64, from a generator seeded by the input. */
static inline size_t fuzz_piece(unsigned *seed, size_t left)
{
    *seed = *seed * 1103515245u + 12345u;
    size_t piece = *seed % 4 == 0 ? left : 1 + (*seed >> 16) % 64;
    return piece < left ? piece : left;
}

/* One input; returns 0. A broken contract aborts. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
/* Optional: once, before the first input. */
int LLVMFuzzerInitialize(int *argc, char ***argv);

#endif
