/* zg_server_name.h - a server block's server_name patterns and how well a
 * host name (a ClientHello's SNI, a request's Host) matches them: the one
 * set of rules for the core's certificate choice and the http module's. */
#ifndef ZG_SERVER_NAME_H
#define ZG_SERVER_NAME_H

#include <stddef.h>
#include <zerg/module.h>

/* How well the best of names matches host (hn bytes, lowercase, no port,
 * no final dot): 0 not at all; an exact name beats a leading wildcard
 * ("*.example.com", ".example.com") beats a trailing one ("www.example.*"),
 * and among wildcards the longer pattern wins (api->server_names_match). */
size_t zg_server_names_match(const zerg_str_list *names, const char *host, size_t hn);
/* Lowercase the patterns in place (names match case-insensitively). */
void zg_server_names_lower(zerg_str_list *names);

#endif
