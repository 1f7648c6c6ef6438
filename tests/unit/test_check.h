/* tests/unit/test_check.h - TEST_CHECK, the abort-on-failure check shared by
 * the http mock core and the fuzz targets: a broken rule is a crash, which
 * Criterion, libFuzzer and replay.c all report. */
#ifndef ZG_TEST_CHECK_H
#define ZG_TEST_CHECK_H

#include <stdio.h>
#include <stdlib.h>

/* If cond is false: print file:line and the printf-style message, abort. */
#define TEST_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "%s:%d: ", __FILE__, __LINE__);                                        \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
