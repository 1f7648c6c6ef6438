/* modules/http/http_access.h - allow/deny by client address (http_access.c). */
#ifndef ZERG_HTTP_ACCESS_H
#define ZERG_HTTP_ACCESS_H

#include "http.h"

/* "ADDR", "ADDR/BITS" or "all" into out (-1: not one). */
int http_cidr_parse(const char *s, http_cidr *out);
/* Whether l lets the client at sa in: not denied, and allowed when l has an
 * allow list (sa NULL or not IP: only "all" matches it). */
int http_access_allows(const http_location *l, const struct sockaddr *sa);

/* Its directive rows (composed by http_conf.c). */
extern const zerg_directive http_access_location_directives[];

#endif
