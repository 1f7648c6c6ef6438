/* zg_util.c - unit parsing (sizes, durations, addresses), clocks and CPUs. */
#define _GNU_SOURCE
#include "zg_util.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/un.h>
#include <strings.h>
#include <stdarg.h>
#include <sys/prctl.h>
#include <time.h>

uint64_t zg_monotonic_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* A non-negative decimal number followed by one of the given suffixes. */
static int parse_scaled(const char *s, const char *const *units, const uint64_t *scale, size_t n,
                        uint64_t *out)
{
    if (!s || !isdigit((unsigned char)*s))
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (strcasecmp(end, units[i]) == 0) {
            if (scale[i] && v > UINT64_MAX / scale[i])
                return -1;
            *out = v * scale[i];
            return 0;
        }
    }
    return -1;
}

int zg_parse_size(const char *s, uint64_t *out)
{
    static const char *const units[] = {"", "b", "k", "kb", "m", "mb", "g", "gb"};
    static const uint64_t scale[] = {1,        1,        1u << 10, 1u << 10,
                                     1u << 20, 1u << 20, 1u << 30, 1u << 30};
    return parse_scaled(s, units, scale, ZG_ARRAY_SIZE(units), out);
}

int zg_parse_msec(const char *s, uint64_t *out)
{
    static const char *const units[] = {"ms", "s", "m", "h", "d"};
    static const uint64_t scale[] = {1, 1000, 60000, 3600000, 86400000};
    return parse_scaled(s, units, scale, ZG_ARRAY_SIZE(units), out);
}

int zg_parse_int(const char *s, int64_t *out)
{
    if (!s || !*s)
        return -1;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return -1;
    *out = v;
    return 0;
}

int zg_parse_bool(const char *s, int *out)
{
    static const char *const yes[] = {"true", "on", "yes"};
    static const char *const no[] = {"false", "off", "no"};
    for (size_t i = 0; i < ZG_ARRAY_SIZE(yes); i++) {
        if (strcasecmp(s, yes[i]) == 0) {
            *out = 1;
            return 0;
        }
        if (strcasecmp(s, no[i]) == 0) {
            *out = 0;
            return 0;
        }
    }
    return -1;
}

int zg_unix_addr(const char *path, struct sockaddr_storage *out, socklen_t *len, char *err,
                 size_t errlen)
{
    struct sockaddr_un *un = (struct sockaddr_un *)out;
    size_t n = strlen(path);
    if (n == 0 || (path[0] == '@' && n == 1)) {
        snprintf(err, errlen, "expected \"unix:/path\" or \"unix:@name\"");
        return -1;
    }
    if (n >= sizeof(un->sun_path)) {
        snprintf(err, errlen, "socket path longer than %zu bytes", sizeof(un->sun_path) - 1);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    un->sun_family = AF_UNIX;
    memcpy(un->sun_path, path, n);
    if (path[0] == '@') { /* Linux's abstract namespace: no file */
        un->sun_path[0] = '\0';
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n);
    } else {
        *len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
    }
    return 0;
}

