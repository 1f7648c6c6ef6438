/* alloc_count.c - an LD_PRELOAD shim for the hot-path allocation test: counts
 * malloc/calloc/realloc/aligned_alloc calls of each process in a small file
 * ($ZG_ALLOC_DIR/PID) that the test reads while zerg runs. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

static volatile uint64_t *counter;
static pid_t counter_pid;
static __thread int busy;

static void *(*real_malloc)(size_t);
static void *(*real_calloc)(size_t, size_t);
static void *(*real_realloc)(void *, size_t);
static void *(*real_aligned_alloc)(size_t, size_t);
static void (*real_free)(void *);

/* dlsym may call calloc: serve it from a static area while resolving */
static char bootstrap[4096];
static size_t bootstrap_used;

static void count(void)
{
    if (busy)
        return;
    busy = 1;
    pid_t pid = getpid();
    if (counter_pid != pid) {
        counter = NULL;
        counter_pid = pid;
        const char *dir = getenv("ZG_ALLOC_DIR");
        if (dir) {
            char path[512];
            snprintf(path, sizeof(path), "%s/%d", dir, (int)pid);
            int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
            if (fd >= 0 && ftruncate(fd, sizeof(uint64_t)) == 0) {
                void *p = mmap(NULL, sizeof(uint64_t), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
                if (p != MAP_FAILED)
                    counter = p;
            }
            if (fd >= 0)
                close(fd);
        }
    }
    if (counter)
        (*counter)++;
    busy = 0;
}

static void resolve(void)
{
    if (real_malloc)
        return;
    busy = 1;
    real_calloc = dlsym(RTLD_NEXT, "calloc");
    real_malloc = dlsym(RTLD_NEXT, "malloc");
    real_realloc = dlsym(RTLD_NEXT, "realloc");
    real_aligned_alloc = dlsym(RTLD_NEXT, "aligned_alloc");
    real_free = dlsym(RTLD_NEXT, "free");
    busy = 0;
}

void *malloc(size_t n)
{
    resolve();
    count();
    return real_malloc(n);
}

void *calloc(size_t a, size_t b)
{
    if (!real_calloc) {
        if (busy) { /* inside dlsym */
            void *p = bootstrap + bootstrap_used;
            bootstrap_used += (a * b + 15) & ~(size_t)15;
            return bootstrap_used <= sizeof(bootstrap) ? p : NULL;
        }
        resolve();
    }
    count();
    return real_calloc(a, b);
}

void *realloc(void *p, size_t n)
{
    resolve();
    count();
    return real_realloc(p, n);
}

void *aligned_alloc(size_t al, size_t n)
{
    resolve();
    count();
    return real_aligned_alloc(al, n);
}

void free(void *p)
{
    if ((char *)p >= bootstrap && (char *)p < bootstrap + sizeof(bootstrap))
        return;
    resolve();
    real_free(p);
}
