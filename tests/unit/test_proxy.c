/* test_proxy.c - unit tests of the proxy module's pure part: PROXY protocol
 * v1/v2 encoding (its balancing is the core's upstream groups:
 * test_upstream.c). */
#include <criterion/criterion.h>
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../modules/proxy/proxy.h"
#include "test_addr.h"

/* ---- PROXY protocol ----------------------------------------------------- */

Test(pp, v1_ipv4)
{
    uint8_t out[PROXY_PP_MAX];
    struct sockaddr_storage s = test_addr("192.0.2.1", 56324), d = test_addr("198.51.100.2", 443);
    size_t n = proxy_pp_encode(1, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out));
    const char *want = "PROXY TCP4 192.0.2.1 198.51.100.2 56324 443\r\n";
    cr_assert_eq(n, strlen(want));
    cr_assert(memcmp(out, want, n) == 0);
}

Test(pp, v1_ipv6_and_unknown_dst)
{
    uint8_t out[PROXY_PP_MAX];
    struct sockaddr_storage s = test_addr("2001:db8::1", 1234);
    size_t n = proxy_pp_encode(1, (struct sockaddr *)&s, NULL, out, sizeof(out));
    const char *want = "PROXY TCP6 2001:db8::1 :: 1234 0\r\n";
    cr_assert_eq(n, strlen(want), "%.*s", (int)n, out);
    cr_assert(memcmp(out, want, n) == 0);
}

Test(pp, v1_unknown_src)
{
    uint8_t out[PROXY_PP_MAX];
    size_t n = proxy_pp_encode(1, NULL, NULL, out, sizeof(out));
    cr_assert_eq(n, 15);
    cr_assert(memcmp(out, "PROXY UNKNOWN\r\n", 15) == 0);
    struct sockaddr_storage s = test_addr("192.0.2.1", 1);
    cr_assert_eq(proxy_pp_encode(1, (struct sockaddr *)&s, NULL, out, 10), 0);
}

static const uint8_t sig[12] = {0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D,
                                0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A};

Test(pp, v2_ipv4)
{
    uint8_t out[PROXY_PP_MAX];
    struct sockaddr_storage s = test_addr("192.0.2.1", 0x1234), d = test_addr("198.51.100.2", 443);
    size_t n = proxy_pp_encode(2, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out));
    cr_assert_eq(n, 28);
    cr_assert(memcmp(out, sig, 12) == 0);
    cr_assert_eq(out[12], 0x21);
    cr_assert_eq(out[13], 0x11);
    cr_assert_eq(out[14], 0);
    cr_assert_eq(out[15], 12);
    uint8_t addrs[12] = {192, 0, 2, 1, 198, 51, 100, 2, 0x12, 0x34, 0x01, 0xBB};
    cr_assert(memcmp(out + 16, addrs, 12) == 0);
}

Test(pp, v2_ipv6_and_local)
{
    uint8_t out[PROXY_PP_MAX];
    struct sockaddr_storage s = test_addr("2001:db8::1", 80), d = test_addr("10.0.0.1", 90);
    size_t n = proxy_pp_encode(2, (struct sockaddr *)&s, (struct sockaddr *)&d, out, sizeof(out));
    cr_assert_eq(n, 52);
    cr_assert_eq(out[12], 0x21);
    cr_assert_eq(out[13], 0x21);
    cr_assert_eq(out[15], 36);
    cr_assert_eq(out[15 + 16], 0x01); /* last byte of 2001:db8::1 */
    for (int i = 0; i < 16; i++)      /* dst of the other family: :: */
        cr_assert_eq(out[32 + i], 0);
    cr_assert_eq(out[48], 0);
    cr_assert_eq(out[49], 80);
    n = proxy_pp_encode(2, NULL, NULL, out, sizeof(out));
    cr_assert_eq(n, 16);
    cr_assert_eq(out[12], 0x20);
    cr_assert_eq(out[13], 0x00);
    cr_assert_eq(out[15], 0);
    cr_assert_eq(proxy_pp_encode(3, NULL, NULL, out, sizeof(out)), 0);
    cr_assert_eq(proxy_pp_encode(2, (struct sockaddr *)&s, NULL, out, 40), 0);
}
