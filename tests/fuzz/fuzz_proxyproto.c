/* tests/fuzz/fuzz_proxyproto.c - fuzz target for zg_pp_parse, the PROXY
 * protocol header parser that reads the first bytes of a client's stream.
 * Checks the contract of zg_pp_parse besides memory safety. */
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "zg_proxyproto.h"

#define CHECK(cond) TEST_CHECK(cond, "%s", #cond)

static void check_addr(const struct sockaddr_storage *ss, socklen_t len)
{
    if (ss->ss_family == AF_INET)
        CHECK(len == sizeof(struct sockaddr_in));
    else if (ss->ss_family == AF_INET6)
        CHECK(len == sizeof(struct sockaddr_in6));
    else
        CHECK(ss->ss_family == AF_UNSPEC && len == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    zg_pp_addrs a;
    memset(&a, 0xA5, sizeof(a));
    int r = zg_pp_parse(data, size, &a);
    CHECK(r >= -1 && (size_t)(r > 0 ? r : 0) <= size && r <= ZG_PP_MAX);
    if (r <= 0)
        return 0;
    check_addr(&a.src, a.src_len);
    check_addr(&a.dst, a.dst_len);
    CHECK(a.src.ss_family == a.dst.ss_family);
    /* the header alone parses the same; a cut header asks for more */
    zg_pp_addrs b;
    CHECK(zg_pp_parse(data, (size_t)r, &b) == r);
    CHECK(b.src_len == a.src_len && memcmp(&b.src, &a.src, a.src_len) == 0);
    size_t cuts[] = {(size_t)r - 1, (size_t)r / 2, 1, 0};
    for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
        CHECK(zg_pp_parse(data, cuts[i], &b) == 0);
    return 0;
}
