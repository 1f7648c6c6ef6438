/* test_proxyproto.c - the core's PROXY protocol header parser: v1 and v2,
 * partial input, refusals, round trips with the proxy module's encoder, and
 * mutated headers (bounds are checked by the sanitizer build). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "../../core/zg_proxyproto.h"
#include "test_addr.h"
#include "proxy.h"

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

static void assert_addr(const struct sockaddr_storage *got, socklen_t len, const char *ip, int port)
{
    struct sockaddr_storage want = test_addr(ip, port);
    socklen_t wlen =
        want.ss_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6);
    cr_assert_eq(len, wlen, "%s", ip);
    cr_assert(memcmp(got, &want, wlen) == 0, "%s:%d", ip, port);
}

/* Parses h (n bytes) whole, after checking every shorter prefix asks for more. */
static int parse_whole(const uint8_t *h, size_t n, zg_pp_addrs *a)
{
    for (size_t i = 0; i < n; i++)
        cr_assert_eq(zg_pp_parse(h, i, a), 0, "prefix of %zu bytes", i);
    return zg_pp_parse(h, n, a);
}

static int parse_text(const char *s, zg_pp_addrs *a)
{
    return zg_pp_parse((const uint8_t *)s, strlen(s), a);
}

Test(pp_parse, v1_tcp4_and_tcp6)
{
    zg_pp_addrs a;
    const char *h4 = "PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\nGET /";
    size_t hl = strlen("PROXY TCP4 203.0.113.7 192.0.2.1 5555 80\r\n");
    cr_assert_eq(parse_whole((const uint8_t *)h4, hl, &a), (int)hl);
    cr_assert_eq(parse_text(h4, &a), (int)hl, "bytes after the header are not its own");
    assert_addr(&a.src, a.src_len, "203.0.113.7", 5555);
    assert_addr(&a.dst, a.dst_len, "192.0.2.1", 80);

    const char *h6 = "PROXY TCP6 2001:db8::1 ::1 65535 0\r\n";
    cr_assert_eq(parse_whole((const uint8_t *)h6, strlen(h6), &a), (int)strlen(h6));
    assert_addr(&a.src, a.src_len, "2001:db8::1", 65535);
    assert_addr(&a.dst, a.dst_len, "::1", 0);
}

Test(pp_parse, v1_unknown_keeps_the_connection_addresses)
{
    zg_pp_addrs a;
    cr_assert_eq(parse_text("PROXY UNKNOWN\r\n", &a), 15);
    cr_assert_eq(a.src.ss_family, AF_UNSPEC);
    const char *h = "PROXY UNKNOWN ffff::1 ffff::2 1 2\r\n";
    cr_assert_eq(parse_text(h, &a), (int)strlen(h));
    cr_assert_eq(a.src.ss_family, AF_UNSPEC);
}

Test(pp_parse, v1_refusals)
{
    static const char *bad[] = {
        "GET / HTTP/1.1\r\n",
        "proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP5 1.2.3.4 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2\rX",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 3\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1\r\n",
        "PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n",
        "PROXY TCP4 ::1 5.6.7.8 1 2\r\n",
        "PROXY TCP6 1.2.3.4 ::1 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 65536 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 080 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 -1 2\r\n",
        "PROXY TCP4 1.2.3.256 5.6.7.8 1 2\r\n",
        "PROXY TCP4 1.2.3.4 5.6.7.8 1 2 \r\n",
        "PROXY\r\n",
        "PROXY \r\n",
        "PROXY TCP4\r\n",
    };
    zg_pp_addrs a;
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        cr_assert_eq(parse_text(bad[i], &a), -1, "%s", bad[i]);
    /* refused at the first byte that cannot belong to a header */
    cr_assert_eq(parse_text("G", &a), -1);
    cr_assert_eq(parse_text("PROXI", &a), -1);
    /* a NUL inside, and a line longer than v1's 107 bytes */
    const uint8_t nul[] = "PROXY TCP4 1.2.3.4\0 5.6.7.8 1 2\r\n";
    cr_assert_eq(zg_pp_parse(nul, sizeof(nul) - 1, &a), -1);
    char longer[200];
    memset(longer, 'x', sizeof(longer));
    memcpy(longer, "PROXY UNKNOWN ", 14);
    cr_assert_eq(zg_pp_parse((const uint8_t *)longer, 106, &a), 0);
    cr_assert_eq(zg_pp_parse((const uint8_t *)longer, 107, &a), -1);
    memcpy(longer + 106, "\r\n", 2);
    cr_assert_eq(zg_pp_parse((const uint8_t *)longer, 108, &a), -1, "108 bytes with CRLF");
    memcpy(longer + 105, "\r\n", 2);
    cr_assert_eq(zg_pp_parse((const uint8_t *)longer, 107, &a), 107, "107 bytes with CRLF");
}

