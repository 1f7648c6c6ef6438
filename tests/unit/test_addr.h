/* tests/unit/test_addr.h - test_addr, a socket address from its text, for
 * the unit tests that feed addresses to the code under test. */
#ifndef ZG_TEST_ADDR_H
#define ZG_TEST_ADDR_H

#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* ip (IPv6 when it holds a ':', else IPv4) and port; a bad ip fails the test. */
static inline struct sockaddr_storage test_addr(const char *ip, int port)
{
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    if (strchr(ip, ':')) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons((uint16_t)port);
        cr_assert_eq(inet_pton(AF_INET6, ip, &a->sin6_addr), 1, "bad test address %s", ip);
    } else {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        a->sin_family = AF_INET;
        a->sin_port = htons((uint16_t)port);
        cr_assert_eq(inet_pton(AF_INET, ip, &a->sin_addr), 1, "bad test address %s", ip);
    }
    return ss;
}

#endif
