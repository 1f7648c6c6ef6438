/* modules/http/http_access.c - a location's allow/deny lists of client
 * addresses (nginx's allow and deny): parsing "ADDR", "ADDR/BITS", "unix:" and "all",
 * and the per-request check. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "http.h"
#include "http_access.h"

int http_cidr_parse(const char *s, http_cidr *out)
{
    memset(out, 0, sizeof(*out));
    if (!strcmp(s, "all"))
        return 0; /* family 0: every address */
    if (!strcmp(s, "unix:")) {
        out->family = AF_UNIX; /* every client of a unix socket (bits 0) */
        return 0;
    }
    char buf[64];
    const char *slash = strchr(s, '/');
    size_t alen = slash ? (size_t)(slash - s) : strlen(s);
    if (alen == 0 || alen >= sizeof(buf))
        return -1;
    memcpy(buf, s, alen);
    buf[alen] = 0;
    int max;
    if (inet_pton(AF_INET, buf, out->addr) == 1) {
        out->family = AF_INET;
        max = 32;
    } else if (inet_pton(AF_INET6, buf, out->addr) == 1) {
        out->family = AF_INET6;
        max = 128;
    } else {
        return -1;
    }
    int bits = max;
    if (slash) {
        char *end;
        const char *b = slash + 1;
        if (*b < '0' || *b > '9')
            return -1;
        long v = strtol(b, &end, 10);
        if (*end || v > max)
            return -1;
        bits = (int)v;
    }
    out->bits = (uint8_t)bits;
    /* bits past the prefix must be zero, as nginx asks ("10.0.0.1/8" is
     * most likely a typo) */
    for (int i = bits; i < max; i++)
        if (out->addr[i / 8] & (0x80 >> (i % 8)))
            return -1;
    return 0;
}

static int http_cidr_match(const http_cidr *c, int family, const uint8_t *addr)
{
    if (c->family == 0)
        return 1;
    if (c->family != family)
        return 0;
    int full = c->bits / 8, rest = c->bits % 8;
    if (memcmp(c->addr, addr, (size_t)full) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xff << (8 - rest));
    return (c->addr[full] & mask) == (addr[full] & mask);
}

static int http_cidr_list_match(const http_cidr_list *l, int family, const uint8_t *addr)
{
    for (size_t i = 0; i < l->n; i++)
        if (http_cidr_match(&l->items[i], family, addr))
            return 1;
    return 0;
}

int http_access_allows(const http_location *l, const struct sockaddr *sa)
{
    int family = 0;
    const uint8_t *addr = NULL;
    static const uint8_t v4mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    if (sa && sa->sa_family == AF_INET) {
        family = AF_INET;
        addr = (const uint8_t *)&((const struct sockaddr_in *)(const void *)sa)->sin_addr;
    } else if (sa && sa->sa_family == AF_INET6) {
        addr = (const uint8_t *)&((const struct sockaddr_in6 *)(const void *)sa)->sin6_addr;
        family = AF_INET6;
        if (memcmp(addr, v4mapped, sizeof(v4mapped)) == 0) {
            family = AF_INET; /* a v4 client on a dual-stack listener */
            addr += sizeof(v4mapped);
        }
    } else if (sa && sa->sa_family == AF_UNIX) {
        family = AF_UNIX;
        addr = v4mapped; /* no address bytes: "unix:" entries match on family alone */
    }
    if (http_cidr_list_match(&l->deny, family, addr))
        return 0;
    return l->allow.n == 0 || http_cidr_list_match(&l->allow, family, addr);
}

/* allow / deny: one entry or a list of them */
static int http_parse_cidr_list(zerg_conf_ctx *cx, const zerg_conf_node *node, void *field)
{
    http_cidr_list *list = field;
    int seq = http_api->node_kind(cx, node) == ZERG_NODE_SEQ;
    size_t n = seq ? http_api->node_len(cx, node) : 1;
    if (n == 0)
        return http_api->conf_error(cx, node, "expected an address, ADDR/BITS, unix: or all");
    list->items = http_api->conf_alloc(cx, n * sizeof(http_cidr));
    if (!list->items)
        return -1; /* out of memory, reported */
    list->n = n;
    for (size_t i = 0; i < n; i++) {
        const zerg_conf_node *item = seq ? http_api->node_item(cx, node, i) : node;
        const char *s = http_api->node_scalar(cx, item);
        if (!s || http_cidr_parse(s, &list->items[i]) < 0)
            return http_api->conf_error(cx, item,
                                        "\"%s\": expected an IPv4 or IPv6 address, ADDR/BITS "
                                        "(no bits set past BITS), unix: or all",
                                        s ? s : "");
    }
    return 0;
}

const zerg_directive http_access_location_directives[] = {
    {"allow", ZERG_CONF_CUSTOM, offsetof(http_location, allow), http_parse_cidr_list, 0, 0},
    {"deny", ZERG_CONF_CUSTOM, offsetof(http_location, deny), http_parse_cidr_list, 0, 0},
    ZERG_DIRECTIVE_END,
};
