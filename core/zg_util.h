/* zg_util.h - small helpers shared by the core: lists, clocks, unit parsing. */
#ifndef ZG_UTIL_H
#define ZG_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define ZG_ARRAY_SIZE(a)                 (sizeof(a) / sizeof((a)[0]))
#define ZG_CONTAINER_OF(p, type, member) ((type *)((char *)(p)-offsetof(type, member)))
#define ZG_UNLIKELY(x)                   __builtin_expect(!!(x), 0)
#define ZG_LIKELY(x)                     __builtin_expect(!!(x), 1)

/* Intrusive doubly linked list; an unlinked node points to itself. */
typedef struct zg_list {
    struct zg_list *prev, *next;
} zg_list;

static inline void zg_list_init(zg_list *l)
{
    l->prev = l->next = l;
}
static inline int zg_list_empty(const zg_list *l)
{
    return l->next == l;
}
static inline void zg_list_add_tail(zg_list *head, zg_list *n)
{
    n->prev = head->prev;
    n->next = head;
    head->prev->next = n;
    head->prev = n;
}
static inline void zg_list_del(zg_list *n)
{
    n->prev->next = n->next;
    n->next->prev = n->prev;
    n->prev = n->next = n;
}

uint64_t zg_monotonic_ms(void);

/* Unit parsers: 0 on success, -1 on a malformed or out-of-range value. */
int zg_parse_size(const char *s, uint64_t *out);
int zg_parse_msec(const char *s, uint64_t *out);
int zg_parse_int(const char *s, int64_t *out);
int zg_parse_bool(const char *s, int *out);
/* "1.2.3.4:80", "[::1]:80", "*:80", "host:80", "unix:/path". Returns 0, or -1 with a
 * reason in err. Host names are resolved (first address). */
int zg_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len, char *err,
                  size_t errlen);
/* A unix socket address from a path ("@name": the abstract namespace). */
int zg_unix_addr(const char *path, struct sockaddr_storage *out, socklen_t *len, char *err,
                 size_t errlen);
/* "1.2.3.4:80" / "[::1]:80" / "unix:/path" into buf. */
const char *zg_addr_str(const struct sockaddr *sa, char *buf, size_t len);

/* 127.0.0.0/8, ::1 or ::ffff:127.x: traffic that never leaves the host. */
int zg_addr_is_loopback(const struct sockaddr *sa);
/* The file of a unix socket address; NULL for other families and for the
 * abstract namespace. */
const char *zg_addr_unix_path(const struct sockaddr_storage *ss);
/* Sends to sa should not use SEND_ZC: a unix socket (no zero-copy there), or
 * loopback unless send_zc_loopback (the kernel copies anyway). */
int zg_addr_no_zc(const struct sockaddr *sa, int send_zc_loopback);

/* Number of CPUs this process may run on, and the i-th of them. */
int zg_cpus_allowed(int *cpus, int max);

/* Process titles shown by ps: "zerg: master", "zerg: worker 0 (cpu 0)". */
void zg_proctitle_init(int argc, char **argv);
void zg_proctitle_set(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
#endif
