/* zg_proxyproto.c - the PROXY protocol header parser (v1 and v2, as the
 * HAProxy specification defines them), strict: anything else is refused. */
#include "zg_proxyproto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

static const uint8_t pp2_sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                    0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};
#define PP1_MAX 107 /* "PROXY TCP6 " + 2 x 39 + 2 x 5 + 3 spaces + CRLF */

static void set_unspec(zg_pp_addrs *out)
{
    memset(out, 0, sizeof(*out));
    out->src.ss_family = out->dst.ss_family = AF_UNSPEC;
}

/* A decimal port, 0..65535, no sign, no leading zero. */
static int parse_port(const char *s, size_t n, uint16_t *port)
{
    if (n == 0 || n > 5 || (n > 1 && s[0] == '0'))
        return -1;
    unsigned v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned)(s[i] - '0');
    }
    if (v > 65535)
        return -1;
    *port = (uint16_t)v;
    return 0;
}

/* ss := the family's address (addr in network byte order) and port. */
static void set_addr(int family, const void *addr, uint16_t port, struct sockaddr_storage *ss,
                     socklen_t *len)
{
    memset(ss, 0, sizeof(*ss));
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)ss;
        a->sin_family = AF_INET;
        a->sin_port = htons(port);
        memcpy(&a->sin_addr, addr, sizeof(a->sin_addr));
        *len = sizeof(*a);
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(port);
        memcpy(&a->sin6_addr, addr, sizeof(a->sin6_addr));
        *len = sizeof(*a);
    }
}

/* "PROXY TCP4|TCP6 SRC DST SPORT DPORT\r\n" or "PROXY UNKNOWN...\r\n" */
static int parse_v1(const char *line, size_t n, zg_pp_addrs *out)
{
    set_unspec(out);
    if (n >= 13 && !memcmp(line, "PROXY UNKNOWN", 13))
        return 0; /* the rest of the line is to be ignored */
    int family;
    if (n > 11 && !memcmp(line, "PROXY TCP4 ", 11))
        family = AF_INET;
    else if (n > 11 && !memcmp(line, "PROXY TCP6 ", 11))
        family = AF_INET6;
    else
        return -1;
    const char *f[4];
    size_t flen[4];
    const char *p = line + 11, *end = line + n;
    for (int i = 0; i < 4; i++) {
        const char *sp = i < 3 ? memchr(p, ' ', (size_t)(end - p)) : end;
        if (!sp || sp == p)
            return -1;
        f[i] = p;
        flen[i] = (size_t)(sp - p);
        p = sp + 1;
    }
    char src[INET6_ADDRSTRLEN], dst[INET6_ADDRSTRLEN];
    uint16_t sport, dport;
    if (flen[0] >= sizeof(src) || flen[1] >= sizeof(dst) || parse_port(f[2], flen[2], &sport) ||
        parse_port(f[3], flen[3], &dport))
        return -1;
    memcpy(src, f[0], flen[0]);
    src[flen[0]] = '\0';
    memcpy(dst, f[1], flen[1]);
    dst[flen[1]] = '\0';
    uint8_t sbin[sizeof(struct in6_addr)], dbin[sizeof(struct in6_addr)];
    if (inet_pton(family, src, sbin) != 1 || inet_pton(family, dst, dbin) != 1)
        return -1;
    set_addr(family, sbin, sport, &out->src, &out->src_len);
    set_addr(family, dbin, dport, &out->dst, &out->dst_len);
    return 0;
}

static int parse_v2(const uint8_t *h, size_t body, zg_pp_addrs *out)
{
    uint8_t ver = h[12] >> 4, cmd = h[12] & 0x0F, fam = h[13];
    set_unspec(out);
    if (ver != 2 || cmd > 1)
        return -1;
    if (cmd == 0) /* LOCAL: the balancer's own connection (a health check) */
        return 0;
    if (fam != 0x11 && fam != 0x21) /* TCP over IPv4, TCP over IPv6 */
        return 0; /* UNSPEC, UDP and unix sockets: the spec lets a receiver keep its own */
    int family = fam == 0x11 ? AF_INET : AF_INET6;
    size_t alen = family == AF_INET ? 4 : 16;
    if (body < 2 * alen + 4)
        return -1; /* too short for its addresses */
    /* source address, destination address, source port, destination port */
    const uint8_t *a = h + 16, *port = a + 2 * alen;
    set_addr(family, a, (uint16_t)(port[0] << 8 | port[1]), &out->src, &out->src_len);
    set_addr(family, a + alen, (uint16_t)(port[2] << 8 | port[3]), &out->dst, &out->dst_len);
    return 0;
}

int zg_pp_parse(const uint8_t *buf, size_t len, zg_pp_addrs *out)
{
    if (len == 0)
        return 0;
    if (buf[0] == 'P') {
        size_t cmp = len < 6 ? len : 6;
        if (memcmp(buf, "PROXY ", cmp))
            return -1;
        size_t scan = len < PP1_MAX ? len : PP1_MAX;
        const uint8_t *cr = memchr(buf, '\r', scan), *lf = memchr(buf, '\n', scan);
        if (lf && (!cr || lf < cr))
            return -1; /* a bare LF ends no header */
        if (!cr)
            return len >= PP1_MAX ? -1 : 0;
        size_t n = (size_t)(cr - buf);
        if (n + 1 == len)
            return 0;
        if (n + 2 > PP1_MAX || cr[1] != '\n' || memchr(buf, '\0', n) ||
            parse_v1((const char *)buf, n, out) < 0)
            return -1;
        return (int)(n + 2);
    }
    size_t cmp = len < sizeof(pp2_sig) ? len : sizeof(pp2_sig);
    if (memcmp(buf, pp2_sig, cmp))
        return -1;
    if (len < 16)
        return 0;
    size_t body = (size_t)buf[14] << 8 | buf[15];
    if (16 + body > ZG_PP_MAX)
        return -1;
    if (len < 16 + body)
        return 0;
    if (parse_v2(buf, body, out) < 0)
        return -1;
    return (int)(16 + body);
}
