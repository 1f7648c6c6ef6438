/* tests/fuzz/replay.c - runs a fuzz target over its corpus without libFuzzer,
 * so `make check` exercises every harness with the compiler at hand: each file
 * of each folder (or file) named on the command line, or of FUZZ_CORPUS, is
 * handed to LLVMFuzzerTestOneInput once. A crash or abort fails the test. */
#define _GNU_SOURCE
#include <dirent.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

/* targets without an initializer leave it NULL */
#pragma weak LLVMFuzzerInitialize

/* Hands the file at path (st: its stat) to the target, in a buffer of
 * exactly its size, so ASan sees any read past the input. */
static int replay_file(const char *path, const struct stat *st)
{
    size_t len = (size_t)st->st_size;
    uint8_t *buf = malloc(len ? len : 1);
    FILE *f = fopen(path, "rb");
    int ok = buf && f && fread(buf, 1, len, f) == len;
    if (!ok)
        perror(path);
    else
        LLVMFuzzerTestOneInput(buf, len);
    if (f)
        fclose(f);
    free(buf);
    return ok ? 0 : -1;
}

/* Replays path (a file, or every regular file in a folder, in name order).
 * Returns the number of inputs run, -1 on error. */
static long replay(const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0) {
        perror(path);
        return -1;
    }
    if (!S_ISDIR(st.st_mode))
        return replay_file(path, &st) == 0 ? 1 : -1;
    struct dirent **names;
    int n = scandir(path, &names, NULL, alphasort);
    if (n < 0) {
        perror(path);
        return -1;
    }
    long done = 0;
    for (int i = 0; i < n; i++) {
        char file[4096];
        snprintf(file, sizeof(file), "%s/%s", path, names[i]->d_name);
        if (names[i]->d_name[0] != '.' && stat(file, &st) == 0 && S_ISREG(st.st_mode)) {
            if (replay_file(file, &st) != 0)
                done = -1;
            else if (done >= 0)
                done++;
        }
        free(names[i]);
    }
    free(names);
    return done;
}

int main(int argc, char **argv)
{
    if (LLVMFuzzerInitialize)
        LLVMFuzzerInitialize(&argc, &argv);
#ifdef FUZZ_CORPUS
    static char *deflt[] = {NULL, FUZZ_CORPUS};
    if (argc < 2) {
        deflt[0] = argv[0];
        argv = deflt;
        argc = 2;
    }
#endif
    if (argc < 2) {
        fprintf(stderr, "usage: %s CORPUS_DIR_OR_FILE...\n", argv[0]);
        return 2;
    }
    long total = 0;
    for (int i = 1; i < argc; i++) {
        long n = replay(argv[i]);
        if (n <= 0) {
            fprintf(stderr, "%s: %s\n", argv[i], n == 0 ? "no inputs" : "failed");
            return 1;
        }
        total += n;
    }
    /* the second line in the form .ci/run's test summary counts */
    printf("%s: %ld inputs replayed, no crash\n%ld passed, 0 failed\n", argv[0], total, total);
    return 0;
}