/* A v2 header: command, family byte, then body bytes. */
static size_t v2(uint8_t *out, uint8_t ver_cmd, uint8_t fam, const uint8_t *body, size_t n)
{
    memcpy(out, sig, 12);
    out[12] = ver_cmd;
    out[13] = fam;
    out[14] = (uint8_t)(n >> 8);
    out[15] = (uint8_t)n;
    memcpy(out + 16, body, n);
    return 16 + n;
}

Test(pp_parse, v2_families_commands_and_tlvs)
{
    uint8_t h[8192], body[4096] = {203, 0, 113, 7, 192, 0, 2, 1, 0x15, 0xb3, 0, 80};
    zg_pp_addrs a;
    size_t n = v2(h, 0x21, 0x11, body, 12);
    cr_assert_eq(parse_whole(h, n, &a), (int)n);
    assert_addr(&a.src, a.src_len, "203.0.113.7", 5555);
    assert_addr(&a.dst, a.dst_len, "192.0.2.1", 80);
    /* TLVs after the addresses belong to the header */
    memcpy(body + 12,
           "\x04\x00\x03"
           "abc",
           6); /* type 4 (NOOP), length 3 */
    n = v2(h, 0x21, 0x11, body, 18);
    cr_assert_eq(parse_whole(h, n, &a), (int)n);
    assert_addr(&a.src, a.src_len, "203.0.113.7", 5555);

    uint8_t b6[36] = {0x20, 0x01, 0x0d, 0xb8};
    b6[31] = 1;
    b6[32] = 0x01;
    b6[33] = 0xbb;
    b6[35] = 80;
    n = v2(h, 0x21, 0x21, b6, 36);
    cr_assert_eq(parse_whole(h, n, &a), (int)n);
    assert_addr(&a.src, a.src_len, "2001:db8::", 443);
    assert_addr(&a.dst, a.dst_len, "::1", 80);

    /* LOCAL, UNSPEC, UDP and unix: the connection's own addresses stay */
    const uint8_t kinds[][2] = {
        {0x20, 0x00}, {0x20, 0x11}, {0x21, 0x00}, {0x21, 0x12}, {0x21, 0x31}};
    for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
        n = v2(h, kinds[i][0], kinds[i][1], body, kinds[i][1] == 0x31 ? 216 : 12);
        cr_assert_eq(zg_pp_parse(h, n, &a), (int)n, "kind %zu", i);
        cr_assert_eq(a.src.ss_family, AF_UNSPEC, "kind %zu", i);
    }
}

