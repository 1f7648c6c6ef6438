/* zg_proxyproto.h - reading the PROXY protocol header (v1 text, v2 binary)
 * that a load balancer in front of zerg sends before the client's bytes. */
#ifndef ZG_PROXYPROTO_H
#define ZG_PROXYPROTO_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* The longest header accepted: v1 is at most 107 bytes; v2 may carry TLVs
 * after the addresses, up to this total. */
#define ZG_PP_MAX 4096

typedef struct zg_pp_addrs {
    struct sockaddr_storage src, dst; /* AF_UNSPEC: keep the connection's own */
    socklen_t src_len, dst_len;
} zg_pp_addrs;

/* Parse the header at the start of buf. Returns its length once it is all
 * there and valid (filling out), 0 while more bytes may complete it, -1 as
 * soon as buf cannot start a valid header. v1 UNKNOWN, the v2 LOCAL command
 * and v2 families other than TCP over IPv4/IPv6 give AF_UNSPEC. */
int zg_pp_parse(const uint8_t *buf, size_t len, zg_pp_addrs *out);

#endif
