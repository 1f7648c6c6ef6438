/* proxy_pp.c - PROXY protocol v1 (text) and v2 (binary) header encoding,
 * as sent to the upstream before the client's bytes. Pure functions. */
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>
#include <netinet/in.h>

#include "proxy.h"

static const uint8_t pp2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static int fam(const struct sockaddr *sa)
{
    if (!sa)
        return AF_UNSPEC;
    return sa->sa_family == AF_INET || sa->sa_family == AF_INET6 ? sa->sa_family : AF_UNSPEC;
}

/* dst in the family of src: the same address, or the zero address of that
 * family when dst is unknown or of the other family. */
static void dst_like(const struct sockaddr *src, const struct sockaddr *dst,
                     struct sockaddr_storage *out)
{
    memset(out, 0, sizeof(*out));
    out->ss_family = src->sa_family;
    if (fam(dst) == src->sa_family)
        memcpy(out, dst,
               src->sa_family == AF_INET ? sizeof(struct sockaddr_in)
                                         : sizeof(struct sockaddr_in6));
}

static size_t pp_v1(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out,
                    size_t cap)
{
    int n;
    if (fam(src) == AF_UNSPEC) {
        n = snprintf((char *)out, cap, "PROXY UNKNOWN\r\n");
    } else {
        struct sockaddr_storage d;
        char sa[INET6_ADDRSTRLEN], da[INET6_ADDRSTRLEN];
        unsigned sp, dp;
        dst_like(src, dst, &d);
        if (src->sa_family == AF_INET) {
            const struct sockaddr_in *s = (const void *)src, *t = (const void *)&d;
            inet_ntop(AF_INET, &s->sin_addr, sa, sizeof(sa));
            inet_ntop(AF_INET, &t->sin_addr, da, sizeof(da));
            sp = ntohs(s->sin_port);
            dp = ntohs(t->sin_port);
        } else {
            const struct sockaddr_in6 *s = (const void *)src, *t = (const void *)&d;
            inet_ntop(AF_INET6, &s->sin6_addr, sa, sizeof(sa));
            inet_ntop(AF_INET6, &t->sin6_addr, da, sizeof(da));
            sp = ntohs(s->sin6_port);
            dp = ntohs(t->sin6_port);
        }
        n = snprintf((char *)out, cap, "PROXY %s %s %s %u %u\r\n",
                     src->sa_family == AF_INET ? "TCP4" : "TCP6", sa, da, sp, dp);
    }
    if (n < 0 || (size_t)n >= cap)
        return 0;
    return (size_t)n;
}

static size_t pp_v2(const struct sockaddr *src, const struct sockaddr *dst, uint8_t *out,
                    size_t cap)
{
    size_t alen = fam(src) == AF_INET ? 12 : fam(src) == AF_INET6 ? 36 : 0;
    if (cap < 16 + alen)
        return 0;
    memcpy(out, pp2_sig, 12);
    out[12] = alen ? 0x21 : 0x20; /* version 2, PROXY or LOCAL */
    out[13] = fam(src) == AF_INET ? 0x11 : fam(src) == AF_INET6 ? 0x21 : 0x00;
    out[14] = (uint8_t)(alen >> 8);
    out[15] = (uint8_t)alen;
    if (!alen)
        return 16;
    struct sockaddr_storage d;
    dst_like(src, dst, &d);
    uint8_t *p = out + 16;
    if (src->sa_family == AF_INET) {
        const struct sockaddr_in *s = (const void *)src, *t = (const void *)&d;
        memcpy(p, &s->sin_addr, 4);
        memcpy(p + 4, &t->sin_addr, 4);
        memcpy(p + 8, &s->sin_port, 2);
        memcpy(p + 10, &t->sin_port, 2);
    } else {
        const struct sockaddr_in6 *s = (const void *)src, *t = (const void *)&d;
        memcpy(p, &s->sin6_addr, 16);
        memcpy(p + 16, &t->sin6_addr, 16);
        memcpy(p + 32, &s->sin6_port, 2);
        memcpy(p + 34, &t->sin6_port, 2);
    }
    return 16 + alen;
}

size_t proxy_pp_encode(int version, const struct sockaddr *src, const struct sockaddr *dst,
                       uint8_t *out, size_t cap)
{
    if (version == 1)
        return pp_v1(src, dst, out, cap);
    if (version == 2)
        return pp_v2(src, dst, out, cap);
    return 0;
}