Test(pp_parse, v2_refusals)
{
    uint8_t h[8192], body[4096] = {0};
    zg_pp_addrs a;
    cr_assert_eq(zg_pp_parse(h, v2(h, 0x11, 0x11, body, 12), &a), -1, "version 1");
    cr_assert_eq(zg_pp_parse(h, v2(h, 0x22, 0x11, body, 12), &a), -1, "command 2");
    cr_assert_eq(zg_pp_parse(h, v2(h, 0x21, 0x11, body, 11), &a), -1, "IPv4 body short");
    cr_assert_eq(zg_pp_parse(h, v2(h, 0x21, 0x21, body, 35), &a), -1, "IPv6 body short");
    cr_assert_eq(zg_pp_parse(h, v2(h, 0x21, 0x11, body, ZG_PP_MAX - 15), &a), -1, "too long");
    cr_assert_eq(zg_pp_parse(h, v2(h, 0x21, 0x11, body, ZG_PP_MAX - 16), &a), ZG_PP_MAX);
    h[5] = 'X';
    cr_assert_eq(zg_pp_parse(h, 6, &a), -1, "signature");
}

Test(pp_parse, round_trips_with_the_proxy_encoder)
{
    const char *pairs[][2] = {{"192.0.2.1", "198.51.100.2"}, {"2001:db8::7", "::1"}};
    for (int version = 1; version <= 2; version++)
        for (size_t i = 0; i < 2; i++) {
            struct sockaddr_storage s = test_addr(pairs[i][0], 40000 + (int)i),
                                    d = test_addr(pairs[i][1], 8080);
            uint8_t out[PROXY_PP_MAX + 8];
            size_t n = proxy_pp_encode(version, (struct sockaddr *)&s, (struct sockaddr *)&d, out,
                                       PROXY_PP_MAX);
            cr_assert_gt(n, 0);
            memcpy(out + n, "DATA", 4);
            zg_pp_addrs a;
            cr_assert_eq(zg_pp_parse(out, n + 4, &a), (int)n, "v%d %s", version, pairs[i][0]);
            assert_addr(&a.src, a.src_len, pairs[i][0], 40000 + (int)i);
            assert_addr(&a.dst, a.dst_len, pairs[i][1], 8080);
        }
    /* without a client address: v1 UNKNOWN, v2 LOCAL */
    for (int version = 1; version <= 2; version++) {
        uint8_t out[PROXY_PP_MAX];
        size_t n = proxy_pp_encode(version, NULL, NULL, out, sizeof(out));
        zg_pp_addrs a;
        cr_assert_eq(zg_pp_parse(out, n, &a), (int)n);
        cr_assert_eq(a.src.ss_family, AF_UNSPEC);
    }
}

/* Damaged headers, whole and cut: an answer in range, no out-of-bounds read
 * (each input sits in its own heap block for the sanitizer). */
Test(pp_parse, mutated_headers)
{
    uint8_t seeds[4][128];
    size_t lens[4];
    struct sockaddr_storage s4 = test_addr("10.1.2.3", 1234), d4 = test_addr("10.3.2.1", 80),
                            s6 = test_addr("fe80::1", 1), d6 = test_addr("fe80::2", 2);
    lens[0] = proxy_pp_encode(1, (struct sockaddr *)&s4, (struct sockaddr *)&d4, seeds[0], 128);
    lens[1] = proxy_pp_encode(1, (struct sockaddr *)&s6, (struct sockaddr *)&d6, seeds[1], 128);
    lens[2] = proxy_pp_encode(2, (struct sockaddr *)&s4, (struct sockaddr *)&d4, seeds[2], 128);
    lens[3] = proxy_pp_encode(2, (struct sockaddr *)&s6, (struct sockaddr *)&d6, seeds[3], 128);
    uint64_t x = 0x9e3779b97f4a7c15ull;
    for (int round = 0; round < 20000; round++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        size_t k = x % 4, n = lens[k];
        uint8_t *buf = malloc(n);
        cr_assert(buf);
        memcpy(buf, seeds[k], n);
        for (int m = 0; m < 1 + (int)(x >> 8) % 3; m++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            buf[x % n] = (uint8_t)(x >> 32);
        }
        size_t cut = (x >> 40) % 4 == 0 ? (x >> 20) % n : n;
        zg_pp_addrs a;
        int r = zg_pp_parse(buf, cut, &a);
        cr_assert(r == -1 || (r >= 0 && (size_t)r <= cut), "round %d: %d", round, r);
        free(buf);
    }
}