int zg_parse_addr(const char *s, struct sockaddr_storage *out, socklen_t *len, char *err,
                  size_t errlen)
{
    char host[256];
    if (strncmp(s, "unix:", 5) == 0)
        return zg_unix_addr(s + 5, out, len, err, errlen);
    const char *port;
    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (!rb || rb[1] != ':') {
            snprintf(err, errlen, "expected \"[IPv6]:port\"");
            return -1;
        }
        if ((size_t)(rb - s - 1) >= sizeof(host)) {
            snprintf(err, errlen, "address too long");
            return -1;
        }
        memcpy(host, s + 1, rb - s - 1);
        host[rb - s - 1] = '\0';
        port = rb + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || colon == s) {
            snprintf(err, errlen, "expected \"host:port\"");
            return -1;
        }
        if ((size_t)(colon - s) >= sizeof(host)) {
            snprintf(err, errlen, "address too long");
            return -1;
        }
        memcpy(host, s, colon - s);
        host[colon - s] = '\0';
        port = colon + 1;
    }
    int64_t p;
    if (zg_parse_int(port, &p) < 0 || p < 1 || p > 65535) {
        snprintf(err, errlen, "bad port \"%s\" (1-65535)", port);
        return -1;
    }
    memset(out, 0, sizeof(*out));
    struct sockaddr_in *in4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)out;
    if (strcmp(host, "*") == 0 || strcmp(host, "0.0.0.0") == 0) {
        in4->sin_family = AF_INET;
        in4->sin_addr.s_addr = htonl(INADDR_ANY);
        in4->sin_port = htons((uint16_t)p);
        *len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET, host, &in4->sin_addr) == 1) {
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)p);
        *len = sizeof(*in4);
        return 0;
    }
    if (inet_pton(AF_INET6, host, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)p);
        *len = sizeof(*in6);
        return 0;
    }
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo(host, NULL, &hints, &res);
    if (rc != 0 || !res) {
        snprintf(err, errlen, "cannot resolve \"%s\": %s", host, gai_strerror(rc));
        return -1;
    }
    memcpy(out, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    if (out->ss_family == AF_INET)
        in4->sin_port = htons((uint16_t)p);
    else
        in6->sin6_port = htons((uint16_t)p);
    freeaddrinfo(res);
    return 0;
}

const char *zg_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in4->sin_addr, ip, sizeof(ip));
        snprintf(buf, len, "%s:%u", ip, ntohs(in4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        snprintf(buf, len, "[%s]:%u", ip, ntohs(in6->sin6_port));
    } else if (sa->sa_family == AF_UNIX) {
        const struct sockaddr_un *un = (const struct sockaddr_un *)sa;
        if (un->sun_path[0])
            snprintf(buf, len, "unix:%s", un->sun_path);
        else if (un->sun_path[1]) /* abstract; NUL-padded as zg_unix_addr makes it */
            snprintf(buf, len, "unix:@%s", un->sun_path + 1);
        else
            snprintf(buf, len, "unix:");
    } else {
        snprintf(buf, len, "(unknown)");
    }
    return buf;
}

int zg_addr_no_zc(const struct sockaddr *sa, int send_zc_loopback)
{
    return sa->sa_family == AF_UNIX || (!send_zc_loopback && zg_addr_is_loopback(sa));
}

const char *zg_addr_unix_path(const struct sockaddr_storage *ss)
{
    const struct sockaddr_un *un = (const struct sockaddr_un *)ss;
    return ss->ss_family == AF_UNIX && un->sun_path[0] ? un->sun_path : NULL;
}

int zg_addr_is_loopback(const struct sockaddr *sa)
{
    if (sa->sa_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)sa)->sin_addr.s_addr) >> 24) == 127;
    if (sa->sa_family == AF_INET6) {
        const struct in6_addr *a = &((const struct sockaddr_in6 *)sa)->sin6_addr;
        return IN6_IS_ADDR_LOOPBACK(a) || (IN6_IS_ADDR_V4MAPPED(a) && a->s6_addr[12] == 127);
    }
    return 0;
}

int zg_cpus_allowed(int *cpus, int max)
{
    cpu_set_t set;
    int n = 0;
    if (sched_getaffinity(0, sizeof(set), &set) < 0)
        return -1;
    for (int i = 0; i < CPU_SETSIZE && n < max; i++)
        if (CPU_ISSET(i, &set))
            cpus[n++] = i;
    return n;
}

/* The title overwrites argv's memory (after copying environ elsewhere is not
 * needed: we only use the argv area, which is always ours). */
static char *title_base;
static size_t title_len;

void zg_proctitle_init(int argc, char **argv)
{
    if (argc < 1)
        return;
    char *end = argv[argc - 1] + strlen(argv[argc - 1]);
    title_base = argv[0];
    title_len = (size_t)(end - title_base);
}

void zg_proctitle_set(const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    prctl(PR_SET_NAME, buf, 0, 0, 0); /* truncated to 15 bytes: "zerg: worker 0 " */
    if (!title_base || title_len < 2)
        return;
    memset(title_base, 0, title_len);
    snprintf(title_base, title_len, "%s", buf);
}
